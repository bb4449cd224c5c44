"""Offline, deterministic multi-label sample data: handwritten-digit grids and coloured shapes.

Both kinds compose a 2x2 grid of cells; each cell is blank or holds one object, and each image
holds 1-4 objects. An image's labels are the set of classes present, so the targets are
genuinely multi-label (several positives, repeated classes collapse to one).

Generation is vectorised tensor code: 20,000 images take about half a second on 2 cores,
which is why training on ``--sample`` data builds tensors in memory instead of writing PNGs.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch
import torch.nn.functional as F

KINDS = ("digits", "shapes")
SPLITS = ("train", "val", "test")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring", "bar", "diamond")
GRID = 2

# The pool split is fixed rather than seeded: a test set generated with any --seed then never
# contains handwriting that a train set generated with any other --seed has seen.
_POOL_SEED = 20240501
_POOL_FRACTIONS = (0.6, 0.2, 0.2)
# Each split composes from its own generator stream, so val is not a prefix of train.
_SPLIT_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_003}


def class_names(kind: str) -> list[str]:
    """The label names of a sample kind, in target-column order."""
    _check_kind(kind)
    return list(DIGIT_CLASSES if kind == "digits" else SHAPE_CLASSES)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown sample kind {kind!r}; choose one of {', '.join(KINDS)}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def digit_pools() -> dict[str, torch.Tensor]:
    """Indices into scikit-learn's 1,797 bundled digits, split into disjoint per-split pools.

    The split is stratified by class (60/20/20 of each digit) and does not depend on any seed.
    """
    from sklearn.datasets import load_digits

    target = torch.as_tensor(load_digits().target)
    gen = torch.Generator().manual_seed(_POOL_SEED)
    pools: dict[str, list[torch.Tensor]] = {s: [] for s in SPLITS}
    for digit in range(10):
        idx = torch.nonzero(target == digit).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_train = round(len(idx) * _POOL_FRACTIONS[0])
        n_val = round(len(idx) * _POOL_FRACTIONS[1])
        pools["train"].append(idx[:n_train])
        pools["val"].append(idx[n_train : n_train + n_val])
        pools["test"].append(idx[n_train + n_val :])
    return {s: torch.sort(torch.cat(parts)).values for s, parts in pools.items()}


def _layout(n: int, gen: torch.Generator) -> torch.Tensor:
    """A bool [n, 4] occupancy mask with 1-4 occupied cells per image, uniformly many."""
    counts = torch.randint(1, GRID * GRID + 1, (n,), generator=gen)
    ranks = torch.argsort(torch.rand(n, GRID * GRID, generator=gen), dim=1)
    return ranks < counts[:, None]


def _assemble(cells: torch.Tensor, n: int, cell: int) -> torch.Tensor:
    """[n*4, C, cell, cell] cells (row-major per image) -> [n, C, 2*cell, 2*cell] images."""
    c = cells.shape[1]
    grid = cells.reshape(n, GRID, GRID, c, cell, cell)
    return grid.permute(0, 3, 1, 4, 2, 5).reshape(n, c, GRID * cell, GRID * cell)


def _compose_digits(n: int, cell: int, split: str, gen: torch.Generator):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pool = digit_pools()[split]
    images = torch.as_tensor(bunch.images, dtype=torch.float32)[pool] / 16.0
    labels = torch.as_tensor(bunch.target)[pool]
    bank = F.interpolate(images[:, None], size=(cell, cell), mode="bilinear", align_corners=False)
    bank = bank.clamp_(0.0, 1.0)

    occupied = _layout(n, gen).flatten()
    pick = torch.randint(len(pool), (n * GRID * GRID,), generator=gen)
    cells = bank[pick] * occupied[:, None, None, None]
    targets = torch.zeros(n * GRID * GRID, 10)
    targets[torch.arange(len(pick)), labels[pick]] = 1.0
    targets = (targets * occupied[:, None]).reshape(n, GRID * GRID, 10).amax(dim=1)
    return _assemble(cells, n, cell).expand(-1, 3, -1, -1).contiguous(), targets


def _shape_masks(cls: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bool masks of shape class ``cls`` in per-instance normalised coordinates u, v in ~[-1, 1]."""
    r = torch.sqrt(u * u + v * v)
    au, av = u.abs(), v.abs()
    name = SHAPE_CLASSES[cls]
    if name == "circle":
        return r <= 0.8
    if name == "square":
        return torch.maximum(au, av) <= 0.7
    if name == "triangle":
        # Apex up (v grows downwards in image rows); width grows linearly towards the base.
        return (v >= -0.75) & (v <= 0.7) & (au <= (v + 0.75) / 1.45 * 0.85)
    if name == "cross":
        return ((au <= 0.22) & (av <= 0.85)) | ((av <= 0.22) & (au <= 0.85))
    if name == "ring":
        return (r <= 0.85) & (r >= 0.5)
    if name == "bar":
        return (au <= 0.9) & (av <= 0.2)
    if name == "diamond":
        return au + av <= 0.9
    raise AssertionError(name)


