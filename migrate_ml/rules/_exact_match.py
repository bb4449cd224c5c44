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
