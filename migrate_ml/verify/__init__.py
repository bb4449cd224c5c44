"""``migrate-ml verify``: check that migrated code behaves as multi-label code.

Two passes per run. The static pass re-scans each file with the rules in check mode. The
dynamic pass locates the functions that hold the loss calls and metric code, then runs them on
sample multi-label data in a subprocess (the reference runtime's harness) and checks what the
losses received and what the metrics returned. See docs/verify.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from migrate_ml.engine.runner import discover
from migrate_ml.engine.source import SourceError, read_source
from migrate_ml.verify.checks import FAIL, PASS, SKIP, Check
from migrate_ml.verify.isolate import ChildCrashed, in_child
from migrate_ml.verify.dynamic import DynamicOptions, run_dynamic, runtime_missing
from migrate_ml.verify.locate import Bind, ClassPlan, FilePlan, locate
from migrate_ml.verify.static import prepare, static_checks

__all__ = ["Bind", "Check", "VerifyOptions", "VerifyReport", "verify", "FAIL", "PASS", "SKIP"]

DEFAULT_THRESHOLD = 0.5

SAMPLE_DATA_HINT = (
    "move the loop into a function such as train_one_epoch(model, optimizer, data_loader, device, epoch) "
    "so verify can call it; or run the script itself on sample data: "
    "`migrate-ml sample-data /tmp/ml-sample --n 200` writes labels.csv + images/ "
    "(read it with migrate_ml_reference.MultiLabelCsvDataset), point the script's data path there "
    "and check that the loss falls and the metrics are thresholded"
)


@dataclass(frozen=True)
class VerifyOptions:
    binds: tuple[Bind, ...] = ()
    threshold: float | None = None
    """Overrides each file's own threshold constant; None uses the file's, else 0.5."""
    timeout: float = 60.0
    memory: int | None = None
    """Bytes of data memory allowed to the process running each file; None: no limit."""
    epochs: int = 3
    dynamic: bool = True


@dataclass
class VerifyReport:
    checks: list[Check] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not any(c.status == FAIL for c in self.checks)


def verify(paths: list[str], options: VerifyOptions) -> VerifyReport:
    report = VerifyReport(files=list(discover(paths)))
    binds = {b.name: b for b in options.binds}
    plans: list[tuple[FilePlan, float, str]] = []
    by_file: dict[str, list[Check]] = {}
    prepare(options.threshold or DEFAULT_THRESHOLD)
    for path in report.files:
        try:
            checks, plan = in_child(lambda: _examine(path, binds, options.threshold))
        except ChildCrashed as crash:
            checks, plan = [_parse_failure(path, None, f"the parser crashed on this file ({crash.reason})")], None
        by_file[path] = checks
        if plan is not None:
            threshold = options.threshold or plan.threshold or DEFAULT_THRESHOLD
            plans.append((plan, threshold, path))
    _fill_missing_criteria([p for p, _, _ in plans])
    if not options.dynamic:
        for plan, _, path in plans:
            by_file[path].extend(_not_run(plan))
    if options.dynamic:
        missing = runtime_missing()
        runnable = [item for item in plans if item[0].runnable]
        if missing and runnable:
            for _, _, path in runnable:
                by_file[path].append(Check(file=path, check="dynamic pass", status=FAIL, reason=missing,
                                           hint="the static pass above still ran"))
        elif runnable:
            for check in run_dynamic(runnable, DynamicOptions(timeout=options.timeout, epochs=options.epochs, memory=options.memory)):
                by_file.setdefault(check.file, []).append(check)
    # Decided from the plans, not from the results, so the verdict is the same with --static-only.
    exercised = any(plan.callable_functions or plan.callable_classes for plan, _, _ in plans)
    for check in _all(by_file):
        if check.status == SKIP and check.check == "entry point" and not exercised:
            check.status = FAIL
            check.reason += "; nothing else in this run exercised the code either"
    report.checks = [c for path in report.files for c in by_file.get(path, [])]
    return report


def _examine(path: str, binds: dict[str, Bind], threshold: float | None) -> tuple[list[Check], FilePlan | None]:
    """The static checks of one file and its plan for the dynamic pass (None: it cannot run).

    Runs in a forked child (:func:`in_child`): whatever the parser does, the other files go on.
    """
    try:
        text = read_source(path).text
    except SourceError as error:
        return [Check(file=path, line=error.line, check="read", status=FAIL, reason=error.message, phase="static")], None
    try:
        plan = locate(path, text, binds)
    except SourceError as error:
        return [_parse_failure(path, error.line, error.message)], None
    except RecursionError:
        return [_parse_failure(path, None, "too deeply nested to process")], None
    checks = static_checks(path, threshold or DEFAULT_THRESHOLD)
    if any(c.check == "static: parse" for c in checks):
        return checks, None
    return checks + _plan_checks(plan), plan


def _parse_failure(path: str, line: int | None, reason: str) -> Check:
    return Check(file=path, line=line, check="static: parse", status=FAIL, reason=reason,
                 hint="fix the file so that it parses", phase="static")


def _all(by_file: dict[str, list[Check]]):
    for checks in by_file.values():
        yield from checks


def _unbound_parameters(entry) -> list[tuple]:
    """(function or method, its unbound parameters) for a function plan or each part of a class plan."""
    if isinstance(entry, ClassPlan):
        named = [(replace(entry.init, name=entry.name), entry.init.unbound)]
        named += [(replace(m, name=f"{entry.name}.{m.name}"), m.unbound) for m in entry.methods]
        return [(part, unbound) for part, unbound in named if unbound]
    return [(entry, entry.unbound)] if entry.unbound else []


_COUNT_NAME = re.compile(r"epoch|step|iter|num|count|size|len|freq|interval|^n_|^k$|top", re.I)
_PATH_NAME = re.compile(r"path|dir|file|root|folder|checkpoint|ckpt|weights", re.I)
_FLAG_NAME = re.compile(r"^(is|use|do|with|enable|disable|no)_|flag", re.I)


def bind_example(name: str) -> str:
    """A ``--bind`` that fits the parameter's name: a count gets a number, a path a path, never ``epochs=@loader``."""
    if _COUNT_NAME.search(name):
        return f"--bind {name}=1"
    if _PATH_NAME.search(name):
        return f"--bind {name}='path/to/{name}'"
    if _FLAG_NAME.search(name):
        return f"--bind {name}=False"
    return f"--bind {name}=@ROLE (model, loader, optimizer, criterion, …: docs/verify.md) or --bind {name}=None"


