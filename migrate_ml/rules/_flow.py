"""Shared data-flow facts about losses, computed once per file as LibCST metadata.

Several rules need the same answers: which calls compute a loss, with which criterion, and
which argument is the target. :class:`LossFlowProvider` answers them using LibCST's
``QualifiedNameProvider`` (so aliases such as ``import torch.nn as tnn`` or
``from torch.nn import CrossEntropyLoss as CE`` resolve) and ``ScopeProvider`` (so a criterion
built in one place and called in another is followed, including through a parameter of a
function that every call site in the module feeds the same criterion).

Rules read the result with ``self.get_metadata(LossFlowProvider, module)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import (
    BatchableMetadataProvider,
    ParentNodeProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

# Loss classes by fully qualified name. The kind says what the criterion computes.
LOSS_CLASSES: dict[str, str] = {
    "torch.nn.CrossEntropyLoss": "ce",
    "torch.nn.modules.loss.CrossEntropyLoss": "ce",
    "torch.nn.NLLLoss": "nll",
    "torch.nn.modules.loss.NLLLoss": "nll",
    "torch.nn.BCEWithLogitsLoss": "bce",
    "torch.nn.modules.loss.BCEWithLogitsLoss": "bce",
    "timm.loss.LabelSmoothingCrossEntropy": "timm-label-smoothing-ce",
    "timm.loss.cross_entropy.LabelSmoothingCrossEntropy": "timm-label-smoothing-ce",
    "timm.loss.SoftTargetCrossEntropy": "timm-soft-target-ce",
    "timm.loss.cross_entropy.SoftTargetCrossEntropy": "timm-soft-target-ce",
    "timm.loss.BinaryCrossEntropy": "bce",
    "timm.loss.binary_cross_entropy.BinaryCrossEntropy": "bce",
    "timm.loss.AsymmetricLossMultiLabel": "bce",
    "timm.loss.asymmetric_loss.AsymmetricLossMultiLabel": "bce",
}

# Functional losses: qualified name -> (kind, positional index of the target).
LOSS_FUNCTIONS: dict[str, str] = {
    "torch.nn.functional.cross_entropy": "ce",
    "torch.nn.functional.nll_loss": "nll",
    "torch.nn.functional.binary_cross_entropy_with_logits": "bce",
}

MULTI_LABEL_KINDS = frozenset({"bce"})


@dataclass(eq=False)
class LossConstruction:
    """A criterion object being built, e.g. ``nn.CrossEntropyLoss(reduction="sum")``."""

    call: cst.Call
    kind: str
    qualified_name: str
    target: cst.BaseExpression | None
    """What the criterion is bound to: a ``Name``, a ``self.attr`` ``Attribute``, or None."""


@dataclass(eq=False)
class LossCall:
    """A call that computes a loss: ``criterion(logits, target)`` or ``F.cross_entropy(...)``."""

    call: cst.Call
    kinds: frozenset[str]
    constructions: tuple[LossConstruction, ...]
    """The criteria this call can reach (empty for functional losses)."""
    logits: cst.BaseExpression | None
    target: cst.Arg | None

    @property
    def functional(self) -> bool:
        return not self.constructions


@dataclass
class LossFlow:
    constructions: list[LossConstruction] = field(default_factory=list)
    calls: list[LossCall] = field(default_factory=list)

    def calls_of(self, construction: LossConstruction) -> list[LossCall]:
        return [call for call in self.calls if construction in call.constructions]


def call_argument(call: cst.Call, index: int, keyword: str) -> cst.Arg | None:
    """The argument at ``index`` (positional) or named ``keyword``; None if absent."""
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    if len(positional) > index:
        return positional[index]
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg
    return None


def _qualified(provider_owner, node: cst.CSTNode) -> set[str]:
    return {q.name for q in provider_owner.get_metadata(QualifiedNameProvider, node, set())}


class LossFlowProvider(BatchableMetadataProvider[LossFlow]):
    """Computes a :class:`LossFlow` and stores it on the ``Module`` node."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider, ParentNodeProvider)

    def __init__(self) -> None:
        super().__init__()
        self._flow = LossFlow()
        self._calls: list[cst.Call] = []
        self._by_target: dict[cst.CSTNode, LossConstruction] = {}
        self._by_attribute: dict[tuple[cst.ClassDef | None, str], list[LossConstruction]] = {}
        self._functions: dict[str, list[cst.FunctionDef]] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.setdefault(node.name.value, []).append(node)

    def visit_Call(self, node: cst.Call) -> None:
        self._calls.append(node)
        if not isinstance(node.func, (cst.Name, cst.Attribute)):
            return  # `CE()(z, y)`: the inner call is the construction
        for name in _qualified(self, node.func):
            kind = LOSS_CLASSES.get(name)
            if kind is not None:
                self._record_construction(node, kind, name)
                return

    def _record_construction(self, node: cst.Call, kind: str, name: str) -> None:
        parent = self.get_metadata(ParentNodeProvider, node)
        target: cst.BaseExpression | None = None
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            target = parent.targets[0].target
        elif isinstance(parent, (cst.AnnAssign,)) and parent.value is node:
            target = parent.target
        construction = LossConstruction(call=node, kind=kind, qualified_name=name, target=target)
        self._flow.constructions.append(construction)
        if isinstance(target, cst.Name):
            self._by_target[target] = construction
        elif isinstance(target, cst.Attribute) and _is_self(target.value):
            key = (self._enclosing(node, cst.ClassDef), target.attr.value)
            self._by_attribute.setdefault(key, []).append(construction)

    def leave_Module(self, original_node: cst.Module) -> None:
        for call in self._calls:
            self._resolve_call(call)
        self.set_metadata(original_node, self._flow)

    def _resolve_call(self, call: cst.Call) -> None:
        names = _qualified(self, call.func)
        for name in names:
            kind = LOSS_FUNCTIONS.get(name)
            if kind is not None:
                self._flow.calls.append(
                    LossCall(
                        call=call,
                        kinds=frozenset({kind}),
                        constructions=(),
                        logits=_value(call_argument(call, 0, "input")),
                        target=call_argument(call, 1, "target"),
                    )
                )
                return
        constructions = self._criteria_behind(call.func, depth=0)
        if constructions:
            self._flow.calls.append(
                LossCall(
                    call=call,
                    kinds=frozenset(c.kind for c in constructions),
                    constructions=tuple(constructions),
                    logits=_value(call_argument(call, 0, "input")),
                    target=call_argument(call, 1, "target"),
                )
            )

    def _criteria_behind(self, expression: cst.BaseExpression, depth: int) -> list[LossConstruction]:
        """The constructions an expression used as a callee is proven to refer to."""
        if depth > 3:
            return []
        if isinstance(expression, cst.Call):
            return [c for c in self._flow.constructions if c.call is expression]
        if isinstance(expression, cst.Attribute) and _is_self(expression.value):
            key = (self._enclosing(expression, cst.ClassDef), expression.attr.value)
            return list(self._by_attribute.get(key, ()))
        if not isinstance(expression, cst.Name):
            return []
        scope = self.get_metadata(ScopeProvider, expression, None)
        if scope is None:
            return []
        found: list[LossConstruction] = []
        for assignment in scope[expression.value]:
            bound = getattr(assignment, "node", None)
            if bound in self._by_target:
                found.append(self._by_target[bound])
            elif isinstance(bound, cst.Param):
                passed = self._criteria_through_parameter(bound, depth)
                if not passed:
                    return []  # one unproven binding makes the whole name unproven
                found.extend(passed)
            else:
                return []
        return found

    def _criteria_through_parameter(self, param: cst.Param, depth: int) -> list[LossConstruction]:
        """Follow a parameter to the arguments of every call of its function in this module."""
        function = self._enclosing(param, (cst.FunctionDef, cst.Lambda))
        if not isinstance(function, cst.FunctionDef):
            return []
        parameters = function.params
        positional = list(parameters.posonly_params) + list(parameters.params)
        index = next((i for i, p in enumerate(positional) if p is param), None)
        found: list[LossConstruction] = []
        call_sites = 0
        for call in self._calls:
            if not (isinstance(call.func, cst.Name) and call.func.value == function.name.value):
                continue
            if function not in self._functions.get(function.name.value, ()):
                continue
            call_sites += 1
            argument = call_argument(call, index if index is not None else 10**6, param.name.value)
            if argument is None:
                return []
            behind = self._criteria_behind(argument.value, depth + 1)
            if not behind:
                return []
            found.extend(behind)
        return found if call_sites else []

    def _enclosing(self, node: cst.CSTNode, kind) -> cst.CSTNode | None:
        current = node
        while True:
            current = self.get_metadata(ParentNodeProvider, current, None)
            if current is None or isinstance(current, kind):
                return current


def _is_self(expression: cst.BaseExpression) -> bool:
    return isinstance(expression, cst.Name) and expression.value == "self"


def _value(arg: cst.Arg | None) -> cst.BaseExpression | None:
    return arg.value if arg is not None else None
