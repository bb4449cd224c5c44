"""Reference multi-label training and evaluation (``migrate-ml reference train|eval``).

BCEWithLogitsLoss, AdamW (timm's optimizer factory, no weight decay on norms and biases) and
timm's cosine schedule with linear warm-up. Users' data streams from files through a
DataLoader (see :mod:`.pipeline`); the bundled sample data is indexed in memory. Each epoch's
order comes from ``DistributedSampler`` seeded by ``(seed, epoch)``, so an epoch is the same
whether the run is fresh, resumed, single-process or one of several ``torchrun`` ranks.
Checkpoints hold tensors and plain containers only and are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler, Subset, TensorDataset

from .dataset import refuse_output_in_data
from .errors import CheckpointError, DatasetFormatError, InputError
from .metrics import gather_rows, multilabel_metrics, tune_thresholds
from .model import DEFAULT_MODEL, check_input_size, create_reference_model, load_init_weights, load_run_weights, model_kwargs
from .pipeline import AUGMENTS, cpu_plan, create_transform, legacy_data_config, loader, normalise, resolve_data_config
from .report import (
    file_kind,
    load_checkpoint,
    per_class_table,
    plot_pr_curves,
    plot_thresholds,
    plot_training_curves,
    save_checkpoint,
    summary_line,
    write_json,
    write_text,
)

# Exiting the interpreter with torch, timm and matplotlib loaded spent 5-8 s in its final garbage
# collections on a loaded two-core machine, past the --max-seconds budget (an idle one: 1-2 s).
# Freezing the heap as exit begins (atexit handlers run before those collections) skips them;
# nothing is left for them to do, the run files are written and closed by then.
atexit.register(gc.freeze)

# The best model by validation mAP (what eval and predict load) and the last epoch's full
# training state (what --resume continues from).
CHECKPOINT = "checkpoint.pt"
LAST = "last.pt"
CHECKPOINT_FORMAT = "migrate-ml-reference-checkpoint/1"
METRICS_SCHEMA_VERSION = 1
THRESHOLD_RULE = "prob > threshold"
SPLIT_NAMES = ("train", "val", "test")
# --uncertain: what a -1 or blank cell of a one-hot CSV becomes.
UNCERTAIN = ("ignore", "zeros", "ones")
# Below this many positives on the tuning split, a tuned threshold is mostly noise.
MIN_TUNING_POSITIVES = 5
# Run-folder files a run writes; --overwrite replaces these and nothing else.
EPOCHS_CSV = "epochs.csv"
RUN_FILES = (CHECKPOINT, LAST, EPOCHS_CSV, "config.yaml", "metrics.json", "thresholds.json", "classes.txt", "splits.csv",
             "pr_curves.png", "thresholds.png", "training_curves.png")
# How often (seconds) the plain progress line is printed when stdout is not a terminal.
LOG_SECONDS = 10.0
# An epoch of fewer updates than this barely moves the model: --batch-size 256 on 400 images gave
# one update per epoch and F1 = 0 for every class after a minute, without a word.
MIN_UPDATES_PER_EPOCH = 10
# The default batch size: the largest in [MIN_AUTO_BATCH, MAX_AUTO_BATCH] giving this many updates an epoch.
TARGET_UPDATES_PER_EPOCH = 25
MIN_AUTO_BATCH = 8
MAX_AUTO_BATCH = 256
# Seconds kept back from --max-seconds for writing the checkpoint, JSON files and plots, until
# a training-curves plot has been timed (before training, then after each epoch); the final
# plots are estimated from it: the PR-curves figure has one panel per class, and took 6 s for
# 10 classes on a loaded 2-core machine.
WRITE_SECONDS = 3.0


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run depends on; stored in the checkpoint as a plain dict."""

    out: str = "runs/reference"
    data: str | None = None
    sample: str = "digits"
    n_train: int = 20000
    n_val: int = 2000
    n_test: int = 2000
    image_size: int = 32
    model: str = DEFAULT_MODEL
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 30
    max_seconds: float | None = None
    max_steps: int | None = None
    patience: int | None = None
    batch_size: int | None = None
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: float = 0.05
    pos_weight: str = "none"
    seed: int = 0
    threads: int | None = None
    device: str | None = None
    resume: bool = False
    stop_after_epoch: int | None = None
    progress: bool = True
    log_every: int = 20
    images: str | None = None
    image_col: str | None = None
    labels_col: str | None = None
    label_sep: str | None = None
    image_ext: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    augment: str = "none"
    uncertain: str = "ignore"
    loss: str = "bce"
    amp: str = "none"
    ema: float | None = None
    accum_steps: int = 1
    clip_grad: float | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    tensorboard: bool = False
    workers: int | None = None
    init_checkpoint: str | None = None
    overwrite: bool = False


@dataclasses.dataclass
class Split:
    """One split's data: float multi-hot ``targets`` and either in-memory ``images`` or ``files``."""

    targets: torch.Tensor
    images: torch.Tensor | None = None
    files: list[str] | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def dataset(self, transform, classes: list[str]) -> Dataset:
        if self.images is not None:
            return TensorDataset(self.images, self.targets)
        from .dataset import ImageFiles

        return ImageFiles(self.files, self.targets, classes, transform)

    def rows(self, keep) -> "Split":
        keep = list(keep)
        index = torch.as_tensor(keep, dtype=torch.long)
        return Split(self.targets[index], self.images[index] if self.images is not None else None,
                     [self.files[i] for i in keep] if self.files is not None else None)


