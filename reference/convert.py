"""``migrate-ml reference convert``: the data side of a migration.

A single-label ``ImageFolder`` tree (``ROOT/<class>/<image>``, or ``ROOT/<split>/<class>/<image>``
with ``train``/``val``/``test`` splits) becomes the multi-label CSV the runtime reads:
``OUT/labels.csv`` (``file,labels[,split]``, paths relative to ``ROOT``) and ``OUT/classes.txt``.
Single-label datasets often hold one picture several times, once under each class it shows; those
copies (same bytes, found by SHA-256) become one row with all their classes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .images import IMAGE_SUFFIXES

SPLITS = ("train", "val", "test")


@dataclass
class _Row:
    file: str
    split: str | None
    labels: list[str] = field(default_factory=list)


@dataclass
class Converted:
    """What :func:`convert_image_folder` wrote: rows, classes, merged copies, split conflicts."""

    labels_csv: Path
    rows: int
    classes: list[str]
    merged: int
    split_conflicts: int
    label_sep: str


def _class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def convert_image_folder(root: str | Path, out: str | Path, overwrite: bool = False) -> Converted:
    """Write ``out/labels.csv`` and ``out/classes.txt`` for the ImageFolder tree at ``root``."""
    from .report import write_text

    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder (expected an ImageFolder tree: ROOT/<class>/<image>)")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out}: folder is not empty; pass --overwrite to replace labels.csv and classes.txt")
    top = _class_folders(root)
    split_layout = bool(top) and all(p.name in SPLITS for p in top)
    parts = [(p.name, p) for p in top] if split_layout else [(None, root)]
    classes = sorted({c.name for _, base in parts for c in _class_folders(base)})
    if not classes:
        raise InputError(f"{root}: no class folders (expected ROOT/<class>/<image> or ROOT/train/<class>/<image>)")
    rows: dict[str, _Row] = {}
    merged = conflicts = 0
    # Splits in train, val, test order: an image also found in a later split stays in the earlier one.
    for split, base in sorted(parts, key=lambda item: SPLITS.index(item[0]) if item[0] else 0):
        for folder in _class_folders(base):
            for path in sorted(folder.rglob("*")):
                if not (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
                    continue
                try:
                    key = _digest(path)
                except OSError as err:
                    raise InputError(f"{path}: cannot read: {err.strerror or err}") from None
                row = rows.get(key)
                if row is None:
                    rows[key] = _Row(path.relative_to(root).as_posix(), split, [folder.name])
                    continue
                merged += 1
                conflicts += row.split != split
                if folder.name not in row.labels:
                    row.labels.append(folder.name)
    if not rows:
        raise InputError(f"{root}: no images in the class folders (looked for {', '.join(IMAGE_SUFFIXES)})")
    sep = ";" if any(" " in c for c in classes) else " "
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "labels", "split"] if split_layout else ["file", "labels"])
    for row in rows.values():
        labels = sep.join(sorted(row.labels, key=classes.index))
        writer.writerow([row.file, labels, row.split] if split_layout else [row.file, labels])
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "labels.csv", buffer.getvalue())
    write_text(out / "classes.txt", "".join(f"{c}\n" for c in classes))
    if conflicts:
        print(f"warning: {conflicts} image(s) appear in more than one split; each is kept in the first of "
              f"{', '.join(SPLITS)} only", file=sys.stderr)
    return Converted(out / "labels.csv", len(rows), classes, merged, conflicts, sep)
