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
    assert any(c["function"] == "train_one_epoch" and c["check"].startswith("loss falls") and c["status"] == "PASS"
               for c in report["checks"])
    failed = [c for c in report["checks"] if c["status"] == "FAIL"]
    dynamic = [f"{c['file']}:{c['line']} {c['check']}: {c['reason']}" for c in failed if c["phase"] == "dynamic"]
    assert not dynamic
    if failed:
        # Open REVIEW findings (a class-index dataset, a single-name lookup) are still
        # single-label by the definition; the demo must resolve or silence them.
        pytest.xfail("open findings after rewrite: " + "; ".join(f"{c['code']} {c['file']}:{c['line']}" for c in failed))
    assert code == 0
