"""Small expression builders and tests shared by rules."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, Callable

import libcst as cst

FLOAT_METHODS = frozenset({"float", "double", "half", "bfloat16"})
INTEGER_METHODS = frozenset({"long", "int"})
FLOAT_DTYPES = frozenset(
    {"float", "float16", "float32", "float64", "half", "double", "bfloat16"}
)
INTEGER_DTYPES = frozenset({"long", "int", "int64", "int32", "int16", "int8", "uint8"})
FLOAT_TENSOR_TYPES = frozenset({"FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor"})
"""Legacy tensor types: ``x.type(torch.FloatTensor)`` and ``x.type("torch.cuda.HalfTensor")`` cast to float."""

_ATOMIC = (cst.Name, cst.Attribute, cst.Call, cst.Subscript, cst.SimpleString, cst.Integer, cst.Float)


class _NodesOf(cst.CSTVisitor):
    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.found: list = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, self.kind):
            self.found.append(node)
        return True


def cst_nodes_of(root: cst.CSTNode, kind: type) -> list:
    """Every node of type ``kind`` in ``root`` (itself included), in the order of the source: what
    ``libcst.matchers.findall(root, m.Kind())`` finds, without importing the matchers, which cost
    a small file's run a third of its time (~0.25 s)."""
    finder = _NodesOf(kind)
    root.visit(finder)
    return finder.found


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def cst_children(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The nodes ``node`` holds (those ``node.children`` lists), read from its fields, so not
    always in the order of the source (``IfExp`` holds its test before its body). For walks that
    need no order: LibCST's ``visit`` builds, and validates, a copy of every node it passes even
    for a visitor that changes nothing, which made such a walk about three times as slow."""
    names = _CHILD_FIELDS.get(type(node))
    if names is None:
        names = _CHILD_FIELDS[type(node)] = tuple(field.name for field in dataclasses.fields(node))
    for name in names:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            yield value
        elif isinstance(value, (tuple, list)):
            for item in value:
                if isinstance(item, cst.CSTNode):
                    yield item


def cst_walk(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``root`` and every node below it, in no particular order (see :func:`cst_children`)."""
    pending = [root]
    while pending:
        node = pending.pop()
        yield node
        pending.extend(cst_children(node))


def cst_any(root: cst.CSTNode, kind: type, test: Callable[[Any], bool]) -> bool:
    """Whether ``test`` holds for a node of type ``kind`` in ``root`` (itself included); the walk
    stops at the first."""
    return any(isinstance(node, kind) and test(node) for node in cst_walk(root))


def is_float_cast(expression: cst.BaseExpression) -> bool:
    """``x.float()``, ``x.to(torch.float32)``, ``x.to(dtype=torch.float)``, ``x.type(torch.float)``…"""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)):
        return False
    method = expression.func.attr.value
    if method in FLOAT_METHODS and not expression.args:
        return True
    if method in ("to", "type"):
        return any(is_float_dtype(arg.value) for arg in expression.args)
    return False


def is_integer_cast(expression: cst.BaseExpression) -> bool:
    """``x.long()``, ``x.int()``, ``x.to(torch.int64)``, ``x.type(torch.long)``."""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)):
        return False
    method = expression.func.attr.value
    if method in INTEGER_METHODS and not expression.args:
        return True
    if method in ("to", "type"):
        return any(
            isinstance(arg.value, cst.Attribute) and arg.value.attr.value in INTEGER_DTYPES
            for arg in expression.args
        )
    return False


def is_float_dtype(expression: cst.BaseExpression) -> bool:
    """``torch.float32``, ``torch.FloatTensor``, ``"torch.FloatTensor"``, or Python's ``float`` (float64)."""
    if isinstance(expression, cst.Attribute):
        return expression.attr.value in FLOAT_DTYPES | FLOAT_TENSOR_TYPES
    if isinstance(expression, cst.Name):
        return expression.value == "float"
    if isinstance(expression, cst.SimpleString):
        name = expression.evaluated_value
        return isinstance(name, str) and name.rsplit(".", 1)[-1] in FLOAT_DTYPES | FLOAT_TENSOR_TYPES
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


