"""Reference training on the digits sample data with the default model: time to validation
mAP >= 0.90, metrics reached within 60 s and 120 s, and training-loop overhead.

Runs (2 torch threads by default, CPU):
  1. --max-seconds 60 and 2. --max-seconds 120 (separate runs: the cosine schedule follows the
     clock, so each budget gets a full schedule). Time counts training steps plus the per-epoch
     validation pass, not data generation or model construction.
  3. Loop overhead: the reference loop (`train`, 2 epochs, no eval time counted) against a bare
     forward + loss + backward + AdamW step over the same pre-built batches in the same order.
Prints markdown tables. Run: python3 bench/bench_reference_training.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from timm.optim import create_optimizer_v2
from torch.utils.data import DistributedSampler

from migrate_ml_reference import create_reference_model, make_sample_tensors
from migrate_ml_reference.train import TrainConfig, choose_batch_size, train


def budget_run(seconds: float, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        return train(TrainConfig(out=out, epochs=10_000, max_seconds=seconds, threads=threads, progress=False))


def time_to(history: list[dict], target: float) -> str:
    for h in history:
        if h["val_mAP"] >= target:
            return f"{h['elapsed_seconds']:.1f} s (epoch {h['epoch']})"
    return "not reached"


def loop_overhead(threads: int, epochs: int = 2) -> tuple[float, float]:
    """(reference loop seconds, bare seconds) over the same epochs of batches.

    Both sides run warm: the first steps of a process pay for allocator growth and kernel
    selection, which would otherwise be charged to whichever loop runs first.
    """
    cfg = TrainConfig()
    cfg.batch_size = choose_batch_size(None, cfg.n_train)
    _warm_up(cfg, threads)
    with tempfile.TemporaryDirectory() as out:
        result = train(TrainConfig(out=out, epochs=epochs, threads=threads, batch_size=cfg.batch_size, progress=False))
    loop_seconds = sum(h["train_seconds"] for h in result["history"])

    images, targets, names = make_sample_tensors(cfg.sample, cfg.n_train, cfg.image_size, cfg.seed, "train")
    sampler = DistributedSampler(range(len(images)), num_replicas=1, rank=0, shuffle=True, seed=cfg.seed, drop_last=True)
    batches = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        for i in range(len(order) // cfg.batch_size):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            batches.append((images[idx], targets[idx]))
    torch.manual_seed(cfg.seed)
    model = create_reference_model(len(names))
    optimizer = create_optimizer_v2(model, opt="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    criterion = torch.nn.BCEWithLogitsLoss()
    model.train()
    start = time.perf_counter()
    for x, y in batches:
        loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return loop_seconds, time.perf_counter() - start


def _warm_up(cfg: TrainConfig, threads: int, steps: int = 30) -> None:
    torch.set_num_threads(threads)
    images, targets, names = make_sample_tensors(cfg.sample, cfg.batch_size * 4, cfg.image_size, cfg.seed, "train")
    model = create_reference_model(len(names))
    optimizer = create_optimizer_v2(model, opt="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    criterion = torch.nn.BCEWithLogitsLoss()
    for step in range(steps):
        i = (step % 4) * cfg.batch_size
        loss = criterion(model(images[i : i + cfg.batch_size]), targets[i : i + cfg.batch_size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budgets", type=float, nargs="+", default=[60.0, 120.0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved loop-overhead repeats")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"digits sample data (20k train / 2k val / 2k test, 32 px), default model, {args.threads} threads, torch {torch.__version__}\n")
    print("| budget | time to val mAP >= 0.90 | epochs | images/s | val mAP | test mAP | test micro F1 @0.5 | test exact match @0.5 | test exact match @tuned |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for seconds in args.budgets:
        r = budget_run(seconds, args.threads)
        run, half, tuned = r["run"], r["report_at_0.5"], r["report_at_tuned"]
        print(
            f"| {seconds:.0f} s | {time_to(r['history'], 0.90)} | {run['epochs_completed']} | {run['images_per_second']:.0f} "
            f"| {r['history'][-1]['val_mAP']:.4f} | {half['mAP']:.4f} | {half['F1_micro']:.4f} | {half['exact_match']:.4f} | {tuned['exact_match']:.4f} |"
        )

    # Interleaved repeats: the machine is noisy, so only ratios measured side by side count.
    pairs = [loop_overhead(args.threads) for _ in range(args.repeats)]
    ratios = sorted(loop / bare for loop, bare in pairs)
    print(f"\n| training loop (2 epochs, 156 steps of 256), {args.repeats} interleaved repeats | reference loop s | bare s (baseline) | overhead |")
    print("|---|---:|---:|---:|")
    for n, (loop_s, bare_s) in enumerate(pairs, 1):
        print(f"| repeat {n} | {loop_s:.2f} | {bare_s:.2f} | {100 * (loop_s / bare_s - 1):+.1f}% |")
    print(f"| median | | | {100 * (statistics.median(ratios) - 1):+.1f}% |")


if __name__ == "__main__":
    main()
