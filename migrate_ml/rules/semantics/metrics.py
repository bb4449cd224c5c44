"""Metrics known by what they compute, not by how they are spelled.

* Library metric APIs as data (:data:`METRIC_APIS`): a qualified name (or a suffix starting with a
  dot) and what the metric computes; a newcomer adds a library's metric by adding a row.
* The user's own metric helpers judged by their body (:func:`single_label_metrics`): a function or
  method that compares a predicted class with the label of each sample and counts the matches
  (``(pred.view(-1) == target.view(-1)).sum()``, ``correct += pred.eq(target).sum()``, an error
  rate ``1 - acc``, error cases collected by ``if output != target``), where the prediction is an
  arg-max or comes through a ``"multiclass"`` default; and every ``label_type="multiclass"`` /
  ``task="multiclass"`` default (:func:`multiclass_defaults`), which picks the single-label branch
  for each caller that does not pass it.
* An arg-max over the class axis compared with a label column (:func:`argmax_against_labels`).

:mod:`sinks` reports what these prove; ``engine/project.py`` hands the run's single-label metric
helpers to the files that import them (``FileFacts.single_label_metrics``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from migrate_ml.rules._prefilter import module_functions, text_facts

TRIGGER_WORDS = ("ulticlass", "ccuracy", "log_loss(", "metrics=", "plot.roc_curve", "plot.pr_curve")
"""Words of a file this module has something to say about (the safety net's text pre-filter)."""
HELPER_WORDS = (("multiclass", "argmax", "topk", ".max("), ("==", "!=", ".eq(", ".ne("))
"""A file may hold a single-label metric helper only with a word of each group."""
RUN_TRIGGER_WORDS = (b"multiclass",)
"""Words of a file of the run worth parsing for single-label metric helpers its importers call."""

MULTICLASS = "multiclass"
"""The value of a ``label_type``/``task`` parameter that selects one class per sample."""


@dataclass(frozen=True)
class MetricApi:
    names: tuple[str, ...]
    """Qualified names; one starting with a dot matches any module ending that way."""
    what: str
    advice: str
    needs_labels: bool = False
    """Only when its first argument is the class labels (a label column, class indices)."""


_MULTILABEL_ADVICE = (
    "score multi-hot [B, C] labels per label: torchmetrics MultilabelAveragePrecision, MultilabelF1Score, "
    "MultilabelHammingDistance or MultilabelExactMatch on sigmoid outputs (threshold=THRESHOLD)"
)

METRIC_APIS: tuple[MetricApi, ...] = (
    MetricApi(
        ("homura.callbacks.AccuracyCallback", "homura.callbacks.metrics.AccuracyCallback", ".callbacks.AccuracyCallback"),
        "homura's AccuracyCallback counts the images whose arg-max (top-k with k=) is their one class index",
        f"drop it from the callbacks and {_MULTILABEL_ADVICE}",
    ),
    MetricApi(
        ("homura.metrics.accuracy", "homura.metrics.commons.accuracy"),
        "homura's accuracy compares the arg-max of each image with its one class index",
        _MULTILABEL_ADVICE,
    ),
    MetricApi(
        ("sklearn.metrics.log_loss", "sklearn.metrics._classification.log_loss"),
        "log_loss scores the probability of the one true class of each sample (it normalises each row of "
        "probabilities to sum to 1)",
        "score each label on its own: sklearn.metrics.log_loss(y[:, j], p[:, j]) per column, or "
        "F.binary_cross_entropy(torch.sigmoid(logits), y.float()) on multi-hot [N, C] labels",
        needs_labels=True,
    ),
    MetricApi(
        ("wandb.plot.roc_curve", "wandb.plot.pr_curve"),
        "Weights & Biases' ROC and precision-recall plots take one class index per sample in y_true and "
        "score each class one-vs-rest against it",
        "plot each label as its own binary problem: wandb.plot.roc_curve(y[:, j], np.stack([1 - p[:, j], p[:, j]], 1)) "
        "per label on the multi-hot labels and sigmoid probabilities, or log sklearn's roc_auc_score(y, p, average=None)",
    ),
)
"""Library metrics that count one class per sample, whatever their arguments."""

PREDICTION_METRICS = frozenset(
    {
        "sklearn.metrics.accuracy_score", "sklearn.metrics.balanced_accuracy_score", "sklearn.metrics.precision_score",
        "sklearn.metrics.recall_score", "sklearn.metrics.f1_score", "sklearn.metrics.fbeta_score",
        "sklearn.metrics.jaccard_score", "sklearn.metrics.precision_recall_fscore_support",
        "sklearn.metrics.classification_report", "sklearn.metrics.matthews_corrcoef",
        "sklearn.metrics.cohen_kappa_score", "sklearn.metrics.hamming_loss", "sklearn.metrics.zero_one_loss",
        "imblearn.metrics.specificity_score", "imblearn.metrics.sensitivity_score",
        "imblearn.metrics.geometric_mean_score", "imblearn.metrics.sensitivity_specificity_support",
        "imblearn.metrics.classification_report_imbalanced",
    }
)
"""scikit-learn and imbalanced-learn metrics of ``(y_true, y_pred)`` class decisions. The confusion
matrix (ML105) and the top-k score (ML102) have rules of their own."""

SINGLE_LABEL_ONLY = frozenset(
    {
        "balanced_accuracy_score", "matthews_corrcoef", "cohen_kappa_score", "specificity_score", "sensitivity_score",
        "geometric_mean_score", "sensitivity_specificity_support", "classification_report_imbalanced",
    }
)
"""Those of :data:`PREDICTION_METRICS` that reject multi-label indicator input (scikit-learn:
"multilabel-indicator is not supported"; imbalanced-learn: "imblearn does not support multilabel")."""

ONE_VS_REST_SCORES = frozenset(
    {"sklearn.metrics.roc_curve", "sklearn.metrics.roc_auc_score", "sklearn.metrics.precision_recall_curve",
     "sklearn.metrics.average_precision_score", "sklearn.metrics.det_curve"}
)
"""scikit-learn metrics of one binary decision's ``(y_true, y_score)``: given ``labels == i`` and
``probs[:, i]`` they score class ``i`` one-vs-rest, with ``labels`` one class index per sample."""

KERAS_ACCURACIES = frozenset(
    {"accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy", "top_k_categorical_accuracy",
     "sparse_top_k_categorical_accuracy"}
)
"""``metrics=["accuracy"]`` of a Keras-like trainer wrapper: the accuracy of one class per sample."""

_EXACT = {name: api for api in METRIC_APIS for name in api.names if not name.startswith(".")}
_SUFFIXES = tuple((name, api) for api in METRIC_APIS for name in api.names if name.startswith("."))


def metric_api(qualified: str) -> MetricApi | None:
    """The row of a library metric, by qualified name (or by its suffix)."""
    found = _EXACT.get(qualified)
    if found is not None or "." not in qualified:
        return found
    return next((api for suffix, api in _SUFFIXES if qualified.endswith(suffix)), None)


def keras_accuracy(call: ast.Call) -> ast.AST | None:
    """The ``metrics=["accuracy"]`` list of a call; None where it names none."""
    for keyword in call.keywords:
        if keyword.arg == "metrics" and isinstance(keyword.value, (ast.List, ast.Tuple)):
            if any(isinstance(e, ast.Constant) and e.value in KERAS_ACCURACIES for e in keyword.value.elts):
                return keyword.value
    return None


# -- the user's own helpers

HELPER_ADVICE = (
    "score multi-hot [B, C] rows instead: torchmetrics MultilabelAveragePrecision, MultilabelF1Score, "
    "MultilabelHammingDistance, or exact match (preds == labels.bool()).all(dim=1) with "
    "preds = torch.sigmoid(logits) > THRESHOLD"
)

_PREDICTION = re.compile(r"pred|output|^outs?$|y_?hat|guess", re.IGNORECASE)
_LABEL = re.compile(r"label|target|^y(_|$)|^gt", re.IGNORECASE)
_REDUCTIONS = frozenset({"sum", "mean", "item", "count_nonzero", "float", "double", "nonzero", "tolist"})
_RANKINGS = frozenset({"argmax", "topk"})
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class MetricHelper:
    function: ast.FunctionDef | ast.AsyncFunctionDef
    name: str
    """``accuracy`` or ``Accuracy.update``."""
    owner: str
    """The class it is a method of ("" for a module-level function)."""
    comparison: ast.AST
    by_default: bool
    """Single-label through a ``"multiclass"`` default (no rule rewrites that), not an arg-max of its own."""


def may_hold_helpers(text: str) -> bool:
    ranking, comparison = HELPER_WORDS
    facts = text_facts(text)
    return facts.has_any(ranking) and facts.has_any(comparison)


def multiclass_defaults(tree: ast.Module) -> Iterator[tuple[str, str, ast.Constant]]:
    """(function, parameter, default) of every parameter defaulting to ``"multiclass"``; a method is
    named with its class (``Accuracy.__init__``)."""
    owners = {
        item: node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef) for item in node.body
        if isinstance(item, _FUNCTIONS)
    }
    for function in _functions(tree):
        name = f"{owners[function]}.{function.name}" if function in owners else function.name
        arguments = function.args
        positional = [*arguments.posonlyargs, *arguments.args]
        pairs = [*zip(positional[len(positional) - len(arguments.defaults):], arguments.defaults),
                 *zip(arguments.kwonlyargs, arguments.kw_defaults)]
        for parameter, default in pairs:
            if isinstance(default, ast.Constant) and default.value == MULTICLASS:
                yield name, parameter.arg, default


