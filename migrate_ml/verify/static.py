"""The static pass: re-scan migrated files and report what is still single-label.

It is the rewrite run in check mode: a fix that would still apply means single-label code is
left (with the rule that fixes it), and an open finding (a class-index dataset, top-k accuracy,
a ``log_softmax`` in ``forward`` …) is a decision still waiting for a human. The rewrite's
safety net (ML100, :func:`migrate_ml.rules.semantics.residue.find_single_label`) runs in the
same pass, so every construct still single-label that no rule reported (per-element accuracy,
an arg-max compared with the labels, a single-label loss) is a ``FAIL`` row at its line.
"""

from __future__ import annotations

from migrate_ml.engine.runner import _transformer_for, process_file
from migrate_ml.engine.transform import Settings
from migrate_ml.rules.ml100_still_single_label import StillSingleLabelRule
from migrate_ml.verify.checks import FAIL, PASS, Check

SAFETY_NET = StillSingleLabelRule.code


def prepare(threshold: float) -> None:
    """Build the rules once in this process, so that each file's forked child inherits them."""
    _transformer_for(Settings(threshold=threshold))


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
        # The safety net's findings already say what is still single-label.
        reason = finding.message if finding.code == SAFETY_NET else f"open finding: {finding.message}"
        checks.append(Check(file=path, line=finding.line, check=f"static: {finding.code}", status=FAIL,
                            code=finding.code, reason=reason, hint=hint, phase="static"))
    if not checks:
        checks.append(Check(file=path, check="static: re-scan", status=PASS, phase="static",
                            reason="no fix left to apply, no open finding, and the safety net finds no "
                                   "single-label construct"))
    return checks
