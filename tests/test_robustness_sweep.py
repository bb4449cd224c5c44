"""The runtime section of the adversarial robustness sweep (bench/robustness_runtime.py): its judge,
and a few of its fast cases run for real (the whole sweep takes minutes and is not part of CI)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import robustness_runtime as runtime  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sweep reads /proc")


@pytest.mark.parametrize("name", ["verify deep.py good.py (6)", "rewrite on a symlink loop (15)"])
def test_fast_cases_of_the_sweep_hold(tmp_path, name):
    root = tmp_path / "in"
    cases = {case.name: case for case in [*runtime.verify_cases(root), *runtime.walk_cases(root)]}
    try:
        outcome = runtime.run_case(cases[name], tmp_path / "tmp")
    finally:
        runtime.release(root)
    assert outcome.held, outcome.problems


def test_the_judge_counts_lost_bytes_tracebacks_and_hangs(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    # A traceback through migrate-ml's own code, after a write it must not make.
    crash = runtime.Case("crash", [sys.executable, "-c", f"import pathlib; pathlib.Path({str(victim)!r}).write_text('x');"
                                   "from migrate_ml.verify.contain import marked_processes; marked_processes(5)"],
                         2, ("error: ",), keep=(victim,), absent=(tmp_path / "new",))
    outcome = runtime.run_case(crash, tmp_path / "tmp-crash")
    assert (outcome.lost_bytes, outcome.tracebacks, outcome.hung) == (4, 1, False)
    assert "exit 1, expected 2" in outcome.problems and "output lacks 'error: '" in outcome.problems
    hang = runtime.Case("hang", ["sleep", "30"], 0, (), one_line=False, limit=1)
    outcome = runtime.run_case(hang, tmp_path / "tmp-hang")
    assert outcome.hung and not outcome.held and outcome.seconds < 10


def test_a_traceback_of_user_code_quoted_in_a_report_is_not_a_crash():
    quoted = 'FAIL hog.py call\nTraceback (most recent call last):\n  File "/x/hog.py", line 6, in evaluate\nMemoryError\n'
    ours = 'Traceback (most recent call last):\n  File "/x/site-packages/migrate_ml/cli.py", line 9, in main\nKeyError\n'
    assert runtime.own_tracebacks(quoted) == 0
    assert runtime.own_tracebacks(ours) == 1
    assert runtime.own_tracebacks("Traceback (most recent call last):\nSystemError\n") == 1
