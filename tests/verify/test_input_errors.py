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
def test_timeout_must_be_a_finite_positive_number(tmp_path, capsys, value):
    from migrate_ml.cli import main

    (tmp_path / "fine.py").write_text("x = 1\n")
    with pytest.raises(SystemExit) as exited:  # argparse's usage error, before anything runs
        main(["verify", "--timeout", value, str(tmp_path)])
    out, err = capsys.readouterr()
    assert exited.value.code == 2
    assert err.count("\n") == 1 and "argument --timeout" in err
    assert out == ""


GOOD = "import torch.nn.functional as F\n\n\ndef loss_of(logits, targets):\n    return F.binary_cross_entropy_with_logits(logits, targets.float())\n"


@pytest.mark.parametrize("name, text, reason", [
    # LibCST's native parser overflows its stack: it used to kill verify with SIGSEGV, silently.
    ("deep.py", "x = " + "[" * 5000 + "]" * 5000 + "\n", "the parser crashed on this file"),
    # The metadata passes exhaust Python's recursion limit: it used to be a RecursionError traceback.
    ("rec.py", "x = " + " + ".join(["1"] * 3000) + "\n", "too deeply nested to process"),
    # A notebook whose JSON is that deep crashes the JSON reader the same way.
    ("deep.ipynb", "[" * 100_000 + "]" * 100_000, "the parser crashed on this file"),
], ids=["5000-brackets", "3000-terms", "deep-notebook-json"])
def test_a_file_too_deep_to_parse_is_one_row_and_the_other_files_are_checked(tmp_path, name, text, reason):
    """Issue 21, item 6: parsed in a forked child, as rewrite does."""
    (tmp_path / name).write_text(text)
    (tmp_path / "good.py").write_text(GOOD)
    completed = subprocess.run([sys.executable, "-m", "migrate_ml", "verify", "--static-only", str(tmp_path / name),
                                str(tmp_path / "good.py")], capture_output=True, text=True, cwd=REPO, check=False,
                               timeout=120)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stdout + completed.stderr
    failed = [line for line in completed.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and name in failed[0] and "static: parse" in failed[0] and reason in failed[0]
    assert "good.py static: re-scan" in completed.stdout
