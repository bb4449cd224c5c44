"""The harness's judgement of losses and metrics, without running user code."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from migrate_ml_reference.harness import METRIC_NAME, _judge_metric, _logits_form, _loss_failure  # noqa: E402

REFERENCE = {
    "exact_match": 0.53,
    "last_batch_exact_match": 0.25,
    "per_element": 0.9,
    "per_element_over_samples": 6.3,
    "softmax_exact_match": 0.2,
    "others": {"F1_micro": 0.8},
    "samples": 128,
}


@pytest.mark.parametrize(
    ("value", "status", "code", "words"),
    [
        (0.53, "PASS", None, "reference exact match"),
        (53.0, "PASS", None, "reference exact match"),
        (53, "PASS", None, "reference exact match"),
        (0.25, "PASS", None, "of the last batch"),
        (0.9, "FAIL", "ML021", "inflated by negatives"),
        (90.0, "FAIL", "ML021", "inflated by negatives"),
        (6.3, "FAIL", "ML021", "divides by the sample count"),
        (0.2, "FAIL", "ML024", "softmax"),
        (0.8, "PASS", None, "F1_micro"),
        (0.3, "FAIL", "ML021", "differs from the reference exact match"),
        (float("nan"), "FAIL", "ML021", "nan"),
    ],
)
def test_judge_metric(value, status, code, words):
    got_status, reason, got_code, _ = _judge_metric(value, REFERENCE, 0.5)
    assert (got_status, got_code) == (status, code)
    assert words in reason


def test_logits_form():
    z = torch.randn(4, 5)
    assert _logits_form(z) == "raw"
    assert _logits_form(torch.log_softmax(z, 1)) == "log_softmax"
    assert _logits_form(torch.softmax(z, 1)) == "softmax"
    assert _logits_form(torch.zeros(4, 5)) == "raw"


def _record(**overrides):
    record = {"kind": "bce", "label": "BCEWithLogitsLoss", "logits_shape": [4, 5], "logits_form": "raw",
              "target_dtype": "float32", "target_float": True, "target_shape": [4, 5], "target_min": 0.0,
              "target_max": 1.0, "loss": 0.6, "error": None}
    record.update(overrides)
    return record


def test_loss_failures():
    assert _loss_failure(_record(), "float32 labels") is None
    assert _loss_failure(_record(kind="ce", label="CrossEntropyLoss"), "float32 labels")[1] == "ML001"
    assert _loss_failure(_record(kind="ce", label="F.cross_entropy"), "float32 labels")[1] == "ML002"
    assert _loss_failure(_record(kind="nll", label="F.nll_loss"), "float32 labels")[1] == "ML003"
    assert _loss_failure(_record(target_dtype="int64", target_float=False), "int64 labels")[1] == "ML010"
    assert _loss_failure(_record(target_dtype="int64", target_float=False), "float32 labels")[1] == "ML011"
    assert _loss_failure(_record(target_shape=[4]), "float32 labels")[1] == "ML101"
    assert _loss_failure(_record(logits_form="log_softmax"), "float32 labels")[1] == "ML103"
    assert "non-finite" in _loss_failure(_record(loss=float("inf")), "float32 labels")[0]


@pytest.mark.parametrize(
    ("name", "judged"),
    [("val_mAP", True), ("mAP", True), ("val/map", True), ("test_map_50", True), ("val_m_ap", True),
     ("val_acc", True), ("heatmap_loss", False), ("mapping_size", False), ("lr", False)],
)
def test_metric_names_judged(name, judged):
    """A returned or logged value is judged when its name says metric (val_mAP too, not heatmap)."""
    assert bool(METRIC_NAME.search(name)) is judged
