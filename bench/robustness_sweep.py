"""Robustness sweep: ``migrate-ml rewrite --diff`` over every ``.py`` file of torch, torchvision
and timm (not part of CI).

The packages' ``.py`` files are copied into a scratch git repository (site-packages is never
touched). For each package the installed ``migrate-ml`` runs ``rewrite --diff -jN`` on the copy
and the sweep checks that

* the command did not crash (exit 0, 1 or 2, no traceback, no ``internal error`` line);
* the patch applies with ``git apply``, and every file it changes still parses with LibCST and,
  when the original compiled, with CPython;
* a second ``--diff`` on the patched copy is empty (idempotency).

Files the command could not process (input LibCST cannot parse, say) are counted separately.
Usage::

    /root/.pyenv/versions/3.11.7/bin/python3 bench/robustness_sweep.py [-j 2] [torch torchvision timm]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libcst

TOTALS = re.compile(
    r"(?P<changed>\d+) files? would be rewritten, (?P<unchanged>\d+) left unchanged, "
    r"(?P<findings>\d+) findings? needs? review(?:, (?P<errors>\d+) files? could not be processed)?"
)


def migrate_ml_command() -> list[str]:
    beside = Path(sys.executable).parent / "migrate-ml"
    return [str(beside)] if beside.exists() else [shutil.which("migrate-ml") or "migrate-ml"]


def copy_sources(package: str, into: Path) -> tuple[Path, int]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{package} is not installed")
    source = Path(list(spec.submodule_search_locations)[0])
    target = into / package
    count = 0
    for path in source.rglob("*.py"):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        count += 1
    return target, count


def compiles(data: bytes) -> bool:
    try:
        compile(data, "<sweep>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def sweep(package: str, scratch: Path, jobs: int) -> dict:
    tree, total = copy_sources(package, scratch)
    tool = migrate_ml_command()
    start = time.perf_counter()
    done = subprocess.run([*tool, "rewrite", "--diff", f"-j{jobs}", package], cwd=scratch, capture_output=True)
    elapsed = time.perf_counter() - start
    stderr = done.stderr.decode("utf-8", "replace")
    totals = TOTALS.search(stderr)
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    result = {
        "package": package,
        "py_files": total,
        "exit_code": done.returncode,
        "seconds": round(elapsed, 1),
        "processed": None,
        "changed": int(totals["changed"]) if totals else None,
        "findings": int(totals["findings"]) if totals else None,
        "errors": len(errors),
        "internal_errors": [line for line in errors if "internal error" in line],
        "crashed": done.returncode not in (0, 1, 2) or "Traceback" in stderr or totals is None,
        "error_lines": errors[:20],
    }
    if totals:
        result["processed"] = int(totals["changed"]) + int(totals["unchanged"]) + int(totals["errors"] or 0)
    patch = scratch / f"{package}.patch"
    patch.write_bytes(done.stdout)
    changed_files = sorted(set(re.findall(rb"^\+\+\+ b/(.+)$", done.stdout, re.MULTILINE)))
    originals = {name: (scratch / name.decode()).read_bytes() for name in changed_files}
    applied = subprocess.run(["git", "apply", patch.name], cwd=scratch, capture_output=True, text=True)
    result["patch_applies"] = applied.returncode == 0
    if not result["patch_applies"]:
        result["git_apply_error"] = applied.stderr[-2000:]
    not_parsing = []
    for name, before in originals.items():
        after = (scratch / name.decode()).read_bytes()
        try:
            libcst.parse_module(after)
        except Exception as error:  # the sweep records every failure, whatever its type
            not_parsing.append(f"{name.decode()}: LibCST: {error}"[:300])
            continue
        if compiles(before) and not compiles(after):
            not_parsing.append(f"{name.decode()}: CPython rejects the rewritten file")
    result["changed_outputs_checked"] = len(originals)
    result["changed_outputs_not_parsing"] = not_parsing
    again = subprocess.run([*tool, "rewrite", "--diff", f"-j{jobs}", package], cwd=scratch, capture_output=True)
    result["second_run_patch_bytes"] = len(again.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=["torch", "torchvision", "timm"])
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args()
    from migrate_ml.rules import load_rules

    results = []
    with tempfile.TemporaryDirectory(prefix="migrate-ml-sweep-") as folder:
        scratch = Path(folder)
        subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
        for package in args.packages:
            results.append(sweep(package, scratch, args.jobs))
            print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"rules": sorted(load_rules()), "results": results}, indent=2))


if __name__ == "__main__":
    main()
