"""Turning outcomes into what people read: summaries, diffs and the JSON report."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections import Counter
from typing import Sequence

from migrate_ml.engine.notebook import is_notebook, source_json_lines
from migrate_ml.engine.runner import FileOutcome
from migrate_ml.engine.source import shown_path
from migrate_ml.rules import RULES

JSON_SCHEMA_VERSION = 1


_PATCH_LINE = re.compile(r"[^\n]*\n|[^\n]+$")
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def unified_diff(outcome: FileOutcome) -> str:
    """A ``git apply``-able unified diff of one file (empty when unchanged).

    Each hunk header names the rules behind it after the second ``@@`` (``@@ -3,7 +3,7 @@
    ML001 cross-entropy-loss``): git and patch ignore the text there, so the patch still
    applies, and a reviewer reading it in a pull request sees why each line changed.
    """
    if not outcome.changed:
        return ""
    # The BOM is part of the file's first line as git sees it; decoding dropped it.
    bom = "\ufeff" if outcome.encoding == "utf-8-sig" else ""
    old = _patch_lines(bom + outcome.old_text)
    new = _patch_lines(bom + outcome.new_text)
    name = _patch_name(outcome.path)
    spans = _change_spans(outcome)
    lines = []
    for line in difflib.unified_diff(old, new, fromfile=_git_quoted(f"a/{name}"), tofile=_git_quoted(f"b/{name}")):
        header = _HUNK_HEADER.match(line)
        if header and spans:
            start = int(header.group(1))
            length = 1 if header.group(2) is None else int(header.group(2))
            codes = _codes_for(start, max(start + length - 1, start), spans)
            if codes:
                line = f"{line.rstrip()} {', '.join(f'{code} {rule_name(code)}' for code in codes)}\n"
        if not line.endswith("\n"):
            # A last line without "\n" (a file with "\r" line endings is one such line for git).
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return "".join(lines)


def _change_spans(outcome: FileOutcome) -> list[tuple[str, int, int, bool]]:
    """(code, first line, last line, touches header) of each change, in old-file lines."""
    spans = []
    cell_starts = source_json_lines(outcome.old_text) if is_notebook(outcome.path) else {}
    for change in outcome.changes:
        first, last = min(change.line, change.first_line or change.line), change.end_line
        if change.cell is not None:
            first_key, last_key = cell_starts.get(change.cell), cell_starts.get(change.end_cell)
            if first_key is None or last_key is None:
                continue
            first, last = first_key + first, last_key + last
        spans.append((change.code, first, last, change.touches_header))
    return spans


def _codes_for(first: int, last: int, spans: list[tuple[str, int, int, bool]]) -> list[str]:
    codes = {code for code, start, end, _ in spans if start <= last and end >= first}
    if not codes:
        # Nothing edited here: an import or the threshold constant that a fix added.
        codes = {code for code, _, _, header in spans if header}
    return sorted(codes)


def patch_bytes(diff: str, encoding: str) -> bytes:
    """A file's patch in that file's encoding, so that ``git apply`` finds its bytes."""
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    return diff.encode(codec, errors="surrogateescape")


def _patch_lines(text: str) -> list[str]:
    """Lines as git and patch see them: split at ``\\n`` only.

    ``str.splitlines`` also splits at form feeds, ``\\x1c``-``\\x1e``, ``\\x85`` and U+2028, which
    would put a "No newline at end of file" marker in the middle of the patch.
    """
    return _PATCH_LINE.findall(text)


def _patch_name(path: str) -> str:
    """The path relative to the working directory when it is inside it, with ``/`` separators."""
    if path == "-":
        return "<stdin>"
    relative = os.path.relpath(path)
    if relative.startswith(os.pardir):
        relative = os.path.abspath(path).lstrip(os.sep)
    return relative.replace(os.sep, "/")


_C_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r",
              '"': '\\"', "\\": "\\\\"}


def _git_quoted(name: str) -> str:
    """A patch header's file name as git writes it: in double quotes with C escapes when it
    holds a control character, a quote or a backslash (a tab or line break would otherwise end
    the name, and ``git apply`` would reject the whole patch); unchanged otherwise."""
    if not any(ord(c) < 0x20 or c in '"\\\x7f' for c in name):
        return name
    escaped = "".join(
        _C_ESCAPES.get(c) or (f"\\{ord(c):03o}" if ord(c) < 0x20 or c == "\x7f" else c) for c in name
    )
    return f'"{escaped}"'


def rule_name(code: str) -> str:
    rule = RULES.get(code)
    return rule.name if rule else code


def location(path: str, item) -> str:
    """``path:line:col``, or ``path:cell N:line:col`` in a notebook (ruff's form)."""
    cell = f"cell {item.cell}:" if getattr(item, "cell", None) is not None else ""
    return f"{shown_path(path)}:{cell}{item.line}:{item.column}"


def finding_lines(outcome: FileOutcome) -> list[str]:
    """``path:line:col: CODE message`` lines, each followed by its suggestion."""
    if outcome.error is not None:
        return [str(outcome.error)]
    lines = []
    for finding in outcome.findings:
        tag = ""
        if finding.applicability == "unsafe":
            tag = " [unsafe fix available: --unsafe-fixes]"
        lines.append(f"{location(outcome.path, finding)}: {finding.code} {finding.message}{tag}")
        if finding.suggestion:
            lines.append(f"  help: {finding.suggestion}")
    return lines


def change_summary(outcome: FileOutcome) -> str:
    counts = Counter(change.code for change in outcome.changes)
    codes = ", ".join(f"{code}×{n}" if n > 1 else code for code, n in sorted(counts.items()))
    return f"{shown_path(outcome.path)}: {codes}"


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


def verbose_lines(outcomes: Sequence[FileOutcome], seconds: float, jobs: int) -> list[str]:
    """``--verbose``: for each file, whether it was parsed and how long it took, then totals."""
    lines = []
    for outcome in outcomes:
        if outcome.error is not None:
            what = "could not be processed"
        elif outcome.skipped:
            what = f"not parsed, pre-filter: {outcome.skipped}"
        else:
            what = "parsed and checked"
        lines.append(f"migrate-ml: {shown_path(outcome.path)}: {what} ({outcome.seconds:.3f} s)")
        if outcome.traceback:
            lines.extend(f"migrate-ml:   {line}" for line in outcome.traceback.rstrip().splitlines())
    parsed = sum(1 for o in outcomes if o.error is None and not o.skipped)
    workers = min(jobs, len(outcomes))
    how = f"{workers} worker processes" if workers > 1 else "this process"
    lines.append(
        f"migrate-ml: {len(outcomes)} file{'s' if len(outcomes) != 1 else ''} in {seconds:.2f} s with {how}: "
        f"{parsed} parsed, {sum(1 for o in outcomes if o.skipped)} left unparsed by the pre-filter"
    )
    return lines


def cell_line_maps(outcome: FileOutcome) -> tuple[dict[int, int], dict[int, int]]:
    """For a notebook, {cell: line of the stored ``.ipynb`` holding its ``"source"``} for its
    changes (the original text) and its findings (the written text, or the original when
    nothing was written); empty maps for a ``.py`` file."""
    if not is_notebook(outcome.path):
        return {}, {}
    findings_text = outcome.new_text if outcome.written else outcome.old_text
    return source_json_lines(outcome.old_text), source_json_lines(findings_text)


def stored_line(item, cell_lines: dict[int, int]) -> int:
    """The line of the file as stored: a notebook cell's line mapped onto its ``.ipynb`` JSON line."""
    cell = getattr(item, "cell", None)
    return item.line if cell is None else cell_lines.get(cell, 0) + item.line


def json_report(outcomes: Sequence[FileOutcome], mode: str) -> str:
    """The stable machine-readable report (schema version 1, documented in docs/cli.md)."""
    files = []
    for outcome in outcomes:
        change_lines, finding_lines = cell_line_maps(outcome)
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
                        "cell": c.cell,
                        "end_cell": c.end_cell,
                        "file_line": stored_line(c, change_lines),
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
                        "cell": f.cell,
                        "file_line": stored_line(f, finding_lines),
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