def keyword_arguments(call: cst.Call) -> dict[str, cst.Arg]:
    return {arg.keyword.value: arg for arg in call.args if arg.keyword is not None}


def positional_arguments(call: cst.Call) -> list[cst.Arg]:
    return [arg for arg in call.args if arg.keyword is None]


def without_argument(*indices: int):
    """An edit dropping ``call.args[index]`` for each index (by index, for the reason given in map_argument).
    A comment written on a dropped argument's line (``label_smoothing=0.1,  # soften``) stays, on a line
    of its own where the argument was: it documents the call, and the user may want it back."""

    def apply(call: cst.Call) -> cst.Call:
        if all(i in indices for i in range(len(call.args))) and any(_argument_comments(arg) for arg in call.args):
            return without_arguments(call)
        args = list(call.args)
        for index in sorted(set(indices), reverse=True):
            if _argument_comments(args[index]):
                call = _without_commented_argument(call.with_changes(args=args), index)
                args = list(call.args)
            else:
                del args[index]
                if index == len(args) and args:
                    args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return call.with_changes(args=args)

    return apply


def _argument_whitespace(arg: cst.Arg) -> list[cst.BaseParenthesizableWhitespace]:
    """The whitespace of ``arg`` around its value (not inside it), in source order."""
    parts = [arg.whitespace_after_star]
    if isinstance(arg.equal, cst.AssignEqual):
        parts += [arg.equal.whitespace_before, arg.equal.whitespace_after]
    parts.append(arg.whitespace_after_arg)
    if isinstance(arg.comma, cst.Comma):
        parts += [arg.comma.whitespace_before, arg.comma.whitespace_after]
    return parts


def _argument_comments(arg: cst.Arg) -> list[cst.Comment]:
    return [
        line.comment
        for whitespace in _argument_whitespace(arg) if isinstance(whitespace, cst.ParenthesizedWhitespace)
        for line in (whitespace.first_line, *whitespace.empty_lines) if line.comment is not None
    ]


def _without_commented_argument(call: cst.Call, index: int) -> cst.Call:
    """``call`` without ``call.args[index]`` (not its only argument), whose comments go where it was."""
    args = list(call.args)
    dropped = args.pop(index)
    before = call.whitespace_before_args if index == 0 else args[index - 1].comma.whitespace_after
    after = _argument_whitespace(dropped)[-1]  # what led to the next argument or to ")"
    if isinstance(before, cst.ParenthesizedWhitespace):
        lines = [
            cst.EmptyLine(indent=before.indent, whitespace=before.last_line, comment=comment)
            for comment in _argument_comments(dropped)
        ]
        closing = after if isinstance(after, cst.ParenthesizedWhitespace) else before
        joined = before.with_changes(
            empty_lines=[*before.empty_lines, *lines], indent=closing.indent, last_line=closing.last_line
        )
    else:  # on the line of the previous argument: its comment ends that line
        joined = after
    if index == 0:
        return call.with_changes(args=args, whitespace_before_args=joined)
    previous = args[index - 1]
    if index < len(args) or isinstance(dropped.comma, cst.Comma):
        args[index - 1] = previous.with_changes(comma=previous.comma.with_changes(whitespace_after=joined))
    else:  # the last argument, with no comma after it: neither has the one before it now
        args[index - 1] = previous.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=joined)
    return call.with_changes(args=args)


