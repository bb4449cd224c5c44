"""Entry points beyond module functions: LightningModules, Hugging Face compute_metrics, trainer
classes. Each kind has a correct migration that passes and broken ones that fail naming the line.

Two verify runs at once cover the set (each starts the harness, importing torch and timm, once).
"""

from __future__ import annotations

import pytest

from verify_helpers import VERIFY_FIXTURES, failures, not_passed, rows_for, run_verify_split

pytestmark = pytest.mark.slow

for framework in ("lightning", "pytorch_lightning", "transformers"):  # the test extra installs them
    pytest.importorskip(framework)


@pytest.fixture(scope="module")
def report():
    return run_verify_split(sorted((VERIFY_FIXTURES / "entry_points").glob("*.py")), "--epochs", "1")[1]


def _dynamic_failures(report, name):
    return [(c["line"], c["check"], c["code"], c["reason"]) for c in failures(report, name, phase="dynamic")]


@pytest.mark.parametrize("name", ["lightning_good.py", "lightning_manual_good.py", "lightning_trainer_reads.py",
                                  "hf_metrics_good.py", "trainer_good.py", "pretrained_backbones.py", "deit_engine.py",
                                  "lightning_hydra_template.py", "lightning_hf_model.py"])
def test_correct_migrations_pass(report, name):
    rows = rows_for(report, name)
    assert rows and not_passed(rows) == []


def test_lightning_module_is_trained_and_its_logged_metric_judged(report):
    rows = rows_for(report, "lightning_good.py")
    checks = {(c["function"], c["check"]) for c in rows}
    assert ("LitClassifier.training_step", "loss falls (float32 labels)") in checks
    assert ("LitClassifier.validation_step", "logged val_acc (float32 labels)") in checks
    logged = next(c for c in rows if c["check"] == "logged val_acc (int64 labels)")
    assert logged["line"] == 28 and "equals the reference exact match" in logged["reason"]


def test_lightning_manual_optimisation_trains_and_its_logged_metric_judged(report):
    rows = rows_for(report, "lightning_manual_good.py")
    checks = {(c["function"], c["check"], c["line"]) for c in rows}
    assert ("LitManual.training_step", "loss at lightning_manual_good.py:26 (int64 labels)", 26) in checks
    assert ("LitManual.training_step", "loss falls (float32 labels)", 22) in checks
    logged = next(c for c in rows if c["check"] == "logged val_exact_match (float32 labels)")
    assert logged["line"] == 40 and "equals the reference exact match" in logged["reason"]


def test_lightning_manual_cross_entropy_and_epoch_end_per_element_accuracy(report):
    rows = _dynamic_failures(report, "lightning_manual_ce.py")
    assert {(line, check, code) for line, check, code, _ in rows} == {
        (22, "loss at lightning_manual_ce.py:22 (int64 labels)", "ML002"),
        (22, "loss at lightning_manual_ce.py:22 (float32 labels)", "ML002"),
        (36, "logged val_acc (int64 labels)", "ML021"), (36, "logged val_acc (float32 labels)", "ML021")}
    assert "cross_entropy received float multi-hot targets" in rows[0][3]
    assert "equals per-element (label-wise) accuracy" in rows[-1][3]  # logged in on_validation_epoch_end


def test_lightning_module_reading_its_trainer(report):
    """OneCycleLR over self.trainer.estimated_stepping_batches, stepped every batch (one step too many
    would raise), and self.current_epoch / self.trainer.max_epochs / self.global_step in the step;
    exact match logged in on_validation_epoch_end from the collected outputs."""
    rows = rows_for(report, "lightning_trainer_reads.py")
    judged = {c["check"]: (c["status"], c["line"], c["reason"]) for c in rows}
    assert judged["logged val_f1 (int64 labels)"][0] == "PASS" and "reference F1_micro" in judged[
        "logged val_f1 (int64 labels)"][2]
    assert judged["logged val_exact_match (float32 labels)"][:2] == ("PASS", 38)


