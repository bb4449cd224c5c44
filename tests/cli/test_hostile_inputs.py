"""Round two of the adversarial pass (issue 21) for rewrite, review and discovery: nothing
written outside the tree, nothing skipped in silence, one line per bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

CHANGE = "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\nloss = criterion(z, y)\n"
CHANGED = "import torch.nn as nn\ncriterion = nn.BCEWithLogitsLoss()\nloss = criterion(z, y.float())\n"


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# Symbolic links and hard links -------------------------------------------------------------


def test_a_folder_walk_does_not_follow_a_link_out_of_the_tree(here, run_cli):
    (here / "proj").mkdir()
    (here / "outside").mkdir()
    (here / "outside" / "victim.py").write_text(CHANGE)
    (here / "proj" / "link.py").symlink_to("../outside/victim.py")
    (here / "proj" / "linked_folder").symlink_to("../outside", target_is_directory=True)
    code, out, err = run_cli("rewrite", "-v", "proj")
    assert code == 0
    assert (here / "outside" / "victim.py").read_text() == CHANGE
    assert f"skipped proj/link.py: a symbolic link to {here}/outside/victim.py, outside {here}/proj; not followed" in err
    assert f"skipped proj/linked_folder/: a symbolic link to a folder ({here}/outside); not followed" in err


def test_a_link_inside_the_tree_and_a_named_link_are_followed(here, run_cli):
    (here / "proj").mkdir()
    (here / "proj" / "real.py").write_text(CHANGE)
    (here / "proj" / "alias.py").symlink_to("real.py")
    (here / "victim.py").write_text(CHANGE)
    (here / "named.py").symlink_to("victim.py")
    code, out, _ = run_cli("rewrite", "proj", "named.py")
    assert code == 0, out
    assert (here / "proj" / "real.py").read_text() == CHANGED
    assert (here / "victim.py").read_text() == CHANGED  # the user named the link
    assert (here / "named.py").is_symlink()
    assert "2 files rewritten" in out


def test_two_hard_links_under_two_workers_are_one_file(here, run_cli):
    (here / "proj").mkdir()
    (here / "proj" / "a.py").write_text(CHANGE)
    os.link(here / "proj" / "a.py", here / "proj" / "b.py")
    code, out, err = run_cli("rewrite", "-j2", "-v", "proj")
    assert code == 0, out + err
    assert "changed while" not in out + err
    assert (here / "proj" / "b.py").read_text() == CHANGED
    assert "skipped proj/b.py: the same file as one found before (a hard or symbolic link)" in err


@pytest.mark.parametrize("command", [("rewrite",), ("rewrite", "--check"), ("review",)])
def test_a_symlink_loop_named_on_the_command_line_is_one_line(here, run_cli, command):
    (here / "loop.py").symlink_to("loop.py")
    code, out, err = run_cli(*command, "loop.py", stdin=b"")
    assert code == 2
    assert "loop.py:1:1: error: cannot read: Too many levels of symbolic links" in out + err


def test_a_symlink_loop_as_stdin_filename_is_only_a_name(here, run_cli):
    (here / "loop.py").symlink_to("loop.py")
    code, out, err = run_cli("rewrite", "--stdin-filename", "loop.py", stdin=CHANGE.encode())
    assert code == 0, err
    assert out == CHANGED


# Folders nobody can read ---------------------------------------------------------------------

AS_NOBODY = """
import os, sys
import libcst
from migrate_ml.cli import build_parser, main
from migrate_ml.rules import load_rules

build_parser()
load_rules()
libcst.parse_module("x = 1\\n")
os.chdir(sys.argv[1])
os.setgid(65534)
os.setuid(65534)
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.skipif(not hasattr(os, "setuid") or os.geteuid() != 0, reason="a folder root cannot read needs another user")
@pytest.mark.parametrize("command", [("rewrite", "--check", "-j1"), ("rewrite", "--check", "-j2"), ("review",)])
def test_an_unreadable_subfolder_is_an_error_not_a_silent_skip(command):
    folder = tempfile.mkdtemp(prefix="migrate-ml-unreadable-")  # pytest's tmp_path is closed to other users
    try:
        os.chmod(folder, 0o755)
        os.makedirs(os.path.join(folder, "proj", "secret"))
        with open(os.path.join(folder, "proj", "secret", "train.py"), "w") as handle:
            handle.write(CHANGE)
        with open(os.path.join(folder, "proj", "ok.py"), "w") as handle:
            handle.write("x = 1\n")
        os.chmod(os.path.join(folder, "proj", "secret"), 0)
        done = subprocess.run([sys.executable, "-c", AS_NOBODY, folder, *command, "proj"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "proj/secret: error: cannot read folder: permission denied; no file in it was checked" in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
    finally:
        os.chmod(os.path.join(folder, "proj", "secret"), 0o755)
        shutil.rmtree(folder)


# Configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool]\nmigrate-ml = 3\n", "[tool.migrate-ml] must be a table"),
        ("tool = 5\n", "tool must be a table ([tool.migrate-ml] lives inside it)"),
        ('[tool]\n"migrate-ml" = "x"\n', "[tool.migrate-ml] must be a table"),
    ],
)
def test_a_tool_or_migrate_ml_key_that_is_not_a_table_is_exit_2(here, run_cli, text, message):
    (here / "pyproject.toml").write_text(text)
    (here / "train.py").write_text(CHANGE)
    code, out, err = run_cli("rewrite", "--check", "train.py")
    assert code == 2
    assert err.strip() == f"migrate-ml: error: {here}/pyproject.toml: {message}"


