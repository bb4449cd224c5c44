"""The ``[B, C]`` layout as code spells it: literal class dimensions and 1-D views (flattens).

Shared by the CST analyses of predictions (``predictions``, ``prediction_provider``), log-softmax
(``log_softmax``) and class-index targets (``class_index``), and by the rewrites (``rewrites``).
"""

from __future__ import annotations

import libcst as cst


def dim_value(expression: cst.BaseExpression | None) -> int | None:
    """The integer of a literal ``1`` or ``-1``; None for anything else."""
    if isinstance(expression, cst.Integer):
        return int(expression.value)
    if (
        isinstance(expression, cst.UnaryOperation)
        and isinstance(expression.operator, cst.Minus)
        and isinstance(expression.expression, cst.Integer)
    ):
        return -int(expression.expression.value)
    return None


def is_class_dim(dim: cst.BaseExpression | None) -> bool:
    if dim is None:
        return True  # the implicit dim of a 2-D input is 1
    if isinstance(dim, cst.Integer):
        return dim.value == "1"
    return (
        isinstance(dim, cst.UnaryOperation)
        and isinstance(dim.operator, cst.Minus)
        and isinstance(dim.expression, cst.Integer)
        and dim.expression.value == "1"
    )


def is_flatten(expression: cst.CSTNode) -> bool:
    """``t.flatten()``, ``t.view(-1)``, ``t.reshape(-1)``, ``t.ravel()``: a 1-D view of ``t``."""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)):
        return False
    method, args = expression.func.attr.value, expression.args
    if method in ("flatten", "ravel"):
        return not args
    return method in ("view", "reshape") and len(args) == 1 and args[0].keyword is None and dim_value(args[0].value) == -1


def unflattened(expression: cst.BaseExpression) -> cst.BaseExpression:
    while is_flatten(expression):
        assert isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)
        expression = expression.func.value
    return expression


def _rank_of(expression: cst.BaseExpression) -> cst.BaseExpression | None:
    """``t`` of ``t.ndim``, ``t.dim()``, ``t.ndimension()``, ``len(t.shape)`` or ``len(t.size())``."""
    if isinstance(expression, cst.Attribute) and expression.attr.value == "ndim":
        return expression.value
    if isinstance(expression, cst.Call) and not expression.args and isinstance(expression.func, cst.Attribute):
        return expression.func.value if expression.func.attr.value in ("dim", "ndimension") else None
    if (
        isinstance(expression, cst.Call) and isinstance(expression.func, cst.Name) and expression.func.value == "len"
        and len(expression.args) == 1
    ):
        shape = expression.args[0].value
        if isinstance(shape, cst.Call) and not shape.args:
            shape = shape.func
            return shape.value if isinstance(shape, cst.Attribute) and shape.attr.value == "size" else None
        return shape.value if isinstance(shape, cst.Attribute) and shape.attr.value == "shape" else None
    return None


def tests_one_dimensional(test: cst.BaseExpression, name: str) -> bool:
    """``test`` is ``name.ndim == 1`` (or ``name.dim() == 1``, ``len(name.shape) == 1``, either
    side): true only for a 1-D ``name``, a batch of class indices and never its [B, C] rows."""
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and isinstance(test.comparisons[0].operator, cst.Equal)):
        return False
    left, right = test.left, test.comparisons[0].comparator
    for rank, other in ((left, right), (right, left)):
        ranked = _rank_of(rank)
        if isinstance(ranked, cst.Name) and ranked.value == name and dim_value(other) == 1:
            return True
    return False
