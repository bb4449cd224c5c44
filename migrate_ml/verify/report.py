"""Rendering a verify report: a rich table on a terminal, one line per check when piped, or JSON."""

from __future__ import annotations

import json

from migrate_ml.verify import FAIL, PASS, SKIP, VerifyReport

JSON_SCHEMA_VERSION = 1
_STYLE = {PASS: "green", FAIL: "bold red", SKIP: "yellow"}


def summary(report: VerifyReport) -> dict:
    counts = {status: sum(1 for c in report.checks if c.status == status) for status in (PASS, FAIL, SKIP)}
    return {"files": len(report.files), "checks": len(report.checks), "passed": counts[PASS],
            "failed": counts[FAIL], "skipped": counts[SKIP], "ok": report.ok}


def json_report(report: VerifyReport, threshold: float | None) -> str:
    return json.dumps(
        {
            "version": JSON_SCHEMA_VERSION,
            "tool": "migrate-ml",
            "mode": "verify",
            "threshold": threshold,
            "checks": [c.to_json() for c in report.checks],
            "summary": summary(report),
        },
        indent=2,
    )


def print_text(report: VerifyReport, out) -> None:
    """A table on a terminal; one line per check when piped (CI logs, ``| less``, ``| grep FAIL``)."""
    from rich.text import Text

    if out.is_terminal:
        _print_table(report, out)
    else:
        for line in check_lines(report):
            out.print(Text(line), soft_wrap=True)
    for check in report.checks:
        if check.status == FAIL and check.traceback:
            out.print(Text(f"\n{check.location}: {check.check}: {check.reason}", style="bold"), soft_wrap=True)
            out.print(Text(check.traceback.rstrip()), soft_wrap=True)
    totals = summary(report)
    verdict = "all checks passed" if report.ok else f"{totals['failed']} check{'s' if totals['failed'] != 1 else ''} failed"
    out.print(Text(f"{totals['files']} file{'s' if totals['files'] != 1 else ''}, {totals['checks']} checks: "
                   f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped: {verdict}",
                   style="green" if report.ok else "red"), soft_wrap=True)


def check_lines(report: VerifyReport) -> list[str]:
    """``STATUS path:line check: reason`` per check, with an indented ``fix:`` line when there is one."""
    lines = []
    for check in report.checks:
        where = check.location + (f" {check.function}()" if check.function else "")
        lines.append(f"{check.status} {where} {check.check}: {_one_line(check.reason)}")
        if check.hint and check.status != PASS:
            lines.append(f"    fix: {_one_line(check.hint)}")
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _print_table(report: VerifyReport, out) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="migrate-ml verify", title_justify="left", show_lines=False)
    for column, options in (("Status", {"no_wrap": True}), ("Where", {"overflow": "fold"}),
                            ("Check", {"overflow": "fold"}), ("Reason", {"overflow": "fold", "ratio": 3}),
                            ("Fix", {"overflow": "fold", "ratio": 2})):
        table.add_column(column, **options)
    for check in report.checks:
        where = check.location + (f" {check.function}()" if check.function else "")
        fix = check.hint if check.status != PASS else ""
        table.add_row(Text(check.status, style=_STYLE[check.status]), Text(where), Text(check.check),
                      Text(check.reason), Text(fix))
    out.print(table)
