"""The README demo: rewrite the bundled single-label example, then verify the whole project.

verify runs the training and evaluation functions (utils.py), checks the model factory
(train.py's create_model) and runs the prediction function (predict.py's predict) on a sample
image. The project must not pass: train.py and predict.py keep findings that need a human
(ImageFolder, best-accuracy checkpoint, one class name per prediction), and verify names exactly
those, statically and, for the prediction, by running it.
"""

from __future__ import annotations

import shutil

import pytest

from migrate_ml.cli import main
from verify_helpers import REPO, run_verify

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "vit_single_label"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = tmp_path_factory.mktemp("demo") / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert main(["rewrite", str(project)]) == 0  # in-process: the rewrite is the setup here, not what is tested
    return project


@pytest.fixture(scope="module")
def report(project):
    return run_verify(str(project), "--epochs", "2")


def _rows(report, file_name):
    return [c for c in report[1]["checks"] if c["file"].endswith(file_name)]


def test_training_and_evaluation_functions_pass(report):
    rows = _rows(report, "utils.py")
    assert any(c["function"] == "train_one_epoch" and c["check"].startswith("loss falls") and c["status"] == "PASS"
               for c in rows)
    assert any(c["function"] == "evaluate" and c["check"].startswith("metric") and c["status"] == "PASS" for c in rows)
    assert [c for c in rows if c["status"] != "PASS"] == []


def test_training_scripts_model_is_checked(report):
    rows = _rows(report, "train.py")
    assert ("model create_model outputs", "PASS") in {(c["check"], c["status"]) for c in rows}


def test_prediction_code_is_run_on_a_sample_image(report):
    rows = _rows(report, "predict.py")
    calls = [c for c in rows if c["check"].startswith("call")]
    assert calls and all(c["status"] == "PASS" and "a sample image file" in c["reason"] for c in calls)
    predictions = [c for c in rows if c["check"].startswith("prediction")]
    assert predictions and all(c["status"] == "FAIL" and c["code"] == "ML106" and c["line"] == 31 for c in predictions)
    assert "returned one class name" in predictions[0]["reason"]


def test_whole_project_fails_on_exactly_the_open_findings(report):
    code, data = report
    failed = sorted((c["phase"], c["code"], c["file"].rsplit("/", 1)[-1]) for c in data["checks"] if c["status"] == "FAIL")
    assert failed == [
        ("dynamic", "ML106", "predict.py"), ("dynamic", "ML106", "predict.py"),
        ("static", "ML101", "train.py"), ("static", "ML101", "train.py"), ("static", "ML106", "predict.py"),
        ("static", "ML107", "train.py"),
    ]
    assert code == 1
