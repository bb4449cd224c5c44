"""`migrate-ml reference train` as a user runs it: throughput against a plain timm loop, wall time
against --max-seconds, and the demo's validation mAP at idle and beside a busy process.

Every run is a fresh `migrate-ml reference train` process (the CLI, default settings) or a fresh
process of the plain loop, so each pays its own start-up and first-step warm-up alike.

1. Throughput. The reference run trains `--epochs E` (nothing else set); its images/s is what it
   reports in metrics.json: images stepped on over the seconds of its epochs' training loops
   (batches drawn, forward, loss, backward, optimizer step, schedule, budget checks, progress);
   the per-epoch validation pass, checkpoints and plots are not counted. The baseline, run right
   after it, is the loop a user writes with timm: `timm.create_model` (same model and kwargs),
   AdamW from `timm.optim.create_optimizer_v2`, `BCEWithLogitsLoss`, forward + loss + backward +
   step and nothing else, AMP off, with the threads, workers and batch size the reference run
   chose (read from its metrics.json), timed the same way (its epochs' loops) over the same
   images: the digits sample in memory (indexed by a shuffled permutation, as the trainer does),
   and with `--files N` a folder of N JPEGs (its labels.csv, the train rows of the reference
   run's splits.csv, timm's eval transform and a plain DataLoader, a new one each epoch as the
   trainer does). The baseline runs right after its reference run; the ratio is taken within a pair.
   Beside other work (load 4-8 on 2 cores) single pairs swung from 0.7 to 1.37: publish medians
   measured on a quiet machine.
2. Wall time: `reference train --max-seconds S` from the process start to its exit, against S.
3. The demo: `./dev demo`'s training command (`--sample digits --max-seconds 300 --max-steps
   400`), at idle and beside a second process burning one core (started `--busy-lead` seconds
   before, so the load average has seen some of it, as it would on a machine already busy).

Prints markdown tables with the command, machine, and the 1-minute load average before and after
each run. Run: .venv/bin/python bench/bench_reference_trainer.py [--repeats 3] [--epochs 2]
[--budgets 30 60] [--files 4000] [--busy-lead 20] [--only throughput wall demo]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The installed command, as a user runs it.
CLI = [str(Path(sys.executable).with_name("migrate-ml")), "reference"]
DEMO_ARGS = ["--sample", "digits", "--max-seconds", "300", "--max-steps", "400"]
TARGET_RATIO = 0.95
TARGET_OVERHEAD = 0.10
TARGET_DEMO_MAP = 0.95
BURN = "while True: pass"
WARNINGS: set[str] = set()


def load() -> float:
    return os.getloadavg()[0]


def reference_run(out: Path, args: list[str]) -> dict:
    """One `reference train` process; its metrics.json plus wall and CPU seconds and load averages."""
    before_load, before_cpu = load(), os.times()
    start = time.perf_counter()
    done = subprocess.run([*CLI, "train", "--out", str(out), "--quiet", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"reference train {' '.join(args)} failed:\n{done.stderr}")
    # Warnings (too few updates, nothing above 0.5) go under the table, not into it.
    WARNINGS.update(f"{' '.join(args)}: {line}" for line in done.stderr.splitlines() if line.startswith("warning"))
    after_cpu = os.times()
    metrics = json.loads((out / "metrics.json").read_text())
    cpu = (after_cpu.children_user - before_cpu.children_user) + (after_cpu.children_system - before_cpu.children_system)
    return {"metrics": metrics, "wall": wall, "cpu": cpu, "load": (before_load, load())}


def timm_run(settings: dict) -> dict:
    before = load()
    done = subprocess.run([sys.executable, __file__, "--timm-loop", json.dumps(settings)], check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]), load=(before, load()))


def plain_timm_loop(settings: dict) -> dict:
    """The baseline, in its own process: images/s over `epochs` epochs of a bare timm loop."""
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config
    from timm.optim import create_optimizer_v2
    from torch.utils.data import DataLoader, Dataset

    from migrate_ml_reference.model import DEFAULT_MODEL, DEFAULT_MODEL_KWARGS

    torch.set_num_threads(settings["threads"])
    torch.manual_seed(0)
    bs, data = settings["batch_size"], settings["data"]
    if data is None:
        from migrate_ml_reference.sample import make_sample_tensors

        images, targets, classes = make_sample_tensors("digits", 20000, 32, 0, "train")
    else:
        classes = Path(data, "classes.txt").read_text().split()
        with open(settings["splits"], newline="") as fh:
            train_rows = {Path(row["image"]).name for row in csv.DictReader(fh) if row["split"] == "train"}
        with open(Path(data, "labels.csv"), newline="") as fh:
            rows = [row for row in csv.DictReader(fh) if row["file"] in train_rows]
        files = [str(Path(data, "images", row["file"])) for row in rows]
        targets = torch.tensor([[float(c in row["labels"].split()) for c in classes] for row in rows])
    model = timm.create_model(DEFAULT_MODEL, pretrained=False, num_classes=len(classes), **DEFAULT_MODEL_KWARGS)
    config = resolve_data_config(args={"input_size": (3, 32, 32), "crop_pct": 1.0, "crop_mode": "squash"}, model=model)
    if data is None:
        images = (images - torch.tensor(config["mean"]).view(1, 3, 1, 1)) / torch.tensor(config["std"]).view(1, 3, 1, 1)
    else:
        from PIL import Image

        transform = create_transform(**config, is_training=False)

        class Files(Dataset):
            def __len__(self):
                return len(files)

            def __getitem__(self, i):
                with Image.open(files[i]) as image:
                    return transform(image.convert("RGB")), targets[i]

    optimizer = create_optimizer_v2(model, opt="adamw", lr=2e-3, weight_decay=0.05)
    criterion = torch.nn.BCEWithLogitsLoss()
    model.train()
    seconds = steps = 0
    for _ in range(settings["epochs"]):
        start = time.perf_counter()
        if data is None:
            order = torch.randperm(len(images))
            batches = ((images[idx], targets[idx]) for idx in order[: len(order) // bs * bs].split(bs))
        else:
            batches = DataLoader(Files(), batch_size=bs, shuffle=True, drop_last=True, num_workers=settings["workers"])
        for x, y in batches:
            loss = criterion(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        seconds += time.perf_counter() - start
    return {"images_per_second": steps * bs / seconds, "steps": steps}


def throughput(tmp: Path, label: str, data: Path | None, epochs: int, repeats: int) -> list[str]:
    rows, ratios = [], []
    data_args = ["--data", str(data)] if data is not None else []
    for repeat in range(repeats):
        out = tmp / f"throughput-{'files' if data is not None else 'sample'}-{repeat}"
        ref = reference_run(out, [*data_args, "--epochs", str(epochs)])
        r = ref["metrics"]["run"]
        base = timm_run({"threads": r["threads"], "workers": r["workers"], "batch_size": r["batch_size"], "epochs": epochs,
                         "data": str(data) if data is not None else None, "splits": str(out / "splits.csv")})
        ratio = r["images_per_second"] / base["images_per_second"]
        ratios.append(ratio)
        rows.append(f"| {label} | {repeat + 1} | {r['threads']} / {r['workers']} "
                    f"| {r['batch_size']} | {r['steps']} | {r['images_per_second']:,.0f} | {base['images_per_second']:,.0f} | {ratio:.3f} "
                    f"| {ref['load'][0]:.2f} → {base['load'][1]:.2f} |")
        shutil.rmtree(out)
    median = statistics.median(ratios)
    rows.append(f"| {label} | **median** | | | | | | **{median:.3f}** ({'met' if median >= TARGET_RATIO else 'NOT met'}) | |")
    return rows


def wall_overhead(tmp: Path, budgets: list[float]) -> list[str]:
    rows = []
    for seconds in budgets:
        out = tmp / f"wall-{seconds:g}"
        run = reference_run(out, ["--max-seconds", f"{seconds:g}"])
        r, history = run["metrics"]["run"], run["metrics"]["history"]
        overhead = run["wall"] / seconds - 1
        # The budget clock counts from the process start: history[-1] is the end of the last
        # epoch's validation, run["elapsed_seconds"] the end of scoring the test split.
        # An empty history: the budget ran out before the first update.
        epochs = (f"| {history[0]['elapsed_seconds'] - history[0]['train_seconds']:.1f} s | {history[-1]['elapsed_seconds']:.1f} s "
                  f"| {run['wall'] - history[-1]['elapsed_seconds']:.1f} s ") if history else "| — | — | — "
        rows.append(f"| {seconds:g} s | {run['wall']:.1f} s | {overhead:+.1%} ({'met' if overhead <= TARGET_OVERHEAD else 'NOT met'}) "
                    f"{epochs}| {r['steps']} ({r['epochs_completed']} epochs, {r['stopped_by']}) "
                    f"| {r['best_val_mAP']:.4f} | {run['cpu']:.1f} s | {run['load'][0]:.2f} → {run['load'][1]:.2f} |")
        shutil.rmtree(out)
    return rows


def demo(tmp: Path, busy_lead: float) -> list[str]:
    rows = []
    for busy in (False, True):
        burner = subprocess.Popen([sys.executable, "-c", BURN]) if busy else None
        try:
            if burner is not None:
                time.sleep(busy_lead)
            run = reference_run(tmp / f"demo-{busy}", DEMO_ARGS)
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        m = run["metrics"]
        r, val_map = m["run"], m["run"]["best_val_mAP"]
        rows.append(f"| {'one core burnt by a second process' if busy else 'idle (no process of ours beside it)'} | {r['threads']} "
                    f"| {r['steps']} ({r['stopped_by']}) | {run['wall']:.1f} s | **{val_map:.4f}** ({'met' if val_map >= TARGET_DEMO_MAP else 'NOT met'}) "
                    f"| {m['report_at_0.5']['mAP']:.4f} | {run['load'][0]:.2f} → {run['load'][1]:.2f} |")
        shutil.rmtree(tmp / f"demo-{busy}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3, help="reference/timm pairs per data kind")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each throughput run")
    parser.add_argument("--budgets", type=float, nargs="+", default=[30.0, 60.0])
    parser.add_argument("--files", type=int, default=4000, help="JPEGs in the file-data throughput case (0: skip it)")
    parser.add_argument("--busy-lead", type=float, default=20.0, help="seconds the burner runs before the busy demo starts")
    parser.add_argument("--only", nargs="+", choices=("throughput", "wall", "demo"), default=["throughput", "wall", "demo"])
    parser.add_argument("--timm-loop", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.timm_loop:
        print(json.dumps(plain_timm_loop(json.loads(args.timm_loop))))
        return

    import timm
    import torch

    print(f"`{' '.join(['.venv/bin/python', 'bench/bench_reference_trainer.py', *sys.argv[1:]])}`: {len(os.sched_getaffinity(0))} usable "
          f"CPUs, torch {torch.__version__}, timm {timm.__version__}, Python {sys.version.split()[0]}; 1-minute load average "
          f"{load():.2f} at the start")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "throughput" in args.only:
            print(f"\n**Throughput**: `migrate-ml reference train --epochs {args.epochs}` (default settings otherwise) against a plain "
                  f"timm loop with the threads, workers and batch size it chose, same images; images/s of the epochs' training "
                  f"loops (validation, checkpoints and plots not counted). Target: ratio ≥ {TARGET_RATIO}.\n")
            print("| data | pair | threads / workers | batch | updates | reference images/s | plain timm images/s (baseline) | ratio | load before → after |")
            print("|---|---|---:|---:|---:|---:|---:|---:|---|")
            for row in throughput(tmp, "digits sample, in memory", None, args.epochs, args.repeats):
                print(row, flush=True)
            if args.files:
                from bench_reference_pipeline import make_folder

                folder = make_folder(tmp / "jpegs", args.files)
                for row in throughput(tmp, f"{args.files:,} JPEGs (64 px → 32)", folder, args.epochs, args.repeats):
                    print(row, flush=True)
        if "wall" in args.only:
            print(f"\n**Wall time**: `migrate-ml reference train --max-seconds S` (default settings otherwise), from before the "
                  f"process starts to its exit. Target: at most {TARGET_OVERHEAD:.0%} over S.\n")
            print("| S | wall | over S | start-up + first epoch's validation | last epoch ends | after it (test split, files, plots, exit) | updates | val mAP | CPU | load before → after |")
            print("|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
            for row in wall_overhead(tmp, args.budgets):
                print(row, flush=True)
        if "demo" in args.only:
            print(f"\n**The demo**: `migrate-ml reference train {' '.join(DEMO_ARGS)}` (`./dev demo`, step 4); the busy case "
                  f"starts `python -c \"{BURN}\"` {args.busy_lead:g} s before it. Target: val mAP ≥ {TARGET_DEMO_MAP}.\n")
            print("| machine | threads chosen | updates | wall | val mAP (best epoch) | test mAP | load before → after |")
            print("|---|---:|---|---:|---:|---:|---|")
            for row in demo(tmp, args.busy_lead):
                print(row, flush=True)
    for warning in sorted(WARNINGS):
        print(f"\n- {warning}")
    print(f"\n1-minute load average at the end: {load():.2f}")


if __name__ == "__main__":
    main()
