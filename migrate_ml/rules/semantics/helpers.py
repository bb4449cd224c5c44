"""Calls of the file's own helpers that treat what they are given as one class per image.

Both ways a helper is found single-label go through here: from its body (below) for the safety
net, and from its calls (:func:`calls_given_argmax`, ``get_score(labels, preds.argmax(1))``) for
ML023, which reports the scikit-learn metric such a helper returns.

``acc = calculate_accuracy(y_pred, y)`` is where a training loop hands its scores and labels to
a helper whose body takes their arg-max and compares it with the labels. The helper's body is
reported where it is single-label; each call is a construct of its own, at its own line: that
is where the user sees the accuracy that will be wrong. A helper counts when one of its
parameters is read (not called, not looped over) on the line of such a construct, or on a
line that construct is built from: ``evaluate(model, loader)`` that calls ``model(x).argmax(1)``
itself is not a helper given predictions.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from migrate_ml.rules._prefilter import nodes_of, walk
from migrate_ml.rules.semantics.names import imported_names, qualified_name

CONSUMING_KINDS = frozenset(
    {
        "argmax-compared",
        "argmax-metric",
        "argmax-prediction",
        "class-index-metric",
        "topk-accuracy",
        "prediction-item",
    }
)
"""Constructs that read a value as class indices or arg-max predictions."""

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class HelperCall:
    call: ast.Call
    helper: str
    built_on: tuple[int, ...]
    """The single-label construct in the helper's body, then the lines it is built from."""


def single_label_helper_calls(
    tree: ast.Module, constructs: list[tuple[int, str, tuple[int, ...]]]
) -> list[HelperCall]:
    """The calls of helpers whose body holds one of ``constructs`` (line, kind, related lines)
    over a parameter: module-level functions called by name, methods called on ``self``."""
    functions: dict[tuple[bool, str], ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for statement in tree.body:
        if isinstance(statement, _FUNCTIONS):
            functions[False, statement.name] = statement
        elif isinstance(statement, ast.ClassDef):
            for item in statement.body:
                if isinstance(item, _FUNCTIONS):
                    functions.setdefault((True, item.name), item)
    consumed: dict[tuple[bool, str], tuple[int, ...]] = {}
    for line, kind, related in constructs:
        if kind not in CONSUMING_KINDS:
            continue
        for key, function in functions.items():
            if key not in consumed and function.lineno < line <= (function.end_lineno or 0):
                if reads_a_parameter(function, {line, *related}):
                    consumed[key] = (line, *(other for other in related if other != function.lineno))
    if not consumed:
        return []
    calls = []
    for node in walk(tree):
        if not isinstance(node, ast.Call):
            continue
        key = _callee(node.func)
        if key is None or key not in consumed:
            continue
        function = functions[key]
        if function.lineno <= node.lineno <= (function.end_lineno or 0):
            continue  # recursion: the helper's own body is reported where it is single-label
        calls.append(HelperCall(node, key[1], consumed[key]))
    return calls


_ARGMAX_FUNCTIONS = frozenset({"numpy.argmax", "torch.argmax"})


def calls_given_argmax(tree: ast.Module, names: set[str]) -> dict[str, ast.Call]:
    """The first call (in source order) of each function of ``names``, called by name, that is
    given an arg-max: ``get_score(labels, preds.argmax(1))``, ``get_f1(y, np.argmax(p, axis=1))``.
    Such a helper receives class indices where it should receive multi-hot rows."""
    if not names:
        return {}
    imports = imported_names(nodes_of(tree, ast.Import, ast.ImportFrom))
    found: dict[str, ast.Call] = {}
    for node in sorted(nodes_of(tree, ast.Call), key=lambda call: (call.lineno, call.col_offset)):
        key = _callee(node.func)  # type: ignore[attr-defined]
        if key is None or key[0] or key[1] not in names or key[1] in found:
            continue
        values = [arg.value if isinstance(arg, ast.Starred) else arg for arg in node.args]  # type: ignore[attr-defined]
        if any(_is_argmax(value, imports) for value in (*values, *(k.value for k in node.keywords))):  # type: ignore[attr-defined]
            found[key[1]] = node  # type: ignore[assignment]
    return found


def _is_argmax(value: ast.AST, imports: dict[str, str]) -> bool:
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    return (isinstance(func, ast.Attribute) and func.attr == "argmax") or qualified_name(func, imports) in _ARGMAX_FUNCTIONS


def _callee(func: ast.AST) -> tuple[bool, str] | None:
    if isinstance(func, ast.Name):
        return False, func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        return True, func.attr
    return None


def reads_a_parameter(function: ast.FunctionDef | ast.AsyncFunctionDef, lines: set[int]) -> bool:
    """Whether a parameter of ``function`` is read as a value (not called, not looped over) on one of ``lines``."""
    arguments = function.args
    parameters = {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)} - {"self", "cls"}
    if not parameters:
        return False
    not_values = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            not_values.add(node.func)  # model(x): the parameter is a callable, not a prediction
        elif isinstance(node, (ast.For, ast.comprehension)):
            not_values.add(node.iter)  # for x, y in loader: batches, not predictions
    return any(
        isinstance(node, ast.Name) and node.id in parameters and node.lineno in lines and node not in not_values
        for node in ast.walk(function)
    )
