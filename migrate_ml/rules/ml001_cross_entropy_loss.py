"""ML001: ``nn.CrossEntropyLoss`` becomes ``nn.BCEWithLogitsLoss``, with float targets."""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule
from migrate_ml.rules._exprs import (
    as_float_target,
    is_flattened,
    keyword_arguments,
    map_target,
    method_call,
    positional_arguments,
    smoothed_target,
    without_argument,
)
from migrate_ml.rules.semantics.bindings import reads_the_same_at
from migrate_ml.rules.semantics.flow import LossCall, LossConstruction, LossFlow, LossFlowProvider
from migrate_ml.rules.semantics.class_index import class_index_message, is_class_index_target
from migrate_ml.rules.semantics.class_index import index_dtype_edits, report_not_label_rows
from migrate_ml.rules.semantics.heads import other_head_calls, per_head_states, rebound, report_prediction_input
from migrate_ml.rules.semantics.reductions import modulated_elementwise
from migrate_ml.rules.semantics.sequences import is_sequence_function
from migrate_ml.rules.semantics.tasks import ReadsTheTrainedHead

_BCE = "BCEWithLogitsLoss"

WEIGHT_NOTE = (
    "weight= is kept: in BCEWithLogitsLoss it scales each label's loss (positives and negatives "
    "alike); to up-weight the positives of rare labels use pos_weight=negatives/positives per label"
)
IGNORE_INDEX_SUGGESTION = (
    "multi-hot targets have no ignored class index; to skip samples use reduction='none' and "
    "average over a mask: (loss * mask).sum() / mask.sum()"
)


PER_SAMPLE_NOTE = (
    "reduction='none': BCE's unreduced loss is [B, C], one value per label, where cross-entropy's "
    "is [B]; .mean(dim=1) averages it over the labels, so per-sample weights and masks still "
    "apply and the unweighted mean equals BCE's default reduction"
)
_SMOOTHING_DROPPED_NOTE = (
    "label_smoothing is dropped: a target left uncast (reported at its line) is not smoothed; "
    "once it is the float multi-hot rows, smooth it by hand, y*(1-e)+e/2"
)
ELEMENTWISE_NOTE = (
    "reduction='none': BCE's unreduced loss is [B, C], one value per label; it goes into an "
    "element-wise modulation (exp, as in a focal loss), which now weighs each label, so it is left "
    "per label (no .mean(dim=1))"
)
PER_SAMPLE_SUGGESTION = (
    "average BCE's unreduced [B, C] loss over the labels to get one loss per sample: "
    "unreduced_loss.mean(dim=1)"
)


def reduction_mode(call: cst.Call) -> str:
    """How a cross-entropy call or construction reduces: ``"none"`` (one loss per sample, from
    ``reduction="none"`` or the legacy ``reduce=False``), ``"reduced"``, or ``"unknown"`` when
    a reduction option is not a literal."""
    keywords = keyword_arguments(call)
    reduce = keywords.get("reduce")
    if reduce is not None:  # the legacy option overrides `reduction`
        if not (isinstance(reduce.value, cst.Name) and reduce.value.value in ("True", "False")):
            return "unknown"
        return "none" if reduce.value.value == "False" else "reduced"
    reduction = keywords.get("reduction")
    if reduction is None:
        return "reduced"
    if not isinstance(reduction.value, cst.SimpleString):
        return "unknown"
    return "none" if reduction.value.evaluated_value == "none" else "reduced"


def per_label_mean(call: cst.CSTNode) -> cst.CSTNode:
    """``loss(...)`` -> ``loss(...).mean(dim=1)``: BCE's [B, C] loss back to one value per sample.

    The mean rather than the sum over labels: averaged over the batch it equals BCE's default
    ``reduction="mean"``, so the loss keeps the scale of the reduced criterion."""
    tight = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
    return method_call(call, "mean", cst.Arg(keyword=cst.Name("dim"), value=cst.Integer("1"), equal=tight))


def smoothing_suggestion(epsilon: str) -> str:
    return (
        f"smooth the float targets at each call and drop the argument: "
        f"criterion(logits, targets.float() * (1 - {epsilon}) + {epsilon} / 2), or use "
        f"timm.loss.BinaryCrossEntropy(smoothing={epsilon}, smooth_dense=True)"
    )


