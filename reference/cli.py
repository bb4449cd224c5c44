"""Command line of the reference runtime.

``migrate-ml`` forwards ``sample-data ...`` and ``reference ...`` here (lazily, so the codemod
never imports torch); ``python -m migrate_ml_reference ...`` takes the same arguments.
``--help`` works without the runtime's dependencies; running a command without them prints the
install hint and exits 2. Bad input prints one ``error: ...`` line naming the file (and line)
and exits 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import warnings
from dataclasses import dataclass

INSTALL_HINT = "the reference runtime is not installed: pip install 'migrate-ml[runtime]'"
RUNTIME_MODULES = ("torch", "torchvision", "timm", "torchmetrics", "numpy", "PIL", "sklearn", "matplotlib")
KINDS = ("digits", "shapes")
FORMATS = ("folder", "csv", "onehot", "coco")
AUGMENTS = ("none", "basic", "randaug")


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
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    augment: str = "none"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print full usage; keep errors to one line
        raise _UsageError(f"{self.prog}: {message}")


def _number(kind, low: float, low_ok: bool, high: float | None = None):
    """argparse type: a finite ``kind`` within bounds, else a one-line usage error."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {'an integer' if kind is int else 'a number'}: {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value < low or (value == low and not low_ok) or (high is not None and value >= high):
            bound = f"{'at least' if low_ok else 'above'} {low:g}" + (f" and below {high:g}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text}")
        return value

    return parse


_positive_int = _number(int, 1, True)
_count = _number(int, 0, True)
_positive = _number(float, 0, False)
_non_negative = _number(float, 0, True)
_fraction = _number(float, 0, True, 1.0)


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", metavar="DIR", help="folder the image names are relative to (default: images/ beside the labels file, else its folder)")
    parser.add_argument("--image-col", metavar="NAME", help="CSV column with image names (default: guessed, e.g. file, image, image_name)")
    parser.add_argument("--labels-col", metavar="NAME", help="CSV column with label names (default: guessed, e.g. labels, tags; none: one-hot columns)")
    parser.add_argument("--label-sep", metavar="SEP", help="separator between label names in that column (default: whitespace)")
    parser.add_argument("--image-ext", metavar="EXT", help="extension for image names given without one, e.g. .jpg (default: the first that exists)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="migrate-ml", description="migrate-ml reference runtime")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sample = sub.add_parser("sample-data", help="write offline multi-label sample data",
                            description="Write offline, deterministic multi-label sample data in one of the formats the runtime reads.")
    sample.add_argument("dir", help="output folder (must be empty or absent unless --overwrite)")
    sample.add_argument("--kind", choices=KINDS, default="digits")
    sample.add_argument("--format", choices=FORMATS, default="folder",
                        help="folder: labels.csv+classes.txt+images/ with a split column; csv: Planet-style train_v2.csv "
                             "(image_name,tags) + train-jpg/; onehot: one 0/1 column per class; coco: COCO instances JSON")
    sample.add_argument("--n", type=_positive_int, default=1000, help="total images (folder format: split 80/10/10 train/val/test)")
    sample.add_argument("--image-size", type=_positive_int, default=32, help="side in pixels (even)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")

    ref = sub.add_parser("reference", help="train, evaluate or predict with the reference multi-label model",
                         description="Train, evaluate or predict with the reference multi-label model.")
    ref_sub = ref.add_subparsers(dest="action", required=True, parser_class=_Parser)
    defaults = TrainDefaults()
    train = ref_sub.add_parser("train", help="train a model; writes a run folder", description="Train a multi-label timm model with BCE; writes a run folder.")
    src = train.add_mutually_exclusive_group()
    src.add_argument("--data", help="labels file (CSV, one-hot CSV, COCO JSON, labels.json) or dataset folder")
    src.add_argument("--sample", choices=KINDS, help="generate sample data in memory (default: digits)")
    _add_data_options(train)
    train.add_argument("--val-fraction", type=_fraction, default=defaults.val_fraction, help="validation share when the data has no split (seeded)")
    train.add_argument("--test-fraction", type=_fraction, default=defaults.test_fraction, help="test share when the data has no split (seeded)")
    train.add_argument("--n-train", type=_positive_int, default=defaults.n_train, help="sample images for training")
    train.add_argument("--n-val", type=_positive_int, default=defaults.n_val, help="sample images for validation / threshold tuning")
    train.add_argument("--n-test", type=_positive_int, default=defaults.n_test, help="sample images for the reported metrics")
    train.add_argument("--image-size", type=_positive_int, default=defaults.image_size, help="model input side in pixels")
    train.add_argument("--augment", choices=AUGMENTS, default=defaults.augment,
                       help="training augmentation for file data: basic = random resized crop + flip, randaug adds RandAugment")
    train.add_argument("--model", default=defaults.model, help="any timm model name")
    train.add_argument("--model-kwarg", action="append", default=[], metavar="KEY=VALUE",
                       help="extra timm.create_model kwarg (repeatable; VALUE parsed as a Python literal)")
    train.add_argument("--init-checkpoint", "--pretrained", dest="init_checkpoint", metavar="PATH",
                       help="start from weights in a local file (a run's checkpoint.pt or a timm state dict); the head is resized")
    train.add_argument("--epochs", type=_positive_int, default=defaults.epochs)
    train.add_argument("--max-seconds", type=_positive, help="stop after this much training time; the cosine schedule follows the clock")
    train.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size, help="per process")
    train.add_argument("--lr", type=_positive, default=defaults.lr)
    train.add_argument("--weight-decay", type=_non_negative, default=defaults.weight_decay)
    train.add_argument("--pos-weight", choices=("none", "auto"), default=defaults.pos_weight,
                       help="auto: BCE pos_weight = negatives/positives per class on the train split")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--threads", type=_positive_int, help="torch threads per process (default: cores / local processes)")
    train.add_argument("--workers", type=_count, help="DataLoader worker processes for file data (default: cores, at most 8)")
    train.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    train.add_argument("--out", default=defaults.out, help="run folder (must be empty or absent unless --overwrite or --resume)")
    train.add_argument("--overwrite", action="store_true", help="replace the run files in a non-empty --out")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    train.add_argument("--stop-after-epoch", type=_positive_int, metavar="E",
                       help="end this invocation after epoch E, leaving a checkpoint for --resume (time-sliced jobs)")
    train.add_argument("--quiet", action="store_true", help="no progress display or table")

    ev = ref_sub.add_parser("eval", help="evaluate a saved run on labelled data",
                            description="Evaluate a saved run at 0.5 and at its tuned thresholds, on its own test split or any labelled data.")
    ev.add_argument("--checkpoint", required=True)
    ev_src = ev.add_mutually_exclusive_group()
    ev_src.add_argument("--data", help="labelled data in any supported format (default: the data the run trained on)")
    ev_src.add_argument("--sample", choices=KINDS)
    _add_data_options(ev)
    ev.add_argument("--split", help="train, val or test (default: test when the data has one, else every row)")
    ev.add_argument("--thresholds", help="thresholds.json (default: the run's own)")
    ev.add_argument("--out", help="folder for eval.json")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing OUT/eval.json")
    ev.add_argument("--workers", type=_count)
    ev.add_argument("--device")

    pr = ref_sub.add_parser("predict", help="label new images with a saved run",
                            description="Label images with a saved run: one CSV row per image (image, labels above the "
                                        "run's tuned thresholds, one probability column per class).")
    pr.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    pr.add_argument("--checkpoint", required=True)
    pr.add_argument("--out", help="CSV file to write (default: standard output)")
    pr.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    pr.add_argument("--thresholds", help="thresholds.json (default: the run's own)")
    pr.add_argument("--batch-size", type=_positive_int, default=64)
    pr.add_argument("--workers", type=_count, default=0)
    pr.add_argument("--device")
    for command in (sample, train, ev, pr):
        command.add_argument("-v", "--verbose", action="store_true",
                             help="show library warnings (torchmetrics, matplotlib, torch); hidden by default, so "
                                  "that an error stays one line")
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


