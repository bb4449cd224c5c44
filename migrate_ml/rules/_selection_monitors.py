"""ML107's selection by a metric's name: the callbacks and settings that keep the best model or stop
training by a monitored name (Lightning, Keras-style, ignite, Hugging Face, pytorch-accelerated, timm's
``CheckpointSaver``), the names a monitor can be reached through (constants, parameter defaults, either
branch of an ``if``), and the facts other modules of the run contribute (accuracy constants, parameters
handed to a selector).
"""

from __future__ import annotations

import ast
import re

import libcst as cst

from migrate_ml.rules._accuracy_names import _keyword, _leaf, _names_accuracy, _string, _subscripted_strings
from migrate_ml.rules._metric_facts import _LOG_METHODS


_SELECTORS = {
    "ModelCheckpoint": ("monitor", "score_name"),
    "EarlyStopping": ("monitor",),
    "Checkpoint": ("score_name",),
    "TrainingArguments": ("metric_for_best_model",),
    "Seq2SeqTrainingArguments": ("metric_for_best_model",),
    "SaveBestModelCallback": ("watch_metric",),
    "EarlyStoppingCallback": ("watch_metric",),
}
"""Callbacks and settings that keep the best model or stop training by a metric's name
(Lightning, Keras-style, ignite, Hugging Face, pytorch-accelerated): the keywords naming it."""
_SCORE_FUNCTION = "score_function"
"""ignite's ``Checkpoint``/``EarlyStopping`` rank by what this function returns."""
_SELECTION_WORDS = ("onitor", "metric_for_best_model", "score_function", "score_name", "watch_metric",
                    "save_checkpoint", "ReduceLROnPlateau")
_RANKING_METRICS = re.compile(r"AveragePrecision|average_precision|F1|f1_score|AUROC|roc_auc|mAP|[Mm]ean_?[Aa][Pp]")
SELECTOR_KEYWORDS = frozenset(keyword for keywords in _SELECTORS.values() for keyword in keywords)


class SelectionMonitors:
    """Mixin for ML107: does a selector, a monitor dict or a saver select on accuracy, by whichever name reaches it?"""

    def _metric_names(self, expression: cst.BaseExpression) -> list[str]:
        """The metric names ``expression`` can hold: a string, a constant of the file bound to one
        (``monitor=VALIDATION_METRIC_NAME``), a parameter or the attribute it is stored in with a string
        default (``self.eval_metric`` from ``eval_metric="accuracy"``), either branch of an ``if``."""
        if isinstance(expression, cst.IfExp):
            return [*self._metric_names(expression.body), *self._metric_names(expression.orelse)]
        if _string(expression) is not None:
            return [_string(expression)]  # type: ignore[list-item]
        if not isinstance(expression, (cst.Name, cst.Attribute)):
            return []
        key = self._module.code_for_node(expression)
        values = [value for bound, value in self._facts.assignments if bound == key]
        names = [name for value in values if isinstance(value, (cst.SimpleString, cst.Name)) for name in self._metric_names(value) if value is not expression]
        if not names and isinstance(expression, cst.Name) and expression.value in self._facts.parameter_defaults:
            names = [self._facts.parameter_defaults[expression.value]]
        if not names and key in self._imported_accuracy:
            names = [self._imported_accuracy[key]]
        return names

    def _selector(self, node: cst.Call, callee: str) -> None:
        for keyword in _SELECTORS[callee]:
            value = _keyword(node, keyword)
            name = next((n for n in self._metric_names(value) if self._selects_accuracy(n)), None) if value is not None else None
            if name:
                self._report_selection(node, self._shown(value, name))
                return
        score = _keyword(node, _SCORE_FUNCTION)
        if score is None:
            return
        if isinstance(score, cst.Call) and _leaf(score.func) == "get_default_score_fn" and score.args:
            name = _string(score.args[0].value)
            if name and _names_accuracy(name):
                self._report_selection(node, name)
        elif isinstance(score, cst.Name) and score.value in self._facts.accuracy_functions:
            self._report_selection(node, f"{score.value}()")
        elif isinstance(score, cst.Lambda):
            name = next((key for key in _subscripted_strings(score.body) if _names_accuracy(key)), None)
            if name:
                self._report_selection(node, name)

    def _selects_accuracy(self, name: str) -> bool:
        """An accuracy's name, unless what the file logs under it is a ranking or F1 score; or a name
        the file logs an accuracy under (``self.log("val_af", acc_fine)``)."""
        logged = self._facts.logged.get(name, ())
        for value in logged:
            built = [v for key, v in self._facts.assignments if key == self._module.code_for_node(value)]
            if any(_RANKING_METRICS.search(self._module.code_for_node(v)) for v in (value, *built)):
                return False
        return _names_accuracy(name) or name in self._imported_accuracy.values() or any(
            isinstance(value, (cst.Name, cst.Attribute)) and _names_accuracy(_leaf(value)) for value in logged
        )

    def _shown(self, expression: cst.BaseExpression, name: str) -> str:
        """``VALIDATION_METRIC_NAME` = `val_af`` for a name reached through a constant or a default."""
        if _string(expression) is not None:
            return name
        return f"{self._module.code_for_node(expression)}` = `{name}"

    def _selected_metric(self, metric: cst.BaseExpression) -> str | None:
        """``eval_metrics[eval_metric]`` where ``eval_metric = args.eval_metric`` defaults to ``top1``."""
        if isinstance(metric, cst.Name):
            values = [value for key, value in self._facts.assignments if key == metric.value]
            return next((name for name in map(self._selected_metric, values) if name), None)
        if not isinstance(metric, cst.Subscript) or len(metric.slice) != 1:
            return None
        element = metric.slice[0].slice
        if not isinstance(element, cst.Index):
            return None
        key = element.value
        if _string(key) is not None:
            return _string(key) if _names_accuracy(_string(key)) else None
        if isinstance(key, cst.Name):
            for bound, value in self._facts.assignments:
                if bound == key.value and isinstance(value, cst.Attribute):
                    default = self._facts.option_defaults.get(value.attr.value)
                    if default and _names_accuracy(default):
                        return f"{key.value}` = `{self._module.code_for_node(value)}`, default `{default}"
        return None

    def _report_selection(self, node: cst.CSTNode, name: str) -> None:
        self.report(
            node,
            f"the best model is chosen (or training stopped) on accuracy (`{name}`); multi-label exact match is a "
            "poor selection metric",
            suggestion='select on validation mAP (torchmetrics MultilabelAveragePrecision, logged as "val_map", '
            'mode="max") or sample-F1',
        )


