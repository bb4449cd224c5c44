"""Half-migrations that run without error but measure or train the wrong thing: each FAILs at the line to fix.

One verify run covers the whole set (starting the harness imports torch and timm once).
"""

from __future__ import annotations

import pytest

from verify_helpers import VERIFY_FIXTURES, failures, rows_for, run_verify

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def halfway():
    return run_verify(str(VERIFY_FIXTURES / "halfway"), "--epochs", "2")


def _dynamic_failures(report, name):
    return failures(report, name, phase="dynamic")


def test_threshold_on_raw_logits_is_named_at_the_comparison(halfway):
    _, report = halfway
    rows = _dynamic_failures(report, "threshold_on_logits.py")
    assert len(rows) == 2 and all(r["line"] == 13 for r in rows), rows
    assert all(r["reason"].startswith("threshold applied to logits (`outputs > THRESHOLD`, line 13)") for r in rows)
    assert "torch.sigmoid(logits) > THRESHOLD" in rows[0]["hint"]


def test_threshold_on_eval_prediction_logits_in_compute_metrics(halfway):
    _, report = halfway
    rows = _dynamic_failures(report, "hf_compute_metrics_on_logits.py")
    assert {r["check"].split(" (")[0] for r in rows} == {"metric f1_micro", "metric exact_match"}, rows
    assert all(r["line"] == 10 and "threshold applied to logits" in r["reason"] for r in rows)
    assert all("eval_pred.predictions > THRESHOLD" in r["reason"] for r in rows)


def test_threshold_on_probabilities_passes(halfway):
    _, report = halfway
    rows = rows_for(report, "sigmoid_threshold_ok.py")
    assert rows and all(r["status"] == "PASS" for r in rows), [r for r in rows if r["status"] != "PASS"]
