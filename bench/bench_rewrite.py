"""Speed of ``migrate-ml rewrite --diff`` on the installed timm source tree (not part of CI).

Measured in one run, interleaved so that load from other work on the machine hits every
command alike: a bare LibCST round trip (``parse_module(src).code`` for every file, in a fresh
interpreter so that start-up counts on both sides), ``migrate-ml rewrite --diff -j1``, ``-j2``
and with no ``-j`` (the default: one worker per usable CPU), each repeated; medians are
reported. Then the wall time of one small file, start-up
included. The bytecode of each timed ``migrate_ml`` package is written first, as an install has it. The installed ``migrate-ml`` script next to this interpreter is called the way a user
calls it. ``--compare NAME=PATH`` times another ``migrate-ml`` executable (another checkout's,
say ``main``) with ``rewrite --diff -j1`` in the same interleaved rounds, so that a change is
judged against its baseline under the same load. Usage::

    .venv/bin/python bench/bench_rewrite.py [--repeat 3] [--compare main=/path/to/migrate-ml] [--torchfix /path/to/torchfix]

``--torchfix PATH`` also times TorchFix (``torchfix TREE``: its own checks, no fixes
written), installed in a scratch virtual environment, in the same rounds.

``--jobs-only`` compares the default ``-j`` with ``-j1`` alone, side by side (alternating which
goes first), with the CPU time of each run and the load average before it: on a shared machine
the load says how many of the CPUs the workers could actually get.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUND_TRIP = """
import sys, libcst
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as handle:
        libcst.parse_module(handle.read()).code
"""

SMALL_TRAINING_FILE = """\
import torch
import torch.nn as nn

criterion = nn.CrossEntropyLoss()


def train_step(model, images, labels):
    logits = model(images)
    loss = criterion(logits, labels)
    preds = logits.argmax(dim=1)
    return loss, (preds == labels).float().mean()
