"""ML107: model selection on accuracy: best checkpoints, monitors, early stopping (REVIEW).

The rule is split by idiom: which names read as an accuracy, a best accuracy or a lowest top-1 error is
in ``_accuracy_names``, what the file says about its metrics (defaults, accuracy functions, what is
logged) in ``_metric_facts``, and the selection by a monitored metric's name (callbacks, settings,
savers, the run's constants and parameters) in ``_selection_monitors``. Comparisons with the best value
so far, ``max``/``min`` and plateau schedulers are judged here.
"""

from __future__ import annotations

import libcst as cst

from migrate_ml.rules._accuracy_names import (
    _ACCURACY_CANDIDATE,
    _BEST_WORDS,
    _CANDIDATE_NAME,
    _LOWEST_ERROR_CANDIDATE,
    _accuracy_name,
    _integer_index,
    _is_accuracy_variable,
    _is_best_accuracy,
    _is_lowest_error,
    _is_stopper,
    _keyword,
    _leaf,
    _may_name_accuracy,
    _names_accuracy,
    _string,
    _subscripted_strings,
    _words,
)
from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._metric_facts import _ACCURACY_FUNCTIONS, _Facts
from migrate_ml.rules._prefilter import text_facts
from migrate_ml.rules._project import current_facts
from migrate_ml.rules._selection_monitors import _SELECTION_WORDS, _SELECTORS, SelectionMonitors, _run_imports


