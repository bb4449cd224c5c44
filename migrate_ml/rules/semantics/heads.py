"""Which output a loss call trains: the classifier's class head, or something else its criterion serves.

One criterion object is often called on more than the class head: a second head of the same
module (``self.criterion(self.discriminator_layer2(pair), comparison)`` beside
``self.criterion(self.discriminator_layer1(x), y)``, where ``forward`` returns the first), or a
branch that regresses a model's output (``self.loss(noise, self.model(x_noisy, t))``, the same
attribute bound to ``nn.MSELoss()`` there). Only the class head becomes multi-label; the loss rules
ask :func:`other_head_calls` which calls of one criterion are not it, and
:func:`prediction_input` which calls are given a prediction where the logits belong (an arg-max or
a threshold: a bug of the original that a cast would present as migrated).

``owner`` is a rule or metadata provider that depends on ``ScopeProvider`` and
``ParentNodeProvider``.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

import libcst as cst
from libcst.metadata import ScopeProvider

from migrate_ml.rules._base import enclosing
from migrate_ml.rules._exprs import cst_any, is_argmax
from migrate_ml.rules.semantics.bindings import assignment_of, reaching_bindings
from migrate_ml.rules.semantics.class_index import is_class_index_target
from migrate_ml.rules.semantics.flow import LossCall, LossConstruction
from migrate_ml.rules.semantics.predictions import is_model_callee, strip_transparent
from migrate_ml.rules.semantics.sources import class_layers, forward_layer, self_layer

_THRESHOLDS = (cst.GreaterThan, cst.GreaterThanEqual, cst.LessThan, cst.LessThanEqual)


def _values(owner, expression: cst.BaseExpression, depth: int = 0) -> list[cst.BaseExpression] | None:
    """What ``expression`` holds: itself, or through a name the value of every assignment of it
    that reaches this read; None where one is no plain assignment (a parameter, an unpacking)."""
    expression = strip_transparent(expression)
    if not isinstance(expression, cst.Name):
        return [expression]
    scope = owner.get_metadata(ScopeProvider, expression, None)
    if depth > 2 or scope is None:
        return None
    bindings = reaching_bindings(owner, expression, list(scope[expression.value]))
    values: list[cst.BaseExpression] = []
    for binding in bindings:
        statement = assignment_of(owner, getattr(binding, "node", None))
        inner = _values(owner, statement.value, depth + 1) if statement is not None else None
        if inner is None:
            return None
        values.extend(inner)
    return values or None


def _is_threshold(expression: cst.BaseExpression) -> bool:
    """``probs > 0.5``: a decision per score, not a score."""
    return (
        isinstance(expression, cst.Comparison)
        and len(expression.comparisons) == 1
        and isinstance(expression.comparisons[0].operator, _THRESHOLDS)
    )


def prediction_input(owner, loss_call: LossCall) -> cst.BaseExpression | None:
    """The loss call's input where it is a prediction (``preds = model(x).argmax(-1)``,
    ``probs > 0.5``) rather than the logits: None otherwise."""
    if loss_call.logits is None:
        return None
    if is_class_index_target(owner, loss_call.logits):
        return loss_call.logits
    values = _values(owner, loss_call.logits)
    if values and all(is_argmax(value) or _is_threshold(value) for value in values):
        return loss_call.logits
    return None


def _self_layer(expression: cst.BaseExpression) -> str | None:
    """``head`` of a call ``self.head(...)``."""
    if isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
        owner = expression.func.value
        if isinstance(owner, cst.Name) and owner.value == "self":
            return expression.func.attr.value
    return None


class _Heads:
    """The layers of a module class and the one its ``forward`` returns (read once per class)."""

    def __init__(self) -> None:
        self._classes: dict[cst.ClassDef, tuple[frozenset[str], str | None]] = {}

    def of(self, cls: cst.ClassDef) -> tuple[frozenset[str], str | None]:
        if cls not in self._classes:
            tree = ast.parse(cst.Module(body=[cls]).code)
            parsed = tree.body[0]
            assert isinstance(parsed, ast.ClassDef)
            self._classes[cls] = (frozenset(class_layers(tree).get(parsed.name, {})), forward_layer(parsed))
        return self._classes[cls]


def _logits_head(owner, loss_call: LossCall, heads: _Heads) -> str:
    """``"class"`` when the call's logits are the module's output (``self(x)``, ``self.model(x)``,
    the layer ``forward`` returns), ``"other"`` when every value of them is another layer of the
    module (a second head), ``""`` when unknown."""
    values = _values(owner, loss_call.logits) if loss_call.logits is not None else None
    cls = enclosing(owner, loss_call.call, cst.ClassDef)
    if not values or cls is None:
        return ""
    layers, returned = heads.of(cls)
    if returned is None:
        return ""
    kinds = set()
    for value in values:
        layer = _self_layer(value)
        if layer == returned or layer == "forward" or (isinstance(value, cst.Call) and is_model_callee(value.func)):
            kinds.add("class")
        elif layer is not None and layer in layers:
            kinds.add("other")
        else:
            return ""
    return kinds.pop() if len(kinds) == 1 else ""


def _code(expression: cst.BaseExpression) -> str:
    return cst.Module([]).code_for_node(strip_transparent(expression))


def _target_is_model_output(owner, loss_call: LossCall) -> bool:
    """The target is what a model computed (``output = self.model(x_noisy, t)``), not labels."""
    values = _values(owner, loss_call.target.value) if loss_call.target is not None else None
    return bool(values) and all(isinstance(v, cst.Call) and is_model_callee(v.func) for v in values)


def other_head_calls(owner, calls: Sequence[LossCall]) -> dict[LossCall, str]:
    """The calls of one criterion that train something other than the class head, each with why,
    where another of its calls does train the class head: a second head's logits (a layer of the
    module other than the one ``forward`` returns), or a model's output as the target (a
    regression such as a diffusion model's noise). Empty when the calls agree."""
    if len(calls) < 2:
        return {}
    heads = _Heads()
    other: dict[LossCall, str] = {}
    layered = False
    class_head = False
    heads_of = {call: _logits_head(owner, call, heads) for call in calls}
    # an auxiliary classifier (Inception's aux logits) is trained on the class head's own labels
    labels = {_code(call.target.value) for call, head in heads_of.items() if head == "class" and call.target is not None}
    for call in calls:
        head = heads_of[call]
        if head == "other" and call.target is not None and _code(call.target.value) in labels:
            head = "class"
        if head == "other":
            layer = _self_layer(_values(owner, call.logits)[0])
            other[call] = f"its input is self.{layer}, a head other than the one forward returns"
            layered = True
        elif _target_is_model_output(owner, call):
            other[call] = "its target is a model's output, not labels"
        else:
            class_head = class_head or head == "class"
    # a second head is told from the first only beside a call proven to train the first
    agreed = class_head if layered else len(other) < len(calls)
    return other if other and agreed else {}


