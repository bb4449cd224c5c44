"""Reading users' multi-label data: CSV (label lists or one-hot), COCO instances JSON, folders.

Accepted inputs (``--data`` / :func:`read_labels`):

* **A folder** holding ``labels.csv`` or ``labels.json`` (what ``migrate-ml sample-data``
  writes), or one folder per split (``DIR/train/labels.csv``, ``DIR/val/...``), or a single
  ``.csv``/``.json`` file.
* **A CSV file** with a header row. The image column is ``--image-col`` or the first of
  ``file, filename, file_name, image, image_name, image_id, img, path, image_path, name, id``.
  Labels come either from a *label-list* column (``--labels-col`` or the first of ``labels,
  label, tags, classes, class, categories, category, targets, target``; names separated by
  ``--label-sep``, default a space; an empty field is an image with no positive label) or, when
  there is no such column, from *one-hot* columns: every other column holds 0/1 and its header
  is the class name. An optional ``split`` column assigns rows to train/val/test.
* **A COCO instances JSON** (``images``, ``annotations[].category_id``, ``categories[].name``):
  an image's labels are the categories of its annotations; an image with no annotation is an
  all-negative row. Classes are the categories in id order.
* **A labels JSON** ``{"file.png": ["label", ...], ...}``.

Images are looked up under ``--images`` (default: ``images/`` beside the labels file if it
exists, else the labels file's folder). Names without an extension get ``--image-ext``, or the
first existing common image extension. A path that resolves outside the images root (``../``,
absolute paths, symlinks leading out) is refused.

Classes: the label-list formats take ``classes.txt`` (one name per line, spaces allowed, UTF-8
with or without BOM) beside the labels file or in the data folder; without one, classes are the
sorted set of labels seen. One-hot and COCO files name their classes themselves.

Every row is validated when the data is read; the first bad row raises
:class:`DatasetFormatError` ``path:line: ...`` (unknown class, missing or empty image, empty or
duplicate row, path outside the images root, a one-hot value other than 0/1, non-UTF-8 text).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset

from .errors import DatasetFormatError, InputError
from .images import IMAGE_SUFFIXES, load_image
from .report import file_kind

IMAGE_COLUMNS = ("file", "filename", "file_name", "image", "image_name", "image_id", "img", "path", "image_path", "name", "id")
LABEL_COLUMNS = ("labels", "label", "tags", "classes", "class", "categories", "category", "targets", "target")
SPLIT_COLUMN = "split"
_ONE_HOT_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}
# Uncertain or unmentioned cells of a one-hot CSV (CheXpert writes -1 and leaves blanks);
# the trainer's --uncertain policy decides what they become.
_UNCERTAIN_VALUES = {"-1", "-1.0", ""}


def read_text(path: str | os.PathLike) -> str:
    """A labels/classes file as text: UTF-8, a leading BOM dropped; non-UTF-8 is ``path:line``."""
    path = Path(path)
    kind = file_kind(path)
    if kind:
        raise DatasetFormatError(path, 0, kind)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DatasetFormatError(path, 0, f"cannot read: {err.strerror or err}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise DatasetFormatError(
            path, line, f"not UTF-8 text (byte 0x{data[err.start]:02x} at column {column}); save the file as UTF-8"
        ) from None


def read_classes(path: str | os.PathLike) -> list[str]:
    """Read ``classes.txt``: one class name per line (spaces inside a name are kept), blank lines
    ignored, names unique."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, 0, "classes file not found")
    names: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        name = raw.strip()
        if not name:
            continue
        if name in seen:
            raise DatasetFormatError(path, lineno, f"duplicate class {name!r} (first at line {seen[name]})")
        seen[name] = lineno
        names.append(name)
    if not names:
        raise DatasetFormatError(path, 1, "no class names")
    return names


