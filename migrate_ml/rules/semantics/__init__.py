"""The label-semantics analysis under every rule: what values mean, not how they are spelled.

On CPython's ``ast``: ``meanings`` is the lattice, ``tables`` the library calls as data (one row
each), ``sources`` where meanings come from (models, datasets, Hugging Face predictions),
``summaries`` follows them through functions, methods and ``self.`` attributes, ``sinks``
reports where a single-label meaning does harm, and ``sequences``/``tasks`` hold the file facts
that switch the rules off. ``residue`` is the safety net (ML100, ``verify``'s static pass): it
tracks names with ``single_label_values`` and adds what :func:`find_sinks` proves.

As LibCST metadata for the rules that edit: ``flow`` (losses), ``predictions``,
``prediction_provider`` and ``prediction_uses`` (classifier outputs, arg-max predictions and where
they go), with ``rewrites``, ``log_softmax``, ``class_index`` and ``shapes`` beside them.

Rules import this package; nothing here imports a rule module.
"""

from __future__ import annotations

import ast

from dataclasses import dataclass

from migrate_ml.rules.semantics.meanings import ARGMAX, CONTAINER, PREDICTED_NAME
from migrate_ml.rules.semantics import sources
from migrate_ml.rules.semantics.metrics import PREDICTION_METRICS
from migrate_ml.rules.semantics.sinks import KINDS, Sink, Sinks
from migrate_ml.rules.semantics.sinks.common import _own_nodes
from migrate_ml.rules.semantics.summaries import Analysis

__all__ = ["KINDS", "ScoredArgmax", "Sink", "argmax_hand_offs", "argmax_name_lookups", "find_sinks", "metrics_given_argmax"]


def find_sinks(tree: ast.Module, text: str) -> list[Sink]:
    """Every single-label meaning ``tree`` lets reach a sink."""
    analysis = Analysis(tree, text)
    sinks = Sinks(analysis, text)

    def on_statement(statement: ast.stmt) -> None:
        sinks(statement)
        function = analysis.function
        if isinstance(statement, ast.Return) and function is not None and function.name == "forward":
            sinks.forward_return(statement)

    analysis.run(on_statement)
    return sinks.finish()


@dataclass(frozen=True)
class ScoredArgmax:
    """A class-decision metric whose ``y_pred`` holds arg-max predictions taken elsewhere."""

    call: ast.Call
    metric: str
    """The metric's own name (``accuracy_score``)."""
    predictions: ast.AST
    line: int
    """Where the arg-max is taken."""


def metrics_given_argmax(tree: ast.Module, text: str) -> list[ScoredArgmax]:
    """Every scikit-learn / imbalanced-learn metric of :data:`metrics.PREDICTION_METRICS` whose
    ``y_pred`` holds arg-max predictions taken before the call (``preds.cpu().numpy()``), followed through lists
    they are collected in, what functions return and what calls of the file pass to parameters.
    A ``y_pred`` written as the arg-max itself is the arg-max's own construct, inside the call; one
    handed in by another file of the run is the safety net's (``sinks``), which names that call."""
    analysis = Analysis(tree, text)
    found: list[ScoredArgmax] = []

    def on_statement(statement: ast.stmt) -> None:
        for node in _own_nodes(statement):
            if not isinstance(node, ast.Call):
                continue
            qualified = analysis.qualified(node.func)
            if qualified not in PREDICTION_METRICS:
                continue
            predictions = next((k.value for k in node.keywords if k.arg == "y_pred"), None)
            if predictions is None and len(node.args) > 1 and not isinstance(node.args[1], ast.Starred):
                predictions = node.args[1]
            if predictions is None:
                continue
            value = analysis.value(predictions)
            if value.meaning == CONTAINER and value.element is not None:
                value = value.element
            inside = node.lineno <= value.line <= (node.end_lineno or node.lineno)
            if value.meaning in (ARGMAX, PREDICTED_NAME) and not inside and not analysis.argmax_given_by(predictions):
                found.append(ScoredArgmax(node, qualified.rpartition(".")[2], predictions, value.line))

    analysis.run(on_statement)
    return found


