"""ML011: ``labels = labels.long()`` feeding a BCE-with-logits loss becomes ``.float()``."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule
from migrate_ml.rules._exprs import INTEGER_DTYPES, INTEGER_METHODS
from migrate_ml.rules.semantics.flow import LossFlow, LossFlowProvider
from migrate_ml.rules._prefilter import has_loss_marker

_CHAIN_METHODS = frozenset({"to", "cuda", "cpu", "float", "detach", "contiguous", *INTEGER_METHODS})


_TENSOR_WRAPPERS = frozenset({"from_numpy", "tensor", "as_tensor"})
"""``torch.from_numpy(target)``: the same values as a tensor, so ``target`` is still the root."""


def _tensor_of(expression: cst.BaseExpression) -> cst.Call | None:
    """``torch.tensor(y, ...)`` / ``torch.from_numpy(y)`` / ``torch.as_tensor(y)``, else None."""
    if (
        isinstance(expression, cst.Call)
        and isinstance(expression.func, cst.Attribute)
        and isinstance(expression.func.value, cst.Name)
        and expression.func.value.value in ("torch", "th")
        and expression.func.attr.value in _TENSOR_WRAPPERS
        and expression.args
        and expression.args[0].keyword is None
    ):
        return expression
    return None


def _root_name(expression: cst.BaseExpression) -> cst.Name | None:
    """``labels`` in ``labels.to(device).float()`` or ``torch.from_numpy(labels).long()``."""
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
        wrapped = _tensor_of(expression)
        if wrapped is not None:
            expression = wrapped.args[0].value
            break
        if expression.func.attr.value not in _CHAIN_METHODS:
            return None
        expression = expression.func.value
    return expression if isinstance(expression, cst.Name) else None


def _integer_dtype(expression: cst.BaseExpression) -> cst.Name | None:
    """The ``long`` of ``torch.tensor(y, dtype=torch.long)`` at the root of a cast chain."""
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute) and _tensor_of(expression) is None:
        expression = expression.func.value
    wrapped = _tensor_of(expression)
    if wrapped is None:
        return None
    dtype = next((arg.value for arg in wrapped.args if arg.keyword is not None and arg.keyword.value == "dtype"), None)
    if isinstance(dtype, cst.Attribute) and isinstance(dtype.value, cst.Name) and dtype.value.value in ("torch", "th") and dtype.attr.value in INTEGER_DTYPES:
        return dtype.attr
    return None


def _integer_casts(expression: cst.BaseExpression) -> list[cst.Name]:
    """The ``long``/``int`` method names in a cast chain such as ``y.to(device).long()``."""
    found = []
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute) and _tensor_of(expression) is None:
        attribute = expression.func
        if attribute.attr.value not in _CHAIN_METHODS:
            return []
        if attribute.attr.value in INTEGER_METHODS and not expression.args:
            found.append(attribute.attr)
        expression = attribute.value
    return found


class LongLabelsRule(Rule):
    code = "ML011"
    name = "long-labels"
    summary = "labels = labels.long() becomes labels = labels.float() when the labels feed a BCE-with-logits loss."
    rationale = (
        "Single-label code often forces class indices to int64 (`labels = labels.long()`), "
        "because CrossEntropyLoss wants them so. After the migration the same variable feeds "
        "BCEWithLogitsLoss, which needs float targets; soft targets (label smoothing, mixup) "
        "would even be truncated to 0 by the integer cast. When a label variable that reaches "
        "a BCE-with-logits call is assigned from an integer cast of itself in the same scope, "
        "the cast becomes `.float()`; so does `torch.from_numpy(labels).long()`, an element of "
        "`data, labels = ..., labels.long()`, and `dtype=torch.long` in `torch.tensor(labels, "
        "dtype=torch.long)`, including the matching element of what a function or method of "
        "the same module returns to `x, labels = self._prepare(batch)`. Only that assignment "
        "changes: the variable is not cast anywhere else, so metric code comparing predictions with the labels keeps working "
        "(0/1 floats compare equal to 0/1 integers)."
    )
    applicability = Applicability.SAFE
    example_before = "labels = labels.long()\nloss = criterion(outputs, labels.float())\n"
    example_after = "labels = labels.float()\nloss = criterion(outputs, labels.float())\n"
    triggers = (".long()", ".int()", "dtype=torch.long", "dtype=torch.int64")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, LossFlowProvider, ScopeProvider, ParentNodeProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return super().could_apply(source) and has_loss_marker(source)

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node
        flow: LossFlow = self.get_metadata(LossFlowProvider, node)
        seen: set[cst.Name] = set()
        for loss_call in flow.calls:
            if loss_call.kinds != {"bce"} or loss_call.target is None:
                continue
            root = _root_name(loss_call.target.value)
            if root is None:
                continue
            scope = self.get_metadata(ScopeProvider, root, None)
            if scope is None:
                continue
            for assignment in scope[root.value]:
                for value in self._assigned_values(getattr(assignment, "node", None)):
                    self._report_casts(value, root.value, seen)

    def _report_casts(self, value: cst.BaseExpression, label: str, seen: set[cst.Name]) -> None:
        """The integer casts of ``label`` in ``value``: ``.long()``/``.int()`` become ``.float()``
        and ``dtype=torch.long`` becomes ``dtype=torch.float``."""
        root = _root_name(value)
        if root is None or root.value != label:
            return
        dtype = _integer_dtype(value)
        for cast in [*_integer_casts(value), *([dtype] if dtype is not None else [])]:
            if cast in seen:
                continue
            seen.add(cast)
            self.report(
                cast,
                "the labels feed a BCE-with-logits loss, which needs float targets; an "
                "integer cast would also truncate soft targets",
                fix=Fix(edits=(NodeEdit(cast, lambda _old: cst.Name("float")),)),
            )

    def _assigned_values(self, target: cst.CSTNode | None) -> list[cst.BaseExpression]:
        """What a binding of the label assigns: ``labels = v``; the matching element of
        ``data, labels = a, v``; or, for ``x, labels = self._prepare(batch)`` (a function or
        method of this module), the matching element of each of its ``return`` tuples."""
        if target is None:
            return []
        holder = self.get_metadata(ParentNodeProvider, target, None)
        statement = self.get_metadata(ParentNodeProvider, holder, None) if holder is not None else None
        if isinstance(holder, cst.AssignTarget) and isinstance(statement, cst.Assign):
            return [statement.value]
        if not isinstance(holder, cst.Element):
            return []
        pattern = self.get_metadata(ParentNodeProvider, holder, None)
        assign_target = self.get_metadata(ParentNodeProvider, pattern, None) if pattern is not None else None
        statement = self.get_metadata(ParentNodeProvider, assign_target, None) if assign_target is not None else None
        if not (isinstance(pattern, (cst.Tuple, cst.List)) and isinstance(assign_target, cst.AssignTarget) and isinstance(statement, cst.Assign)):
            return []
        position = list(pattern.elements).index(holder)
        width = len(pattern.elements)
        if isinstance(statement.value, (cst.Tuple, cst.List)):
            return _element(statement.value, position, width)
        if isinstance(statement.value, cst.Call):
            returned = []
            for value in self._returns_of(statement.value):
                returned.extend(_element(value, position, width))
            return returned
        return []

    def _returns_of(self, call: cst.Call) -> list[cst.BaseExpression]:
        """The returned values of ``helper(...)`` / ``self.helper(...)`` defined in this module."""
        func = call.func
        if isinstance(func, cst.Name):
            name = func.value
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            name = func.attr.value
        else:
            return []
        module = self._module
        finder = _ReturnFinder(name)
        module.visit(finder)
        return finder.returned


def _element(value: cst.BaseExpression, position: int, width: int) -> list[cst.BaseExpression]:
    if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == width:
        element = value.elements[position]
        return [] if isinstance(element, cst.StarredElement) else [element.value]
    return []


class _ReturnFinder(cst.CSTVisitor):
    """The values returned by the functions named ``name`` (methods included), not by functions nested in them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.returned: list[cst.BaseExpression] = []
        self._inside: list[bool] = []
        """One entry per enclosing function: whether it is the named one."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._inside.append(not self._inside and node.name.value == self.name)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._inside.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if self._inside and self._inside[-1] and node.value is not None:
            self.returned.append(node.value)
