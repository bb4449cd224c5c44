"""The time budget: a timeout names the function, its line and the step; slow but steady entry points get a
limit derived from their first step; the CLI shows what runs."""

from __future__ import annotations

import io
import json
import time

import pytest

from migrate_ml.verify.progress import ProgressLine
from migrate_ml_reference.harness import budget
from verify_helpers import VERIFY_FIXTURES, failures, rows_for, run_verify


@pytest.fixture(scope="module")
def budget_run():
    return run_verify(str(VERIFY_FIXTURES / "budget"), "--timeout", "4", "--epochs", "2")


@pytest.mark.slow
def test_timeout_row_names_the_function_the_line_and_the_entry_point(budget_run):
    _, report = budget_run
    [row] = failures(report, "hang.py")
    assert row["check"] == "run" and row["line"] == 9, row
    assert row["reason"] == "timed out after 4 s in evaluate (hang.py:9), while running evaluate (hang.py:5) (int64 labels)"
    assert row["function"] == "evaluate"


@pytest.mark.slow
def test_limit_comes_from_the_first_step(budget_run):
    """Two 2.5 s epochs per label type pass --timeout 4: the first step sets the rest's limit."""
    _, report = budget_run
    rows = rows_for(report, "slow_steps.py")
    assert {r["check"] for r in rows if r["status"] == "PASS"} >= {"call (int64 labels)", "call (float32 labels)"}, rows


def test_the_users_code_gets_the_whole_timeout_however_long_the_harness_prepares(tmp_path, monkeypatch):
    """Making the sample data, the reference model and the sample loader can take seconds on a busy machine:
    counted against --timeout, they left a hanging function no time to be found in, and its row no line of it
    to name. The harness's preparation before the file's import is bounded by the file's whole allowance."""
    clock, armed = [1000.0], []
    monkeypatch.setattr(budget.time, "time", lambda: clock[0])
    monkeypatch.setattr(budget.faulthandler, "dump_traceback_later", lambda seconds, **_: armed.append(seconds))
    deadline = budget.Budget(str(tmp_path), 8.0, io.StringIO())
    assert armed[-1] == budget.MAX_EXTENSION * 8.0
    clock[0] += 20.0  # the sample data
    deadline.user_code_starts()  # the file's import
    assert armed[-1] == 8.0 and budget.read_progress(str(tmp_path))["deadline"] == clock[0] + 8.0
    deadline.entry("evaluate", 5, 2, "int64 labels")
    clock[0] += 6.5  # the harness builds evaluate's sample arguments
    deadline.user_code_starts()
    progress = budget.read_progress(str(tmp_path))
    assert armed[-1] == 8.0 and progress["deadline"] == clock[0] + 8.0 and progress["limit_s"] == 8.0
    clock[0] += 3.0
    deadline.step_done()
    assert budget.read_progress(str(tmp_path))["first_step_s"] == 3.0  # the first step is the call alone


def test_progress_line_shows_the_newest_file_entry_point_and_step(tmp_path):
    (tmp_path / "unit0").mkdir()
    (tmp_path / "unit1").mkdir()
    (tmp_path / "unit0" / "progress.json").write_text(json.dumps({"entry": "evaluate"}))
    (tmp_path / "unit1" / "progress.json").write_text(json.dumps(
        {"entry": "LitModel.training_step", "labels": "int64 labels", "step": "step 2 of 3", "deadline": time.time() + 30.2}))
    stream = io.StringIO()
    line = ProgressLine(str(tmp_path), ["a.py", "lit.py"], stream, enabled=True)
    line.show()
    assert stream.getvalue() == "\r\x1b[Kverify 2/2 lit.py: LitModel.training_step (int64 labels), step 2 of 3, 30 s left"
    assert ProgressLine(str(tmp_path), ["a.py"], io.StringIO(), enabled=True).status() == "verify 1/1 a.py: evaluate"
    assert ProgressLine(str(tmp_path / "none"), ["a.py"], io.StringIO()).status() == ""