@dataclass
class LabelTable:
    """Validated rows of a labels file.

    ``files`` are image paths (str), ``targets`` uint8 multi-hot ``[N, C]`` in ``classes``
    order, ``splits`` the split of each row (``None`` when the data names none), ``lines`` the
    1-based line of each row in ``source``. ``uncertain`` is a bool ``[N, C]`` mask of one-hot
    cells given as ``-1`` or left blank (their ``targets`` entry is 0), ``None`` when there are
    none.
    """

    source: Path
    classes: list[str]
    files: list[str]
    targets: torch.Tensor
    splits: list[str] | None
    lines: list[int]
    uncertain: torch.Tensor | None = None

    def subset(self, keep: Sequence[int]) -> "LabelTable":
        index = torch.as_tensor(list(keep), dtype=torch.long)
        return LabelTable(
            self.source,
            self.classes,
            [self.files[i] for i in keep],
            self.targets[index] if len(index) else self.targets[:0],
            [self.splits[i] for i in keep] if self.splits is not None else None,
            [self.lines[i] for i in keep],
            None if self.uncertain is None else (self.uncertain[index] if len(index) else self.uncertain[:0]),
        )


class _Rows:
    """Validates rows one at a time (image path, labels) and builds a :class:`LabelTable`."""

    def __init__(self, source: Path, images_root: Path, classes: list[str] | None, image_ext: str | None):
        self.source = source
        self.images_root = images_root
        self.real_root = os.path.realpath(images_root)
        self.classes = classes
        self.index = {c: i for i, c in enumerate(classes)} if classes is not None else None
        self.image_ext = image_ext if image_ext is None or image_ext.startswith(".") else f".{image_ext}"
        self.guessed_ext: str | None = None
        self.first_line: dict[str, int] = {}
        self.files: list[str] = []
        self.labels: list[tuple] = []
        self.splits: list[str] = []
        self.lines: list[int] = []
        self.uncertain: list[tuple] = []

    def error(self, line: int, detail: str) -> DatasetFormatError:
        return DatasetFormatError(self.source, line, detail)

    def _resolve(self, line: int, name: str) -> str:
        candidates = [name]
        if not Path(name).suffix:
            if self.image_ext:
                candidates = [name + self.image_ext]
            else:
                guesses = ([self.guessed_ext] if self.guessed_ext else []) + list(IMAGE_SUFFIXES)
                candidates = [name] + [name + ext for ext in guesses]
        for candidate in candidates:
            path = os.path.join(self.images_root, candidate)
            real = os.path.realpath(path)
            if real != self.real_root and not real.startswith(self.real_root + os.sep):
                raise self.error(line, f"image path {name!r} resolves outside the images folder {self.images_root}; refused")
            if os.path.isfile(real):
                if candidate != name and not self.image_ext:
                    self.guessed_ext = candidate[len(name):]
                if os.path.getsize(real) == 0:
                    raise self.error(line, f"image {name!r} is an empty file (0 bytes)")
                return path
        hint = "" if Path(name).suffix or self.image_ext else "; names without an extension: pass --image-ext"
        others = [p.name for p in _image_folders(self.source.parent) if os.path.realpath(p) != self.real_root]
        if others:
            hint += f"; other folders beside {self.source.name} hold images ({', '.join(others)}): pass --images DIR"
        raise self.error(line, f"missing image {name!r} (looked in {self.images_root}){hint}")

    def add(self, line: int, name: str, labels: Sequence[str] | Sequence[int], split: str | None = None,
            uncertain: Sequence[int] = ()) -> None:
        name = name.strip()
        if not name:
            raise self.error(line, "empty row: no image name")
        if "\0" in name:
            raise self.error(line, f"image name {name!r} holds a NUL character")
        if name in self.first_line:
            raise self.error(line, f"duplicate row for {name!r} (first at line {self.first_line[name]})")
        self.first_line[name] = line
        if self.index is not None:
            for label in labels:
                if isinstance(label, str) and label not in self.index:
                    raise self.error(line, f"unknown label {label!r} for {name!r} (not in the classes file)")
        self.files.append(self._resolve(line, name))
        self.labels.append(tuple(labels))
        self.splits.append(split or "")
        self.lines.append(line)
        self.uncertain.append(tuple(uncertain))

    def table(self, has_splits: bool) -> LabelTable:
        classes = self.classes if self.classes is not None else sorted({x for row in self.labels for x in row})
        index = {c: i for i, c in enumerate(classes)}
        targets = torch.zeros(len(self.labels), len(classes), dtype=torch.uint8)
        for row, labels in enumerate(self.labels):
            cols = [x if isinstance(x, int) else index[x] for x in labels]
            targets[row, cols] = 1
        uncertain = None
        if any(self.uncertain):
            uncertain = torch.zeros(targets.shape, dtype=torch.bool)
            for row, cols in enumerate(self.uncertain):
                uncertain[row, list(cols)] = True
        return LabelTable(self.source, list(classes), self.files, targets, self.splits if has_splits else None, self.lines, uncertain)