def smoothing_note(smoothing: cst.Arg | None, uncast: Sequence[cst.CSTNode]) -> str:
    """What becomes of a cross-entropy's ``label_smoothing`` (``None`` where it has none): moved onto
    the targets, or dropped where a target is left uncast (``uncast``: the notes saying so)."""
    if smoothing is None:
        return ""
    if uncast:
        return f" ({_SMOOTHING_DROPPED_NOTE})"
    return " (label_smoothing moved onto the targets: y*(1-e)+e/2)"


def handed_over_note(construction: LossConstruction) -> str:
    """Names the other files of the run whose calls of this criterion get float targets."""
    if not construction.handed_over:
        return ""
    places = ", ".join(dict.fromkeys(f"{h.function}({h.parameter}) in {h.path}" for h in construction.handed_over))
    return f"; it is passed to {places}, whose loss calls get float targets in this run"


def passed_on_note(construction: LossConstruction) -> str:
    """Names the functions of the run's other files that this criterion is passed to, uncast."""
    if not construction.passed_on:
        return ""
    places = ", ".join(dict.fromkeys(f"{h.function}({h.parameter}) in {h.path}" for h in construction.passed_on))
    return f" (it is passed to {places} in this run)"


def cast_targets(
    rule: Rule, calls: Sequence[LossCall], transform: Callable[[cst.BaseExpression], cst.BaseExpression]
) -> tuple[list[NodeEdit], list[cst.CSTNode]]:
    """The edits passing each loss call's target through ``transform``, and the targets reported
    instead (not rows of labels: a cast would hide that they are not multi-hot)."""
    edits: list[NodeEdit] = []
    notes: list[cst.CSTNode] = []
    for loss_call in calls:
        uncast = report_not_label_rows(rule, loss_call.target.value, converted=True) if loss_call.target is not None else ()
        notes.extend(uncast)
        edits.extend(index_dtype_edits(uncast))
        if loss_call.target is not None and not uncast:
            edits.append(NodeEdit(loss_call.call, map_target(loss_call.call, loss_call.target, transform)))
    return edits, notes


def calls_all_rewritable(construction: LossConstruction, calls: list[LossCall]) -> bool:
    """Every use is a followed call of this criterion alone, so an edit of the call sites
    (smoothing moved onto the targets, a per-sample mean) reaches all of them; a call shared
    with another criterion (if/else) would change that branch too."""
    return (
        construction.uses_followed
        and bool(calls)
        and all(call.constructions == (construction,) and call.target is not None for call in calls)
    )


