"""Command line of the reference runtime.

``migrate-ml`` forwards ``sample-data ...`` and ``reference ...`` here (lazily, so the codemod
never imports torch); ``python -m migrate_ml_reference ...`` takes the same arguments.
``--help`` works without the runtime's dependencies; running a command without them prints the
install hint and exits 2. Bad input prints one ``error: ...`` line naming the file (and line)
and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import math
import sys
import warnings
from dataclasses import dataclass

INSTALL_HINT = "the reference runtime is not installed: pip install 'migrate-ml[runtime]'"
RUNTIME_MODULES = ("torch", "torchvision", "timm", "torchmetrics", "numpy", "PIL", "sklearn", "matplotlib", "yaml")
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
    lr: float = 2e-3
    weight_decay: float = 0.05
    pos_weight: str = "none"
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    augment: str = "none"
    uncertain: str = "ignore"


class _UsageError(Exception):
    pass


class _Help(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help when it has a default worth showing and the
    help text does not describe it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default is argparse.SUPPRESS or action.default == []
        if "default:" in text or unset or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)".lstrip()


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

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
    sample.add_argument("--kind", choices=KINDS, default="digits", help="digits: 10 classes, shapes: 7")
    sample.add_argument("--format", choices=FORMATS, default="folder",
                        help="folder: labels.csv+classes.txt+images/ with a split column; csv: Planet-style train_v2.csv "
                             "(image_name,tags) + train-jpg/; onehot: one 0/1 column per class; coco: COCO instances JSON")
    sample.add_argument("--n", type=_positive_int, default=1000, help="total images (folder format: split 80/10/10 train/val/test)")
    sample.add_argument("--image-size", type=_positive_int, default=32, help="side in pixels (even)")
    sample.add_argument("--seed", type=int, default=0, help="the same seed writes the same data")
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
    train.add_argument("--uncertain", choices=("ignore", "zeros", "ones"), default=defaults.uncertain,
                       help="one-hot cells given as -1 or left blank (CheXpert style): ignore = left out of the loss and "
                            "the metrics, zeros/ones = taken as negative/positive")
    train.add_argument("--model", default=defaults.model, help="any timm model name")
    train.add_argument("--model-kwarg", action="append", default=[], metavar="KEY=VALUE",
                       help="extra timm.create_model kwarg (repeatable; VALUE parsed as a Python literal)")
    train.add_argument("--init-checkpoint", "--pretrained", dest="init_checkpoint", metavar="PATH",
                       help="start from weights in a local file (a run's checkpoint.pt or a timm state dict); the head is resized")
    train.add_argument("--epochs", type=_positive_int, default=defaults.epochs, help="passes over the train split")
    train.add_argument("--max-seconds", type=_positive,
                       help="time budget for the whole run, final evaluation included; the cosine schedule follows the clock")
    train.add_argument("--max-steps", type=_positive_int, help="stop after this many optimizer updates; the cosine schedule spans them")
    train.add_argument("--patience", type=_positive_int, metavar="EPOCHS",
                       help="stop when validation mAP has not improved for this many epochs (default: never)")
    train.add_argument("--batch-size", type=_positive_int,
                       help="per process (default: the largest up to 256 that gives an epoch about 25 updates)")
    train.add_argument("--lr", type=_positive, default=defaults.lr, help="peak AdamW learning rate (cosine schedule, 5 %% warm-up)")
    train.add_argument("--weight-decay", type=_non_negative, default=defaults.weight_decay, help="AdamW weight decay (not on norms and biases)")
    train.add_argument("--pos-weight", choices=("none", "auto"), default=defaults.pos_weight,
                       help="auto: BCE pos_weight = negatives/positives per class on the train split")
    train.add_argument("--seed", type=int, default=defaults.seed, help="seeds the weights, the splits and the batch order")
    train.add_argument("--threads", type=_positive_int,
                       help="torch threads per process (default: the usable CPUs, those not busy per the load average, "
                            "shared among the local processes, less the workers)")
    train.add_argument("--workers", type=_count, help="DataLoader worker processes for file data (default: half the usable CPUs, at most 8; 0 for sample data)")
    train.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    train.add_argument("--out", default=defaults.out, help="run folder (must be empty or absent unless --overwrite or --resume)")
    train.add_argument("--overwrite", action="store_true", help="replace the run files in a non-empty --out")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if present")
    train.add_argument("--stop-after-epoch", type=_positive_int, metavar="E",
                       help="end this invocation after epoch E, leaving a checkpoint for --resume (time-sliced jobs)")
    train.add_argument("--quiet", action="store_true", help="no progress display or table")
    train.add_argument("--config", metavar="YAML", help="options from a file, e.g. a run's config.yaml (options given here win)")
    tricks = train.add_argument_group("training techniques (timm's train.py)")
    tricks.add_argument("--loss", choices=("bce", "asl"), default="bce",
                        help="bce: BCEWithLogitsLoss (with --pos-weight); asl: timm's AsymmetricLossMultiLabel")
    tricks.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                        help="mixed precision with torch.autocast: bf16 on CPU or CUDA, fp16 on CUDA (with a GradScaler)")
    tricks.add_argument("--ema", type=_fraction, metavar="DECAY",
                        help="keep an exponential moving average of the weights (timm ModelEmaV3, e.g. 0.999); "
                             "it is what is validated, kept and saved (default: off)")
    tricks.add_argument("--accum-steps", type=_positive_int, default=1, help="micro-batches of --batch-size per optimizer update")
    tricks.add_argument("--clip-grad", type=_positive, metavar="NORM", help="clip the gradient norm to NORM (default: off)")
    tricks.add_argument("--mixup", type=_non_negative, default=0.0, metavar="ALPHA",
                        help="mixup alpha (timm Mixup; the multi-hot targets are blended with the same lambda; 0: off)")
    tricks.add_argument("--cutmix", type=_non_negative, default=0.0, metavar="ALPHA", help="cutmix alpha (0: off)")
    tricks.add_argument("--tensorboard", action="store_true", help="write TensorBoard event files to OUT/tensorboard")

    ev = ref_sub.add_parser("eval", help="evaluate a saved run on labelled data",
                            description="Evaluate a saved run at 0.5 and at its tuned thresholds, on its own test split or any labelled data.")
    ev.add_argument("--checkpoint", required=True, metavar="PATH", help="a run folder or its checkpoint.pt")
    ev_src = ev.add_mutually_exclusive_group()
    ev_src.add_argument("--data", help="labelled data in any supported format (default: the data the run trained on)")
    ev_src.add_argument("--sample", choices=KINDS, help="generated sample data of this kind")
    _add_data_options(ev)
    ev.add_argument("--split", help="train, val or test (default: test when the data has one, else every row)")
    ev.add_argument("--thresholds", help="thresholds.json (default: the run's own)")
    ev.add_argument("--out", help="folder for eval.json")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing OUT/eval.json")
    ev.add_argument("--workers", type=_count, help="DataLoader workers (default: half the usable CPUs, at most 8)")
    ev.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    ev.add_argument("--quiet", action="store_true", help="no table; eval.json (with --out) only")

    cv = ref_sub.add_parser("convert", help="turn a single-label ImageFolder tree into the multi-label CSV",
                            description="Write OUT/labels.csv (file,labels[,split]) and OUT/classes.txt for an ImageFolder tree "
                                        "(ROOT/<class>/<image> or ROOT/<split>/<class>/<image>); the same image under several "
                                        "class folders (same bytes) becomes one row with all its classes.")
    cv.add_argument("root", metavar="ROOT", help="the ImageFolder root")
    cv.add_argument("--out", required=True, metavar="DIR", help="folder for labels.csv and classes.txt")
    cv.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")

    ex = ref_sub.add_parser("export", help="export a saved run to ONNX or TorchScript",
                            description="Export a run's model (sigmoid included: it outputs probabilities) to ONNX or "
                                        "TorchScript, with OUT.json beside it (class names, thresholds, input size, mean/std); "
                                        "the exported model is run on sample images and must agree with the checkpoint.")
    ex.add_argument("--checkpoint", required=True, metavar="PATH", help="a run folder or its checkpoint.pt")
    ex.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="onnx needs the onnx, onnxscript and onnxruntime packages")
    ex.add_argument("--out", required=True, metavar="FILE", help="model file to write, e.g. model.onnx")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing --out")

    pr = ref_sub.add_parser("predict", help="label new images with a saved run",
                            description="Label images with a saved run: one CSV row per image (image, labels above the "
                                        "run's tuned thresholds, one probability column per class).")
    pr.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    pr.add_argument("--checkpoint", required=True, metavar="PATH", help="a run folder or its checkpoint.pt")
    pr.add_argument("--out", help="CSV file to write (default: standard output)")
    pr.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    pr.add_argument("--thresholds", help="thresholds.json (default: the run's own)")
    pr.add_argument("--batch-size", type=_positive_int, default=64, help="images per forward pass")
    pr.add_argument("--workers", type=_count, default=0, help="DataLoader worker processes decoding the images")
    pr.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda when available)")
    for command in (sample, train, ev, cv, ex, pr):
        command.add_argument("-v", "--verbose", action="store_true",
                             help="show library warnings (torchmetrics, matplotlib, torch); hidden by default, so "
                                  "that an error stays one line")
    parser.train_parser = train
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
        max_steps=args.max_steps,
        patience=args.patience,
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
        uncertain=args.uncertain,
        loss=args.loss,
        amp=args.amp,
        ema=args.ema,
        accum_steps=args.accum_steps,
        clip_grad=args.clip_grad,
        mixup=args.mixup,
        cutmix=args.cutmix,
        tensorboard=args.tensorboard,
        # Options only a --config file sets.
        **{k: getattr(args, k) for k in ("warmup", "log_every") if hasattr(args, k)},
        workers=args.workers,
        init_checkpoint=args.init_checkpoint,
        overwrite=args.overwrite,
        **_data_options(args),
    )
    try:
        train(config, already_spent=_process_age())
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return 0


def _process_age() -> float:
    """Seconds since this process started (Linux ``/proc``; 0 elsewhere), so that --max-seconds
    also covers Python's start-up and the imports, which took 10-25 s on a loaded machine."""
    import os

    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def _eval(args: argparse.Namespace) -> int:
    from .train import evaluate

    evaluate(args.checkpoint, data=args.data, sample=args.sample, split=args.split, thresholds_path=args.thresholds,
             out=args.out, device=args.device, workers=args.workers, overwrite=args.overwrite, show=not args.quiet,
             **_data_options(args))
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


