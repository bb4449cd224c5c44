"""ML022: torchmetrics multiclass metrics become their multilabel forms, fed probabilities."""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule
from migrate_ml.rules._prefilter import text_facts
from migrate_ml.rules._exprs import append_argument, method_call
from migrate_ml.rules.semantics.flow import call_argument
from migrate_ml.rules.semantics.prediction_provider import PredictionFlowProvider
from migrate_ml.rules.semantics.predictions import PredictionFlow, strip_transparent
from migrate_ml.rules.semantics.tables import TORCHMETRICS_TASK_METRICS as _TASK_METRICS

# Task-dispatching functions, by their last name component: True when they take a threshold.
_TASK_FUNCTIONS = {"accuracy": True, "f1_score": True, "precision": True, "recall": True, "auroc": False, "average_precision": False}
_INTEGER_CASTS = frozenset({"int", "long", "bool"})
_EXACT_MATCH = {
    "Accuracy": "ExactMatch",
    "accuracy": "exact_match",
    "MulticlassAccuracy": "MultilabelExactMatch",
    "multiclass_accuracy": "multilabel_exact_match",
}
"""Accuracy becomes exact match, as hand-written accuracy does (ML021); see the rationale."""
_EXACT_MATCH_DROPS = frozenset({"top_k", "average"})
"""Multiclass accuracy arguments exact match does not take (``average`` has no per-sample meaning)."""
_UNIMPORTED_MULTICLASS = re.compile(
    r"\b(?:(?:Accuracy|F1Score|Precision|Recall|AUROC|AveragePrecision)\(\s*task\s*=\s*[\"']multiclass"
    r"|Multiclass(?:Accuracy|F1Score|Precision|Recall|AUROC|AveragePrecision)\()"
)
"""torchmetrics' own spellings, for snippets that use them without importing them (course code)."""
_METRIC_COLLECTIONS = frozenset({"torchmetrics.MetricCollection", "torchmetrics.collections.MetricCollection"})


def is_top_k_beyond_one(call: cst.Call) -> bool:
    """``top_k=5`` (or a ``top_k`` that is not the literal 1): a top-k metric, which no
    thresholded multi-label metric replaces."""
    top_k = _keyword(call, "top_k")
    return top_k is not None and not (isinstance(top_k.value, cst.Integer) and top_k.value.evaluated_value == 1)


def _keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((arg for arg in call.args if arg.keyword is not None and arg.keyword.value == name), None)


def _is_string(arg: cst.Arg | None, value: str) -> bool:
    return arg is not None and isinstance(arg.value, cst.SimpleString) and arg.value.evaluated_value == value


def _task_index(call: cst.Call) -> int | None:
    """Where the task is: ``task=`` or the first positional string (``Accuracy("multiclass", ...)``,
    ``accuracy(preds, target, "multiclass")``)."""
    for index, arg in enumerate(call.args):
        if (arg.keyword is not None and arg.keyword.value == "task") or (
            arg.keyword is None and not arg.star and isinstance(arg.value, cst.SimpleString)
        ):
            return index
    return None


def _chooses_multiclass(arg: cst.Arg | None) -> bool:
    """``task="binary" if num_classes == 1 else "multiclass"``: multiclass whenever the run has
    several classes, under a condition the rewrite cannot settle (exact match has no binary task)."""
    if arg is None or not isinstance(arg.value, cst.IfExp):
        return False
    branches = (cst.Arg(arg.value.body), cst.Arg(arg.value.orelse))
    return any(_is_string(branch, "multiclass") or _chooses_multiclass(branch) for branch in branches)


def _task(call: cst.Call) -> cst.Arg | None:
    index = _task_index(call)
    return None if index is None else call.args[index]


def _string_like(original: cst.SimpleString, value: str) -> cst.SimpleString:
    quote = original.quote
    return cst.SimpleString(f"{original.prefix}{quote}{value}{quote}")


