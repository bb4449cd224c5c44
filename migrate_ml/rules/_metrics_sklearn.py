"""ML023's scikit-learn side: which metrics accept a multi-label prediction, and the `average` fix.

``f1_score`` and its siblings default to ``average="binary"``, which raises on multi-hot input;
the fix makes such a call average over every label decision (``"micro"``).
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import QualifiedNameProvider, QualifiedNameSource

from migrate_ml.rules._base import NodeEdit
from migrate_ml.rules._exprs import append_argument

SKLEARN_AVERAGE_DEFAULT = {
    "f1_score": "binary",
    "precision_score": "binary",
    "recall_score": "binary",
    "fbeta_score": "binary",
    "jaccard_score": "binary",
    "precision_recall_fscore_support": None,
}
"""scikit-learn metrics taking ``average=``, with their default (``binary`` rejects multi-hot input)."""

SKLEARN_MULTILABEL = frozenset({"accuracy_score", "classification_report", "hamming_loss", *SKLEARN_AVERAGE_DEFAULT})
"""scikit-learn metrics that accept a multi-label indicator ``y_pred`` (accuracy_score: subset accuracy)."""

LITERAL_AVERAGES = (cst.SimpleString, cst.ConcatenatedString)

LABEL_COLUMNS = frozenset({"label", "target", "class", "class_id", "class_idx", "label_id", "label_idx", "category"})
"""A table's one label column (``df.label``, ``df["target"]``): one class index per row."""
_COLUMN_READS = frozenset({"values", "to_numpy", "tolist", "to_list", "astype"})


class SklearnMetrics:
    """Mixin for ML023: recognise scikit-learn metric calls and fix their ``average``."""

    def _sklearn_metric(self, call: cst.Call) -> str | None:
        for name in self._qualified(call.func):
            module, _, last = name.rpartition(".")
            if module.startswith("sklearn.metrics") and last in SKLEARN_MULTILABEL:
                return last
        return None

    def _average_edit(self, call: cst.Call) -> NodeEdit | None:
        """``average="binary"`` or the binary default -> ``average="micro"``; one edit per call."""
        key = id(call)
        if key in self._average_edits:
            return self._average_edits[key]
        metric = self._sklearn_metric(call)
        edit = None
        if metric in SKLEARN_AVERAGE_DEFAULT:
            average = next((a for a in call.args if a.keyword is not None and a.keyword.value == "average"), None)
            if average is None and SKLEARN_AVERAGE_DEFAULT[metric] == "binary":
                edit = NodeEdit(call, add_micro_average)
            elif (
                average is not None
                and isinstance(average.value, cst.SimpleString)
                and average.value.evaluated_value == "binary"
            ):
                edit = NodeEdit(call, binary_to_micro)
        self._average_edits[key] = edit
        return edit

    def _takes_rows_as_is(self, call: cst.Call) -> bool:
        """A scikit-learn metric call that scores multi-hot rows unchanged: no binary ``average``
        (written or by default), and no ``labels=`` or ``output_dict=`` whose class list or
        ``report["accuracy"]`` the rows would break. accuracy_score is not one: on rows it turns
        into subset accuracy (exact match), a different number worth its note."""
        metric = self._sklearn_metric(call)
        if metric is None or metric == "accuracy_score":
            return False
        keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
        if "labels" in keywords or "output_dict" in keywords:
            return False
        if metric not in SKLEARN_AVERAGE_DEFAULT:
            return True
        average = keywords.get("average")
        if average is None:
            return SKLEARN_AVERAGE_DEFAULT[metric] is None
        if isinstance(average, cst.Name):
            return average.value == "None"
        return isinstance(average, cst.SimpleString) and average.evaluated_value != "binary"

    def _label_column(self, call: cst.Call) -> str | None:
        """``df.label.values`` (or ``df["label"]``) as ``y_true`` of a scikit-learn metric: the
        name of the one label column, else None."""
        if self._sklearn_metric(call) is None:
            return None
        y_true = next((a for a in call.args if a.keyword is not None and a.keyword.value == "y_true"), None)
        if y_true is None and call.args and call.args[0].keyword is None:
            y_true = call.args[0]
        if y_true is None:
            return None
        column = y_true.value
        while True:
            if isinstance(column, cst.Call) and isinstance(column.func, cst.Attribute) and column.func.attr.value in _COLUMN_READS:
                column = column.func.value
            elif isinstance(column, cst.Attribute) and column.attr.value in _COLUMN_READS:
                column = column.value
            else:
                break
        if isinstance(column, cst.Attribute) and column.attr.value in LABEL_COLUMNS:
            return column.attr.value
        if (
            isinstance(column, cst.Subscript)
            and len(column.slice) == 1
            and isinstance(column.slice[0].slice, cst.Index)
            and isinstance(column.slice[0].slice.value, cst.SimpleString)
            and column.slice[0].slice.value.evaluated_value in LABEL_COLUMNS
        ):
            return column.slice[0].slice.value.evaluated_value
        return None

    def _report_flag_averages(self, metric_calls: list[cst.Call]) -> list[cst.Arg]:
        """``average=args.metrics_avg``: a value migrate-ml cannot read, reported once per metric call."""
        flagged = []
        for metric in metric_calls:
            average = next((a for a in metric.args if a.keyword is not None and a.keyword.value == "average"), None)
            if average is None or isinstance(average.value, LITERAL_AVERAGES) or (
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

    def _qualified(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def _imported(self, node: cst.CSTNode) -> bool:
        if not isinstance(node, (cst.Name, cst.Attribute)):
            return False
        return any(q.source is QualifiedNameSource.IMPORT for q in self.get_metadata(QualifiedNameProvider, node, set()))


def _string_like(original: cst.SimpleString, value: str) -> cst.SimpleString:
    return cst.SimpleString(f"{original.prefix}{original.quote}{value}{original.quote}")


def _micro(equal: cst.AssignEqual | cst.MaybeSentinel) -> cst.Arg:
    return cst.Arg(keyword=cst.Name("average"), value=cst.SimpleString('"micro"'), equal=equal)


def add_micro_average(updated: cst.CSTNode) -> cst.CSTNode:
    assert isinstance(updated, cst.Call)
    args = list(updated.args)
    equal: cst.AssignEqual | cst.MaybeSentinel = cst.AssignEqual(
        whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
    )
    for arg in args:
        if arg.keyword is not None and isinstance(arg.equal, cst.AssignEqual):
            equal = arg.equal
            break
    args = append_argument(args, _micro(equal), updated.whitespace_before_args)
    return updated.with_changes(args=args)


def binary_to_micro(updated: cst.CSTNode) -> cst.CSTNode:
    assert isinstance(updated, cst.Call)
    args = []
    for arg in updated.args:
        if arg.keyword is not None and arg.keyword.value == "average" and isinstance(arg.value, cst.SimpleString):
            arg = arg.with_changes(value=_string_like(arg.value, "micro"))
        args.append(arg)
    return updated.with_changes(args=args)
