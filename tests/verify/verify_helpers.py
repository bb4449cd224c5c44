"""Helpers for the verify tests: run the real CLI once per fixture set and index its rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERIFY_FIXTURES = REPO / "tests" / "fixtures" / "verify"
# verify's default --timeout (60 s) cuts off a LightningModule's first training_step on a busy machine, and
# a test asserting PASS or FAIL would then read "timed out". Tests about the time limit pass their own.
GENEROUS_TIMEOUT = "600"


def run_verify(*arguments: str, cwd: Path | None = None) -> tuple[int, dict]:
    """``migrate-ml verify ... --output-format json`` in a subprocess: (exit code, report).

    Without a ``--timeout`` among ``arguments`` the run gets ``GENEROUS_TIMEOUT``."""
    timeout = [] if "--timeout" in arguments else ["--timeout", GENEROUS_TIMEOUT]
    completed = subprocess.run(
        [sys.executable, "-m", "migrate_ml", "verify", *arguments, *timeout, "--output-format", "json"],
        capture_output=True, text=True, cwd=cwd or REPO, env={**os.environ, "COLUMNS": "200"}, check=False,
    )
    assert completed.stdout, completed.stderr
    return completed.returncode, json.loads(completed.stdout)


def run_verify_split(paths: list[Path], *options: str, runs: int = 2) -> tuple[int, dict]:
    """``run_verify(*paths, *options)`` as ``runs`` verify processes at once over alternate paths, in one
    report: the worst exit code, every check, the summed summary. For files that do not import one another:
    each file's child imports lightning or transformers anew, and the runs overlap that work on a machine
    with more than one core."""
    timeout = [] if "--timeout" in options else ["--timeout", GENEROUS_TIMEOUT]
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "migrate_ml", "verify", *map(str, paths[index::runs]), *options, *timeout,
             "--output-format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "COLUMNS": "200"},
        )
        for index in range(min(runs, len(paths)))
    ]
    codes, reports = [], []
    for process in started:
        stdout, stderr = process.communicate()
        assert stdout, stderr
        codes.append(process.returncode)
        reports.append(json.loads(stdout))
    counts = ("files", "checks", "passed", "failed", "skipped")
    summary = {key: sum(r["summary"][key] for r in reports) for key in counts}
    summary["ok"] = all(r["summary"]["ok"] for r in reports)
    return max(codes), {"checks": [c for r in reports for c in r["checks"]], "summary": summary}


def rows_for(report: dict, file_name: str) -> list[dict]:
    return [c for c in report["checks"] if Path(c["file"]).name == file_name]


def failures(report: dict, file_name: str, phase: str | None = None) -> list[dict]:
    return [c for c in rows_for(report, file_name) if c["status"] == "FAIL" and (phase is None or c["phase"] == phase)]


def not_passed(rows: list[dict]) -> list[dict]:
    """Rows that did not pass, except "loss falls" with one epoch (nothing to compare: a SKIP by design)."""
    return [c for c in rows if c["status"] != "PASS" and not (c["status"] == "SKIP" and c["check"].startswith("loss falls"))]
