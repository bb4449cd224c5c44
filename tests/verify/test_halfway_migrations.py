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


def test_double_sigmoid_before_a_with_logits_loss_fails_at_the_loss(halfway):
    _, report = halfway
    rows = _dynamic_failures(report, "double_sigmoid.py")
    assert {r["check"] for r in rows} == {"loss at double_sigmoid.py:14 (int64 labels)",
                                          "loss at double_sigmoid.py:14 (float32 labels)"}, rows
    assert all(r["line"] == 14 and "sigmoid is applied twice" in r["reason"] for r in rows)


def test_model_whose_last_op_clamps_fails_naming_the_op(halfway):
    _, report = halfway
    rows = {r["check"]: r for r in rows_for(report, "relu_last.py") if r["check"].startswith("model ")}
    net, head, sigmoid = rows["model Net outputs"], rows["model HeadNet outputs"], rows["model SigmoidNet outputs"]
    assert net["status"] == "FAIL" and net["line"] == 14
    assert "never returns a negative value" in net["reason"] and "its last op is torch.relu at relu_last.py:14" in net["reason"]
    assert head["status"] == "FAIL" and "its last op is self.head.3 (ReLU)" in head["reason"]
    # a sigmoid last is a multi-label model for BCELoss: the loss check, not this one, catches a second sigmoid
    assert sigmoid["status"] == "PASS" and "sigmoid probabilities" in sigmoid["reason"]


def test_metric_named_macro_that_is_micro_fails(halfway):
    _, report = halfway
    rows = _dynamic_failures(report, "macro_named_micro.py")
    assert len(rows) == 2 and all(r["line"] == 13 for r in rows), rows
    assert "equals the reference F1_micro" in rows[0]["reason"] and "not the macro average its name states" in rows[0]["reason"]


def test_metric_never_reset_is_blamed_at_compute_with_a_reset_hint(halfway):
    _, report = halfway
    rows = _dynamic_failures(report, "metric_never_reset.py")
    state = [r for r in rows if r["check"].startswith("metric state")]
    assert len(state) == 2 and all(r["line"] == 27 for r in state), rows
    assert "never reset (updated at line 23)" in state[0]["reason"]
    assert all("reset()" in r["hint"] and "exact match" not in r["hint"] for r in rows)
    assert all(r["line"] == 27 for r in rows if r["check"].startswith("logged train_acc"))
    ok = rows_for(report, "metric_reset_ok.py")
    assert ok and all(r["status"] == "PASS" for r in ok), [r for r in ok if r["status"] != "PASS"]


def test_metric_updated_by_calling_it_and_never_reset_is_blamed_too(halfway):
    """Calling a Metric (forward) replaces its state tensors, and with them its hash: it must
    still be followed, as Lightning modules usually update metrics this way."""
    _, report = halfway
    rows = _dynamic_failures(report, "metric_never_reset_by_call.py")
    state = [r for r in rows if r["check"].startswith("metric state")]
    assert len(state) == 2 and all(r["line"] == 27 for r in state), rows
    assert "never reset (updated at line 23)" in state[0]["reason"]
