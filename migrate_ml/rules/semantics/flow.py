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
    GlobalScope,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from migrate_ml.rules._project import FileFacts, HandOver, ParameterFact, current_facts, dotted_name
from migrate_ml.rules._base import enclosing, in_source_order
from migrate_ml.rules.semantics.bindings import reaching_bindings, sole_binding

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

LOSS_CLASS_WORDS = frozenset(name.rpartition(".")[2] for name in LOSS_CLASSES)
"""The loss classes' own names (``CrossEntropyLoss``): a file whose text names none builds no criterion."""

# Functional losses: qualified name -> (kind, positional index of the target).
LOSS_FUNCTIONS: dict[str, str] = {
    "torch.nn.functional.cross_entropy": "ce",
    "torch.nn.functional.nll_loss": "nll",
    "torch.nn.functional.binary_cross_entropy_with_logits": "bce",
}

MULTI_LABEL_KINDS = frozenset({"bce"})

ENGINE_LOSS_ARGUMENTS: dict[str, tuple[int, str]] = {
    "ignite.engine.create_supervised_trainer": (2, "loss_fn"),
    "ignite.metrics.Loss": (0, "loss_fn"),
    "ignite.metrics.loss.Loss": (0, "loss_fn"),
}
"""Library calls that take a criterion and call it on the loader's labels: (position, keyword).
ML027 wraps a BCE criterion passed there so that it casts the labels."""


@dataclass(eq=False)
class LossConstruction:
    """A criterion object being built, e.g. ``nn.CrossEntropyLoss(reduction="sum")``."""

    call: cst.Call
    kind: str
    qualified_name: str
    target: cst.BaseExpression | None
    """What the criterion is bound to: a ``Name``, a ``self.attr`` ``Attribute``, or None."""
    uses_followed: bool = False
    """True when every use of the criterion is one of its followed calls (or passes it to a
    module-local function whose parameter is used that way). Only then does rewriting the calls
    rewrite *all* of them, which edits that change the call sites (label smoothing moved onto
    the targets) need before they can be safe."""
    handed_over: tuple[HandOver, ...] = ()
    """Uses that pass the criterion to a function in another file of the run that casts the
    targets of its calls (see ``_project.py``)."""
    passed_on: tuple[HandOver, ...] = ()
    """Uses that pass the criterion to a function in another file of the run that does not cast
    (not every criterion reaching it ends up BCE): where the call is reported."""
    uses_accounted: bool = False
    """Every use is followed here or handed over to a file of the run that casts its targets."""
    unfollowed: tuple[cst.CSTNode, ...] = ()
    """The uses that are neither followed nor handed over: where a finding sends the reader."""


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


@dataclass(frozen=True)
class ParameterHop:
    """One parameter a criterion passes through: ``function(..., parameter, ...)``."""

    function: str
    parameter: str


@dataclass(eq=False)
class OpenParameterCall:
    """A call of a parameter (``loss_fn(y_pred, y)``) that no criterion built in this file reaches.

    ``chains`` lists each route the parameter takes through the file's own calls, innermost
    function first, to a function that no code in the file calls (an entry point, called from
    other files): ``train_step(loss_fn)`` <- ``train(loss_fn)``. It is empty when some call site
    passes something that is neither a criterion nor a parameter (then nothing is known).
    """

    call: cst.Call
    chains: tuple[tuple[ParameterHop, ...], ...]
    facts: tuple[ParameterFact, ...] = ()
    """What the run's other files pass to the entry parameters, where they pass anything."""

    @property
    def proven_bce(self) -> bool:
        """Every entry is fed, by the other files of this run, criteria that end up BCE."""
        entries = self.entries
        return bool(entries) and len(self.facts) == len(entries) and all(f.proven_bce for f in self.facts)

    @property
    def converted_by_run(self) -> bool:
        return any(fact.converted_by_run for fact in self.facts)

    @property
    def entries(self) -> frozenset[ParameterHop]:
        return frozenset(chain[-1] for chain in self.chains)


