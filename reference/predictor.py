"""Predictions from a trained run: ``load(checkpoint).predict(images)`` and ``reference predict``.

Images go through the same timm eval transform the run validated with (its data config is in
the checkpoint); labels are the classes whose probability is above the run's tuned per-class
threshold (``prob > threshold``; 0.5 for a run without tuned thresholds).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch.utils.data import Dataset

from .errors import InputError
from .images import IMAGE_SUFFIXES, load_image


def image_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Expand files and folders (recursively, sorted) into image file paths."""
    found: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(str(path))
        else:
            raise InputError(f"{path}: no such image file or folder")
    if not found:
        raise InputError(f"no images found in {', '.join(map(str, paths))} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return found


class _Images(Dataset):
    def __init__(self, items: Sequence[Any], transform):
        self.items = list(items)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        from PIL import Image
        from torchvision.transforms.functional import to_pil_image

        item = self.items[index]
        if isinstance(item, torch.Tensor):
            item = to_pil_image(item.clamp(0, 1))
        elif not isinstance(item, Image.Image):
            item = load_image(item)
        return self.transform(item.convert("RGB")), index


class Predictor:
    """A trained run ready to label images; see :func:`load`."""

    def __init__(self, checkpoint: str | os.PathLike, device: str | None = None,
                 thresholds: str | os.PathLike | float | Sequence[float] | None = None):
        from .model import create_reference_model
        from .pipeline import create_transform, legacy_data_config
        from .train import pick_device, read_run_checkpoint, read_thresholds, run_checkpoint_path

        checkpoint = run_checkpoint_path(checkpoint)
        state = read_run_checkpoint(checkpoint)
        self.checkpoint = str(checkpoint)
        self.classes: list[str] = list(state["class_names"])
        self.device = pick_device(device)
        model = create_reference_model(len(self.classes), state["model_name"], **state["model_kwargs"])
        model.load_state_dict(state["model"])
        self.model = model.to(self.device).eval()
        self.data_config = state.get("data_config") or legacy_data_config(state["config"]["image_size"])
        self.transform = create_transform(self.data_config)
        side = Path(checkpoint).with_name("thresholds.json")
        if isinstance(thresholds, (int, float, list, tuple)) and not isinstance(thresholds, bool):
            values = _given_thresholds(thresholds, len(self.classes))
        elif thresholds is not None:
            values = read_thresholds(thresholds, self.classes)
        elif state.get("thresholds") is not None:
            values = state["thresholds"]
        elif side.is_file():
            values = read_thresholds(side, self.classes)
        else:
            values = [0.5] * len(self.classes)
        self.thresholds = torch.tensor(values, dtype=torch.float32)

    @torch.no_grad()
    def predict_proba(self, images: Any, batch_size: int = 64, workers: int = 0) -> torch.Tensor:
        """Sigmoid probabilities ``[N, C]`` for a list of image paths, PIL images or ``[3, H, W]``
        float tensors in [0, 1] (or an ``[N, 3, H, W]`` tensor); ``[C]`` for one such image."""
        from torch.utils.data import DataLoader

        if _is_one_image(images):
            return self.predict_proba([images], batch_size, workers)[0]
        if isinstance(images, torch.Tensor) and images.ndim == 4:
            images = list(images)
        data = DataLoader(_Images(images, self.transform), batch_size=batch_size, num_workers=workers)
        probs = [torch.sigmoid(self.model(x.to(self.device)).float()).cpu() for x, _ in data]
        return torch.cat(probs) if probs else torch.zeros(0, len(self.classes))

    def predict(self, images: Any, batch_size: int = 64, workers: int = 0) -> list[dict] | dict:
        """One ``{"labels": [...], "probs": {class: p}}`` per image, labels above threshold: a
        list for a list of images, one dict for one image (a path, PIL image or tensor)."""
        if _is_one_image(images):
            return self.predict([images], batch_size, workers)[0]
        probs = self.predict_proba(images, batch_size, workers)
        positive = probs > self.thresholds
        return [
            {"labels": [c for c, on in zip(self.classes, row_on.tolist()) if on],
             "probs": dict(zip(self.classes, row.tolist()))}
            for row, row_on in zip(probs, positive)
        ]


def load(checkpoint: str | os.PathLike, device: str | None = None,
         thresholds: str | os.PathLike | float | Sequence[float] | None = None) -> Predictor:
    """Load a run (its folder or its ``checkpoint.pt``) for prediction:
    ``load(run).predict(["a.jpg", ...])``. ``thresholds``: a ``thresholds.json``, one float for
    every class, or one float per class (default: the run's tuned thresholds)."""
    return Predictor(checkpoint, device, thresholds)


def _is_one_image(images: Any) -> bool:
    from PIL import Image

    return isinstance(images, (str, os.PathLike, Image.Image)) or (isinstance(images, torch.Tensor) and images.ndim == 3)


def _given_thresholds(thresholds: float | Sequence[float], num_classes: int) -> list[float]:
    import math

    values = [thresholds] * num_classes if isinstance(thresholds, (int, float)) else list(thresholds)
    if len(values) != num_classes:
        raise InputError(f"thresholds: expected one value or {num_classes} (one per class), got {len(values)}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InputError(f"thresholds: expected numbers in [0, 1], got {value!r}")
    return [float(v) for v in values]


def printable_path(path: str) -> str:
    """A file name that is not UTF-8 (held with surrogate escapes) with its odd bytes as ``\\xNN``:
    printing it as it is fails with a UnicodeEncodeError that names no file."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def label_separator(classes: Sequence[str]) -> str:
    """Labels are joined with a space, or ``;`` when a class name contains a space."""
    return ";" if any(" " in c for c in classes) else " "


def predictions_csv(paths: Sequence[str], predictions: Sequence[dict], classes: Sequence[str]) -> str:
    """``image,labels,<one probability column per class>`` rows."""
    sep = label_separator(classes)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "labels", *classes])
    for path, pred in zip(paths, predictions):
        writer.writerow([printable_path(path), sep.join(pred["labels"]), *(f"{pred['probs'][c]:.6f}" for c in classes)])
    return buffer.getvalue()