def without_arguments(call: cst.Call) -> cst.Call:
    """``call`` with no argument, closing where it opens: ``f()``. The comments among its arguments (not those
    inside their values, which go where the values go) stay inside its parentheses, one a line at the
    arguments' indent; the one on the line of ``(`` stays on that line."""
    opening = call.whitespace_before_args
    between = [opening] if isinstance(opening, cst.ParenthesizedWhitespace) else []
    for arg in call.args:
        commas = [arg.comma.whitespace_before, arg.comma.whitespace_after] if isinstance(arg.comma, cst.Comma) else []
        equals = [arg.equal.whitespace_before, arg.equal.whitespace_after] if isinstance(arg.equal, cst.AssignEqual) else []
        between += [w for w in (arg.whitespace_after_star, *equals, arg.whitespace_after_arg, *commas)
                    if isinstance(w, cst.ParenthesizedWhitespace)]
    if not any(line.comment for w in between for line in (w.first_line, *w.empty_lines)):
        return call.with_changes(args=(), whitespace_before_args=cst.SimpleWhitespace(""))
    # the arguments' indent: of the line after "(", else of the line ")" closes
    indented = between[0] if between[0] is opening else between[-1]
    first_line, lines = cst.TrailingWhitespace(), []
    for whitespace in between:
        comment = whitespace.first_line.comment
        if whitespace is opening or (comment is not None and whitespace is between[0]):
            first_line = whitespace.first_line
        elif comment is not None:
            lines.append(cst.EmptyLine(indent=indented.indent, whitespace=indented.last_line, comment=comment))
        lines += [line for line in whitespace.empty_lines if line.comment]
    closing = between[-1]
    return call.with_changes(args=(), whitespace_before_args=cst.ParenthesizedWhitespace(
        first_line=first_line, empty_lines=lines, indent=closing.indent, last_line=closing.last_line))


def smoothed_target(epsilon: cst.BaseExpression):
    """Float targets smoothed towards 0.5: ``y.float() * (1 - e) + e / 2``.

    This is what label smoothing means for independent binary labels: each positive becomes
    ``1 - e/2`` and each negative ``e/2``, the same rule timm's ``BinaryCrossEntropy`` applies
    to dense targets with ``smooth_dense=True``.
    """

    def apply(target: cst.BaseExpression) -> cst.BaseExpression:
        eps = parenthesize(epsilon.deep_clone())
        kept = cst.BinaryOperation(
            left=cst.Integer("1"),
            operator=cst.Subtract(),
            right=eps,
            lpar=[cst.LeftParen()],
            rpar=[cst.RightParen()],
        )
        return cst.BinaryOperation(
            left=cst.BinaryOperation(left=as_float_target(target), operator=cst.Multiply(), right=kept),
            operator=cst.Add(),
            right=cst.BinaryOperation(left=eps.deep_clone(), operator=cst.Divide(), right=cst.Integer("2")),
        )

    return apply


def map_target(loss_call_node: cst.Call, target: cst.Arg, transform):
    """A ``NodeEdit`` apply function that transforms the target argument of a loss call."""
    index = loss_call_node.args.index(target)
    return lambda updated: map_argument(updated, index, transform)


def is_flattened(expression: cst.BaseExpression) -> bool:
    """``labels.view(-1)`` / ``labels.reshape(-1)`` / ``labels.flatten()``: a class-index vector."""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)):
        return False
    method = expression.func.attr.value
    if method == "flatten" and not expression.args:
        return True
    if method in ("view", "reshape") and len(expression.args) == 1:
        value = expression.args[0].value
        return isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus) and (
            isinstance(value.expression, cst.Integer) and value.expression.value == "1"
        )
    return False


def is_argmax(expression: cst.BaseExpression) -> bool:
    """``t.argmax(1)``, ``torch.argmax(t, dim=1)``, ``t.max(1)[1]``: class indices from scores."""
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute) and (
        expression.func.attr.value in ("to", "cuda", "long", "detach")
    ):
        expression = expression.func.value
    if isinstance(expression, cst.Call) and isinstance(expression.func, (cst.Attribute, cst.Name)):
        name = expression.func.attr.value if isinstance(expression.func, cst.Attribute) else expression.func.value
        return name == "argmax"
    return False


