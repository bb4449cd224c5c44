"""The README demo: rewrite the bundled single-label example, then verify it.

The demo verifies utils.py (the module with the training and evaluation functions) and must
pass. The whole project must not pass: train.py and predict.py keep review findings that need
a human (ImageFolder, best-accuracy checkpoint, one class name per prediction), and verify
names exactly those.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from verify_helpers import REPO, run_verify

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "vit_single_label"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = tmp_path_factory.mktemp("demo") / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    rewrite = subprocess.run([sys.executable, "-m", "migrate_ml", "rewrite", str(project)],
                             capture_output=True, text=True, check=False)
    assert rewrite.returncode == 0, rewrite.stderr
    return project


def test_demo_verify_of_the_training_module_passes(project):
    code, report = run_verify(str(project / "utils.py"), "--epochs", "2")
    assert any(c["function"] == "train_one_epoch" and c["check"].startswith("loss falls") and c["status"] == "PASS"
               for c in report["checks"])
    assert [c for c in report["checks"] if c["status"] == "FAIL"] == []
    assert code == 0


def test_whole_project_fails_on_exactly_the_open_review_findings(project):
    code, report = run_verify(str(project), "--epochs", "1")
    failed = [c for c in report["checks"] if c["status"] == "FAIL"]
    assert [c for c in failed if c["phase"] == "dynamic"] == []
    assert sorted((c["code"], c["file"].rsplit("/", 1)[-1]) for c in failed) == [
        ("ML101", "train.py"), ("ML101", "train.py"), ("ML106", "predict.py"), ("ML107", "train.py"),
    ]
    assert code == 1
