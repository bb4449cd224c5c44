"""ML002: ``F.cross_entropy`` becomes ``F.binary_cross_entropy_with_logits`` on float targets."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import FunctionScope, ParentNodeProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule
from migrate_ml.rules._exprs import (
    as_float_target,
    is_flattened,
    keyword_arguments,
    map_target,
    positional_arguments,
    smoothed_target,
    without_argument,
)
from migrate_ml.rules.semantics.flow import LossFlow, LossFlowProvider
from migrate_ml.rules.semantics.class_index import class_index_message, index_dtype_edits, is_class_index_target, report_not_label_rows
from migrate_ml.rules.semantics.reductions import modulated_elementwise
from migrate_ml.rules.ml001_cross_entropy_loss import (
    ELEMENTWISE_NOTE,
    IGNORE_INDEX_SUGGESTION,
    PER_SAMPLE_NOTE,
    PER_SAMPLE_SUGGESTION,
    WEIGHT_NOTE,
    per_label_mean,
    reduction_mode,
    smoothing_note,
)
from migrate_ml.rules.semantics.tasks import ReadsTheTrainedHead

FUNCTIONAL_BCE = "binary_cross_entropy_with_logits"
FUNCTIONAL_MODULE = "torch.nn.functional"

# F.cross_entropy(input, target, weight, size_average, ignore_index, reduce, reduction, ...) and
# F.binary_cross_entropy_with_logits(input, target, weight, size_average, reduce, ...) agree on
# the first three positions only.
_SHARED_POSITIONS = 3


def rename_functional(func: cst.CSTNode) -> cst.CSTNode:
    """``F.cross_entropy`` -> ``F.binary_cross_entropy_with_logits``, keeping the user's alias."""
    if isinstance(func, cst.Attribute):
        return func.with_changes(attr=cst.Name(FUNCTIONAL_BCE))
    return cst.Name(FUNCTIONAL_BCE)


def functional_imports(func: cst.BaseExpression, qualified_name: str) -> tuple[tuple, tuple]:
    """Import edits for a bare ``cross_entropy``/``nll_loss`` from-import; none for ``F.x``."""
    if not isinstance(func, cst.Name):
        return (), ()
    obj = qualified_name.rpartition(".")[2]
    asname = func.value if func.value != obj else None
    return (ImportEdit(FUNCTIONAL_MODULE, FUNCTIONAL_BCE),), (ImportEdit(FUNCTIONAL_MODULE, obj, asname),)


