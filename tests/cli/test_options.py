"""The options ruff and black users expect: jobs, .gitignore, --force-exclude, --stdin-filename,
--diff with --check, --color and --verbose."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from migrate_ml.commands import rewrite as rewrite_command
from migrate_ml.engine.runner import discover, usable_cpus

CHANGE = "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\nloss = criterion(z, y)\n"
CHANGED = "import torch.nn as nn\ncriterion = nn.BCEWithLogitsLoss()\nloss = criterion(z, y.float())\n"
FINDING_ONLY = "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss(ignore_index=-1)\nloss = criterion(z, y)\n"
PLAIN = "print('hello')\n"
ESCAPE = "\x1b["


def git(root, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


# -j/--jobs --------------------------------------------------------------------------------------


def test_usable_cpus_follow_the_affinity_mask():
    assert usable_cpus() == len(os.sched_getaffinity(0))


def test_jobs_default_to_the_usable_cpus_and_one_file_runs_here(project, run_cli, monkeypatch):
    project(**{"a__train.py": CHANGE, "b__train.py": CHANGE, "c__train.py": CHANGE})
    monkeypatch.setattr(rewrite_command, "usable_cpus", lambda: 2)
    _, _, err = run_cli("rewrite", "--check", "-v", ".")
    assert "3 files in " in err and " s with 2 worker processes: 3 parsed" in err
    _, _, err = run_cli("rewrite", "--check", "-v", "-j1", ".")
    assert " s with this process: 3 parsed" in err
    _, _, err = run_cli("rewrite", "--check", "-v", "a/train.py")
    assert "1 file in " in err and " s with this process" in err


# .gitignore ------------------------------------------------------------------------------------


@pytest.fixture
def work_tree(project, monkeypatch):
    root = project(
        **{
            "train.py": CHANGE,
            "generated__train.py": CHANGE,
            "src__model_pb2.py": CHANGE,
            "src__scratch.py": CHANGE,
            "src__global.py": CHANGE,
            "src__kept.py": CHANGE,
            "vendored__train.py": CHANGE,
            "vendored__.gitignore": "train.py\n",
        }
    )
    git(root, "init", "-q")
    (root / ".gitignore").write_text("generated/\n*_pb2.py\n")
    (root / ".git" / "info" / "exclude").write_text("scratch.py\n")
    (root / "global-ignore").write_text("global.py\n")
    (root / "gitconfig").write_text(f"[core]\n\texcludesFile = {root / 'global-ignore'}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(root / "gitconfig"))
    return root


def test_folders_skip_what_git_ignores(work_tree, run_cli):
    # .gitignore (root and nested), .git/info/exclude and the global excludes file all count.
    assert list(discover(["."])) == ["train.py", "src/kept.py"]
    code, out, _ = run_cli("rewrite", ".")
    assert code == 0
    assert (work_tree / "train.py").read_text() == CHANGED
    assert (work_tree / "generated" / "train.py").read_text() == CHANGE
    assert (work_tree / "src" / "model_pb2.py").read_text() == CHANGE
    assert "2 files rewritten" in out


def test_tracked_files_are_never_ignored_and_named_files_are_kept(work_tree):
    git(work_tree, "add", "-f", "src/model_pb2.py")
    assert list(discover(["src"])) == ["src/kept.py", "src/model_pb2.py"]
    # An ignored folder or file that is named is what the user asked for.
    assert list(discover(["generated", "src/scratch.py"])) == ["generated/train.py", "src/scratch.py"]


def test_no_respect_gitignore_turns_it_off(work_tree, run_cli):
    code, out, _ = run_cli("rewrite", "--check", "--no-respect-gitignore", ".")
    assert code == 1 and "7 files would be rewritten" in out


def test_outside_a_work_tree_nothing_is_ignored(project):
    root = project(**{"train.py": CHANGE, "generated__train.py": CHANGE})
    (root / ".gitignore").write_text("generated/\n")
    assert list(discover(["."])) == ["train.py", "generated/train.py"]


def test_without_a_git_command_nothing_is_ignored(work_tree, monkeypatch):
    monkeypatch.setenv("PATH", "")
    assert "generated/train.py" in list(discover(["."]))


def test_verbose_says_what_was_left_out_and_why(work_tree, run_cli):
    (work_tree / "plain.py").write_text(PLAIN)
    # Attention inside a model's forward: words that trigger ML024, code it never touches.
    (work_tree / "softmax_only.py").write_text(
        "class Net:\n    def forward(self, x):\n        return self(x).softmax(-1)\n"
    )
    _, out, err = run_cli("rewrite", "--check", "-v", "--exclude", "src/kept.py", ".")
    assert "Would rewrite train.py: ML001" in out and "migrate-ml:" not in out  # stdout stays clean
    lines = err.splitlines()
    assert "migrate-ml: skipped generated/: ignored by git (.gitignore, .git/info/exclude or the global excludes file)" in lines
    assert "migrate-ml: skipped src/kept.py: matches exclude pattern 'src/kept.py'" in lines
    assert any(line.startswith("migrate-ml: train.py: parsed and checked (0.") for line in lines)
    assert any(line.startswith("migrate-ml: plain.py: not parsed, pre-filter: no trigger word of the selected rules occurs (") for line in lines)
    assert any(
        line.startswith("migrate-ml: softmax_only.py: not parsed, pre-filter: trigger words of ML024 occur, but not in code those rules handle")
        for line in lines
    )
    assert "migrate-ml: 3 files in " in err and ": 1 parsed, 2 left unparsed by the pre-filter" in err


# --force-exclude --------------------------------------------------------------------------------


def test_force_exclude_applies_config_exclude_to_named_files(project, run_cli):
    root = project(**{"legacy__old.py": CHANGE, "train.py": CHANGE, "build__gen.py": CHANGE})
    (root / "pyproject.toml").write_text('[tool.migrate-ml]\nexclude = ["legacy/*"]\n')
    # Named files are rewritten whatever the globs say (pre-commit names every staged file) …
    code, out, _ = run_cli("rewrite", "--check", "legacy/old.py")
    assert code == 1 and "Would rewrite legacy/old.py" in out
    # … unless --force-exclude asks for the globs (and the folders never searched) to win.
    code, out, err = run_cli("rewrite", "--force-exclude", "-v", "legacy/old.py", "train.py", "build/gen.py")
    assert code == 0
    assert (root / "legacy" / "old.py").read_text() == CHANGE
    assert (root / "build" / "gen.py").read_text() == CHANGE
    assert (root / "train.py").read_text() == CHANGED
    assert "migrate-ml: skipped legacy/old.py: matches exclude pattern 'legacy/*' (--force-exclude)" in err
    assert "migrate-ml: skipped build/gen.py: inside 'build', a folder that is never searched (--force-exclude)" in err


def test_force_exclude_with_stdin_gives_the_code_back_untouched(project, run_cli):
    project(**{"pyproject.toml": '[tool.migrate-ml]\nexclude = ["legacy/*"]\n'})
    code, out, err = run_cli("rewrite", "--force-exclude", "--stdin-filename", "legacy/old.py", stdin=CHANGE.encode())
    assert (code, out, err) == (0, CHANGE, "")
    code, out, _ = run_cli("rewrite", "--force-exclude", "--stdin-filename", "train.py", stdin=CHANGE.encode())
    assert (code, out) == (0, CHANGED)


# --stdin-filename ------------------------------------------------------------------------------


def test_stdin_filename_names_the_code_and_finds_its_config(project, run_cli):
    root = project(**{"src__pkg__train.py": PLAIN})
    (root / "src" / "pyproject.toml").write_text('[tool.migrate-ml]\nignore = ["ML002"]\nthreshold = 0.3\n')
    code_in = FINDING_ONLY + "import torch.nn.functional as F\nloss2 = F.cross_entropy(z, y)\npred = model(x).argmax(1)\n"
    code, out, err = run_cli("rewrite", "--stdin-filename", "src/pkg/train.py", stdin=code_in.encode())
    assert code == 0
    assert "F.cross_entropy(z, y)" in out  # ML002 ignored by src/pyproject.toml
    assert "THRESHOLD = 0.3" in out  # its threshold
    assert "src/pkg/train.py:6:13: ML001" in err and "Rewrote src/pkg/train.py: ML020" in err
    assert (root / "src" / "pkg" / "train.py").read_text() == PLAIN  # never written to
    code, out, _ = run_cli("rewrite", "--diff", "--stdin-filename", "src/pkg/train.py", "-", stdin=CHANGE.encode())
    assert code == 1 and out.startswith("--- a/src/pkg/train.py\n+++ b/src/pkg/train.py\n")


def test_stdin_filename_detects_a_notebook(project, run_cli):
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                   "source": ["import torch.nn as nn\n", "criterion = nn.CrossEntropyLoss()"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    code, out, err = run_cli("rewrite", "--stdin-filename", "train.ipynb", stdin=json.dumps(notebook, indent=1).encode())
    assert code == 0, err
    assert json.loads(out)["cells"][0]["source"][1] == "criterion = nn.BCEWithLogitsLoss()"
    assert "Rewrote train.ipynb: ML001" in err


def test_stdin_usage_errors(project, run_cli):
    project(**{"a.py": PLAIN})
    code, _, err = run_cli("rewrite", "--stdin-filename", "x.py", "a.py", stdin=b"")
    assert code == 2 and "--stdin-filename reads stdin: pass no PATH (or -)" in err
    code, _, err = run_cli("rewrite", "--stdin-filename", "", stdin=b"")
    assert code == 2 and "--stdin-filename needs a file name" in err


def test_stdin_closed_is_a_one_line_error(tmp_path):
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "migrate_ml", "rewrite", "-"],
        cwd=tmp_path, capture_output=True, preexec_fn=lambda: os.close(0),
    )
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr == b"migrate-ml: error: cannot read stdin: it is closed\n"


# --diff --check ---------------------------------------------------------------------------------


def test_diff_with_check_shows_the_diff_and_fails_like_check(project, run_cli):
    root = project(**{"train.py": CHANGE, "masked.py": FINDING_ONLY, "plain.py": PLAIN})
    code, out, err = run_cli("rewrite", "--diff", "--check", ".")
    assert code == 1
    assert out.startswith("--- a/masked.py\n") is False and "--- a/train.py\n+++ b/train.py\n" in out
    assert "masked.py:2:13: ML001" in err and "Would rewrite train.py: ML001" in err
    assert (root / "train.py").read_text() == CHANGE
    # Findings alone fail --check (and so --diff --check) with an empty diff; --diff alone passes.
    assert run_cli("rewrite", "--diff", "--check", "masked.py")[:2] == (1, "")
    assert run_cli("rewrite", "--diff", "masked.py")[0] == 0
    assert run_cli("rewrite", "--diff", "--check", "plain.py")[:2] == (0, "")


# --color ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "environment", "styled"),
    [
        ((), {}, False),  # not a terminal
        ((), {"FORCE_COLOR": "1"}, True),
        ((), {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),  # and no bold either
        (("--color", "always"), {"NO_COLOR": "1"}, True),  # the command line wins
        (("--color", "never"), {"FORCE_COLOR": "1"}, False),
        (("--color", "auto"), {"NO_COLOR": ""}, False),  # empty means unset
    ],
)
def test_color_choice(project, run_cli, monkeypatch, argv, environment, styled):
    project(**{"train.py": CHANGE})
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for command in (("rewrite", "--diff", "train.py"), ("rewrite", "--check", "train.py"), ("rules",), ("explain", "ML001")):
        _, out, err = run_cli(*command, *argv)
        assert (ESCAPE in out + err) is styled, command
    _, out, _ = run_cli("explain", "ML001", *argv)
    assert out.startswith("# ML001 cross-entropy-loss") is not styled  # Markdown source unless styled
