"""ML023: arg-max predictions fed to scikit-learn / Hugging Face metrics become thresholded multi-hot.

The rule is split by idiom: the logits proofs (Hugging Face ``compute_metrics``, ``trainer.predict``,
model output as NumPy) are in ``_metrics_hf``, the NumPy arg-max (its decision, its uses and its
rewrite or report) in ``_metrics_numpy``, the scikit-learn metric table and ``average`` fix in
``_metrics_sklearn``; this module keeps the rule, its dispatch and the metrics given an arg-max taken
elsewhere.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace

import libcst as cst
from libcst.metadata import (
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule
from migrate_ml.rules._prefilter import parse_once, text_facts
from migrate_ml.rules.semantics import metrics_given_argmax
from migrate_ml.rules.semantics.metrics import PREDICTION_METRICS, SINGLE_LABEL_ONLY
from migrate_ml.rules.semantics.helpers import calls_given_argmax
from migrate_ml.rules._metrics_hf import EVALUATE_LOADS, LogitsProofs, single_label_evaluate_load
from migrate_ml.rules._metrics_numpy import NumpyPredictions
from migrate_ml.rules._metrics_sklearn import SklearnMetrics
from migrate_ml.rules.semantics.prediction_provider import PredictionFlowProvider
from migrate_ml.rules.semantics.predictions import PredictionFlow

_METRIC_MARKER = re.compile(
    r"accuracy_score|f1_score|precision_score|recall_score|fbeta_score|jaccard_score"
    r"|precision_recall_fscore_support|classification_report|hamming_loss|compute_metrics|add_batch\("
    r"|\bnp\.argmax|numpy\.argmax|argmax\(\s*axis"
)
"""A metric that could receive the arg-max, or a NumPy arg-max (accuracy helpers compare it with
``==``); files with ``argmax`` but none of these are skipped."""
_EVALUATE_LOAD = re.compile(r"\b(?:evaluate\.load|load_metric)\(")
_LABEL_COLUMN_METRIC = re.compile(r"_score\(\s*(?:y_true\s*=\s*)?\w+(?:\.(?:label|target|class\w*|category)\b|\[[\"'](?:label|target|class\w*|category)[\"']\])")


_ON_ROWS = {
    "accuracy_score": "it is then subset accuracy (exact match)",
    "classification_report": "it then reports each label's precision, recall and F1",
    "hamming_loss": "it is then the fraction of wrong label decisions",
    "zero_one_loss": "it is then the fraction of samples with any wrong label",
}
"""What a class-decision metric computes on multi-hot rows, where it needs no ``average``."""


class SklearnHfMetricsRule(LogitsProofs, NumpyPredictions, SklearnMetrics, Rule):
    code = "ML023"
    name = "sklearn-hf-metrics"
    summary = (
        "np.argmax(logits, axis=-1) fed to accuracy_score/f1_score/compute_metrics becomes a thresholded "
        "multi-hot prediction, with an `average` valid for multi-label input."
    )
    rationale = (
        "Hugging Face `compute_metrics(eval_pred)` functions and scikit-learn evaluation code take "
        "`np.argmax(logits, axis=-1)`: one class index per sample, which cannot represent two "
        "labels, nor none, and which scikit-learn compares as multiclass targets against the "
        "multi-hot labels (it raises 'mix of multilabel-indicator and multiclass'). The "
        "prediction becomes the multi-hot decision `1 / (1 + np.exp(-logits)) > THRESHOLD` "
        "(`expit(logits) > THRESHOLD` when `scipy.special.expit` is already imported): the same "
        "sigmoid and strict `>` as the PyTorch rewrite (ML020), in NumPy, since these functions "
        "receive NumPy arrays. scikit-learn then scores multi-label indicators: "
        "`accuracy_score` becomes subset accuracy (exact match, as ML021), an accuracy written "
        "by hand (`(predictions == labels).mean()`, `np.sum(preds == labels) / labels.size`) "
        "becomes exact match too, `(predictions == labels.astype(bool)).all(axis=1)` with "
        "`labels.size` read as `len(labels)`, and "
        "`f1_score`/`precision_score`/`recall_score`/`fbeta_score`/`jaccard_score` need an "
        "`average` other than their default `\"binary\"`, which raises on multi-label input: a "
        "missing or `\"binary\"` average becomes `\"micro\"` (pooled over every label "
        "decision), while `\"macro\"`, `\"micro\"`, `\"weighted\"`, `\"samples\"` and `None` are "
        "kept. The same `average` fix is made when a PyTorch prediction rewritten by ML020 "
        "reaches one of these functions, in the same fix. The rewrite is GUARDED: the arg-max "
        "must be taken over the classifier's logits, proven as the first element of "
        "`compute_metrics`' `eval_pred` (`logits, labels = eval_pred`, `eval_pred.predictions`), "
        "`trainer.predict(ds).predictions`, a model call's output (`model(x)`, "
        "`outputs.logits`) converted with `.detach().cpu().numpy()`, or the parameter of a "
        "helper (`def accuracy(outputs, labels)`) that every call in the file feeds such "
        "logits; and every use of the prediction must be one of these metrics or an "
        "accuracy comparison with the labels. `np.argmax(val_scores)` (model selection) "
        "and arg-max over probabilities are left alone or reported. Arg-max rows appended per "
        "batch and joined after the loop (`np.concatenate(all_preds)`, timm's `validate.py`) "
        "before a scikit-learn metric are reported with the multi-hot row to append instead; "
        "the rewrite is offered as an unsafe fix only when the `np.argmax` is the direct "
        "argument of `.append`, the list starts empty and is only concatenated into metrics, "
        "and no metric takes `average=` from a variable: a flag-driven average (`average="
        "args.metrics_avg`) is reported, since it must not be `\"binary\"` for multi-hot input. "
        "A Hugging Face `evaluate` "
        "metric (`evaluate.load(\"accuracy\")`, `evaluate.load(\"glue\", \"mrpc\")`, "
        "`metric.add_batch(predictions=...)`) is reported for review where it is loaded and "
        "where the arg-max feeds it, not rewritten: its single-label configuration rejects multi-hot "
        "rows, and it must be loaded as `evaluate.load(\"f1\", \"multilabel\")` with "
        "`average=\"micro\"` (or `evaluate.load(\"accuracy\", \"multilabel\")` for exact match), "
        "fed integer arrays. A helper that only returns a scikit-learn metric of its parameters "
        "(`def get_score(y_true, y_pred): return accuracy_score(y_true, y_pred)`) is reported at "
        "that metric when a call of it in the file passes an arg-max (`get_score(labels, "
        "preds.argmax(1))`, which the safety net reports at the call). An arg-max collected into a list, "
        "returned by a function of the file or passed to one of its parameters (`y_true, y_pred = "
        "predict(model, loader)`, then `f1_score(y_true, y_pred)`) is followed to each scikit-learn or "
        "imbalanced-learn metric that scores it, which is reported there: once the predictions are "
        "multi-hot rows its `y_true` must be multi-hot rows too, and `balanced_accuracy_score`, "
        "`matthews_corrcoef`, `cohen_kappa_score` and imbalanced-learn's metrics reject them."
    )
    applicability = Applicability.SAFE
    example_before = (
        "def compute_metrics(eval_pred):\n"
        "    logits, labels = eval_pred\n"
        "    predictions = np.argmax(logits, axis=-1)\n"
        "    return {\"accuracy\": accuracy_score(labels, predictions),\n"
        "            \"f1\": f1_score(labels, predictions)}\n"
    )
    example_after = (
        "THRESHOLD = 0.5\n"
        "def compute_metrics(eval_pred):\n"
        "    logits, labels = eval_pred\n"
        "    predictions = 1 / (1 + np.exp(-logits)) > THRESHOLD\n"
        "    return {\"accuracy\": accuracy_score(labels, predictions),\n"
        "            \"f1\": f1_score(labels, predictions, average=\"micro\")}\n"
    )
    triggers = ("argmax",)
    METADATA_DEPENDENCIES = (
        *Rule.METADATA_DEPENDENCIES,
        QualifiedNameProvider,
        ScopeProvider,
        ParentNodeProvider,
        PredictionFlowProvider,
    )

    @classmethod
    def could_apply(cls, source: str) -> bool:
        # Each regex runs only where its literal occurs: a scan for a literal is far cheaper.
        return (
            (super().could_apply(source) and _METRIC_MARKER.search(source) is not None)
            or (text_facts(source).has_any(("evaluate.load(", "load_metric(")) and _EVALUATE_LOAD.search(source) is not None)
            or (text_facts(source).has("_score(") and _LABEL_COLUMN_METRIC.search(source) is not None)
            # torch.max(out, 1)[1] and top-k indices are arg-maxes too, when a metric scores them further on
            or (text_facts(source).has_any((".max(", "topk(")) and _METRIC_MARKER.search(source) is not None)
        )

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node
        self._flow: PredictionFlow = self.get_metadata(PredictionFlowProvider, node)
        self._candidates: list[cst.Call] = []
        self._average_edits: dict[int, NodeEdit | None] = {}
        self._reported_averages: set[int] = set()
        self._sizes: list[cst.Attribute] = []
        self._helper_calls: dict[str, list[cst.Call]] = {}
        """Calls by name: the logits proof follows a helper's parameter to every call of it."""
        self._metric_helpers: dict[str, tuple[cst.Call, str]] = {}
        """``def get_score(y_true, y_pred): return accuracy_score(y_true, y_pred)``: the helper's metric call."""
        self._decision_metrics: dict[int, list[cst.Call]] = {}
        """Class-decision metric calls (:data:`PREDICTION_METRICS`) by line: where an arg-max taken
        elsewhere may reach them."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        body = node.body.body
        last = body[-1] if body else None
        statement = last.body[0] if isinstance(last, cst.SimpleStatementLine) and last.body else None
        value = statement.value if isinstance(statement, cst.Return) else None
        if isinstance(value, cst.Call):
            metric = self._sklearn_metric(value)
            if metric is not None:
                self._metric_helpers[node.name.value] = (value, metric)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value == "size":
            self._sizes.append(node)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name):
            self._helper_calls.setdefault(node.func.value, []).append(node)
        if self._qualified(node.func) & PREDICTION_METRICS:
            self._decision_metrics.setdefault(self._line(node), []).append(node)
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "argmax":
            self._candidates.append(node)
        elif (column := self._label_column(node)) is not None:
            self.report(
                node,
                f"the references are the table's one `{column}` column: one class index per example",
                suggestion=(
                    "score multi-hot rows: y_true = df[label_columns].values (one 0/1 column per label) against "
                    f"y_pred = probs > {self.context.threshold_name}; accuracy_score is then exact match"
                ),
            )
        elif self._qualified(func) & EVALUATE_LOADS:
            loaded = single_label_evaluate_load(node)
            if loaded is not None:
                self.report(
                    node,
                    f"{self._module.code_for_node(func)}({loaded}) scores one class index per example; multi-hot rows need a multilabel configuration",
                    suggestion=(
                        "load evaluate.load(\"f1\", \"multilabel\") and call compute(..., average=\"micro\") (or "
                        "evaluate.load(\"accuracy\", \"multilabel\") for exact match), fed thresholded 0/1 rows "
                        "and integer multi-hot references"
                    ),
                )

    def leave_Module(self, original_node: cst.Module) -> None:
        text = original_node.code if self._metric_helpers else ""
        fed_calls = self._calls_given_argmax(text) if text else {}
        for helper, (metric_call, metric) in self._metric_helpers.items():
            fed = fed_calls.get(helper)
            if fed is not None:
                self.report(
                    metric_call,
                    f"{helper}() is given arg-max class indices (`{ast.get_source_segment(text, fed)}`): its {metric} "
                    "scores one class per image",
                    suggestion=(
                        f"give it multi-hot rows: y_pred = probs > {self.context.threshold_name} against the multi-hot "
                        "labels (accuracy_score is then exact match; f1/precision/recall need average=\"samples\" or \"micro\")"
                    ),
                )
        handled_by_torch_rules = {id(p.node) for p in self._flow.predictions}
        for call in self._candidates:
            if id(call) not in handled_by_torch_rules:
                self._numpy_prediction(call)
        for prediction in self._flow.predictions:
            if prediction.proven and not prediction.blocked:
                self._torch_prediction_average(prediction)
        if self._decision_metrics:
            self._metrics_given_argmax(text or original_node.code)  # the module is printed once

    def _metrics_given_argmax(self, text: str) -> None:
        """A metric scoring arg-max predictions that reach it through a list, a function's return
        or a parameter (``y_true, y_pred = predict(model, loader)``; ``report(y_true, y_pred)``),
        reported at the metric unless this rule already reports or edits that call.

        Where a safe fix rewrites the arg-max, a metric that scores multi-hot rows as they are
        (:meth:`_takes_rows_as_is`) needs nothing more and is not reported; any other keeps its
        finding as a note of that fix, shared with the rule that makes it, since the rewritten text
        no longer shows where the rows come from."""
        try:
            tree = parse_once(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        own = [violation for violation in self.context.violations if violation.code == self.code]
        handled = {
            id(node)
            for violation in own
            for node in (violation.node, *violation.extra_nodes, *(e.node for e in (violation.fix.edits if violation.fix else ())))
        }
        # An arg-max this rule reports itself has its metrics reported with it, or by the safety net
        # pointing at it.
        own_lines = {self._line(violation.node) for violation in own}
        fixes: dict[int, Fix] = {}
        for prediction in self._flow.predictions:
            if prediction.proven and not prediction.blocked:
                fixes.setdefault(self._line(prediction.node), self._flow.fix_for(prediction, self.context.threshold_name))
        notes: dict[int, list[cst.Call]] = {}
        for scored in metrics_given_argmax(tree, text):
            name = scored.metric
            call = next((c for c in self._decision_metrics.get(scored.call.lineno, ()) if self._metric_name(c) == name), None)
            if call is None or id(call) in handled or scored.line in own_lines:
                continue
            handled.add(id(call))
            fix = fixes.get(scored.line)
            rewritten = fix is not None and fix.applicability is Applicability.SAFE
            if rewritten and self._takes_rows_as_is(call):
                continue  # the run gives it multi-hot rows, which it scores as they are
            given = ast.get_source_segment(text, scored.predictions) or name
            if name in SINGLE_LABEL_ONLY:
                message = (
                    f"{name} scores `{given}`, predictions of an arg-max over the classes (one class per sample), "
                    "and it rejects the multi-hot rows they migrate to"
                )
                suggestion = "score each label's column on its own (y_true[:, j], y_pred[:, j]), or report F1/mAP instead"
            else:
                message = (
                    f"{name} scores `{given}`, predictions of an arg-max over the classes (one class per sample) "
                    "until they are migrated to multi-hot rows: its y_true must then be multi-hot [N, C] rows too"
                )
                suggestion = (
                    f"give it multi-hot rows, probs > {self.context.threshold_name} on sigmoid probabilities, and "
                    "multi-hot labels: "
                    + _ON_ROWS.get(name, 'it then needs an average other than "binary" ("micro", "macro", "weighted" or "samples")')
                )
            self.report(call, message, suggestion=suggestion)
            if rewritten:
                notes.setdefault(scored.line, []).append(call)
        for line, calls in notes.items():
            fix = fixes[line]
            names = ", ".join(dict.fromkeys(self._metric_name(call) for call in calls))
            self.report(
                fix.edits[0].node,
                f"arg-max predicts exactly one label per sample, and {names} further on scores these predictions (see the findings there)",
                fix=replace(fix, notes=(*fix.notes, *calls)),
            )

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _metric_name(self, call: cst.Call) -> str:
        return next(iter(sorted(self._qualified(call.func) & PREDICTION_METRICS)), "").rpartition(".")[2]

    def _calls_given_argmax(self, text: str) -> dict[str, ast.Call]:
        """The first call of each metric helper that passes an arg-max (the analysis' own test, on ``ast``)."""
        try:
            tree = parse_once(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return {}  # LibCST's grammar is not CPython's: what ast rejects has no call to follow
        return calls_given_argmax(tree, set(self._metric_helpers))

    def _torch_prediction_average(self, prediction) -> None:
        if prediction.binding is not None:
            consumers = self._reads(prediction.binding, self._statement(prediction.binding))
        else:
            consumers = [self._through_chain(prediction.node)]
        consumers, accumulations = self._follow_accumulations(consumers)
        metric_calls, _, _, _ = self._classify(consumers)
        if accumulations:
            self._report_flag_averages(metric_calls)
        edits = [edit for edit in (self._average_edit(metric) for metric in metric_calls) if edit is not None]
        if not edits:
            return
        base = self._flow.fix_for(prediction, self.context.threshold_name)
        for edit in edits:
            self.report(
                edit.node,
                "the multi-hot prediction reaches a binary-average metric, which rejects multi-label input; average over every label decision",
                fix=Fix(edits=(*base.edits, edit), add_imports=base.add_imports, needs_threshold=True),
                extra_nodes=[prediction.node],
            )
