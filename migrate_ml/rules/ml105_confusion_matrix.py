"""ML105: confusion matrices and per-class accuracy loops assume one label per sample (REVIEW)."""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Fix, ImportEdit, NodeEdit, Rule
from migrate_ml.rules._prefilter import text_facts, walk

_PER_CLASS_COUNTERS = re.compile(r"^(class_correct|class_total|correct_pred|total_pred|class_acc\w*|per_class\w*)$")
_COUNTER_TEXT = re.compile(r"\b(?:class_acc|per_class)\w*\[")
_SKLEARN_CONFUSION = frozenset({"sklearn.metrics.confusion_matrix", "sklearn.metrics._classification.confusion_matrix"})
_MULTILABEL_CONFUSION = "multilabel_confusion_matrix"
_LOGGED_CONFUSION = frozenset({"wandb.plot.confusion_matrix", "wandb.sklearn.plot_confusion_matrix"})
"""Weights & Biases charts of one C x C matrix, built from (y_true, preds) class indices."""
_CONFUSION_PLOTS = frozenset({"plot_confusion_matrix", "ConfusionMatrixDisplay", "from_predictions", "from_estimator"})
"""Plots of one C x C matrix: mlxtend's and scikit-plot's ``plot_confusion_matrix``, sklearn's
``ConfusionMatrixDisplay`` (and its ``from_predictions``), or a notebook's own helper of that name."""
_INDEX_CASTS = frozenset({"long", "int", "item", "cpu"})
"""``cm[t.long(), p.item()]``: the loop's own values, read as indices."""


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
        "from. A plot of the C x C matrix (mlxtend's or scikit-plot's `plot_confusion_matrix`, "
        "sklearn's `ConfusionMatrixDisplay`, a notebook's own `plot_confusion_matrix` helper, "
        "Weights & Biases' `wandb.plot.confusion_matrix(preds=..., y_true=...)`) is "
        "reported where it is drawn or logged. A hand-written one (`for t, p in zip(targets.view(-1), preds.view(-1)): "
        "cm[t, p] += 1`, also over `enumerate(zip(...))`) is reported too. Per-class accuracy loops (`class_correct[label] += c[i]`, the PyTorch CIFAR "
        "tutorial's `correct_pred[classname] += 1`) index a counter by the sample's one label and "
        "must become per-label TP/FP/FN counts over the [B, C] predictions. migrate-ml reports "
        "both; for sklearn's `confusion_matrix` it offers an unsafe rename to "
        "`multilabel_confusion_matrix` (the result changes shape from [C, C] to [C, 2, 2], so the "
        "code that plots or prints it needs a look)."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "cm = confusion_matrix(y_true, y_pred)\n"
    example_after = "cm = multilabel_confusion_matrix(y_true, y_pred)  # [C, 2, 2]: one matrix per label\n"
    triggers = ("confusion_matrix", "ConfusionMatrix", "class_correct", "correct_pred", "class_total", "zip(")

    @classmethod
    def could_apply(cls, source: str) -> bool:
        """A confusion-matrix or per-class counter name, or a ``zip`` loop next to a counter
        updated by subscript (``cm[t, p] += 1``): ``zip(`` alone is in most files."""
        facts = text_facts(source)
        if facts.has_any(trigger for trigger in cls.triggers if trigger != "zip("):
            return True
        return (facts.has("zip(") and _subscript_increment(source)) or (
            facts.has_any(("class_acc", "per_class")) and _COUNTER_TEXT.search(source) is not None
        )
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider)

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A confusion-matrix call, a per-class counter, or a counter updated inside a ``zip`` loop:
        ``zip(`` alone occurs in most files, so the text trigger cannot decide."""
        for node in walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if name.endswith(("confusion_matrix", "ConfusionMatrix", "ConfusionMatrixDisplay")) or (
                    name == "from_predictions" and isinstance(func, ast.Attribute) and "ConfusionMatrixDisplay" in ast.unparse(func.value)
                ):
                    return True
            elif isinstance(node, ast.For) and _is_zip_over_pairs(node):
                return True
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Subscript):
                counter = node.target.value
                if isinstance(counter, ast.Name) and _PER_CLASS_COUNTERS.match(counter.id):
                    return True
        return False

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
        logged = sorted(qualified & _LOGGED_CONFUSION)
        if logged:
            self.report(
                node,
                f"{logged[0]} logs one C x C matrix of (true, predicted) class pairs: one class per sample",
                suggestion=(
                    "log one 2 x 2 matrix per label instead: multilabel_confusion_matrix(y_true, y_pred) on the "
                    "multi-hot arrays, e.g. as a wandb.Table of each label's TP/FP/FN/TN"
                ),
            )
            return
        name = _called_name(node.func)
        plot = name if name in _CONFUSION_PLOTS else next(
            (q.rpartition(".")[2] for q in sorted(qualified) if q.rpartition(".")[2] == "plot_confusion_matrix"), ""
        )
        if plot and self._plots_confusion(node, plot, qualified):
            if plot in ("from_predictions", "from_estimator"):
                plot = f"ConfusionMatrixDisplay.{plot}"
            self.report(
                node,
                f"{plot} draws one C x C matrix of (true, predicted) class pairs, one cell per sample",
                suggestion=(
                    "plot one 2 x 2 matrix per label instead: multilabel_confusion_matrix(y_true, y_pred)[c] "
                    "(or torchmetrics MultilabelConfusionMatrix), titled with the label's name"
                ),
            )
            return
        if name.endswith("ConfusionMatrix") and not name.startswith("Multilabel") and not any(
            q.startswith("torchmetrics.") and "Multilabel" in q for q in qualified
        ):
            self.report(
                node,
                f"{name} counts one (true, predicted) class pair per sample",
                suggestion="use per-label matrices: torchmetrics MultilabelConfusionMatrix(num_labels=C) or sklearn multilabel_confusion_matrix",
            )

    def _plots_confusion(self, call: cst.Call, name: str, qualified: set[str]) -> bool:
        """A confusion-matrix plot; ``from_predictions`` only as ``ConfusionMatrixDisplay``'s."""
        if name in ("from_predictions", "from_estimator"):
            return isinstance(call.func, cst.Attribute) and _called_name(call.func.value) == "ConfusionMatrixDisplay"
        return not any("multilabel" in q.lower() for q in qualified)

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
        loop = self._loops[-1] if self._loops else None
        pair = _pair_counter(target)
        if loop is not None and loop not in self._reported_loops and pair is not None and _counts_pairs(loop, pair[1]):
            self._reported_loops.add(loop)
            self.report(
                node,
                # The cell as the code writes it: which index is the true class is the code's choice.
                f"hand-written confusion matrix: `{cst.Module([]).code_for_node(target)}` puts each sample in one "
                "cell, at its one true and one predicted class",
                suggestion=(
                    "count one 2 x 2 matrix per label over the [B, C] predictions: "
                    "sklearn.metrics.multilabel_confusion_matrix(y_true, y_pred) or torchmetrics MultilabelConfusionMatrix(num_labels=C)"
                ),
            )
            return
        if not (isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name)):
            return
        counter = target.value.value
        if _PER_CLASS_COUNTERS.match(counter) and counter not in self._reported_counters and loop not in self._reported_loops:
            self._reported_counters.add(counter)
            if loop is not None:
                self._reported_loops.add(loop)
            self.report(
                node,
                f"per-class accuracy loop: `{counter}[...]` is indexed by the sample's one label",
                suggestion="count per label over the [B, C] predictions: tp += (pred & y.bool()).sum(0); fp += (pred & ~y.bool()).sum(0); fn += (~pred & y.bool()).sum(0)",
            )