def _compose_shapes(n: int, cell: int, gen: torch.Generator):
    k = len(SHAPE_CLASSES)
    total = n * GRID * GRID
    occupied = _layout(n, gen).flatten()
    cls = torch.randint(k, (total,), generator=gen)
    scale = 0.65 + 0.3 * torch.rand(total, generator=gen)
    shift = (torch.rand(total, 2, generator=gen) - 0.5) * 0.3
    # Colour is drawn independently of the class, so it carries no information about the label.
    colour = 0.35 + 0.65 * torch.rand(total, 3, generator=gen)

    axis = (torch.arange(cell, dtype=torch.float32) + 0.5) / cell * 2.0 - 1.0
    mask = torch.zeros(total, cell, cell, dtype=torch.bool)
    for c in range(k):
        idx = torch.nonzero((cls == c) & occupied).flatten()
        if len(idx) == 0:
            continue
        u = (axis[None, None, :] - shift[idx, 0, None, None]) / scale[idx, None, None]
        v = (axis[None, :, None] - shift[idx, 1, None, None]) / scale[idx, None, None]
        mask[idx] = _shape_masks(c, u, v)
    cells = mask[:, None].float() * colour[:, :, None, None]
    targets = F.one_hot(cls, k).float() * occupied[:, None]
    targets = targets.reshape(n, GRID * GRID, k).amax(dim=1)
    return _assemble(cells, n, cell), targets