class _Dist:
    """Process-group facts; a plain single process is world size 1, rank 0."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world)))
        if self.world > 1 and not dist.is_initialized():
            # gloo for the CPU tensors (metrics, flags), nccl for CUDA gradients.
            dist.init_process_group(backend="cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo")
        self.main = self.rank == 0

    def max(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def pick_device(name: str | None) -> torch.device:
    """``--device``: validated (unknown names and absent GPUs are one-line errors)."""
    if not name:
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name}: unknown device (use cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: no CUDA GPU is available to this process")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {name}: MPS is not available on this machine")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device {name}: unsupported device type {device.type!r} (use cpu, cuda, cuda:N or mps)")
    return device


def _data_source(cfg: dict) -> str:
    return str(cfg["data"]) if cfg.get("data") else f"sample:{cfg['sample']}"


def _read_table(cfg: dict, classes: list[str] | None = None):
    from .dataset import read_labels

    return read_labels(cfg["data"], images=cfg.get("images"), classes=classes, image_col=cfg.get("image_col"),
                       labels_col=cfg.get("labels_col"), label_sep=cfg.get("label_sep"), image_ext=cfg.get("image_ext"))


def _row_splits(cfg: dict, table) -> tuple[list[str], bool]:
    """Each row's split: the data's own (split column or folders), else a seeded random one.
    Returns the names and whether they were assigned here (then the run folder records them)."""
    from .dataset import assign_splits

    if table.splits is not None and any(table.splits):
        for name, line in zip(table.splits, table.lines):
            if name not in SPLIT_NAMES:
                raise DatasetFormatError(table.source, line, f"split {name!r}: expected one of {', '.join(SPLIT_NAMES)}")
        names = list(table.splits)
        if "val" not in names:
            # A train/test-only split: carve validation rows out of train, seeded.
            train_rows = [i for i, s in enumerate(names) if s == "train"]
            carved = assign_splits(len(train_rows), cfg["val_fraction"], 0.0, cfg["seed"])
            for row, name in zip(train_rows, carved):
                names[row] = name
            return names, True
        return names, False
    return assign_splits(len(table.files), cfg["val_fraction"], cfg["test_fraction"], cfg["seed"]), True


def label_targets(table, uncertain: str) -> torch.Tensor:
    """A table's float targets, its uncertain cells (-1 or blank) set per ``--uncertain``:
    ``zeros`` 0, ``ones`` 1, ``ignore`` -1 (left out of the loss and the metrics)."""
    targets = table.targets.float()
    if table.uncertain is not None:
        targets[table.uncertain] = {"zeros": 0.0, "ones": 1.0, "ignore": -1.0}[uncertain]
    return targets


class MaskedBCEWithLogits(torch.nn.Module):
    """``BCEWithLogitsLoss`` averaged over the known cells only (targets of -1 are left out)."""

    def __init__(self, pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        known = (targets >= 0).to(logits.dtype)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets.clamp(min=0), pos_weight=self.pos_weight, reduction="none")
        return (loss * known).sum() / known.sum().clamp(min=1.0)


def load_splits(cfg: dict, classes: list[str] | None = None) -> tuple[dict[str, Split], list[str], Any]:
    """``({split: Split}, class names, table or None)`` for train/val(/test), per ``cfg``."""
    if cfg.get("data"):
        table = _read_table(cfg, classes)
        names, assigned = _row_splits(cfg, table)
        splits = {}
        for split in SPLIT_NAMES:
            rows = [i for i, s in enumerate(names) if s == split]
            if rows:
                sub = table.subset(rows)
                splits[split] = Split(label_targets(sub, cfg.get("uncertain", "ignore")), files=sub.files)
        for split in ("train", "val"):
            if split not in splits:
                raise DatasetFormatError(table.source, 0, f"no {split} rows (check the split column or --val-fraction)")
        return splits, table.classes, (table, names if assigned else None)
    from .sample import make_sample_tensors

    splits = {}
    for split in SPLIT_NAMES:
        images, targets, names = make_sample_tensors(cfg["sample"], cfg[f"n_{split}"], cfg["image_size"], cfg["seed"], split)
        splits[split] = Split(targets, images=images)
    return splits, names, None


def _tune_and_report_splits(splits: dict[str, Split]) -> tuple[str, str, dict[str, Split]]:
    """Thresholds are tuned on val and reported on test; without a test split, val is halved."""
    if "test" in splits:
        return "val", "test", splits
    val = splits["val"]
    halves = dict(splits)
    halves["val[0::2]"] = val.rows(range(0, len(val), 2))
    halves["val[1::2]"] = val.rows(range(1, len(val), 2))
    return "val[0::2]", "val[1::2]", halves


@torch.no_grad()
def predict_dataset(model: torch.nn.Module, dataset: Dataset, device: torch.device, ddp: _Dist | None = None,
                    batch_size: int = 256, workers: int = 0) -> torch.Tensor:
    """Sigmoid probabilities ``[N, C]`` in dataset order; under torchrun each rank scores a shard
    and the result is gathered, identical on every rank."""
    model.eval()
    world, rank = (ddp.world, ddp.rank) if ddp is not None else (1, 0)
    if isinstance(dataset, TensorDataset) or (isinstance(dataset, Subset) and isinstance(dataset.dataset, TensorDataset)):
        workers = 0
    data, sampler = loader(dataset, batch_size, workers, world=world, rank=rank, pin_memory=device.type == "cuda")
    probs = [torch.sigmoid(model(x.to(device, non_blocking=True)).float()).cpu() for x, _ in data]
    index = torch.tensor(list(sampler), dtype=torch.long)
    if not probs:
        return torch.zeros(0, 0)
    return gather_rows(index, torch.cat(probs))[0]


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def prepare_run_folder(out: Path, overwrite: bool, resume: bool) -> None:
    """Refuse a file, an unwritable folder, or a non-empty one (unless overwrite/resume)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (overwrite or resume):
        raise InputError(f"{out}: run folder is not empty; pass --overwrite to replace its run files, or --resume to continue")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot create the run folder: {err.strerror or err}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise InputError(f"{out}: run folder is not writable")
    if overwrite and not resume:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    for name in RUN_FILES:  # --resume: never write through a link that leaves the run folder
        target = os.path.realpath(out / name)
        if (out / name).is_symlink() and os.path.dirname(target) != os.path.realpath(out):
            raise InputError(f"{out / name}: a symlink to {target}, outside the run folder; refused")