@dataclass
class LossFlow:
    constructions: list[LossConstruction] = field(default_factory=list)
    calls: list[LossCall] = field(default_factory=list)
    open_parameter_calls: list[OpenParameterCall] = field(default_factory=list)

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

    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider, ParentNodeProvider, PositionProvider)

    def __init__(self) -> None:
        super().__init__()
        self._flow = LossFlow()
        self._calls: list[cst.Call] = []
        self._by_target: dict[cst.CSTNode, LossConstruction] = {}
        self._by_attribute: dict[tuple[cst.ClassDef | None, str], list[LossConstruction]] = {}
        self._functions: dict[str, list[cst.FunctionDef]] = {}
        self._attribute_uses: dict[tuple[cst.ClassDef | None, str], list[cst.Attribute]] = {}
        self._roots: dict[LossConstruction, cst.BaseExpression] = {}
        self._facts: FileFacts | None = current_facts()
        self._by_callee: dict[str, list[cst.Call]] | None = None
        self._called: set[str] | None = None
        self._unfollowed: list[cst.CSTNode] | None = None
        self._runs = False
        """The module joins a notebook's cells or is a script that runs code when loaded: no
        other module imports its globals."""

    def visit_Module(self, node: cst.Module) -> None:
        self._runs = any(_is_cell_marker(statement) or _runs_code(statement) for statement in node.body)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if _is_self(node.value):
            key = (enclosing(self, node, cst.ClassDef), node.attr.value)
            self._attribute_uses.setdefault(key, []).append(node)

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
        root = self._device_chain_root(node)
        parent = self.get_metadata(ParentNodeProvider, root)
        target: cst.BaseExpression | None = None
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            target = parent.targets[0].target
        elif isinstance(parent, (cst.AnnAssign,)) and parent.value is root:
            target = parent.target
        construction = LossConstruction(call=node, kind=kind, qualified_name=name, target=target)
        self._flow.constructions.append(construction)
        self._roots[construction] = root
        if isinstance(target, cst.Name):
            self._by_target[target] = construction
        elif isinstance(target, cst.Attribute) and _is_self(target.value):
            key = (enclosing(self, node, cst.ClassDef), target.attr.value)
            self._by_attribute.setdefault(key, []).append(construction)

    def _device_chain_root(self, node: cst.Call) -> cst.BaseExpression:
        """``nn.CrossEntropyLoss().cuda()`` / ``.to(device)``: the outermost call of the chain."""
        current: cst.BaseExpression = node
        while True:
            attribute = self.get_metadata(ParentNodeProvider, current, None)
            if not (
                isinstance(attribute, cst.Attribute)
                and attribute.value is current
                and attribute.attr.value in _DEVICE_METHODS
            ):
                return current
            call = self.get_metadata(ParentNodeProvider, attribute, None)
            if not (isinstance(call, cst.Call) and call.func is attribute):
                return current
            current = call

    def leave_Module(self, original_node: cst.Module) -> None:
        for call in self._calls:
            self._resolve_call(call)
        followed = {call.call: call for call in self._flow.calls}
        for call in self._calls:
            if call in followed:
                continue
            if isinstance(call.func, cst.Name):
                param = self._only_parameter_binding(call.func)
            elif isinstance(call.func, cst.Attribute) and _is_self(call.func.value):
                param = self._attribute_parameter(call.func)
            else:
                param = None
            if param is not None:
                self._flow.open_parameter_calls.append(self._open_call(call, param))
        for construction in self._flow.constructions:
            construction.uses_followed = self._uses_followed(construction, followed)
            handed: list[HandOver] = []
            self._unfollowed = []
            construction.uses_accounted = construction.uses_followed or self._uses_followed(
                construction, followed, handed
            )
            construction.unfollowed = tuple(dict.fromkeys(self._unfollowed))
            self._unfollowed = None
            construction.handed_over = tuple(dict.fromkeys(h for h in handed if h.cast))
            construction.passed_on = tuple(dict.fromkeys(h for h in handed if not h.cast))
        self.set_metadata(original_node, self._flow)

    def _open_call(self, call: cst.Call, param: cst.Param) -> OpenParameterCall:
        chains = tuple(self._entry_chains(param, depth=0) or ())
        facts: tuple[ParameterFact, ...] = ()
        if self._facts is not None:
            found = (self._facts.parameter(hop.function, hop.parameter) for hop in {c[-1] for c in chains})
            facts = tuple(fact for fact in found if fact is not None)
        return OpenParameterCall(call, chains, facts)

    def _uses_followed(
        self, construction: LossConstruction, followed: dict[cst.Call, LossCall], handed: list | None = None
    ) -> bool:
        """Every use is a followed call; with ``handed``, uses handed over to another file of the
        run that casts the targets count too, and are collected there."""
        target = construction.target
        if target is None:
            return self._use_followed(self._roots[construction], construction, followed, 0, handed)
        if isinstance(target, cst.Attribute) and _is_self(target.value):
            key = (enclosing(self, target, cst.ClassDef), target.attr.value)
            uses = [use for use in self._attribute_uses.get(key, ()) if not self._is_assigned(use)]
            # a list, not a generator: with ``handed`` every use is visited, to name them all
            return bool(uses) and all([self._use_noted(u, construction, followed, 0, handed) for u in uses])
        if isinstance(target, cst.Name):
            return self._name_uses_followed(target, construction, followed, 0, handed)
        return False

    def _name_uses_followed(self, bound: cst.CSTNode, construction, followed, depth: int, handed=None) -> bool:
        """Every access of the binding ``bound`` (an assigned ``Name`` or a ``Param``) is followed."""
        name = bound.name if isinstance(bound, cst.Param) else bound
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None or not isinstance(name, cst.Name):
            return False
        accesses = [
            access
            for assignment in scope.assignments[name.value]
            if getattr(assignment, "node", None) is bound
            for access in in_source_order(self, assignment.references)
            if isinstance(access.node, cst.Name)
            and any(
                getattr(reaching, "node", None) is bound
                for reaching in reaching_bindings(self, access.node, list(scope.assignments[name.value]))
            )
        ]
        if not accesses:
            # Never read: nothing passes it targets, unless another module imports the global.
            return not isinstance(scope, GlobalScope) or self._runs
        return all(
            [self._use_noted(access.node, construction, followed, depth, handed) for access in accesses]
        )

    def _use_noted(self, node: cst.CSTNode, construction, followed, depth: int, handed=None) -> bool:
        """:meth:`_use_followed`, remembering a use it cannot follow so that the finding names it."""
        if self._use_followed(node, construction, followed, depth, handed):
            return True
        if self._unfollowed is not None:
            self._unfollowed.append(node)
        return False

    def _use_followed(self, node: cst.CSTNode, construction, followed, depth: int, handed=None) -> bool:
        """``node`` evaluates to the criterion: it is called by a followed loss call, or passed
        to a module-local function whose parameter is itself only used that way."""
        if depth > 3:
            return False
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, cst.Call) and parent.func is node:
            loss_call = followed.get(parent)
            return loss_call is not None and construction in loss_call.constructions
        if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in _MODULE_METHODS:
            return self._module_method_followed(parent, construction, followed, depth, handed)
        if not isinstance(parent, cst.Arg) or parent.value is not node or parent.star:
            return False
        call = self.get_metadata(ParentNodeProvider, parent, None)
        if not isinstance(call, cst.Call):
            return False
        if handed is not None:
            if self._passed_to_engine_loss(call, parent):
                return True
            hand_over = self._hand_over(call, parent)
            if hand_over is not None:
                handed.append(hand_over)
                if hand_over.cast:
                    return True
        if not isinstance(call.func, cst.Name):
            return False
        # A function redefined (a notebook cell run again with edits): any definition may be the
        # one called, and each of them uses the parameter only in followed calls.
        functions = self._functions.get(call.func.value, ())
        params = [_parameter_for(function, call, parent) for function in functions]
        return bool(params) and all(
            [
                param is not None and self._name_uses_followed(param, construction, followed, depth + 1, handed)
                for param in params
            ]
        )

    def _module_method_followed(self, method: cst.Attribute, construction, followed, depth: int, handed) -> bool:
        """``criterion.half()``, ``criterion = criterion.cuda()``: the call passes no targets, and
        the module it returns is the same criterion, whose uses are followed in turn."""
        call = self.get_metadata(ParentNodeProvider, method, None)
        if not (isinstance(call, cst.Call) and call.func is method):
            return False
        statement = self.get_metadata(ParentNodeProvider, call, None)
        if isinstance(statement, cst.Expr):
            return True
        if isinstance(statement, cst.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0].target, cst.Name):
            # criterion = criterion.cuda() too: the reads the new binding reaches are its own uses
            return self._name_uses_followed(statement.targets[0].target, construction, followed, depth + 1, handed)
        return False

    def _passed_to_engine_loss(self, call: cst.Call, argument: cst.Arg) -> bool:
        """``create_supervised_trainer(model, optimizer, criterion)``: a library calls the
        criterion on the loader's labels, and ML027 wraps it to cast them."""
        for name in _qualified(self, call.func):
            consumer = ENGINE_LOSS_ARGUMENTS.get(name)
            if consumer is not None:
                index, keyword = consumer
                return call_argument(call, index, keyword) is argument
        return False

    def _hand_over(self, call: cst.Call, argument: cst.Arg) -> HandOver | None:
        callee = dotted_name(call.func)
        if callee is None or self._facts is None:
            return None
        if argument.keyword is not None:
            return self._facts.hand_over(callee, argument.keyword.value)
        positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
        return self._facts.hand_over(callee, str(positional.index(argument)))

    def _is_assigned(self, node: cst.CSTNode) -> bool:
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, cst.AssignTarget) and parent.target is node:
            return True
        return isinstance(parent, cst.AnnAssign) and parent.target is node

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
        # one criterion passed at several call sites (`evaluate(model, criterion)` twice) is found
        # once per site: kept once, so the call is known to reach that criterion alone
        constructions = list(dict.fromkeys(self._criteria_behind(call.func, depth=0)))
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
            key = (enclosing(self, expression, cst.ClassDef), expression.attr.value)
            return list(self._by_attribute.get(key, ()))
        if not isinstance(expression, cst.Name):
            return []
        scope = self.get_metadata(ScopeProvider, expression, None)
        if scope is None:
            return []
        found: list[LossConstruction] = []
        for assignment in in_source_order(self, reaching_bindings(self, expression, list(scope[expression.value]))):
            bound = getattr(assignment, "node", None)
            receiver = self._module_method_receiver(bound)
            if bound in self._by_target:
                found.append(self._by_target[bound])
            elif isinstance(bound, cst.Param):
                passed = self._criteria_through_parameter(bound, depth)
                if not passed:
                    return []  # one unproven binding makes the whole name unproven
                found.extend(passed)
            elif receiver is not None and receiver.value == expression.value:
                # criterion = criterion.cuda(): the criterion the name held before (where the
                # earlier bindings reach this read only through it, they are found from its receiver)
                found.extend(c for c in self._criteria_behind(receiver, depth + 1) if c not in found)
            elif receiver is not None:
                moved = self._criteria_behind(receiver, depth + 1)  # loss = criterion.to(device)
                if not moved:
                    return []
                found.extend(moved)
            else:
                return []
        return found

    def _module_method_receiver(self, bound: cst.CSTNode | None) -> cst.Name | None:
        """``criterion`` when ``bound`` is the target of ``name = criterion.to(device)`` (or
        ``.cuda()``, ``.half()``…): a module method that returns the same module."""
        target = self.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
        statement = self.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
        if not (isinstance(statement, cst.Assign) and len(statement.targets) == 1 and isinstance(statement.value, cst.Call)):
            return None
        method = statement.value.func
        if isinstance(method, cst.Attribute) and method.attr.value in _MODULE_METHODS and isinstance(method.value, cst.Name):
            return method.value
        return None

    def _criteria_through_parameter(self, param: cst.Param, depth: int) -> list[LossConstruction]:
        """Follow a parameter to the arguments of every call of its function in this module."""
        function = enclosing(self, param, (cst.FunctionDef, cst.Lambda))
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

    def _attribute_parameter(self, attribute: cst.Attribute) -> cst.Param | None:
        """``self.base_criterion`` bound once, in ``__init__``, to a parameter of it."""
        key = (enclosing(self, attribute, cst.ClassDef), attribute.attr.value)
        if key in self._by_attribute:
            return None  # a criterion built here: the flow follows it
        stores = [use for use in self._attribute_uses.get(key, ()) if self._is_assigned(use)]
        if len(stores) != 1:
            return None
        assignment = self.get_metadata(ParentNodeProvider, self.get_metadata(ParentNodeProvider, stores[0], None), None)
        function = enclosing(self, stores[0], cst.FunctionDef)
        if not (isinstance(assignment, cst.Assign) and isinstance(assignment.value, cst.Name)):
            return None
        if not (isinstance(function, cst.FunctionDef) and function.name.value == "__init__"):
            return None
        return self._only_parameter_binding(assignment.value)

    def _calls_by_name(self) -> dict[str, list[cst.Call]]:
        """Calls of a plain name, by that name (built once per file, on first use)."""
        if self._by_callee is None:
            self._by_callee = {}
            for call in self._calls:
                if isinstance(call.func, cst.Name):
                    self._by_callee.setdefault(call.func.value, []).append(call)
        return self._by_callee

    def _callee_names(self) -> set[str]:
        """Every name called, plain (``f(x)``) or as an attribute (``obj.f(x)``); built once."""
        if self._called is None:
            attributes = {c.func.attr.value for c in self._calls if isinstance(c.func, cst.Attribute)}
            self._called = attributes | set(self._calls_by_name())
        return self._called

    def _only_parameter_binding(self, name: cst.Name) -> cst.Param | None:
        """The parameter ``name`` refers to, when that is its only binding in its scope."""
        bound = sole_binding(self, name)
        return bound if isinstance(bound, cst.Param) else None

    def _entry_chains(self, param: cst.Param, depth: int) -> list[tuple[ParameterHop, ...]] | None:
        """Routes from ``param`` through this file's call sites of its function to parameters of
        functions that nothing in the file calls; None when a call site passes anything else."""
        function = enclosing(self, param, (cst.FunctionDef, cst.Lambda))
        if not isinstance(function, cst.FunctionDef) or depth > 3:
            return None
        hop = ParameterHop(function.name.value, param.name.value)
        owner = enclosing(self, function, (cst.ClassDef, cst.FunctionDef))
        if function.name.value == "__init__" and isinstance(owner, cst.ClassDef):
            # A constructor parameter: the class is called by name. Built in this file, the
            # argument is followed (or not) from there; otherwise the class is an entry.
            built = owner.name.value in self._calls_by_name()
            return None if built else [(ParameterHop(owner.name.value, param.name.value),)]
        if owner is not None:
            # A method or a nested function: its callers are not found by name, so it is an
            # entry only when nothing in the file names it as a callee.
            return [(hop,)] if function.name.value not in self._callee_names() else None
        if len(self._functions.get(function.name.value, ())) != 1:
            return None
        call_sites = self._calls_by_name().get(function.name.value, [])
        if not call_sites:
            return [(hop,)]
        positional = [*function.params.posonly_params, *function.params.params]
        index = next((i for i, p in enumerate(positional) if p is param), 10**6)
        chains: list[tuple[ParameterHop, ...]] = []
        for call in call_sites:
            if any(arg.star for arg in call.args):
                return None
            argument = call_argument(call, index, param.name.value)
            if argument is None or not isinstance(argument.value, cst.Name):
                return None
            outer = self._only_parameter_binding(argument.value)
            routes = self._entry_chains(outer, depth + 1) if outer is not None else None
            if routes is None:
                return None
            chains.extend((hop, *route) for route in routes if (hop, *route) not in chains)
        return chains