def make_sample_tensors(
    kind: str = "digits",
    n: int = 2000,
    image_size: int = 32,
    seed: int = 0,
    split: str = "train",
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Generate a multi-label sample split in memory.

    Args:
        kind: ``"digits"`` (grids of real handwritten digits from scikit-learn's bundled 8x8
            set, 10 labels ``"0"``..``"9"``) or ``"shapes"`` (coloured primitives whose only
            cue is their shape, 7 labels, see :data:`SHAPE_CLASSES`).
        n: number of images.
        image_size: side in pixels; must be even (the image is a 2x2 grid of cells).
        seed: generator seed. The same ``(kind, n, image_size, seed, split)`` always gives
            bit-identical tensors.
        split: ``"train"``, ``"val"`` or ``"test"``. For digits each split draws its
            handwriting from a disjoint pool of digit instances, so val/test contain only
            handwriting the train split never shows.

    Returns:
        ``(images, targets, class_names)``: ``images`` float32 ``[n, 3, H, W]`` in [0, 1]
        (digits are grey, replicated over 3 channels so any RGB model accepts them),
        ``targets`` float32 multi-hot ``[n, C]`` with between 1 and 4 positives per row, and
        ``class_names`` the ``C`` label names in column order.
    """
    _check_kind(kind)
    _check_split(split)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if image_size < 4 or image_size % GRID:
        raise ValueError(f"image_size must be an even number of pixels >= 4, got {image_size}")
    gen = torch.Generator().manual_seed(seed * 7919 + _SPLIT_OFFSET[split] + (kind == "shapes"))
    cell = image_size // GRID
    if kind == "digits":
        images, targets = _compose_digits(n, cell, split, gen)
    else:
        images, targets = _compose_shapes(n, cell, gen)
    return images, targets, class_names(kind)


def default_split_sizes(n: int) -> dict[str, int]:
    """How ``sample-data --n N`` divides N images: 80% train, 10% val, 10% test (each >= 1)."""
    n_val = max(1, n // 10)
    n_test = max(1, n // 10)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"--n must be at least 3 (one image per split), got {n}")
    return {"train": n_train, "val": n_val, "test": n_test}


FORMATS = ("folder", "csv", "onehot", "coco")


def write_sample_data(
    out_dir: str | os.PathLike,
    kind: str = "digits",
    n: int = 1000,
    image_size: int = 32,
    seed: int = 0,
    format: str = "folder",
    overwrite: bool = False,
) -> Path:
    """Write a sample dataset in one of the formats the runtime reads; returns the ``--data`` path.

    Formats (``n`` images; ``folder`` splits them 80/10/10 with a split column, the others carry
    no split, so training draws a seeded validation/test split)::

        folder  DIR/classes.txt, DIR/labels.csv (file,labels,split; labels space-separated),
                DIR/images/*.png                                  -> returns DIR
        csv     DIR/train_v2.csv (image_name,tags; names without extension, Planet-style),
                DIR/train-jpg/*.jpg                               -> returns DIR/train_v2.csv
        onehot  DIR/labels.csv (image,<one 0/1 column per class>), DIR/images/*.png
                                                                  -> returns DIR/labels.csv
        coco    DIR/annotations.json (COCO instances: images, annotations, categories),
                DIR/images/*.png                                  -> returns DIR/annotations.json

    A non-empty ``out_dir`` is refused (``FileExistsError``) unless ``overwrite``.
    """
    from PIL import Image

    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: folder is not empty; pass --overwrite to write the sample data into it anyway")
    names = class_names(kind)
    sizes = default_split_sizes(n)
    if image_size < 4 or image_size % GRID:
        raise ValueError(f"image_size must be an even number of pixels >= 4, got {image_size}")
    image_dir = out / ("train-jpg" if format == "csv" else "images")
    suffix = ".jpg" if format == "csv" else ".png"
    _refuse_links_out(out, [image_dir, *(out / name for name in _LABEL_FILES[format])])
    image_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, count in sizes.items():
        images, targets, _ = make_sample_tensors(kind, count, image_size, seed, split)
        pixels = (images * 255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
        for i in range(count):
            stem = f"{split}_{i:06d}"
            if overwrite:
                _refuse_links_out(out, [image_dir / f"{stem}{suffix}"])
            Image.fromarray(pixels[i], mode="RGB").save(image_dir / f"{stem}{suffix}", **({"quality": 95} if suffix == ".jpg" else {}))
            rows.append((stem, torch.nonzero(targets[i]).flatten().tolist(), split))
    if format == "folder":
        (out / "classes.txt").write_text("".join(f"{c}\n" for c in names), encoding="utf-8")
        _write_csv(out / "labels.csv", ("file", "labels", "split"),
                   [(f"{stem}.png", " ".join(names[j] for j in cols), split) for stem, cols, split in rows])
        return out
    if format == "csv":
        _write_csv(out / "train_v2.csv", ("image_name", "tags"), [(stem, " ".join(names[j] for j in cols)) for stem, cols, _ in rows])
        return out / "train_v2.csv"
    if format == "onehot":
        _write_csv(out / "labels.csv", ("image", *names),
                   [(f"{stem}.png", *(int(j in cols) for j in range(len(names)))) for stem, cols, _ in rows])
        return out / "labels.csv"
    return _write_coco(out / "annotations.json", rows, names, image_size)


_LABEL_FILES = {"folder": ("classes.txt", "labels.csv"), "csv": ("train_v2.csv",), "onehot": ("labels.csv",),
                "coco": ("annotations.json",)}


def _refuse_links_out(out: Path, paths) -> None:
    """``--overwrite`` writes into ``out``, never through a symlink to a file or folder outside it."""
    real_out = os.path.realpath(out)
    for path in paths:
        if os.path.islink(path):
            target = os.path.realpath(path)
            if not target.startswith(real_out.rstrip(os.sep) + os.sep):
                raise FileExistsError(f"{path}: a symlink to {target}, outside {out}; refused "
                                      "(sample data is never written through it)")


def _write_csv(path: Path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _write_coco(path: Path, rows, names: list[str], image_size: int) -> Path:
    import json

    images, annotations = [], []
    for image_id, (stem, cols, _) in enumerate(rows, start=1):
        images.append({"id": image_id, "file_name": f"{stem}.png", "width": image_size, "height": image_size})
        for j in cols:
            # The sample has labels, not boxes: each annotation spans the whole image.
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": j + 1,
                                "bbox": [0, 0, image_size, image_size], "area": image_size * image_size, "iscrowd": 0})
    doc = {"images": images, "annotations": annotations,
           "categories": [{"id": j + 1, "name": name, "supercategory": "sample"} for j, name in enumerate(names)]}
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


__all__ = [
    "FORMATS",
    "KINDS",
    "SPLITS",
    "SHAPE_CLASSES",
    "DIGIT_CLASSES",
    "class_names",
    "digit_pools",
    "make_sample_tensors",
    "write_sample_data",
    "default_split_sizes",
]

