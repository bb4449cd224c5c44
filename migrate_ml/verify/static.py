"""The static pass: re-scan migrated files and report what is still single-label.

It is the rewrite run in check mode: a fix that would still apply means single-label code is
left (with the rule that fixes it), and an open finding (a class-index dataset, top-k accuracy,
a ``log_softmax`` in ``forward`` …) is a decision still waiting for a human.
"""

from __future__ import annotations

from migrate_ml.engine.runner import process_file
from migrate_ml.engine.transform import Settings
from migrate_ml.verify.checks import FAIL, PASS, Check


def static_checks(path: str, threshold: float) -> list[Check]:
    outcome = process_file(path, Settings(threshold=threshold), write=False)
    if outcome.error is not None:
        return [Check(file=path, line=outcome.error.line, check="static: parse", status=FAIL,
                      reason=outcome.error.message, hint="fix the file so that it parses", phase="static")]
    checks = [
        Check(
            file=path,
            line=change.line,
            check=f"static: {change.code}",
            status=FAIL,
            code=change.code,
            reason=f"still single-label: {change.message}",
            hint=f"`migrate-ml rewrite {path}` applies rule {change.code}"
            + (" (with --unsafe-fixes)" if change.applicability == "unsafe" else ""),
            phase="static",
        )
        for change in outcome.changes
    ]
    for finding in outcome.findings:
        hint = finding.suggestion or f"`migrate-ml explain {finding.code}`"
        if finding.applicability == "unsafe":
            hint = f"{hint} (or `migrate-ml rewrite --unsafe-fixes`)"
        checks.append(Check(file=path, line=finding.line, check=f"static: {finding.code}", status=FAIL,
                            code=finding.code, reason=f"open finding: {finding.message}", hint=hint, phase="static"))
    if not checks:
        checks.append(Check(file=path, check="static: re-scan", status=PASS,
                            reason="no single-label code left and no open findings", phase="static"))
    return checks