def multiclass_task_holders(tree: ast.Module) -> dict[str, ast.Assign | ast.AnnAssign]:
    """``self.task = "multiclass"``, ``task = "multiclass" if n > 2 else "binary"``: the names and
    ``self.`` attributes (as ``self.task``) that every assignment of the file sets to a value that can
    be ``"multiclass"`` and never ``"multilabel"`` (a flag choosing between the two already has the
    multi-label branch), mapped to their first such assignment. A name also given any other value (or
    bound as a parameter or a loop variable) is left out: what it holds where a metric reads it is not known."""
    holders: dict[str, ast.Assign | ast.AnnAssign] = {}
    other: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            other.add(node.arg)  # a parameter of that name holds what its callers give
            continue
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            other.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
            continue
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        key = binding_key(target)
        if not key:
            other.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))  # unpacked: not followed
            continue
        if _can_be(value, MULTICLASS) and not _can_be(value, "multilabel"):
            holders.setdefault(key, node)
        else:
            other.add(key)
    return {key: node for key, node in holders.items() if key not in other}


def binding_key(target: ast.AST) -> str:
    """``name`` or ``self.name``: the targets whose later uses can be followed."""
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        return f"self.{target.attr}"
    return ""


def _can_be(value: ast.AST, task: str) -> bool:
    if isinstance(value, ast.IfExp):
        return _can_be(value.body, task) or _can_be(value.orelse, task)
    return isinstance(value, ast.Constant) and value.value == task


