"""The dynamic pass, seen from the CLI: write the harness spec, run it in a subprocess, read rows.

User code never runs in this process. The harness (``migrate_ml_reference.harness``, part of
the ``runtime`` extra) runs in a child interpreter started from a scratch folder, in a session
of its own (see :mod:`migrate_ml.verify.contain`), with the network cut off, and forks once
more per file so that each file has its own deadline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass

from migrate_ml.verify.checks import FAIL, Check
from migrate_ml.verify.contain import MARKER_VARIABLE, kill_marked, run_contained
from migrate_ml.verify.locate import FilePlan
from migrate_ml.verify.progress import ProgressLine

INSTALL_HINT = "pip install 'migrate-ml[runtime]'"
HARNESS_MODULE = "migrate_ml_reference.harness"
STARTUP_ALLOWANCE_S = 180.0
"""Importing torch, timm and torchmetrics once: seconds normally, minutes on a loaded machine."""
PER_FILE_GRACE_S = 10.0
MAX_EXTENSION = 8.0
"""How far a file's deadline may move past --timeout when its entry points' first steps show slow but steady work
(``migrate_ml_reference.harness.budget.MAX_EXTENSION``, which this module cannot import: the runtime is optional)."""

OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}


@dataclass(frozen=True)
class DynamicOptions:
    timeout: float = 60.0
    epochs: int = 3
    memory: int | None = None


def runtime_missing() -> str | None:
    """Why the dynamic pass cannot run here, or None. Looks the packages up without importing them."""
    for name in ("torch", "timm", "torchmetrics", "migrate_ml_reference"):
        if importlib.util.find_spec(name) is None:
            return f"the dynamic pass needs the reference runtime ({name} is not installed): {INSTALL_HINT}"
    if importlib.util.find_spec(HARNESS_MODULE) is None:
        return f"the installed reference runtime has no verify harness: {INSTALL_HINT}"
    return None


def run_dynamic(plans: list[tuple[FilePlan, float, str]], options: DynamicOptions) -> list[Check]:
    """Run the callable functions of each plan; ``(plan, threshold, display path)`` per file."""
    work = [(plan, threshold, shown) for plan, threshold, shown in plans if plan.runnable]
    if not work:
        return []
    scratch = tempfile.mkdtemp(prefix="migrate-ml-verify-")
    try:
        return _run(work, options, scratch, plans)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run(work: list[tuple[FilePlan, float, str]], options: DynamicOptions, scratch: str,
         plans: list[tuple[FilePlan, float, str]]) -> list[Check]:
    user_files = [os.path.abspath(plan.path) for plan, _, _ in work]
    trainer_calls = [{**plan.trainer, "path": os.path.abspath(plan.path)} for plan, _, _ in plans if plan.trainer]
    spec = {
        "version": 1,
        "result": os.path.join(scratch, "rows.json"),
        "scratch": scratch,
        "timeout": options.timeout,
        "epochs": options.epochs,
        "memory": options.memory,
        "units": [
            {
                "path": os.path.abspath(plan.path),
                "module": os.path.splitext(os.path.basename(plan.path))[0],
                "search_path": [os.path.dirname(os.path.abspath(plan.path))],
                "user_files": user_files,
                "threshold": threshold,
                "functions": [f.to_spec() for f in plan.callable_functions],
                "classes": [c.to_spec() for c in plan.callable_classes],
                "model_classes": plan.model_classes,
                "num_classes": plan.num_classes,
                "from_pretrained": plan.from_pretrained,
                # the file's own Trainer call, else the run's only one (a train.py beside the module's file)
                "trainer": next((t for t in trainer_calls if t["path"] == os.path.abspath(plan.path)),
                                trainer_calls[0] if len(trainer_calls) == 1 else None),
            }
            for plan, threshold, _ in work
        ],
    }
    spec_path = os.path.join(scratch, "spec.json")
    with open(spec_path, "w", encoding="utf-8") as handle:
        json.dump(spec, handle)
    environment = {**os.environ, **OFFLINE_ENVIRONMENT, MARKER_VARIABLE: scratch}
    limit = STARTUP_ALLOWANCE_S + len(work) * (options.timeout * MAX_EXTENSION + PER_FILE_GRACE_S)
    try:
        with ProgressLine(scratch, [display for _, _, display in work]):
            outcome = run_contained([sys.executable, "-m", HARNESS_MODULE, spec_path], cwd=scratch, env=environment,
                                    timeout=limit)
    finally:
        kill_marked(scratch)  # what left the harness's session, where no PID namespace killed it
    failure = ""
    if outcome.timed_out:
        failure = f"the verify harness did not finish within {limit:.0f} s\n{outcome.tail}"
    elif outcome.returncode != 0:
        failure = f"the verify harness {_ended(outcome.returncode)}:\n{outcome.tail}"
    rows: list[dict] = []
    if os.path.exists(spec["result"]):
        with open(spec["result"], encoding="utf-8") as handle:
            rows = json.load(handle)
    shown = {os.path.abspath(plan.path): display for plan, _, display in work}
    checks = [Check.from_harness(row, shown.get(os.path.abspath(row["file"]), row["file"])) for row in rows]
    reported = {os.path.abspath(row["file"]) for row in rows}
    # The harness reports files in order: the first one without rows is the one it was running.
    running = True
    for plan, _, display in work:
        if os.path.abspath(plan.path) in reported:
            continue
        reason, hint = _missing_result(failure, outcome.returncode, outcome.timed_out, running)
        checks.append(Check(file=display, check="run", status=FAIL, reason=reason, traceback=failure or None, hint=hint))
        running = False
    return checks


def _ended(returncode: int | None) -> str:
    signal_number = -returncode if returncode is not None and returncode < 0 else (
        returncode - 128 if returncode is not None and returncode > 128 else None)
    if signal_number is not None:
        try:
            return f"was killed by {signal.Signals(signal_number).name}"
        except ValueError:
            return f"was killed by signal {signal_number}"
    return f"exited with status {returncode}"


def _missing_result(failure: str, returncode: int | None, timed_out: bool, running: bool) -> tuple[str, str]:
    """Why a file has no rows, and whom to look at: a harness killed while it ran a file was
    most likely killed by that file's code (or by the system, out of memory), not broken."""
    first = failure.splitlines()[0].rstrip(":") if failure else "the harness wrote no result"
    killed = not timed_out and returncode is not None and (returncode < 0 or returncode > 128)
    if killed and running:
        return (f"not run to the end: {first} while running this file",
                "the file's code may have killed it (os.kill, killpg, exiting the parent) or the system did "
                "(out of memory: see --memory); run the file on `migrate-ml sample-data` output to see")
    if killed:
        return f"not run: {first} before this file", "the file that was running when it was killed has its own row"
    if "ModuleNotFoundError" in failure or "ImportError" in failure or not failure:
        return f"not run: {first}", f"check the runtime installation ({INSTALL_HINT})"
    return f"not run: {first}", "the harness's own output is in the traceback"
