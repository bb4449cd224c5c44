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