class CrossEntropyLossRule(ReadsTheTrainedHead, Rule):
    code = "ML001"
    name = "cross-entropy-loss"
    summary = "nn.CrossEntropyLoss becomes nn.BCEWithLogitsLoss, and the targets at its calls become float."
    rationale = (
        "CrossEntropyLoss applies a softmax across classes, so the scores compete and only one "
        "label can win: it models exactly one label per image. Multi-label training needs an "
        "independent sigmoid per label, which BCEWithLogitsLoss computes in a numerically "
        "stable way from the raw logits. BCEWithLogitsLoss needs float targets of the same "
        "shape as the logits ([B, C] multi-hot), so every call of the criterion that migrate-ml "
        "can follow (through names, `self.` attributes and the parameters of functions called in "
        "the same file) gets `.float()` on its target, after any `.to(device)` chain. Worse than "
        "a crash, CrossEntropyLoss fed float multi-hot targets still runs and trains the wrong "
        "objective, which is why this rule converts the criterion rather than the targets only. "
        "Every spelling is recognised (`nn.`, `torch.nn.`, from-imports, aliases, "
        "`CrossEntropyLoss()(z, y)`), and imports are fixed. `reduction` carries over; with "
        "`reduction='none'` each call also gets `.mean(dim=1)`, because BCE's unreduced loss is "
        "[B, C] where cross-entropy's is [B] (the mean, not the sum, over labels: averaged over "
        "the batch it equals BCE's default reduction), so per-sample weights and masks keep "
        "working, except where the unreduced loss goes into `exp` (a focal modulation, "
        "`(1 - exp(-ce)) ** gamma * ce`), which is element-wise and stays per label; "
        "where not every call can be followed, or the reduction is not a literal, "
        "the criterion is reported and left as it is. "
        "`weight` is kept (in BCE it scales each label's loss) with a note about `pos_weight`. "
        "`label_smoothing` moves onto the targets (`y*(1-e)+e/2`, which is label smoothing for "
        "independent binary labels) when every use of the criterion is a followed call; "
        "otherwise the criterion is reported and left as it is, never silently unsmoothed. "
        "Where not every use can be followed, the finding names the uses it could not follow "
        "(line and code). `ignore_index=-100` only repeats the default and is dropped; any other "
        "`ignore_index` has no BCE equivalent and is reported, as is a loss computed on "
        "flattened class indices (`labels.view(-1)`), which must become `[B, C]` multi-hot. "
        "A target that is not the label rows at all, a literal tensor of class indices "
        "(`torch.tensor([0, 2, 1])`) or one column of a label tensor (`label_g[:, 1]`), is left "
        "uncast and reported at its own line (ML010 reports it again on the rewritten text). A name "
        "bound to one criterion and later to another in straight-line code (a notebook) reaches "
        "only the calls after each binding. "
        "`criterion.half()`/`.cuda()`/`.to()` pass no targets and are not uses; a criterion "
        "passed to a function defined more than once (a notebook cell run again) is followed when "
        "every definition is, and one never read in a notebook or a script that runs code when "
        "loaded has no use to follow. Cross-entropy "
        "built or called where a sequence model runs (a recurrent state threaded through the "
        "model, `(Y, state) = rnn(X, state)`, or an arg-max fed back as the next input) is "
        "next-token prediction over a vocabulary, not image classification, and is left alone, as "
        "is every loss of a token model (a captioning decoder or a translation model: a model sized "
        "by a vocabulary, packed word targets, a loss ignoring a padding token), as "
        "is a file that only evaluates or attacks a library's pretrained model (ML100 "
        "`pretrained-untrained`), a segmentation file and a detection file (an SSD loss's cross-entropy "
        "over per-anchor logits). A criterion also called on another output is not switched: a "
        "second head of the module (a layer other than the one `forward` returns, beside a call on "
        "that one) or a model's output as the target (a denoising regression) keeps cross-entropy, so "
        "the criterion is reported, naming those calls, and nothing is edited; where its name is also "
        "bound to another loss (`self.loss = nn.MSELoss()` in another branch), those calls are left "
        "uncast and the class head's are converted. A call given a prediction (an arg-max, a "
        "threshold) where the logits belong is reported and left uncast, and cross-entropy over one "
        "head's states at a time (`logits[:, 0:3]`, logits viewed `[B, heads, states]`) is a "
        "multi-task model already and is left alone. A `label_smoothing` that reads a name "
        "a call does not see (`cfg` in `main`, the call in `validate(args)`) is never copied there: "
        "the criterion is reported and left."
    )
    applicability = Applicability.SAFE
    example_before = (
        "criterion = nn.CrossEntropyLoss(label_smoothing=0.1)\n"
        "loss = criterion(outputs, labels.to(device))\n"
    )
    example_after = (
        "criterion = nn.BCEWithLogitsLoss()\n"
        "loss = criterion(outputs, labels.to(device).float() * (1 - 0.1) + 0.1 / 2)\n"
    )
    triggers = ("CrossEntropyLoss",)
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, LossFlowProvider, ScopeProvider, ParentNodeProvider)

    def visit_Module(self, node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, node)
        self._sequence: dict[cst.FunctionDef, bool] = {}
        for construction in flow.constructions:
            if construction.kind == "ce" and construction.qualified_name.endswith(".CrossEntropyLoss"):
                if not self._in_sequence_model(construction, flow):
                    self._check(construction, flow)

    def _in_sequence_model(self, construction: LossConstruction, flow: LossFlow) -> bool:
        """Cross-entropy over a vocabulary, built or called where a sequence model runs
        (``semantics/sequences.py``): next-token prediction is one choice per step by design."""
        for node in (construction.call, *(c.call for c in flow.calls_of(construction))):
            function = self.get_metadata(ParentNodeProvider, node, None)
            while function is not None and not isinstance(function, cst.FunctionDef):
                function = self.get_metadata(ParentNodeProvider, function, None)
            if function is None:
                continue
            if function not in self._sequence:
                parsed = ast.parse(cst.Module(body=[function]).code).body[0]
                self._sequence[function] = is_sequence_function(parsed)
            if self._sequence[function]:
                return True
        return False

    def _check(self, construction: LossConstruction, flow: LossFlow) -> None:
        call = construction.call
        keywords = keyword_arguments(call)
        positional = positional_arguments(call)
        ignore_index = keywords.get("ignore_index")
        default_ignore = ignore_index is not None and _is_minus_100(ignore_index.value)
        if ("ignore_index" in keywords and not default_ignore) or len(positional) > 1 or any(arg.star for arg in call.args):
            self.report(
                call,
                "CrossEntropyLoss with ignore_index or positional options has no direct BCEWithLogitsLoss equivalent",
                suggestion=IGNORE_INDEX_SUGGESTION,
            )
            return

        calls = flow.calls_of(construction)
        if any(per_head_states(self, c) for c in calls):
            return  # each head's states exclude one another: a multi-task model already
        others = other_head_calls(self, calls)
        if others and not rebound(self, construction):
            self._report_shared(construction, others)
            return
        fed = [c for c in calls if report_prediction_input(self, c)]
        kept = [c for c in calls if c not in others and c not in fed]
        flattened = [c for c in calls if c.target is not None and is_flattened(c.target.value)]
        if flattened:
            self.report(
                flattened[0].call,
                "the loss is computed on flattened class indices (labels.view(-1)); multi-label "
                "targets are [B, C] multi-hot rows, so this loss cannot be converted mechanically",
                suggestion=(
                    "use BCEWithLogitsLoss()(logits, labels.float()) with labels of shape [B, C] "
                    "(keep logits as [B, C]: logits.view(-1, num_classes))"
                ),
            )
            return

        distilled = [c for c in calls if c.target is not None and is_class_index_target(self, c.target.value)]
        if distilled:
            message, suggestion = class_index_message(self, distilled[0].call, distilled[0].target.value, "criterion")
            self.report(distilled[0].call, message, suggestion=suggestion)
            return

        smoothing = keywords.get("label_smoothing")
        if smoothing is not None and not calls_all_rewritable(construction, calls):
            epsilon = cst.Module([]).code_for_node(smoothing.value)
            self.report(
                call,
                "CrossEntropyLoss(label_smoothing=...) is used where migrate-ml cannot follow "
                "every call, so the smoothing cannot be moved onto the targets; left unchanged",
                suggestion=smoothing_suggestion(epsilon),
            )
            return
        unseen = [c for c in calls if smoothing is not None and not reads_the_same_at(self, smoothing.value, c.target.value)]
        if unseen:
            epsilon = cst.Module([]).code_for_node(smoothing.value)
            line = self.get_metadata(PositionProvider, unseen[0].call).start.line
            self.report(
                call,
                f"CrossEntropyLoss(label_smoothing={epsilon}) reads names that the call at line {line} "
                "does not see (another function, its own parameters), so the smoothing cannot be "
                "moved onto the targets there; left unchanged",
                suggestion=smoothing_suggestion(epsilon),
            )
            return

        reduction = reduction_mode(call)
        if reduction == "unknown":
            self.report(
                call,
                "CrossEntropyLoss's reduction is not a literal: if it can be 'none', "
                "BCEWithLogitsLoss would return a [B, C] loss where one value per sample is "
                "expected; left unchanged",
                suggestion=PER_SAMPLE_SUGGESTION,
            )
            return
        if reduction == "none" and not calls_all_rewritable(construction, calls):
            self.report(
                call,
                "CrossEntropyLoss(reduction='none') is used where migrate-ml cannot follow every "
                "call: BCEWithLogitsLoss would return a [B, C] loss where a per-sample [B] one is "
                "expected; left unchanged",
                suggestion=PER_SAMPLE_SUGGESTION,
            )
            return

        edits = [NodeEdit(call.func, _rename_to_bce)]
        transform = as_float_target
        # ignore_index=-100 only repeats the default (nothing is ignored): it goes with the rest of CE
        dropped = [call.args.index(arg) for arg in (smoothing, ignore_index) if arg is not None]
        if dropped:
            edits.append(NodeEdit(call, without_argument(*dropped)))
        if smoothing is not None:
            transform = smoothed_target(smoothing.value)
        cast, notes = cast_targets(self, kept, transform)
        edits.extend(cast)
        for loss_call in kept:
            if reduction == "none" and not modulated_elementwise(self, loss_call.call):
                # after the target edit: that one addresses the loss call's own arguments
                edits.append(NodeEdit(loss_call.call, per_label_mean))

        add_imports: tuple[ImportEdit, ...] = ()
        remove_imports: tuple[ImportEdit, ...] = ()
        if isinstance(call.func, cst.Name):
            module, _, obj = construction.qualified_name.rpartition(".")
            asname = call.func.value if call.func.value != obj else None
            add_imports = (ImportEdit("torch.nn", _BCE),)
            remove_imports = (ImportEdit(module, obj, asname),)

        message = "CrossEntropyLoss models one label per image; use BCEWithLogitsLoss with float multi-hot targets"
        message += smoothing_note(smoothing, notes)
        if reduction == "none":
            elementwise = all(modulated_elementwise(self, c.call) for c in calls)
            message += f"; {ELEMENTWISE_NOTE if elementwise else PER_SAMPLE_NOTE}"
        if "weight" in keywords or positional:
            message += f"; {WEIGHT_NOTE}"
        message += handed_over_note(construction)
        message += self._other_loss_note(construction, others)
        self.report(
            call,
            message,
            fix=Fix(edits=tuple(edits), add_imports=add_imports, remove_imports=remove_imports, notes=tuple(notes)),
            extra_nodes=[c.call for c in kept],
        )
        if not construction.uses_accounted:
            self.report(
                call,
                "not every use of this criterion could be followed, so targets passed to it "
                "elsewhere were not cast" + self._unfollowed_note(construction) + passed_on_note(construction),
                suggestion="pass float multi-hot targets [B, C]: criterion(logits, targets.float())",
            )


    def _line_and_code(self, loss_call: LossCall) -> str:
        code = " ".join(cst.Module([]).code_for_node(loss_call.call).split())
        line = self.get_metadata(PositionProvider, loss_call.call).start.line
        return f"line {line}: {code if len(code) <= 60 else code[:57] + '...'}"

    def _report_shared(self, construction: LossConstruction, others: dict[LossCall, str]) -> None:
        """One criterion serves the class head and another output (a second head, a regression):
        BCE would be wrong for the other, so the criterion is reported and nothing is edited."""
        served = "; ".join(f"{self._line_and_code(c)}, where {why}" for c, why in others.items())
        self.report(
            construction.call,
            f"this criterion also serves calls that are not the class head ({served}): cross-entropy stays "
            "right there, so the shared criterion is left as it is",
            suggestion=(
                "construct a separate nn.BCEWithLogitsLoss() for the class head and give it float multi-hot "
                "targets, criterion(logits, labels.float()); keep this CrossEntropyLoss for the other calls"
            ),
        )

    def _other_loss_note(self, construction: LossConstruction, others: dict[LossCall, str]) -> str:
        """Names the calls left as they are because they reach the other loss the criterion's name is bound to."""
        if not others:
            return ""
        left = "; ".join(f"{self._line_and_code(c)}, where {why}" for c, why in others.items())
        bound = cst.Module([]).code_for_node(construction.target) if construction.target is not None else "the criterion"
        return f"; left as they are, since {bound} is also bound to another loss: {left}"

    def _unfollowed_note(self, construction: LossConstruction) -> str:
        """`` (line 21: Evaluator(model, criterion))``: where the uses it could not follow are."""
        places = []
        for node in construction.unfollowed:
            parent = self.get_metadata(ParentNodeProvider, node, None)
            shown = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else parent
            line = self.get_metadata(PositionProvider, node).start.line
            code = " ".join(cst.Module([]).code_for_node(shown if isinstance(shown, cst.Call) else node).split())
            places.append((line, f"line {line}: {code if len(code) <= 60 else code[:57] + '...'}"))
        # by line: the uses come from LibCST's reference sets, whose order differs from run to run
        return f" ({'; '.join(dict.fromkeys(text for _, text in sorted(places)))})" if places else ""


def _is_minus_100(value: cst.BaseExpression) -> bool:
    return (
        isinstance(value, cst.UnaryOperation)
        and isinstance(value.operator, cst.Minus)
        and isinstance(value.expression, cst.Integer)
        and value.expression.evaluated_value == 100
    )


def _rename_to_bce(func: cst.CSTNode) -> cst.CSTNode:
    if isinstance(func, cst.Attribute):
        return func.with_changes(attr=cst.Name(_BCE))
    return cst.Name(_BCE)