CELL_MARKER_PREFIX = "# migrate-ml-cell-"
"""How the notebook reader (engine/notebook.py) comments the line it puts before each cell."""
_DEVICE_METHODS = frozenset({"to", "cuda", "cpu"})
_MODULE_METHODS = frozenset({*_DEVICE_METHODS, "half", "float", "double", "bfloat16", "train", "eval"})
"""``nn.Module`` methods that move or switch a criterion and return it: no targets pass through them."""


def _parameter_for(function: cst.FunctionDef, call: cst.Call, argument: cst.Arg) -> cst.Param | None:
    """The parameter of ``function`` that ``argument`` of ``call`` binds."""
    parameters = function.params
    if argument.keyword is not None:
        every = [*parameters.posonly_params, *parameters.params, *parameters.kwonly_params]
        return next((p for p in every if p.name.value == argument.keyword.value), None)
    positional = [*parameters.posonly_params, *parameters.params]
    index = [arg for arg in call.args if arg.keyword is None and not arg.star].index(argument)
    return positional[index] if index < len(positional) else None


def _is_cell_marker(statement: cst.CSTNode) -> bool:
    """``pass  # migrate-ml-cell-T:N``, the line the notebook reader puts before each cell."""
    if not isinstance(statement, cst.SimpleStatementLine) or not isinstance(statement.body[0], cst.Pass):
        return False
    comment = statement.trailing_whitespace.comment
    return comment is not None and comment.value.startswith(CELL_MARKER_PREFIX)


def _runs_code(statement: cst.CSTNode) -> bool:
    """A top-level call, loop or ``if __name__ == "__main__":``: code a script runs when loaded."""
    if isinstance(statement, (cst.If, cst.For, cst.While, cst.With, cst.Try)):
        return True
    return isinstance(statement, cst.SimpleStatementLine) and any(
        isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) for small in statement.body
    )


def _is_self(expression: cst.BaseExpression) -> bool:
    return isinstance(expression, cst.Name) and expression.value == "self"


def _value(arg: cst.Arg | None) -> cst.BaseExpression | None:
    return arg.value if arg is not None else None