def rebound(owner, construction: LossConstruction) -> bool:
    """The name or ``self.`` attribute the criterion is bound to is bound to something else too,
    in the same class (or module): ``self.loss = nn.MSELoss()`` in another branch of ``__init__``.
    A call of another head may then reach that other loss rather than this one."""
    if construction.target is None:
        return False
    scope = enclosing(owner, construction.call, cst.ClassDef) or enclosing(owner, construction.call, cst.Module)
    if scope is None:
        return False
    bound = cst.Module([]).code_for_node(construction.target)
    return cst_any(
        scope,
        cst.Assign,
        lambda assign: assign.value is not construction.call
        and any(cst.Module([]).code_for_node(t.target) == bound for t in assign.targets),
    )


def report_prediction_input(rule, loss_call: LossCall) -> bool:
    """Report a loss call given a prediction where the logits belong (:func:`prediction_input`)
    and say whether it was one: the loss rules leave its target uncast, since a cast would present
    the call as migrated. The words do not depend on the rule, so that ML001's finding and ML010's
    on the rewritten text are one finding."""
    node = prediction_input(rule, loss_call)
    if node is None:
        return False
    message = (
        f"the loss is given `{' '.join(cst.Module([]).code_for_node(node).split())}`, a prediction (an arg-max "
        "or a threshold), where its input must be the logits: its target is left uncast"
    )
    if not any(v.node is node and v.message == message for v in rule.context.violations):
        rule.report(
            node,
            message,
            suggestion="feed the logits to the loss, criterion(logits, labels.float()), and take the prediction from the same logits",
        )
    return True


