"""Cost of the reference metrics and the exact threshold tuner at N=100k samples, C=20 classes.

Compares the exact per-class F1 tuner (sort + cumulative sums) with a 101-point threshold grid,
and exact average precision with torchmetrics' binned variant (thresholds=101), on the same
scores. Prints a markdown table. Run: python3 bench/bench_metrics.py [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchmetrics.functional.classification import multilabel_average_precision

from migrate_ml_reference import multilabel_metrics, tune_thresholds


def grid_tune(probs: torch.Tensor, targets: torch.Tensor, points: int = 101) -> torch.Tensor:
    """The usual baseline: try thresholds 0, 0.01, ..., 1 for every class, keep the best F1."""
    grid = torch.linspace(0, 1, points)
    positives = targets.sum(0)
    best_f1 = torch.full((probs.shape[1],), -1.0)
    best_t = torch.full((probs.shape[1],), 0.5)
    for t in grid:
        pred = probs > t
        tp = (pred & targets.bool()).sum(0)
        f1 = 2 * tp / (pred.sum(0) + positives).clamp(min=1)
        better = f1 > best_f1
        best_f1 = torch.where(better, f1, best_f1)
        best_t = torch.where(better, t, best_t)
    return best_t


def mean_f1(probs: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor) -> float:
    pred = probs > thresholds
    tp = (pred & targets.bool()).sum(0)
    return float((2 * tp / (pred.sum(0) + targets.sum(0)).clamp(min=1)).mean())


def timed(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--c", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    targets = (torch.rand(args.n, args.c, generator=g) < 0.15).long()
    # Scores that separate the classes imperfectly, with class-dependent calibration so the
    # best threshold differs per class and is not on a 0.01 grid.
    logits = 2.0 * targets + torch.randn(args.n, args.c, generator=g) - torch.linspace(0.5, 2.5, args.c)
    probs = torch.sigmoid(logits)

    rows = []
    t_exact, thr_exact = timed(lambda: tune_thresholds(probs, targets), args.repeats)
    t_grid, thr_grid = timed(lambda: grid_tune(probs, targets), args.repeats)
    rows.append(("threshold tuning, exact (sort + cumsum)", t_exact, f"mean per-class F1 {mean_f1(probs, targets, thr_exact):.5f}"))
    rows.append(("threshold tuning, 101-point grid (baseline)", t_grid, f"mean per-class F1 {mean_f1(probs, targets, thr_grid):.5f}"))
    t_ap, ap = timed(lambda: multilabel_average_precision(probs, targets, num_labels=args.c), args.repeats)
    t_binned, ap_binned = timed(lambda: multilabel_average_precision(probs, targets, num_labels=args.c, thresholds=101), args.repeats)
    rows.append(("mAP, torchmetrics exact", t_ap, f"mAP {float(ap):.5f}"))
    rows.append(("mAP, torchmetrics binned thresholds=101 (baseline)", t_binned, f"mAP {float(ap_binned):.5f} (error {float(ap_binned - ap):+.5f})"))
    t_full, _ = timed(lambda: multilabel_metrics(probs, targets, thr_exact), args.repeats)
    rows.append(("full metric set (multilabel_metrics, per-class thresholds)", t_full, "all keys of metrics.json"))

    print(f"N={args.n}, C={args.c}, threads={args.threads}, torch {torch.__version__}, median of {args.repeats}\n")
    print("| operation | seconds | result |")
    print("|---|---:|---|")
    for name, seconds, note in rows:
        print(f"| {name} | {seconds:.3f} | {note} |")


if __name__ == "__main__":
    main()
