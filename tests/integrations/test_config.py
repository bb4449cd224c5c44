"""``[tool.migrate-ml]`` in pyproject.toml: found upward, overridden by the command line."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.integrations.conftest import TRAIN


def _project(tmp_path, table: str):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n\n[tool.migrate-ml]\n" + textwrap.dedent(table))
    source = tmp_path / "src" / "pkg"
    source.mkdir(parents=True)
    path = source / "train.py"
    path.write_text(TRAIN)
    return path


def test_config_is_found_from_the_target_upward(run_cli, tmp_path):
    path = _project(tmp_path, 'select = ["ML002"]\n')
    code, _, _ = run_cli("rewrite", str(path))
    assert code == 0
    text = path.read_text()
    assert "binary_cross_entropy_with_logits" in text
    assert "nn.CrossEntropyLoss()" in text  # ML001 not selected by the project


def test_command_line_overrides_config(run_cli, tmp_path):
    path = _project(tmp_path, 'select = ["ML002"]\n')
    run_cli("rewrite", "--select", "ML001", str(path))
    text = path.read_text()
    assert "nn.BCEWithLogitsLoss()" in text and "F.cross_entropy" in text


def test_ignore_and_per_file_ignores(run_cli, tmp_path):
    path = _project(tmp_path, 'ignore = ["ML002"]\nper-file-ignores = { "src/pkg/train.py" = ["ML001"] }\n')
    other = path.parent / "other.py"
    other.write_text(TRAIN)
    run_cli("rewrite", str(path.parent))
    assert path.read_text() == TRAIN  # ML002 ignored everywhere, ML001 in this file
    assert "nn.BCEWithLogitsLoss()" in other.read_text() and "F.cross_entropy" in other.read_text()


def test_per_file_ignores_bare_pattern_matches_base_names(run_cli, tmp_path):
    path = _project(tmp_path, 'per-file-ignores = { "train.py" = ["ML0"] }\n')
    run_cli("rewrite", str(path))
    assert path.read_text() == TRAIN


def test_exclude_and_threshold(run_cli, tmp_path):
    path = _project(tmp_path, 'exclude = ["legacy"]\nthreshold = 0.3\n')
    legacy = path.parent / "legacy"
    legacy.mkdir()
    (legacy / "old.py").write_text(TRAIN)
    code, out, _ = run_cli("rewrite", "--check", str(tmp_path / "src"))
    assert "old.py" not in out and "train.py" in out
    from migrate_ml.engine.config import resolve_settings
    from migrate_ml.rules import load_rules

    settings, discovery = resolve_settings([str(path)], list(load_rules()))
    assert settings.threshold == 0.3 and discovery.exclude == ("legacy",)
    settings, _ = resolve_settings([str(path)], list(load_rules()), threshold=0.7)
    assert settings.threshold == 0.7


def test_unsafe_fixes_from_config_and_no_unsafe_fixes_flag(tmp_path):
    from migrate_ml.engine.config import resolve_settings
    from migrate_ml.rules import load_rules

    path = _project(tmp_path, "unsafe-fixes = true\n")
    assert resolve_settings([str(path)], list(load_rules()))[0].unsafe_fixes is True
    assert resolve_settings([str(path)], list(load_rules()), unsafe_fixes=False)[0].unsafe_fixes is False


def test_nearest_pyproject_with_the_table_wins(tmp_path):
    from migrate_ml.engine.config import find_pyproject

    path = _project(tmp_path, 'select = ["ML001"]\n')
    (path.parent / "pyproject.toml").write_text("[project]\nname = 'inner'\n")  # no table: skipped
    assert find_pyproject(str(path)) == tmp_path / "pyproject.toml"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("threshold = 2\n", "[tool.migrate-ml] threshold: must be a number between 0 and 1"),
        ('threshold = "high"\n', "[tool.migrate-ml] threshold: must be a number between 0 and 1"),
        ('select = "ML001"\n', "[tool.migrate-ml] select: must be a list of rule codes"),
        ('ignore = ["ML999"]\n', "[tool.migrate-ml] ignore: unknown rule code or prefix: ML999"),
        ('unsafe-fixes = "yes"\n', "[tool.migrate-ml] unsafe-fixes: must be true or false"),
        ("exclude = [1]\n", "[tool.migrate-ml] exclude: must be a list of glob patterns"),
        ('force-exclude = "yes"\n', "[tool.migrate-ml] force-exclude: must be true or false"),
        ("respect-gitignore = 0\n", "[tool.migrate-ml] respect-gitignore: must be true or false"),
        ('per-file-ignores = ["x"]\n', "[tool.migrate-ml] per-file-ignores: must be a table"),
        ('per-file-ignores = { "x.py" = ["ZZ1"] }\n', "[tool.migrate-ml] per-file-ignores.x.py: unknown rule code"),
        ('selct = ["ML001"]\n', "[tool.migrate-ml] selct: unknown key"),
        ("threshold = \n", "invalid TOML"),
    ],
)
def test_bad_value_is_a_one_line_error_naming_the_key(run_cli, tmp_path, table, message):
    path = _project(tmp_path, table)
    code, out, err = run_cli("rewrite", str(path))
    assert code == 2
    assert out == ""
    assert err.startswith(f"migrate-ml: error: {tmp_path / 'pyproject.toml'}: ")
    assert message in err and err.count("\n") == 1
    assert path.read_text() == TRAIN


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # A project named migrate-ml mentions the table's name without having the table.
        (b'tool = 5\n[project]\nname = "migrate-ml"\n', "tool must be a table"),
        # A latin-1 comment: the threshold below must not be dropped silently.
        (b"# caf\xe9\n[tool.migrate-ml]\nthreshold = 0.9\n", "line 1: cannot decode byte 0xe9 as UTF-8"),
        (b"# caf\xe9, not our table\n[tool.black]\n", "line 1: cannot decode byte 0xe9 as UTF-8"),
    ],
)
def test_malformed_pyproject_is_a_one_line_error(run_cli, tmp_path, content, message):
    (tmp_path / "pyproject.toml").write_bytes(content)
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    code, out, err = run_cli("rewrite", str(path))
    assert code == 2
    assert err == f"migrate-ml: error: {tmp_path / 'pyproject.toml'}: {message}" + err.split(message, 1)[1]
    assert err.count("\n") == 1
    assert path.read_text() == TRAIN


def test_unreadable_pyproject_is_reported_not_skipped(run_cli, tmp_path, monkeypatch):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.migrate-ml]\nthreshold = 0.9\n")
    read_bytes = Path.read_bytes

    def refuse(self):  # chmod 0 does not stop root, who runs the CI containers
        if self == pyproject:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    code, _, err = run_cli("rewrite", str(path))
    assert (code, err) == (2, f"migrate-ml: error: {pyproject}: cannot read: Permission denied\n")
    assert path.read_text() == TRAIN


def test_force_exclude_and_respect_gitignore_from_config(run_cli, tmp_path, monkeypatch):
    path = _project(tmp_path, 'exclude = ["legacy/*"]\nforce-exclude = true\nrespect-gitignore = false\n')
    monkeypatch.chdir(tmp_path)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "old.py").write_text(TRAIN)
    # What pre-commit runs: the files named; the project's force-exclude keeps legacy/ out.
    code, out, _ = run_cli("rewrite", "--check", "legacy/old.py", str(path))
    assert code == 1 and "legacy" not in out and "1 file would be rewritten" in out
    code, out, _ = run_cli("rewrite", "--check", "--no-force-exclude", "legacy/old.py")
    assert code == 1 and "Would rewrite legacy/old.py" in out
    # respect-gitignore = false: a git-ignored folder is searched.
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("src/\n")
    assert "1 file would be rewritten" in run_cli("rewrite", "--check", ".")[1]
    assert "0 files would be rewritten" in run_cli("rewrite", "--check", "--respect-gitignore", ".")[1]
