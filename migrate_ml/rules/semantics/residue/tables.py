"""What the safety net's detector knows, as data: single-label losses, softmax layers, metric names
and packages, the suggestions it makes, and the small helpers that read them off a tree.
"""

from __future__ import annotations

import ast
import re

from migrate_ml.rules._prefilter import nodes_of
from migrate_ml.rules.semantics.metrics import binding_key as _binding_key
from migrate_ml.rules.semantics.single_label_values import int_constant, off_the_class_axis

_LOSSES = {
    "CrossEntropyLoss": "nn.BCEWithLogitsLoss()",
    "NLLLoss": "nn.BCEWithLogitsLoss() on the logits before log_softmax",
    "cross_entropy": "F.binary_cross_entropy_with_logits(logits, targets.float())",
    "nll_loss": "F.binary_cross_entropy_with_logits on the logits before log_softmax, with targets.float()",
    "LabelSmoothingCrossEntropy": "timm.loss.BinaryCrossEntropy(smoothing=...)",
    "SoftTargetCrossEntropy": "timm.loss.BinaryCrossEntropy() on the mixed multi-hot targets",
    "JsdCrossEntropy": "BCE on the clean split (timm.loss.BinaryCrossEntropy), plus a per-label JSD on sigmoid outputs if wanted",
}
_LOSS_MODULES = frozenset({"torch.nn", "torch.nn.functional", "torch.nn.modules.loss", "nn", "F", "timm.loss"})
"""Modules a loss is looked up in by name: ``getattr(nn, "CrossEntropyLoss")``."""
_LOSS_ROOTS = ("torch", "timm")
"""Packages whose losses these are; a name the file defines or imports elsewhere is someone else's."""

_SOFTMAX_LAYERS = frozenset({"torch.nn.Softmax", "torch.nn.modules.activation.Softmax", "nn.Softmax"})
_SEQUENTIAL = frozenset({"torch.nn.Sequential", "torch.nn.modules.container.Sequential", "nn.Sequential"})

_NOT_CLASS_SCORES = re.compile(r"weight|score|pool|gate|alpha|mask|att(e)?n|router|expert|routing", re.IGNORECASE)
"""Names of a softmax's result, its input or its module that say it weighs positions or experts."""

_METRIC_FUNCTION = re.compile(
    r"(^|_)(accuracy|acc|f1|fbeta|precision|recall|jaccard|kappa|matthews|confusion|classification_report"
    r"|score|metric|metrics|auroc|auc)(_|$|\d)",
    re.IGNORECASE,
)
_TOP_K_METRIC = re.compile(r"^top_?k_(errors?|err|acc|accuracy|accuracies|correct)$", re.IGNORECASE)
"""A top-k metric by name (``topk_errors``, ``topk_accuracy``): scikit-learn's ``top_k_accuracy_score`` is ML102's."""
_METRIC_UPDATE_METHODS = frozenset({"update", "add_batch", "add", "compute", "forward"})
_METRIC_PREDICTION_KEYWORDS = frozenset({"predictions", "preds", "y_pred", "pred", "input", "output"})

_TORCHMETRICS_ROOTS = ("torchmetrics", "pytorch_lightning.metrics", "lightning.pytorch.metrics", "pl.metrics")
_TORCHMETRICS_TASK_METRICS = frozenset(
    {
        "Accuracy", "F1Score", "FBetaScore", "Precision", "Recall", "AUROC", "AveragePrecision",
        "ConfusionMatrix", "Specificity", "StatScores", "CohenKappa", "MatthewsCorrCoef", "JaccardIndex",
        "HammingDistance", "ExactMatch", "CalibrationError", "accuracy", "f1_score", "fbeta_score",
        "precision", "recall", "auroc", "average_precision", "specificity", "stat_scores",
        "confusion_matrix", "F1", "f1",
    }
)
_METRIC_PACKAGES = (*_TORCHMETRICS_ROOTS, "ignite.metrics", "evaluate.load", "datasets.load_metric", "sklearn.metrics")
_IGNITE_MULTILABEL_METRICS = frozenset({"Accuracy", "Precision", "Recall", "ConfusionMatrix"})
_IGNITE_SINGLE_LABEL_ONLY = frozenset({"TopKCategoricalAccuracy"})
_HF_CLASS_METRICS = frozenset({"accuracy", "f1", "precision", "recall"})

_SUGGEST_THRESHOLD = "predict with (torch.sigmoid(logits) > THRESHOLD) — one decision per label — instead of one arg-max class"
_SUGGEST_TORCHMETRICS = (
    'use the multilabel task: task="multilabel", num_labels=C, threshold=THRESHOLD '
    "(or MultilabelAccuracy / MultilabelF1Score / MultilabelAveragePrecision)"
)
_SUGGEST_EXACT_MATCH = (
    "compare whole rows: (preds == labels.bool()).all(dim=1) for exact match, or use per-label metrics "
    "(F1 micro/macro, mAP, Hamming loss)"
)


