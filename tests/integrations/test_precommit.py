"""The ``migrate-ml-check`` pre-commit hook, run by pre-commit on a scratch repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.conftest import TRAIN

REPO = Path(__file__).resolve().parents[2]


def _hook(hook_id: str) -> dict:
    yaml = pytest.importorskip("yaml")  # ships with pre-commit
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    return next(hook for hook in hooks if hook["id"] == hook_id)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_hook_definition():
    hook = _hook("migrate-ml-check")
    assert hook["entry"] == "migrate-ml rewrite --check"
    assert hook["language"] == "python"
    assert hook["types_or"] == ["python", "jupyter"]


@pytest.mark.parametrize("hook_id", ["migrate-ml-check", "migrate-ml-rewrite"])
def test_hooks_that_take_notebooks_install_nbformat(hook_id):
    hook = _hook(hook_id)
    assert "jupyter" in hook["types_or"]
    assert any(requirement.startswith("nbformat") for requirement in hook.get("additional_dependencies", []))


def test_hook_entry_command_fails_on_pending_migration(tmp_path):
    # What pre-commit runs: the entry followed by the staged file names.
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "done.py").write_text("x = 1\n")
    entry = _hook("migrate-ml-check")["entry"].split()
    command = [sys.executable, "-m", "migrate_ml", *entry[1:]]
    assert subprocess.run([*command, "done.py"], cwd=tmp_path).returncode == 0
    failing = subprocess.run([*command, "train.py", "done.py"], cwd=tmp_path, capture_output=True, text=True)
    assert failing.returncode == 1 and "Would rewrite train.py" in failing.stdout
    assert (tmp_path / "train.py").read_text() == TRAIN


@pytest.mark.slow
def test_pre_commit_try_repo(tmp_path):
    """pre-commit installs this package into a fresh environment (pip must reach the index)."""
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed; test_hook_entry_command_fails_on_pending_migration covers the command")
    hook_repo = tmp_path / "hook-repo"
    hook_repo.mkdir()
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, hook_repo / name)
    for folder in ("migrate_ml", "reference"):
        shutil.copytree(REPO / folder, hook_repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    _git(hook_repo, "init", "-q")
    _git(hook_repo, "add", ".")
    _git(hook_repo, "commit", "-qm", "hook repo")

    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text(TRAIN)
    _git(project, "init", "-q")
    _git(project, "add", "train.py")
    result = subprocess.run(
        ["pre-commit", "try-repo", str(hook_repo), "migrate-ml-check", "--all-files"],
        cwd=project, capture_output=True, text=True, env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache")},
    )
    if "Installing environment" in result.stdout and "hook id: migrate-ml-check" not in result.stdout:
        pytest.skip(f"pre-commit could not build the hook environment (no package index?): {result.stdout[-300:]}")
    assert result.returncode == 1, result.stdout
    assert "hook id: migrate-ml-check" in result.stdout
    assert "Would rewrite train.py: ML001, ML002" in result.stdout