def selection_parameters(tree: ast.Module) -> list[tuple[str, str]]:
    """(callable, parameter) of the module's classes and functions that hand a parameter to a selector
    as the monitored metric's name: ``def __init__(self, eval_metric=...)`` stored on ``self`` and given
    to ``TrainingArguments(metric_for_best_model=self.eval_metric)``. A call in another module of the run
    that passes an accuracy's name there selects on accuracy (``FileFacts.selection_parameters``)."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            if init is None:
                continue
            parameters = {arg.arg for arg in (*init.args.args[1:], *init.args.kwonlyargs)}
            stored = {
                target.attr: statement.value.id
                for statement in ast.walk(node) if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Name)
                and statement.value.id in parameters
                for target in statement.targets
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
            }
            found.extend((node.name, parameter) for parameter in _monitored(node, parameters, stored))
        elif isinstance(node, ast.FunctionDef):
            parameters = {arg.arg for arg in (*node.args.args, *node.args.kwonlyargs)}
            found.extend((node.name, parameter) for parameter in _monitored(node, parameters, {}))
    return sorted(set(found))


def _monitored(scope: ast.AST, parameters: set[str], stored: dict[str, str]) -> set[str]:
    """The parameters (or the ``self`` attributes they are stored in) given to a selector keyword in ``scope``."""
    monitored = set()
    for call in ast.walk(scope):
        if not isinstance(call, ast.Call):
            continue
        for keyword in call.keywords:
            value = keyword.value
            if keyword.arg not in SELECTOR_KEYWORDS:
                continue
            if isinstance(value, ast.Name) and value.id in parameters:
                monitored.add(value.id)
            elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "self" and value.attr in stored:
                monitored.add(stored[value.attr])
    return monitored


def accuracy_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level string constants (``VALIDATION_METRIC_NAME = "val_af"``) naming a metric the module
    measures as an accuracy: an accuracy's name, or a name it logs an accuracy under
    (``self.log(VALIDATION_METRIC_NAME, acc_fine)``) and no ranking or F1 score. Another module of the
    run that imports one and monitors it selects on accuracy too (``FileFacts.accuracy_constants``)."""
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }
    if not constants:
        return {}
    logged: dict[str, list[str]] = {}
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and len(call.args) >= 2):
            continue
        method = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        key = call.args[0]
        keys = [key.body, key.orelse] if isinstance(key, ast.IfExp) else [key]
        value = call.args[1]
        leaf = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", "")
        for name in (k.id for k in keys if isinstance(k, ast.Name) and k.id in constants):
            if method in _LOG_METHODS:
                logged.setdefault(name, []).append(leaf)
    return {
        name: value for name, value in constants.items()
        if (name in logged or _names_accuracy(value))
        and not any(_RANKING_METRICS.search(leaf) or not _names_accuracy(leaf) for leaf in logged.get(name, ()))
    }


def _run_imports(module: cst.Module, keys: set[str]) -> dict[str, str]:
    """The names this file writes for ``keys`` (``stem.name`` of another module of the run):
    ``VALIDATION_METRIC_NAME`` after ``from pkg.modulev2 import VALIDATION_METRIC_NAME``,
    ``modulev2.VALIDATION_METRIC_NAME`` after ``import pkg.modulev2 as modulev2``."""
    code = cst.Module([]).code_for_node
    found: dict[str, str] = {}
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.ImportFrom) and small.module is not None and not isinstance(small.names, cst.ImportStar):
                stem = code(small.module).rsplit(".", 1)[-1]
                for alias in small.names:
                    if f"{stem}.{code(alias.name)}" in keys:
                        found[alias.evaluated_alias or code(alias.name)] = f"{stem}.{code(alias.name)}"
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    stem = code(alias.name).rsplit(".", 1)[-1]
                    local = alias.evaluated_alias or code(alias.name)
                    found.update({f"{local}.{key.split('.', 1)[1]}": key for key in keys if key.split(".", 1)[0] == stem})
    return found