_PROBABILITIES = re.compile(r"^(probs?|probabilities|probas?|scores|softmax\w*|pred_probs?|y_probs?)$", re.IGNORECASE)


def _is_column_key(key: ast.AST) -> bool:
    """A table's column: ``["label"]``, ``[CFG.target_col]``, ``[LABEL]`` (not a position)."""
    if isinstance(key, ast.Constant):
        return isinstance(key.value, str)
    return isinstance(key, (ast.Name, ast.Attribute))


def _over_the_class_axis(call: ast.Call, on_module: bool) -> bool:
    """``z.argmax(1)``, ``z.argmax(axis=-1)``, ``np.argmax(z, 1)``: the last axis of [N, C] scores."""
    axes = call.args[1:] if on_module else call.args
    axis = axes[0] if axes else next((k.value for k in call.keywords if k.arg in ("dim", "axis")), None)
    return int_constant(axis) in (1, -1) if axis is not None else False


def _off_the_class_axis(call: ast.Call, on_module: bool, parents: dict, tree: ast.Module) -> bool:
    """``z.argmax(0)``, ``torch.argmax(z, dim=0)``, ``F.softmax(z, dim=0)`` on [N, C] scores: an axis
    other than the class axis (over the batch: the most confident sample of each class, a
    contrastive term), read in the function around the call."""
    axes = call.args[1:] if on_module else call.args
    axis = axes[0] if axes else next((k.value for k in call.keywords if k.arg in ("dim", "axis")), None)
    subject = (call.args[0] if call.args else None) if on_module else getattr(call.func, "value", None)
    scope = parents.get(call)
    while scope is not None and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        scope = parents.get(scope)
    return off_the_class_axis(axis, subject, scope or tree)


def _argument_defaults(tree: ast.Module) -> dict[str, tuple[str, str, int]]:
    """The configuration defaults that name a single-label loss: key -> (default, where it is set,
    line). ``parser.add_argument("--loss", default="CrossEntropyLoss")`` (key ``loss``, its dest), a
    config class's field ``loss: str = "CrossEntropyLoss"`` (``TrainConfig.loss``), a config dict's
    entry ``{"loss": "CrossEntropyLoss"}`` and a parameter's default ``def build(loss="nll_loss")``.
    A key the file also gives another string default (``--loss`` defaulting to ``BCEWithLogitsLoss``
    beside a config class's ``CrossEntropyLoss``) is left out: which one a lookup reads is not known."""
    defaults: dict[str, tuple[str, str, int]] = {}
    other: set[str] = set()

    def default(key: str, value: ast.AST | None, where: str) -> None:
        if _loss_name(value):
            defaults[key] = (value.value, where, value.lineno)
        elif isinstance(value, ast.Constant) and isinstance(value.value, str):
            other.add(key)

    for node in nodes_of(tree, ast.Call, ast.ClassDef, ast.Dict, ast.FunctionDef, ast.AsyncFunctionDef):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
                option, key, value = _parser_default(node)
                if key:
                    default(key, value, option)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                target = item.target if isinstance(item, ast.AnnAssign) else (
                    item.targets[0] if isinstance(item, ast.Assign) and len(item.targets) == 1 else None)
                if isinstance(target, ast.Name):
                    default(target.id, item.value, f"{node.name}.{target.id}")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    default(key.value, value, f'"{key.value}"')
        else:
            arguments = node.args
            positional = [*arguments.posonlyargs, *arguments.args]
            pairs = [*zip(positional[len(positional) - len(arguments.defaults):], arguments.defaults),
                     *zip(arguments.kwonlyargs, arguments.kw_defaults)]
            for parameter, value in pairs:
                default(parameter.arg, value, f"{node.name}({parameter.arg}=)")
    return {key: found for key, found in defaults.items() if key not in other}


def _loss_name(value: ast.AST | None) -> bool:
    return isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value in _LOSSES


def _parser_default(node: ast.Call) -> tuple[str, str, ast.AST | None]:
    """(option, key, default) of ``parser.add_argument("--loss", default=...)``; no key without an option."""
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    options = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not options:
        return "", "", None
    option = next((o for o in options if o.startswith("--")), options[0])
    dest = keywords.get("dest")
    key = dest.value if isinstance(dest, ast.Constant) and isinstance(dest.value, str) else option.lstrip("-").replace("-", "_")
    return option, key, keywords.get("default")


def _name_of(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
