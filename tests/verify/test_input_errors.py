"""Bad input to verify is a one-line error, never a traceback (issue 13, items 18 and 21)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from verify_helpers import REPO, run_verify


def test_syntax_error_in_a_file_no_rule_selects(tmp_path):
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    (tmp_path / "fine.py").write_text("x = 1\n")
    code, report = run_verify(str(tmp_path), "--static-only")
    parse = [c for c in report["checks"] if c["check"] == "static: parse"]
    assert [(c["file"].rsplit("/", 1)[-1], c["line"], c["status"]) for c in parse] == [("broken.py", 1, "FAIL")]
    assert parse[0]["reason"] == "syntax error: invalid syntax"
    assert any(c["file"].endswith("fine.py") for c in report["checks"]), "the other file still finishes"
    assert code == 2


def test_syntax_error_text_output_has_no_traceback(tmp_path):
    (tmp_path / "broken.py").write_text("def f(:\n    pass\n")
    completed = subprocess.run([sys.executable, "-m", "migrate_ml", "verify", "--static-only", str(tmp_path)],
                               capture_output=True, text=True, cwd=REPO, check=False)
    assert "Traceback" not in completed.stdout + completed.stderr
    assert "broken.py:1" in completed.stdout and completed.returncode == 2


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_timeout_must_be_a_finite_positive_number(tmp_path, value):
    (tmp_path / "fine.py").write_text("x = 1\n")
    completed = subprocess.run([sys.executable, "-m", "migrate_ml", "verify", "--timeout", value, str(tmp_path)],
                               capture_output=True, text=True, cwd=REPO, check=False)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "argument --timeout" in completed.stderr
    assert completed.stdout == ""
