"""``migrate-ml rewrite`` end to end: exit codes, modes, stdin, bad input, preservation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import jsonschema
import pytest

from migrate_ml.engine import source as source_module

CHANGE = "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\nloss = criterion(z, y)\n"
CHANGED = "import torch.nn as nn\ncriterion = nn.BCEWithLogitsLoss()\nloss = criterion(z, y.float())\n"
FINDING_ONLY = "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss(ignore_index=-1)\nloss = criterion(z, y)\n"
PLAIN = "print('hello')\n"


def snapshot(root):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


# Exit codes ----------------------------------------------------------------------------------


def test_nothing_to_change_exits_0(project, run_cli):
    project(**{"a.py": PLAIN})
    code, out, err = run_cli("rewrite", "a.py")
    assert code == 0
    assert "0 files rewritten, 1 left unchanged, 0 findings need review" in out


def test_written_changes_exit_0_and_list_the_codes(project, run_cli):
    root = project(**{"train.py": CHANGE})
    code, out, _ = run_cli("rewrite", ".")
    assert code == 0
    assert (root / "train.py").read_text() == CHANGED
    assert "Rewrote train.py: ML001" in out


@pytest.mark.parametrize("mode", ["--diff", "--check"])
def test_pending_changes_exit_1_and_write_nothing(project, run_cli, mode):
    root = project(**{"train.py": CHANGE, "sub__other.py": CHANGE})
    before = snapshot(root)
    code, _, _ = run_cli("rewrite", mode, ".")
    assert code == 1
    assert snapshot(root) == before


@pytest.mark.parametrize("mode", ["--diff", "--check"])
def test_nothing_pending_exits_0(project, run_cli, mode):
    project(**{"a.py": PLAIN})
    assert run_cli("rewrite", mode, "a.py")[0] == 0


def test_check_fails_on_findings_alone_but_rewrite_and_diff_do_not(project, run_cli):
    project(**{"a.py": FINDING_ONLY})
    code, out, _ = run_cli("rewrite", "--check", "a.py")
    assert code == 1
    assert "a.py:2:13: ML001 " in out
    assert "\n  help: " in out
    assert run_cli("rewrite", "--diff", "a.py")[0] == 0
    assert run_cli("rewrite", "a.py")[0] == 0


def test_usage_errors_exit_2(project, run_cli):
    project(**{"a.py": PLAIN})
    code, _, err = run_cli("rewrite", "--select", "XX9", "a.py")
    assert code == 2 and "unknown rule code or prefix: XX9" in err
    code, _, err = run_cli("rewrite", "-", "a.py")
    assert code == 2 and "cannot be combined" in err
    code, _, err = run_cli("rewrite")
    assert code == 2 and "no PATH given" in err
    for argv in (("rewrite", "--threshold", "1.5", "a.py"), ("rewrite", "-j", "0", "a.py"), ("rewrite", "--color", "red", "a.py")):
        with pytest.raises(SystemExit) as caught:
            run_cli(*argv)
        assert caught.value.code == 2


# Bad input: one line each, the other files still finish, exit 2 ------------------------------


BAD_INPUTS = {
    "syntax.py": ("import torch.nn as nn\nc = nn.CrossEntropyLoss(\n", "syntax.py:2:24: error: syntax error: '(' was never closed"),
    "bytes.py": (b"x = 'caf\xe9'\n", "bytes.py:1:9: error: cannot decode byte 0xe9 as utf-8"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
@pytest.mark.parametrize("mode", [(), ("--check",), ("--diff",)])
def test_unprocessable_file_is_one_line_and_the_rest_finishes(project, run_cli, name, mode):
    content, expected = BAD_INPUTS[name]
    root = project(**{name: content, "good.py": CHANGE})
    code, out, err = run_cli("rewrite", *mode, name, "good.py")
    assert code == 2
    report = err if mode == ("--diff",) else out
    errors = [line for line in report.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(expected)
    assert (root / name).read_bytes() == (content if isinstance(content, bytes) else content.encode())
    if not mode:
        assert (root / "good.py").read_text() == CHANGED


def test_missing_path_is_an_error(project, run_cli):
    project(**{"good.py": CHANGE})
    code, out, _ = run_cli("rewrite", "missing.py", "good.py")
    assert code == 2
    assert "missing.py:1:1: error: no such file" in out
    assert "BCEWithLogitsLoss" in (project() / "good.py").read_text()


def test_permission_denied_on_write(project, run_cli, monkeypatch):
    """The final rename is made to raise PermissionError in-process: that is where a read-only
    folder would fail."""
    root = project(**{"locked.py": CHANGE})

    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(source_module.os, "replace", refuse)
    code, out, _ = run_cli("rewrite", "locked.py")
    assert code == 2
    assert "locked.py:1:1: error: cannot write: Permission denied; file left unchanged" in out
    assert (root / "locked.py").read_text() == CHANGE
    assert sorted(os.listdir(root)) == ["locked.py"]


# stdin ---------------------------------------------------------------------------------------


def test_stdin_rewrites_to_stdout_and_reports_to_stderr(run_cli):
    code, out, err = run_cli("rewrite", "-", stdin=CHANGE.encode())
    assert code == 0
    assert out == CHANGED
    assert "Rewrote -: ML001" in err


def test_stdin_findings_are_positioned_in_the_output(run_cli):
    code, out, err = run_cli("rewrite", "-", stdin=FINDING_ONLY.encode())
    assert code == 0 and out == FINDING_ONLY
    assert "-:2:13: ML001" in err


def test_stdin_json_report_goes_to_stderr(run_cli):
    code, out, err = run_cli("rewrite", "-", "--output-format", "json", stdin=CHANGE.encode())
    assert out == CHANGED
    assert json.loads(err)["files"][0]["status"] == "changed"


def test_stdin_check_and_diff(run_cli):
    assert run_cli("rewrite", "--check", "-", stdin=CHANGE.encode())[0] == 1
    code, out, _ = run_cli("rewrite", "--diff", "-", stdin=CHANGE.encode())
    assert code == 1 and out.startswith("--- a/<stdin>\n+++ b/<stdin>\n")


def test_stdin_syntax_error_prints_no_code(run_cli):
    code, out, err = run_cli("rewrite", "-", stdin=b"import torch.nn as nn\nnn.CrossEntropyLoss(\n")
    assert code == 2 and out == ""
    assert err.startswith("-:2:20: error: syntax error: '(' was never closed")


# Preservation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, expected",
    [
        (CHANGE.replace("\n", "\r\n").encode(), CHANGED.replace("\n", "\r\n").encode()),
        (b"\xef\xbb\xbf" + CHANGE.encode(), b"\xef\xbb\xbf" + CHANGED.encode()),
        (
            b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + CHANGE.encode(),
            b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + CHANGED.encode(),
        ),
    ],
    ids=["crlf", "bom", "latin-1"],
)
def test_newlines_bom_and_encoding_are_kept(project, run_cli, data, expected):
    root = project(**{"a.py": data})
    (root / "a.py").chmod(0o754)
    assert run_cli("rewrite", "a.py")[0] == 0
    assert (root / "a.py").read_bytes() == expected
    assert (root / "a.py").stat().st_mode & 0o777 == 0o754
    code, out, _ = run_cli("rewrite", "a.py")
    assert code == 0 and "0 files rewritten" in out


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_is_a_patch_git_applies(project, run_cli):
    """The patch is bytes in each file's encoding: git applies it, with the in-place result."""
    files = {
        "crlf.py": CHANGE.replace("\n", "\r\n").encode(),
        "bom.py": b"\xef\xbb\xbf" + CHANGE.encode(),
        "latin.py": b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + CHANGE.encode(),
        "noeol.py": CHANGE.rstrip("\n").encode(),
        "formfeed.py": b"\x0c\n" + CHANGE.encode(),
    }
    root = project(**files)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    done = subprocess.run(
        [sys.executable, "-m", "migrate_ml", "rewrite", "--diff", "."], cwd=root, capture_output=True
    )
    assert done.returncode == 1
    assert set(done.stdout.split(b"\n")[0:1]) == {b"--- a/bom.py"}
    (root.parent / "change.patch").write_bytes(done.stdout)
    subprocess.run(["git", "apply", str(root.parent / "change.patch")], cwd=root, check=True)
    applied = {name: (root / name).read_bytes() for name in files}
    project(**files)
    assert run_cli("rewrite", ".")[0] == 0
    assert {name: (root / name).read_bytes() for name in files} == applied
    assert all(b"BCEWithLogitsLoss" in data for data in applied.values())