def _fill_missing_criteria(plans: list[FilePlan]) -> None:
    """A criterion parameter the loss flow could not follow gets the file's own construction,
    else one built in another file of the run (``train.py`` builds what ``utils.py`` receives);
    with none at all the harness passes ``BCEWithLogitsLoss()``."""
    everywhere = [c for plan in plans for c in plan.constructions]
    for plan in plans:
        for function in plan.functions:
            if function.criterion is None and any(p.get("role") == "criterion" for p in function.params):
                candidates = plan.constructions or everywhere
                function.criterion = candidates[0] if candidates else None


def _not_run(plan: FilePlan) -> list[Check]:
    """--static-only: one SKIP per entry point the dynamic pass would run."""
    entries = [(f.line, f.name) for f in plan.callable_functions] + [(c.line, c.name) for c in plan.callable_classes]
    return [Check(file=plan.path, line=line, function=name, check="dynamic", status=SKIP,
                  reason="not run (--static-only)") for line, name in entries]


def _plan_checks(plan: FilePlan) -> list[Check]:
    checks = []
    for entry in [*plan.functions, *plan.classes]:
        for owner, unbound in _unbound_parameters(entry):
            names = ", ".join(unbound)
            checks.append(Check(
                file=plan.path, line=owner.line, function=entry.name, check="call", status=FAIL,
                reason=f"cannot call {owner.name}(): no sample value for parameter(s) {names}",
                hint="bind them, e.g. " + "; ".join(bind_example(name) for name in unbound[:2])
                + (f"; or build the class with a function of the file: --bind {entry.name}='make_{entry.name}()'"
                   if isinstance(entry, ClassPlan) and owner.name == entry.name else ""),
            ))
    if plan.functions or plan.classes or not plan.uncovered:
        if not plan.functions and not plan.classes and not plan.model_classes and not plan.from_pretrained:
            checks.append(Check(file=plan.path, check="dynamic", status=SKIP,
                                reason="nothing to run: no loss, metric or prediction code"))
        return checks
    line, where = plan.uncovered[0]
    more = f" (and {len(plan.uncovered) - 1} more place{'s' if len(plan.uncovered) > 2 else ''})" if len(plan.uncovered) > 1 else ""
    checks.append(Check(
        file=plan.path, line=line, check="entry point", status=SKIP,
        reason=f"no callable entry point for the {where}{more}: verify cannot run it on sample data",
        hint=SAMPLE_DATA_HINT,
    ))
    return checks
