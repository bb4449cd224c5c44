"""Datasets for the multi-label folder layouts: a labels CSV or a labels JSON next to images/.

CSV layout (what ``migrate-ml sample-data`` writes, and what e.g. Kaggle's Planet Amazon uses)::

    DIR/classes.txt     one class name per line; the line order is the target-column order
    DIR/labels.csv      a header row, then one row per image:
                            file,labels[,split]
                            train_000000.png,3 7,train
                        labels are space-separated class names; an empty labels field is an
                        image with no positive label. The optional split column (named
                        ``split``) lets one file hold every split.
    DIR/images/*.png    the images (a ``file`` that exists relative to DIR is also accepted)

Instead of a split column, splits may live in one folder each: ``DIR/train/labels.csv``,
``DIR/train/images/...``; ``classes.txt`` may sit in the split folder or in DIR.

JSON variant: ``DIR/labels.json`` holding ``{"file.png": ["label", ...], ...}``, with splits as
folders as above.

Every row is validated when the dataset is built. A bad row raises :class:`DatasetFormatError`,
whose message starts ``path:line:`` and names the problem: an unknown label, a missing image,
an empty row, or a duplicate row.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class DatasetFormatError(ValueError):
    """A labels file, classes file or image referenced by one is malformed or missing.

    ``str(err)`` is ``"<path>:<line>: <message>"`` (``line`` is 1-based), ready to print as a
    one-line error. The parts are available as ``err.path``, ``err.line``, ``err.detail``.
    """

    def __init__(self, path: str | os.PathLike, line: int, detail: str):
        self.path = str(path)
        self.line = line
        self.detail = detail
        super().__init__(f"{self.path}:{line}: {detail}")


def read_classes(path: str | os.PathLike) -> list[str]:
    """Read ``classes.txt``: one class name per line, blank lines ignored, names unique."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, 0, "classes file not found")
    names: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        name = raw.strip()
        if not name:
            continue
        if " " in name:
            raise DatasetFormatError(path, lineno, f"class name {name!r} contains a space")
        if name in seen:
            raise DatasetFormatError(path, lineno, f"duplicate class {name!r} (first at line {seen[name]})")
        seen[name] = lineno
        names.append(name)
    if not names:
        raise DatasetFormatError(path, 1, "no class names")
    return names


class _MultiLabelFiles(Dataset):
    """Shared image loading for the CSV and JSON layouts."""

    def __init__(
        self,
        files: Sequence[Path],
        targets: torch.Tensor,
        classes: list[str],
        transform: Callable[[torch.Tensor], torch.Tensor] | None,
    ):
        self.files = list(files)
        self.targets = targets
        self.classes = classes
        self.transform = transform

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image
        from torchvision.transforms.functional import pil_to_tensor

        with Image.open(self.files[index]) as img:
            image = pil_to_tensor(img.convert("RGB")).float().div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index].clone()


def _resolve_base(root: Path, split: str | None, labels_file: str) -> tuple[Path, bool]:
    """Return the folder holding ``labels_file`` and whether it is a per-split folder."""
    if split is not None and (root / split / labels_file).is_file():
        return root / split, True
    return root, False


def _classes_path(base: Path, root: Path, classes_file: str) -> Path:
    return base / classes_file if (base / classes_file).is_file() else root / classes_file


def _image_path(base: Path, image_dir: str, name: str) -> Path | None:
    for candidate in (base / image_dir / name, base / name):
        if candidate.is_file():
            return candidate
    return None


