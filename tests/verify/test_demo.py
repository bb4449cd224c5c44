"""The README demo: rewrite the bundled single-label example, then verify it passes."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from verify_helpers import REPO, run_verify

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "vit_single_label"


def test_rewritten_example_verifies(tmp_path):
    if not EXAMPLE.is_dir():
        pytest.skip("examples/vit_single_label is not there yet")
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    rewrite = subprocess.run([sys.executable, "-m", "migrate_ml", "rewrite", str(project)],
                             capture_output=True, text=True, check=False)
    assert rewrite.returncode in (0, 1), rewrite.stderr
    code, report = run_verify(str(project), "--epochs", "2")
    failed = [f"{c['file']}:{c['line']} {c['check']}: {c['reason']}" for c in report["checks"] if c["status"] == "FAIL"]
    assert code == 0 and not failed, failed
    assert any(c["function"] == "train_one_epoch" and c["check"].startswith("loss falls") and c["status"] == "PASS"
               for c in report["checks"])