# --diff with odd file names ----------------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_diff_quotes_names_as_git_does(here):
    names = ["tab\there.py", "new\nline.py", 'quote"back\\slash.py', "plain name.py"]
    for name in names:
        (here / name).write_text(CHANGE)
    subprocess.run(["git", "init", "-q"], check=True)
    diff = subprocess.run([sys.executable, "-m", "migrate_ml", "rewrite", "--diff", *names], capture_output=True, timeout=120)
    assert diff.returncode == 1, diff.stderr
    assert b'--- "a/tab\\there.py"\n+++ "b/tab\\there.py"\n' in diff.stdout
    assert b'--- "a/new\\nline.py"\n' in diff.stdout
    assert b'--- "a/quote\\"back\\\\slash.py"\n' in diff.stdout
    assert b"--- a/plain name.py\n" in diff.stdout
    applied = subprocess.run(["git", "apply", "-"], input=diff.stdout, capture_output=True)
    assert applied.returncode == 0, applied.stderr
    assert all((here / name).read_text() == CHANGED for name in names)


TOPK_HELPER = """\
def accuracy(output, target, topk=(1,)):
    _, pred = output.topk(max(topk), 1, True, True)
    correct = pred.t().eq(target.reshape(1, -1))
    return [correct[:k].reshape(-1).float().sum(0) for k in topk]
"""


def test_text_report_escapes_a_line_break_in_a_file_name(here, run_cli):
    (here / "top\nk.py").write_text(TOPK_HELPER)
    (here / "new\nline.py").write_text(CHANGE)
    (here / "bad\tname.py").write_text("criterion(\n")
    code, out, err = run_cli("rewrite", "--check", "-v", "top\nk.py", "new\nline.py", "bad\tname.py")
    assert code == 2  # a file could not be processed
    lines = (out + err).splitlines()
    # one line per finding, change and error, each starting with the escaped name
    assert any(line.startswith("top\\nk.py:1:5: ML102 top-k accuracy helper") for line in lines), lines
    assert "Would rewrite new\\nline.py: ML001" in lines
    assert any(line.startswith("bad\\tname.py:1:10: error: syntax error") for line in lines), lines
    assert "migrate-ml: top\\nk.py: parsed and checked" in err
    assert not any(line.startswith(("k.py", "line.py", "name.py")) for line in lines)


# review and notebooks --------------------------------------------------------------------------


def test_review_with_stdin_closed_is_a_usage_error(here, run_cli, monkeypatch):
    (here / "train.py").write_text(CHANGE)
    monkeypatch.setattr(sys, "stdin", None)  # what Python gives when file descriptor 0 is closed
    code, out, err = run_cli("review", "train.py")
    assert code == 2
    assert err.startswith("migrate-ml: error: review reads its answers from stdin, which is closed")
    assert (here / "train.py").read_text() == CHANGE


def _notebook(cells, **top):
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5, **top}


def _code(source, **fields):
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source, **fields}


def _without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


INVALID_NOTEBOOKS = {
    "non_dict_cell": (json.dumps(_notebook([_code(CHANGE), 5])), "nb.ipynb: error: malformed notebook: cell 2 is a number, not an object"),
    "no_metadata": (json.dumps(_without(_notebook([_code(CHANGE)]), "metadata")),
                    "nb.ipynb: error: not a valid notebook (The notebook is invalid and is missing an expected key: metadata); file left unchanged"),
    "cell_without_metadata": (json.dumps(_notebook([_without(_code(CHANGE), "metadata")])),
                              "nb.ipynb: error: not a valid notebook (The notebook is invalid and is missing an expected key: metadata); file left unchanged"),
    "lone_surrogate": (json.dumps(_notebook([_code(CHANGE + "s = 'X'\n")])).replace("X", "\\ud800"),
                       "nb.ipynb:1:"),
    "nbformat_3": (json.dumps({"worksheets": [{"cells": [{"cell_type": "code", "input": CHANGE, "outputs": []}]}],
                               "metadata": {}, "nbformat": 3, "nbformat_minor": 0}),
                   "nb.ipynb: error: nbformat 3 notebook: migrate-ml reads nbformat 4; convert it first (jupyter nbconvert --to notebook --nbformat 4)"),
}


@pytest.mark.parametrize("name", sorted(INVALID_NOTEBOOKS))
@pytest.mark.parametrize("command", [("rewrite",), ("rewrite", "--check"), ("review",)])
def test_an_invalid_notebook_is_one_line_naming_it_before_any_question(here, run_cli, name, command):
    pytest.importorskip("nbformat")
    text, expected = INVALID_NOTEBOOKS[name]
    (here / "nb.ipynb").write_text(text)
    code, out, err = run_cli(*command, "nb.ipynb", stdin=b"y\ny\n")
    assert code == 2
    errors = [line for line in (out + err).splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(expected), errors
    assert "internal error" not in out + err
    assert "Apply this change" not in out
    assert (here / "nb.ipynb").read_text() == text


def test_a_lone_surrogate_is_named_with_its_cell(here, run_cli):
    text, _ = INVALID_NOTEBOOKS["lone_surrogate"]
    (here / "nb.ipynb").write_text(text)
    code, out, _ = run_cli("rewrite", "nb.ipynb")
    assert code == 2
    assert "malformed notebook: the source of cell 1 holds U+D800, a lone surrogate that no text file can hold" in out