class _RowChecker:
    """Validates (file, labels) rows one by one and accumulates files and multi-hot targets."""

    def __init__(self, labels_path: Path, base: Path, image_dir: str, classes: list[str]):
        self.labels_path = labels_path
        self.base = base
        self.image_dir = image_dir
        self.classes = classes
        self.index = {c: i for i, c in enumerate(classes)}
        self.first_line: dict[str, int] = {}
        self.files: list[Path] = []
        self.rows: list[list[int]] = []

    def add(self, line: int, name: str, labels: Sequence[str], keep: bool) -> None:
        name = name.strip()
        if not name:
            raise DatasetFormatError(self.labels_path, line, "empty row: no file name")
        if name in self.first_line:
            raise DatasetFormatError(
                self.labels_path, line, f"duplicate row for {name!r} (first at line {self.first_line[name]})"
            )
        self.first_line[name] = line
        cols = []
        for label in labels:
            if label not in self.index:
                raise DatasetFormatError(
                    self.labels_path, line, f"unknown label {label!r} for {name!r} (not in classes file)"
                )
            cols.append(self.index[label])
        path = _image_path(self.base, self.image_dir, name)
        if path is None:
            raise DatasetFormatError(
                self.labels_path, line, f"missing image {name!r} (looked in {self.base / self.image_dir})"
            )
        if keep:
            self.files.append(path)
            self.rows.append(cols)

    def targets(self) -> torch.Tensor:
        targets = torch.zeros(len(self.rows), len(self.classes))
        for i, cols in enumerate(self.rows):
            targets[i, cols] = 1.0
        return targets


class MultiLabelCsvDataset(_MultiLabelFiles):
    """Images listed in ``labels.csv`` with space-separated label names (see module docstring).

    Args:
        root: dataset folder.
        split: keep only this split: rows whose ``split`` column equals it, or the rows of
            ``root/split/labels.csv`` when splits are folders. ``None`` keeps every row.
        labels_file, classes_file, image_dir: file names inside the (split) folder.
        transform: applied to each image tensor (float ``[3, H, W]`` in [0, 1]).

    Items are ``(image, target)``: ``image`` float32 ``[3, H, W]`` in [0, 1] (RGB), ``target``
    float32 multi-hot ``[C]`` in :attr:`classes` order. :attr:`targets` holds all ``[N, C]``.

    Raises:
        DatasetFormatError: ``path:line: ...`` for an unknown label, a missing image, an empty
            row, a duplicate row, a missing header or a missing classes file.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = None,
        labels_file: str = "labels.csv",
        classes_file: str = "classes.txt",
        image_dir: str = "images",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        root = Path(root)
        base, split_folder = _resolve_base(root, split, labels_file)
        labels_path = base / labels_file
        if not labels_path.is_file():
            raise DatasetFormatError(labels_path, 0, "labels file not found")
        classes = read_classes(_classes_path(base, root, classes_file))
        checker = _RowChecker(labels_path, base, image_dir, classes)
        split_col = None
        seen_splits: set[str] = set()
        with open(labels_path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DatasetFormatError(labels_path, 1, "empty labels file (expected a header row)")
            if header and Path(header[0].strip()).suffix.lower() in _IMAGE_SUFFIXES:
                raise DatasetFormatError(
                    labels_path, 1, f"expected a header row like 'file,labels,split', got {','.join(header)!r}"
                )
            lowered = [h.strip().lower() for h in header]
            if "split" in lowered[2:]:
                split_col = lowered.index("split", 2)
            for row in reader:
                line = reader.line_num
                if not any(field.strip() for field in row):
                    raise DatasetFormatError(labels_path, line, "empty row")
                if len(row) < 2:
                    raise DatasetFormatError(
                        labels_path, line, f"expected at least 2 columns (file,labels), got {len(row)}"
                    )
                row_split = row[split_col].strip() if split_col is not None and split_col < len(row) else None
                if row_split is not None:
                    seen_splits.add(row_split)
                keep = split is None or split_folder or row_split == split
                checker.add(line, row[0], row[1].split(), keep)
        if split is not None and not split_folder and split_col is None:
            raise DatasetFormatError(
                labels_path, 1, f"split {split!r} requested but there is no split column and no {root / split} folder"
            )
        if split is not None and not checker.files:
            found = ", ".join(sorted(seen_splits)) or "none"
            raise DatasetFormatError(labels_path, 1, f"no rows for split {split!r} (splits found: {found})")
        super().__init__(checker.files, checker.targets(), classes, transform)


def _key_lines(text: str, keys: Sequence[str]) -> list[int]:
    """1-based line of each object key, found in document order."""
    lines, pos = [], 0
    for key in keys:
        match = re.compile(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:").search(text, pos)
        if match is None:
            match = re.compile(re.escape(json.dumps(key)) + r"\s*:").search(text, pos)
        start = match.start() if match else pos
        lines.append(text.count("\n", 0, start) + 1)
        pos = match.end() if match else pos
    return lines


class MultiLabelJsonDataset(_MultiLabelFiles):
    """Images listed in ``labels.json`` as ``{"file.png": ["label", ...]}`` (see module docstring).

    Same arguments, items and errors as :class:`MultiLabelCsvDataset`, except that splits can
    only be folders (``root/split/labels.json``). An empty list is an image with no positive
    label; ``null`` or a non-list value is a bad row.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = None,
        labels_file: str = "labels.json",
        classes_file: str = "classes.txt",
        image_dir: str = "images",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        root = Path(root)
        base, split_folder = _resolve_base(root, split, labels_file)
        labels_path = base / labels_file
        if not labels_path.is_file():
            raise DatasetFormatError(labels_path, 0, "labels file not found")
        if split is not None and not split_folder:
            raise DatasetFormatError(labels_path, 1, f"split {split!r} requested but there is no {root / split} folder")
        classes = read_classes(_classes_path(base, root, classes_file))
        text = labels_path.read_text(encoding="utf-8")
        try:
            pairs = json.loads(text, object_pairs_hook=lambda kv: kv)
        except json.JSONDecodeError as err:
            raise DatasetFormatError(labels_path, err.lineno, f"invalid JSON: {err.msg}") from None
        if not isinstance(pairs, list):
            raise DatasetFormatError(labels_path, 1, 'expected an object {"file": [labels, ...]}')
        checker = _RowChecker(labels_path, base, image_dir, classes)
        for line, (name, labels) in zip(_key_lines(text, [k for k, _ in pairs]), pairs):
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise DatasetFormatError(labels_path, line, f"bad row: labels of {name!r} must be a list of strings")
            checker.add(line, name, labels, keep=True)
        super().__init__(checker.files, checker.targets(), classes, transform)