def _holds_images(folder: Path, peek: int = 20) -> bool:
    for i, entry in enumerate(os.scandir(folder)):
        if i >= peek:
            break
        if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
            return True
    return False


def _default_images_root(labels_path: Path) -> Path:
    """``images/`` beside the labels file; else its only subfolder holding images; else the
    only one named after the labels file (Kaggle Planet: ``train.csv`` or ``train_v2.csv`` with
    ``train-jpg/`` beside ``test-jpg/``); else the labels file's own folder."""
    folder = labels_path.parent
    if (folder / "images").is_dir():
        return folder / "images"
    with_images = _image_folders(folder)
    if len(with_images) == 1:
        return with_images[0]
    stem = re.split(r"[-_.\s]", labels_path.stem.lower())[0]
    named = [p for p in with_images if re.split(r"[-_.\s]", p.name.lower())[0] == stem]
    return named[0] if len(named) == 1 else folder


def _image_folders(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.iterdir()) if p.is_dir() and _holds_images(p)]


def _column(header: list[str], wanted: str | None, guesses: Sequence[str], what: str, source: Path) -> int | None:
    lowered = [h.strip().lower() for h in header]
    if wanted is not None:
        if wanted.strip().lower() not in lowered:
            raise DatasetFormatError(source, 1, f"no column {wanted!r} for the {what} (columns: {', '.join(header)})")
        return lowered.index(wanted.strip().lower())
    for guess in guesses:
        if guess in lowered:
            return lowered.index(guess)
    return None


def _read_csv(
    path: Path,
    images_root: Path,
    classes: list[str] | None,
    image_col: str | None,
    labels_col: str | None,
    label_sep: str | None,
    image_ext: str | None,
) -> LabelTable:
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        return _read_csv_rows(path, reader, images_root, classes, image_col, labels_col, label_sep, image_ext)
    except csv.Error as err:  # a field over csv.field_size_limit() (131,072 characters), a NUL byte
        raise DatasetFormatError(path, reader.line_num, f"cannot read as CSV: {err}") from None


def _read_csv_rows(path: Path, reader, images_root: Path, classes: list[str] | None, image_col: str | None,
                   labels_col: str | None, label_sep: str | None, image_ext: str | None) -> LabelTable:
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise DatasetFormatError(path, 1, "empty labels file (expected a header row)")
    if Path(header[0].strip()).suffix.lower() in IMAGE_SUFFIXES:
        raise DatasetFormatError(path, 1, f"expected a header row like 'file,labels', got {','.join(header)!r}")
    image_idx = _column(header, image_col, IMAGE_COLUMNS, "image names", path)
    if image_idx is None:
        image_idx = 0
    split_idx = _column(header, None, (SPLIT_COLUMN,), "split", path)
    if split_idx == image_idx:
        split_idx = None
    # --labels-col none: no labels column, one 0/1 column per class.
    one_hot_only = labels_col is not None and labels_col.strip().lower() == "none"
    labels_idx = None if one_hot_only else _column(header, labels_col, LABEL_COLUMNS, "labels", path)
    others = [i for i in range(len(header)) if i not in (image_idx, split_idx)]
    data_rows = [(reader.line_num, row) for row in reader]
    one_hot = labels_idx is None and len(others) >= 1 and (one_hot_only or _looks_one_hot(data_rows, others))
    if labels_idx is None and not one_hot:
        if len(others) != 1:
            raise DatasetFormatError(
                path, 1, f"cannot tell which column holds the labels (columns: {', '.join(header)}); pass --labels-col, "
                "or give one 0/1 column per class"
            )
        labels_idx = others[0]
    if one_hot:
        names = [header[i].strip() for i in others]
        if classes is not None and sorted(names) != sorted(classes):
            raise DatasetFormatError(path, 1, f"one-hot columns {names} differ from the classes {classes}")
        order = {c: i for i, c in enumerate(classes if classes is not None else names)}
        class_cols = [(i, order[header[i].strip()]) for i in others]
        rows_builder = _Rows(path, images_root, classes if classes is not None else names, image_ext)
    else:
        rows_builder = _Rows(path, images_root, classes, image_ext)
    width = len(header)
    for line, row in data_rows:
        if not any(field.strip() for field in row):
            raise DatasetFormatError(path, line, "empty row")
        if len(row) != width:
            raise DatasetFormatError(path, line, f"expected {width} columns like the header, got {len(row)}")
        split = row[split_idx].strip() if split_idx is not None else None
        if one_hot:
            positives, uncertain = [], []
            for col, cls in class_cols:
                value = _ONE_HOT_VALUES.get(row[col].strip().lower())
                if value is None and row[col].strip() in _UNCERTAIN_VALUES:
                    uncertain.append(cls)
                    continue
                if value is None:
                    raise DatasetFormatError(path, line, f"column {header[col].strip()!r}: expected 0 or 1, got {row[col]!r} (-1 or blank: uncertain)")
                if value:
                    positives.append(cls)
            rows_builder.add(line, row[image_idx], positives, split, uncertain)
        else:
            field = row[labels_idx]
            labels = field.split(label_sep) if label_sep not in (None, " ") else field.split()
            rows_builder.add(line, row[image_idx], [x.strip() for x in labels if x.strip()], split)
    return rows_builder.table(has_splits=split_idx is not None)