"""


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{name} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def migrate_ml_command() -> list[str]:
    beside = Path(sys.executable).parent / "migrate-ml"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("migrate-ml")
    if found is None:
        sys.exit("migrate-ml is not installed (pip install -e .)")
    return [found]


def compile_bytecode(executable: str) -> None:
    """Write the bytecode of the ``migrate_ml`` package that ``executable`` (a ``migrate-ml`` script)
    runs, as ``pip install`` does: an editable checkout has none until an import writes it, and none
    is written where ``PYTHONDONTWRITEBYTECODE`` is set, so every run would compile the package's
    sources again (about 0.3 s of a small file's 0.8 s on the 2-core development machine), which no
    installed copy does."""
    python = Path(executable).parent / "python"
    command = [str(python if python.exists() else sys.executable), "-c", _COMPILE_PACKAGE]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


_COMPILE_PACKAGE = "import compileall, os, sys, migrate_ml; sys.exit(not compileall.compile_dir(os.path.dirname(migrate_ml.__file__), quiet=1))"


CPU_TIMES: dict[str, list[float]] = {}
"""CPU seconds (user + system) of each timed command, by name: on a loaded machine the wall
time of a run swings by half, its CPU time much less."""


def timed_with_cpu(command: list[str], allowed: tuple[int, ...] = (0, 1)) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the command and its worker processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in allowed:
        sys.exit(f"{' '.join(command[:4])} … exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def timed(command: list[str], allowed: tuple[int, ...] = (0, 1), name: str = "") -> float:
    """Wall seconds of ``command``; its CPU seconds are recorded under ``name``."""
    wall, cpu = timed_with_cpu(command, allowed)
    if name:
        CPU_TIMES.setdefault(name, []).append(cpu)
    return wall


def compare_jobs(tree: Path, tool: list[str], repeat: int) -> dict:
    commands = {
        "rewrite --diff -j1": [*tool, "rewrite", "--diff", "-j1", str(tree)],
        "rewrite --diff (default -j)": [*tool, "rewrite", "--diff", str(tree)],
    }
    runs: list[dict] = []
    for repetition in range(repeat):
        names = list(commands) if repetition % 2 == 0 else list(reversed(commands))
        for name in names:
            load = os.getloadavg()[0]
            wall, cpu = timed_with_cpu(commands[name])
            runs.append({"command": name, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "load_1min_before": round(load, 2)})
            print(f"{name}: {wall:.2f}s wall, {cpu:.2f}s cpu, load {load:.2f}", file=sys.stderr)
    medians = {
        name: {key: round(statistics.median(r[key] for r in runs if r["command"] == name), 3) for key in ("wall_s", "cpu_s")}
        for name in commands
    }
    speedup = medians["rewrite --diff -j1"]["wall_s"] / medians["rewrite --diff (default -j)"]["wall_s"]
    return {"runs": runs, "medians": medians, "default_speedup_over_j1": round(speedup, 2)}


def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except FileNotFoundError:
        pass
    from importlib.metadata import version

    from migrate_ml.engine.runner import usable_cpus

    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "libcst": version("libcst"),
        "usable_cpus": str(usable_cpus()),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs-only", action="store_true", help="compare the default -j with -j1 only")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also time this migrate-ml executable (rewrite --diff -j1) in the same rounds",
    )
    parser.add_argument("--torchfix", metavar="PATH", help="also time this torchfix executable on the tree in the same rounds")
    args = parser.parse_args()

    tree = package_dir("timm")
    files = sorted(str(p) for p in tree.rglob("*.py"))
    tool = migrate_ml_command()
    from migrate_ml.rules import load_rules

    for executable in [tool[0], *(spec.partition("=")[2] for spec in args.compare)]:
        if executable:
            compile_bytecode(executable)
    info = {"machine": machine(), "tree": str(tree), "files": len(files), "rules": sorted(load_rules())}
    if args.jobs_only:
        report = {**info, **compare_jobs(tree, tool, args.repeat)}
        report["machine"]["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(json.dumps(report, indent=2))
        return
    commands = {
        "libcst round trip": [sys.executable, "-c", ROUND_TRIP, *files],
        "rewrite --diff -j1": [*tool, "rewrite", "--diff", "-j1", str(tree)],
        "rewrite --diff -j2": [*tool, "rewrite", "--diff", "-j2", str(tree)],
        "rewrite --diff (default -j)": [*tool, "rewrite", "--diff", str(tree)],
    }
    for spec in args.compare:
        name, _, path = spec.partition("=")
        if not path:
            sys.exit(f"--compare expects NAME=PATH, got {spec!r}")
        commands[f"{name}: rewrite --diff -j1"] = [path, "rewrite", "--diff", "-j1", str(tree)]
    if args.torchfix:
        # TorchFix exits non-zero when it reports anything.
        commands["torchfix (comparison)"] = [args.torchfix, str(tree)]
    times: dict[str, list[float]] = {name: [] for name in commands}
    for repetition in range(args.repeat):
        for name, command in commands.items():
            times[name].append(timed(command, allowed=tuple(range(256)) if name.startswith("torchfix") else (0, 1), name=name))
        print(f"repetition {repetition + 1}: " + ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()), file=sys.stderr)

    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder, "plain.py")
        plain.write_text("print('hello')\n")
        training = Path(folder, "train.py")
        training.write_text(SMALL_TRAINING_FILE)
        small = {
            "python start-up (baseline)": [sys.executable, "-c", "pass"],
            "python + import libcst (baseline)": [sys.executable, "-c", "import libcst"],
            "small file without triggers": [*tool, "rewrite", "--diff", str(plain)],
            "small training file (rules fire)": [*tool, "rewrite", "--diff", str(training)],
        }
        for name, command in small.items():
            times[name] = [timed(command, name=name) for _ in range(max(5, args.repeat))]

    medians = {name: statistics.median(values) for name, values in times.items()}
    round_trip = medians["libcst round trip"]
    j1, j2 = medians["rewrite --diff -j1"], medians["rewrite --diff -j2"]
    default = medians["rewrite --diff (default -j)"]
    targets = {
        "rewrite --diff (-j1) <= 1/3 of round trip": (j1 / round_trip, j1 <= round_trip / 3),
        "-j2 >= 1.7x faster than -j1": (j1 / j2, j1 / j2 >= 1.7),
        "default -j faster than -j1": (j1 / default, default < j1),
        "small training file < 0.5 s": (medians["small training file (rules fire)"], medians["small training file (rules fire)"] < 0.5),
    }
    for spec in args.compare:
        name = spec.partition("=")[0]
        ratio = medians[f"{name}: rewrite --diff -j1"] / round_trip
        targets[f"{name}: rewrite --diff (-j1) <= 1/3 of round trip"] = (ratio, ratio <= 1 / 3)
    cpu = {name: statistics.median(values) for name, values in CPU_TIMES.items()}
    cpu_ratios = {
        name: round(value / cpu["libcst round trip"], 3) for name, value in cpu.items() if "-j1" in name or "torchfix" in name
    }
    info["machine"]["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report = {
        **info,
        "cpu_medians_s": {name: round(value, 3) for name, value in cpu.items()},
        "cpu_ratio_to_round_trip": cpu_ratios,
        "times_s": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "medians_s": {name: round(value, 3) for name, value in medians.items()},
        "targets": {name: {"value": round(value, 3), "met": met} for name, (value, met) in targets.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
