"""Deliberately broken migrations: each is caught, by the dynamic pass, with the right message.

One verify run covers the whole set (starting the harness imports torch and timm once).
"""

from __future__ import annotations

import pytest

from verify_helpers import VERIFY_FIXTURES, failures, rows_for, run_verify

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def broken():
    return run_verify(str(VERIFY_FIXTURES / "broken"), "--epochs", "2")


def _reasons(report, name):
    return [(c["code"], c["reason"]) for c in failures(report, name, phase="dynamic")]


def test_exit_code_is_one_when_a_check_fails(broken):
    code, report = broken
    assert code == 1
    assert report["summary"]["ok"] is False
    assert report["version"] == 1 and report["mode"] == "verify"


def test_good_migration_passes_every_check(broken):
    _, report = broken
    rows = rows_for(report, "good_migration.py")
    assert rows and all(c["status"] == "PASS" for c in rows), rows
    checks = {c["check"] for c in rows}
    assert "loss falls (float32 labels)" in checks
    assert any(c.startswith("metric correct / total") for c in checks)


def test_cross_entropy_left_with_float_targets_is_named(broken):
    _, report = broken
    reasons = _reasons(report, "ce_float_targets.py")
    assert ("ML001", "CrossEntropyLoss received float multi-hot targets: it trains a softmax over labels "
            "(wrong objective)") in reasons
    assert any(c["code"] == "ML001" for c in failures(report, "ce_float_targets.py", phase="static"))


def test_missing_float_cast_fails_on_int64_labels(broken):
    _, report = broken
    reasons = _reasons(report, "missing_float_cast.py")
    assert any(code == "ML010" and "received int64 targets" in reason for code, reason in reasons), reasons
    crash = [c for c in failures(report, "missing_float_cast.py") if c["check"] == "call (int64 labels)"]
    assert crash and "Traceback" in crash[0]["traceback"] and "missing_float_cast.py" in crash[0]["traceback"]
    # float32 labels work, so only the int64 run fails
    assert not [c for c in failures(report, "missing_float_cast.py", "dynamic") if "float32" in c["check"]]


def test_per_element_accuracy_divided_by_samples(broken):
    _, report = broken
    reasons = _reasons(report, "per_element_accuracy_by_samples.py")
    assert reasons and all(code == "ML021" for code, _ in reasons)
    assert "counts correct labels per element but divides by the sample count" in reasons[0][1]


def test_per_element_accuracy_inflated_by_negatives(broken):
    _, report = broken
    reasons = _reasons(report, "per_element_accuracy.py")
    assert reasons and all(code == "ML021" for code, _ in reasons)
    assert "equals per-element (label-wise) accuracy, inflated by negatives; reference exact match is" in reasons[0][1]


def test_softmax_before_threshold(broken):
    _, report = broken
    reasons = _reasons(report, "softmax_before_threshold.py")
    assert reasons and all(code == "ML024" for code, _ in reasons)
    assert "thresholded after a softmax" in reasons[0][1]


def test_log_softmax_left_in_the_model(broken):
    _, report = broken
    rows = failures(report, "log_softmax_in_model.py", phase="dynamic")
    model_rows = [c for c in rows if c["check"] == "model Net outputs"]
    assert model_rows and model_rows[0]["code"] == "ML103"
    assert "returns log-probabilities" in model_rows[0]["reason"]
    assert any(c["check"].startswith("loss at") and c["code"] == "ML103" for c in rows)


def test_module_level_script_is_reported_not_passed(broken):
    _, report = broken
    entry = [c for c in rows_for(report, "module_level_script.py") if c["check"] == "entry point"]
    # Other files of this run were exercised, so the row is a SKIP that names the problem.
    assert entry and entry[0]["status"] == "SKIP"
    assert "no callable entry point" in entry[0]["reason"]
    assert "migrate-ml sample-data" in entry[0]["hint"]