def chain_root(expression: cst.BaseExpression) -> cst.BaseExpression:
    """``labels`` of ``labels.to(device).long()``, ``batch["labels"]``, ``y[:, None]``."""
    while True:
        if isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
            expression = expression.func.value
        elif isinstance(expression, (cst.Attribute, cst.Subscript)):
            expression = expression.value
        else:
            return expression


def module_alias(module: cst.Module, name: str) -> str | None:
    """The name a module-level ``import name [as alias]`` binds; None when there is none."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    if isinstance(alias.name, cst.Name) and alias.name.value == name:
                        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                            return alias.asname.name.value
                        return name
    return None


def _clean_newline(whitespace: cst.ParenthesizedWhitespace) -> cst.ParenthesizedWhitespace:
    """The line break of ``whitespace`` without its comment or blank lines (kept where they were)."""
    return whitespace.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())


def _separator(args: list[cst.Arg], opening: cst.BaseParenthesizableWhitespace) -> cst.Comma:
    """The comma a new argument follows: the one between the call's last two arguments, without its comment.

    A single argument on its own line after ``(`` means one argument per line at that indent.
    """
    if len(args) >= 2 and isinstance(args[-2].comma, cst.Comma):
        comma = args[-2].comma
        if isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace):
            return comma.with_changes(whitespace_after=_clean_newline(comma.whitespace_after))
        return comma
    if len(args) == 1 and isinstance(opening, cst.ParenthesizedWhitespace):
        return cst.Comma(whitespace_after=_clean_newline(opening))
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def append_argument(
    args: list[cst.Arg], new: cst.Arg, opening: cst.BaseParenthesizableWhitespace = cst.SimpleWhitespace("")
) -> list[cst.Arg]:
    """``args`` with ``new`` last, laid out like the call (``opening`` is its ``whitespace_before_args``).

    The new argument goes where the call's other arguments go: on the same line when they share
    one, on its own line at their indent when they are one per line. A comment after the old last
    argument stays on that argument's line, and what ended the call (a trailing comma, the line
    break before ``)``) now ends it after the new argument.
    """
    if not args:
        return [new]
    last = args[-1]
    separator = _separator(args, opening)
    ending = last.comma.whitespace_after if isinstance(last.comma, cst.Comma) else last.whitespace_after_arg
    if isinstance(separator.whitespace_after, cst.ParenthesizedWhitespace) and isinstance(
        ending, cst.ParenthesizedWhitespace
    ):
        # One argument per line: the old line keeps its comment, the new line ends the way the old one did.
        separator = separator.with_changes(
            whitespace_after=separator.whitespace_after.with_changes(
                first_line=ending.first_line, empty_lines=ending.empty_lines
            )
        )
        ending = _clean_newline(ending)
    if isinstance(last.comma, cst.Comma):
        old = last.with_changes(comma=separator.with_changes(whitespace_before=last.comma.whitespace_before))
        new = new.with_changes(comma=last.comma.with_changes(whitespace_after=ending))
    else:
        old = last.with_changes(comma=separator, whitespace_after_arg=cst.SimpleWhitespace(""))
        new = new.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=ending)
    return [*args[:-1], old, new]


def insert_argument(
    args: list[cst.Arg], index: int, new: cst.Arg, opening: cst.BaseParenthesizableWhitespace = cst.SimpleWhitespace("")
) -> list[cst.Arg]:
    """``args`` with ``new`` right after ``args[index]``, laid out like the call (see ``append_argument``)."""
    if index == len(args) - 1:
        return append_argument(args, new, opening)
    comma = args[index].comma
    if isinstance(comma, cst.Comma) and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace):
        comma = comma.with_changes(whitespace_after=_clean_newline(comma.whitespace_after))
    return [*args[: index + 1], new.with_changes(comma=comma), *args[index + 1 :]]