def _looks_one_hot(data_rows, columns: Sequence[int]) -> bool:
    """Judged on the first data row, so a later bad value is reported at its own line."""
    first = next((row for _, row in data_rows if any(f.strip() for f in row)), None)
    return first is not None and all(
        len(first) > col and (first[col].strip().lower() in _ONE_HOT_VALUES or first[col].strip() in _UNCERTAIN_VALUES)
        for col in columns
    ) and any(first[col].strip() for col in columns)


class _LineCounter:
    """1-based line numbers of offsets asked for in increasing order: each newline counted once.

    Counting from the start of the text for every offset made a COCO file of 8 MB take
    minutes (issue 21, item 9).
    """

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        if offset < self.offset:  # out of order: count afresh (never for document-order offsets)
            self.offset, self.line = 0, 1
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _key_lines(text: str, key: str) -> list[int]:
    """1-based line of each occurrence of ``"key":`` in ``text``, in document order."""
    lines = _LineCounter(text)
    return [lines.at(m.start()) for m in re.finditer(re.escape(json.dumps(key)) + r"\s*:", text)]


def _object_key_lines(text: str, keys: Sequence[str]) -> list[int]:
    lines, found, pos = _LineCounter(text), [], 0
    for key in keys:
        start, end = _key_at(text, json.dumps(key, ensure_ascii=False), pos)
        if start < 0:
            start, end = _key_at(text, json.dumps(key), pos)
        found.append(lines.at(start if start >= 0 else pos))
        pos = end if start >= 0 else pos
    return found


_COLON = re.compile(r"\s*:")


def _key_at(text: str, quoted: str, pos: int) -> tuple[int, int]:
    """(start, end) of the next ``quoted`` followed by a colon at or after ``pos``; (-1, -1) if none.

    ``str.find`` rather than a regular expression per key: compiling one for each of 60,000
    keys took seconds."""
    start = text.find(quoted, pos)
    while start >= 0:
        colon = _COLON.match(text, start + len(quoted))
        if colon:
            return start, colon.end()
        start = text.find(quoted, start + 1)
    return -1, -1


def _read_json(path: Path, images_root: Path, classes: list[str] | None) -> LabelTable:
    text = read_text(path)
    try:
        doc = json.loads(text, object_pairs_hook=lambda kv: kv)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(path, err.lineno, f"invalid JSON: {err.msg}") from None
    keys = [k for k, _ in doc] if isinstance(doc, list) else []
    if {"images", "annotations", "categories"} <= set(keys):
        return _read_coco(path, text, images_root, classes)
    if not isinstance(doc, list) or (doc and not all(isinstance(k, str) for k, _ in doc)):
        raise DatasetFormatError(path, 1, 'expected {"file": [labels, ...]} or a COCO instances file')
    rows = _Rows(path, images_root, classes, None)
    for line, (name, labels) in zip(_object_key_lines(text, keys), doc):
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise DatasetFormatError(path, line, f"bad row: labels of {name!r} must be a list of strings")
        rows.add(line, name, labels)
    return rows.table(has_splits=False)