def second_head_output(tree: ast.Module, cls: ast.ClassDef, function: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    """``name`` holds a second head's output in a method of ``cls`` (the safety net's view, on
    CPython's ``ast``): every assignment of it is a call of a layer of the class other than the one
    ``forward`` returns, and the method calls that one too (``logits = self.discriminator_layer1(f)``
    beside ``logits_compare = self.discriminator_layer2(pair)``). Its arg-max picks one of that
    head's outcomes, not one class of the image."""
    returned = forward_layer(cls)
    layers = class_layers(tree).get(cls.name, {})
    if returned is None:
        return False
    values = [
        node.value for node in ast.walk(function)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    ]
    if not values or not all(
        isinstance(v, ast.Call) and self_layer(v.func) in layers and self_layer(v.func) != returned for v in values
    ):
        return False
    return any(isinstance(node, ast.Call) and self_layer(node.func) == returned for node in ast.walk(function))


def _is_column_range(expression: cst.BaseExpression) -> bool:
    """``logits[:, 3:6]``: every row, a range of columns (one head's states)."""
    if not (isinstance(expression, cst.Subscript) and len(expression.slice) == 2):
        return False
    rows, columns = (element.slice for element in expression.slice)
    every_row = isinstance(rows, cst.Slice) and rows.lower is None and rows.upper is None and rows.step is None
    return every_row and isinstance(columns, cst.Slice) and (columns.lower is not None or columns.upper is not None)


def _is_state_axis_view(expression: cst.BaseExpression) -> bool:
    """``logits.view(-1, 3, heads)``, ``logits.reshape(B, heads, 3)``: a state axis beside a head axis."""
    return (
        isinstance(expression, cst.Call)
        and isinstance(expression.func, cst.Attribute)
        and expression.func.attr.value in ("view", "reshape")
        and len(expression.args) >= 3
        and not any(arg.star for arg in expression.args)
    )


def per_head_states(owner, loss_call: LossCall) -> bool:
    """The loss is taken over one head's states at a time (``loss_fct(logits[:, 0:3], labels[:, 0:3])``
    for each of several heads) or over a state axis beside a head axis (logits viewed 3-D): a
    multi-task model of mutually exclusive states per head, where cross-entropy is right."""
    values = _values(owner, loss_call.logits) if loss_call.logits is not None else None
    return bool(values) and all(_is_column_range(v) or _is_state_axis_view(v) for v in values)


def _ast_per_head_input(node: ast.expr) -> bool:
    """``logits[:, 3:6]`` or ``logits.view(-1, 3, heads)`` on CPython's ``ast`` (see :func:`per_head_states`)."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2:
        rows, columns = node.slice.elts
        every_row = isinstance(rows, ast.Slice) and rows.lower is None and rows.upper is None and rows.step is None
        return every_row and isinstance(columns, ast.Slice) and (columns.lower is not None or columns.upper is not None)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("view", "reshape")
        and len(node.args) >= 3
        and not any(isinstance(arg, ast.Starred) for arg in node.args)
    )


def per_head_criterion(scope: ast.AST, name: str) -> bool:
    """Every call of the criterion bound to ``name`` in ``scope`` (a function, a module) takes one head's states
    (:func:`per_head_states`, for the safety net): ``loss_fct(logits[:, 0:3], labels[:, 0:3])``."""
    calls = [
        node for node in ast.walk(scope)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]
    return bool(calls) and all(call.args and _ast_per_head_value(scope, call.args[0]) for call in calls)


def _ast_per_head_value(scope: ast.AST, node: ast.expr) -> bool:
    """``node`` is one head's states, or a name every assignment of which in ``scope`` is."""
    if not isinstance(node, ast.Name):
        return _ast_per_head_input(node)
    values = [
        statement.value for statement in ast.walk(scope)
        if isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in statement.targets)
    ]
    return bool(values) and all(_ast_per_head_input(value) for value in values)
