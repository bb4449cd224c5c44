"""Where an unreduced loss goes: one value per sample, or one per element.

Cross-entropy with ``reduction="none"`` is ``[B]``; BCE's is ``[B, C]``. The loss rules average
it over the labels (``.mean(dim=1)``) so that what used the per-sample loss (weights, masks,
sorting) keeps working. A **focal modulation** is the exception: the loss goes into ``exp``
(``p = torch.exp(-ce)``, ``(1 - p) ** gamma * ce``), which is element-wise: fed the per-sample
mean, it would modulate whole images by the mean of their labels instead of each label, and the
focal loss already reduces every element at its end. :func:`modulated_elementwise` finds it,
through names and the parameters of functions of the same module.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

_TRANSPARENT = (cst.BinaryOperation, cst.UnaryOperation)
_EXP = frozenset({"exp"})


def modulated_elementwise(rule, expression: cst.BaseExpression, depth: int = 0) -> bool:
    """Whether the value of ``expression`` reaches an ``exp`` (``torch.exp(-loss)``, ``(-loss).exp()``)
    through arithmetic, names bound to it, and the parameters of module functions it is passed to.
    ``rule`` must depend on ``ScopeProvider`` and ``ParentNodeProvider``."""
    if depth > 4:
        return False
    node: cst.CSTNode = expression
    parent = rule.get_metadata(ParentNodeProvider, node, None)
    while isinstance(parent, _TRANSPARENT):
        node, parent = parent, rule.get_metadata(ParentNodeProvider, parent, None)
    if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in _EXP:
        return True
    if isinstance(parent, cst.Arg) and parent.value is node and not parent.keyword:
        call = rule.get_metadata(ParentNodeProvider, parent, None)
        if not isinstance(call, cst.Call):
            return False
        func = call.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        if name in _EXP:
            return True
        if isinstance(func, cst.Name):
            return any(modulated_elementwise(rule, read, depth + 1) for read in _parameter_reads(rule, func, call, parent))
        return False
    if isinstance(parent, cst.Assign) and parent.value is node and len(parent.targets) == 1:
        target = parent.targets[0].target
        if isinstance(target, cst.Name):
            return any(modulated_elementwise(rule, read, depth + 1) for read in _reads(rule, target))
    return False


def _reads(rule, bound: cst.Name | cst.Param) -> list[cst.CSTNode]:
    """The reads of the binding ``bound`` (an assigned name or a parameter)."""
    name = bound.name if isinstance(bound, cst.Param) else bound
    scope = rule.get_metadata(ScopeProvider, name, None)
    if scope is None:
        return []
    return [
        access.node
        for assignment in scope.assignments[name.value]
        if getattr(assignment, "node", None) in (bound, name)
        for access in assignment.references
    ]


def _parameter_reads(rule, func: cst.Name, call: cst.Call, argument: cst.Arg) -> list[cst.CSTNode]:
    """The reads, in the function ``func`` names, of the parameter that ``argument`` binds."""
    scope = rule.get_metadata(ScopeProvider, func, None)
    if scope is None:
        return []
    index = call.args.index(argument)
    reads: list[cst.CSTNode] = []
    for assignment in scope[func.value]:
        function = getattr(assignment, "node", None)
        if not isinstance(function, cst.FunctionDef):
            return []
        params = function.params.params
        if index >= len(params):
            return []
        reads.extend(_reads(rule, params[index]))
    return reads