def _read_coco(path: Path, text: str, images_root: Path, classes: list[str] | None) -> LabelTable:
    doc = json.loads(text)
    categories, images, annotations = doc.get("categories"), doc.get("images"), doc.get("annotations")
    if not all(isinstance(x, list) for x in (categories, images, annotations)):
        raise DatasetFormatError(path, 1, "COCO file: 'images', 'annotations' and 'categories' must be lists")
    cat_lines, image_lines, ann_lines = _key_lines(text, "name"), _key_lines(text, "file_name"), _key_lines(text, "category_id")
    try:
        cats = sorted(((int(c["id"]), str(c["name"]).strip()) for c in categories))
    except (KeyError, TypeError, ValueError):
        raise DatasetFormatError(path, cat_lines[0] if cat_lines else 1, "COCO categories need an 'id' and a 'name'") from None
    names = [name for _, name in cats]
    if len(set(names)) != len(names):
        raise DatasetFormatError(path, 1, "COCO categories: duplicate category names")
    if classes is not None and sorted(classes) != sorted(names):
        raise DatasetFormatError(path, 1, f"COCO categories {names} differ from the classes {classes}")
    order = {c: i for i, c in enumerate(classes if classes is not None else names)}
    cat_col = {cid: order[name] for cid, name in cats}
    positives: dict[object, set[int]] = {}
    for k, ann in enumerate(annotations):
        line = ann_lines[k] if k < len(ann_lines) else 1
        if not isinstance(ann, dict) or "image_id" not in ann or "category_id" not in ann:
            raise DatasetFormatError(path, line, f"annotation {k}: needs 'image_id' and 'category_id'")
        if ann["category_id"] not in cat_col:
            raise DatasetFormatError(path, line, f"annotation {k}: unknown category_id {ann['category_id']!r}")
        positives.setdefault(ann["image_id"], set()).add(cat_col[ann["category_id"]])
    rows = _Rows(path, images_root, classes if classes is not None else names, None)
    ids = set()
    for k, image in enumerate(images):
        line = image_lines[k] if k < len(image_lines) else 1
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise DatasetFormatError(path, line, f"image {k}: needs an 'id' and a 'file_name'")
        ids.add(image["id"])
        rows.add(line, image["file_name"], sorted(positives.get(image["id"], ())))
    for k, ann in enumerate(annotations):
        if ann["image_id"] not in ids:
            raise DatasetFormatError(path, ann_lines[k] if k < len(ann_lines) else 1, f"annotation {k}: unknown image_id {ann['image_id']!r}")
    return rows.table(has_splits=False)


def refuse_output_in_data(out: str | os.PathLike, data: str | os.PathLike | None,
                          images: str | os.PathLike | None = None) -> None:
    """Refuse an output folder that holds the data: the ``--data`` folder (or the folder of a
    labels file), one of its split folders, or the images folder or a folder inside it. A run
    writes ``classes.txt`` and ``metrics.json``, names a dataset may use for its own files
    (issue 21, item 5). A new folder beside or below the data (``DATA/runs``) is fine."""
    if data is None:
        return
    data = Path(data)
    root = data if data.is_dir() else data.parent
    holding = [root, *(root / split for split in ("train", "val", "test"))]
    image_roots = [Path(images)] if images is not None else [root / "images"]
    real_out = os.path.realpath(out)
    for folder in holding + image_roots:
        real = os.path.realpath(folder)
        inside = folder in image_roots and real_out.startswith(real.rstrip(os.sep) + os.sep)
        if real_out == real or inside:
            raise InputError(f"{out}: the output folder holds the data ({folder}); write the run to another folder "
                             "(nothing is ever written into the data)")


def _find_classes_file(*folders: Path) -> Path | None:
    for folder in folders:
        if (folder / "classes.txt").is_file():
            return folder / "classes.txt"
    return None


def _labels_file_in(folder: Path) -> Path | None:
    for name in ("labels.csv", "labels.json"):
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".json"))
    return candidates[0] if len(candidates) == 1 else None


