"""ML023's NumPy predictions: the sigmoid decision written in NumPy, where an arg-max goes (its
reads, through ``.cpu().numpy()``/``.tolist()``, and rows appended per batch then joined), and what
becomes of a NumPy arg-max that reaches a metric (``_numpy_prediction``: rewritten when it is proven
to be over the logits, reported otherwise)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, in_source_order
from migrate_ml.rules._exprs import module_alias, parenthesize
from migrate_ml.rules.semantics.flow import call_argument
from migrate_ml.rules._metrics_hf import converted_to_numpy
from migrate_ml.rules.semantics.predictions import LITERALS
from migrate_ml.rules.semantics.rewrites import above_threshold, exact_match_rewrite
from migrate_ml.rules.semantics.shapes import dim_value

ARRAY_CHAIN = frozenset({"numpy", "cpu", "detach", "tolist", "cuda", "to"})
"""Conversions between the arg-max and the metric, or between the model output and the arg-max."""
ACCUMULATE_METHODS = frozenset({"append", "extend"})
CONCATENATE_FUNCTIONS = frozenset({"numpy.concatenate", "torch.cat", "torch.concatenate"})
_EVALUATE_FEEDS = frozenset({"compute", "add_batch", "add"})
"""The Hugging Face ``evaluate`` methods a prediction is fed to."""
JOIN_FUNCTIONS = CONCATENATE_FUNCTIONS | {"numpy.stack", "torch.stack", "numpy.array", "numpy.asarray"}
"""How per-batch rows are joined after the loop; only the concatenating ones keep ``[B, C]`` rows ``[N, C]``."""


@dataclass
class Accumulation:
    """A prediction appended to a list per batch, and what the list is turned into and fed to."""

    append: cst.Call
    joins: list[cst.Call]
    consumers: list[cst.CSTNode]
    """Every use of the joined arrays (as ``_consumers`` finds them), and the list itself passed to a metric."""
    other_uses: bool
    """The list is also read otherwise: appended elsewhere, printed, passed as is, re-bound from a non-empty value."""


def expit_alias(module: cst.Module) -> str | None:
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


class NumpyPredictions:
    """Mixin for ML023: write the NumPy decision and follow a prediction to its uses."""

    def _numpy_name(self, call: cst.Call) -> str | None:
        func = call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and self._qualified(func) & {"numpy.argmax"}:
            return func.value.value
        return module_alias(self._module, "numpy")

    def _decision_rewrite(self, call: cst.Call):
        """``np.argmax(z, axis=-1)`` -> ``1 / (1 + np.exp(-z)) > THRESHOLD``."""
        threshold = self.context.threshold_name
        expit = expit_alias(self._module)
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
        if converted_to_numpy(scores, tensor):
            return f"({self._flow.torch_name}.sigmoid({self._module.code_for_node(tensor)}) > {threshold}).cpu().numpy()"
        return f"1 / (1 + np.exp(-{self._module.code_for_node(scores)})) > {threshold}"

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
            for access in in_source_order(self, assignment.references):
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
            if isinstance(parent, cst.Attribute) and parent.attr.value in ARRAY_CHAIN:
                call = self.get_metadata(ParentNodeProvider, parent, None)
                if isinstance(call, cst.Call) and call.func is parent:
                    current = call
                    continue
            return current

    def _follow_accumulations(self, consumers: list[cst.CSTNode]) -> tuple[list[cst.CSTNode], list[Accumulation]]:
        """Replace each ``rows.append(prediction)`` by the uses of ``np.concatenate(rows)``."""
        followed: list[cst.CSTNode] = []
        accumulations: list[Accumulation] = []
        for consumer in consumers:
            accumulation = self._accumulation(consumer)
            if accumulation is None:
                followed.append(consumer)
            else:
                accumulations.append(accumulation)
                followed.extend(accumulation.consumers)
        return followed, accumulations

    def _accumulation(self, consumer: cst.CSTNode) -> Accumulation | None:
        """``rows.append(consumer)`` / ``rows.extend(consumer)`` with ``rows`` joined later in the function."""
        argument = self.get_metadata(ParentNodeProvider, consumer, None)
        append = self.get_metadata(ParentNodeProvider, argument, None) if isinstance(argument, cst.Arg) else None
        if not (
            isinstance(append, cst.Call)
            and len(append.args) == 1
            and append.args[0] is argument
            and argument.keyword is None
            and isinstance(append.func, cst.Attribute)
            and append.func.attr.value in ACCUMULATE_METHODS
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
        for access in in_source_order(self, scope.accesses[rows.value]):
            node = access.node
            if node is rows:
                continue
            parent = self.get_metadata(ParentNodeProvider, node, None)
            join = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
            if isinstance(join, cst.Call) and join.args[0] is parent and self._qualified(join.func) & JOIN_FUNCTIONS:
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
        return Accumulation(append, joins, consumers, other_uses)

    def _numpy_prediction(self, call: cst.Call) -> None:
        scores = self._argmax_scores(call)
        if scores is None:
            return
        statement = self._statement(call)
        direct_consumers = self._consumers(call, statement)
        consumers, accumulations = self._follow_accumulations(direct_consumers)
        metric_calls, evaluate_feeds, comparisons, blocked = self._classify(consumers)
        in_compute_metrics = self._in_compute_metrics(call)
        if not (metric_calls or evaluate_feeds or comparisons or in_compute_metrics):
            return  # an arg-max that reaches no metric: not this rule's business
        # `z.argmax(axis=1)` on a tensor is torch's own arg-max, possibly on the GPU: NumPy's sigmoid
        # only fits it when the scores were converted with .numpy(); np.argmax already needed that.
        tensor_ok = bool(self._qualified(call.func) & {"numpy.argmax"})
        if not self._is_logits(scores, self._excluded(statement), 0, tensor_ok):
            if metric_calls or evaluate_feeds or comparisons:
                self.report(
                    call,
                    "this arg-max feeds a metric or an accuracy, but migrate-ml cannot prove it is taken over the classifier's logits",
                    suggestion=(
                        f"if it is, predict every label above the threshold: "
                        f"preds = 1 / (1 + np.exp(-logits)) > {self.context.threshold_name}; exact match is "
                        "(preds == labels.astype(bool)).all(axis=1).mean(), and f1/precision/recall need "
                        "average=\"micro\" (or \"samples\")"
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
        if comparisons and not blocked and accumulations:
            blocked = "it is compared with the labels element-wise"
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
        for comparison, label_position in comparisons:
            edits.append(NodeEdit(comparison, exact_match_rewrite(label_position, numpy=True)))
            edits.extend(self._per_sample_denominators(comparison, label_position))
        add_imports: tuple[ImportEdit, ...] = ()
        if expit_alias(self._module) is None and self._numpy_name(call) is None:
            add_imports = (ImportEdit("numpy"),)
        self.report(
            call,
            "arg-max predicts exactly one label per sample; predict every label whose sigmoid is above the threshold"
            + ("; the accuracy becomes exact match (one hit or miss per sample)" if comparisons else ""),
            fix=Fix(edits=tuple(edits), add_imports=add_imports, needs_threshold=True),
            extra_nodes=[*metric_calls, *(comparison for comparison, _ in comparisons)],
        )

    def _per_sample_denominators(self, comparison: cst.Comparison, label_position: str) -> list[NodeEdit]:
        """``np.sum(preds == labels) / float(labels.size)``: ``size`` counts N*C label entries of
        multi-hot labels; exact match has one value per sample, so it becomes ``len(labels)``."""
        labels = comparison.left if label_position == "left" else comparison.comparisons[0].comparator
        code = self._module.code_for_node(labels.with_changes(lpar=[], rpar=[]))
        statement = self._statement(comparison)
        return [
            NodeEdit(size, lambda updated: cst.Call(func=cst.Name("len"), args=[cst.Arg(updated.value)]))
            for size in self._sizes
            if self._statement(size) is statement and self._module.code_for_node(size.value) == code
        ]

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

    def _classify(
        self, consumers: list[cst.CSTNode]
    ) -> tuple[list[cst.Call], list[cst.Call], list[tuple[cst.Comparison, str]], str]:
        """Split the uses into scikit-learn metric calls, ``evaluate`` feeds, accuracy comparisons
        with the labels (``preds == labels``, with the labels' side) and a blocking reason."""
        metric_calls: list[cst.Call] = []
        evaluate_feeds: list[cst.Call] = []
        comparisons: list[tuple[cst.Comparison, str]] = []
        blocked = ""
        for consumer in consumers:
            parent = self.get_metadata(ParentNodeProvider, consumer, None)
            if (
                isinstance(parent, cst.Comparison)
                and len(parent.comparisons) == 1
                and isinstance(parent.comparisons[0].operator, cst.Equal)
            ):
                left = parent.left is consumer
                labels = parent.comparisons[0].comparator if left else parent.left
                if not isinstance(labels, LITERALS):
                    comparisons.append((parent, "right" if left else "left"))
                    continue
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
        return metric_calls, evaluate_feeds, comparisons, blocked

    def _accumulated_prediction(
        self,
        call: cst.Call,
        scores: cst.BaseExpression,
        accumulations: list[Accumulation],
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
            and all(self._qualified(join.func) & CONCATENATE_FUNCTIONS for join in accumulation.joins)
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
        if expit_alias(self._module) is None and self._numpy_name(call) is None:
            add_imports = (ImportEdit("numpy"),)
        self.report(
            call,
            "arg-max rows accumulated across batches predict one label per sample; append every label whose sigmoid is above the threshold",
            suggestion="the concatenated targets must be [N, C] multi-hot rows as well",
            fix=Fix(edits=tuple(edits), applicability=Applicability.UNSAFE, add_imports=add_imports, needs_threshold=True),
            extra_nodes=metric_calls,
        )
