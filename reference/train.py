"""Reference multi-label training and evaluation (``migrate-ml reference train|eval``).

BCEWithLogitsLoss, AdamW (timm's optimizer factory, no weight decay on norms and biases) and a
linear-warmup cosine schedule. Data lives in memory as tensors; each epoch's order comes from
``DistributedSampler`` seeded by ``(seed, epoch)``, so an epoch is the same whether the run is
fresh, resumed, single-process or one of several ``torchrun`` ranks. Checkpoints hold tensors
and plain containers only and are loaded with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from .metrics import gather_rows, multilabel_metrics, tune_thresholds
from .model import DEFAULT_MODEL, create_reference_model, model_kwargs
from .report import (
    load_checkpoint,
    per_class_table,
    plot_pr_curves,
    plot_thresholds,
    plot_training_curves,
    save_checkpoint,
    summary_line,
    write_json,
)

CHECKPOINT = "checkpoint.pt"
METRICS_SCHEMA_VERSION = 1
THRESHOLD_RULE = "prob > threshold"


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
    batch_size: int = 256
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


def _pick_device(name: str | None) -> torch.device:
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def _default_threads(local_world: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // local_world)


def _data_source(cfg: dict) -> str:
    return str(cfg["data"]) if cfg.get("data") else f"sample:{cfg['sample']}"


def load_splits(cfg: dict) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """``{split: (images, targets)}`` for train/val(/test) and the class names, per ``cfg``."""
    if cfg.get("data"):
        from .dataset import has_split, load_tensors, open_dataset

        splits, names = {}, None
        for split in ("train", "val", "test"):
            if split == "test" and not has_split(cfg["data"], split):
                continue
            ds = open_dataset(cfg["data"], split)
            if names is not None and ds.classes != names:
                raise ValueError(f"{cfg['data']}: split {split!r} has different classes from train")
            names = ds.classes
            splits[split] = load_tensors(ds, cfg["image_size"])
        return splits, names
    from .sample import make_sample_tensors

    splits = {}
    for split in ("train", "val", "test"):
        images, targets, names = make_sample_tensors(cfg["sample"], cfg[f"n_{split}"], cfg["image_size"], cfg["seed"], split)
        splits[split] = (images, targets)
    return splits, names


def _tune_and_report_splits(splits: dict) -> tuple[str, str, dict]:
    """Thresholds are tuned on val and reported on test; without a test split, val is halved."""
    if "test" in splits:
        return "val", "test", splits
    images, targets = splits["val"]
    halves = dict(splits)
    halves["val[0::2]"] = (images[0::2], targets[0::2])
    halves["val[1::2]"] = (images[1::2], targets[1::2])
    return "val[0::2]", "val[1::2]", halves


def _lr_factor(progress: float, warmup: float) -> float:
    if progress < warmup:
        return progress / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - warmup) / max(1e-12, 1.0 - warmup))))


@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, device: torch.device, ddp: _Dist | None = None, batch_size: int = 1024) -> torch.Tensor:
    """Sigmoid probabilities ``[N, C]`` for ``images``; under torchrun each rank scores a shard
    and the result is gathered, identical on every rank."""
    model.eval()
    world, rank = (ddp.world, ddp.rank) if ddp is not None else (1, 0)
    n = images.shape[0]
    index = torch.tensor(list(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False)), dtype=torch.long)
    probs = []
    for start in range(0, len(index), batch_size):
        idx = index[start : start + batch_size]
        probs.append(torch.sigmoid(model(images[idx].to(device)).float()).cpu())
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


def train(config: TrainConfig) -> dict | None:
    """Run training per ``config``; returns the ``metrics.json`` dict (``None`` on ranks other
    than 0, and when ``stop_after_epoch`` ends the run early)."""
    cfg = dataclasses.asdict(config)
    device = _pick_device(cfg["device"])
    ddp = _Dist(device)
    torch.set_num_threads(cfg["threads"] or _default_threads(ddp.local_world))
    out = Path(cfg["out"])
    ckpt_path = out / CHECKPOINT

    splits, names = load_splits(cfg)
    num_classes = len(names)
    train_x, train_y = splits["train"]
    kwargs = model_kwargs(cfg["model"], image_size=cfg["image_size"], **cfg["model_kwargs"])
    torch.manual_seed(cfg["seed"])
    model = create_reference_model(num_classes, cfg["model"], **kwargs).to(device)

    from timm.optim import create_optimizer_v2

    optimizer = create_optimizer_v2(model, opt="adamw", lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    pos_weight = None
    if cfg["pos_weight"] == "auto":
        positives = train_y.sum(0)
        pos_weight = ((len(train_y) - positives) / positives.clamp(min=1.0)).to(device)
    criterion = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    epoch, step, elapsed, history = 0, 0, 0.0, []
    if cfg["resume"] and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, elapsed, history = state["epoch"], state["step"], state["elapsed_seconds"], list(state["history"])
        _set_rng_state(state["rng"])

    net = model
    if ddp.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    sampler = DistributedSampler(range(len(train_x)), num_replicas=ddp.world, rank=ddp.rank, shuffle=True, seed=cfg["seed"], drop_last=True)
    bs = cfg["batch_size"]
    steps_per_epoch = len(sampler) // bs
    if steps_per_epoch == 0:
        raise ValueError(f"batch size {bs} is larger than the {len(sampler)} training images per process")
    total_steps = cfg["epochs"] * steps_per_epoch
    val_x, val_y = splits["val"]

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  val mAP {task.fields[map]}"),
        TimeElapsedColumn(),
        disable=not (cfg["progress"] and ddp.main),
    )
    last_map = history[-1]["val_mAP"] if history else None
    task = progress.add_task("train", total=total_steps, completed=step, epoch=epoch, loss="-", map="-" if last_map is None else f"{last_map:.4f}")
    out_of_time = cfg["max_seconds"] is not None and elapsed >= cfg["max_seconds"]

    with progress:
        while epoch < cfg["epochs"] and not out_of_time:
            net.train()
            sampler.set_epoch(epoch)
            order = torch.tensor(list(sampler), dtype=torch.long)
            epoch_start = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            steps_done = 0
            for i in range(steps_per_epoch):
                now = elapsed + time.perf_counter() - epoch_start
                frac = step / total_steps
                if cfg["max_seconds"] is not None:
                    # Ranks must agree on the lr and on when to stop, so they share the clock.
                    now = ddp.max(now)
                    if now >= cfg["max_seconds"]:
                        out_of_time = True
                        break
                    frac = max(frac, now / cfg["max_seconds"])
                for group in optimizer.param_groups:
                    group["lr"] = cfg["lr"] * _lr_factor(frac, cfg["warmup"])
                idx = order[i * bs : (i + 1) * bs]
                x = train_x[idx].to(device, non_blocking=True)
                y = train_y[idx].to(device, non_blocking=True)
                loss = criterion(net(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach()
                step += 1
                steps_done += 1
                if step % cfg["log_every"] == 0:
                    progress.update(task, completed=step, epoch=epoch + 1, loss=f"{loss.item():.4f}")
            train_seconds = time.perf_counter() - epoch_start
            if steps_done == 0:
                break
            probs = predict(model, val_x, device, ddp)
            val_map = multilabel_metrics(probs, val_y, 0.5, names)["mAP"]
            epoch += 1
            elapsed += time.perf_counter() - epoch_start
            history.append(
                {
                    "epoch": epoch,
                    "step": step,
                    "elapsed_seconds": elapsed,
                    "train_seconds": train_seconds,
                    "images_per_second": steps_done * bs * ddp.world / train_seconds,
                    "train_loss": float(loss_sum.item()) / steps_done,
                    "val_mAP": val_map,
                }
            )
            progress.update(task, completed=step, epoch=epoch, loss=f"{history[-1]['train_loss']:.4f}", map=f"{val_map:.4f}")
            if ddp.main:
                save_checkpoint(ckpt_path, _checkpoint(cfg, names, kwargs, model, optimizer, epoch, step, elapsed, history, None))
            ddp.barrier()
            if cfg["stop_after_epoch"] is not None and epoch >= cfg["stop_after_epoch"] and epoch < cfg["epochs"]:
                return None

    tune_split, report_split, eval_splits = _tune_and_report_splits(splits)
    tune_probs = predict(model, eval_splits[tune_split][0], device, ddp)
    tune_targets = eval_splits[tune_split][1]
    thresholds = tune_thresholds(tune_probs, tune_targets)
    report_probs = predict(model, eval_splits[report_split][0], device, ddp)
    report_targets = eval_splits[report_split][1]
    if not ddp.main:
        ddp.barrier()
        return None

    result = {
        "schema_version": METRICS_SCHEMA_VERSION,
        "threshold_rule": THRESHOLD_RULE,
        "run": {
            "data": _data_source(cfg),
            "class_names": names,
            "model": cfg["model"],
            "model_kwargs": kwargs,
            "image_size": cfg["image_size"],
            "epochs_completed": epoch,
            "steps": step,
            "elapsed_seconds": elapsed,
            "images_per_second": sum(h["images_per_second"] * h["train_seconds"] for h in history) / max(1e-9, sum(h["train_seconds"] for h in history)),
            "world_size": ddp.world,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "seed": cfg["seed"],
            "torch_version": torch.__version__,
        },
        "tuned_on": tune_split,
        "reported_on": report_split,
        "tuning_at_0.5": multilabel_metrics(tune_probs, tune_targets, 0.5, names),
        "report_at_0.5": multilabel_metrics(report_probs, report_targets, 0.5, names),
        "report_at_tuned": multilabel_metrics(report_probs, report_targets, thresholds, names),
        "history": history,
    }
    thresholds_doc = {"threshold_rule": THRESHOLD_RULE, "tuned_on": tune_split, "objective": "per-class F1", "class_names": names, "thresholds": thresholds.tolist()}
    save_checkpoint(ckpt_path, _checkpoint(cfg, names, kwargs, model, optimizer, epoch, step, elapsed, history, thresholds.tolist()))
    write_json(out / "metrics.json", result)
    write_json(out / "thresholds.json", thresholds_doc)
    plot_pr_curves(out / "pr_curves.png", report_probs, report_targets, names, thresholds)
    plot_thresholds(out / "thresholds.png", names, thresholds, [r["F1"] for r in result["report_at_tuned"]["per_class"]], [r["F1"] for r in result["report_at_0.5"]["per_class"]])
    plot_training_curves(out / "training_curves.png", history)
    if cfg["progress"]:
        _print_report(result["report_at_0.5"], result["report_at_tuned"], f"{report_split} split (thresholds tuned on {tune_split})", out)
    ddp.barrier()
    return result


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


def _checkpoint(cfg, names, kwargs, model, optimizer, epoch, step, elapsed, history, thresholds) -> dict:
    return {
        "format": "migrate-ml-reference-checkpoint/1",
        "config": cfg,
        "class_names": names,
        "model_name": cfg["model"],
        "model_kwargs": kwargs,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "step": step,
        "elapsed_seconds": elapsed,
        "history": history,
        "rng": _rng_state(),
        "thresholds": thresholds,
    }


def evaluate(
    checkpoint: str,
    data: str | None = None,
    sample: str | None = None,
    split: str = "test",
    thresholds_path: str | None = None,
    out: str | None = None,
    device: str | None = None,
    show: bool = True,
) -> dict:
    """Evaluate a saved run on a split, at 0.5 and at the run's tuned thresholds.

    Data defaults to what the run trained on. Thresholds come from ``thresholds_path``, else
    the checkpoint (written there at the end of training), else ``thresholds.json`` beside it.
    Returns ``{"checkpoint", "data", "split", "threshold_rule", "at_0.5", "at_tuned"}``
    (``at_tuned`` is ``None`` when no thresholds exist) and writes it to ``out/eval.json``.
    """
    import json

    state = load_checkpoint(checkpoint)
    cfg = dict(state["config"])
    if data is not None:
        cfg["data"] = data
    elif sample is not None:
        cfg["data"], cfg["sample"] = None, sample
    splits, names = load_splits(cfg)
    if split not in splits:
        raise ValueError(f"{_data_source(cfg)}: no {split!r} split")
    if names != list(state["class_names"]):
        raise ValueError(f"{_data_source(cfg)}: classes {names} differ from the checkpoint's {list(state['class_names'])}")
    dev = _pick_device(device)
    model = create_reference_model(len(names), state["model_name"], **state["model_kwargs"]).to(dev)
    model.load_state_dict(state["model"])
    thresholds = state["thresholds"]
    side = Path(checkpoint).with_name("thresholds.json")
    if thresholds_path is not None or (thresholds is None and side.is_file()):
        doc = json.loads(Path(thresholds_path or side).read_text(encoding="utf-8"))
        if doc["class_names"] != names:
            raise ValueError(f"{thresholds_path or side}: class names differ from the checkpoint's")
        thresholds = doc["thresholds"]
    images, targets = splits[split]
    probs = predict(model, images, dev)
    result = {
        "checkpoint": str(checkpoint),
        "data": _data_source(cfg),
        "split": split,
        "threshold_rule": THRESHOLD_RULE,
        "at_0.5": multilabel_metrics(probs, targets, 0.5, names),
        "at_tuned": multilabel_metrics(probs, targets, torch.tensor(thresholds), names) if thresholds is not None else None,
    }
    if out is not None:
        write_json(Path(out) / "eval.json", result)
    if show:
        _print_report(result["at_0.5"], result["at_tuned"], f"{split} split of {result['data']}", Path(out) if out else None)
    return result
