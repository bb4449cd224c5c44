"""Rendering a verify report: a rich table (text) or the JSON document of docs/verify.md."""

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
    for check in report.checks:
        if check.status == FAIL and check.traceback:
            out.print(Text(f"\n{check.location}: {check.check}: {check.reason}", style="bold"))
            out.print(Text(check.traceback.rstrip()))
    totals = summary(report)
    verdict = "all checks passed" if report.ok else f"{totals['failed']} check{'s' if totals['failed'] != 1 else ''} failed"
    out.print(Text(f"{totals['files']} file{'s' if totals['files'] != 1 else ''}, {totals['checks']} checks: "
                   f"{totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped: {verdict}",
                   style="green" if report.ok else "red"))
