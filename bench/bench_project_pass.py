"""CPU cost of the whole-project pre-pass (``engine/project.py``) on the installed timm tree.

Wall times on the shared development machine vary by ±30 % under load, so this measures CPU
time: the pre-pass in-process with ``time.process_time``, and, interleaved, ``migrate-ml
rewrite --diff -j1`` and a bare LibCST round trip as child processes with
``resource.getrusage(RUSAGE_CHILDREN)`` (user + system, workers included). Usage::

    .venv/bin/python bench/bench_project_pass.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUND_TRIP = (
    "import sys, pathlib, libcst\n"
    "for path in pathlib.Path(sys.argv[1]).rglob('*.py'):\n"
    "    libcst.parse_module(path.read_text(encoding='utf-8')).code\n"
)


def child_cpu(command: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from migrate_ml.engine.project import build_project_facts
    from migrate_ml.engine.runner import discover
    from migrate_ml.engine.transform import Settings

    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("timm is not installed")
    tree = str(list(spec.submodule_search_locations)[0])
    paths = list(discover([tree]))
    migrate_ml = str(Path(sys.executable).parent / "migrate-ml")
    times: dict[str, list[float]] = {"project pass": [], "rewrite --diff -j1": [], "libcst round trip": []}
    for _ in range(args.repeat):
        start = time.process_time()
        build_project_facts(paths, Settings())
        times["project pass"].append(time.process_time() - start)
        times["rewrite --diff -j1"].append(child_cpu([migrate_ml, "rewrite", "--diff", "-j1", tree]))
        times["libcst round trip"].append(child_cpu([sys.executable, "-c", ROUND_TRIP, tree]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({
        "files": len(paths),
        "cpu_s": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "median_cpu_s": {name: round(v, 3) for name, v in medians.items()},
        "project pass / rewrite": round(medians["project pass"] / medians["rewrite --diff -j1"], 4),
        "rewrite / round trip": round(medians["rewrite --diff -j1"] / medians["libcst round trip"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
