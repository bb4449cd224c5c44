"""Small expression builders and tests shared by rules."""

from __future__ import annotations

import libcst as cst

FLOAT_METHODS = frozenset({"float", "double", "half", "bfloat16"})
INTEGER_METHODS = frozenset({"long", "int"})
FLOAT_DTYPES = frozenset(
    {"float", "float16", "float32", "float64", "half", "double", "bfloat16"}
)

_ATOMIC = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.SimpleString, cst.Integer, cst.Float)


def is_float_cast(expression: cst.BaseExpression) -> bool:
    """``x.float()``, ``x.to(torch.float32)``, ``x.to(dtype=torch.float)``, ``x.type(torch.float)``…"""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)):
        return False
    method = expression.func.attr.value
    if method in FLOAT_METHODS and not expression.args:
        return True
    if method in ("to", "type"):
        return any(_is_float_dtype(arg.value) for arg in expression.args)
    return False


def _is_float_dtype(expression: cst.BaseExpression) -> bool:
    if isinstance(expression, cst.Attribute):
        return expression.attr.value in FLOAT_DTYPES
    if isinstance(expression, cst.SimpleString):
        return expression.evaluated_value.removeprefix("torch.") in FLOAT_DTYPES
    return False


def parenthesize(expression: cst.BaseExpression) -> cst.BaseExpression:
    """Wrap in parentheses unless the expression binds tighter than attribute access."""
    if isinstance(expression, _ATOMIC) or expression.lpar:
        return expression
    return expression.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def method_call(expression: cst.BaseExpression, method: str, *args: cst.Arg) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(value=parenthesize(expression), attr=cst.Name(method)), args=args
    )


def as_float_target(expression: cst.BaseExpression) -> cst.BaseExpression:
    """The target cast to float once: ``y.long()`` becomes ``y.float()``; casts are not doubled.

    The cast goes last, after any ``.to(device)``/``.cuda()`` chain, so it applies to the tensor
    the loss actually receives.
    """
    if is_float_cast(expression):
        return expression
    if (
        isinstance(expression, cst.Call)
        and isinstance(expression.func, cst.Attribute)
        and expression.func.attr.value in INTEGER_METHODS
        and not expression.args
    ):
        return expression.with_changes(func=expression.func.with_changes(attr=cst.Name("float")))
    return method_call(expression, "float")


def map_argument(call: cst.Call, index: int, transform) -> cst.Call:
    """Apply ``transform`` to the value of ``call.args[index]``.

    Edits address arguments by index because a ``NodeEdit`` receives the *updated* call, whose
    argument nodes are new objects whenever an edit nested inside them ran first.
    """
    args = list(call.args)
    args[index] = args[index].with_changes(value=transform(args[index].value))
    return call.with_changes(args=args)
