"""Every ``$`` command in the user and migration guides runs, in a scratch project.

Commands are taken from the ```console blocks of the guides, so a command added to the docs
is run here without editing this file. Three kinds are not run here, each for a stated
reason: ``pip install`` (needs the package index; ``./dev setup`` installs the same package
with its extras), and the commands that train or run a model (``verify`` without
``--static-only``, ``reference train``), which ``./dev demo`` runs (checked below) and the
slow test here runs with the training time cut to a few seconds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integrations.conftest import TRAIN, make_notebook

REPO = Path(__file__).resolve().parents[2]
GUIDES = [REPO / "README.md", REPO / "docs" / "user-guide.md", REPO / "docs" / "migration-guide.md"]
CONSOLE = re.compile(r"```console\n(.*?)```", re.DOTALL)


def _commands() -> list[str]:
    found = []
    for guide in GUIDES:
        for block in CONSOLE.findall(guide.read_text()):
            found.extend(line[2:] for line in block.splitlines() if line.startswith("$ "))
    return found


COMMANDS = _commands()
INSTALLS = [c for c in COMMANDS if c.startswith("pip install")]
TRAINING = [c for c in COMMANDS if c.startswith("migrate-ml reference train") or
            (c.startswith("migrate-ml verify") and "--static-only" not in c)]
CHEAP = [c for c in COMMANDS if c not in INSTALLS and c not in TRAINING]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docs-project")
    (root / "train.py").write_text(TRAIN)
    (root / "src").mkdir()
    (root / "src" / "train.py").write_text(TRAIN)
    (root / "notebooks").mkdir()
    make_notebook(root / "notebooks" / "train.ipynb")
    (root / "pyproject.toml").write_text((_toml_example()))
    return root


def _toml_example() -> str:
    guide = (REPO / "docs" / "user-guide.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", guide, re.DOTALL)
    return block


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    # `migrate-ml` and `python` as the current interpreter runs them, whatever is on PATH.
    # One pass, so an interpreter path ending in "python" is never substituted twice.
    replacements = {"migrate-ml ": f"{sys.executable} -m migrate_ml ", "python -m ": f"{sys.executable} -m "}
    shell = re.sub(r"(?<![\w/.-])(?:migrate-ml |python -m )", lambda m: replacements[m.group(0)], command)
    return subprocess.run(["bash", "-c", shell], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_guides_have_commands():
    assert len(CHEAP) >= 8 and INSTALLS and TRAINING


@pytest.mark.parametrize("command", CHEAP)
def test_documented_command_runs(project, command):
    result = _run(command, project)
    # 0: nothing to do or done; 1: --check/--diff found pending work (the documented meaning).
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert "error" not in result.stderr.lower(), result.stderr


def test_documented_toml_example_is_valid(project):
    from migrate_ml.engine.config import parse_config
    from migrate_ml.rules import load_rules

    config = parse_config(project / "pyproject.toml", list(load_rules()))
    assert config.threshold == 0.4 and config.select == ("ML0",)


def test_documented_config_error_is_what_the_tool_prints(run_cli, tmp_path):
    guide = (REPO / "docs" / "user-guide.md").read_text()
    (documented,) = re.findall(r"```text\n(migrate-ml: error: .*)\n```", guide)
    (tmp_path / "pyproject.toml").write_text("[tool.migrate-ml]\nthreshold = 1.5\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    code, _, err = run_cli("rewrite", str(tmp_path / "a.py"))
    assert code == 2
    assert err.strip() == documented.replace("/repo/pyproject.toml", str(tmp_path / "pyproject.toml"))


def test_install_commands_match_the_extras():
    pyproject = (REPO / "pyproject.toml").read_text()
    for command in INSTALLS:
        for extra in re.findall(r"\[(\w+)\]", command):
            assert re.search(rf"^{extra} = \[", pyproject, re.MULTILINE), command
    assert "pip install" in (REPO / "dev").read_text()


def test_training_commands_are_run_by_the_demo():
    demo = (REPO / "dev").read_text()
    assert "migrate-ml\" verify" in demo
    assert "migrate-ml\" reference train --sample digits --max-seconds" in demo


@pytest.mark.slow
@pytest.mark.parametrize("command", TRAINING)
def test_training_commands_run_briefly(tmp_path, command):
    if "verify" in command:
        pytest.skip("verify needs migrated code with a training loop: ./dev demo runs it on the bundled example")
    pytest.importorskip("torch")
    shorter = re.sub(r"--max-seconds \d+", "--max-seconds 2", command)
    result = _run(f"{shorter} --n-train 64 --n-val 32 --n-test 32 --batch-size 16", tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (tmp_path / "runs" / "ref" / "metrics.json").exists()
    shutil.rmtree(tmp_path / "runs")
