"""``migrate-ml review`` driven with scripted answers on stdin."""

from __future__ import annotations

import json

from tests.integrations.conftest import NEEDS_REVIEW, TRAIN


def test_accept_first_reject_second_writes_only_the_first(run_cli, train_file):
    code, out, _ = run_cli("review", str(train_file), stdin=b"y\nn\n")
    assert code == 0
    text = train_file.read_text()
    assert "nn.BCEWithLogitsLoss()" in text and "criterion(out, labels.float())" in text
    assert "F.cross_entropy(out, labels)" in text  # rejected
    compile(text, str(train_file), "exec")
    assert "1 change accepted, 1 rejected, 1 file written" in out


def test_each_change_shows_code_name_rationale_safety_and_hunk(run_cli, train_file):
    _, out, _ = run_cli("review", str(train_file), stdin=b"n\nn\n")
    assert f"{train_file}:5:13: ML001 cross-entropy-loss [safe]" in out
    assert "  why: CrossEntropyLoss applies a softmax across classes" in out
    assert "-criterion = nn.CrossEntropyLoss()\n+criterion = nn.BCEWithLogitsLoss()" in out
    # The constructor and the cast at its call are one change: shown together.
    assert "+    loss = criterion(out, labels.float())" in out
    assert "ML002 functional-cross-entropy" in out
    assert "Apply this change [y,n,a,q,?]?" in out


def test_rejecting_everything_writes_nothing(run_cli, train_file):
    run_cli("review", str(train_file), stdin=b"n\nn\n")
    assert train_file.read_text() == TRAIN


def test_quit_keeps_accepted_changes_and_writes_nothing_else(run_cli, train_file, tmp_path):
    second = tmp_path / "second.py"
    second.write_text(TRAIN)
    code, out, _ = run_cli("review", str(train_file), str(second), stdin=b"y\nq\n")
    assert code == 0
    assert "nn.BCEWithLogitsLoss()" in train_file.read_text()
    assert "F.cross_entropy(out, labels)" in train_file.read_text()
    assert second.read_text() == TRAIN  # after quitting, nothing more is asked or written
    assert out.count("Apply this change") == 2


def test_end_of_input_is_quitting(run_cli, train_file):
    code, _, _ = run_cli("review", str(train_file), stdin=b"")
    assert code == 0
    assert train_file.read_text() == TRAIN


def test_accept_all_for_a_rule_stops_asking_about_it(run_cli, tmp_path):
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text(TRAIN)
    second.write_text(TRAIN)
    # a: all ML001; n: ML002 in a.py; n: ML002 in b.py (ML001 in b.py is not asked again).
    _, out, _ = run_cli("review", str(first), str(second), stdin=b"a\nn\nn\n")
    assert out.count("Apply this change") == 3
    for path in (first, second):
        assert "nn.BCEWithLogitsLoss()" in path.read_text()
        assert "F.cross_entropy" in path.read_text()


def test_unknown_key_prints_help_and_asks_again(run_cli, train_file):
    _, out, _ = run_cli("review", str(train_file), stdin=b"?\nx\ny\ny\n")
    assert out.count("a - apply this change and all later changes of the same rules") == 2
    assert "2 changes accepted" in out


def test_findings_without_fix_are_shown_with_their_suggestion(run_cli, tmp_path):
    path = tmp_path / "masked.py"
    path.write_text(NEEDS_REVIEW)
    code, out, _ = run_cli("review", str(path), stdin=b"")
    assert code == 0
    assert "Needs review (no automatic fix):" in out
    assert f"{path}:3:10: ML001" in out
    assert "\n  help: " in out
    assert path.read_text() == NEEDS_REVIEW


