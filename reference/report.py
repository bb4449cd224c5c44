"""Run-folder outputs: atomic JSON/checkpoint writes, the rich per-class table, PNG plots."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence

import torch


def atomic_write_bytes(path: str | os.PathLike, write) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, then rename it over ``path``.

    A reader (or a resumed run after a crash) sees the old file or the new one, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _signals_held():
        _write_and_replace(path, write)


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C (or SIGTERM) while a run file is written waits until it is in place: an interrupt
    inside ``torch.save``'s zip writer surfaced as a traceback and left a temporary file.

    The signals are recorded by a handler and raised again afterwards (a signal mask would not
    do: torch's threads would take the signal for the process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    held = [signal.SIGINT, signal.SIGTERM]
    previous = [signal.signal(number, lambda number, _frame: pending.append(number)) for number in held]
    try:
        yield
    finally:
        for number, handler in zip(held, previous):
            signal.signal(number, handler)
        for number in pending[:1]:
            signal.raise_signal(number)


def _write_and_replace(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates 0600; run files are ordinary files (0666 less the umask, e.g. 0644).
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 ``text``."""
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Atomically ``torch.save`` a dict of tensors and plain containers (``weights_only``-loadable)."""
    atomic_write_bytes(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load(path, map_location="cpu", weights_only=True)``; a missing, empty, truncated
    or non-checkpoint file, or one holding arbitrary objects, is a one-line ``CheckpointError``."""
    import pickle

    from .errors import CheckpointError

    kind = file_kind(path)
    if kind:
        raise CheckpointError(f"{path}: checkpoint {kind}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: checkpoint is an empty file (0 bytes)")
    with open(path, "rb") as handle:
        head = handle.read(4)
    # torch.save writes a zip archive (PK), or a pickle (protocol byte 0x80) in the legacy format.
    if not head.startswith((b"PK\x03\x04", b"\x80")):
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (it does not start like one: a text file?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refused to unpickle something other than tensors and plain containers.
        raise CheckpointError(f"{path}: refused: the checkpoint holds objects other than tensors and plain containers "
                              "(loading it could run code)") from None
    except Exception as err:  # noqa: BLE001 - torch/zipfile/pickle raise many types for a bad file
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: cannot read checkpoint (corrupt or truncated?): {detail}") from None


def file_kind(path: str | os.PathLike) -> str:
    """Why ``path`` cannot be read as a file ("not found", "is a folder", "is a FIFO ..."), or ""
    for a regular file. Opening a FIFO would block until someone writes to it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "not found"
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    what = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"is {what}, not a regular file; refused (reading it could wait forever)"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON; NaN/inf become ``null``."""
    text = json.dumps(_json_safe(obj), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))


