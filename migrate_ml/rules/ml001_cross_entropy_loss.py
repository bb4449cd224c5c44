"""ML001: ``nn.CrossEntropyLoss`` becomes ``nn.BCEWithLogitsLoss``, with float targets."""

from __future__ import annotations

import libcst as cst

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule
from migrate_ml.rules._exprs import as_float_target, map_argument, parenthesize
from migrate_ml.rules._flow import LossConstruction, LossFlow, LossFlowProvider

_BCE = "BCEWithLogitsLoss"


class CrossEntropyLossRule(Rule):
    code = "ML001"
    name = "cross-entropy-loss"
    summary = "nn.CrossEntropyLoss becomes nn.BCEWithLogitsLoss, and the targets at its calls become float."
    rationale = (
        "CrossEntropyLoss applies a softmax across classes, so the scores compete and only one "
        "label can win: it models exactly one label per image. Multi-label training needs an "
        "independent sigmoid per label, which BCEWithLogitsLoss computes in a numerically "
        "stable way from the raw logits. BCEWithLogitsLoss needs float targets of the same "
        "shape as the logits ([B, C] multi-hot), so every call of the criterion that migrate-ml "
        "can follow gets `.float()` on its target, after any `.to(device)` chain. Worse than a "
        "crash, CrossEntropyLoss fed float multi-hot targets still runs and trains the wrong "
        "objective, which is why this rule converts the criterion rather than the targets only. "
        "`reduction` carries over; `weight` is kept (in BCE it scales each label's loss) with a "
        "note about `pos_weight`; `label_smoothing` moves onto the targets (`y*(1-e)+e/2`) as an "
        "unsafe fix; `ignore_index` has no BCE equivalent and is reported."
    )
    applicability = Applicability.SAFE
    example_before = (
        "criterion = nn.CrossEntropyLoss()\n"
        "loss = criterion(outputs, labels.to(device))\n"
    )
    example_after = (
        "criterion = nn.BCEWithLogitsLoss()\n"
        "loss = criterion(outputs, labels.to(device).float())\n"
    )
    triggers = ("CrossEntropyLoss",)
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, LossFlowProvider)

    def visit_Module(self, node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, node)
        for construction in flow.constructions:
            if construction.kind == "ce" and construction.qualified_name.endswith(".CrossEntropyLoss"):
                self._check(construction, flow)

    def _check(self, construction: LossConstruction, flow: LossFlow) -> None:
        call = construction.call
        keywords = {arg.keyword.value: arg for arg in call.args if arg.keyword is not None}
        positional = [arg for arg in call.args if arg.keyword is None]
        if "ignore_index" in keywords or len(positional) > 1 or any(arg.star for arg in call.args):
            self.report(
                call,
                "CrossEntropyLoss with ignore_index or positional options has no direct BCEWithLogitsLoss equivalent",
                suggestion=(
                    "use nn.BCEWithLogitsLoss(reduction='none') and mask the ignored samples: "
                    "(loss * mask).sum() / mask.sum()"
                ),
            )
            return

        calls = flow.calls_of(construction)
        edits = [NodeEdit(call.func, _rename_to_bce)]
        smoothing = keywords.get("label_smoothing")
        applicability = Applicability.SAFE
        if smoothing is not None:
            applicability = Applicability.UNSAFE
            index = call.args.index(smoothing)
            edits.append(NodeEdit(call, _without_argument(index)))
        for loss_call in calls:
            if loss_call.target is None:
                continue
            index = loss_call.call.args.index(loss_call.target)
            transform = as_float_target
            if smoothing is not None:
                transform = _smoothed_target(smoothing.value)
            edits.append(NodeEdit(loss_call.call, lambda updated, i=index, t=transform: map_argument(updated, i, t)))

        add_imports: tuple[ImportEdit, ...] = ()
        remove_imports: tuple[ImportEdit, ...] = ()
        if isinstance(call.func, cst.Name):
            module, _, obj = construction.qualified_name.rpartition(".")
            asname = call.func.value if call.func.value != obj else None
            add_imports = (ImportEdit("torch.nn", _BCE),)
            remove_imports = (ImportEdit(module, obj, asname),)

        message = "CrossEntropyLoss models one label per image; use BCEWithLogitsLoss with float multi-hot targets"
        if smoothing is not None:
            message += " (label_smoothing moves onto the targets: y*(1-e)+e/2)"
        self.report(
            call,
            message,
            suggestion="run with --unsafe-fixes to move label_smoothing onto the targets" if smoothing else "",
            fix=Fix(
                edits=tuple(edits),
                applicability=applicability,
                add_imports=add_imports,
                remove_imports=remove_imports,
            ),
            extra_nodes=[c.call for c in calls],
        )
        if "weight" in keywords or positional:
            self.report(
                call,
                "weight= is kept: in BCEWithLogitsLoss it scales each label's loss, it does not balance positives against negatives",
                suggestion="for rare labels consider pos_weight=(negatives/positives per label), e.g. `migrate-ml reference train --pos-weight auto`",
            )
        if not calls:
            self.report(
                call,
                "the calls of this criterion could not be followed, so their targets were not cast",
                suggestion="pass float multi-hot targets [B, C]: criterion(logits, targets.float())",
            )


def _rename_to_bce(func: cst.CSTNode) -> cst.CSTNode:
    if isinstance(func, cst.Attribute):
        return func.with_changes(attr=cst.Name(_BCE))
    return cst.Name(_BCE)


def _without_argument(index: int):
    def apply(call: cst.Call) -> cst.Call:
        args = [arg for i, arg in enumerate(call.args) if i != index]
        if args:
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return call.with_changes(args=args)

    return apply


def _smoothed_target(epsilon: cst.BaseExpression):
    """Targets smoothed the way CE's label_smoothing treats each class: y*(1-e) + e/2."""

    def apply(target: cst.BaseExpression) -> cst.BaseExpression:
        eps = parenthesize(epsilon.deep_clone())
        kept = cst.BinaryOperation(
            left=cst.Integer("1"), operator=cst.Subtract(), right=eps,
            lpar=[cst.LeftParen()], rpar=[cst.RightParen()],
        )
        return cst.BinaryOperation(
            left=cst.BinaryOperation(left=as_float_target(target), operator=cst.Multiply(), right=kept),
            operator=cst.Add(),
            right=cst.BinaryOperation(left=eps.deep_clone(), operator=cst.Divide(), right=cst.Integer("2")),
        )

    return apply