def _subscript_increment(source: str) -> bool:
    """``...] += ``: a counter updated by subscript (``str.find``: a regex here scans every character)."""
    found = source.find("+=")
    while found != -1:
        end = found - 1
        while end >= 0 and source[end] in " \t":
            end -= 1
        if end >= 0 and source[end] == "]":
            return True
        found = source.find("+=", found + 2)
    return False


def _called_name(func: cst.BaseExpression) -> str:
    """The last name of ``f(...)`` or ``a.b.f(...)``; empty for a call of anything else (``x[0]()``)."""
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


def _is_zip_over_pairs(loop: ast.For) -> bool:
    """``for t, p in zip(...)`` whose body adds to a counter with two indices (the shape ``_counts_pairs`` checks)."""
    iterator, target = loop.iter, loop.target
    if (
        isinstance(iterator, ast.Call) and isinstance(iterator.func, ast.Name) and iterator.func.id == "enumerate"
        and iterator.args and isinstance(target, ast.Tuple) and len(target.elts) == 2
    ):
        iterator, target = iterator.args[0], target.elts[1]  # for i, (t, p) in enumerate(zip(...))
    if not (isinstance(iterator, ast.Call) and isinstance(iterator.func, ast.Name) and iterator.func.id == "zip"):
        return False
    if not isinstance(target, ast.Tuple):
        return False
    return any(
        isinstance(node, ast.AugAssign)
        and isinstance(node.target, ast.Subscript)
        # cm[t, p] or cm[t][p]: two indices, as _pair_counter requires
        and (isinstance(node.target.value, ast.Subscript) or (isinstance(node.target.slice, ast.Tuple) and len(node.target.slice.elts) == 2))
        for node in ast.walk(loop)
    )