def run_checkpoint_path(path: str | os.PathLike) -> Path:
    """``--checkpoint``: a checkpoint file, or a run folder meaning its ``checkpoint.pt``."""
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT).is_file():
            raise CheckpointError(f"{path}: a folder without a {CHECKPOINT} (expected a run folder or a checkpoint file)")
        return path / CHECKPOINT
    return path


def read_run_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint written by this runtime, or :class:`CheckpointError` naming the path."""
    state = load_checkpoint(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a migrate-ml reference checkpoint (no {CHECKPOINT_FORMAT!r} marker)")
    return state


class _Budget:
    """The ``--max-seconds`` clock, counted from the start of :func:`train` (so loading the data
    counts) or, from the CLI, of the process. Training stops early enough that what is left
    (validating the model once, scoring the report split, writing the run folder) still ends
    within the budget; those costs are estimated from the passes and plots timed so far."""

    def __init__(self, max_seconds: float | None, spent: float, n_val: int, n_report: int, num_classes: int = 1):
        self.max_seconds, self.spent, self.n_val, self.n_report = max_seconds, spent, n_val, n_report
        self.num_classes = num_classes
        self.started = time.perf_counter()
        self.train_per_image: float | None = None
        self.eval_per_image: float | None = None
        self.figure_seconds: float | None = None  # the last training-curves plot

    def clock(self) -> float:
        return self.spent + time.perf_counter() - self.started

    def reserve(self, validated: bool) -> float:
        # Before the first validation, scoring an image is guessed to cost what training on it did.
        per_image = self.eval_per_image if self.eval_per_image is not None else (self.train_per_image or 0.0)
        # Three figures at the end, the PR curves one panel per class (about half a figure each).
        writes = WRITE_SECONDS if self.figure_seconds is None else self.figure_seconds * (2 + self.num_classes / 2) + 0.5
        return per_image * ((0 if validated else self.n_val) + self.n_report) + writes

    def check(self, ddp: _Dist, validated: bool) -> tuple[bool, float]:
        """Whether training must stop now, and how far along the budget the run is (for the
        learning-rate schedule; 0 without a budget). Ranks must agree on both, so they use the
        latest clock and the largest reserve of all ranks."""
        if self.max_seconds is None:
            return False, 0.0
        clock, reserve = ddp.max(self.clock()), ddp.max(self.reserve(validated))
        return clock + reserve >= self.max_seconds, min(1.0, clock / max(1e-9, self.max_seconds - reserve))

    def remaining(self) -> float | None:
        return None if self.max_seconds is None else max(0.0, self.max_seconds - self.clock())


class _Progress:
    """A rich progress bar on a terminal, plain periodic lines otherwise. Counts are real
    optimizer updates out of the planned total; the ETA is the sooner of the steps' pace and
    the ``--max-seconds`` budget."""

    def __init__(self, enabled: bool, total: int, epochs: int, completed: int, last_map: float | None, budget: _Budget):
        self.enabled, self.total, self.epochs, self.budget = enabled, total, epochs, budget
        self.rich = enabled and sys.stdout.isatty()
        self.started = time.perf_counter()
        self.last_line = self.started
        self.first = completed
        if self.rich:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(), TextColumn("updates"),
                TextColumn("loss {task.fields[loss]}  val mAP {task.fields[map]}"), TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
            )
            self.task = self.bar.add_task("train", total=total, completed=completed, epoch=f"0/{epochs}", loss="-",
                                          map="-" if last_map is None else f"{last_map:.4f}", eta="-")

    def __enter__(self):
        if self.rich:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.rich:
            self.bar.__exit__(*exc)

    def eta(self, step: int) -> float | None:
        spent = time.perf_counter() - self.started
        by_steps = spent / (step - self.first) * (self.total - step) if step > self.first else None
        left = self.budget.remaining()
        if by_steps is None or left is None:
            return by_steps if left is None else left
        return min(by_steps, left)

    def update(self, step: int, epoch: int, loss: float | None = None, val_map: float | None = None, end_of_epoch: bool = False) -> None:
        if not self.enabled:
            return
        eta = self.eta(step)
        eta_text = "-" if eta is None else f"{eta:.0f}s"
        if self.rich:
            fields = {"epoch": f"{epoch}/{self.epochs}", "eta": eta_text}
            if loss is not None:
                fields["loss"] = f"{loss:.4f}"
            if val_map is not None:
                fields["map"] = f"{val_map:.4f}"
            self.bar.update(self.task, completed=step, **fields)
            return
        now = time.perf_counter()
        if end_of_epoch or now - self.last_line >= LOG_SECONDS:
            self.last_line = now
            parts = [f"epoch {epoch}/{self.epochs}", f"update {step}/{self.total}"]
            if loss is not None:
                parts.append(f"loss {loss:.4f}")
            if val_map is not None:
                parts.append(f"val mAP {val_map:.4f}")
            budget = "" if self.budget.max_seconds is None else f" of {self.budget.max_seconds:g}s"
            parts.append(f"elapsed {self.budget.clock():.0f}s{budget}, ETA {eta_text}")
            print("  ".join(parts), flush=True)


def choose_batch_size(requested: int | None, per_process: int) -> int:
    """``--batch-size``, or by default the largest up to 256 that still gives an epoch about
    :data:`TARGET_UPDATES_PER_EPOCH` updates (at least 8 images, data permitting)."""
    if requested is not None:
        return requested
    return max(1, min(per_process, max(MIN_AUTO_BATCH, min(MAX_AUTO_BATCH, per_process // TARGET_UPDATES_PER_EPOCH))))


def train(config: TrainConfig, already_spent: float = 0.0) -> dict | None:
    """Run training per ``config``; returns the ``metrics.json`` dict (``None`` on ranks other
    than 0, and when ``stop_after_epoch`` ends the run early). ``already_spent``: seconds the
    caller spent before (the CLI's start-up and imports), counted against ``max_seconds``."""
    started = time.perf_counter() - already_spent
    cfg = dataclasses.asdict(config)
    _check_config(cfg)
    device = pick_device(cfg["device"])
    out = Path(cfg["out"])
    refuse_output_in_data(out, cfg["data"], cfg.get("images"))
    created = not out.exists()
    prepare_run_folder(out, cfg["overwrite"], cfg["resume"])
    try:
        return _train(cfg, device, out, started)
    except BaseException:
        # A run that fails (bad data, interrupted) before writing anything leaves no empty --out.
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _train(cfg: dict, device: torch.device, out: Path, started: float) -> dict | None:
    ddp = _Dist(device)
    ckpt_path, last_path = out / CHECKPOINT, out / LAST
    resume_path = last_path if last_path.is_file() else ckpt_path
    resuming = cfg["resume"] and resume_path.is_file()

    splits, names, table = load_splits(cfg)
    threads, workers = cpu_plan(ddp.local_world, splits["train"].files is not None, cfg["threads"], cfg["workers"])
    torch.set_num_threads(threads)
    num_classes = len(names)
    if num_classes < 2:
        raise DatasetFormatError(_data_source(cfg), 0, f"only {num_classes} class ({', '.join(names) or 'none'}); multi-label training needs at least 2")
    kwargs = model_kwargs(cfg["model"], image_size=cfg["image_size"], **cfg["model_kwargs"])
    torch.manual_seed(cfg["seed"])
    model = create_reference_model(num_classes, cfg["model"], **kwargs)
    init_note, init_warning = load_init_weights(model, cfg["init_checkpoint"], names) if cfg["init_checkpoint"] and not resuming else (None, None)
    if init_warning and ddp.main:
        print(init_warning, file=sys.stderr)
    model = model.to(device)
    check_input_size(model, cfg["image_size"], cfg["model"], cfg["model_kwargs"])
    data_config = resolve_data_config(model, cfg["image_size"])
    for split in splits.values():
        if split.images is not None:
            split.images = normalise(split.images, data_config)
    train_transform = create_transform(data_config, training=True, augment=cfg["augment"])
    eval_transform = create_transform(data_config)
    train_split = splits["train"]

    from timm.optim import create_optimizer_v2
    from timm.scheduler import CosineLRScheduler

    optimizer = create_optimizer_v2(model, opt="adamw", lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    pos_weight = None
    if cfg["pos_weight"] == "auto":
        positives = (train_split.targets == 1).sum(0).float()
        negatives = (train_split.targets == 0).sum(0).float()
        pos_weight = (negatives / positives.clamp(min=1.0)).to(device)
    unknown = bool((train_split.targets < 0).any())
    criterion = _criterion(cfg, pos_weight, unknown)
    amp_dtype, scaler = _amp(cfg["amp"], device)
    mixup = _mixup(cfg, num_classes, unknown)
    ema = None
    if cfg["ema"] is not None:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=cfg["ema"])
    # What is validated, kept as best and reported: the EMA weights when --ema is on.
    eval_model = ema.module if ema is not None else model

    epoch, step, elapsed, history = 0, 0, 0.0, []
    best: dict | None = None  # {"mAP", "epoch", "step", "val_probs"} of the best validated model
    best_weights: dict | None = None
    bad_epochs = 0
    if resuming:
        state = read_run_checkpoint(resume_path)
        load_run_weights(model, state, resume_path, names, cfg["model"])
        if state["optimizer"] is not None:
            optimizer.load_state_dict(state["optimizer"])
        if ema is not None and state.get("ema") is not None:
            ema.module.load_state_dict(state["ema"])
        epoch, step, elapsed, history = state["epoch"], state["step"], state["elapsed_seconds"], list(state["history"])
        _set_rng_state(state["rng"])
        if state.get("best") is not None:
            best, bad_epochs = state["best"], state["bad_epochs"]
            best_weights = read_run_checkpoint(ckpt_path)["model"] if best["step"] != step else _copy_weights(eval_model)

    net = model
    if ddp.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    per_process = len(DistributedSampler(range(len(train_split)), num_replicas=ddp.world, rank=ddp.rank, drop_last=True))
    accum = cfg["accum_steps"]
    bs = choose_batch_size(cfg["batch_size"], per_process // accum)
    batches_per_epoch = per_process // bs
    steps_per_epoch = batches_per_epoch // accum
    if steps_per_epoch == 0:
        raise InputError(f"--batch-size {bs} x --accum-steps {accum} is larger than the {per_process} training images per process")
    if mixup is not None and bs % 2:
        raise InputError(f"--mixup/--cutmix pair each image with another: --batch-size must be even, got {bs}")
    if steps_per_epoch < MIN_UPDATES_PER_EPOCH and ddp.main:
        print(f"warning: {steps_per_epoch} update(s) per epoch (batch size {bs} x {accum} accumulated, {per_process} training images "
              f"per process); with fewer than {MIN_UPDATES_PER_EPOCH} the model barely moves in an epoch: pass a smaller --batch-size",
              file=sys.stderr)
    total_steps = cfg["epochs"] * steps_per_epoch
    if cfg["max_steps"] is not None:
        total_steps = min(total_steps, cfg["max_steps"])
    warmup_steps = int(cfg["warmup"] * total_steps)
    # The schedule is driven by update count; time-budgeted runs convert elapsed time to an
    # equivalent count, so the cosine follows the clock.
    scheduler = CosineLRScheduler(optimizer, t_initial=max(1, total_steps - warmup_steps), warmup_t=warmup_steps,
                                  warmup_prefix=True, t_in_epochs=False, lr_min=0.0)
    if init_note and ddp.main and cfg["progress"]:
        print(init_note, flush=True)

    tune_split, report_split, eval_splits = _tune_and_report_splits(splits)
    budget = _Budget(cfg["max_seconds"], elapsed + (time.perf_counter() - started),
                     len(splits["val"]), len(eval_splits[report_split]) if report_split == "test" else 0, num_classes)
    last_map = history[-1]["val_mAP"] if history else None
    progress = _Progress(cfg["progress"] and ddp.main, total_steps, cfg["epochs"], step, last_map, budget)
    val_data = splits["val"].dataset(eval_transform, names)
    stopped = "epochs"
    if ddp.main:
        write_text(out / "config.yaml", config_yaml(cfg))
        if cfg["max_seconds"] is not None:
            # Timed once before training (matplotlib's import included, so on the safe side): a
            # one-epoch run has no epoch plot to size the final plots from.
            plot_start = time.perf_counter()
            plot_training_curves(out / "training_curves.png", history)
            budget.figure_seconds = time.perf_counter() - plot_start
    board = _board(out, epoch) if cfg["tensorboard"] and ddp.main else None

    with progress:
        while True:
            if epoch >= cfg["epochs"]:
                break
            if step >= total_steps:
                stopped = "max_steps"
                break
            if budget.check(ddp, validated=True)[0]:
                stopped = "max_seconds"
                break
            net.train()
            epoch_start = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            steps_done = micro = 0
            optimizer.zero_grad(set_to_none=True)
            for x, y in _epoch_batches(train_split, names, train_transform, bs, workers, cfg["seed"], epoch, ddp, batches_per_epoch, device):
                if micro == 0:  # the first micro-batch of an update
                    if step >= total_steps or steps_done >= steps_per_epoch:
                        break
                    out_of_time, spent = budget.check(ddp, validated=False)
                    if out_of_time:
                        stopped = "max_seconds"
                        break
                    scheduler.step_update(num_updates=round(max(step / total_steps, spent) * total_steps))
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                if mixup is not None:
                    x, y = _mix(mixup, x, y)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    loss = criterion(net(x), y) / accum
                (scaler.scale(loss) if scaler is not None else loss).backward()
                loss_sum += loss.detach()
                micro += 1
                if micro < accum:
                    continue
                micro = 0
                if cfg["clip_grad"] is not None:
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip_grad"])
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if ema is not None:
                    ema.update(model, step=step)
                steps_done += 1
                budget.train_per_image = (time.perf_counter() - epoch_start) / (steps_done * bs * accum)
                if step % cfg["log_every"] == 0:
                    progress.update(step, epoch + 1, loss=loss.item() * accum)
            train_seconds = time.perf_counter() - epoch_start
            if steps_done == 0:
                break
            val_start = time.perf_counter()
            val_probs = predict_dataset(eval_model, val_data, device, ddp, batch_size=max(bs, 256), workers=workers)
            budget.eval_per_image = (time.perf_counter() - val_start) / max(1, len(splits["val"]))
            val_map = multilabel_metrics(val_probs, splits["val"].targets, 0.5, names)["mAP"]
            epoch += 1
            elapsed = budget.clock()
            history.append(
                {
                    "epoch": epoch,
                    "step": step,
                    "elapsed_seconds": elapsed,
                    "train_seconds": train_seconds,
                    "images_per_second": steps_done * bs * accum * ddp.world / train_seconds,
                    "lr": optimizer.param_groups[0]["lr"],
                    "train_loss": float(loss_sum.item()) / steps_done,
                    "val_mAP": val_map,
                }
            )
            if best is None or val_map > best["mAP"]:
                best, best_weights, bad_epochs = {"mAP": val_map, "epoch": epoch, "step": step, "val_probs": val_probs}, _copy_weights(eval_model), 0
                if ddp.main:
                    save_checkpoint(ckpt_path, _checkpoint(cfg, names, kwargs, data_config, eval_model, None, epoch, step, elapsed, history, None))
            else:
                bad_epochs += 1
            progress.update(step, epoch, loss=history[-1]["train_loss"], val_map=val_map, end_of_epoch=True)
            if ddp.main:
                last = _checkpoint(cfg, names, kwargs, data_config, model, optimizer, epoch, step, elapsed, history, None)
                save_checkpoint(last_path, dict(last, best=best, bad_epochs=bad_epochs,
                                                ema=ema.module.state_dict() if ema is not None else None))
                _write_epochs_csv(out / EPOCHS_CSV, history)
                # Plotted each epoch (a live view of the run) and timed, to size the final plots.
                plot_start = time.perf_counter()
                plot_training_curves(out / "training_curves.png", history)
                budget.figure_seconds = time.perf_counter() - plot_start
                if board is not None:
                    for key in ("train_loss", "val_mAP", "lr", "images_per_second"):
                        board.add_scalar(key.replace("_", "/", 1) if key != "lr" else "train/lr", history[-1][key], step)
                    board.flush()
            ddp.barrier()
            if cfg["patience"] is not None and bad_epochs >= cfg["patience"]:
                stopped = "patience"
                break
            if cfg["stop_after_epoch"] is not None and epoch >= cfg["stop_after_epoch"] and epoch < cfg["epochs"]:
                if board is not None:
                    board.close()
                return None
            if stopped == "max_seconds":
                break
    if board is not None:
        board.close()

    if best is None:
        # No update ran (the budget was spent before the first): report the model as it is.
        val_probs = predict_dataset(model, val_data, device, ddp, batch_size=max(bs, 256), workers=workers)
        best = {"mAP": multilabel_metrics(val_probs, splits["val"].targets, 0.5, names)["mAP"], "epoch": epoch, "step": step, "val_probs": val_probs}
    elif best["step"] != step or ema is not None:
        model.load_state_dict(best_weights)
    # The best model's validation pass serves for tuning (and for reporting without a test
    # split), so the final validation is not run again.
    val_probs = best["val_probs"]
    if tune_split == "val":
        tune_probs = val_probs
        report_probs = predict_dataset(model, eval_splits[report_split].dataset(eval_transform, names), device, ddp, workers=workers)
    else:
        tune_probs, report_probs = val_probs[0::2], val_probs[1::2]
    tune_targets = eval_splits[tune_split].targets
    thresholds = tune_thresholds(tune_probs, tune_targets)
    report_targets = eval_splits[report_split].targets
    if not ddp.main:
        ddp.barrier()
        return None

    support = (tune_targets == 1).sum(0)
    few = {names[j]: int(support[j]) for j in range(num_classes) if support[j] < MIN_TUNING_POSITIVES}
    at_half = multilabel_metrics(report_probs, report_targets, 0.5, names)
    at_tuned = multilabel_metrics(report_probs, report_targets, thresholds, names)
    worse = [a["class"] for a, t in zip(at_half["per_class"], at_tuned["per_class"]) if t["F1"] < a["F1"]]
    result = {
        "schema_version": METRICS_SCHEMA_VERSION,
        "threshold_rule": THRESHOLD_RULE,
        "run": {
            "data": _data_source(cfg),
            "class_names": names,
            "model": cfg["model"],
            "model_kwargs": kwargs,
            "image_size": cfg["image_size"],
            "data_config": data_config,
            "epochs_completed": epoch,
            "steps": step,
            "batch_size": bs,
            "steps_per_epoch": steps_per_epoch,
            "stopped_by": stopped,
            "best_epoch": best["epoch"],
            "best_step": best["step"],
            "best_val_mAP": best["mAP"],
            "elapsed_seconds": budget.clock(),
            "images_per_second": sum(h["images_per_second"] * h["train_seconds"] for h in history) / max(1e-9, sum(h["train_seconds"] for h in history)),
            "world_size": ddp.world,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "workers": workers,
            "seed": cfg["seed"],
            "torch_version": torch.__version__,
        },
        "tuned_on": tune_split,
        "reported_on": report_split,
        "few_positive_classes": few,
        "tuned_worse_than_0.5": {"classes": worse, "F1_macro_at_0.5": at_half["F1_macro"], "F1_macro_at_tuned": at_tuned["F1_macro"]},
        "tuning_at_0.5": multilabel_metrics(tune_probs, tune_targets, 0.5, names),
        "report_at_0.5": at_half,
        "report_at_tuned": at_tuned,
        "history": history,
    }
    thresholds_doc = {"threshold_rule": THRESHOLD_RULE, "tuned_on": tune_split, "objective": "per-class F1", "class_names": names, "thresholds": thresholds.tolist()}
    save_checkpoint(ckpt_path, _checkpoint(cfg, names, kwargs, data_config, model, None, best["epoch"], best["step"], elapsed, history, thresholds.tolist()))
    write_json(out / "metrics.json", result)
    write_json(out / "thresholds.json", thresholds_doc)
    write_text(out / "classes.txt", "".join(f"{name}\n" for name in names))
    if table is not None and table[1] is not None:
        _write_splits(out / "splits.csv", table[0], table[1])
    plot_pr_curves(out / "pr_curves.png", report_probs, report_targets, names, thresholds, at_tuned["per_class"], report_split)
    plot_thresholds(out / "thresholds.png", names, thresholds, [r["F1"] for r in at_tuned["per_class"]], [r["F1"] for r in at_half["per_class"]])
    plot_training_curves(out / "training_curves.png", history)
    if cfg["progress"]:
        _print_report(at_half, at_tuned, f"{report_split} split (thresholds tuned on {tune_split}; best epoch {best['epoch']})", out)
    _print_threshold_notes(few, tune_split, worse if cfg["progress"] else [], at_half, at_tuned, report_split)
    _warn_if_nothing_clears_half(report_probs, report_split, step)
    ddp.barrier()
    return result


def _criterion(cfg: dict, pos_weight: torch.Tensor | None, unknown: bool) -> torch.nn.Module:
    """``--loss``: BCE (masked when some cells are unknown) or timm's asymmetric loss."""
    if cfg["loss"] == "asl":
        from timm.loss import AsymmetricLossMultiLabel

        if unknown:
            raise InputError("--loss asl cannot leave uncertain cells out: use --uncertain zeros|ones, or --loss bce")
        if pos_weight is not None:
            raise InputError("--pos-weight auto weighs BCE; --loss asl weighs positives and negatives itself (gamma_pos/gamma_neg)")
        return AsymmetricLossMultiLabel()
    return MaskedBCEWithLogits(pos_weight) if unknown else torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)


def _amp(amp: str, device: torch.device) -> tuple[torch.dtype | None, Any]:
    """``--amp``: the ``torch.autocast`` dtype, and a GradScaler for fp16 (whose gradients can underflow)."""
    if amp == "none":
        return None, None
    if amp == "fp16":
        if device.type != "cuda":
            raise InputError(f"--amp fp16 needs a CUDA device (this run uses {device}); use --amp bf16")
        return torch.float16, torch.amp.GradScaler("cuda")
    return torch.bfloat16, None


def _mixup(cfg: dict, num_classes: int, unknown: bool):
    """timm's ``Mixup`` for ``--mixup``/``--cutmix`` (alpha values; 0 turns one off)."""
    if not (cfg["mixup"] or cfg["cutmix"]):
        return None
    if unknown:
        raise InputError("--mixup/--cutmix blend targets, which unknown cells (--uncertain ignore) cannot take part in: "
                         "use --uncertain zeros|ones")
    from timm.data import Mixup

    return Mixup(mixup_alpha=cfg["mixup"], cutmix_alpha=cfg["cutmix"], label_smoothing=0.0, num_classes=num_classes)


def _mix(mixup, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Blend each image with the batch's mirror image (timm mixes ``x`` in place and returns
    lambda, area-corrected for cutmix); the multi-hot targets are blended with the same lambda,
    since timm's own target mixing one-hot encodes class indices."""
    lam = mixup._mix_batch(x)
    return x, y * lam + y.flip(0) * (1.0 - lam)


def _board(out: Path, epoch: int):
    """A TensorBoard ``SummaryWriter`` on ``OUT/tensorboard`` (``--tensorboard``)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("--tensorboard needs the tensorboard package: pip install 'migrate-ml[runtime-extras]'") from None
    # A resumed run's writer drops events past the last epoch it resumes from.
    return SummaryWriter(log_dir=str(out / "tensorboard"), purge_step=epoch or None)


def _write_epochs_csv(path: Path, history: list[dict]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(history[-1]), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buffer.getvalue())


# Options of a run that say where and how to run it, not what to train: not in config.yaml.
_NOT_IN_CONFIG = ("out", "overwrite", "resume", "stop_after_epoch", "progress", "device")


def config_yaml(cfg: dict) -> str:
    """The run's options as YAML (``OUT/config.yaml``), for ``reference train --config``."""
    import yaml

    kept = {k: v for k, v in cfg.items() if k not in _NOT_IN_CONFIG}
    return "# reference train options; rerun with: migrate-ml reference train --config config.yaml --out NEW_RUN\n" + \
        yaml.safe_dump(kept, sort_keys=False)


def read_config(path: str | os.PathLike) -> dict:
    """A ``config.yaml`` (or any YAML/JSON mapping of :class:`TrainConfig` fields), validated."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the config: {getattr(err, 'strerror', None) or err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise InputError(f"{path}:{mark.line + 1 if mark else 0}: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a mapping of option names to values")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InputError(f"{path}: unknown option(s) {', '.join(unknown)} (expected {TrainConfig.__name__} fields, e.g. lr, epochs)")
    return doc


def _warn_if_nothing_clears_half(probs: torch.Tensor, split: str, steps: int) -> None:
    if not bool((probs > 0.5).any()):
        print(f"warning: no class scores above 0.5 on any {split} image after {steps} updates: at the default threshold "
              "the model predicts no labels; train longer (--epochs, --max-steps, --max-seconds) or pass a smaller --batch-size",
              file=sys.stderr)


def _copy_weights(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _epoch_batches(split: Split, names, transform, bs: int, workers: int, seed: int, epoch: int, ddp: _Dist, steps: int, device):
    """This epoch's training batches, in the order fixed by ``(seed, epoch)``."""
    if split.images is not None:
        # In memory: index the tensors directly (no per-item collate).
        sampler = DistributedSampler(range(len(split)), num_replicas=ddp.world, rank=ddp.rank, shuffle=True, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), dtype=torch.long)
        for i in range(steps):
            idx = order[i * bs : (i + 1) * bs]
            yield split.images[idx], split.targets[idx]
        return
    data, _ = loader(split.dataset(transform, names), bs, workers, shuffle=True, drop_last=True, seed=seed, epoch=epoch,
                     world=ddp.world, rank=ddp.rank, pin_memory=device.type == "cuda")
    yield from data