def read_labels(
    data: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    classes: list[str] | None = None,
    image_col: str | None = None,
    labels_col: str | None = None,
    label_sep: str | None = None,
    image_ext: str | None = None,
) -> LabelTable:
    """Read and validate ``data`` (a labels file, or a folder; see the module docstring).

    ``classes`` fixes the class list (e.g. a trained model's); otherwise it comes from
    ``classes.txt``, the file's own class columns/categories, or the sorted labels seen.
    Split folders (``DIR/train/labels.csv`` ...) give rows whose split is the folder name.
    """
    data = Path(data)
    if not data.exists():
        raise DatasetFormatError(data, 0, "no such file or folder")
    if data.is_dir():
        split_files = {s: _labels_file_in(data / s) for s in ("train", "val", "test") if (data / s).is_dir()}
        if (data / "labels.csv").is_file() or (data / "labels.json").is_file() or not any(split_files.values()):
            labels_path = _labels_file_in(data)
            if labels_path is None:
                raise DatasetFormatError(data / "labels.csv", 0, "no labels file found (labels.csv, labels.json, a COCO .json, or one .csv)")
            return _read_one(labels_path, images, classes, image_col, labels_col, label_sep, image_ext, data)
        return _read_split_folders(data, split_files, images, classes, image_col, labels_col, label_sep, image_ext)
    return _read_one(data, images, classes, image_col, labels_col, label_sep, image_ext, data.parent)


def _read_one(labels_path, images, classes, image_col, labels_col, label_sep, image_ext, root) -> LabelTable:
    images_root = Path(images) if images is not None else _default_images_root(labels_path)
    if not images_root.is_dir():
        raise DatasetFormatError(images_root, 0, "images folder not found")
    if classes is None:
        classes_path = _find_classes_file(labels_path.parent, Path(root))
        classes = read_classes(classes_path) if classes_path is not None else None
    if labels_path.suffix.lower() == ".json":
        return _read_json(labels_path, images_root, classes)
    return _read_csv(labels_path, images_root, classes, image_col, labels_col, label_sep, image_ext)


def _read_split_folders(root, split_files, images, classes, image_col, labels_col, label_sep, image_ext) -> LabelTable:
    if classes is None and _find_classes_file(root) is not None:
        classes = read_classes(root / "classes.txt")
    tables = {}
    for split, labels_path in split_files.items():
        if labels_path is not None:
            tables[split] = _read_one(labels_path, images, classes, image_col, labels_col, label_sep, image_ext, root)
    names = classes if classes is not None else sorted({c for t in tables.values() for c in t.classes})
    files, lines, splits, targets = [], [], [], []
    for split, table in tables.items():
        remap = torch.zeros(len(table.targets), len(names), dtype=torch.uint8)
        for j, name in enumerate(table.classes):
            remap[:, names.index(name)] = table.targets[:, j]
        files += table.files
        lines += table.lines
        splits += [split] * len(table.files)
        targets.append(remap)
    first = next(iter(tables.values()))
    return LabelTable(first.source, list(names), files, torch.cat(targets), splits, lines)