def _pair_counter(target: cst.BaseExpression) -> tuple[str, list[cst.BaseExpression]] | None:
    """``cm[a, b]`` or ``matrix[a][b]``: the counter's name and its two indices."""
    if not isinstance(target, cst.Subscript):
        return None
    if isinstance(target.value, cst.Name) and len(target.slice) == 2:
        slices, counter = list(target.slice), target.value.value
    elif (
        isinstance(target.value, cst.Subscript)
        and isinstance(target.value.value, cst.Name)
        and len(target.slice) == 1
        and len(target.value.slice) == 1
    ):
        slices, counter = [target.value.slice[0], target.slice[0]], target.value.value.value
    else:
        return None
    if not all(isinstance(element.slice, cst.Index) for element in slices):
        return None
    return counter, [element.slice.value for element in slices]


def _counts_pairs(loop: cst.For, indices: list[cst.BaseExpression]) -> bool:
    """``for t, p in zip(a, b): cm[t, p] += 1``: a counter indexed by the two values the loop
    pairs up sample by sample."""
    iterator, target = loop.iter, loop.target
    if (
        isinstance(iterator, cst.Call) and isinstance(iterator.func, cst.Name) and iterator.func.value == "enumerate"
        and iterator.args and isinstance(target, cst.Tuple) and len(target.elements) == 2
    ):
        iterator, target = iterator.args[0].value, target.elements[1].value  # for i, (t, p) in enumerate(zip(...))
    if not (isinstance(iterator, cst.Call) and isinstance(iterator.func, cst.Name) and iterator.func.value == "zip"):
        return False
    if not isinstance(target, cst.Tuple):
        return False
    paired = {element.value.value for element in target.elements if isinstance(element.value, cst.Name)}
    names = []
    for index in indices:
        while isinstance(index, cst.Call) and not index.args:
            if not (isinstance(index.func, cst.Attribute) and index.func.attr.value in _INDEX_CASTS):
                break
            index = index.func.value
        if isinstance(index, cst.Call) and isinstance(index.func, cst.Name) and index.func.value == "int" and len(index.args) == 1:
            index = index.args[0].value
        names.append(index.value if isinstance(index, cst.Name) else None)
    return names[0] != names[1] and set(names) <= paired