def _write_splits(path: Path, table, names: list[str]) -> None:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("image", "split"))
    writer.writerows(zip(table.files, names))
    write_text(path, buffer.getvalue())


def _check_config(cfg: dict) -> None:
    for key in ("batch_size", "epochs", "image_size", "n_train", "n_val", "n_test", "max_steps", "patience"):
        if cfg[key] is not None and cfg[key] < 1:
            raise InputError(f"--{key.replace('_', '-')} must be at least 1, got {cfg[key]}")
    for key in ("val_fraction", "test_fraction"):
        if not 0.0 <= cfg[key] < 1.0:
            raise InputError(f"--{key.replace('_', '-')} must be in [0, 1), got {cfg[key]}")
    for key, choices in (("loss", ("bce", "asl")), ("amp", ("none", "bf16", "fp16"))):
        if cfg[key] not in choices:
            raise InputError(f"--{key} must be one of {', '.join(choices)}, got {cfg[key]!r}")
    if cfg["accum_steps"] < 1:
        raise InputError(f"--accum-steps must be at least 1, got {cfg['accum_steps']}")
    if cfg["ema"] is not None and not 0.0 < cfg["ema"] < 1.0:
        raise InputError(f"--ema must be a decay in (0, 1), e.g. 0.999, got {cfg['ema']}")
    for key in ("clip_grad", "mixup", "cutmix"):
        if cfg[key] is not None and cfg[key] < 0:
            raise InputError(f"--{key.replace('_', '-')} must not be negative, got {cfg[key]}")
    if cfg["uncertain"] not in UNCERTAIN:
        raise InputError(f"--uncertain must be one of {', '.join(UNCERTAIN)}, got {cfg['uncertain']!r}")
    if cfg["augment"] not in AUGMENTS:
        raise InputError(f"--augment must be one of {', '.join(AUGMENTS)}, got {cfg['augment']!r}")


