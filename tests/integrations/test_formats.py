"""``--output-format github`` and ``sarif`` (validated against the SARIF 2.1.0 schema)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.integrations.conftest import NEEDS_REVIEW

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


def _validate_sarif(text: str) -> dict:
    log = json.loads(text)
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(log)
    return log


def test_github_annotations(run_cli, train_file, tmp_path):
    review = tmp_path / "masked.py"
    review.write_text(NEEDS_REVIEW)
    code, out, _ = run_cli("rewrite", "--check", "--output-format", "github", str(train_file), str(review))
    assert code == 1
    lines = out.splitlines()
    assert f"::error file={train_file},line=5,col=13,title=ML001 cross-entropy-loss::would rewrite: " in lines[0]
    assert any(line.startswith(f"::warning file={review},line=3,col=10,title=ML001 cross-entropy-loss::") for line in lines)
    assert all(line.startswith("::") for line in lines)
    assert any("%0Ahelp: " in line for line in lines)  # newlines escaped: one annotation per line


def test_github_escapes_property_separators(run_cli, tmp_path):
    path = tmp_path / "a,b:c.py"
    path.write_text(NEEDS_REVIEW)
    _, out, _ = run_cli("rewrite", "--check", "--output-format", "github", str(path))
    assert "a%2Cb%3Ac.py" in out


def test_github_error_annotation(run_cli, tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("criterion = nn.CrossEntropyLoss(\n")
    code, out, _ = run_cli("rewrite", "--output-format", "github", str(path))
    assert code == 2
    assert out.startswith(f"::error file={path},line=")


@pytest.mark.parametrize("mode", [["--check"], ["--diff"], []])
def test_sarif_is_valid_and_complete(run_cli, train_file, tmp_path, mode):
    review = tmp_path / "masked.py"
    review.write_text(NEEDS_REVIEW)
    broken = tmp_path / "broken.py"
    broken.write_text("criterion = nn.CrossEntropyLoss(\n")
    _, out, _ = run_cli("rewrite", *mode, "--output-format", "sarif", str(train_file), str(review), str(broken))
    log = _validate_sarif(out)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert {"ML001", "ML002"} <= set(rule_ids)
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    levels = {(r["ruleId"], r["level"]) for r in run["results"]}
    assert ("ML001", "warning") in levels  # the ignore_index finding
    assert ("ML002", "note" if not mode else "error") in levels
    assert run["invocations"][0]["executionSuccessful"] is False  # broken.py


def test_sarif_for_notebook_points_into_the_json_file(run_cli, notebook_file):
    _, out, _ = run_cli("rewrite", "--check", "--output-format", "sarif", str(notebook_file))
    log = _validate_sarif(out)
    (result,) = log["runs"][0]["results"]
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert "nn.CrossEntropyLoss()" in notebook_file.read_text().splitlines()[line - 1]
    assert "in cell 3 line 2" in result["message"]["text"]
    assert result["properties"] == {"notebookCell": 3, "notebookCellLine": 2}


def test_json_report_locates_notebook_entries_by_cell(run_cli, notebook_file):
    notebook_file.write_text(notebook_file.read_text().replace("nn.CrossEntropyLoss()", "nn.CrossEntropyLoss(ignore_index=-1)"))
    _, out, _ = run_cli("rewrite", "--check", "--output-format", "json", str(notebook_file))
    (entry,) = json.loads(out)["files"]
    (finding,) = entry["findings"]
    # The line inside the cell, as the text report's `cell 3:2:13` says, and the line of the
    # stored .ipynb that holds it, for a CI annotation on the file.
    assert (finding["cell"], finding["line"], finding["column"]) == (3, 2, 13)
    assert "nn.CrossEntropyLoss(ignore_index=-1)" in notebook_file.read_text().splitlines()[finding["file_line"] - 1]


def test_sarif_names_a_non_utf8_file_by_its_bytes(run_cli, train_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = os.fsdecode(b"caf\xe9_train.py")  # latin-1 bytes: not UTF-8
    (tmp_path / name).write_text(train_file.read_text())
    code, out, err = run_cli("rewrite", "--check", "--output-format", "sarif", ".")
    assert code == 1 and err == ""
    out.encode("utf-8")  # no lone surrogate escapes: valid UTF-8 text
    log = _validate_sarif(out)
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]}
    assert uris == {"caf%E9_train.py", "train.py"}


def test_text_report_prints_a_non_utf8_file_name_as_its_bytes(train_file, tmp_path):
    (tmp_path / os.fsdecode(b"caf\xe9.py")).write_text(train_file.read_text())
    done = subprocess.run(
        [sys.executable, "-m", "migrate_ml", "rewrite", "--check", "-j1", "."],
        cwd=tmp_path, capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
    )
    assert done.returncode == 1, done.stderr
    assert b"Would rewrite caf\xe9.py: ML001, ML002\n" in done.stdout
