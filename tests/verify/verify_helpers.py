"""Helpers for the verify tests: run the real CLI once per fixture set and index its rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERIFY_FIXTURES = REPO / "tests" / "fixtures" / "verify"


def run_verify(*arguments: str, cwd: Path | None = None) -> tuple[int, dict]:
    """``migrate-ml verify ... --output-format json`` in a subprocess: (exit code, report)."""
    completed = subprocess.run(
        [sys.executable, "-m", "migrate_ml", "verify", *arguments, "--output-format", "json"],
        capture_output=True, text=True, cwd=cwd or REPO, env={**os.environ, "COLUMNS": "200"}, check=False,
    )
    assert completed.stdout, completed.stderr
    return completed.returncode, json.loads(completed.stdout)


def rows_for(report: dict, file_name: str) -> list[dict]:
    return [c for c in report["checks"] if Path(c["file"]).name == file_name]


def failures(report: dict, file_name: str, phase: str | None = None) -> list[dict]:
    return [c for c in rows_for(report, file_name) if c["status"] == "FAIL" and (phase is None or c["phase"] == phase)]


def not_passed(rows: list[dict]) -> list[dict]:
    """Rows that did not pass, except "loss falls" with one epoch (nothing to compare: a SKIP by design)."""
    return [c for c in rows if c["status"] != "PASS" and not (c["status"] == "SKIP" and c["check"].startswith("loss falls"))]