def _print_report(at_half: dict, at_tuned: dict | None, title: str, out: Path | None) -> None:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # rich assumes 80 columns when piped; the table needs more
        console = Console(width=120)
    console.print(per_class_table(at_half, at_tuned, title))
    console.print(summary_line("at 0.5  ", at_half))
    if at_tuned is not None:
        console.print(summary_line("at tuned", at_tuned))
    if out is not None:
        console.print(f"run folder: {out}")


def _print_threshold_notes(few: dict, tune_split: str, worse: list[str], at_half: dict, at_tuned: dict, report_split: str) -> None:
    if few:
        listed = ", ".join(f"{name!r} ({count})" for name, count in few.items())
        print(f"warning: fewer than {MIN_TUNING_POSITIVES} positives on {tune_split} for {listed}: "
              "their tuned thresholds are unreliable", file=sys.stderr)
    if worse:
        print(f"note: on {report_split}, tuned thresholds did worse than 0.5 for {len(worse)} class(es) "
              f"({', '.join(map(repr, worse))}); macro F1 {at_half['F1_macro']:.4f} at 0.5 vs {at_tuned['F1_macro']:.4f} tuned")


def _checkpoint(cfg, names, kwargs, data_config, model, optimizer, epoch, step, elapsed, history, thresholds) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "config": cfg,
        "class_names": names,
        "model_name": cfg["model"],
        "model_kwargs": kwargs,
        "data_config": data_config,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "epoch": epoch,
        "step": step,
        "elapsed_seconds": elapsed,
        "history": history,
        "rng": _rng_state(),
        "thresholds": thresholds,
    }