def assign_splits(n: int, val_fraction: float, test_fraction: float, seed: int) -> list[str]:
    """A seeded random ``train``/``val``/``test`` name per row (at least one val row)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator).tolist()
    n_val = max(1, round(n * val_fraction)) if n > 1 else 0
    n_test = round(n * test_fraction)
    if n - n_val - n_test < 1:
        raise ValueError(f"{n} images are too few for --val-fraction {val_fraction} and --test-fraction {test_fraction}")
    names = ["train"] * n
    for rank, row in enumerate(order):
        if rank < n_val:
            names[row] = "val"
        elif rank < n_val + n_test:
            names[row] = "test"
    return names


def _to_float_tensor(img) -> torch.Tensor:
    from torchvision.transforms.functional import pil_to_tensor

    return pil_to_tensor(img).float().div_(255.0)


class ImageFiles(Dataset):
    """``(image, target)`` items from image files on disk.

    ``image`` is ``transform(PIL RGB image)`` (default: float32 ``[3, H, W]`` in [0, 1]);
    ``target`` float32 multi-hot ``[C]``. Paths are held as one numpy byte-string array, so
    DataLoader workers forked from this process do not copy them page by page (Python objects'
    reference counts would).
    """

    def __init__(self, files: Sequence[str | os.PathLike], targets: torch.Tensor, classes: list[str], transform: Callable | None = None):
        import numpy as np

        self._paths = np.array([os.fsencode(f) for f in files], dtype=np.bytes_) if len(files) else np.array([], dtype=np.bytes_)
        self.targets = targets.float() if targets.dtype != torch.uint8 else targets
        self.classes = list(classes)
        self.transform = transform if transform is not None else _to_float_tensor

    @property
    def files(self) -> list[Path]:
        return [Path(os.fsdecode(p)) for p in self._paths]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = load_image(os.fsdecode(self._paths[index]))
        return self.transform(image), self.targets[index].float()


def _table_dataset(table: LabelTable, split: str | None, transform) -> tuple[list[str], torch.Tensor]:
    if split is None:
        return table.files, table.targets
    if table.splits is None:
        raise DatasetFormatError(table.source, 1, f"split {split!r} requested but the data has no split column or split folders")
    keep = [i for i, s in enumerate(table.splits) if s == split]
    if not keep:
        found = ", ".join(sorted(set(table.splits))) or "none"
        raise DatasetFormatError(table.source, 1, f"no rows for split {split!r} (splits found: {found})")
    sub = table.subset(keep)
    return sub.files, sub.targets


class MultiLabelCsvDataset(ImageFiles):
    """Images listed in a labels CSV (label-list or one-hot; see the module docstring).

    Args:
        root: dataset folder (holding ``labels_file``, or one folder per split) or a CSV file.
        split: keep only this split (a ``split`` column or a split folder); ``None`` keeps all.
        labels_file, classes_file, image_dir: names inside ``root`` when it is a folder.
        transform: applied to each image tensor (float ``[3, H, W]`` in [0, 1]).
        **options: ``image_col``, ``labels_col``, ``label_sep``, ``image_ext``, ``images``
            (see :func:`read_labels`).

    Items are ``(image, target)``: float32 ``[3, H, W]`` in [0, 1] (RGB) and float32 multi-hot
    ``[C]`` in :attr:`classes` order; :attr:`targets` holds all ``[N, C]``.

    Raises:
        DatasetFormatError: ``path:line: ...`` for the first bad row (see the module docstring).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = None,
        labels_file: str = "labels.csv",
        classes_file: str = "classes.txt",
        image_dir: str = "images",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        **options,
    ):
        table = _legacy_table(Path(root), split, labels_file, classes_file, image_dir, options)
        files, targets = _table_dataset(table, None if _split_is_folder(Path(root), split, labels_file) else split, transform)
        super().__init__(files, targets.float(), table.classes, _tensor_transform(transform))


class MultiLabelJsonDataset(MultiLabelCsvDataset):
    """Images listed in ``labels.json`` (``{"file.png": ["label", ...]}``) or a COCO instances file.

    Same arguments, items and errors as :class:`MultiLabelCsvDataset`. An empty list is an
    image with no positive label; ``null`` or a non-list value is a bad row.
    """

    def __init__(self, root: str | os.PathLike, split: str | None = None, labels_file: str = "labels.json", **kwargs):
        super().__init__(root, split, labels_file=labels_file, **kwargs)


def _split_is_folder(root: Path, split: str | None, labels_file: str) -> bool:
    return split is not None and root.is_dir() and (root / split / labels_file).is_file()


def _legacy_table(root: Path, split, labels_file, classes_file, image_dir, options) -> LabelTable:
    if root.is_file():
        return read_labels(root, **options)
    base = root / split if _split_is_folder(root, split, labels_file) else root
    labels_path = base / labels_file
    if not labels_path.is_file():
        raise DatasetFormatError(labels_path, 0, "labels file not found")
    classes_path = _find_classes_file(base, root) if classes_file == "classes.txt" else base / classes_file
    classes = read_classes(classes_path) if classes_path is not None and classes_path.is_file() else None
    images = options.pop("images", None)
    if images is None:
        images = base / image_dir if (base / image_dir).is_dir() else base
    return _read_one(labels_path, images, classes, options.get("image_col"), options.get("labels_col"),
                     options.get("label_sep"), options.get("image_ext"), root)


def _tensor_transform(transform):
    if transform is None:
        return None
    return lambda img: transform(_to_float_tensor(img))


def open_dataset(
    root: str | os.PathLike,
    split: str | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    **options,
) -> ImageFiles:
    """Open any supported labels file or folder (see :func:`read_labels`), keeping ``split``."""
    table = read_labels(root, **options)
    files, targets = _table_dataset(table, split, transform)
    return ImageFiles(files, targets.float(), table.classes, _tensor_transform(transform))


def load_tensors(dataset: Dataset, image_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a whole dataset into memory: ``(images float [N, 3, S, S], targets float [N, C])``.

    Images are resized (bilinear) to ``image_size`` when given and different. Meant for small
    data; the trainer streams files through a DataLoader instead.
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
