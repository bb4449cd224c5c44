"""ML023: arg-max predictions fed to scikit-learn / Hugging Face metrics become thresholded multi-hot."""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import (
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    QualifiedNameSource,
    ScopeProvider,
)

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule
from migrate_ml.rules._exprs import parenthesize
from migrate_ml.rules._flow import call_argument
from migrate_ml.rules._predictions import (
    PredictionFlow,
    PredictionFlowProvider,
    above_threshold,
    dim_value,
    is_model_callee,
    strip_transparent,
)

_METRIC_MARKER = re.compile(
    r"accuracy_score|f1_score|precision_score|recall_score|fbeta_score|jaccard_score"
    r"|precision_recall_fscore_support|classification_report|hamming_loss|compute_metrics|add_batch\("
)
"""A metric that could receive the arg-max; files with ``argmax`` but none of these are skipped."""

_SKLEARN_AVERAGE_DEFAULT = {
    "f1_score": "binary",
    "precision_score": "binary",
    "recall_score": "binary",
    "fbeta_score": "binary",
    "jaccard_score": "binary",
    "precision_recall_fscore_support": None,
}
"""scikit-learn metrics taking ``average=``, with their default (``binary`` rejects multi-hot input)."""
_SKLEARN_MULTILABEL = frozenset({"accuracy_score", "classification_report", "hamming_loss", *_SKLEARN_AVERAGE_DEFAULT})
"""scikit-learn metrics that accept a multi-label indicator ``y_pred`` (accuracy_score: subset accuracy)."""
_EVALUATE_FEEDS = frozenset({"compute", "add_batch", "add"})
_ARRAY_CHAIN = frozenset({"numpy", "cpu", "detach", "tolist", "cuda", "to"})
"""Conversions between the arg-max and the metric, or between the model output and the arg-max."""
_PREDICT_METHODS = frozenset({"predict"})
"""``trainer.predict(ds).predictions`` holds the logits, as ``EvalPrediction.predictions`` does."""
_ACCUMULATE_METHODS = frozenset({"append", "extend"})
_CONCATENATE_FUNCTIONS = frozenset({"numpy.concatenate", "torch.cat", "torch.concatenate"})
_JOIN_FUNCTIONS = _CONCATENATE_FUNCTIONS | {"numpy.stack", "torch.stack", "numpy.array", "numpy.asarray"}
"""How per-batch rows are joined after the loop; only the concatenating ones keep ``[B, C]`` rows ``[N, C]``."""
_LITERAL_AVERAGES = (cst.SimpleString, cst.ConcatenatedString)


@dataclass
class _Accumulation:
    """A prediction appended to a list per batch, and what the list is turned into and fed to."""

    append: cst.Call
    joins: list[cst.Call]
    consumers: list[cst.CSTNode]
    """Every use of the joined arrays (as ``_consumers`` finds them), and the list itself passed to a metric."""
    other_uses: bool
    """The list is also read otherwise: appended elsewhere, printed, passed as is, re-bound from a non-empty value."""


def _string_like(original: cst.SimpleString, value: str) -> cst.SimpleString:
    return cst.SimpleString(f"{original.prefix}{original.quote}{value}{original.quote}")


def _module_alias(module: cst.Module, name: str) -> str | None:
    """The name a module-level ``import name [as alias]`` binds; None when there is none."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    if isinstance(alias.name, cst.Name) and alias.name.value == name:
                        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                            return alias.asname.name.value
                        return name
    return None


def _expit_alias(module: cst.Module) -> str | None:
    """The name ``scipy.special.expit`` is imported as at module level, if it is."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if (
                isinstance(small, cst.ImportFrom)
                and small.module is not None
                and cst.Module(body=[]).code_for_node(small.module) == "scipy.special"
                and not isinstance(small.names, cst.ImportStar)
            ):
                for alias in small.names:
                    if isinstance(alias.name, cst.Name) and alias.name.value == "expit":
                        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                            return alias.asname.name.value
                        return "expit"
    return None