def task_holder(task: ast.AST, holders: dict[str, ast.Assign | ast.AnnAssign]) -> tuple[str, ast.Assign | ast.AnnAssign] | None:
    """(its name, its assignment) when the ``task`` argument of a metric reads one of ``holders``."""
    key = binding_key(task)
    return (key, holders[key]) if key in holders else None


def single_label_metrics(tree: ast.Module, multiclass: bool = True) -> list[MetricHelper]:
    """The functions and methods of ``tree`` handed predictions or labels that count matches of a
    predicted class with the label of each sample, where the prediction is one class per sample: an
    arg-max or top-k taken in the function, or whatever a ``"multiclass"`` default of the function or
    its class selects. ``multiclass``: whether the text says "multiclass" at all."""
    defaults = {function.partition(".")[0] for function, _, _ in multiclass_defaults(tree)} if multiclass else set()
    """The classes and functions with a ``"multiclass"`` default (a class by any of its methods)."""
    found = []
    for owner, function in module_functions(tree):
        if not takes_predictions(function):
            continue  # an epoch loop given the model and a loader computes its predictions itself
        by_default = (owner or function.name) in defaults
        found_by = _counted_class_comparison(function, by_default)
        if found_by is not None:
            name = f"{owner}.{function.name}" if owner else function.name
            comparison, ranked = found_by
            found.append(MetricHelper(function, name, owner, comparison, by_default and not ranked))
    return found