class TorchmetricsMultilabelRule(Rule):
    code = "ML022"
    name = "torchmetrics-multilabel"
    summary = (
        "torchmetrics multiclass metrics become multilabel (num_labels=K, threshold=THRESHOLD), accuracy "
        "becomes exact match, fed sigmoid probabilities and int targets."
    )
    rationale = (
        "A torchmetrics multiclass metric takes class indices or one score row per sample and "
        "counts one hit per sample; given multi-hot targets it fails its shape checks, or worse, "
        "scores the wrong thing. The multilabel metrics score each label independently: "
        "`MulticlassF1Score(K)` becomes `MultilabelF1Score(K, threshold=THRESHOLD)` and "
        "`F1Score(task=\"multiclass\", num_classes=K)` becomes `F1Score(task=\"multilabel\", "
        "num_labels=K, threshold=THRESHOLD)` (likewise Precision, Recall, AUROC and "
        "AveragePrecision, the last two without a threshold; `top_k` has no multilabel meaning and "
        "is dropped). The task counts however it is given: `task=` or positionally "
        "(`Accuracy(\"multiclass\", num_classes=K)`, `accuracy(preds, y, \"multiclass\")`). Top-k accuracy (`top_k` other than 1) is left as it is and reported by "
        "ML102: an exact match logged as `acc@5` would be a made-up top-5. Accuracy is the exception: `MultilabelAccuracy` is per-label accuracy, the "
        "mean over labels of (TP + TN) / N, which on sparse labels is dominated by the true "
        "negatives (a model predicting nothing scores about 1 - label density), disagrees with "
        "the exact match ML021 gives hand-written accuracy in the same project, and is what "
        "`migrate-ml verify` flags as accuracy inflated by negatives. So "
        "`Accuracy(task=\"multiclass\", num_classes=K)` becomes `ExactMatch(task=\"multilabel\", "
        "num_labels=K, threshold=THRESHOLD)`, `MulticlassAccuracy(K)` becomes "
        "`MultilabelExactMatch(K, threshold=THRESHOLD)` and the functional `accuracy(..., "
        "task=\"multiclass\")`/`multiclass_accuracy` become `exact_match`/`multilabel_exact_match` "
        "(their `average` and `top_k` go: exact match is one hit or miss per sample); the fraction "
        "of images with every label right, so a `val_acc` monitor keeps its meaning. For a "
        "softer score log the F1 or AveragePrecision metrics beside it. torchmetrics applies a "
        "sigmoid only when the values fall outside [0, 1], so a batch of logits that happens to "
        "lie inside it would be thresholded raw: the proven classifier logits passed to "
        "`update()`, to the metric call or to the function become `torch.sigmoid(z)` (a softmax "
        "over them becomes a sigmoid), and the targets become `.int()`, as multilabel metrics "
        "require integer targets. A snippet that uses `Accuracy(task=\"multiclass\", ...)` or "
        "`MulticlassF1Score(...)` without importing them anywhere (course listings) is reported, "
        "not rewritten: which library the name comes from is not known. A binary metric bound to the "
        "same attribute as a converted multiclass one in another branch (`if num_classes == 2: "
        "self.accuracy = Accuracy(task=\"binary\")`) is the two-class case of the same classifier: on "
        "multi-hot rows it would score each label decision on its own, so it is reported with the "
        "multilabel spelling (the branch is chosen at run time)."
    )
    applicability = Applicability.SAFE
    example_before = (
        "self.val_acc = torchmetrics.Accuracy(task=\"multiclass\", num_classes=10)\n"
        "self.val_acc.update(logits, y)\n"
    )
    example_after = (
        "self.val_acc = torchmetrics.ExactMatch(task=\"multilabel\", num_labels=10, threshold=THRESHOLD)\n"
        "self.val_acc.update(torch.sigmoid(logits), y.int())\n"
    )
    triggers = ("multiclass", "Multiclass")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider, ParentNodeProvider, PredictionFlowProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        facts = text_facts(source)
        if not facts.has("ulticlass"):
            return False  # both tests below need "multiclass" or "Multiclass"
        return (facts.has("torchmetrics") and super().could_apply(source)) or _UNIMPORTED_MULTICLASS.search(source) is not None

    def visit_Module(self, node: cst.Module) -> None:
        self._flow: PredictionFlow = self.get_metadata(PredictionFlowProvider, node)
        self._metric_objects: dict[str, cst.Call] = {}
        self._feeds: list[cst.Call] = []
        self._clones: list[tuple[str, str]] = []
        self._binary_metrics: list[tuple[cst.Call, str]] = []
        """``Accuracy(task="binary")``: the two-class case where another branch binds the multiclass metric."""

    def _names(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set()) if q.name.startswith("torchmetrics.")}

    def visit_Call(self, node: cst.Call) -> None:
        names = self._names(node.func)
        for name in names:
            last = name.rpartition(".")[2]
            if last in _EXACT_MATCH and is_top_k_beyond_one(node):
                return  # top-k accuracy: ML102 reports it; exact match under its name would be made up
            if ".functional." in name or name.startswith("torchmetrics.functional"):
                if last in _TASK_FUNCTIONS and _is_string(_task(node), "multiclass"):
                    self._convert(node, _TASK_FUNCTIONS[last], rename=_EXACT_MATCH.get(last), feeds=True, qualified=name)
                elif last.startswith("multiclass_") and last.removeprefix("multiclass_") in _TASK_FUNCTIONS:
                    self._convert(node, _TASK_FUNCTIONS[last.removeprefix("multiclass_")], rename=_EXACT_MATCH.get(last, last.replace("multiclass_", "multilabel_")), feeds=True, qualified=name)
                return
            if last in _TASK_METRICS and _is_string(_task(node), "multiclass"):
                self._convert(node, _TASK_METRICS[last], rename=_EXACT_MATCH.get(last), feeds=False, qualified=name)
            elif last in _TASK_METRICS and _chooses_multiclass(_keyword(node, "task")):
                self.report(
                    node,
                    f"{last}'s task is chosen by a condition and is \"multiclass\" in one branch: "
                    "a multiclass metric counts one class per sample; multi-hot targets need the multilabel metric",
                    suggestion=(
                        f'in that branch use the multilabel task: {_EXACT_MATCH.get(last, last)}(task="multilabel", '
                        "num_labels=C, threshold=THRESHOLD), fed sigmoid probabilities and int multi-hot targets"
                    ),
                )
            elif last in _TASK_METRICS and _is_string(_task(node), "binary"):
                self._binary_metrics.append((node, last))
            elif last.startswith("Multiclass") and last.removeprefix("Multiclass") in _TASK_METRICS:
                self._convert(node, _TASK_METRICS[last.removeprefix("Multiclass")], rename=_EXACT_MATCH.get(last, last.replace("Multiclass", "Multilabel")), feeds=False, qualified=name)
            return
        if isinstance(node.func, cst.Name) and self._unimported_multiclass(node.func):
            self.report(
                node,
                f"{node.func.value}(...) is not imported in this file, but its arguments are torchmetrics': "
                "a multiclass metric counts one class per sample; multi-hot targets need the multilabel metric",
                suggestion=(
                    'use the multilabel task: ExactMatch(task="multilabel", num_labels=C, threshold=THRESHOLD) for '
                    "accuracy (F1Score/Precision/Recall alike), fed sigmoid probabilities and int multi-hot targets"
                ),
            )
            return
        if node.args and len(node.args) >= 2:
            self._feeds.append(node)
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value == "clone":
            parent = self.get_metadata(ParentNodeProvider, node, None)
            if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
                # Lightning's `self.val_metrics = metrics.clone(prefix="val_")`
                self._clones.append((self._code(parent.targets[0].target), self._code(node.func.value)))

    def _unimported_multiclass(self, func: cst.Name) -> bool:
        """``Accuracy(task="multiclass", ...)`` or ``MulticlassF1Score(...)`` with the name bound nowhere."""
        if self.get_metadata(QualifiedNameProvider, func, set()):
            return False
        call = self.get_metadata(ParentNodeProvider, func, None)
        name = func.value
        if name.startswith("Multiclass"):
            return name.removeprefix("Multiclass") in _TASK_METRICS
        return name in _TASK_METRICS and isinstance(call, cst.Call) and _is_string(_keyword(call, "task"), "multiclass")

    def leave_Module(self, original_node: cst.Module) -> None:
        for copy, source in self._clones:
            if source in self._metric_objects:
                self._metric_objects[copy] = self._metric_objects[source]
        for call, last in self._binary_metrics:
            self._binary_beside_multiclass(call, last)
        for call in self._feeds:
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in ("update", "forward"):
                func = func.value
            key = self._code(func)
            construction = self._metric_objects.get(key)
            if construction is not None:
                self._report_feed(call, construction)

    def _binary_beside_multiclass(self, call: cst.Call, last: str) -> None:
        """``self.accuracy = Accuracy(task="binary")`` where another branch binds ``self.accuracy`` to
        the multiclass metric this rule converts: the two-class case of the same classifier (its
        cross-entropy over two classes). On the migrated multi-hot rows the binary task scores every
        label decision on its own, a label-wise accuracy, not the multilabel metric of the other
        branch; the branch is chosen at run time, so it is reported, not rewritten."""
        parent = self.get_metadata(ParentNodeProvider, call, None)
        if not (isinstance(parent, cst.Assign) and len(parent.targets) == 1):
            return
        target = self._code(parent.targets[0].target)
        if target not in self._metric_objects:
            return
        spelled = _EXACT_MATCH.get(last, last)
        self.report(
            call,
            f'{last}(task="binary") is the two-class case of {target}, which another branch makes a multiclass '
            "metric: on multi-hot [B, C] rows the binary task scores each label decision on its own (label-wise), "
            "not as the multilabel metric the other branch becomes",
            suggestion=(
                f'use the multilabel task in this branch too: {spelled}(task="multilabel", num_labels=C, '
                f"threshold={self.context.threshold_name}) with C the number of labels (2 here)"
            ),
            judged_on_original=True,  # the other branch's multiclass metric is gone once converted
        )

    def _code(self, node: cst.CSTNode) -> str:
        return cst.Module(body=[]).code_for_node(node)

    def _convert(self, call: cst.Call, takes_threshold: bool, rename: str | None, feeds: bool, qualified: str = "") -> None:
        threshold = self.context.threshold_name
        num_classes = _keyword(call, "num_classes")
        dropped = _EXACT_MATCH_DROPS if rename in _EXACT_MATCH.values() else frozenset({"top_k"})

        def apply(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.Call)
            args = []
            task_index = _task_index(updated)
            for index, arg in enumerate(updated.args):
                keyword = arg.keyword.value if arg.keyword is not None else None
                if keyword in dropped:
                    continue
                if index == task_index:
                    assert isinstance(arg.value, cst.SimpleString)
                    arg = arg.with_changes(value=_string_like(arg.value, "multilabel"))
                elif keyword == "num_classes":
                    arg = arg.with_changes(keyword=cst.Name("num_labels"))
                args.append(arg)
            last = updated.args[-1] if updated.args else None
            if args and last is not None and last.keyword is not None and last.keyword.value in dropped:
                # The call's ending (trailing comma, line break before ")") survives its dropped last argument.
                args[-1] = args[-1].with_changes(comma=last.comma, whitespace_after_arg=last.whitespace_after_arg)
            if takes_threshold and _keyword(updated, "threshold") is None:
                new = cst.Arg(keyword=cst.Name("threshold"), value=cst.Name(threshold), equal=_tight_equal(args))
                args = append_argument(args, new, updated.whitespace_before_args)
            func = updated.func
            if rename is not None:
                func = func.with_changes(attr=cst.Name(rename)) if isinstance(func, cst.Attribute) else cst.Name(rename)
            return updated.with_changes(func=func, args=args)

        edits = [NodeEdit(call, apply)]
        add_imports: tuple[ImportEdit, ...] = ()
        remove_imports: tuple[ImportEdit, ...] = ()
        if rename is not None and isinstance(call.func, cst.Name):
            module = qualified.rpartition(".")[0]
            if rename in _EXACT_MATCH.values() and module.endswith(".accuracy"):
                module = module.removesuffix(".accuracy") + ".exact_match"  # imported from the defining module
            add_imports = (ImportEdit(module, rename),)
            remove_imports = (ImportEdit(module, call.func.value),)
        if feeds:
            edits.extend(self._feed_edits(call, 0))
            add_imports += self._flow.torch_imports
        message = "a multiclass metric counts one class per sample; multi-hot targets need the multilabel metric"
        if num_classes is None and not (rename and call.args and call.args[0].keyword is None):
            message += " (num_labels= must be given)"
        self.report(
            call,
            message,
            fix=Fix(edits=tuple(edits), add_imports=add_imports, remove_imports=remove_imports, needs_threshold=takes_threshold),
        )
        if not feeds:
            self._record_object(call)

    def _record_object(self, call: cst.Call) -> None:
        """Remember what the metric object is bound to, so that its feeds get probabilities; a
        metric inside a ``MetricCollection`` is fed through the collection."""
        bound: cst.CSTNode = self._enclosing_collection(call) or call
        parent = self.get_metadata(ParentNodeProvider, bound, None)
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            self._metric_objects[self._code(parent.targets[0].target)] = call

    def _enclosing_collection(self, call: cst.Call) -> cst.Call | None:
        """The ``MetricCollection(...)`` call whose list, tuple or dict ``call`` is an item of."""
        node: cst.CSTNode = call
        for _ in range(4):  # Arg, or element/DictElement + List/Tuple/Dict + Arg
            node = self.get_metadata(ParentNodeProvider, node, None)
            if isinstance(node, cst.Call):
                return node if self._names(node.func) & _METRIC_COLLECTIONS else None
            if not isinstance(node, (cst.Arg, cst.Element, cst.DictElement, cst.List, cst.Tuple, cst.Dict)):
                return None
        return None

    def _feed_edits(self, call: cst.Call, first: int) -> list[NodeEdit]:
        """Edits turning ``(logits, y)`` into ``(torch.sigmoid(logits), y.int())``."""
        edits = []
        preds = call_argument(call, first, "preds")
        target = call_argument(call, first + 1, "target")
        if preds is not None:
            scores = self._scores_behind(preds.value)
            if scores is not None:
                index = call.args.index(preds)
                sigmoid = self._flow.sigmoid(scores)
                edits.append(NodeEdit(call, lambda updated, i=index: _replace_argument(updated, i, lambda _: sigmoid)))
        if target is not None and not _integer_cast(target.value):
            index = call.args.index(target)
            edits.append(NodeEdit(call, lambda updated, i=index: _replace_argument(updated, i, lambda v: method_call(v, "int"))))
        return edits

    def _scores_behind(self, expression: cst.BaseExpression) -> cst.BaseExpression | None:
        """Logits to wrap in a sigmoid: the proven scores, or the input of a softmax over them."""
        inner = strip_transparent(expression)
        for softmax in self._flow.softmaxes:
            if softmax.call is inner:
                return softmax.scores
        if self._flow.is_classifier_scores(expression):
            return expression
        return None

    def _report_feed(self, call: cst.Call, construction: cst.Call) -> None:
        edits = self._feed_edits(call, 0)
        if not edits:
            return
        self.report(
            call,
            "multilabel metrics need probabilities and integer targets: torchmetrics only applies a sigmoid to values outside [0, 1]",
            fix=Fix(edits=tuple(edits), add_imports=self._flow.torch_imports),
            extra_nodes=[construction],
        )


def _tight_equal(args: list[cst.Arg]) -> cst.AssignEqual | cst.MaybeSentinel:
    """Match the spacing of the call's existing keywords (``k=v`` unless they use ``k = v``)."""
    for arg in args:
        if arg.keyword is not None and isinstance(arg.equal, cst.AssignEqual):
            return arg.equal
    return cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


def _integer_cast(expression: cst.BaseExpression) -> bool:
    return (
        isinstance(expression, cst.Call)
        and isinstance(expression.func, cst.Attribute)
        and expression.func.attr.value in _INTEGER_CASTS
        and not expression.args
    )


def _replace_argument(call: cst.Call, index: int, transform) -> cst.Call:
    args = list(call.args)
    args[index] = args[index].with_changes(value=transform(args[index].value))
    return call.with_changes(args=args)
