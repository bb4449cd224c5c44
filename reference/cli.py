"""Command line of the reference runtime.

``migrate-ml`` forwards ``sample-data ...`` and ``reference ...`` here (lazily, so the codemod
never imports torch); ``python -m migrate_ml_reference ...`` takes the same arguments.
Bad input prints one ``error: ...`` line naming the file and line where there is one, and
exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainDefaults:
    """Mirrors TrainConfig's defaults without importing torch to build the parser."""

    out: str = "runs/reference"
    n_train: int = 20000
    n_val: int = 2000
    n_test: int = 2000
    image_size: int = 32
    model: str = "vit_tiny_patch16_224"
    epochs: int = 30
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.05
    pos_weight: str = "none"
    seed: int = 0


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print full usage; keep errors to one line
        raise _UsageError(f"{self.prog}: {message}")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="migrate-ml", description="migrate-ml reference runtime")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sample = sub.add_parser("sample-data", help="write offline multi-label sample data (PNGs + labels.csv)")
    sample.add_argument("dir", help="output folder")
    sample.add_argument("--kind", choices=("digits", "shapes"), default="digits")
    sample.add_argument("--n", type=int, default=1000, help="total images, split 80/10/10 train/val/test")
    sample.add_argument("--image-size", type=int, default=32, help="side in pixels (even)")
    sample.add_argument("--seed", type=int, default=0)

    ref = sub.add_parser("reference", help="train or evaluate the reference multi-label model")
    ref_sub = ref.add_subparsers(dest="action", required=True, parser_class=_Parser)
    defaults = TrainDefaults()
    train = ref_sub.add_parser("train", help="train the reference model; writes a run folder")
    src = train.add_mutually_exclusive_group()
    src.add_argument("--data", help="dataset folder (labels.csv or labels.json layout with train/val[/test] splits)")
    src.add_argument("--sample", choices=("digits", "shapes"), help="generate sample data in memory (default: digits)")
    train.add_argument("--n-train", type=int, default=defaults.n_train, help="sample images for training")
    train.add_argument("--n-val", type=int, default=defaults.n_val, help="sample images for validation / threshold tuning")
    train.add_argument("--n-test", type=int, default=defaults.n_test, help="sample images for the reported metrics")
    train.add_argument("--image-size", type=int, default=defaults.image_size)
    train.add_argument("--model", default=defaults.model, help="timm model name")
    train.add_argument("--model-kwarg", action="append", default=[], metavar="KEY=VALUE",
                       help="extra timm.create_model kwarg (repeatable; VALUE parsed as a Python literal)")
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--max-seconds", type=float, help="stop after this much training time; the cosine schedule follows the clock")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process")
    train.add_argument("--lr", type=float, default=defaults.lr)
    train.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    train.add_argument("--pos-weight", choices=("none", "auto"), default=defaults.pos_weight,
                       help="auto: BCE pos_weight = negatives/positives per class on the train split")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--threads", type=int, help="torch threads per process (default: cores / local processes)")
    train.add_argument("--device", help="e.g. cpu or cuda (default: cuda when available)")
    train.add_argument("--out", default=defaults.out, help="run folder")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    train.add_argument("--stop-after-epoch", type=int, metavar="E",
                       help="end this invocation after epoch E, leaving a checkpoint for --resume (time-sliced jobs)")
    train.add_argument("--quiet", action="store_true", help="no progress display or table")

    ev = ref_sub.add_parser("eval", help="evaluate a saved run at 0.5 and at its tuned thresholds")
    ev.add_argument("--checkpoint", required=True)
    ev_src = ev.add_mutually_exclusive_group()
    ev_src.add_argument("--data", help="dataset folder (default: the data the run trained on)")
    ev_src.add_argument("--sample", choices=("digits", "shapes"))
    ev.add_argument("--split", default="test")
    ev.add_argument("--thresholds", help="thresholds.json (default: the run's own)")
    ev.add_argument("--out", help="folder for eval.json")
    ev.add_argument("--device")
    return parser


def _literal(item: str) -> tuple[str, object]:
    import ast

    key, sep, value = item.partition("=")
    if not sep or not key.isidentifier():
        raise _UsageError(f"--model-kwarg expects KEY=VALUE, got {item!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    config = TrainConfig(
        out=args.out,
        data=args.data,
        sample=args.sample or "digits",
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_test,
        image_size=args.image_size,
        model=args.model,
        model_kwargs=dict(_literal(item) for item in args.model_kwarg),
        epochs=args.epochs,
        max_seconds=args.max_seconds,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        pos_weight=args.pos_weight,
        seed=args.seed,
        threads=args.threads,
        device=args.device,
        resume=args.resume,
        stop_after_epoch=args.stop_after_epoch,
        progress=not args.quiet,
    )
    try:
        train(config)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .train import evaluate

    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f"{args.checkpoint}: checkpoint not found")
    evaluate(args.checkpoint, data=args.data, sample=args.sample, split=args.split,
             thresholds_path=args.thresholds, out=args.out, device=args.device)
    return 0


def _sample_data(args: argparse.Namespace) -> int:
    from .sample import write_sample_data

    out = write_sample_data(args.dir, kind=args.kind, n=args.n, image_size=args.image_size, seed=args.seed)
    print(f"wrote {args.n} {args.kind} images to {out} (labels.csv, classes.txt, images/)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``sample-data ...`` or ``reference train|eval ...``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    from .dataset import DatasetFormatError

    try:
        args = _build_parser().parse_args(argv)
        if args.command == "sample-data":
            return _sample_data(args)
        return _train(args) if args.action == "train" else _eval(args)
    except (_UsageError, DatasetFormatError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
