"""What of the file around a LightningModule verify's real ``lightning.Trainer`` runs: the file's own DataModule
hooks on the sample batches, the settings and callbacks of its ``Trainer(...)`` call, and sample images in the
shape its model takes (1x28x28 for an MNIST-style CNN, in a loop function too). Each fixture, shaped like public code, passes when correctly migrated and fails at the
line of the one injected bug; one verify run serves every assertion."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify_helpers import VERIFY_FIXTURES, failures, rows_for, run_verify

pytestmark = pytest.mark.slow

pytest.importorskip("lightning")  # the test extra installs it


@pytest.fixture(scope="module")
def report():
    return run_verify(str(VERIFY_FIXTURES / "lightning_file"), "--epochs", "2")[1]


def test_the_files_datamodule_hooks_carry_the_sample_batches(report):
    rows = rows_for(report, "lit_hooks_good.py")
    assert rows and failures(report, "lit_hooks_good.py") == []
    steps = [c["reason"] for c in rows if c["check"].startswith("steps")]
    assert len(steps) == 2 and all("through FolderDataModule's on_before_batch_transfer, on_after_batch_transfer"
                                   in reason for reason in steps), steps
    # the loss gets float targets only through the DataModule's hook, and the normalised images are still matched
    judged = {c["check"]: c for c in rows}
    assert "float32 target [32, 7]" in judged["loss at lit_hooks_good.py:60 (int64 labels)"]["reason"]
    assert "equals the reference exact match" in judged["logged val_exact_match (int64 labels)"]["reason"]


def test_a_datamodule_hook_failing_on_the_sample_batch_is_named_at_its_line(report):
    rows = [c for c in failures(report, "lit_hooks_label_map.py", phase="dynamic") if c["check"].startswith("call")]
    assert len(rows) == 2, rows
    assert all(c["line"] == 37 and c["function"] == "FolderDataModule.on_before_batch_transfer" for c in rows)
    assert rows[0]["reason"].startswith("on_before_batch_transfer raised ValueError")


def test_the_files_trainer_settings_are_applied_and_the_rest_named(report):
    assert failures(report, "lit_trainer_settings_good.py") == []
    judged = {c["check"]: c for c in rows_for(report, "lit_trainer_settings_good.py")}
    applied = judged["Trainer settings"]["reason"]
    for setting in ("max_epochs=2 (30 capped by --epochs)", "accumulate_grad_batches=2", "gradient_clip_val=1.0",
                    "precision='bf16-mixed'", "callback ModelCheckpoint with its dirpath in the scratch folder",
                    "callback EarlyStopping", "callback ExactMatchLogger"):
        assert setting in applied, applied
    skipped = judged["Trainer settings not applied"]
    assert skipped["status"] == "SKIP"
    for setting in ("accelerator='gpu' (ignored: verify runs one CPU process)", "devices=4", "strategy='ddp'",
                    "logger=TensorBoardLogger('tb_logs')", "log_every_n_steps=10"):
        assert setting in skipped["reason"], skipped["reason"]
    # the file's callback ran in the Trainer and logged the exact match it computed
    assert judged["logged val_exact_match (float32 labels)"]["line"] == 24
    assert not Path("/tmp/migrate-ml-fixture-checkpoints").exists()  # ModelCheckpoint wrote in the scratch folder


def test_a_bug_in_the_files_callback_fails_at_its_line_and_half_precision_runs_32_bit(report):
    dynamic = {c["check"]: c for c in failures(report, "lit_trainer_callback_bug.py", phase="dynamic")}
    assert sorted(dynamic) == ["logged val_exact_match (float32 labels)", "logged val_exact_match (int64 labels)"]
    assert all(c["line"] == 23 and "per-element (label-wise) accuracy" in c["reason"] for c in dynamic.values())
    skipped = next(c for c in rows_for(report, "lit_trainer_callback_bug.py") if c["check"] == "Trainer settings not applied")
    assert "precision='16-mixed' (run in 32-bit" in skipped["reason"]


@pytest.mark.parametrize("name", ["lit_grayscale_good.py", "mnist_loop_good.py"])
def test_a_model_that_takes_1x28x28_images_is_fed_grayscale_28px_samples(report, name):
    rows = rows_for(report, name)
    assert rows and failures(report, name) == []
    ran = [c["reason"] for c in rows if c["check"].startswith(("steps", "call"))]
    assert ran and all("1x28x28 grayscale" in reason for reason in ran), ran
    assert any(c["check"].startswith(("logged val_acc", "metric exact_match")) and c["status"] == "PASS" for c in rows)


def test_a_bug_in_a_grayscale_module_fails_at_its_line(report):
    dynamic = {c["check"]: c for c in failures(report, "lit_grayscale_logits_threshold.py", phase="dynamic")}
    assert sorted(dynamic) == ["logged val_acc (float32 labels)", "logged val_acc (int64 labels)"]
    assert all(c["line"] == 34 and "threshold applied to logits" in c["reason"] for c in dynamic.values())
