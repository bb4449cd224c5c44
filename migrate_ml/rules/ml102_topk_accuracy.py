"""ML102: top-k accuracy helpers have no multi-label meaning (REVIEW)."""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule
from migrate_ml.rules._prefilter import text_facts
from migrate_ml.rules._exact_match import is_exact_match_helper, returns_error
from migrate_ml.rules.semantics.flow import call_argument
from migrate_ml.rules.semantics.prediction_provider import PredictionFlowProvider
from migrate_ml.rules.semantics.predictions import PredictionFlow
from migrate_ml.rules.semantics.rewrites import above_threshold, as_bool
from migrate_ml.rules.ml022_torchmetrics_multilabel import is_top_k_beyond_one

_TIMM_ACCURACY = frozenset({"timm.utils.accuracy", "timm.utils.metrics.accuracy"})
_SKLEARN_TOP_K = frozenset({"sklearn.metrics.top_k_accuracy_score", "sklearn.metrics._ranking.top_k_accuracy_score"})
"""scikit-learn's top-k accuracy: every call is top-k (k defaults to 2)."""
_REAL_LABELS = frozenset({"timm.data.RealLabelsImagenet", "timm.data.real_labels.RealLabelsImagenet"})
"""timm's ImageNet-ReaL scorer: ``add_result(output)`` keeps each image's top-5 class indices and
``get_accuracy(k)`` is the top-k accuracy against the ReaL label sets."""
_REAL_LABELS_METHODS = frozenset({"add_result", "get_accuracy"})
_TORCHMETRICS_ACCURACY = frozenset({"Accuracy", "MulticlassAccuracy", "accuracy", "multiclass_accuracy"})
"""torchmetrics accuracies (by last name component) that are top-k with ``top_k`` past 1."""
_LIBRARY_SUGGESTION = (
    "drop it and what logs it (a top-k score has no multi-label counterpart); report exact match, "
    "sample-F1 or mAP instead (torchmetrics MultilabelExactMatch, MultilabelF1Score, "
    "MultilabelAveragePrecision; sklearn average_precision_score(y, probs, average='macro'))"
)


def _as_ast(function: cst.FunctionDef) -> ast.FunctionDef:
    return ast.parse(cst.Module(body=[function]).code).body[0]


_ERROR_NAME = re.compile(r"^(err|error|wrong)", re.IGNORECASE)
"""``err1, err5 = accuracy(...)``: the caller reads the helper's result as an error rate."""
_EXACT_MATCH = "((torch.sigmoid(output) > THRESHOLD) == target.bool()).all(dim=1).float().mean() * 100"


def _callee_name(func: cst.BaseExpression) -> str:
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


