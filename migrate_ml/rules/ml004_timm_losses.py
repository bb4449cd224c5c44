"""ML004: timm's single-label losses become BCE-with-logits that keeps their behaviour."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule
from migrate_ml.rules._exprs import (
    append_argument,
    as_float_target,
    keyword_arguments,
    map_target,
    positional_arguments,
    smoothed_target,
    without_arguments,
)
from migrate_ml.rules.semantics.bindings import reads_the_same_at
from migrate_ml.rules.semantics.flow import LossConstruction, LossFlow, LossFlowProvider
from migrate_ml.rules.ml001_cross_entropy_loss import calls_all_rewritable, cast_targets, handed_over_note, passed_on_note

_BCE = "BCEWithLogitsLoss"
_TIMM_BCE = "BinaryCrossEntropy"
_DEFAULT_SMOOTHING = "0.1"  # LabelSmoothingCrossEntropy(smoothing=0.1) in every timm release


class TimmLossRule(Rule):
    code = "ML004"
    name = "timm-single-label-losses"
    summary = (
        "timm LabelSmoothingCrossEntropy / SoftTargetCrossEntropy become BCEWithLogitsLoss, "
        "with the smoothing kept on the targets."
    )
    rationale = (
        "timm's `LabelSmoothingCrossEntropy` and `SoftTargetCrossEntropy` are softmax "
        "cross-entropies: the classes compete, so they train one label per image. Their "
        "multi-label counterpart is a sigmoid per label, `BCEWithLogitsLoss`. A bare swap to "
        "timm's `BinaryCrossEntropy` would lose the smoothing silently: it smooths only targets "
        "it one-hot encodes itself, and multi-hot targets already have the logits' shape. So "
        "`LabelSmoothingCrossEntropy(smoothing=e)` (e defaults to 0.1) becomes "
        "`BCEWithLogitsLoss()` with the targets smoothed at each call (`y*(1-e)+e/2`, each label "
        "moved towards 0.5) when every use of the criterion is a call migrate-ml follows. "
        "Otherwise, typically in a factory that picks the loss from flags and hands it to a "
        "training loop in another file, it is reported, with an unsafe fix to "
        "`timm.loss.BinaryCrossEntropy(smoothing=e, smooth_dense=True)`, which applies the same "
        "smoothing to dense targets but needs a timm release that has `smooth_dense`. "
        "`SoftTargetCrossEntropy()` is used with mixup's soft targets; it becomes "
        "`BCEWithLogitsLoss()` on float targets (the mixup itself is ML104's concern). Names brought "
        "in by `from timm.loss import *` (timm's own `train.py` and its forks) are resolved like "
        "imported ones; timm's `BinaryCrossEntropy` branches are multi-label already."
    )
    applicability = Applicability.SAFE
    example_before = (
        "criterion = LabelSmoothingCrossEntropy(smoothing=0.1)\n"
        "loss = criterion(output, target)\n"
    )
    example_after = (
        "criterion = BCEWithLogitsLoss()\n"
        "loss = criterion(output, target.float() * (1 - 0.1) + 0.1 / 2)\n"
    )
    triggers = ("LabelSmoothingCrossEntropy", "SoftTargetCrossEntropy")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, LossFlowProvider, ScopeProvider, ParentNodeProvider)

    def visit_Module(self, node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, node)
        for construction in flow.constructions:
            if construction.kind == "timm-soft-target-ce":
                self._soft_target(construction, flow)
            elif construction.kind == "timm-label-smoothing-ce":
                self._label_smoothing(construction, flow)

    def _soft_target(self, construction: LossConstruction, flow: LossFlow) -> None:
        calls = flow.calls_of(construction)
        cast, notes = cast_targets(self, calls, as_float_target)
        edits = [NodeEdit(construction.call.func, _to_torch_bce), *cast]
        adds, removes = _imports(construction, ImportEdit("torch.nn", _BCE))
        self.report(
            construction.call,
            "SoftTargetCrossEntropy is a softmax cross-entropy; multi-label (also mixed) targets "
            "need BCEWithLogitsLoss" + handed_over_note(construction),
            fix=Fix(edits=tuple(edits), add_imports=adds, remove_imports=removes, notes=tuple(notes)),
            extra_nodes=[c.call for c in calls],
        )
        if not construction.uses_accounted:
            self.report(
                construction.call,
                "not every use of this criterion could be followed, so targets passed to it "
                "elsewhere were not cast" + passed_on_note(construction),
                suggestion="pass float multi-hot targets [B, C]: criterion(logits, targets.float())",
            )

    def _label_smoothing(self, construction: LossConstruction, flow: LossFlow) -> None:
        call = construction.call
        smoothing = _smoothing_argument(call)
        if smoothing is False:
            self.report(call, "LabelSmoothingCrossEntropy with unexpected arguments", suggestion=_suggestion("e"))
            return
        epsilon = smoothing if smoothing is not None else cst.Float(_DEFAULT_SMOOTHING)
        calls = flow.calls_of(construction)
        followed = calls_all_rewritable(construction, calls)
        if followed and all(reads_the_same_at(self, epsilon, c.target.value) for c in calls):
            edits = [
                NodeEdit(call.func, _to_torch_bce),
                # The smoothing moves onto the targets: the emptied call closes where it opens, unless
                # comments among its arguments are kept inside it.
                NodeEdit(call, without_arguments),
            ]
            for loss_call in calls:
                assert loss_call.target is not None
                edits.append(
                    NodeEdit(loss_call.call, map_target(loss_call.call, loss_call.target, smoothed_target(epsilon)))
                )
            adds, removes = _imports(construction, ImportEdit("torch.nn", _BCE))
            self.report(
                call,
                "LabelSmoothingCrossEntropy is a softmax cross-entropy; use BCEWithLogitsLoss with "
                "the smoothing moved onto the float multi-hot targets (y*(1-e)+e/2)",
                fix=Fix(edits=tuple(edits), add_imports=adds, remove_imports=removes),
                extra_nodes=[c.call for c in calls],
            )
            return

        text = cst.Module([]).code_for_node(epsilon)
        adds, removes = _imports(construction, ImportEdit("timm.loss", _TIMM_BCE))
        self.report(
            call,
            (
                "LabelSmoothingCrossEntropy's smoothing reads names that one of its calls does not see "
                "(another function, its own parameters)"
                if followed
                else "LabelSmoothingCrossEntropy is used where migrate-ml cannot follow every call (for "
                "example a criterion chosen by flags and trained elsewhere)"
            )
            + ", so its smoothing cannot be moved onto the targets",
            suggestion=_suggestion(text),
            fix=Fix(
                edits=(NodeEdit(call, _to_timm_bce(smoothing is None, epsilon)),),
                applicability=Applicability.UNSAFE,
                add_imports=adds,
                remove_imports=removes,
            ),
        )


def _suggestion(epsilon: str) -> str:
    return (
        f"use timm.loss.BinaryCrossEntropy(smoothing={epsilon}, smooth_dense=True) (timm releases "
        f"with smooth_dense; without it timm does not smooth multi-hot targets), or "
        f"BCEWithLogitsLoss() with targets.float() * (1 - {epsilon}) + {epsilon} / 2 at each call"
    )


def _smoothing_argument(call: cst.Call) -> cst.BaseExpression | None | bool:
    """The smoothing expression, None for the default, False for arguments we do not know."""
    keywords = keyword_arguments(call)
    positional = positional_arguments(call)
    if set(keywords) - {"smoothing"} or len(positional) > 1 or any(a.star for a in call.args):
        return False
    if positional:
        return positional[0].value
    return keywords["smoothing"].value if "smoothing" in keywords else None


def _to_torch_bce(func: cst.CSTNode) -> cst.CSTNode:
    if isinstance(func, cst.Attribute):
        return cst.parse_expression(f"torch.nn.{_BCE}")
    return cst.Name(_BCE)


def _to_timm_bce(default_smoothing: bool, epsilon: cst.BaseExpression):
    def apply(call: cst.Call) -> cst.Call:
        func = call.func
        func = func.with_changes(attr=cst.Name(_TIMM_BCE)) if isinstance(func, cst.Attribute) else cst.Name(_TIMM_BCE)
        args = list(call.args)
        if default_smoothing:
            args = append_argument(
                args, cst.Arg(keyword=cst.Name("smoothing"), value=epsilon, equal=_EQUAL), call.whitespace_before_args
            )
        elif args[0].keyword is None:
            args[0] = args[0].with_changes(keyword=cst.Name("smoothing"), equal=_EQUAL)
        smooth_dense = cst.Arg(keyword=cst.Name("smooth_dense"), value=cst.Name("True"), equal=_EQUAL)
        return call.with_changes(func=func, args=append_argument(args, smooth_dense, call.whitespace_before_args))

    return apply


_TIGHT = cst.SimpleWhitespace("")
_EQUAL = cst.AssignEqual(whitespace_before=_TIGHT, whitespace_after=_TIGHT)


def _imports(construction: LossConstruction, new: ImportEdit) -> tuple[tuple, tuple]:
    func = construction.call.func
    if isinstance(func, cst.Name):
        module, _, obj = construction.qualified_name.rpartition(".")
        asname = func.value if func.value != obj else None
        return (new,), (ImportEdit(module, obj, asname),)
    if new.module == "torch.nn" and isinstance(func, cst.Attribute):
        # `import timm.loss` goes once nothing else uses it
        return (ImportEdit("torch"),), (ImportEdit(cst.Module([]).code_for_node(func.value)),)
    return (), ()
