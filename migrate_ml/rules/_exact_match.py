"""Helpers that still carry a top-k accuracy's name and signature but already compute exact match.

``def accuracy(output, target, topk=(1,))`` is the pytorch/examples helper's signature; a hand
migration often keeps it (so its callers need not change) and replaces the body with exact match.
Such a helper ranks nothing, so neither ML102 nor the safety net may report it or its calls.
"""

from __future__ import annotations

import ast

_RANKING = frozenset({"topk", "argsort", "argmax", "sort"})
"""Calls that rank the scores (``output.topk(k)``, ``torch.argsort``): a top-k or top-1 body."""
_ROW_AXIS = frozenset({1, -1})


def is_exact_match_helper(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The body reduces a comparison over each row with ``all`` (``(pred == target).all(dim=1)``,
    ``torch.all(x, dim=1)``, ``np.all(x, axis=1)``) and ranks nothing."""
    calls = [node for node in ast.walk(function) if isinstance(node, ast.Call)]
    return any(_is_row_all(call) for call in calls) and not any(_name(call.func) in _RANKING for call in calls)


def exact_match_helpers(tree: ast.Module) -> frozenset[str]:
    """Names of the module-level functions of ``tree`` that are exact-match helpers."""
    return frozenset(node.name for node in tree.body
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and is_exact_match_helper(node))


def returns_error(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The body subtracts what the comparison of predictions and targets counts from a total
    (``batch_size - correct_k``, ``100 - acc``): the helper returns an error rate, not an accuracy."""
    assignments = [node for node in ast.walk(function) if isinstance(node, ast.Assign)]
    correct: set[str] = set()
    size = -1
    while size != len(correct):  # names computed from names that count matches, in any order
        size = len(correct)
        for node in assignments:
            if _counts_matches(node.value, correct):
                correct.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return any(
        isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and _counts_matches(node.right, correct)
        for node in ast.walk(function)
    )


def error_helpers(tree: ast.Module) -> frozenset[str]:
    """Names of the module-level functions of ``tree`` that return a top-k error."""
    return frozenset(node.name for node in tree.body
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and returns_error(node))


def _counts_matches(expression: ast.AST, correct: set[str]) -> bool:
    """``pred.eq(target)``, ``pred == target``, or anything computed from a name holding them."""
    for node in ast.walk(expression):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq) for op in node.ops):
            return True
        if isinstance(node, ast.Call) and _name(node.func) == "eq":
            return True
        if isinstance(node, ast.Name) and node.id in correct:
            return True
    return False


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_row_all(call: ast.Call) -> bool:
    if _name(call.func) != "all":
        return False
    axes = [k.value for k in call.keywords if k.arg in ("dim", "axis")]
    axes += call.args[1:2] if isinstance(call.func, ast.Name) or _is_module(call.func) else call.args[:1]
    return any(isinstance(axis, ast.Constant) and axis.value in _ROW_AXIS
               or isinstance(axis, ast.UnaryOp) and isinstance(axis.op, ast.USub)
               and isinstance(axis.operand, ast.Constant) and axis.operand.value == 1 for axis in axes)


def _is_module(func: ast.expr) -> bool:
    """``torch.all``/``np.all`` (the tensor is the first argument), not ``x.all`` (the dim is)."""
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("torch", "np", "numpy")
