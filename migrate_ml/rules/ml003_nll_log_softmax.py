"""ML003: ``F.nll_loss(F.log_softmax(z, dim=1), y)`` becomes BCE-with-logits on the raw logits."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule
from migrate_ml.rules._exprs import (
    as_float_target,
    keyword_arguments,
    map_argument,
    positional_arguments,
)
from migrate_ml.rules.semantics.bindings import assignment_of, sole_binding
from migrate_ml.rules.semantics.flow import LossCall, LossConstruction, LossFlow, LossFlowProvider, call_argument
from migrate_ml.rules.ml001_cross_entropy_loss import (
    ELEMENTWISE_NOTE,
    IGNORE_INDEX_SUGGESTION,
    PER_SAMPLE_NOTE,
    PER_SAMPLE_SUGGESTION,
    WEIGHT_NOTE,
    per_label_mean,
    reduction_mode,
)
from migrate_ml.rules.ml002_functional_cross_entropy import functional_imports, rename_functional
from migrate_ml.rules.semantics.class_index import index_dtype_edits, report_not_label_rows
from migrate_ml.rules.semantics.log_softmax import droppable_log_softmax, log_softmax_input, nll_options_supported
from migrate_ml.rules.semantics.reductions import modulated_elementwise

def nll_to_bce_edits(
    loss_call: LossCall, logits_transform, cast: bool = True, elementwise: bool = False
) -> tuple[NodeEdit, ...]:
    """Rename ``nll_loss`` (alias kept), replace its input, cast its target (unless ``cast`` is
    false: a target that is not the label rows, reported at its own line); with
    ``reduction="none"`` average BCE's [B, C] loss over the labels (see ML001), unless the loss
    goes into an element-wise modulation (``elementwise``: a focal term, which weighs each label)."""
    call = loss_call.call
    assert loss_call.target is not None and call.args
    input_index = 0 if call.args[0].keyword is None else call.args.index(
        keyword_arguments(call)["input"]
    )
    target_index = call.args.index(loss_call.target)

    def apply(updated: cst.Call) -> cst.Call:
        updated = map_argument(updated, input_index, logits_transform)
        return map_argument(updated, target_index, as_float_target) if cast else updated

    edits = (NodeEdit(call, apply), NodeEdit(call.func, rename_functional))
    if reduction_mode(call) == "none" and not elementwise:
        edits += (NodeEdit(call, per_label_mean),)  # after `apply`, which addresses the call's arguments
    return edits


class NllOverLogSoftmaxRule(Rule):
    code = "ML003"
    name = "nll-over-log-softmax"
    summary = (
        "F.nll_loss(F.log_softmax(z, dim=1), y) becomes F.binary_cross_entropy_with_logits(z, y.float()); "
        "nn.NLLLoss() over a visible log_softmax becomes nn.BCEWithLogitsLoss()."
    )
    rationale = (
        "`nll_loss` over `log_softmax` is cross-entropy written in two steps: the softmax makes "
        "the classes compete, so only one label per image can be right. Multi-label training "
        "scores each label with its own sigmoid, so the loss becomes "
        "`binary_cross_entropy_with_logits` on the raw logits `z` (the `log_softmax` is dropped, "
        "not converted) with float multi-hot targets. This is done when the `log_softmax` is "
        "visible: nested in the call, or assigned once to a name in the same function from "
        "logits that are not reassigned there (the assignment stays for any other use). With "
        "`reduction='none'` the call gets `.mean(dim=1)` (BCE's unreduced loss is [B, C], NLL's "
        "[B]; see ML001) unless the loss goes into an element-wise modulation (`exp(-loss)` of a focal "
        "term, which then weighs each label), and a reduction that is not a literal is reported. `reduction` and `weight` carry "
        "over; `ignore_index` is reported. An `nll_loss` whose log-probabilities come from "
        "elsewhere (usually a `log_softmax` in the model's `forward`) is reported, since the "
        "model must return raw logits first (see ML103). The class form `criterion = "
        "nn.NLLLoss()` is handled the same way: it becomes `nn.BCEWithLogitsLoss()` (imports "
        "and aliases fixed, `weight`/`reduction` kept) when every use of the criterion is a "
        "followed call whose input is such a visible `log_softmax`; otherwise the construction "
        "is reported."
    )
    applicability = Applicability.SAFE
    example_before = (
        "z = model(x)\n"
        "out = F.log_softmax(z, dim=1)\n"
        "loss = F.nll_loss(out, y, reduction='sum')\n"
    )
    example_after = (
        "z = model(x)\n"
        "out = F.log_softmax(z, dim=1)\n"
        "loss = F.binary_cross_entropy_with_logits(z, y.float(), reduction='sum')\n"
    )
    triggers = ("nll_loss", "NLLLoss")
    METADATA_DEPENDENCIES = (
        *Rule.METADATA_DEPENDENCIES,
        LossFlowProvider,
        ParentNodeProvider,
        QualifiedNameProvider,
        ScopeProvider,
    )

    def __init__(self, context) -> None:
        super().__init__(context)
        self._drops: dict[int, NodeEdit] = {}
        self._nll_calls: set[int] = set()

    def visit_Module(self, node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, node)
        # The NLL calls whose input may lose its log_softmax: those this rule converts (a class
        # criterion's calls are converted together or not at all).
        self._nll_calls = {
            id(c.call)
            for c in flow.calls
            if c.kinds == {"nll"}
            and (not c.functional or (c.target is not None and nll_options_supported(c.call)))
        }
        forward_log_softmax = "def forward" in node.code and "log_softmax" in node.code
        for loss_call in flow.calls:
            if not (loss_call.functional and loss_call.kinds == {"nll"}):
                continue
            logits, dropped = self._raw_logits(loss_call.logits)
            if logits is None and self._bound_log_softmax(loss_call.logits):
                self.report(
                    loss_call.call,
                    "nll_loss over a log_softmax that cannot simply be dropped: its logits are "
                    "re-bound before the loss, or its log-probabilities are used for more than "
                    "NLL losses and an arg-max",
                    suggestion=(
                        "bind the logits first (logits = model(x)), use "
                        "F.binary_cross_entropy_with_logits(logits, target.float()) and "
                        "torch.sigmoid(logits) where probabilities are needed"
                    ),
                )
                continue
            if logits is None:
                if not forward_log_softmax:  # ML103 owns the case where forward is in this file
                    self.report(
                        loss_call.call,
                        "nll_loss consumes log-probabilities made elsewhere (usually a log_softmax "
                        "in the model's forward), which make the classes compete",
                        suggestion=(
                            "make the model return raw logits, then use "
                            "F.binary_cross_entropy_with_logits(logits, target.float())"
                        ),
                    )
                continue
            if loss_call.target is None or not nll_options_supported(loss_call.call):
                self.report(
                    loss_call.call,
                    "nll_loss with ignore_index or options past weight passed by position has no "
                    "direct binary_cross_entropy_with_logits equivalent",
                    suggestion=IGNORE_INDEX_SUGGESTION,
                )
                continue
            reduction = reduction_mode(loss_call.call)
            if reduction == "unknown":
                self._report_unknown_reduction(loss_call.call, "nll_loss")
                continue
            add_imports, remove_imports = functional_imports(
                loss_call.call.func, "torch.nn.functional.nll_loss"
            )
            message = (
                "nll_loss over log_softmax models one label per image; use "
                "binary_cross_entropy_with_logits on the raw logits and float multi-hot targets"
            )
            elementwise = reduction == "none" and modulated_elementwise(self, loss_call.call)
            if reduction == "none":
                message += f"; {ELEMENTWISE_NOTE if elementwise else PER_SAMPLE_NOTE}"
            uncast = report_not_label_rows(self, loss_call.target.value, converted=True)
            self.report(
                loss_call.call,
                message,
                fix=Fix(
                    edits=(
                        *nll_to_bce_edits(
                            loss_call, lambda _old, z=logits: z.deep_clone(), cast=not uncast, elementwise=elementwise
                        ),
                        *dropped,
                        *index_dtype_edits(uncast),
                    ),
                    notes=uncast,
                    add_imports=add_imports,
                    remove_imports=remove_imports,
                ),
            )

        for construction in flow.constructions:
            if construction.kind == "nll" and construction.qualified_name.endswith(".NLLLoss"):
                self._nll_class(construction, flow)

    def _nll_class(self, construction: LossConstruction, flow: LossFlow) -> None:
        call = construction.call
        keywords = keyword_arguments(call)
        if "ignore_index" in keywords or len(positional_arguments(call)) > 1 or any(a.star for a in call.args):
            self.report(
                call,
                "NLLLoss with ignore_index or options past weight passed by position has no "
                "direct BCEWithLogitsLoss equivalent",
                suggestion=IGNORE_INDEX_SUGGESTION,
            )
            return
        calls = flow.calls_of(construction)
        resolved = [self._raw_logits(loss_call.logits) for loss_call in calls]
        logits = [z for z, _ in resolved]
        convertible = (
            construction.uses_followed
            and bool(calls)
            and all(c.constructions == (construction,) and c.target is not None for c in calls)
            and all(z is not None for z in logits)
        )
        if not convertible:
            self.report(
                call,
                "NLLLoss reads one class per image from log-probabilities (a log_softmax over the "
                "classes) that migrate-ml cannot see at every call of this criterion",
                suggestion=(
                    "make the model return raw logits (drop its log_softmax / nn.LogSoftmax), then "
                    "use nn.BCEWithLogitsLoss() with criterion(logits, target.float())"
                ),
            )
            return
        reduction = reduction_mode(call)
        if reduction == "unknown":
            self._report_unknown_reduction(call, "NLLLoss")
            return
        edits = [NodeEdit(call.func, _to_bce_class)]
        notes: list[cst.CSTNode] = []
        for loss_call, (z, dropped) in zip(calls, resolved):
            uncast = report_not_label_rows(self, loss_call.target.value, converted=True)
            notes.extend(uncast)
            edits.extend(index_dtype_edits(uncast))
            edits.append(NodeEdit(loss_call.call, _class_call_edit(loss_call, z, not uncast)))
            if reduction == "none" and not modulated_elementwise(self, loss_call.call):
                edits.append(NodeEdit(loss_call.call, per_label_mean))  # after the argument edits
            edits.extend(edit for edit in dropped if edit not in edits)
        add_imports: tuple[ImportEdit, ...] = ()
        remove_imports: tuple[ImportEdit, ...] = ()
        if isinstance(call.func, cst.Name):
            module, _, obj = construction.qualified_name.rpartition(".")
            add_imports = (ImportEdit("torch.nn", _BCE_CLASS),)
            remove_imports = (ImportEdit(module, obj, call.func.value if call.func.value != obj else None),)
        message = (
            "NLLLoss over log_softmax models one label per image; use BCEWithLogitsLoss on the raw "
            "logits and float multi-hot targets"
        )
        if reduction == "none":
            elementwise = all(modulated_elementwise(self, loss_call.call) for loss_call in calls)
            message += f"; {ELEMENTWISE_NOTE if elementwise else PER_SAMPLE_NOTE}"
        if "weight" in keywords or positional_arguments(call):
            message += f"; {WEIGHT_NOTE}"
        self.report(
            call,
            message,
            fix=Fix(edits=tuple(edits), add_imports=add_imports, remove_imports=remove_imports, notes=tuple(notes)),
            extra_nodes=[c.call for c in calls],
        )

    def _report_unknown_reduction(self, call: cst.Call, what: str) -> None:
        self.report(
            call,
            f"{what}'s reduction is not a literal: if it can be 'none', BCE would return a [B, C] "
            "loss where one value per sample is expected; left unchanged",
            suggestion=PER_SAMPLE_SUGGESTION,
        )

    def _raw_logits(
        self, expression: cst.BaseExpression | None
    ) -> tuple[cst.BaseExpression | None, tuple[NodeEdit, ...]]:
        """The logits under a log_softmax (nested, or through a name bound once in this scope),
        and the edits that go with using them: none, or dropping the ``log_softmax`` from
        ``output = F.log_softmax(model(x), dim=1)`` (see :meth:`_dropped_log_softmax`)."""
        if expression is None:
            return None, ()
        direct = log_softmax_input(self, expression)
        if direct is not None:
            return direct, ()
        if not isinstance(expression, cst.Name):
            return None, ()
        bound = _single_assigned_value(self, expression)
        if bound is None:
            return None, ()
        logits = log_softmax_input(self, bound)
        if logits is None:
            return None, ()
        if _is_stable(self, logits, expression):
            return logits, ()
        drop = self._dropped_log_softmax(expression, bound)
        if drop is None:
            return None, ()
        return expression, (drop,)

    def _bound_log_softmax(self, expression: cst.BaseExpression | None) -> bool:
        """``expression`` is a name bound once in this scope to a visible log_softmax."""
        if not isinstance(expression, cst.Name):
            return False
        bound = _single_assigned_value(self, expression)
        return bound is not None and log_softmax_input(self, bound) is not None

    def _dropped_log_softmax(self, name: cst.Name, log_softmax: cst.Call) -> NodeEdit | None:
        """``output = F.log_softmax(model(x), dim=1)`` has no name for the logits. When every use
        of ``output`` is the input of an ``nll_loss`` or an arg-max over the classes, the
        ``log_softmax`` is dropped there, so ``output`` holds the raw logits: the loss becomes
        BCE-with-logits on them, and the arg-max ``torch.sigmoid(output) > THRESHOLD`` (ML020,
        which applies the same test), never a sigmoid of log-probabilities."""
        if droppable_log_softmax(self, name, lambda call: id(call) in self._nll_calls) is not log_softmax:
            return None
        key = id(log_softmax)
        if key not in self._drops:
            self._drops[key] = NodeEdit(log_softmax, _first_argument_value)
        return self._drops[key]


def _first_argument_value(updated: cst.CSTNode) -> cst.CSTNode:
    assert isinstance(updated, cst.Call)
    return updated.args[0].value.with_changes(lpar=updated.lpar, rpar=updated.rpar)


_BCE_CLASS = "BCEWithLogitsLoss"


def _to_bce_class(func: cst.CSTNode) -> cst.CSTNode:
    if isinstance(func, cst.Attribute):
        return func.with_changes(attr=cst.Name(_BCE_CLASS))
    return cst.Name(_BCE_CLASS)


def _class_call_edit(loss_call: LossCall, logits: cst.BaseExpression, cast: bool):
    """``criterion(log_probs, y)`` -> ``criterion(logits, y.float())`` (``y`` uncast without ``cast``)."""
    call = loss_call.call
    assert loss_call.target is not None
    input_arg = call_argument(call, 0, "input")
    assert input_arg is not None
    input_index, target_index = call.args.index(input_arg), call.args.index(loss_call.target)

    def apply(updated: cst.Call) -> cst.Call:
        updated = map_argument(updated, input_index, lambda _old: logits.deep_clone())
        return map_argument(updated, target_index, as_float_target) if cast else updated

    return apply


def _single_assigned_value(rule: Rule, name: cst.Name) -> cst.BaseExpression | None:
    """The value of ``name = value`` when that is the name's only binding in its scope."""
    statement = assignment_of(rule, sole_binding(rule, name))
    return statement.value if statement is not None and len(statement.targets) == 1 else None


def _is_stable(rule: Rule, logits: cst.BaseExpression, use: cst.CSTNode) -> bool:
    """The logits mean the same at the loss call: a name bound at most once in the scope.

    A call such as ``model(x)`` is not accepted: repeating it at the loss would run the model
    a second time.
    """
    if not isinstance(logits, cst.Name):
        return False
    scope = rule.get_metadata(ScopeProvider, use, None)
    return scope is not None and len(list(scope[logits.value])) <= 1
