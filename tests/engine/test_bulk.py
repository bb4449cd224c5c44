"""Files whose bulk is data are rewritten in bounded time and memory (issue 21, item 10)."""

from __future__ import annotations

import pytest

from migrate_ml.engine import bulk
from migrate_ml.engine.runner import process_file
from migrate_ml.engine.source import read_source
from migrate_ml.engine.transform import Settings

ROWS = 1200
"""Enough rows of data to pass bulk.SET_ASIDE_FROM_BYTES."""
HEAD = "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n"


def _data_module(rows: int, newline: str = "\n") -> str:
    lines = [HEAD.rstrip("\n").replace("\n", newline), "DATA = ["]
    lines += [f"    [{', '.join(str((row * 7 + i) % 1000) for i in range(20))}, 'café {row}'],  # row {row}" for row in range(rows)]
    lines += ["]", "LABELS = {" + ", ".join(f"'k{i}': -{i}" for i in range(400)) + "}", "loss = criterion(out, labels)", ""]
    return newline.join(lines)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_data_module_is_rewritten_exactly_with_libcst_seeing_only_the_code(tmp_path, newline):
    text = _data_module(ROWS, newline)
    path = tmp_path / "data.py"
    path.write_bytes(text.encode())
    source = read_source(str(path))
    aside = bulk.set_aside(source)
    assert aside is not None and len(aside.source.data) < len(text) / 10  # the literals are set aside
    assert aside.source.text.count(newline) == text.count(newline)  # same lines: positions hold
    outcome = process_file(str(path), Settings(), write=True)
    assert outcome.error is None and outcome.written
    expected = text.replace("nn.CrossEntropyLoss()", "nn.BCEWithLogitsLoss()").replace(
        "criterion(out, labels)", "criterion(out, labels.float())"
    )
    assert path.read_bytes() == expected.encode()
    assert {(change.line, change.end_line) for change in outcome.changes} == {(2, ROWS + 6)}  # the constructor and its call


def test_findings_after_a_literal_keep_their_lines_and_columns(tmp_path):
    text = _data_module(ROWS).replace("loss = criterion(out, labels)", "pred = DATA, out.argmax(dim=1)")
    path = tmp_path / "data.py"
    path.write_text(text)
    outcome = process_file(str(path), Settings(), write=False)
    assert outcome.error is None
    lines = text.split("\n")
    for finding in outcome.findings:
        assert "argmax" in lines[finding.line - 1][finding.column - 1 :] or "CrossEntropyLoss" in lines[finding.line - 1]


def test_code_past_the_limit_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "MAX_CODE_BYTES", 1024)
    path = tmp_path / "code.py"
    original = HEAD + "".join(f"value_{i} = compute({i})\n" for i in range(200)) + "loss = criterion(out, labels)\n"
    path.write_text(original)
    outcome = process_file(str(path), Settings(), write=True)
    assert str(outcome.error).startswith(f"{path}: error: too large to rewrite: ")
    assert str(outcome.error).endswith("KiB of code besides large data literals (the limit is 1 KiB); file left unchanged")
    assert path.read_text() == original


def test_small_files_and_literals_holding_names_are_parsed_as_they_are(tmp_path):
    path = tmp_path / "small.py"
    path.write_text(_data_module(10))
    assert bulk.set_aside(read_source(str(path))) is None
    path.write_text(_data_module(ROWS).replace("'café 7'", "weights"))  # one name: not data
    aside = bulk.set_aside(read_source(str(path)))
    assert aside is not None and "'k399': -399" not in aside.source.text and "weights" in aside.source.text
