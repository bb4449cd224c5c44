"""The input pipeline: timm's data config and transforms, and DataLoaders over files or tensors.

Files are decoded in DataLoader workers, one batch at a time, so memory does not grow with the
number of images. The bundled sample data is generated as tensors in memory and indexed
directly (no decode, no collate): it is much faster, and the trainer normalises it with the
same mean/std as the file transforms, so a model trained either way predicts on files alike.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

AUGMENTS = ("none", "basic", "randaug")
# RandAugment at timm's usual ImageNet strength.
RANDAUG = "rand-m9-mstd0.5"
# Random crops keep at least 60 % of the image: a smaller crop would often cut away a labelled
# object while its label stays positive.
CROP_SCALE = (0.6, 1.0)


def resolve_data_config(model: torch.nn.Module, image_size: int) -> dict[str, Any]:
    """timm's data config for ``model`` at ``image_size``: whole image squashed to a square (a
    centre crop could cut labelled objects out), interpolation, and the model's mean/std."""
    from timm.data import resolve_data_config as timm_resolve

    config = timm_resolve(args={"input_size": (3, image_size, image_size), "crop_pct": 1.0, "crop_mode": "squash"}, model=model)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def legacy_data_config(image_size: int) -> dict[str, Any]:
    """What runs saved before the data config was recorded trained on: [0, 1] RGB, bilinear
    resize, no normalisation."""
    return {"input_size": [3, image_size, image_size], "interpolation": "bilinear", "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0], "crop_pct": 1.0, "crop_mode": "squash"}


def create_transform(data_config: dict[str, Any], training: bool = False, augment: str = "none"):
    """timm's ``create_transform``: eval (resize + normalise) or, with ``augment`` other than
    ``none``, training (random resized crop, flip; ``randaug`` adds RandAugment)."""
    from timm.data import create_transform as timm_create

    config = {k: tuple(v) if isinstance(v, list) else v for k, v in data_config.items()}
    if not training or augment == "none":
        return timm_create(**config, is_training=False)
    return timm_create(
        **config,
        is_training=True,
        scale=CROP_SCALE,
        hflip=0.5,
        color_jitter=None,
        auto_augment=RANDAUG if augment == "randaug" else None,
    )


def normalise(images: torch.Tensor, data_config: dict[str, Any]) -> torch.Tensor:
    """In-memory ``[N, 3, H, W]`` images in [0, 1] -> normalised like the file transforms."""
    mean = torch.tensor(data_config["mean"], dtype=images.dtype).view(1, -1, 1, 1)
    std = torch.tensor(data_config["std"], dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean) / std


def usable_cpus() -> int:
    """CPUs this process may run on (``os.sched_getaffinity``: taskset and cgroup cpusets) less
    those the 1-minute load average says other work keeps busy. Two torch threads on two cores
    that another process also uses ran ten times slower than one thread, so a busy core counts
    as taken."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):
        busy = 0.0
    return max(1, min(cores, round(cores - busy)))


def cpu_plan(local_world: int, file_data: bool, threads: int | None = None, workers: int | None = None) -> tuple[int, int]:
    """``(torch threads, DataLoader workers)`` per process: whichever is not given is chosen so
    that threads + workers of every local process fit the usable CPUs. Data in memory needs no
    workers; file data gets about half the budget for decoding (at most 8 workers)."""
    budget = max(1, usable_cpus() // max(1, local_world))
    if workers is None:
        workers = min(8, budget // 2) if file_data else 0
    if threads is None:
        threads = max(1, budget - workers)
    return threads, workers


def loader(
    dataset: Dataset,
    batch_size: int,
    workers: int,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    seed: int = 0,
    epoch: int = 0,
    world: int = 1,
    rank: int = 0,
    pin_memory: bool = False,
) -> tuple[DataLoader, DistributedSampler]:
    """A DataLoader whose order depends only on ``(seed, epoch)`` and the rank: the sampler is
    a ``DistributedSampler`` (plain single process: one replica), and worker RNGs come from a
    generator seeded the same way, so a resumed run draws the same batches and augmentations."""
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
    sampler.set_epoch(epoch)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return (
        DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=workers,
            drop_last=drop_last,
            generator=generator,
            pin_memory=pin_memory,
        ),
        sampler,
    )