def test_lightning_per_element_accuracy_names_the_log_line(report):
    rows = _dynamic_failures(report, "lightning_per_element.py")
    assert [(line, check, code) for line, check, code, _ in rows] == [
        (25, "logged val_acc (int64 labels)", "ML021"), (25, "logged val_acc (float32 labels)", "ML021")]
    assert "equals per-element (label-wise) accuracy, inflated by negatives" in rows[0][3]


def test_lightning_sample_labels_follow_the_files_class_count(report):
    loss = next(c for c in rows_for(report, "lightning_per_element.py") if c["check"].startswith("loss at"))
    assert "target [32, 5]" in loss["reason"]  # NUM_CLASSES = 5


def test_arg_max_left_in_a_lightning_metric(report):
    rows = _dynamic_failures(report, "lightning_argmax_metric.py")
    assert {(line, check) for line, check, _, _ in rows} == {
        (24, "logged test_acc (int64 labels)"), (24, "logged test_acc (float32 labels)")}
    static = {(c["line"], c["code"]) for c in failures(report, "lightning_argmax_metric.py", phase="static")}
    assert (23, "ML020") in static


def test_hf_compute_metrics_per_element_accuracy(report):
    rows = _dynamic_failures(report, "hf_metrics_per_element.py")
    assert [(line, check, code) for line, check, code, _ in rows] == [
        (9, "metric accuracy (int64 labels)", "ML021"), (9, "metric accuracy (float32 labels)", "ML021")]


def test_hf_compute_metrics_other_averages_pass_and_per_element_accuracy_fails(report):
    rows = [c for c in rows_for(report, "hf_metrics_samples_jaccard.py") if c["check"].startswith("metric ")]
    judged = {c["check"]: (c["status"], c["code"], c["reason"]) for c in rows}
    for labels in ("int64", "float32"):
        for name, reference in [("f1_samples", "F1_samples"), ("precision_samples", "precision_samples"),
                                ("recall_samples", "recall_samples"), ("jaccard_samples", "jaccard_samples"),
                                ("jaccard_micro", "jaccard_micro"), ("jaccard_macro", "jaccard_macro"),
                                ("f1_weighted", "F1_weighted"), ("hamming_accuracy", "1-hamming_loss")]:
            status, _, reason = judged[f"metric {name} ({labels} labels)"]
            assert status == "PASS" and f"equals the reference {reference}" in reason, (name, reason)
        # the same number as hamming_accuracy, but named accuracy: exact match is meant
        status, code, reason = judged[f"metric accuracy ({labels} labels)"]
        assert (status, code) == ("FAIL", "ML021") and "inflated by negatives" in reason


def test_trainer_class_cross_entropy_on_float_targets(report):
    rows = _dynamic_failures(report, "trainer_ce_float.py")
    assert rows and all(line == 15 and code == "ML001" for line, _, code, _ in rows)
    assert "CrossEntropyLoss received float multi-hot targets" in rows[0][3]
    assert {c["function"] for c in failures(report, "trainer_ce_float.py", phase="dynamic")} == {"Trainer.train_epoch"}


def test_item_loop_over_multi_hot_rows_fails_at_its_line(report):
    rows = failures(report, "trainer_item_loop.py", phase="dynamic")
    assert [(c["line"], c["check"]) for c in rows] == [(16, "call (int64 labels)"), (16, "call (float32 labels)")]
    assert "cannot be converted to Scalar" in rows[0]["reason"] and "rule ML021" in rows[0]["hint"]


def test_no_nothing_to_run_rows_for_classes(report):
    assert not [c for c in report["checks"] if c["reason"].startswith("nothing to run")]


@pytest.mark.parametrize("name", ["hf_model_good.py", "accelerate_loop.py"])
def test_framework_forms_pass(report, name):
    rows = rows_for(report, name)
    assert rows and not_passed(rows) == []
    assert any(c["check"].startswith("metric exact_match") for c in rows)


def test_hf_model_built_offline_and_its_problem_type_checked(report):
    rows = rows_for(report, "hf_model_good.py")
    assert ("problem_type of AutoModelForImageClassification.from_pretrained", 10, "PASS") in {
        (c["check"], c["line"], c["status"]) for c in rows}