# Rules, aliases, suppressions ----------------------------------------------------------------


def test_aliases_survive(project, run_cli):
    root = project(**{
        "module_alias.py": "import torch.nn as tnn\nc = tnn.CrossEntropyLoss()\nl = c(z, y)\n",
        "name_alias.py": "from torch.nn import CrossEntropyLoss as CE\nc = CE()\nl = c(z, y)\n",
    })
    assert run_cli("rewrite", ".")[0] == 0
    assert "c = tnn.BCEWithLogitsLoss()" in (root / "module_alias.py").read_text()
    name_alias = (root / "name_alias.py").read_text()
    assert "CrossEntropyLoss" not in name_alias and "BCEWithLogitsLoss()" in name_alias
    compile(name_alias, "name_alias.py", "exec")


@pytest.mark.parametrize("comment", ["# migrate-ml: ignore", "# migrate-ml: ignore[ML001]", "# migrate-ml: ignore[ML0]"])
def test_suppressed_line_is_left_alone(project, run_cli, comment):
    text = f"import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()  {comment}\nloss = criterion(z, y)\n"
    root = project(**{"a.py": text})
    code, out, _ = run_cli("rewrite", "--check", "a.py")
    assert code == 0 and "a.py" not in out.replace("0 files", "")
    assert (root / "a.py").read_text() == text


