"""ML105: confusion matrices and per-class accuracy loops assume one label per sample (REVIEW)."""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule

_PER_CLASS_COUNTERS = re.compile(r"^(class_correct|class_total|correct_pred|total_pred|class_acc\w*|per_class\w*)$")
_SKLEARN_CONFUSION = frozenset({"sklearn.metrics.confusion_matrix", "sklearn.metrics._classification.confusion_matrix"})
_MULTILABEL_CONFUSION = "multilabel_confusion_matrix"


class ConfusionMatrixRule(Rule):
    code = "ML105"
    name = "confusion-matrix"
    summary = "Reports confusion matrices and per-class accuracy loops, which index by one label per sample."
    rationale = (
        "A C x C confusion matrix puts each sample in one cell (true class, predicted class); a "
        "multi-label sample has several true and several predicted labels, so it belongs in no "
        "single cell. The multi-label counterpart is one 2 x 2 matrix per label "
        "(`sklearn.metrics.multilabel_confusion_matrix`, torchmetrics "
        "`MultilabelConfusionMatrix`), which is what per-label precision and recall are read "
        "from. Per-class accuracy loops (`class_correct[label] += c[i]`, the PyTorch CIFAR "
        "tutorial's `correct_pred[classname] += 1`) index a counter by the sample's one label and "
        "must become per-label TP/FP/FN counts over the [B, C] predictions. migrate-ml reports "
        "both; for sklearn's `confusion_matrix` it offers an unsafe rename to "
        "`multilabel_confusion_matrix` (the result changes shape from [C, C] to [C, 2, 2], so the "
        "code that plots or prints it needs a look)."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "cm = confusion_matrix(y_true, y_pred)\n"
    example_after = "cm = multilabel_confusion_matrix(y_true, y_pred)  # [C, 2, 2]: one matrix per label\n"
    triggers = ("confusion_matrix", "ConfusionMatrix", "class_correct", "correct_pred", "class_total")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider)

    def visit_Module(self, node: cst.Module) -> None:
        self._reported_counters: set[str] = set()
        self._loops: list[cst.For] = []
        self._reported_loops: set[cst.For] = set()
        """One finding per counting loop: its counters (class_correct, class_total) are one construct."""

    def visit_For(self, node: cst.For) -> None:
        self._loops.append(node)

    def leave_For(self, original_node: cst.For) -> None:
        self._loops.pop()

    def visit_Call(self, node: cst.Call) -> None:
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        if qualified & _SKLEARN_CONFUSION:
            self.report(
                node,
                "a C x C confusion matrix puts each sample in one cell; multi-label samples need one 2 x 2 matrix per label",
                suggestion="use sklearn.metrics.multilabel_confusion_matrix(y_true, y_pred) on multi-hot arrays (run with --unsafe-fixes to rename)",
                fix=self._rename_fix(node),
            )
            return
        name = node.func.attr.value if isinstance(node.func, cst.Attribute) else getattr(node.func, "value", "")
        if name.endswith("ConfusionMatrix") and not name.startswith("Multilabel") and not any(
            q.startswith("torchmetrics.") and "Multilabel" in q for q in qualified
        ):
            self.report(
                node,
                f"{name} counts one (true, predicted) class pair per sample",
                suggestion="use per-label matrices: torchmetrics MultilabelConfusionMatrix(num_labels=C) or sklearn multilabel_confusion_matrix",
            )

    def _rename_fix(self, call: cst.Call) -> Fix:
        func = call.func
        if isinstance(func, cst.Attribute):
            return Fix(
                edits=(NodeEdit(call, lambda updated: updated.with_changes(func=updated.func.with_changes(attr=cst.Name(_MULTILABEL_CONFUSION)))),),
                applicability=Applicability.UNSAFE,
            )
        assert isinstance(func, cst.Name)
        asname = func.value if func.value != "confusion_matrix" else None
        return Fix(
            edits=(NodeEdit(call, lambda updated: updated.with_changes(func=cst.Name(_MULTILABEL_CONFUSION))),),
            applicability=Applicability.UNSAFE,
            add_imports=(ImportEdit("sklearn.metrics", _MULTILABEL_CONFUSION),),
            remove_imports=(ImportEdit("sklearn.metrics", "confusion_matrix", asname),),
        )

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        target = node.target
        if not (isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name)):
            return
        counter = target.value.value
        loop = self._loops[-1] if self._loops else None
        if _PER_CLASS_COUNTERS.match(counter) and counter not in self._reported_counters and loop not in self._reported_loops:
            self._reported_counters.add(counter)
            if loop is not None:
                self._reported_loops.add(loop)
            self.report(
                node,
                f"per-class accuracy loop: `{counter}[...]` is indexed by the sample's one label",
                suggestion="count per label over the [B, C] predictions: tp += (pred & y.bool()).sum(0); fp += (pred & ~y.bool()).sum(0); fn += (~pred & y.bool()).sum(0)",
            )
