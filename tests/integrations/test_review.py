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
    assert out.count("a - apply this change and all later changes of the same rule") == 2
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