def argmax_name_lookups(tree: ast.Module, text: str) -> set[tuple[int, str, str]]:
    """``(line, names, index)`` for each ``names[index]`` (or ``names[str(index)]``) where ``index``
    holds an arg-max there and ``names`` a list built of strings (:func:`sources.holds_names`):
    the one predicted class named, whatever the list is called (``labels = [s.strip() for s in
    text.split(",")]``; ``labels[pred]``), followed through lists the predictions are collected in
    and loops over them."""
    analysis = Analysis(tree, text)
    found: set[tuple[int, str, str]] = set()

    def on_statement(statement: ast.stmt) -> None:
        for node in _own_nodes(statement):
            if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)):
                continue
            index = node.slice
            if isinstance(index, ast.Call) and isinstance(index.func, ast.Name) and index.func.id in ("str", "int") and len(index.args) == 1:
                index = index.args[0]
            if (
                isinstance(index, ast.Name)
                and analysis.value(index).meaning == ARGMAX
                and sources.holds_names(analysis.value(node.value).node)
            ):
                found.add((node.lineno, node.value.id, index.id))

    analysis.run(on_statement)
    return found


def argmax_hand_offs(
    tree: ast.Module, callees: dict[str, set[str]]
) -> tuple[list[tuple[str, str, str, int]], list[tuple[str, int, tuple[int, ...]]]]:
    """What ``tree`` hands other files of the run and what it gives back, from one analysis of it.

    First, ``(module, function, argument, line)`` for each call in ``tree`` that hands arg-max
    predictions to a function of another file of the run: ``callees`` maps a module (a file's stem)
    to its functions and its classes' methods (``AccuracyMeter.update``). ``argument`` is the
    parameter's keyword or the argument's position (``self`` not counted); a method is followed on
    an object built from the class in this file (``meter = AccuracyMeter()``; ``meter.update(y, p)``).

    Second, ``(function, items, positions)`` for each function or method of ``tree``
    (``Class.method``) whose return value holds arg-max predictions, on their own or collected in a
    list: ``items`` is the length of the tuple it returns (0 for a value that is not one) and
    ``positions`` the items that hold them (none when the value is the arg-max): what another file
    of the run is given by a call of one (``FileFacts.argmax_returns``)."""
    analysis = Analysis(tree)
    built: dict[str, tuple[str, str]] = {}
    found: list[tuple[str, str, str, int]] = []

    def callee(func: ast.AST) -> tuple[str, str] | None:
        if isinstance(func, ast.Attribute) and analysis.key(func.value) in built:
            module, name = built[analysis.key(func.value)]
            method = f"{name}.{func.attr}"
            return (module, method) if method in callees.get(module, ()) else None
        if isinstance(func, ast.Name) and func.id in built:
            module, name = built[func.id]  # meter(preds, y): the object called
            return (module, f"{name}.__call__") if f"{name}.__call__" in callees.get(module, ()) else None
        parts = analysis.run_qualified(func).split(".")
        if len(parts) >= 2 and parts[-1] in callees.get(parts[-2], ()):
            return parts[-2], parts[-1]
        return None

    def on_statement(statement: ast.stmt) -> None:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.value, ast.Call):
            made = callee(statement.value.func)
            key = analysis.key(statement.targets[0])
            if made is not None and key and "." not in made[1]:
                built[key] = made  # an object of a class of the run
        for node in _own_nodes(statement):
            if not isinstance(node, ast.Call):
                continue
            target = callee(node.func)
            if target is None:
                continue
            given = [(str(i), a) for i, a in enumerate(node.args) if not isinstance(a, ast.Starred)]
            given += [(k.arg, k.value) for k in node.keywords if k.arg]
            for argument, expression in given:
                value = analysis.value(expression)
                if value.meaning == CONTAINER and value.element is not None:
                    value = value.element
                if value.meaning == ARGMAX:
                    found.append((*target, argument, node.lineno))

    analysis.run(on_statement)
    returns = []
    for (owner, function), value in analysis.returns.items():
        name = f"{owner}.{function}" if owner else function
        if _holds_argmax(value):
            returns.append((name, 0, ()))
        elif value.items:
            positions = tuple(i for i, item in enumerate(value.items) if _holds_argmax(item))
            if positions:
                returns.append((name, len(value.items), positions))
    return found, returns


def _holds_argmax(value) -> bool:
    if value.meaning == CONTAINER and value.element is not None:
        value = value.element
    return value.meaning == ARGMAX
