"""The frameworks verify drives: the real accelerate Accelerator where it is installed, the stand-ins' gaps said as
such, and a LightningModule reading self.trainer.fit_loop."""

from __future__ import annotations

import copy

import pytest

from verify_helpers import VERIFY_FIXTURES, not_passed, rows_for, run_verify

torch = pytest.importorskip("torch")

from migrate_ml_reference.harness.accelerate import SingleProcessAccelerator, accelerator  # noqa: E402
from migrate_ml_reference.harness.core import crash_hint  # noqa: E402
from migrate_ml_reference.harness.stand_in_gaps import StandInGap  # noqa: E402


def test_accelerate_stand_in_has_what_no_trainer_scripts_use(tmp_path):
    stand_in = SingleProcessAccelerator()
    assert stand_in.gradient_accumulation_steps == 1
    model = torch.nn.Linear(2, 3)
    stand_in.save_model(stand_in.unwrap_model(model), str(tmp_path / "out"))
    assert set(torch.load(tmp_path / "out" / "pytorch_model.bin")) == {"weight", "bias"}


def test_a_stand_in_gap_says_it_is_verifys_and_what_runs_the_real_one():
    with pytest.raises(StandInGap) as caught:
        SingleProcessAccelerator().project_configuration  # noqa: B018
    assert str(caught.value) == "verify's stand-in for accelerate.Accelerator has no 'project_configuration'"
    hint = crash_hint(caught.value)
    assert hint.startswith("this is a gap of verify's stand-in, not of your code: install accelerate")
    assert "real accelerate.Accelerator(cpu=True)" in hint and "traceback above is from your code" not in hint
    copy.copy(SingleProcessAccelerator())  # dunder probes get a plain AttributeError


def test_hparams_saved_from_the_sample_args_namespace_name_the_bind_that_fills_them():
    hint = crash_hint(AttributeError("'AttributeDict' object has no attribute 'learning_rate'"))
    assert hint.startswith("self.hparams has no 'learning_rate'") and hint.endswith("--bind args.learning_rate=VALUE")


def test_real_accelerator_where_accelerate_is_installed():
    accelerate = pytest.importorskip("accelerate")
    assert isinstance(accelerator(), accelerate.Accelerator)


@pytest.mark.slow
def test_accelerate_no_trainer_loop_and_lightning_fit_loop_pass():
    _, report = run_verify(str(VERIFY_FIXTURES / "frameworks"))
    for name in ("accelerate_no_trainer.py", "lightning_fit_loop.py"):
        rows = rows_for(report, name)
        assert rows and not not_passed(rows), not_passed(rows)
    assert any(r["check"] == "steps (float32 labels)" for r in rows_for(report, "lightning_fit_loop.py"))
