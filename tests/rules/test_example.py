"""The bundled example (``examples/vit_single_label``), rewritten as the README demo does it.

The example is checked in single-label; this test rewrites a temporary copy through the CLI
and checks what a user would rely on: the result compiles and imports, a second run changes
nothing, no softmax cross-entropy is left, and the blocking dataset finding is reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vit_single_label"


def _rewrite(folder: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "migrate_ml", "rewrite", "--output-format", "json", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("example") / "vit_single_label"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder, _rewrite(folder)


def test_rewrite_converts_the_losses_and_compiles(rewritten) -> None:
    folder, report = rewritten
    statuses = {Path(f["path"]).name: f["status"] for f in report["files"]}
    assert statuses["utils.py"] == "changed"
    for path in folder.glob("*.py"):
        text = path.read_text()
        compile(text, str(path), "exec")
        assert "CrossEntropyLoss" not in text and "cross_entropy(" not in text, path.name


def test_second_run_is_a_no_op(rewritten) -> None:
    folder, _ = rewritten
    before = {p.name: p.read_bytes() for p in folder.glob("*.py")}
    report = _rewrite(folder)
    assert all(f["status"] == "unchanged" for f in report["files"])
    assert {p.name: p.read_bytes() for p in folder.glob("*.py")} == before


def test_image_folder_is_reported_as_blocking(rewritten) -> None:
    folder, report = rewritten
    train = next(f for f in report["files"] if Path(f["path"]).name == "train.py")
    lines = (folder / "train.py").read_text().splitlines()
    dataset_findings = [f for f in train["findings"] if f["code"] == "ML101"]
    assert len(dataset_findings) == 2
    for finding in dataset_findings:
        assert "datasets.ImageFolder(" in lines[finding["line"] - 1]
        assert "MultiLabelCsvDataset" in finding["suggestion"]


def test_rewritten_example_imports_without_running(rewritten) -> None:
    pytest.importorskip("timm")
    folder, _ = rewritten
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import utils, train, predict; "
        "assert callable(train.main) and callable(predict.predict)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, check=False, cwd=folder
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == ""


REWRITTEN = EXAMPLE.with_name("vit_single_label_rewritten")


def test_rewrite_matches_the_checked_in_rewritten_example(rewritten) -> None:
    """examples/vit_single_label_rewritten is what users read as the worked result."""
    folder, _ = rewritten
    produced = {p.name: p.read_text() for p in folder.glob("*.py")}
    checked_in = {p.name: p.read_text() for p in REWRITTEN.glob("*.py")}
    assert produced == checked_in
