"""Turning outcomes into what people read: summaries, diffs and the JSON report."""

from __future__ import annotations

import difflib
import json
from collections import Counter
from typing import Sequence

from migrate_ml.engine.runner import FileOutcome
from migrate_ml.rules import RULES

JSON_SCHEMA_VERSION = 1


def unified_diff(outcome: FileOutcome) -> str:
    """A ``git apply``-able unified diff of one file (empty when unchanged)."""
    if not outcome.changed:
        return ""
    old = outcome.old_text.splitlines(keepends=True)
    new = outcome.new_text.splitlines(keepends=True)
    name = outcome.path.lstrip("/") if outcome.path != "-" else "<stdin>"
    lines = []
    for line in difflib.unified_diff(old, new, fromfile=f"a/{name}", tofile=f"b/{name}"):
        if not line.endswith(("\n", "\r")):
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return "".join(lines)


def rule_name(code: str) -> str:
    rule = RULES.get(code)
    return rule.name if rule else code


def finding_lines(outcome: FileOutcome) -> list[str]:
    """``path:line:col: CODE message`` lines, each followed by its suggestion."""
    if outcome.error is not None:
        return [str(outcome.error)]
    lines = []
    for finding in outcome.findings:
        tag = ""
        if finding.applicability == "unsafe":
            tag = " [unsafe fix available: --unsafe-fixes]"
        lines.append(f"{outcome.path}:{finding.line}:{finding.column}: {finding.code} {finding.message}{tag}")
        if finding.suggestion:
            lines.append(f"  help: {finding.suggestion}")
    return lines


def change_summary(outcome: FileOutcome) -> str:
    counts = Counter(change.code for change in outcome.changes)
    codes = ", ".join(f"{code}×{n}" if n > 1 else code for code, n in sorted(counts.items()))
    return f"{outcome.path}: {codes}"


def totals_line(outcomes: Sequence[FileOutcome], mode: str) -> str:
    changed = sum(1 for o in outcomes if o.changed)
    errors = sum(1 for o in outcomes if o.error is not None)
    findings = sum(len(o.findings) for o in outcomes if o.error is None)
    verb = "rewritten" if mode == "rewrite" else "would be rewritten"
    parts = [
        f"{changed} file{'s' if changed != 1 else ''} {verb}",
        f"{len(outcomes) - changed - errors} left unchanged",
        f"{findings} finding{'s' if findings != 1 else ''} need{'s' if findings == 1 else ''} review",
    ]
    if errors:
        parts.append(f"{errors} file{'s' if errors != 1 else ''} could not be processed")
    return ", ".join(parts)


def json_report(outcomes: Sequence[FileOutcome], mode: str) -> str:
    """The stable machine-readable report (schema version 1, documented in docs/cli.md)."""
    files = []
    for outcome in outcomes:
        if outcome.error is not None:
            status = "error"
        elif outcome.changed:
            status = "changed"
        else:
            status = "unchanged"
        files.append(
            {
                "path": outcome.path,
                "status": status,
                "written": outcome.written,
                "codes": sorted({c.code for c in outcome.changes}),
                "changes": [
                    {
                        "code": c.code,
                        "name": rule_name(c.code),
                        "line": c.line,
                        "column": c.column,
                        "end_line": c.end_line,
                        "message": c.message,
                        "safety": c.applicability,
                    }
                    for c in (outcome.changes if outcome.error is None else [])
                ],
                "findings": [
                    {
                        "code": f.code,
                        "name": rule_name(f.code),
                        "line": f.line,
                        "column": f.column,
                        "message": f.message,
                        "suggestion": f.suggestion,
                        "safety": f.applicability,
                    }
                    for f in (outcome.findings if outcome.error is None else [])
                ],
                "error": None
                if outcome.error is None
                else {
                    "line": outcome.error.line,
                    "column": outcome.error.column,
                    "message": outcome.error.message,
                },
            }
        )
    summary = {
        "files": len(outcomes),
        "changed": sum(1 for f in files if f["status"] == "changed"),
        "errors": sum(1 for f in files if f["status"] == "error"),
        "findings": sum(len(f["findings"]) for f in files),
    }
    return json.dumps(
        {"version": JSON_SCHEMA_VERSION, "tool": "migrate-ml", "mode": mode, "files": files, "summary": summary},
        indent=2,
    )