def exported_metrics(tree: ast.Module) -> set[str]:
    """The module-level names (functions, classes) whose calls hand data to a single-label metric
    helper of ``tree``: what another file of the run imports and calls. Only helpers single-label by
    a ``"multiclass"`` default: an arg-max of their own is rewritten in their file (ML020)."""
    return {helper.owner or helper.name for helper in single_label_metrics(tree) if helper.by_default}


METER_WORDS = ((b"def update", b"def __call__", b"def add("), (b"_score(", b"ccuracy", b"correct"))
"""Words of a file of the run worth parsing for metric classes (:func:`metric_classes`): one of
each group (``def __call__`` alone is in most model and transform files)."""
_METER_METHODS = frozenset({"update", "__call__", "add"})
_SCORES = re.compile(r"(^|_)(accuracy|f1|fbeta|precision|recall|jaccard)(_score)?$")


def metric_classes(tree: ast.Module) -> set[str]:
    """The module-level classes whose ``update``/``__call__``/``add`` is handed predictions and
    labels and scores them (``sklearn.metrics.accuracy_score(y_true, y_pred)``, a counted
    ``pred == target``): a meter of any metric, right on multi-hot rows (accuracy_score is then
    exact match) and single-label only where a caller gives it one class per sample, so what the
    files that build one are told about is the arg-max they give it, not the class."""
    found = set()
    for owner, function in module_functions(tree):
        if owner and function.name in _METER_METHODS and takes_predictions(function) and _scores(function):
            found.add(owner)
    return found


def _scores(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    parameters = {a.arg for a in function.args.args}
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and _SCORES.search(
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        ) and any(root_name(argument) in parameters for argument in node.args):
            return True
    parents = {child: parent for parent in ast.walk(function) for child in ast.iter_child_nodes(parent)}
    return any(
        (sides := _sides(node)) is not None and all(root_name(side) in parameters for side in sides) and _counted(node, parents)
        for node in ast.walk(function)
    )


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, _FUNCTIONS):
            yield node