def test_missing_problem_type_fails_at_the_from_pretrained_line(report):
    rows = failures(report, "hf_missing_problem_type.py")
    assert {(c["phase"], c["line"], c["code"]) for c in rows} == {("static", 4, "ML005"), ("dynamic", 4, "ML005")}
    dynamic = next(c for c in rows if c["phase"] == "dynamic")
    assert "infers single_label_classification" in dynamic["reason"]


def test_accelerate_per_element_count(report):
    rows = _dynamic_failures(report, "accelerate_per_element.py")
    assert rows and all(line == 12 and code == "ML021" for line, _, code, _ in rows)
    assert "divides by the sample count" in rows[0][3]


def test_wrong_criterion_from_the_caller_names_its_construction(report):
    rows = failures(report, "criterion_from_caller.py", phase="dynamic")
    assert rows and all(c["line"] == 14 and c["code"] == "ML001" for c in rows)
    assert rows[0]["check"] == "loss at criterion_from_caller.py:7 (int64 labels)"
    assert "the criterion passed to train_one_epoch() is built at criterion_from_caller.py:14" in rows[0]["reason"]


def test_model_and_optimizer_built_the_way_the_caller_builds_them(report):
    rows = rows_for(report, "model_from_caller.py")
    assert rows and not_passed(rows) == []
    calls = {c["check"]: c["reason"] for c in rows if c["function"] == "train_one_epoch" and c["check"].startswith("call")}
    assert len(calls) == 2
    for reason in calls.values():  # the loop reads SGD's momentum: the stand-in AdamW would raise KeyError
        assert "model built as SmallNet(...) at model_from_caller.py:41" in reason
        assert "optimizer built as SGD(...) at model_from_caller.py:42" in reason


def test_label_count_follows_the_models_head(report):
    losses = [c["reason"] for c in rows_for(report, "model_from_caller.py") if c["check"].startswith("loss at")]
    assert losses and all("target [32, 5]" in reason for reason in losses)


def test_wrong_model_from_the_caller_names_its_construction(report):
    rows = [c for c in failures(report, "model_from_caller_softmax.py", phase="dynamic") if c["check"].startswith("loss at")]
    assert len(rows) == 2 and all(c["line"] == 18 and c["code"] == "ML024" for c in rows)
    assert "the model passed to train_one_epoch() is built as Classifier(...) at model_from_caller_softmax.py:25" in rows[0]["reason"]
    static = failures(report, "model_from_caller_softmax.py", phase="static")
    assert [(c["line"], c["code"]) for c in static] == [(13, "ML100")]


def test_pretrained_backbones_are_built_untrained_offline(report):
    steps = [c for c in rows_for(report, "pretrained_backbones.py") if c["check"].startswith("steps")]
    assert len(steps) == 2 and all(c["status"] == "PASS" for c in steps)  # timm pretrained=True, torchvision weights=


def test_from_pretrained_that_never_runs_is_a_skip_next_to_the_other_checks(report):
    rows = {(c["check"], c["status"]) for c in rows_for(report, "hf_pretrained_in_main.py")}
    assert ("problem_type", "SKIP") in rows
    assert ("metric exact_match (float32 labels)", "PASS") in rows


def test_lightning_module_wrapping_a_hugging_face_model_gets_an_hf_style_sample_model(report):
    logged = [c for c in rows_for(report, "lightning_hf_model.py") if c["check"].startswith("logged val_acc")]
    assert len(logged) == 2 and all(c["status"] == "PASS" and "reference exact match" in c["reason"] for c in logged)


def test_a_metric_logged_per_batch_is_judged_against_the_mean_over_batches(report):
    logged = [c for c in rows_for(report, "lightning_batch_logged_f1.py") if c["check"].startswith("logged val_f1_micro")]
    assert len(logged) == 2
    assert all(c["status"] == "PASS" and "F1_micro (mean over batches)" in c["reason"] for c in logged)