def _fmt(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def per_class_table(at_half: dict, at_tuned: dict | None, title: str):
    """A rich Table: per class AP, support, P/R/F1 at 0.5 and, if given, at the tuned thresholds."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("class", "support", "AP", "P@0.5", "R@0.5", "F1@0.5"):
        table.add_column(col, justify="left" if col == "class" else "right")
    if at_tuned is not None:
        for col in ("thr", "P@thr", "R@thr", "F1@thr"):
            table.add_column(col, justify="right")
    tuned_rows = at_tuned["per_class"] if at_tuned is not None else [None] * len(at_half["per_class"])
    for row, tuned in zip(at_half["per_class"], tuned_rows):
        cells = [row["class"], str(row["support"]), _fmt(row["AP"]), _fmt(row["precision"]), _fmt(row["recall"]), _fmt(row["F1"])]
        if tuned is not None:
            cells += [_fmt(tuned["threshold"]), _fmt(tuned["precision"]), _fmt(tuned["recall"]), _fmt(tuned["F1"])]
        table.add_row(*cells)
    # Like the class rows, the support is of positive labels (the image count is in the caption).
    table.caption = f"{at_half['num_samples']} images"
    summary = ["all", str(sum(row["support"] for row in at_half["per_class"])), _fmt(at_half["mAP"]), _fmt(at_half["CP"]), _fmt(at_half["CR"]), _fmt(at_half["F1_macro"])]
    if at_tuned is not None:
        summary += ["", _fmt(at_tuned["CP"]), _fmt(at_tuned["CR"]), _fmt(at_tuned["F1_macro"])]
    table.add_section()
    table.add_row(*summary)
    return table


def summary_line(name: str, m: dict) -> str:
    """One line of headline metrics."""
    return (
        f"{name}: mAP {m['mAP']:.4f}  CF1 {m['CF1']:.4f}  OF1 {m['OF1']:.4f}  "
        f"F1 macro {m['F1_macro']:.4f}  exact match {m['exact_match']:.4f}  Hamming {m['hamming_loss']:.4f}"
    )


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pr_curves(path: str | os.PathLike, probs: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str],
                   thresholds: torch.Tensor, per_class: Sequence[dict] | None = None, split: str | None = None) -> None:
    """Per-class precision-recall curves (exact, torchmetrics) with each tuned operating point;
    each panel's title gives the class, its AP and support (from ``per_class``) on ``split``."""
    from torchmetrics.functional.classification import multilabel_precision_recall_curve

    plt = _pyplot()
    c = len(class_names)
    # Unknown cells (-1, --uncertain ignore) are left out, as in the metrics.
    precision, recall, _ = multilabel_precision_recall_curve(probs, targets.long(), num_labels=c,
                                                             ignore_index=-1 if bool((targets < 0).any()) else None)
    cols = min(c, 5)
    rows = math.ceil(c / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= c:
            ax.axis("off")
            continue
        ax.plot(recall[i].numpy(), precision[i].numpy(), lw=1.2)
        pred = probs[:, i] > thresholds[i]
        tp = (pred & (targets[:, i] > 0)).sum().item()
        pos = max(int(targets[:, i].sum().item()), 1)
        ax.plot([tp / pos], [tp / max(int(pred.sum().item()), 1)], "o", ms=4, label=f"thr {float(thresholds[i]):.2f}")
        title = str(class_names[i])
        if per_class is not None:
            title += f"\nAP {_fmt(per_class[i]['AP'])}, support {per_class[i]['support']}"
        ax.set(title=title, xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", ylabel="precision")
        ax.legend(loc="lower left", fontsize=7)
    if split:
        fig.suptitle(f"precision-recall on {split}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_thresholds(path: str | os.PathLike, class_names: Sequence[str], thresholds: torch.Tensor, f1_tuned: Sequence[float], f1_half: Sequence[float]) -> None:
    """Bar chart of the tuned threshold per class, annotated with F1 at 0.5 and at the threshold."""
    plt = _pyplot()
    c = len(class_names)
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * c + 1), 3.2))
    ax.bar(range(c), thresholds.tolist(), color="tab:blue")
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    for i in range(c):
        ax.text(i, float(thresholds[i]) + 0.02, f"{f1_half[i]:.2f}→{f1_tuned[i]:.2f}", ha="center", fontsize=6, rotation=90)
    ax.set(xticks=range(c), ylim=(0, 1.15), ylabel="threshold (prob > t)", title="tuned thresholds (labels: F1 at 0.5 → at t)")
    ax.set_xticklabels([str(n) for n in class_names], rotation=45, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_training_curves(path: str | os.PathLike, history: Sequence[dict]) -> None:
    """Training loss and validation mAP per epoch against elapsed seconds."""
    plt = _pyplot()
    seconds = [h["elapsed_seconds"] for h in history]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(seconds, [h["train_loss"] for h in history], "-o", ms=3, color="tab:red", label="train loss")
    ax.set(xlabel="seconds", ylabel="train loss (BCE)")
    ax2 = ax.twinx()
    ax2.plot(seconds, [h["val_mAP"] for h in history], "-o", ms=3, color="tab:blue", label="val mAP")
    ax2.set(ylabel="validation mAP", ylim=(0, 1.0))
    lines = ax.get_lines() + ax2.get_lines()
    ax2.legend(lines, [line.get_label() for line in lines], loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