class BestAccuracyCheckpointRule(SelectionMonitors, Rule):
    code = "ML107"
    name = "best-accuracy-checkpoint"
    summary = (
        "Reports model selection on accuracy: best checkpoints (best_acc, max_accuracy_ema), monitors "
        "(monitor=\"val_acc\", metric_for_best_model, ignite score functions, timm's eval metric) and plateaus."
    )
    rationale = (
        "Training scripts keep the checkpoint with the best validation accuracy "
        "(`if acc > best_acc: torch.save(...)`, `max_accuracy = max(max_accuracy, acc1)`, "
        "`is_best = acc1 > best_acc1`). After the migration that accuracy is exact match, which "
        "is strict, noisy on rare label combinations and often flat for many epochs, so it picks "
        "checkpoints poorly; a threshold-free ranking metric (mAP, macro average precision) or "
        "sample-F1 is the usual choice for multi-label model selection. Which metric matters is "
        "a project decision, so migrate-ml reports each comparison or update of the best-accuracy "
        "variable and leaves it alone. The same holds wherever a library selects by the metric's "
        "name or value: Lightning's `ModelCheckpoint`/`EarlyStopping(monitor=\"val_acc\")` (also in "
        "a scheduler dict's `\"monitor\"`), Hugging Face `metric_for_best_model=\"accuracy\"`, "
        "pytorch-accelerated's `SaveBestModelCallback(watch_metric=\"accuracy\")`, ignite's "
        "`Checkpoint`/`EarlyStopping` whose `score_function` returns `metrics[\"accuracy\"]` "
        "(`Checkpoint.get_default_score_fn(\"Accuracy\")`), timm's `CheckpointSaver` given the "
        "`--eval-metric` value (default `top1`), `ReduceLROnPlateau` stepped on an accuracy (also a scheduler built from a config and stepped under `isinstance(sched, ReduceLROnPlateau)`, on a name that only ever copies an accuracy), and a "
        "comparison of this epoch's accuracy with the best one however the best is kept "
        "(`val_acc > val_scores[best_epoch]`, `val_acc > state[\"best_val_acc\"]`, `score > best_score` where the score is "
        "`accuracy_score`, `valid_error < best_error` for the top-1 error of a file that predicts "
        "by arg-max), the lowest top-1 error kept by `min` (pycls's `min_top1_err = min(min_top1_err, "
        "top1_err)`), a `save_checkpoint(...)` given this epoch's accuracy or top-1 error "
        "(`test_err = stats[\"top1_err\"]`), and an early-stopping or checkpointing object of the project called "
        "with this epoch's accuracy (`early_stopping(balanced_acc, model, epoch)`, `model_checkpoint(val_acc, model)`). The monitored name may be reached through a constant of the file "
        "(`\"monitor\": VALIDATION_METRIC_NAME`), a parameter's string default stored on `self` "
        "(`metric_for_best_model=self.eval_metric` with `eval_metric=\"accuracy\"`) or either branch of an "
        "`if`; across the files of a run, through a constant another module logs an accuracy under "
        "(`ModelCheckpoint(monitor=VALIDATION_METRIC_NAME)` importing it) or a keyword given to a class or function of "
        "another module that hands it to a selector (`Training(eval_metric=\"accuracy\")`, reported at that call); "
        "and a name the file logs an accuracy under (`self.log(VALIDATION_METRIC_NAME, acc_fine)`) is an "
        "accuracy whatever it is called. A monitored name that is already a ranking or F1 score (`val_map`, "
        "`val_f1`), or under which the file logs one, is left alone, and so is a best accuracy that selects "
        "nothing: an `if` with no `else` that only stores it in a local name and prints or logs it (no save, "
        "no copy of weights, no early stop or scheduler, not returned, global or tested for equality). "
        "A file that is multi-label already as written (a BCE loss, decisions by a thresholded sigmoid, "
        "`torch.sigmoid(output).ge(0.5)`, nothing of a class axis and no metrics library) keeps "
        "the best of a per-label measure, which the migration does not change: no rule runs on it."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "if acc > best_acc:\n    best_acc = acc\n    torch.save(model.state_dict(), path)\n"
    example_after = "if mAP > best_map:\n    best_map = mAP\n    torch.save(model.state_dict(), path)\n"
    triggers = ("best", "Best", "BEST", "max", "Max", "highest", *_SELECTION_WORDS)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        # "max" and "acc" each occur in most files (``accumulate``, ``max(``): only a name that
        # reads as a best accuracy (the test the rule itself applies) is worth a parse. The name
        # regexes match whole words: they run over the file's words, each once.
        facts = text_facts(source)
        lowered, words = facts.lower_word_text, facts.word_text
        run = current_facts()
        if run is not None and facts.has_any(_SELECTION_WORDS) and any(
            facts.has(key.split(".", 1)[1]) for key, _ in run.accuracy_constants
        ):
            return True  # a monitor named through an accuracy constant of another module of the run
        if run is not None and any(
            facts.has(callable_.split(".", 1)[1]) and facts.has(parameter) for callable_, parameter in run.selection_parameters
        ):
            return True  # a class or function of another module of the run told which metric to monitor
        if facts.has("min(") and "err" in lowered and any(
            _is_lowest_error(match.group(), True) for match in _LOWEST_ERROR_CANDIDATE.finditer(words)
        ):
            return True  # the lowest top-1 error kept by ``min`` (pycls's meters)
        if (facts.has_any(_SELECTION_WORDS) or "best" in lowered) and (
            facts.has("accuracy_score")
            or any(_may_name_accuracy(match.group()) for match in _ACCURACY_CANDIDATE.finditer(words))
            or (facts.has_any(_SELECTION_WORDS) and any(_names_accuracy(m.group()) for m in _ACCURACY_CANDIDATE.finditer(words)))
        ):
            return True  # a selection by name or a best value kept some other way, beside an accuracy's name
        if ("stop" in lowered or "checkpoint" in lowered) and any(map(_is_stopper, facts.called)) and any(
            _may_name_accuracy(match.group()) for match in _ACCURACY_CANDIDATE.finditer(words)
        ):
            return True  # an early-stopping or checkpointing object given a value, beside an accuracy's name
        if not (any(w in lowered for w in _BEST_WORDS) and any(w in lowered for w in ("acc", "top1", "prec1"))):
            return False  # a plain substring test first: the name scan below costs ten times more
        return any(_is_best_accuracy(match.group()) for match in _CANDIDATE_NAME.finditer(words))

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node
        self._bookkeeping: set[int] = set()
        self._handed_on = _handed_on_values(node)
        """Comparisons whose ``if`` only updates the best value and prints or logs it."""
        self._facts = _Facts(node)
        node.visit(self._facts)
        code = node.code
        # A top-1 error is ``1 - accuracy`` only where predictions are one class per sample.
        self._errors_are_top1 = any(word in code for word in ("argmax", ".max(1)", "max(dim=1)", ".topk(", "torch.ne("))
        self._accuracy_values = {
            key: _leaf(value.func) for key, value in self._facts.assignments if self._computes_accuracy(value)
        }
        """Names bound to an accuracy computed by a call: ``score = get_score(labels, preds)``."""
        self._accuracy_reads = {
            key: self._module.code_for_node(value)
            for key, value in self._facts.assignments
            if isinstance(value, cst.Subscript) and any(map(_names_accuracy, _subscripted_strings(value)))
        }
        """Names bound to an accuracy read by its key: ``test_err = stats["top1_err"]``."""
        aliases: dict[str, set[str]] = {}
        for key, value in self._facts.assignments:
            if isinstance(value, cst.Name) and value.value == "None":
                continue  # the placeholder an ``__init__`` sets before the first epoch
            leaf = _leaf(value) if isinstance(value, (cst.Name, cst.Attribute)) else ""
            aliases.setdefault(key, set()).add(leaf if leaf and _is_accuracy_variable(leaf, self._errors_are_top1) else "")
        self._accuracy_aliases = {key: next(iter(leaves)) for key, leaves in aliases.items() if len(leaves) == 1 and "" not in leaves}
        """Names every assignment of which copies an accuracy: ``self.monitored_metrics = avg_val_acc``."""
        run = current_facts()
        constants = dict(run.accuracy_constants) if run is not None else {}
        self._imported_accuracy = {local: constants[key] for local, key in _run_imports(node, set(constants)).items()}
        """Names this file imports from another module of the run that measures them as an accuracy."""
        monitoring: dict[str, list[str]] = {}
        for callable_, parameter in run.selection_parameters if run is not None else ():
            monitoring.setdefault(callable_, []).append(parameter)
        self._monitoring = {local: monitoring[key] for local, key in _run_imports(node, set(monitoring)).items()}
        """Classes and functions of another module of the run that monitor the metric one parameter names."""
        for key, value in self._facts.logged_under:
            for name in self._metric_names(key):
                self._facts.logged.setdefault(name, []).append(value)


    def _computes_accuracy(self, value: cst.BaseExpression) -> bool:
        if isinstance(value, cst.Call):
            callee = _leaf(value.func)
            return callee in _ACCURACY_FUNCTIONS or callee in self._facts.accuracy_functions
        return False

    # -- comparisons with the best value so far

    def visit_If(self, node: cst.If) -> None:
        comparisons = _tested_comparisons(node.test)
        if comparisons and node.orelse is None and _only_keeps_best(node, comparisons, self._handed_on):
            self._bookkeeping.update(map(id, comparisons))

    def visit_Comparison(self, node: cst.Comparison) -> None:
        if id(node) in self._bookkeeping:
            return  # the best value is only kept and shown: it selects nothing
        if not any(isinstance(t.operator, (cst.GreaterThan, cst.GreaterThanEqual, cst.LessThan, cst.LessThanEqual)) for t in node.comparisons):
            return
        sides = [node.left, *(t.comparator for t in node.comparisons)]
        name = next((n for n in map(_accuracy_name, sides) if n), None)
        if name:
            self._report(node, name)
            return
        if len(sides) != 2:
            return
        for current, best in (sides, sides[::-1]):
            measured = self._measured_accuracy(current)
            if measured and self._is_best_so_far(best):
                self._report(node, self._module.code_for_node(best), measured)
                return

    def _measured_accuracy(self, expression: cst.BaseExpression) -> str | None:
        """What makes ``expression`` this epoch's accuracy: its name, or the accuracy it was computed by."""
        key = self._module.code_for_node(expression)
        computed = self._accuracy_values.get(key)
        if computed:
            return f"`{key}` (from `{computed}()`)"
        read = self._accuracy_reads.get(key)
        if read:
            return f"`{key}` (`{read}`)"
        alias = self._accuracy_aliases.get(key)
        if alias:
            return f"`{key}` (`{alias}`)"
        leaf = _leaf(expression)
        if isinstance(expression, cst.Subscript) and _integer_index(expression):
            leaf = _leaf(expression.value)  # ``valid_error[0]``: the value of a meter's (value, average) pair
        if leaf and _is_accuracy_variable(leaf, self._errors_are_top1):
            return f"`{key}`"
        if isinstance(expression, cst.Subscript) and any(map(_names_accuracy, _subscripted_strings(expression))):
            return f"`{key}`"  # ``metrics["val_acc"]``, ``test_stats["acc1"]``
        return None

    def _is_best_so_far(self, expression: cst.BaseExpression) -> bool:
        """``best_score``, ``self.best_error``, ``val_scores[best_epoch]``, ``state["best_val_acc"]``."""
        if isinstance(expression, cst.Subscript):
            return any(
                isinstance(element.slice, cst.Index) and any(
                    w in _BEST_WORDS for w in _words(_string(element.slice.value) or _leaf(element.slice.value))
                )
                for element in expression.slice
            )
        return "best" in _words(_leaf(expression)) or _is_best_accuracy(_leaf(expression))

    # -- calls that select by a metric's name or value

    def visit_Call(self, node: cst.Call) -> None:
        callee = _leaf(node.func)
        if isinstance(node.func, cst.Name) and callee == "max":
            name = next((n for n in (_accuracy_name(a.value) for a in node.args) if n), None)
            if name:
                self._report(node, name)
            return
        if isinstance(node.func, cst.Name) and callee == "min":
            lowest = (_leaf(a.value) for a in node.args)
            name = next((n for n in lowest if n and _is_lowest_error(n, self._errors_are_top1)), None)
            if name:
                self.report(
                    node,
                    f"the best model is kept by its lowest top-1 error (`{name}`, 1 - accuracy); multi-label exact "
                    "match is a poor selection metric",
                    suggestion="keep the highest validation mAP (torchmetrics MultilabelAveragePrecision) or sample-F1 "
                    "instead, and rename the variable accordingly",
                )
            return
        if callee in _SELECTORS:
            self._selector(node, callee)
        elif self._module.code_for_node(node.func) in self._monitoring:
            for parameter in self._monitoring[self._module.code_for_node(node.func)]:
                value = _keyword(node, parameter)
                name = next((n for n in self._metric_names(value) if self._selects_accuracy(n)), None) if value is not None else None
                if name:
                    self._report_selection(node, f'{parameter}="{name}"` passed to `{callee}')
                    return
        elif _is_stopper(callee) and node.args and node.args[0].keyword is None:
            measured = self._measured_accuracy(node.args[0].value)
            if measured:
                self.report(
                    node,
                    f"this epoch's accuracy ({measured}) is handed to `{callee}`, which keeps the best model or stops "
                    "training by it; multi-label exact match is a poor selection metric",
                    suggestion="hand it validation mAP (torchmetrics MultilabelAveragePrecision), sample-F1 or the "
                    "validation loss (with the mode that matches)",
                )
        elif callee == "step" and isinstance(node.func, cst.Attribute) and node.args:
            scheduler = self._module.code_for_node(node.func.value)
            measured = self._measured_accuracy(node.args[0].value)
            if scheduler in self._facts.plateau_schedulers and measured:
                self.report(
                    node,
                    f"the learning rate is lowered when accuracy ({measured}) stops improving; multi-label exact "
                    "match is a poor selection metric",
                    suggestion="step ReduceLROnPlateau on validation mAP (torchmetrics MultilabelAveragePrecision), "
                    "sample-F1 or the validation loss",
                )
        elif callee == "save_checkpoint":
            saver = isinstance(node.func, cst.Attribute) and self._module.code_for_node(node.func.value) in self._facts.savers
            metric = _keyword(node, "metric") if saver else None
            name = self._selected_metric(metric) if metric is not None else None
            if name:
                self._report_selection(node, name)
                return
            # pycls's ``cp.save_checkpoint(model, ..., epoch, test_err)`` keeps the lowest error
            measured = next((m for m in (self._measured_accuracy(a.value) for a in node.args) if m), None)
            if measured:
                self.report(
                    node,
                    f"the checkpoint is saved with this epoch's accuracy or top-1 error ({measured}), by which the "
                    "best one is kept; multi-label exact match is a poor selection metric",
                    suggestion="pass validation mAP (torchmetrics MultilabelAveragePrecision) or sample-F1, "
                    "and keep the highest",
                )

    def visit_Dict(self, node: cst.Dict) -> None:
        for element in node.elements:
            if isinstance(element, cst.DictElement) and _string(element.key) == "monitor":
                name = next((n for n in self._metric_names(element.value) if self._selects_accuracy(n)), None)
                if name:
                    self._report_selection(node, self._shown(element.value, name))


    def _report(self, node: cst.CSTNode, name: str, measured: str | None = None) -> None:
        what = f"`{name}`" if measured is None else f"{measured} against `{name}`"
        self.report(
            node,
            f"the best checkpoint is chosen on accuracy ({what}); multi-label exact match is a poor selection metric",
            suggestion="select on validation mAP (torchmetrics MultilabelAveragePrecision) or sample-F1, and rename the variable accordingly",
        )


_SHOWN = frozenset({"print", "info", "debug", "warning", "log", "add_scalar"})
"""Calls that only show or log a value."""
_READS = frozenset({"item", "float", "round", "cpu", "numpy", "tolist"})
"""Calls that only read a value out of a tensor."""


def _tested_comparisons(test: cst.BaseExpression) -> list[cst.Comparison]:
    """The comparisons an ``if`` tests directly or joined by ``and``/``or``."""
    if isinstance(test, cst.Comparison):
        return [test]
    if isinstance(test, cst.BooleanOperation):
        return _tested_comparisons(test.left) + _tested_comparisons(test.right)
    return []


def _only_keeps_best(node: cst.If, comparisons: list[cst.Comparison], equalled: set[str]) -> bool:
    """The ``if``'s body only stores one of the compared values into the other side and shows it:
    ``if best_acc < acc: best_acc = acc; print(best_acc)`` selects no checkpoint, stops nothing
    and feeds no scheduler (a save, a copy of weights, a counter or a ``break`` would). A value
    the file later tests for equality (``if acc == best_acc: save()``) or hands back to a caller
    (returned, global, or kept in an attribute or a state dict) may still select there."""
    module = cst.Module([])
    sides = {module.code_for_node(side) for c in comparisons for side in (c.left, *(t.comparator for t in c.comparisons))}
    kept = False
    for statement in node.body.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            return False
        for small in statement.body:
            if isinstance(small, cst.Assign):
                stored = [module.code_for_node(t.target) for t in small.targets]
                if not all(name in sides and name not in equalled for name in stored) or not _calls_within(small.value, _READS):
                    return False
                if not all(isinstance(t.target, cst.Name) for t in small.targets):
                    return False
                kept = True
            elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
                if _leaf(small.value.func) not in _SHOWN or not _calls_within(small.value, _SHOWN | _READS | {"format"}):
                    return False
            elif not isinstance(small, cst.Pass):
                return False
    return kept


def _calls_within(node: cst.CSTNode, allowed: frozenset[str]) -> bool:
    """Every call inside ``node`` is one of ``allowed`` (by its last name)."""
    calls: list[cst.Call] = []

    class _Calls(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            calls.append(call)

    node.visit(_Calls())
    return all(_leaf(call.func) in allowed for call in calls)


def _handed_on_values(module: cst.Module) -> set[str]:
    """The source of every side of an ``==``/``!=`` comparison in ``module``, every name a
    ``return`` or ``yield`` hands back, and every ``global``/``nonlocal`` name (read elsewhere)."""
    sides: set[str] = set()

    class _Equalities(cst.CSTVisitor):
        def visit_Return(self, node: cst.Return) -> None:
            if node.value is not None:
                sides.update(name.value for name in _names_in(node.value))

        def visit_Global(self, node: cst.Global) -> None:
            sides.update(item.name.value for item in node.names)

        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            sides.update(item.name.value for item in node.names)

        def visit_Yield(self, node: cst.Yield) -> None:
            if isinstance(node.value, cst.BaseExpression):
                sides.update(name.value for name in _names_in(node.value))

        def visit_Comparison(self, node: cst.Comparison) -> None:
            if any(isinstance(t.operator, (cst.Equal, cst.NotEqual)) for t in node.comparisons):
                sides.update(module.code_for_node(side) for side in (node.left, *(t.comparator for t in node.comparisons)))

    module.visit(_Equalities())
    return sides


def _names_in(node: cst.CSTNode) -> list[cst.Name]:
    names: list[cst.Name] = []

    class _Names(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            names.append(name)

    node.visit(_Names())
    return names
