"""Reports for CI: GitHub workflow annotations and SARIF 2.1.0 logs.

Both report the same three things: findings (need a human: ``warning``), changes (``error``
when they are pending in ``--check``/``--diff``, ``note`` once written) and files that could
not be processed (``error``). Lines point into the file as stored: in a notebook, a cell's
line is mapped onto the line of the ``.ipynb`` JSON that holds it, and the cell is named in
the message.
"""

from __future__ import annotations

import json
import os
from typing import Iterator, Sequence
from urllib.parse import quote

from migrate_ml import __version__
from migrate_ml.engine.report import cell_line_maps, rule_name, stored_line
from migrate_ml.engine.runner import FileOutcome
from migrate_ml.rules import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _entries(outcome: FileOutcome, mode: str) -> Iterator[dict]:
    """Everything to report about one file, as plain dicts with file positions."""
    if outcome.error is not None:
        error = outcome.error
        yield {"level": "error", "code": None, "line": error.line, "column": error.column, "message": error.message, "cell": None}
        return
    change_lines, finding_lines = cell_line_maps(outcome)
    change_level = "note" if mode == "rewrite" else "error"
    change_verb = "rewrote" if mode == "rewrite" else "would rewrite"
    for change in outcome.changes:
        yield {
            "level": change_level,
            "code": change.code,
            "line": stored_line(change, change_lines),
            "column": change.column,
            "message": f"{change_verb}{_in_cell(change)}: {change.message}",
            "cell": change.cell,
            "cell_line": change.line,
        }
    for finding in outcome.findings:
        where = _in_cell(finding)
        message = f"{finding.message}{where and ' (' + where.strip() + ')'}"
        if finding.suggestion:
            message += f"\nhelp: {finding.suggestion}"
        yield {
            "level": "warning",
            "code": finding.code,
            "line": stored_line(finding, finding_lines),
            "column": finding.column,
            "message": message,
            "cell": finding.cell,
            "cell_line": finding.line,
        }


def _in_cell(item) -> str:
    return "" if item.cell is None else f" in cell {item.cell} line {item.line}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(outcomes: Sequence[FileOutcome], mode: str) -> str:
    """``::warning file=…,line=…,col=…,title=…::message`` lines, one per entry."""
    commands = {"error": "error", "warning": "warning", "note": "notice"}
    lines = []
    for outcome in outcomes:
        for entry in _entries(outcome, mode):
            title = f"{entry['code']} {rule_name(entry['code'])}" if entry["code"] else "migrate-ml error"
            properties = ",".join(
                f"{key}={_escape_property(str(value))}"
                for key, value in (("file", outcome.path), ("line", entry["line"]), ("col", entry["column"]), ("title", title))
            )
            lines.append(f"::{commands[entry['level']]} {properties}::{_escape_data(entry['message'])}")
    return "\n".join(lines) + ("\n" if lines else "")


def _artifact_uri(path: str) -> str:
    # Percent-encode the name's bytes: a file name that is not UTF-8 (kept as surrogate
    # escapes by Python) still gives a valid URI naming exactly that file.
    if os.path.isabs(path):
        return "file://" + quote(os.fsencode(path.replace(os.sep, "/")))
    return quote(os.fsencode(os.path.normpath(path).replace(os.sep, "/")))


def sarif_log(outcomes: Sequence[FileOutcome], mode: str) -> str:
    """A SARIF 2.1.0 log: one run, the rules that reported anything, one result per entry."""
    results = []
    used_codes: list[str] = []
    notifications = []
    for outcome in outcomes:
        for entry in _entries(outcome, mode):
            location = {
                "physicalLocation": {
                    "artifactLocation": {"uri": _artifact_uri(outcome.path)},
                    "region": {"startLine": max(entry["line"], 1), "startColumn": max(entry["column"], 1)},
                }
            }
            if entry["code"] is None:
                notifications.append({"level": "error", "message": {"text": entry["message"]}, "locations": [location]})
                continue
            if entry["code"] not in used_codes:
                used_codes.append(entry["code"])
            result = {
                "ruleId": entry["code"],
                "ruleIndex": used_codes.index(entry["code"]),
                "level": entry["level"],
                "message": {"text": entry["message"]},
                "locations": [location],
            }
            if entry["cell"] is not None:
                # The region is the line of the .ipynb JSON (what a viewer of the file shows);
                # the cell and the line inside it are what a notebook editor shows.
                result["properties"] = {"notebookCell": entry["cell"], "notebookCellLine": entry["cell_line"]}
            results.append(result)
    rules = []
    for code in used_codes:
        rule = RULES.get(code)
        descriptor: dict = {"id": code, "name": rule_name(code)}
        if rule is not None:
            descriptor["shortDescription"] = {"text": rule.summary}
            descriptor["fullDescription"] = {"text": rule.rationale}
            descriptor["help"] = {"text": f"{rule.summary}\n\nRun `migrate-ml explain {code}` for an example."}
            descriptor["properties"] = {"fixSafety": rule.applicability.value}
        rules.append(descriptor)
    run = {
        "tool": {"driver": {"name": "migrate-ml", "version": __version__, "rules": rules}},
        "results": results,
        "invocations": [{"executionSuccessful": not notifications, "toolExecutionNotifications": notifications}],
        "properties": {"mode": mode},
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2)