def _data_options(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k) for k in ("images", "image_col", "labels_col", "label_sep", "image_ext")}


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
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        augment=args.augment,
        workers=args.workers,
        init_checkpoint=args.init_checkpoint,
        overwrite=args.overwrite,
        **_data_options(args),
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

    evaluate(args.checkpoint, data=args.data, sample=args.sample, split=args.split, thresholds_path=args.thresholds,
             out=args.out, device=args.device, workers=args.workers, overwrite=args.overwrite, **_data_options(args))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import InputError
    from .predictor import image_paths, load, predictions_csv
    from .report import write_text

    if args.out is not None:
        out = Path(args.out)
        if out.is_dir():
            raise InputError(f"{out}: --out is a folder; give a CSV file name")
        if out.exists() and not args.overwrite:
            raise InputError(f"{out}: exists; pass --overwrite to replace it")
    paths = image_paths(args.paths)
    predictor = load(args.checkpoint, device=args.device, thresholds=args.thresholds)
    text = predictions_csv(paths, predictor.predict(paths, args.batch_size, args.workers), predictor.classes)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text(args.out, text)
        print(f"wrote {len(paths)} predictions to {args.out}", file=sys.stderr)
    return 0


def _sample_data(args: argparse.Namespace) -> int:
    from .sample import write_sample_data

    data = write_sample_data(args.dir, kind=args.kind, n=args.n, image_size=args.image_size, seed=args.seed,
                             format=args.format, overwrite=args.overwrite)
    print(f"wrote {args.n} {args.kind} images ({args.format} format); train with: migrate-ml reference train --data {data}")
    return 0


def _missing_runtime() -> str | None:
    missing = [name for name in RUNTIME_MODULES if importlib.util.find_spec(name) is None]
    return f"{INSTALL_HINT} (missing: {', '.join(missing)})" if missing else None


def main(argv: list[str] | None = None) -> int:
    """Run ``sample-data ...`` or ``reference train|eval|predict ...``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _build_parser().parse_args(argv)
    except _UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    missing = _missing_runtime()
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    from .errors import InputError

    try:
        with warnings.catch_warnings():
            if not args.verbose:
                warnings.simplefilter("ignore")
            if args.command == "sample-data":
                return _sample_data(args)
            return {"train": _train, "eval": _eval, "predict": _predict}[args.action](args)
    except (_UsageError, InputError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # e.g. the disk filled up or a folder became read-only mid-run
        print(f"error: {err.filename or ''}{': ' if err.filename else ''}{err.strerror or err}", file=sys.stderr)
        return 2