def test_select_and_ignore(project, run_cli):
    project(**{"a.py": CHANGE})
    # With ML001 off the loss stays single-label, and the safety net (ML100) says so.
    code, out, err = run_cli("rewrite", "--check", "--ignore", "ML001", "a.py")
    assert code == 1 and "ML100" in out + err
    assert run_cli("rewrite", "--check", "--ignore", "ML001,ML100", "a.py")[0] == 0
    assert run_cli("rewrite", "--check", "--select", "ML0", "a.py")[0] == 1
    assert run_cli("rewrite", "--check", "--select", "ml001", "a.py")[0] == 1


def test_parallel_output_is_identical(project, run_cli):
    files = {f"m{index:02}.py": (CHANGE if index % 2 else PLAIN) * (index + 1) for index in range(10)}
    files["bad.py"] = "import torch.nn as nn\nnn.CrossEntropyLoss(\n"
    project(**files)
    serial = run_cli("rewrite", "--diff", ".")
    parallel = run_cli("rewrite", "--diff", "-j", "2", ".")
    assert serial == parallel
    assert serial[0] == 2


# JSON report ---------------------------------------------------------------------------------

POSITION = {"type": "integer", "minimum": 1}
CELL = {"oneOf": [{"type": "null"}, POSITION]}
SCHEMA = {
    "type": "object",
    "required": ["version", "tool", "mode", "files", "summary"],
    "properties": {
        "version": {"const": 1},
        "tool": {"const": "migrate-ml"},
        "mode": {"enum": ["rewrite", "diff", "check"]},
        "summary": {
            "type": "object",
            "required": ["files", "changed", "errors", "findings"],
            "properties": {key: {"type": "integer"} for key in ("files", "changed", "errors", "findings")},
        },
        "files": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "status", "written", "codes", "changes", "findings", "error"],
                "properties": {
                    "path": {"type": "string"},
                    "status": {"enum": ["changed", "unchanged", "error"]},
                    "written": {"type": "boolean"},
                    "codes": {"type": "array", "items": {"type": "string", "pattern": "^ML[0-9]{3}$"}},
                    "changes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["code", "name", "line", "column", "end_line", "cell", "end_cell", "file_line", "message", "safety"],
                            "properties": {
                                "line": POSITION, "column": POSITION, "end_line": POSITION,
                                "cell": CELL, "end_cell": CELL, "file_line": POSITION,
                                "safety": {"enum": ["safe", "unsafe"]},
                            },
                        },
                    },
                    "findings": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["code", "name", "line", "column", "cell", "file_line", "message", "suggestion", "safety"],
                            "properties": {
                                "line": POSITION, "column": POSITION, "cell": CELL, "file_line": POSITION,
                                "safety": {"enum": ["safe", "unsafe", "display-only"]},
                            },
                        },
                    },
                    "error": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "required": ["line", "column", "message"],
                                "properties": {"line": POSITION, "column": POSITION, "message": {"type": "string"}},
                            },
                        ]
                    },
                },
            },
        },
    },
}


def test_json_report_follows_the_documented_schema(project, run_cli):
    project(**{"a.py": CHANGE, "b.py": FINDING_ONLY, "c.py": PLAIN, "d.py": b"\xff"})
    code, out, _ = run_cli("rewrite", "--check", "--output-format", "json", ".")
    assert code == 2
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    by_path = {entry["path"]: entry for entry in report["files"]}
    assert by_path["a.py"]["status"] == "changed" and by_path["a.py"]["codes"] == ["ML001"]
    assert by_path["a.py"]["changes"][0]["safety"] == "safe"
    assert by_path["b.py"]["findings"][0]["code"] == "ML001"
    assert by_path["d.py"]["error"]["message"].startswith("cannot decode")
    assert report["summary"] == {"files": 4, "changed": 1, "errors": 1, "findings": 1}
    change = by_path["a.py"]["changes"][0]
    assert change["cell"] is None and change["file_line"] == change["line"]


def test_json_report_names_the_notebook_cell_of_each_position(project, run_cli):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Train"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["import torch.nn as nn\n", "criterion = nn.CrossEntropyLoss(ignore_index=-1)"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["loss = criterion(z, y)\n", "pred = z.argmax(1)\n", "acc = (pred == y).float().mean()"]},
    ]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    project(**{"train.ipynb": json.dumps(notebook), "a.py": CHANGE})
    code, out, _ = run_cli("rewrite", "--check", "--output-format", "json", "train.ipynb", "a.py")
    report = json.loads(out)
    jsonschema.validate(report, SCHEMA)
    by_path = {entry["path"]: entry for entry in report["files"]}
    notebook_report = by_path["train.ipynb"]
    positions = {(item["code"], item["cell"], item["line"]) for item in notebook_report["changes"] + notebook_report["findings"]}
    assert ("ML001", 2, 2) in positions
    assert {cell for _, cell, _ in positions} <= {2, 3} and any(cell == 3 for _, cell, _ in positions)
    assert all(change["end_cell"] >= change["cell"] for change in notebook_report["changes"])
    python_items = by_path["a.py"]["changes"] + by_path["a.py"]["findings"]
    assert python_items and all(item["cell"] is None for item in python_items)