def read_thresholds(path: str | os.PathLike, names: list[str]) -> list[float]:
    """A ``thresholds.json`` for ``names``, or :class:`CheckpointError` naming the path."""
    import json

    if file_kind(path):
        raise CheckpointError(f"{path}: thresholds file {file_kind(path)}")
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: cannot read thresholds: {str(err).splitlines()[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("thresholds"), list):
        raise CheckpointError(f"{path}: no 'thresholds' list (expected the thresholds.json a run writes)")
    if doc.get("class_names", names) != names:
        raise CheckpointError(f"{path}: class names differ from the checkpoint's")
    values = doc["thresholds"]
    if len(values) != len(names):
        raise CheckpointError(f"{path}: expected {len(names)} thresholds (one per class), got {len(values)}")
    for name, value in zip(names, values):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise CheckpointError(f"{path}: threshold of class {name!r} is {value!r}: expected a number in [0, 1]")
    return [float(v) for v in values]


def evaluate(
    checkpoint: str,
    data: str | None = None,
    sample: str | None = None,
    split: str | None = None,
    thresholds_path: str | None = None,
    out: str | None = None,
    device: str | None = None,
    show: bool = True,
    workers: int | None = None,
    overwrite: bool = True,
    **data_options,
) -> dict:
    """Evaluate a saved run at 0.5 and at the run's tuned thresholds.

    Data defaults to what the run trained on (its test split). Other labelled data (any
    format :func:`read_labels` takes) is evaluated on its ``split`` when named, else its test
    split if it has one, else every row. Thresholds come from ``thresholds_path``, else the
    checkpoint, else ``thresholds.json`` beside it. Returns ``{"checkpoint", "data", "split",
    "threshold_rule", "at_0.5", "at_tuned"}`` (``at_tuned`` is ``None`` without thresholds)
    and writes it to ``out/eval.json``.
    """
    checkpoint = run_checkpoint_path(checkpoint)
    state = read_run_checkpoint(checkpoint)
    names = list(state["class_names"])
    cfg = dict(state["config"])
    if data is not None:
        cfg.update(data=data, images=None, image_col=None, labels_col=None, label_sep=None, image_ext=None)
        cfg.update({k: v for k, v in data_options.items() if v is not None})
    elif sample is not None:
        cfg["data"], cfg["sample"] = None, sample
    if out is not None:
        refuse_output_in_data(out, cfg.get("data"), cfg.get("images"))
    if out is not None and (Path(out) / "eval.json").exists() and not overwrite:
        raise InputError(f"{Path(out) / 'eval.json'}: exists; pass --overwrite to replace it")
    dev = pick_device(device)
    eval_split, eval_name = _eval_split(cfg, split, names, own_data=data is None and sample is None)
    model = create_reference_model(len(names), state["model_name"], **state["model_kwargs"])
    model.load_state_dict(state["model"])
    model = model.to(dev)
    data_config = state.get("data_config") or legacy_data_config(cfg["image_size"])
    if eval_split.images is not None:
        eval_split.images = normalise(eval_split.images, data_config)
    thresholds = state["thresholds"]
    side = Path(checkpoint).with_name("thresholds.json")
    if thresholds_path is not None or (thresholds is None and side.is_file()):
        thresholds = read_thresholds(thresholds_path or side, names)
    probs = predict_dataset(model, eval_split.dataset(create_transform(data_config), names), dev,
                            workers=cpu_plan(1, eval_split.files is not None, workers=workers)[1])
    result = {
        "checkpoint": str(checkpoint),
        "data": _data_source(cfg),
        "split": eval_name,
        "threshold_rule": THRESHOLD_RULE,
        "at_0.5": multilabel_metrics(probs, eval_split.targets, 0.5, names),
        "at_tuned": multilabel_metrics(probs, eval_split.targets, torch.tensor(thresholds), names) if thresholds is not None else None,
    }
    if out is not None:
        write_json(Path(out) / "eval.json", result)
    if show:
        _print_report(result["at_0.5"], result["at_tuned"], f"{eval_name if eval_name == 'all' else eval_name + ' split'} of {result['data']}", Path(out) if out else None)
    return result


def _eval_split(cfg: dict, split: str | None, names: list[str], own_data: bool) -> tuple[Split, str]:
    if not cfg.get("data"):
        splits, _, _ = load_splits(cfg)
        split = split or "test"
        if split not in splits:
            raise InputError(f"{_data_source(cfg)}: no {split!r} split")
        return splits[split], split
    table = _read_table(cfg, names)
    if own_data:
        # The run's own data: its splits, as training assigned them (seeded, so reproducible).
        row_names, _ = _row_splits(cfg, table)
    else:
        row_names = table.splits if table.splits is not None and any(table.splits) else None
    if split is None:
        split = "test" if row_names is not None and "test" in row_names else None
    if split is None:
        return Split(label_targets(table, cfg.get("uncertain", "ignore")), files=table.files), "all"
    if row_names is None:
        raise DatasetFormatError(table.source, 0, f"split {split!r} requested but the data has no split column or split folders")
    rows = [i for i, s in enumerate(row_names) if s == split]
    if not rows:
        raise DatasetFormatError(table.source, 0, f"no rows for split {split!r}")
    sub = table.subset(rows)
    return Split(label_targets(sub, cfg.get("uncertain", "ignore")), files=sub.files), split
