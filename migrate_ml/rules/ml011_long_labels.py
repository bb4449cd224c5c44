"""ML011: ``labels = labels.long()`` feeding a BCE-with-logits loss becomes ``.float()``."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule
from migrate_ml.rules._exprs import INTEGER_METHODS
from migrate_ml.rules._flow import LossFlow, LossFlowProvider
from migrate_ml.rules._prefilter import has_loss_marker

_CHAIN_METHODS = frozenset({"to", "cuda", "cpu", "float", "detach", "contiguous", *INTEGER_METHODS})


def _root_name(expression: cst.BaseExpression) -> cst.Name | None:
    """``labels`` in ``labels.to(device).float()``."""
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
        if expression.func.attr.value not in _CHAIN_METHODS:
            return None
        expression = expression.func.value
    return expression if isinstance(expression, cst.Name) else None


def _integer_casts(expression: cst.BaseExpression) -> list[cst.Name]:
    """The ``long``/``int`` method names in a cast chain such as ``y.to(device).long()``."""
    found = []
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
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
        "the cast becomes `.float()`. Only that assignment changes: the variable is not cast "
        "anywhere else, so metric code comparing predictions with the labels keeps working "
        "(0/1 floats compare equal to 0/1 integers)."
    )
    applicability = Applicability.SAFE
    example_before = "labels = labels.long()\nloss = criterion(outputs, labels.float())\n"
    example_after = "labels = labels.float()\nloss = criterion(outputs, labels.float())\n"
    triggers = (".long()", ".int()")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, LossFlowProvider, ScopeProvider, ParentNodeProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return super().could_apply(source) and has_loss_marker(source)

    def visit_Module(self, node: cst.Module) -> None:
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
                value = self._assigned_value(getattr(assignment, "node", None))
                if value is None or _root_name(value) is None or _root_name(value).value != root.value:
                    continue
                for cast in _integer_casts(value):
                    if cast in seen:
                        continue
                    seen.add(cast)
                    self.report(
                        cast,
                        "the labels feed a BCE-with-logits loss, which needs float targets; an "
                        "integer cast would also truncate soft targets",
                        fix=Fix(edits=(NodeEdit(cast, lambda _old: cst.Name("float")),)),
                    )

    def _assigned_value(self, target: cst.CSTNode | None) -> cst.BaseExpression | None:
        if target is None:
            return None
        holder = self.get_metadata(ParentNodeProvider, target, None)
        statement = self.get_metadata(ParentNodeProvider, holder, None) if holder is not None else None
        if isinstance(holder, cst.AssignTarget) and isinstance(statement, cst.Assign):
            return statement.value
        return None
