"""Loss targets that are one class index per sample, traced back to the arg-max that made them.

A target collapsed with ``t.argmax(1)`` or ``t.max(1)[1]`` stays a class index whatever
``.float()`` does to it; ML001, ML002 and ML010 ask :func:`is_class_index_target` before they
call a target multi-hot.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._exprs import is_argmax
from migrate_ml.rules.semantics.flow import call_argument
from migrate_ml.rules.semantics.shapes import dim_value

def is_class_index_target(rule, expression: cst.BaseExpression) -> bool:
    """A loss target that is an arg-max of scores: inline (``t.argmax(dim=1)``, ``t.max(1)[1]``)
    or through a name every binding of which in its scope is one (``hard = t.argmax(dim=-1)``,
    ``_, hard = t.max(1)``). Such a target is one class per sample (hard distillation, or
    one-hot/multi-hot targets collapsed to one index), which a ``.float()`` cast does not turn
    into multi-hot labels. ``rule`` must depend on ``ScopeProvider`` and ``ParentNodeProvider``."""
    return bool(class_index_sources(rule, expression))


def class_index_sources(rule, expression: cst.BaseExpression, depth: int = 0) -> list[cst.CSTNode]:
    """The arg-max expressions behind ``expression`` when it is one class index per sample (see
    :func:`is_class_index_target`); empty when it is not, or not in every binding."""
    if depth > 2:
        return []
    if is_argmax(expression) or _is_max_indices(expression):
        return [expression]
    if not isinstance(expression, cst.Name):
        return []
    scope = rule.get_metadata(ScopeProvider, expression, None)
    assignments = list(scope[expression.value]) if scope is not None else []
    sources: list[cst.CSTNode] = []
    for assignment in assignments:
        bound = getattr(assignment, "node", None)
        holder = rule.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
        found: list[cst.CSTNode] = []
        if isinstance(holder, cst.AssignTarget):
            statement = rule.get_metadata(ParentNodeProvider, holder, None)
            if isinstance(statement, cst.Assign):
                found = class_index_sources(rule, statement.value, depth + 1)
        elif isinstance(holder, cst.Element):  # `_, hard = t.max(1)`
            pair = rule.get_metadata(ParentNodeProvider, holder, None)
            target = rule.get_metadata(ParentNodeProvider, pair, None) if isinstance(pair, cst.Tuple) else None
            statement = rule.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
            if (
                isinstance(statement, cst.Assign)
                and len(pair.elements) == 2
                and pair.elements[1] is holder
                and _is_reducing_max(statement.value)
            ):
                found = [statement.value]
        if not found:
            return []
        sources.extend(found)
    return sources


def _is_reducing_max(expression: cst.BaseExpression) -> bool:
    """``t.max(1)``, ``t.max(dim=-1)``, ``torch.max(t, 1)``: a (values, indices) pair."""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)):
        return False
    if expression.func.attr.value != "max":
        return False
    module = isinstance(expression.func.value, cst.Name) and expression.func.value.value == "torch"
    dim = call_argument(expression, 1 if module else 0, "dim")
    return dim is not None and dim_value(dim.value) in (1, -1)


def _is_max_indices(expression: cst.BaseExpression) -> bool:
    """``t.max(1)[1]``, ``t.max(1)[-1]`` or ``t.max(1).indices``."""
    if isinstance(expression, cst.Attribute) and expression.attr.value == "indices":
        return _is_reducing_max(expression.value)
    if isinstance(expression, cst.Subscript) and len(expression.slice) == 1:
        index = expression.slice[0].slice
        return isinstance(index, cst.Index) and dim_value(index.value) in (1, -1) and _is_reducing_max(expression.value)
    return False