def takes_predictions(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A parameter named as predictions, outputs or labels: what a metric helper is handed."""
    arguments = function.args
    return any(
        _PREDICTION.search(a.arg) or _LABEL.search(a.arg)
        for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
    )


def root_name(node: ast.AST) -> str:
    """``pred`` of ``pred.view(-1).cpu()``, ``prediction[i]``; "" for anything else."""
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Attribute):
                return ""
            node = node.func.value
        else:
            node = node.value
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _sides(node: ast.AST) -> tuple[ast.AST, ast.AST] | None:
    """The two sides of ``a == b``, ``a != b``, ``a.eq(b)``, ``a.ne(b)``, ``torch.eq(a, b)``."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
        return node.left, node.comparators[0]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("eq", "ne"):
        if len(node.args) == 2 and isinstance(node.func.value, ast.Name):
            return node.args[0], node.args[1]  # torch.eq(a, b)
        if len(node.args) == 1:
            return node.func.value, node.args[0]
    return None


def _ranked_names(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Names the function binds to an arg-max or top-k (``pred = output.argmax(1)``,
    ``_, pred = output.topk(1)``, ``pred = output.max(1)[1]``)."""
    ranked = set()
    for node in ast.walk(function):
        if not isinstance(node, ast.Assign):
            continue
        value = node.value
        ranks = any(
            isinstance(part, ast.Call)
            and (part.func.attr if isinstance(part.func, ast.Attribute) else getattr(part.func, "id", "")) in _RANKINGS
            for part in ast.walk(value)
        ) or (
            isinstance(value, ast.Subscript) and isinstance(value.value, ast.Call)
            and isinstance(value.value.func, ast.Attribute) and value.value.func.attr == "max"
            and isinstance(value.slice, ast.Constant) and value.slice.value == 1
        )
        if ranks:
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        ranked.add(name.id)
    return ranked


def _counted_class_comparison(
    function: ast.FunctionDef | ast.AsyncFunctionDef, multiclass: bool
) -> tuple[ast.AST, bool] | None:
    """The comparison of a predicted class with the label of each sample that the function counts,
    and whether its prediction is an arg-max or top-k of the function's own."""
    ranked = _ranked_names(function)
    if not (ranked or multiclass):
        return None
    if any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "all" for n in ast.walk(function)):
        return None  # rows compared whole: exact match
    parents = {child: parent for parent in ast.walk(function) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(function):
        sides = _sides(node)
        if sides is None:
            continue
        roots = [root_name(side) for side in sides]
        for prediction, label in (roots, roots[::-1]):
            if not (prediction and label and _LABEL.search(label) and not _LABEL.search(prediction)):
                continue
            if not (prediction in ranked or (multiclass and _PREDICTION.search(prediction))):
                continue
            if _counted(node, parents):
                return node, prediction in ranked
    return None


def _counted(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """The comparison is reduced to a count (``.sum()``, ``.float().mean()``, ``correct += ...``)
    or decides what is collected (``if output != target:``)."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Attribute) and parent.attr in _REDUCTIONS:
            return True
        if isinstance(parent, ast.Call) and child in parent.args and (
            parent.func.attr if isinstance(parent.func, ast.Attribute) else getattr(parent.func, "id", "")
        ) in ("sum", "mean", "count_nonzero"):
            return True
        if isinstance(parent, ast.AugAssign):
            return True
        if isinstance(parent, (ast.If, ast.IfExp, ast.While)) and parent.test is child:
            return True
        if isinstance(parent, ast.stmt):
            return False
        child, parent = parent, parents.get(parent)
    return False


# -- arg-max against a label column

_PASS_ATTRIBUTES = frozenset({"values", "to_numpy", "numpy", "cpu", "tolist"})


def is_label_column(node: ast.AST) -> bool:
    """``valid_df.label.values``, ``df["label"].to_numpy()``: the label column of a table."""
    passed = False
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _PASS_ATTRIBUTES:
            node, passed = node.func.value, True
        elif isinstance(node, ast.Attribute) and node.attr in _PASS_ATTRIBUTES:
            node, passed = node.value, True
        else:
            break
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return passed and bool(_LABEL.search(node.attr))
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return bool(_LABEL.search(node.slice.value))
    return False


def is_class_argmax(node: ast.AST) -> bool:
    """``np.argmax(p, axis=1)``, ``p.argmax(1)``, ``torch.argmax(p, dim=-1)``: one class per row."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
    if name != "argmax":
        return False
    module_call = isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and node.func.value.id in (
        "np", "numpy", "torch"
    )
    axes = [k.value for k in node.keywords if k.arg in ("axis", "dim")] + list(node.args[1:2] if module_call else node.args[:1])
    return any(ast.unparse(axis) in ("1", "-1") for axis in axes)


def argmax_against_labels(node: ast.Compare) -> tuple[ast.AST, ast.AST] | None:
    """(arg-max, labels) of ``labels == np.argmax(p, axis=1)`` with a label column."""
    sides = _sides(node)
    if sides is None:
        return None
    for argmax, labels in (sides, sides[::-1]):
        if is_class_argmax(argmax) and is_label_column(labels):
            return argmax, labels
    return None