def _with_config(argv: list[str], path: str) -> argparse.Namespace:
    """Parse ``argv`` again with the config file's values as the train defaults, so options
    given on the command line win."""
    from .train import read_config

    conf = read_config(path)
    defaults = {}
    for key, value in conf.items():
        if key == "model_kwargs":
            defaults["model_kwarg"] = [f"{k}={v!r}" for k, v in (value or {}).items()]
        else:
            defaults[key] = value
    parser = _build_parser()
    parser.train_parser.set_defaults(**defaults)
    return parser.parse_args(argv)


def _export(args: argparse.Namespace) -> int:
    from .export import export_model

    done = export_model(args.checkpoint, args.format, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out} and {done['sidecar']} ({args.format}; checked on {done['checked']['images']} sample images: "
          f"max |difference| {done['checked']['max_abs_diff']:.2e} from the checkpoint)")
    return 0


def _convert(args: argparse.Namespace) -> int:
    import shlex

    from .convert import convert_image_folder

    done = convert_image_folder(args.root, args.out, overwrite=args.overwrite)
    sep = "" if done.label_sep == " " else f" --label-sep {shlex.quote(done.label_sep)}"
    print(f"wrote {done.rows} rows ({len(done.classes)} classes; {done.merged} copies merged into multi-label rows) to "
          f"{done.labels_csv}; train with: migrate-ml reference train --data {shlex.quote(args.out)} "
          f"--images {shlex.quote(args.root)}{sep}")
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


@contextlib.contextmanager
def _library_logging(verbose: bool):
    """Libraries also warn through ``logging`` (timm's scheduler on a one-step run): without -v
    those records are dropped like ``warnings``; errors still show."""
    if verbose:
        yield
        return
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


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
        with warnings.catch_warnings(), _library_logging(args.verbose):
            if not args.verbose:
                warnings.simplefilter("ignore")
            if args.command == "sample-data":
                return _sample_data(args)
            if getattr(args, "config", None):
                args = _with_config(argv, args.config)
            return {"train": _train, "eval": _eval, "predict": _predict, "convert": _convert, "export": _export}[args.action](args)
    except (_UsageError, InputError, ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # e.g. the disk filled up or a folder became read-only mid-run
        print(f"error: {err.filename or ''}{': ' if err.filename else ''}{err.strerror or err}", file=sys.stderr)
        return 2