def open_dataset(
    root: str | os.PathLike,
    split: str | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> MultiLabelCsvDataset | MultiLabelJsonDataset:
    """Open ``root`` (or its ``split`` folder) with the CSV reader if a ``labels.csv`` is there,
    else with the JSON reader."""
    root = Path(root)
    for folder in ([root / split] if split else []) + [root]:
        if (folder / "labels.csv").is_file():
            return MultiLabelCsvDataset(root, split, transform=transform)
        if (folder / "labels.json").is_file():
            return MultiLabelJsonDataset(root, split, transform=transform)
    raise DatasetFormatError(root / "labels.csv", 0, "no labels.csv or labels.json found")


def has_split(root: str | os.PathLike, split: str) -> bool:
    """Whether ``root`` holds ``split``: a ``root/split`` folder with a labels file, or a
    ``split`` column in ``root/labels.csv`` with at least one such row."""
    root = Path(root)
    if any((root / split / name).is_file() for name in ("labels.csv", "labels.json")):
        return True
    if not (root / "labels.csv").is_file():
        return False
    with open(root / "labels.csv", newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        if "split" not in header[2:]:
            return False
        col = header.index("split", 2)
        return any(len(row) > col and row[col].strip() == split for row in reader)


def load_tensors(dataset: Dataset, image_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a whole dataset into memory: ``(images float [N, 3, S, S], targets float [N, C])``.

    Images are resized (bilinear) to ``image_size`` when given and different. The reference
    trainer does this once up front: reference datasets are small, and indexing one tensor per
    step is much cheaper than decoding PNGs in the training loop.
    """
    import torch.nn.functional as F

    images, targets = [], []
    for i in range(len(dataset)):
        image, target = dataset[i]
        if image_size is not None and tuple(image.shape[-2:]) != (image_size, image_size):
            image = F.interpolate(image[None], size=(image_size, image_size), mode="bilinear", align_corners=False)[0]
        images.append(image)
        targets.append(target)
    if not images:
        raise ValueError("dataset is empty")
    return torch.stack(images), torch.stack(targets)
