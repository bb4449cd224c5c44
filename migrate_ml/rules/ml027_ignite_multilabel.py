"""ML027: pytorch-ignite metrics and supervised engines written for class indices."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import PositionProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule
from migrate_ml.rules._exprs import append_argument, keyword_arguments
from migrate_ml.rules.semantics.flow import ENGINE_LOSS_ARGUMENTS, LOSS_CLASSES, LOSS_FUNCTIONS, MULTI_LABEL_KINDS, LossFlow, LossFlowProvider, call_argument

_IGNITE_METRICS = "ignite.metrics."
THRESHOLDED_METRICS = frozenset({"Accuracy", "Precision", "Recall"})
"""ignite metrics with ``is_multilabel=True``: they take 0/1 predictions [B, C] and score them
per sample (Accuracy: exact match) or per label (Precision/Recall)."""
CLASS_INDEX_METRICS = {  # ConfusionMatrix is ML105's, with every other confusion matrix
    "TopKCategoricalAccuracy": "top-k accuracy has no multi-label meaning; report exact match (Accuracy(is_multilabel=True)), mAP or F1",
    "CategoricalAccuracy": "use Accuracy(output_transform=..., is_multilabel=True): exact match on thresholded sigmoid outputs",
}
_ENGINE_FACTORIES = frozenset({"ignite.engine.create_supervised_evaluator", *ENGINE_LOSS_ARGUMENTS})
_OWN_OUTPUT = frozenset({"output_transform", "model_transform", "model_fn"})
"""Arguments that change what a supervised engine outputs: with any of them the metrics may not
receive (logits, y)."""


def _threshold_transform(threshold_name: str) -> cst.Lambda:
    return cst.ensure_type(
        cst.parse_expression(
            f"lambda output: ((torch.sigmoid(output[0]) > {threshold_name}).long(), output[1].long())"
        ),
        cst.Lambda,
    )


class IgniteMultilabelRule(Rule):
    code = "ML027"
    name = "ignite-multilabel"
    summary = (
        "pytorch-ignite Accuracy/Precision/Recall get is_multilabel=True and a thresholded "
        "output_transform; criteria called by ignite engines get float targets."
    )
    rationale = (
        "ignite's `Accuracy()`, `Precision()` and `Recall()` default to single-label input: "
        "class-index targets and one score row per sample. Given multi-hot targets they raise "
        "or count the wrong thing. With `is_multilabel=True` they take 0/1 predictions and "
        "targets of shape [B, C]; Accuracy then is exact match (every label right), the "
        "accuracy hand-written loops get (ML021). The rewrite adds `is_multilabel=True` and an "
        "`output_transform` that thresholds the sigmoid of the logits (`(torch.sigmoid(y_pred) "
        "> THRESHOLD).long(), y.long()`). That is safe when the file's "
        "`create_supervised_evaluator` calls use the default output, `(logits, y)`; otherwise "
        "(a custom evaluator, or no evaluator in the file) it is an unsafe fix. A metric given its "
        "own `output_transform` is reported. `TopKCategoricalAccuracy` and `CategoricalAccuracy` "
        "are reported with their multi-label counterparts (`ConfusionMatrix` by ML105). ignite's "
        "`create_supervised_trainer(model, optimizer, loss_fn)` and `Loss(loss_fn)` call "
        "`loss_fn(y_pred, y)` with the loader's labels, which BCE-with-logits needs as float: "
        "a criterion proven BCE is wrapped as `lambda y_pred, y: criterion(y_pred, y.float())` "
        "(no-op for float labels); any other criterion passed there is reported. Where an engine or "
        "`Loss` metric is given `nll_loss`, the model outputs log-probabilities: its metrics are "
        "reported, not thresholded through a sigmoid."
    )
    applicability = Applicability.SAFE
    example_before = (
        "evaluator = create_supervised_evaluator(model, metrics={\"accuracy\": Accuracy()})\n"
    )
    example_after = (
        "evaluator = create_supervised_evaluator(model, metrics={\"accuracy\": Accuracy(\n"
        "    output_transform=lambda output: ((torch.sigmoid(output[0]) > THRESHOLD).long(), output[1].long()),\n"
        "    is_multilabel=True)})\n"
    )
    triggers = ("ignite",)
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider, ScopeProvider, LossFlowProvider)

    def __init__(self, context) -> None:
        super().__init__(context)
        self._metrics: list[tuple[cst.Call, str]] = []
        self._engines: list[tuple[cst.Call, str]] = []

    def visit_Call(self, node: cst.Call) -> None:
        for name in (q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())):
            if name in _ENGINE_FACTORIES:
                self._engines.append((node, name))
                return
            if not name.startswith(_IGNITE_METRICS):
                continue
            short = name.rpartition(".")[2]
            if short in THRESHOLDED_METRICS or short in CLASS_INDEX_METRICS:
                self._metrics.append((node, short))
                return

    def leave_Module(self, original_node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, original_node)
        evaluators = [call for call, name in self._engines if name == "ignite.engine.create_supervised_evaluator"]
        default_output = bool(evaluators) and not any(
            keyword_arguments(call).keys() & _OWN_OUTPUT for call in evaluators
        )
        self._nll_line = next(
            (line for call, name in self._engines if name in ENGINE_LOSS_ARGUMENTS
             for line in [self._nll_argument(call, *ENGINE_LOSS_ARGUMENTS[name], flow)] if line),
            None,
        )
        """Where an engine or ``Loss`` metric is given ``nll_loss``: the model's outputs are then
        log-probabilities (a log_softmax head), whose sigmoid is no per-label probability."""
        for call, short in self._metrics:
            self._check_metric(call, short, default_output)
        for call, name in self._engines:
            if name in ENGINE_LOSS_ARGUMENTS:
                index, keyword = ENGINE_LOSS_ARGUMENTS[name]
                self._check_loss_argument(call, index, keyword, name.rpartition(".")[2], flow)

    def _check_metric(self, call: cst.Call, short: str, default_output: bool) -> None:
        if short in CLASS_INDEX_METRICS:
            self.report(call, f"ignite {short} scores one class per sample", suggestion=CLASS_INDEX_METRICS[short])
            return
        keywords = keyword_arguments(call)
        if "is_multilabel" in keywords:
            return
        suggestion = (
            f"{short}(output_transform=lambda output: ((torch.sigmoid(output[0]) > THRESHOLD).long(), "
            "output[1].long()), is_multilabel=True)"
        )
        if "output_transform" in keywords or any(arg.keyword is None or arg.star for arg in call.args):
            self.report(
                call,
                f"ignite {short} without is_multilabel=True scores class indices; its own "
                "output_transform must produce 0/1 predictions [B, C]",
                suggestion=suggestion,
            )
            return
        if self._nll_line is not None:
            self.report(
                call,
                f"ignite {short} without is_multilabel=True scores class indices; the model is trained "
                f"with nll_loss (line {self._nll_line}), so it outputs log-probabilities, whose sigmoid "
                "is no per-label probability: once its head returns raw logits for BCEWithLogitsLoss, "
                "threshold their sigmoid",
                suggestion=suggestion,
            )
            return
        threshold = self.context.threshold_name

        def apply(updated: cst.Call) -> cst.Call:
            equal = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))
            args = list(updated.args)
            added = (("output_transform", _threshold_transform(threshold)), ("is_multilabel", cst.Name("True")))
            for keyword, value in added:
                args = append_argument(
                    args, cst.Arg(keyword=cst.Name(keyword), value=value, equal=equal), updated.whitespace_before_args
                )
            return updated.with_changes(args=args)

        proof = "" if default_output else " (unsafe: no create_supervised_evaluator with the default (logits, y) output was found)"
        self.report(
            call,
            f"ignite {short} without is_multilabel=True scores class indices; threshold the sigmoid "
            f"of the logits and score multi-hot rows{proof}",
            suggestion=suggestion,
            fix=Fix(
                edits=(NodeEdit(call, apply),),
                applicability=Applicability.SAFE if default_output else Applicability.UNSAFE,
                add_imports=(ImportEdit("torch"),),
                needs_threshold=True,
            ),
        )

    def _check_loss_argument(self, call: cst.Call, index: int, keyword: str, owner: str, flow: LossFlow) -> None:
        argument = call_argument(call, index, keyword)
        if argument is None or isinstance(argument.value, cst.Lambda):
            return
        value = argument.value
        kinds = self._criterion_kinds(value, flow)
        if kinds and not kinds <= MULTI_LABEL_KINDS:
            return  # a single-label criterion: the loss rules convert or report it, then it is wrapped
        if kinds and kinds <= MULTI_LABEL_KINDS and isinstance(value, cst.Name):
            wrapped = cst.ensure_type(
                cst.parse_expression(f"lambda y_pred, y: {value.value}(y_pred, y.float())"), cst.Lambda
            )
            self.report(
                call,
                f"ignite {owner} calls {value.value}(y_pred, y) with the loader's labels; "
                "BCE-with-logits needs them float",
                fix=Fix(edits=(NodeEdit(argument, lambda updated: updated.with_changes(value=wrapped)),)),
            )
            return
        self.report(
            call,
            f"ignite {owner} calls its loss on (y_pred, y) with the loader's labels: a single-label "
            "loss there stays single-label, and BCE-with-logits needs float labels",
            suggestion=f"build a BCEWithLogitsLoss and pass lambda y_pred, y: criterion(y_pred, y.float()) to {owner}",
        )

    def _nll_argument(self, call: cst.Call, index: int, keyword: str, flow: LossFlow) -> int | None:
        """The line of ``call`` when the loss it is given is ``F.nll_loss``, ``nn.NLLLoss()`` or a
        name bound only to an ``NLLLoss``."""
        argument = call_argument(call, index, keyword)
        if argument is None:
            return None
        value = argument.value
        named = value.func if isinstance(value, cst.Call) else value
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, named, set())}
        table = LOSS_CLASSES if isinstance(value, cst.Call) else LOSS_FUNCTIONS
        nll = any(table.get(name) == "nll" for name in qualified) or self._criterion_kinds(value, flow) == {"nll"}
        return self.get_metadata(PositionProvider, call).start.line if nll else None

    def _criterion_kinds(self, value: cst.BaseExpression, flow: LossFlow) -> set[str]:
        """The kinds of the criteria a name is bound to, when every binding builds one."""
        scope = self.get_metadata(ScopeProvider, value, None) if isinstance(value, cst.Name) else None
        if scope is None:
            return set()
        by_target = {c.target: c.kind for c in flow.constructions if c.target is not None}
        bound = [getattr(assignment, "node", None) for assignment in scope[value.value]]
        if not bound or any(node not in by_target for node in bound):
            return set()
        return {by_target[node] for node in bound}