class SklearnHfMetricsRule(Rule):
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
        "`accuracy_score` becomes subset accuracy (exact match, as ML021), and "
        "`f1_score`/`precision_score`/`recall_score`/`fbeta_score`/`jaccard_score` need an "
        "`average` other than their default `\"binary\"`, which raises on multi-label input: a "
        "missing or `\"binary\"` average becomes `\"micro\"` (pooled over every label "
        "decision), while `\"macro\"`, `\"micro\"`, `\"weighted\"`, `\"samples\"` and `None` are "
        "kept. The same `average` fix is made when a PyTorch prediction rewritten by ML020 "
        "reaches one of these functions, in the same fix. The rewrite is GUARDED: the arg-max "
        "must be taken over the classifier's logits, proven as the first element of "
        "`compute_metrics`' `eval_pred` (`logits, labels = eval_pred`, `eval_pred.predictions`), "
        "`trainer.predict(ds).predictions`, or a model call's output (`model(x)`, "
        "`outputs.logits`) converted with `.detach().cpu().numpy()`; and every use of the "
        "prediction must be one of these metrics. `np.argmax(val_scores)` (model selection) "
        "and arg-max over probabilities are left alone or reported. Arg-max rows appended per "
        "batch and joined after the loop (`np.concatenate(all_preds)`, timm's `validate.py`) "
        "before a scikit-learn metric are reported with the multi-hot row to append instead; "
        "the rewrite is offered as an unsafe fix only when the `np.argmax` is the direct "
        "argument of `.append`, the list starts empty and is only concatenated into metrics, "
        "and no metric takes `average=` from a variable: a flag-driven average (`average="
        "args.metrics_avg`) is reported, since it must not be `\"binary\"` for multi-hot input. "
        "A Hugging Face `evaluate` "
        "metric (`evaluate.load(\"accuracy\")`, `metric.add_batch(predictions=...)`) is "
        "reported for review, not rewritten: its single-label configuration rejects multi-hot "
        "rows, and it must be loaded as `evaluate.load(\"f1\", \"multilabel\")` with "
        "`average=\"micro\"` (or `evaluate.load(\"accuracy\", \"multilabel\")` for exact match), "
        "fed integer arrays."
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
        return super().could_apply(source) and _METRIC_MARKER.search(source) is not None

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node
        self._flow: PredictionFlow = self.get_metadata(PredictionFlowProvider, node)
        self._candidates: list[cst.Call] = []
        self._average_edits: dict[int, NodeEdit | None] = {}
        self._reported_averages: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "argmax":
            self._candidates.append(node)

    def leave_Module(self, original_node: cst.Module) -> None:
        handled_by_torch_rules = {id(p.node) for p in self._flow.predictions}
        for call in self._candidates:
            if id(call) not in handled_by_torch_rules:
                self._numpy_prediction(call)
        for prediction in self._flow.predictions:
            if prediction.proven and not prediction.blocked:
                self._torch_prediction_average(prediction)

    # -- NumPy arg-max predictions ----------------------------------------------------------------

    def _numpy_prediction(self, call: cst.Call) -> None:
        scores = self._argmax_scores(call)
        if scores is None:
            return
        statement = self._statement(call)
        direct_consumers = self._consumers(call, statement)
        consumers, accumulations = self._follow_accumulations(direct_consumers)
        metric_calls, evaluate_feeds, blocked = self._classify(consumers)
        in_compute_metrics = self._in_compute_metrics(call)
        if not (metric_calls or evaluate_feeds or in_compute_metrics):
            return  # an arg-max that reaches no metric: not this rule's business
        # `z.argmax(axis=1)` on a tensor is torch's own arg-max, possibly on the GPU: NumPy's sigmoid
        # only fits it when the scores were converted with .numpy(); np.argmax already needed that.
        tensor_ok = bool(self._qualified(call.func) & {"numpy.argmax"})
        if not self._is_logits(scores, self._excluded(statement), 0, tensor_ok):
            if metric_calls or evaluate_feeds:
                self.report(
                    call,
                    "this arg-max feeds a metric, but migrate-ml cannot prove it is taken over the classifier's logits",
                    suggestion=(
                        f"if it is, predict every label above the threshold: "
                        f"preds = 1 / (1 + np.exp(-logits)) > {self.context.threshold_name}, "
                        "and pass average=\"micro\" (or \"samples\") to f1/precision/recall"
                    ),
                )
            return
        if evaluate_feeds:
            self.report(
                call,
                "a Hugging Face `evaluate` metric scores one class per sample; its multi-label form needs another configuration",
                suggestion=(
                    "load it as evaluate.load(\"f1\", \"multilabel\") and call compute(..., average=\"micro\") "
                    "(or evaluate.load(\"accuracy\", \"multilabel\") for exact match), with "
                    f"predictions=(1 / (1 + np.exp(-logits)) > {self.context.threshold_name}).astype(int) "
                    "and references=labels.astype(int)"
                ),
                extra_nodes=evaluate_feeds,
            )
            return
        if accumulations:
            self._accumulated_prediction(call, scores, accumulations, metric_calls, blocked, direct_consumers == [call])
            return
        if blocked:
            self.report(
                call,
                f"arg-max prediction over the logits left as is: {blocked}",
                suggestion=(
                    f"predict every label above the threshold: preds = 1 / (1 + np.exp(-logits)) > "
                    f"{self.context.threshold_name}; exact match is (preds == labels.astype(bool)).all(axis=1).mean()"
                ),
            )
            return
        edits = [NodeEdit(call, self._decision_rewrite(call))]
        edits.extend(edit for edit in (self._average_edit(metric) for metric in metric_calls) if edit is not None)
        add_imports: tuple[ImportEdit, ...] = ()
        if _expit_alias(self._module) is None and self._numpy_name(call) is None:
            add_imports = (ImportEdit("numpy"),)
        self.report(
            call,
            "arg-max predicts exactly one label per sample; predict every label whose sigmoid is above the threshold",
            fix=Fix(edits=tuple(edits), add_imports=add_imports, needs_threshold=True),
            extra_nodes=metric_calls,
        )

    def _argmax_scores(self, call: cst.Call) -> cst.BaseExpression | None:
        """The array of ``np.argmax(a, axis=-1)`` / ``a.argmax(axis=1)``; None for other arg-maxes."""
        assert isinstance(call.func, cst.Attribute)
        if self._qualified(call.func) & {"numpy.argmax"}:
            array, axis = call_argument(call, 0, "a"), call_argument(call, 1, "axis")
            if array is None:
                return None
            scores = array.value
        elif self._imported(call.func.value):
            return None  # torch.argmax and other libraries' functions
        else:
            axis, scores = call_argument(call, 0, "axis"), call.func.value
        if axis is None or dim_value(axis.value) not in (1, -1):
            return None
        return scores

    def _numpy_name(self, call: cst.Call) -> str | None:
        func = call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and self._qualified(func) & {"numpy.argmax"}:
            return func.value.value
        return _module_alias(self._module, "numpy")

    def _decision_rewrite(self, call: cst.Call):
        """``np.argmax(z, axis=-1)`` -> ``1 / (1 + np.exp(-z)) > THRESHOLD``."""
        threshold = self.context.threshold_name
        expit = _expit_alias(self._module)
        numpy = self._numpy_name(call) or "numpy"
        function_form = bool(self._qualified(call.func) & {"numpy.argmax"})
        parent = self.get_metadata(ParentNodeProvider, call, None)
        bare = isinstance(parent, (cst.Assign, cst.AnnAssign, cst.Return, cst.Arg))

        def apply(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.Call) and isinstance(updated.func, cst.Attribute)
            scores = call_argument(updated, 0, "a").value if function_form else updated.func.value
            scores = scores.with_changes(lpar=[], rpar=[]) if isinstance(scores, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) else scores
            if expit is not None:
                probability: cst.BaseExpression = cst.Call(func=cst.Name(expit), args=[cst.Arg(scores)])
            else:
                exponential = cst.Call(
                    func=cst.Attribute(value=cst.Name(numpy), attr=cst.Name("exp")),
                    args=[cst.Arg(cst.UnaryOperation(operator=cst.Minus(), expression=parenthesize(scores)))],
                )
                probability = cst.BinaryOperation(
                    left=cst.Integer("1"),
                    operator=cst.Divide(),
                    right=cst.BinaryOperation(
                        left=cst.Integer("1"), operator=cst.Add(), right=exponential,
                        lpar=[cst.LeftParen()], rpar=[cst.RightParen()],
                    ),
                )
            decision = above_threshold(probability, threshold)
            if bare:
                return decision.with_changes(lpar=updated.lpar, rpar=updated.rpar)
            return decision.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])

        return apply

    # -- proofs -------------------------------------------------------------------------------------

    def _is_logits(
        self, expression: cst.BaseExpression, excluded: cst.CSTNode | None, depth: int, tensor_ok: bool
    ) -> bool:
        """The classifier's logits: a model call's output or Hugging Face's ``predictions``.

        ``tensor_ok`` False asks for a NumPy array: a model call counts only behind ``.numpy()``.
        """
        if depth > 5:
            return False
        stripped = self._strip(expression)
        tensor_ok = tensor_ok or _converted_to_numpy(expression, stripped)
        expression = stripped
        if isinstance(expression, cst.Call):
            return tensor_ok and is_model_callee(expression.func)
        if isinstance(expression, cst.Attribute) and expression.attr.value == "predictions":
            return self._is_prediction_output(expression.value, depth + 1)
        if (
            isinstance(expression, cst.Subscript)
            and len(expression.slice) == 1
            and isinstance(expression.slice[0].slice, cst.Index)
            and isinstance(expression.slice[0].slice.value, cst.Integer)
            and expression.slice[0].slice.value.value == "0"
        ):
            return self._is_logits(expression.value, excluded, depth + 1, tensor_ok)  # logits = logits[0] of a tuple output
        if not isinstance(expression, cst.Name):
            return False
        if self._is_eval_prediction(expression):
            return False  # the (logits, labels) pair itself, not the logits
        bindings = self._bindings(expression, excluded)
        if not bindings:
            return False
        for bound in bindings:
            value = self._bound_value(bound)
            if value is None:
                return False
            kind, node = value
            if kind == "first-of-eval-pred":
                continue
            if not self._is_logits(node, self._excluded(self._statement(node)), depth + 1, tensor_ok):
                return False
        return True

    def _bindings(self, name: cst.Name, excluded: cst.CSTNode | None) -> list[cst.CSTNode]:
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return []
        found = []
        for assignment in scope[name.value]:
            node = getattr(assignment, "node", None)
            if node is None:
                return []
            if excluded is not None and self._statement(node) is excluded:
                continue  # `logits = logits[0]`, `preds = np.argmax(preds, 1)`: the statement reads the binding before it
            found.append(node)
        return found

    def _bound_value(self, bound: cst.CSTNode) -> tuple[str, cst.BaseExpression] | None:
        """What a binding assigns: ``("value", expr)``, or ``("first-of-eval-pred", name)`` for
        ``logits, labels = eval_pred``; None for parameters, loops and anything else."""
        parent = self.get_metadata(ParentNodeProvider, bound, None)
        if isinstance(parent, cst.AssignTarget):
            statement = self.get_metadata(ParentNodeProvider, parent, None)
            if isinstance(statement, cst.Assign) and len(statement.targets) == 1:
                return "value", statement.value
            return None
        if isinstance(parent, cst.AnnAssign) and parent.value is not None:
            return "value", parent.value
        if not isinstance(parent, cst.Element):
            return None
        tuple_node = self.get_metadata(ParentNodeProvider, parent, None)
        target = self.get_metadata(ParentNodeProvider, tuple_node, None)
        statement = self.get_metadata(ParentNodeProvider, target, None)
        if not (isinstance(tuple_node, (cst.Tuple, cst.List)) and isinstance(target, cst.AssignTarget) and isinstance(statement, cst.Assign)):
            return None
        position = list(tuple_node.elements).index(parent)
        value = statement.value
        if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(tuple_node.elements):
            return "value", value.elements[position].value
        if position == 0 and isinstance(value, cst.Name) and self._is_eval_prediction(value):
            return "first-of-eval-pred", value
        return None

    def _is_eval_prediction(self, name: cst.Name) -> bool:
        """The first parameter of ``compute_metrics``: Hugging Face's ``EvalPrediction``."""
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return False
        assignments = list(scope[name.value])
        if len(assignments) != 1 or not isinstance(getattr(assignments[0], "node", None), cst.Param):
            return False
        param = assignments[0].node
        function = self._enclosing(param, cst.FunctionDef)
        if not isinstance(function, cst.FunctionDef) or "compute_metrics" not in function.name.value:
            return False
        params = [p for p in function.params.params if p.name.value not in ("self", "cls")]
        return bool(params) and params[0] is param

    def _is_prediction_output(self, expression: cst.BaseExpression, depth: int) -> bool:
        """``eval_pred`` of compute_metrics, or ``trainer.predict(...)`` (directly or by name)."""
        expression = self._strip(expression)
        if isinstance(expression, cst.Call):
            return isinstance(expression.func, cst.Attribute) and expression.func.attr.value in _PREDICT_METHODS
        if not isinstance(expression, cst.Name) or depth > 5:
            return False
        if self._is_eval_prediction(expression):
            return True
        bindings = self._bindings(expression, None)
        for bound in bindings:
            value = self._bound_value(bound)
            if value is None or value[0] != "value" or not self._is_prediction_output(value[1], depth + 1):
                return False
        return bool(bindings)

    def _strip(self, expression: cst.BaseExpression) -> cst.BaseExpression:
        """Drop ``.numpy()``/``.cpu()``/``.detach()``… and the transparent chains of ML020's proof."""
        while True:
            stripped = strip_transparent(expression)
            if (
                isinstance(stripped, cst.Call)
                and isinstance(stripped.func, cst.Attribute)
                and stripped.func.attr.value == "numpy"
                and not stripped.args
            ):
                stripped = stripped.func.value
            if stripped is expression:
                return expression
            expression = stripped

    # -- uses of a prediction -----------------------------------------------------------------------

    def _consumers(self, node: cst.CSTNode, statement: cst.CSTNode | None) -> list[cst.CSTNode]:
        """Where the prediction's value goes: its own position, or every read of the name it is assigned to."""
        current = self._through_chain(node)
        parent = self.get_metadata(ParentNodeProvider, current, None)
        if (
            isinstance(parent, cst.Assign)
            and len(parent.targets) == 1
            and isinstance(parent.targets[0].target, cst.Name)
            and parent.value is current
        ):
            return self._reads(parent.targets[0].target, statement)
        return [current]

    def _reads(self, binding: cst.Name, statement: cst.CSTNode | None) -> list[cst.CSTNode]:
        """Every read of ``binding``, each climbed through its conversions (``.cpu().numpy()``)."""
        scope = self.get_metadata(ScopeProvider, binding, None)
        if scope is None:
            return [binding]  # unknown uses block the rewrite
        start = self.get_metadata(PositionProvider, statement).start if self._excluded(statement) is not None else None
        reads = []
        for assignment in scope[binding.value]:
            if getattr(assignment, "node", None) is not binding:
                continue
            for access in assignment.references:
                if self._statement(access.node) is statement:
                    continue
                if start is not None and self.get_metadata(PositionProvider, access.node).start.line < start.line:
                    continue  # read before this binding, in straight-line code: another binding's value
                reads.append(self._through_chain(access.node))
        return reads

    def _through_chain(self, node: cst.CSTNode) -> cst.CSTNode:
        """Climb ``pred.cpu().numpy()``/``pred.tolist()``: conversions keep the prediction."""
        current = node
        while True:
            parent = self.get_metadata(ParentNodeProvider, current, None)
            if isinstance(parent, cst.Attribute) and parent.attr.value in _ARRAY_CHAIN:
                call = self.get_metadata(ParentNodeProvider, parent, None)
                if isinstance(call, cst.Call) and call.func is parent:
                    current = call
                    continue
            return current

    def _classify(self, consumers: list[cst.CSTNode]) -> tuple[list[cst.Call], list[cst.Call], str]:
        """Split the uses into scikit-learn metric calls, ``evaluate`` feeds and a blocking reason."""
        metric_calls: list[cst.Call] = []
        evaluate_feeds: list[cst.Call] = []
        blocked = ""
        for consumer in consumers:
            parent = self.get_metadata(ParentNodeProvider, consumer, None)
            call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
            if isinstance(call, cst.Call):
                metric = self._sklearn_metric(call)
                if metric is not None and call_argument(call, 1, "y_pred") is parent:
                    metric_calls.append(call)
                    continue
                if (
                    parent.keyword is not None
                    and parent.keyword.value == "predictions"
                    and isinstance(call.func, cst.Attribute)
                    and call.func.attr.value in _EVALUATE_FEEDS
                ):
                    evaluate_feeds.append(call)
                    continue
            if not blocked:
                if isinstance(parent, cst.Comparison):
                    blocked = "it is compared with the labels element-wise"
                else:
                    blocked = "it is used as class indices outside a multi-label-aware metric"
        return metric_calls, evaluate_feeds, blocked

    def _sklearn_metric(self, call: cst.Call) -> str | None:
        for name in self._qualified(call.func):
            module, _, last = name.rpartition(".")
            if module.startswith("sklearn.metrics") and last in _SKLEARN_MULTILABEL:
                return last
        return None

    def _average_edit(self, call: cst.Call) -> NodeEdit | None:
        """``average="binary"`` or the binary default -> ``average="micro"``; one edit per call."""
        key = id(call)
        if key in self._average_edits:
            return self._average_edits[key]
        metric = self._sklearn_metric(call)
        edit = None
        if metric in _SKLEARN_AVERAGE_DEFAULT:
            average = next((a for a in call.args if a.keyword is not None and a.keyword.value == "average"), None)
            if average is None and _SKLEARN_AVERAGE_DEFAULT[metric] == "binary":
                edit = NodeEdit(call, _add_micro_average)
            elif (
                average is not None
                and isinstance(average.value, cst.SimpleString)
                and average.value.evaluated_value == "binary"
            ):
                edit = NodeEdit(call, _binary_to_micro)
        self._average_edits[key] = edit
        return edit

    # -- predictions accumulated across batches ---------------------------------------------------

    def _follow_accumulations(self, consumers: list[cst.CSTNode]) -> tuple[list[cst.CSTNode], list[_Accumulation]]:
        """Replace each ``rows.append(prediction)`` by the uses of ``np.concatenate(rows)``."""
        followed: list[cst.CSTNode] = []
        accumulations: list[_Accumulation] = []
        for consumer in consumers:
            accumulation = self._accumulation(consumer)
            if accumulation is None:
                followed.append(consumer)
            else:
                accumulations.append(accumulation)
                followed.extend(accumulation.consumers)
        return followed, accumulations

    def _accumulation(self, consumer: cst.CSTNode) -> _Accumulation | None:
        """``rows.append(consumer)`` / ``rows.extend(consumer)`` with ``rows`` joined later in the function."""
        argument = self.get_metadata(ParentNodeProvider, consumer, None)
        append = self.get_metadata(ParentNodeProvider, argument, None) if isinstance(argument, cst.Arg) else None
        if not (
            isinstance(append, cst.Call)
            and len(append.args) == 1
            and append.args[0] is argument
            and argument.keyword is None
            and isinstance(append.func, cst.Attribute)
            and append.func.attr.value in _ACCUMULATE_METHODS
            and isinstance(append.func.value, cst.Name)
        ):
            return None
        rows = append.func.value
        scope = self.get_metadata(ScopeProvider, rows, None)
        if scope is None:
            return None
        joins: list[cst.Call] = []
        consumers: list[cst.CSTNode] = []
        other_uses = False
        for access in scope.accesses[rows.value]:
            node = access.node
            if node is rows:
                continue
            parent = self.get_metadata(ParentNodeProvider, node, None)
            join = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
            if isinstance(join, cst.Call) and join.args[0] is parent and self._qualified(join.func) & _JOIN_FUNCTIONS:
                joins.append(join)
                consumers.extend(self._consumers(join, self._statement(join)))
                continue
            if isinstance(join, cst.Call) and self._sklearn_metric(join) is not None:
                consumers.append(node)  # `f1_score(y_true, y_pred)` on the list of `.tolist()` rows
            other_uses = True
        if not consumers:
            return None
        for assignment in scope[rows.value]:
            bound = self._bound_value(assignment.node) if isinstance(getattr(assignment, "node", None), cst.Name) else None
            if bound is None or not (isinstance(bound[1], cst.List) and not bound[1].elements):
                other_uses = True  # rows that may already hold something else than these predictions
        return _Accumulation(append, joins, consumers, other_uses)

    def _accumulated_prediction(
        self,
        call: cst.Call,
        scores: cst.BaseExpression,
        accumulations: list[_Accumulation],
        metric_calls: list[cst.Call],
        blocked: str,
        direct_append: bool,
    ) -> None:
        """An arg-max collected per batch and concatenated before scikit-learn (timm ``validate.py``)."""
        flag_averages = self._report_flag_averages(metric_calls)
        accumulation = accumulations[0]
        rows = accumulation.append.func.value.value
        row = self._multi_hot_row(scores)
        suggestion = (
            f"append multi-hot rows instead, {rows}.append({row}); keep the targets as [N, C] multi-hot rows "
            "and pass average=\"micro\" (or \"samples\") to f1/precision/recall"
        )
        sound = (
            direct_append
            and len(accumulations) == 1
            and accumulation.append.func.attr.value == "append"
            and not accumulation.other_uses
            and all(self._qualified(join.func) & _CONCATENATE_FUNCTIONS for join in accumulation.joins)
            and not blocked
            and not flag_averages
        )
        if not sound:
            self.report(
                call,
                "arg-max rows accumulated across batches reach a scikit-learn metric: one label per sample",
                suggestion=suggestion,
                extra_nodes=metric_calls,
            )
            return
        edits = [NodeEdit(call, self._decision_rewrite(call))]
        edits.extend(edit for edit in (self._average_edit(metric) for metric in metric_calls) if edit is not None)
        add_imports: tuple[ImportEdit, ...] = ()
        if _expit_alias(self._module) is None and self._numpy_name(call) is None:
            add_imports = (ImportEdit("numpy"),)
        self.report(
            call,
            "arg-max rows accumulated across batches predict one label per sample; append every label whose sigmoid is above the threshold",
            suggestion="the concatenated targets must be [N, C] multi-hot rows as well",
            fix=Fix(edits=tuple(edits), applicability=Applicability.UNSAFE, add_imports=add_imports, needs_threshold=True),
            extra_nodes=metric_calls,
        )

    def _multi_hot_row(self, scores: cst.BaseExpression) -> str:
        """The row to append: the PyTorch decision converted back, or NumPy's when the scores already are an array."""
        tensor = scores
        while (
            isinstance(tensor, cst.Call)
            and isinstance(tensor.func, cst.Attribute)
            and tensor.func.attr.value in ("numpy", "cpu", "detach")
            and not tensor.args
        ):
            tensor = tensor.func.value
        threshold = self.context.threshold_name
        if _converted_to_numpy(scores, tensor):
            return f"({self._flow.torch_name}.sigmoid({self._module.code_for_node(tensor)}) > {threshold}).cpu().numpy()"
        return f"1 / (1 + np.exp(-{self._module.code_for_node(scores)})) > {threshold}"

    def _report_flag_averages(self, metric_calls: list[cst.Call]) -> list[cst.Arg]:
        """``average=args.metrics_avg``: a value migrate-ml cannot read, reported once per metric call."""
        flagged = []
        for metric in metric_calls:
            average = next((a for a in metric.args if a.keyword is not None and a.keyword.value == "average"), None)
            if average is None or isinstance(average.value, _LITERAL_AVERAGES) or (
                isinstance(average.value, cst.Name) and average.value.value == "None"
            ):
                continue
            flagged.append(average)
            if id(average) in self._reported_averages:
                continue
            self._reported_averages.add(id(average))
            self.report(
                average.value,
                "a flag-driven average must not be 'binary' for multi-hot input",
                suggestion=(
                    f"make sure {self._module.code_for_node(average.value)} is \"micro\", \"macro\", \"weighted\" or "
                    "\"samples\" (restrict the flag's choices); scikit-learn raises on multi-label input with \"binary\""
                ),
            )
        return flagged

    # -- PyTorch predictions (ML020) reaching scikit-learn -------------------------------------------

    def _torch_prediction_average(self, prediction) -> None:
        if prediction.binding is not None:
            consumers = self._reads(prediction.binding, self._statement(prediction.binding))
        else:
            consumers = [self._through_chain(prediction.node)]
        consumers, accumulations = self._follow_accumulations(consumers)
        metric_calls, _, _ = self._classify(consumers)
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

    # -- helpers ----------------------------------------------------------------------------------

    def _qualified(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def _imported(self, node: cst.CSTNode) -> bool:
        if not isinstance(node, (cst.Name, cst.Attribute)):
            return False
        return any(q.source is QualifiedNameSource.IMPORT for q in self.get_metadata(QualifiedNameProvider, node, set()))

    def _statement(self, node: cst.CSTNode) -> cst.CSTNode | None:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            current = self.get_metadata(ParentNodeProvider, current, None)
        return current

    def _excluded(self, statement: cst.CSTNode | None) -> cst.CSTNode | None:
        """The statement whose own binding cannot reach its reads: any statement outside loops."""
        current = statement
        while current is not None and not isinstance(current, (cst.FunctionDef, cst.Module)):
            current = self.get_metadata(ParentNodeProvider, current, None)
            if isinstance(current, (cst.For, cst.While)):
                return None
        return statement

    def _enclosing(self, node: cst.CSTNode, kind) -> cst.CSTNode | None:
        current = self.get_metadata(ParentNodeProvider, node, None)
        while current is not None and not isinstance(current, kind):
            current = self.get_metadata(ParentNodeProvider, current, None)
        return current

    def _in_compute_metrics(self, node: cst.CSTNode) -> bool:
        function = self._enclosing(node, cst.FunctionDef)
        return isinstance(function, cst.FunctionDef) and "compute_metrics" in function.name.value


def _converted_to_numpy(expression: cst.BaseExpression, inner: cst.BaseExpression) -> bool:
    """True when a ``.numpy()`` call lies between ``expression`` and the ``inner`` node it wraps."""
    while expression is not inner:
        if isinstance(expression, cst.Attribute):  # .data, .logits
            expression = expression.value
        elif isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
            if expression.func.attr.value == "numpy":
                return True
            method_form = not (isinstance(expression.func.value, cst.Name) and expression.func.value.value == "torch")
            expression = expression.func.value if method_form else expression.args[0].value  # torch.squeeze(z)
        else:
            return False
    return False


def _micro(equal: cst.AssignEqual | cst.MaybeSentinel) -> cst.Arg:
    return cst.Arg(keyword=cst.Name("average"), value=cst.SimpleString('"micro"'), equal=equal)


def _add_micro_average(updated: cst.CSTNode) -> cst.CSTNode:
    assert isinstance(updated, cst.Call)
    args = list(updated.args)
    equal: cst.AssignEqual | cst.MaybeSentinel = cst.AssignEqual(
        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
    )
    for arg in args:
        if arg.keyword is not None and isinstance(arg.equal, cst.AssignEqual):
            equal = arg.equal
            break
    trailing = args[-1].comma if args else cst.MaybeSentinel.DEFAULT
    if args:
        # The separator the call already uses between arguments, so multi-line calls stay one per line.
        separator = args[-2].comma if len(args) >= 2 and isinstance(args[-2].comma, cst.Comma) else cst.Comma(
            whitespace_after=cst.SimpleWhitespace(" ")
        )
        args[-1] = args[-1].with_changes(comma=separator)
    args.append(_micro(equal).with_changes(comma=trailing))
    return updated.with_changes(args=args)


def _binary_to_micro(updated: cst.CSTNode) -> cst.CSTNode:
    assert isinstance(updated, cst.Call)
    args = []
    for arg in updated.args:
        if arg.keyword is not None and arg.keyword.value == "average" and isinstance(arg.value, cst.SimpleString):
            arg = arg.with_changes(value=_string_like(arg.value, "micro"))
        args.append(arg)
    return updated.with_changes(args=args)
