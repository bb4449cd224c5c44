"""The harness's judgement of losses and metrics, without running user code."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from migrate_ml_reference.harness.checks_outputs import LastOp, never_negative_row  # noqa: E402
from migrate_ml_reference.harness.core import logits_form  # noqa: E402
from migrate_ml_reference.harness.judge import (  # noqa: E402
    METRIC_NAME,
    averaged_references,
    is_metric_name,
    judge_metric,
    loss_failure,
)

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
        (68, "PASS", None, "exact-match count (0.5300 of 128 samples)"),  # correct += ....sum().item(); return correct
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
    got_status, reason, got_code, _ = judge_metric(value, REFERENCE, 0.5)
    assert (got_status, got_code) == (status, code)
    assert words in reason


NAMED_REFERENCE = {
    **REFERENCE,
    "others": {
        "F1_micro": 0.8, "F1_samples": 0.7, "F1_samples(zero_division=1)": 0.75, "recall_samples": 0.9,
        "precision_weighted": 0.65, "jaccard_micro": 0.6, "hamming_loss": 0.1, "1-hamming_loss": 0.9,
        "precision_micro": 0.4345, "precision_macro": 0.4343, "jaccard_samples": 0.62,
    },
}
"""Per-element accuracy (0.9) is also the samples recall and 1 - Hamming loss: only the name tells them apart."""


@pytest.mark.parametrize(
    ("name", "value", "status", "code", "words"),
    [
        ("f1_samples", 0.7, "PASS", None, "equals the reference F1_samples 0.7000"),
        ("eval_f1_samples", 0.75, "PASS", None, "equals the reference F1_samples(zero_division=1)"),
        ("f1_samples", 0.8, "FAIL", None, "0.8 equals the reference F1_micro 0.8000, not the samples average its "
         "name states: the reference F1_samples is 0.7000"),
        ("macro_f1", 0.8, "PASS", None, "equals the reference F1_micro"),  # no macro reference here: nothing to tell
        ("recall_samples", 0.9, "PASS", None, "equals the reference recall_samples"),
        # both within TOLERANCE: the nearest is named
        ("precision", 0.4343, "PASS", None, "equals the reference precision_macro 0.4343"),
        ("precision", 0.4346, "PASS", None, "equals the reference precision_micro 0.4345"),
        ("hamming_accuracy", 0.9, "PASS", None, "equals the reference 1-hamming_loss"),
        # the Stack Overflow "hamming score" is the samples Jaccard index
        ("hamming_score", 0.62, "PASS", None, "0.62 equals the reference jaccard_samples 0.6200 at threshold 0.5"),
        ("hamming_score", 0.6, "FAIL", None, "differs from every reference hamming"),
        ("hamming_loss", 0.1, "PASS", None, "equals the reference hamming_loss"),
        ("jaccard_micro", 0.6, "PASS", None, "equals the reference jaccard_micro"),
        ("mIoU", 0.6, "PASS", None, "equals the reference jaccard_micro"),
        ("precision_weighted", 65.0, "PASS", None, "equals the reference precision_weighted"),
        ("score", 0.65, "PASS", None, "equals the reference precision_weighted"),
        ("subset_acc", 0.53, "PASS", None, "equals the reference exact match"),
        ("jaccard_accuracy", 0.6, "PASS", None, "jaccard_micro"),
        # per-element accuracy named accuracy fails, though it equals the samples recall
        ("accuracy", 0.9, "FAIL", "ML021", "inflated by negatives"),
        ("val_acc", 0.2, "FAIL", "ML024", "softmax"),
        ("acc", 0.8, "FAIL", "ML021", "differs from the reference exact match 0.5300 at threshold 0.5 (per-label "
         "accuracy would be 0.9000); it equals the reference F1_micro 0.8000"),
        ("exact_match", 0.65, "FAIL", "ML021", "differs from the reference exact match"),
        ("f1", 0.6, "FAIL", None,
         "differs from every reference F1 at threshold 0.5: F1_micro 0.8000, F1_samples 0.7000"),
        ("f1", 0.53, "FAIL", None, "differs from every reference F1"),
        ("jaccard", 0.9, "FAIL", None, "differs from every reference jaccard at threshold 0.5: jaccard_micro 0.6000"),
        ("recall_weighted", 0.9, "PASS", None, "recall_samples 0.9000 at threshold 0.5"),
    ],
)
def test_judge_metric_by_name(name, value, status, code, words):
    got_status, reason, got_code, hint = judge_metric(value, NAMED_REFERENCE, 0.5, name=name)
    assert (got_status, got_code) == (status, code), reason
    assert words in reason
    assert (status == "PASS") == (hint == "")


def test_a_metric_named_after_an_average_fails_on_another_average():
    _, reason, _, _ = judge_metric(0.62, NAMED_REFERENCE, 0.5, name="hamming_score")
    assert reason == "0.62 equals the reference jaccard_samples 0.6200 at threshold 0.5"
    status, _, _, hint = judge_metric(0.8, {**NAMED_REFERENCE, "others": {"F1_micro": 0.8, "F1_macro": 0.6}}, 0.5,
                                       name="macro_f1")
    assert status == "FAIL" and hint == "compute it with average='macro', or name it after the average it computes"


def test_metric_names():
    for name in ("jaccard_micro", "mean_iou", "meanIoU", "val_mIoU", "hamming_loss", "f1_samples", "subset_acc"):
        assert is_metric_name(name), name
    for name in ("val_loss", "previous_best", "num_samples"):
        assert not is_metric_name(name), name


def test_averaged_references_agree_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    targets = torch.tensor([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 1]])
    preds = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0], [1, 1, 0, 1]])
    # row 1: no true and no predicted label; row 4: no prediction; class 2: never true
    references = averaged_references(preds, targets)
    scorers = {"F1": metrics.f1_score, "precision": metrics.precision_score, "recall": metrics.recall_score,
               "jaccard": metrics.jaccard_score}
    for measure, scorer in scorers.items():
        for average in ("micro", "macro", "weighted", "samples"):
            key = f"{measure}_{average}"
            for zero_division in (0, 1):
                expected = scorer(targets.numpy(), preds.numpy(), average=average, zero_division=zero_division)
                got = references.get(f"{key}(zero_division=1)", references[key]) if zero_division else references[key]
                assert got == pytest.approx(expected, abs=1e-6), (key, zero_division)
    assert "F1_samples(zero_division=1)" in references and "F1_micro(zero_division=1)" not in references


def test_logits_form():
    z = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    assert logits_form(z) == "raw"
    assert logits_form(torch.log_softmax(z, 1)) == "log_softmax"
    assert logits_form(torch.softmax(z, 1)) == "softmax"
    assert logits_form(torch.zeros(4, 5)) == "raw"


def _record(**overrides):
    record = {"kind": "bce", "label": "BCEWithLogitsLoss", "logits_shape": [4, 5], "logits_form": "raw",
              "target_dtype": "float32", "target_float": True, "target_shape": [4, 5], "target_min": 0.0,
              "target_max": 1.0, "loss": 0.6, "error": None}
    record.update(overrides)
    return record


def test_loss_failures():
    assert loss_failure(_record(), "float32 labels") is None
    assert loss_failure(_record(kind="ce", label="CrossEntropyLoss"), "float32 labels")[1] == "ML001"
    assert loss_failure(_record(kind="ce", label="F.cross_entropy"), "float32 labels")[1] == "ML002"
    assert loss_failure(_record(kind="nll", label="F.nll_loss"), "float32 labels")[1] == "ML003"
    assert loss_failure(_record(target_dtype="int64", target_float=False), "int64 labels")[1] == "ML010"
    assert loss_failure(_record(target_dtype="int64", target_float=False), "float32 labels")[1] == "ML011"
    assert loss_failure(_record(target_shape=[4]), "float32 labels")[1] == "ML101"
    assert loss_failure(_record(logits_form="log_softmax"), "float32 labels")[1] == "ML103"
    assert "non-finite" in loss_failure(_record(loss=float("inf")), "float32 labels")[0]


@pytest.mark.parametrize(
    ("name", "judged"),
    [("val_mAP", True), ("mAP", True), ("val/map", True), ("test_map_50", True), ("val_m_ap", True),
     ("val_acc", True), ("heatmap_loss", False), ("mapping_size", False), ("lr", False)],
)
def test_metric_names_judged(name, judged):
    """A returned or logged value is judged when its name says metric (val_mAP too, not heatmap)."""
    assert bool(METRIC_NAME.search(name)) is judged


def _outputs_and_last_op(model):
    last = LastOp(set()).watch(model)
    with torch.no_grad(), last:
        out = model(torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)))
    return out, last


def test_a_linear_head_whose_outputs_all_fall_above_zero_is_raw_logits_and_a_relu_after_it_is_not():
    """An untrained head's bias can put every output above 0 (one initialisation in 30 of a 5-label head): its
    outputs are logits all the same, since a Linear layer clamps nothing. The bias stands for that draw here."""
    head = torch.nn.Linear(8, 5)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.constant_(head.bias, 0.2)
    features = [torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), head]
    out, last = _outputs_and_last_op(torch.nn.Sequential(*features))
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert never_negative_row("Net.forward", out, last) is None
    out, last = _outputs_and_last_op(torch.nn.Sequential(*features, torch.nn.ReLU(inplace=True)))  # same tensor
    status, reason, _line, _hint = never_negative_row("Net.forward", out, last)
    assert status == "FAIL" and "never returns a negative value" in reason and "its last op is self.5 (ReLU)" in reason
