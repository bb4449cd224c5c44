"""The reference runtime's file pipeline: DataLoader throughput and memory.

Builds a folder of small JPEGs (64 px `shapes` sample images, labels.csv + classes.txt), then:
  1. images/s of the training DataLoader (2 workers, timm transform to 32 px, batch 256);
  2. peak RSS (main process, and the largest worker) reading 20k and 100k images through the
     pipeline (labels read and validated, 30 batches drawn), each in a fresh process, and the
     baseline the runtime used before: decoding every image into one in-memory tensor (20k).
The 100k set hard-links the 20k JPEGs under new names (distinct paths, same bytes). The training
loop against a plain timm loop, on files as on the sample data, is bench_reference_trainer.py.
Prints markdown. Run: python3 bench/bench_reference_pipeline.py [--workers 2] [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGE_SIDE = 64
TRAIN_SIDE = 32
BATCH = 256


def make_folder(root: Path, n: int, source: Path | None = None) -> Path:
    """``n`` JPEGs + labels.csv; with ``source``, hard links to its images under new names."""
    import csv

    import torch
    from PIL import Image

    from migrate_ml_reference.sample import class_names, make_sample_tensors

    (root / "images").mkdir(parents=True)
    names = class_names("shapes")
    rows = []
    if source is None:
        images, targets, _ = make_sample_tensors("shapes", n, IMAGE_SIDE, seed=0, split="train")
        pixels = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for i in range(n):
            Image.fromarray(pixels[i]).save(root / "images" / f"{i:06d}.jpg", quality=90)
            rows.append((f"{i:06d}.jpg", " ".join(names[j] for j in torch.nonzero(targets[i]).flatten().tolist())))
    else:
        with open(source / "labels.csv", newline="") as fh:
            base = list(csv.reader(fh))[1:]
        for i in range(n):
            name, labels = base[i % len(base)]
            os.link(source / "images" / name, root / "images" / f"{i:06d}.jpg")
            rows.append((f"{i:06d}.jpg", labels))
    (root / "classes.txt").write_text("".join(f"{c}\n" for c in names))
    with open(root / "labels.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("file", "labels"))
        writer.writerows(rows)
    return root


def _train_loader(data: Path, workers: int, epoch: int = 0):
    from migrate_ml_reference import create_reference_model, read_labels
    from migrate_ml_reference.dataset import ImageFiles
    from migrate_ml_reference.pipeline import create_transform, loader, resolve_data_config

    table = read_labels(data)
    model = create_reference_model(len(table.classes), image_size=TRAIN_SIDE)
    transform = create_transform(resolve_data_config(model, TRAIN_SIDE))
    dataset = ImageFiles(table.files, table.targets.float(), table.classes, transform)
    return loader(dataset, BATCH, workers, shuffle=True, drop_last=True, seed=0, epoch=epoch)[0], table


def throughput(data: Path, workers: int, batches: int = 40) -> float:
    data_loader, _ = _train_loader(data, workers)
    batches = min(batches, len(data_loader) - 1)
    it = iter(data_loader)
    next(it)  # worker start-up and the first batch are not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * BATCH / (time.perf_counter() - start)


def _rss_child(data: str, mode: str, workers: int) -> None:
    """Runs in a fresh process; prints JSON peak RSS (MiB) of itself and its largest worker."""
    if mode == "pipeline":
        data_loader, table = _train_loader(Path(data), workers)
        it = iter(data_loader)
        for _ in range(min(30, len(data_loader))):
            next(it)
        del it
        count = len(table.files)
    else:  # the pre-pipeline baseline: every image decoded into one tensor
        from migrate_ml_reference import load_tensors, open_dataset

        images, _ = load_tensors(open_dataset(data), TRAIN_SIDE)
        count = len(images)
    # VmHWM is this process image's own peak (ru_maxrss would carry over the bench parent's peak
    # through fork + exec); workers have exited, so RUSAGE_CHILDREN holds the largest one's.
    status = Path("/proc/self/status").read_text()
    self_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"images": count, "main_mib": self_kib / 1024, "worker_mib": child_kib / 1024}))


def peak_rss(data: Path, mode: str, workers: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--rss-child", str(data), mode, str(workers)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--n-large", type=int, default=100_000)
    parser.add_argument("--rss-child", nargs=3)
    args = parser.parse_args()
    if args.rss_child:
        _rss_child(args.rss_child[0], args.rss_child[1], int(args.rss_child[2]))
        return

    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        small = make_folder(Path(tmp) / "small", args.n)
        large = make_folder(Path(tmp) / "large", args.n_large, source=small)
        print(f"wrote {args.n} JPEGs ({IMAGE_SIDE} px) + {args.n_large} hard links in {time.perf_counter() - start:.1f} s")

        rate = throughput(small, args.workers)
        print(f"\nDataLoader, {args.workers} workers, batch {BATCH}, decode + timm transform to {TRAIN_SIDE} px: {rate:,.0f} images/s")

        print("\n| data | images | peak RSS main (MiB) | peak RSS largest worker (MiB) |\n|---|---:|---:|---:|")
        for label, folder, mode in (("pipeline", small, "pipeline"), ("pipeline", large, "pipeline"),
                                    ("baseline: all decoded in memory", small, "in-memory")):
            rss = peak_rss(folder, mode, args.workers)
            print(f"| {label} | {rss['images']:,} | {rss['main_mib']:.0f} | {rss['worker_mib']:.0f} |")
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