class TopkAccuracyRule(Rule):
    code = "ML102"
    name = "topk-accuracy"
    summary = (
        "Reports top-k accuracy (accuracy(output, target, topk=(1, 5)), timm.utils.accuracy, "
        "torchmetrics top_k, sklearn top_k_accuracy_score)."
    )
    rationale = (
        "Top-k accuracy asks whether *the* true class is among the k highest scores. With several "
        "true labels per image there is no single true class, and `target` is a [B, C] multi-hot "
        "tensor that the helper's `pred.eq(target.view(1, -1))` cannot even broadcast against. "
        "The usual `def accuracy(output, target, topk=(1,))` helper (pytorch/examples, DeiT, "
        "Swin, MAE), timm's `accuracy`, torchmetrics accuracy with `top_k` past 1 and "
        "scikit-learn's `top_k_accuracy_score` and timm's ImageNet-ReaL scorer (`RealLabelsImagenet.add_result`, "
        "`get_accuracy(k=1)`) must be replaced by a thresholded metric: exact "
        "match, sample-F1 or mAP. migrate-ml reports every definition and call; for timm's helper over "
        "proven classifier logits with one top-k (`acc1, = accuracy(output, target, "
        "topk=(1,))`) it offers an unsafe fix that computes exact-match accuracy in percent "
        "instead. With several k (`acc1, acc5 = ...`) there is nothing to give the other names "
        "(a copy of acc1 would log a made-up top-5), so the call is reported with the exact "
        "match to use for the first and a note to drop the others and their logging. A helper that keeps "
        "the top-k signature over a body that already computes exact match (a row-wise `.all(dim=1)` and "
        "no `topk`/`argsort`/`argmax`) is multi-label: neither it nor its calls are reported. A helper "
        "whose body subtracts the matches from a total (`wrong_k = batch_size - correct_k`, CutMix) returns "
        "the top-k *error*, and so do calls that unpack into `err1, err5`: their help is `100 - exact match`, "
        "so that code keeping the lowest error (`best_err1 = min(...)`) still keeps the best model."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "acc1, = accuracy(output, target, topk=(1,))\n"
    example_after = (
        "# with --unsafe-fixes, for timm.utils.accuracy:\n"
        "acc1 = ((torch.sigmoid(output) > THRESHOLD) == target.bool()).all(dim=1).float().mean() * 100\n"
    )
    triggers = ("topk", "top_k", "timm.utils", "RealLabelsImagenet(")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider, ParentNodeProvider, PredictionFlowProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        facts = text_facts(source)
        if facts.has("RealLabelsImagenet("):
            return True  # built, not defined (timm's own real_labels.py)
        return facts.has_any(("accuracy", "Accuracy")) and super().could_apply(source)

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node
        self._flow: PredictionFlow = self.get_metadata(PredictionFlowProvider, node)
        helpers = {f.name.value: _as_ast(f) for f in node.body if isinstance(f, cst.FunctionDef) and "accuracy" in f.name.value}
        self._exact_match_helpers = {name for name, function in helpers.items() if is_exact_match_helper(function)}
        """Module-level helpers whose body is exact match already: neither they nor their calls are top-k."""
        self._error_helpers = {name for name, function in helpers.items() if returns_error(function)}
        """Module-level helpers that return the top-k error (``batch_size - correct_k``), not the accuracy."""
        self._real_labels: set[str] = set()
        """Names bound to a ``RealLabelsImagenet`` scorer."""
        self._real_labels_lines: set[int] = set()

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value
        if isinstance(value, cst.Call) and {q.name for q in self.get_metadata(QualifiedNameProvider, value.func, set())} & _REAL_LABELS:
            self._real_labels.update(self._module.code_for_node(t.target) for t in node.targets)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        params = [*node.params.posonly_params, *node.params.params, *node.params.kwonly_params]
        if "accuracy" not in node.name.value or not any(p.name.value == "topk" for p in params):
            return
        function = _as_ast(node)
        if not is_exact_match_helper(function):
            is_error = returns_error(function)
            self.report(
                node.name,
                f"top-k {'error' if is_error else 'accuracy'} helper: with several true labels per image there is "
                "no single true class to find in the top k",
                suggestion=(
                    f"replace it with the exact-match error (its callers keep the lowest): 100 - {_EXACT_MATCH}"
                    if is_error else
                    "replace it with a thresholded metric: exact match ((torch.sigmoid(output) > THRESHOLD) == "
                    "target.bool()).all(dim=1), sample-F1 or mAP"
                ),
            )

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _REAL_LABELS_METHODS:
            line = self.get_metadata(PositionProvider, node).start.line
            if self._module.code_for_node(func.value) in self._real_labels and line not in self._real_labels_lines:
                self._real_labels_lines.add(line)  # ``get_accuracy(k=1), get_accuracy(k=5)``: one finding
                self.report(
                    node,
                    f"RealLabelsImagenet.{func.attr.value} scores the top-k classes of each image against its "
                    "ImageNet-ReaL labels: a top-k accuracy of one ranking per image",
                    suggestion=_LIBRARY_SUGGESTION,
                )
                return
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        library = self._library_top_k(node, qualified)
        if library is not None:
            self.report(
                node,
                f"{library} has no multi-label meaning: there is no single true class to find in the top k",
                suggestion=_LIBRARY_SUGGESTION,
            )
            return
        is_timm = bool(qualified & _TIMM_ACCURACY)
        has_topk = any(arg.keyword is not None and arg.keyword.value == "topk" for arg in node.args)
        if not (is_timm or (has_topk and "accuracy" in _callee_name(node.func))):
            return
        if not is_timm and isinstance(node.func, cst.Name) and node.func.value in self._exact_match_helpers:
            return
        names = self._unpacked_names(node)
        suggestion = "report exact match, sample-F1 or mAP instead (e.g. torchmetrics MultilabelAveragePrecision)"
        if names is not None and len(names) > 1:
            first, rest = names[0].value, ", ".join(n.value for n in names[1:])
            is_error = not is_timm and (
                _callee_name(node.func) in self._error_helpers or bool(_ERROR_NAME.match(first))
            )
            value = f"100 - {_EXACT_MATCH} (the exact-match error)" if is_error else f"{_EXACT_MATCH} (exact match)"
            suggestion = (
                f"{first} = {value}, and drop {rest} and its logging: top-k has no multi-label counterpart"
            )
        self.report(
            node,
            "top-k accuracy has no multi-label meaning and cannot compare against multi-hot targets",
            suggestion=suggestion,
            fix=self._timm_fix(node, names) if is_timm and names is not None and len(names) == 1 else None,
        )

    @staticmethod
    def _library_top_k(call: cst.Call, qualified: set[str]) -> str | None:
        """What a library top-k accuracy call is, in words; None when it is not one."""
        if qualified & _SKLEARN_TOP_K:
            return "scikit-learn's top_k_accuracy_score"
        for name in qualified:
            last = name.rpartition(".")[2]
            if name.startswith("torchmetrics.") and last in _TORCHMETRICS_ACCURACY and is_top_k_beyond_one(call):
                return f"torchmetrics {last}(top_k=...), a top-k accuracy,"
        return None

    def _unpacked_names(self, call: cst.Call) -> list[cst.Name] | None:
        """The names of ``a, b = call``; None for any other statement shape."""
        statement = self.get_metadata(ParentNodeProvider, call, None)
        if not (isinstance(statement, cst.Assign) and len(statement.targets) == 1 and statement.value is call):
            return None
        names = statement.targets[0].target
        elements = names.elements if isinstance(names, (cst.Tuple, cst.List)) else None
        if elements is None or not all(isinstance(e.value, cst.Name) for e in elements):
            return None
        return [e.value for e in elements]

    def _timm_fix(self, call: cst.Call, names: list[cst.Name]) -> Fix | None:
        output = call_argument(call, 0, "output")
        target = call_argument(call, 1, "target")
        statement = self.get_metadata(ParentNodeProvider, call, None)
        if output is None or target is None or not self._flow.is_classifier_scores(output.value):
            return None
        decision = above_threshold(self._flow.sigmoid(output.value), self.context.threshold_name)
        exact = cst.Call(
            func=cst.Attribute(
                value=cst.Call(
                    func=cst.Attribute(
                        value=cst.Call(
                            func=cst.Attribute(
                                value=cst.Comparison(
                                    left=decision.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]),
                                    comparisons=[cst.ComparisonTarget(cst.Equal(), as_bool(target.value))],
                                    lpar=[cst.LeftParen()],
                                    rpar=[cst.RightParen()],
                                ),
                                attr=cst.Name("all"),
                            ),
                            args=[cst.Arg(keyword=cst.Name("dim"), value=cst.Integer("1"), equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))],
                        ),
                        attr=cst.Name("float"),
                    )
                ),
                attr=cst.Name("mean"),
            )
        )
        value = cst.BinaryOperation(left=exact, operator=cst.Multiply(), right=cst.Integer("100"))
        targets = [cst.AssignTarget(target=name) for name in names]
        return Fix(
            edits=(NodeEdit(statement, lambda updated: updated.with_changes(targets=targets, value=value)),),
            applicability=Applicability.UNSAFE,
            add_imports=self._flow.torch_imports,
            needs_threshold=True,
        )
