"""Real framework runs: a LightningModule goes through a real ``lightning.Trainer`` (fit with validation each
epoch, its DataModule replaced by one serving the sample loaders), a ``compute_metrics`` through a real
``transformers.Trainer.evaluate()``. Each fixture, shaped like public code, passes when correctly migrated
and fails at the line of the one injected bug."""

from __future__ import annotations

import pytest

from verify_helpers import VERIFY_FIXTURES, failures, rows_for, run_verify

pytestmark = pytest.mark.slow

for framework in ("lightning", "transformers"):  # the test extra installs them
    pytest.importorskip(framework)


@pytest.fixture(scope="module")
def report():
    return run_verify(str(VERIFY_FIXTURES / "real_frameworks"), "--epochs", "2")[1]


@pytest.mark.parametrize("name", ["lit_datamodule_good.py", "lit_manual_accumulate_good.py",
                                  "hf_trainer_script_good.py"])
def test_correct_migrations_pass_through_the_real_framework(report, name):
    rows = rows_for(report, name)
    assert rows and failures(report, name) == []
    ran = [c["reason"] for c in rows if c["check"].startswith(("steps", "call"))]
    assert len(ran) == 2, ran  # both label forms
    assert all("real lightning.Trainer" in r or "inside transformers.Trainer.evaluate()" in r for r in ran), ran


def test_lightning_logged_torchmetrics_object_is_read_as_lightning_computed_it(report):
    judged = {c["check"]: c for c in rows_for(report, "lit_datamodule_good.py")}
    f1 = judged["logged val/f1_macro (float32 labels)"]
    assert f1["status"] == "PASS" and "reference F1_macro" in f1["reason"]
    assert judged["loss falls (int64 labels)"]["reason"].endswith("over 2 epochs")


@pytest.mark.parametrize(("name", "line", "check", "words"), [
    ("lit_datamodule_accuracy_bug.py", 55, "logged val/exact_match (int64 labels)", "per-element (label-wise) accuracy"),
    ("lit_manual_double_sigmoid.py", 27, "loss at lit_manual_double_sigmoid.py:27 (float32 labels)", "double sigmoid"),
    ("hf_trainer_script_softmax.py", 21, "metric exact_match (int64 labels)", "thresholded after a softmax"),
])
def test_injected_bug_fails_at_its_line_through_the_real_framework(report, name, line, check, words):
    dynamic = {c["check"]: c for c in failures(report, name, phase="dynamic")}
    assert check in dynamic, sorted(dynamic)
    assert dynamic[check]["line"] == line and words in dynamic[check]["reason"]


def test_a_module_the_trainer_refuses_is_blamed_on_the_trainer_at_the_class(report):
    rows = [c for c in failures(report, "lit_without_optimizer.py", phase="dynamic") if c["check"].startswith("call")]
    assert rows and all(c["line"] == 7 and c["function"] == "LitNoOptimizer" for c in rows)
    assert rows[0]["reason"].startswith("lightning.Trainer raised MisconfigurationException: No `configure_optimizers()`")