class FunctionalCrossEntropyRule(ReadsTheTrainedHead, Rule):
    code = "ML002"
    name = "functional-cross-entropy"
    summary = "F.cross_entropy(z, y) becomes F.binary_cross_entropy_with_logits(z, y.float())."
    rationale = (
        "`torch.nn.functional.cross_entropy` is a softmax over classes followed by the negative "
        "log-likelihood of the one true class, so it can only express one label per image. The "
        "multi-label loss is an independent sigmoid per label, "
        "`binary_cross_entropy_with_logits`, which takes the same raw logits and float "
        "multi-hot targets of the same shape. The function keeps the user's module alias "
        "(`F.`, `torch.nn.functional.`, or a from-import, whose import is fixed), the target "
        "gets `.float()` after any `.to(device)` chain, and `reduction` and `weight` carry "
        "over (with a note: BCE's `weight` scales each label's loss). With `reduction='none'` "
        "the call gets `.mean(dim=1)`: BCE's unreduced loss is [B, C] where cross-entropy's is "
        "[B], and the mean over labels keeps one loss per sample for the weighting or masking "
        "that follows (averaged over the batch it equals BCE's default reduction), unless the "
        "loss goes into `exp` (a focal modulation, element-wise: it stays per label, and so does "
        "any other unreduced cross-entropy of that function); a reduction "
        "that is not a literal is reported and the call left as it is. `label_smoothing` moves "
        "onto the targets of that call (`y*(1-e)+e/2`). `ignore_index`, options passed "
        "positionally past `weight`, and targets that are not labels (a teacher's `argmax`, "
        "as in DeiT's hard distillation, or flattened `labels.view(-1)`) are reported instead; a "
        "literal tensor of class indices or one column of a label tensor (`y[:, 1]`) is left "
        "uncast and reported at its own line. A token model's loss (a vocabulary class axis, a "
        "padding index ignored) is left alone."
    )
    applicability = Applicability.SAFE
    example_before = "loss = F.cross_entropy(logits, labels.to(device), reduction='sum')\n"
    example_after = (
        "loss = F.binary_cross_entropy_with_logits(logits, labels.to(device).float(), reduction='sum')\n"
    )
    triggers = ("cross_entropy",)
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, LossFlowProvider, ScopeProvider, ParentNodeProvider)

    def visit_Module(self, node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, node)
        calls = [loss_call for loss_call in flow.calls if loss_call.functional and loss_call.kinds == {"ce"}]
        # A focal loss may take pt from one unreduced cross-entropy and multiply it into another
        # (a label-smoothed one): once one stays [B, C] per label, its siblings in that function
        # must too, or [B, C] meets [B].
        self._per_label_functions = {
            self._function_of(loss_call.call)
            for loss_call in calls
            if reduction_mode(loss_call.call) == "none" and modulated_elementwise(self, loss_call.call)
        } - {None}
        for loss_call in calls:
            self._check(loss_call.call, loss_call.target)

    def _function_of(self, call: cst.Call) -> cst.FunctionDef | None:
        scope = self.get_metadata(ScopeProvider, call, None)
        return scope.node if isinstance(scope, FunctionScope) else None

    def _check(self, call: cst.Call, target: cst.Arg | None) -> None:
        keywords = keyword_arguments(call)
        if (
            target is None
            or "ignore_index" in keywords
            or len(positional_arguments(call)) > _SHARED_POSITIONS
            or any(arg.star for arg in call.args)
        ):
            self.report(
                call,
                "cross_entropy with ignore_index or options past weight passed by position has "
                "no direct binary_cross_entropy_with_logits equivalent",
                suggestion=IGNORE_INDEX_SUGGESTION,
            )
            return
        if is_class_index_target(self, target.value):
            message, suggestion = class_index_message(self, call, target.value, "F.binary_cross_entropy_with_logits")
            self.report(call, message, suggestion=suggestion)
            return
        if is_flattened(target.value):
            self.report(
                call,
                "the loss is computed on flattened class indices (labels.view(-1)); multi-label "
                "targets are [B, C] multi-hot rows",
                suggestion="use F.binary_cross_entropy_with_logits(logits, labels.float()) with [B, C] labels",
            )
            return

        reduction = reduction_mode(call)
        if reduction == "unknown":
            self.report(
                call,
                "cross_entropy's reduction is not a literal: if it can be 'none', "
                "binary_cross_entropy_with_logits would return a [B, C] loss where one value per "
                "sample is expected; left unchanged",
                suggestion=PER_SAMPLE_SUGGESTION,
            )
            return

        smoothing = keywords.get("label_smoothing")
        transform = smoothed_target(smoothing.value) if smoothing is not None else as_float_target
        edits = [NodeEdit(call.func, rename_functional)]
        notes = report_not_label_rows(self, target.value, converted=True)
        edits.extend(index_dtype_edits(notes))
        if not notes:
            edits.insert(0, NodeEdit(call, map_target(call, target, transform)))
        if smoothing is not None:
            # Runs after the target edit on the same node, so indices below it are unchanged.
            edits.append(NodeEdit(call, without_argument(call.args.index(smoothing))))
        elementwise = reduction == "none" and (
            modulated_elementwise(self, call) or self._function_of(call) in self._per_label_functions
        )
        if reduction == "none" and not elementwise:
            edits.append(NodeEdit(call, per_label_mean))  # last: the edits above address its arguments
        add_imports, remove_imports = functional_imports(call.func, f"{FUNCTIONAL_MODULE}.cross_entropy")

        message = "cross_entropy models one label per image; use binary_cross_entropy_with_logits on float multi-hot targets"
        message += smoothing_note(smoothing, notes)
        if reduction == "none":
            message += f"; {ELEMENTWISE_NOTE if elementwise else PER_SAMPLE_NOTE}"
        if "weight" in keywords or len(positional_arguments(call)) > 2:
            message += f"; {WEIGHT_NOTE}"
        self.report(
            call,
            message,
            fix=Fix(edits=tuple(edits), add_imports=add_imports, remove_imports=remove_imports, notes=notes),
        )