def test_notebook_review_shows_cells_and_keeps_the_notebook_valid(run_cli, notebook_file):
    import nbformat

    code, out, _ = run_cli("review", str(notebook_file), stdin=b"y\n")
    assert code == 0
    assert f"{notebook_file}:cell 3:2:13: ML001 cross-entropy-loss [safe]" in out
    assert "# %% [cell 3]" in out and "!nvidia-smi" in out  # magics shown as written
    notebook = nbformat.read(str(notebook_file), as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    assert "BCEWithLogitsLoss" in notebook.cells[2].source
    assert json.loads(notebook_file.read_text())["cells"][4]["outputs"][0]["text"] == ["loss 2.3\n"]


# One question per fix ---------------------------------------------------------------------------

EVALUATE = """\
import torch
import torch.nn as nn

criterion = nn.CrossEntropyLoss()


def evaluate(model, loader):
    correct = 0
    for images, labels in loader:
        out = model(images)
        loss = criterion(out, labels)
        pred = out.argmax(1)
        correct += (pred == labels).sum().item()
    return correct, loss
"""


def test_one_fix_of_two_rules_is_asked_once_and_rejecting_it_writes_none_of_it(run_cli, tmp_path):
    path = tmp_path / "evaluate.py"
    path.write_text(EVALUATE)
    # ML001 (the loss) is accepted; the prediction fix (ML020 + ML021) is rejected.
    code, out, _ = run_cli("review", str(path), stdin=b"y\nn\n")
    assert code == 0
    assert out.count("Apply this change") == 2
    second = out.split("Apply this change")[1]
    assert ": ML020 argmax-prediction [safe]" in second and ": ML021 exact-match-accuracy [safe]" in second
    assert "One fix resolves all of these (ML020, ML021)" in second
    text = path.read_text()
    assert "nn.BCEWithLogitsLoss()" in text
    assert "pred = out.argmax(1)" in text and "(pred == labels).sum()" in text  # rejected: untouched
    assert "sigmoid" not in text and "all(dim=1)" not in text and "THRESHOLD" not in text
    assert out.endswith("1 change accepted, 1 rejected, 1 file written\n")
    assert f"Wrote {path}: 1 accepted change\n" in out


def test_accepting_a_shared_fix_applies_all_of_it(run_cli, tmp_path):
    path = tmp_path / "evaluate.py"
    path.write_text(EVALUATE)
    _, out, _ = run_cli("review", str(path), stdin=b"n\ny\n")
    assert out.count("Apply this change") == 2
    text = path.read_text()
    assert "nn.CrossEntropyLoss()" in text
    assert "torch.sigmoid(out) > THRESHOLD" in text and "(pred == labels.bool()).all(dim=1)" in text
    compile(text, str(path), "exec")


def test_summary_counts_what_was_asked(run_cli, tmp_path):
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text(EVALUATE)
    second.write_text(EVALUATE)
    # a: ML001 here and in b.py (not asked again); n: the prediction fix in each file.
    _, out, _ = run_cli("review", str(first), str(second), stdin=b"a\nn\nn\n")
    assert out.count("Apply this change") == 3
    assert out.endswith("2 changes accepted (1 by an earlier 'a'), 2 rejected, 2 files written\n")
    first.write_text(EVALUATE)
    second.write_text(EVALUATE)
    # y: ML001 in a.py; q: its prediction fix; b.py's two fixes are never asked.
    _, out, _ = run_cli("review", str(first), str(second), stdin=b"y\nq\n")
    assert out.count("Apply this change") == 2
    assert out.endswith("1 change accepted, 1 rejected, 2 not asked after quitting, 1 file written\n")
    assert second.read_text() == EVALUATE


# Errors are per file --------------------------------------------------------------------------


def test_a_file_too_deeply_nested_is_one_line_and_the_next_file_is_reviewed(run_cli, tmp_path, train_file):
    deep = tmp_path / "deep.py"
    deep.write_text("import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\nx = " + "[" * 300 + "]" * 300 + "\n")
    code, out, err = run_cli("review", str(deep), str(train_file), stdin=b"y\ny\n")
    assert code == 2
    assert err == f"{deep}:1:1: error: too deeply nested to process\n"
    assert "nn.BCEWithLogitsLoss()" in train_file.read_text()
    assert out.endswith("2 changes accepted, 0 rejected, 1 file written\n")


def test_a_malformed_notebook_is_one_line_and_the_next_file_is_reviewed(run_cli, tmp_path, train_file):
    notebook = tmp_path / "bad.ipynb"
    notebook.write_text(json.dumps({
        "cells": [{"cell_type": "code", "source": 5, "metadata": {}, "outputs": [], "execution_count": None}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }))
    before = notebook.read_bytes()
    code, out, err = run_cli("review", str(notebook), str(train_file), stdin=b"y\ny\n")
    assert code == 2
    assert err.startswith(f"{notebook}") and err.count("\n") == 1 and ": error: " in err
    assert notebook.read_bytes() == before
    assert "nn.BCEWithLogitsLoss()" in train_file.read_text()
