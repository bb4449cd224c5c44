"""Transfer functions as data: the meaning of a library call's result from its arguments'.

A row names the calls (qualified names, after the file's imports are resolved; a name that
starts with a dot matches any module ending that way, so ``pl.metrics`` spellings count) and
maps the meaning of the first argument to the meaning of the result. ``ANY`` stands for any
argument, ``SAME`` for "the argument's own meaning". To teach the analysis a library call, add
a row.
"""

from __future__ import annotations

from migrate_ml.rules.semantics.meanings import (
    ARGMAX,
    CLASS_INDEX,
    EXP,
    INDEX_LIST,
    INT,
    LABEL_ENCODER,
    LOG_PROB,
    LOGITS,
    LOGITS_LOSS_FN,
    LOSS_FN,
    METRIC,
    MULTI_HOT,
    ONE_HOT,
    SCORE_MEANINGS,
    SCORES,
    SIGMOID,
    SOFTMAX,
    THRESHOLDED,
)

ANY = "*"
SAME = "="


def _from_scores(result: str) -> dict[str, str]:
    return {meaning: result for meaning in SCORE_MEANINGS}


_ARGMAX = {**_from_scores(ARGMAX), ONE_HOT: CLASS_INDEX, MULTI_HOT: CLASS_INDEX}

FUNCTIONS: tuple[tuple[tuple[str, ...], dict[str, str]], ...] = (
    # torch, NumPy, SciPy
    (("torch.sigmoid", "torch.nn.functional.sigmoid", "torch.special.expit", "scipy.special.expit"), {ANY: SIGMOID}),
    (("torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax", "scipy.special.softmax"), {ANY: SOFTMAX}),
    (("torch.log_softmax", "torch.nn.functional.log_softmax", "torch.special.log_softmax", "scipy.special.log_softmax"), {ANY: LOG_PROB}),
    (("torch.log",), {SOFTMAX: LOG_PROB, SIGMOID: SIGMOID}),
    (("torch.exp",), {ANY: EXP}),
    (("torch.sum",), {EXP: EXP}),
    (("torch.argmax", "numpy.argmax"), _ARGMAX),
    (("torch.nn.functional.one_hot", "torch.eye", "numpy.eye", "numpy.identity", ".one_hot"), {ARGMAX: ARGMAX, ANY: ONE_HOT}),
    (("int",), {ANY: INT}),
    (("torch.cat", "torch.stack", "torch.tensor", "torch.as_tensor", "torch.from_numpy", "numpy.array",
      "numpy.asarray", "numpy.concatenate", "numpy.stack", "list"), {ANY: SAME}),
    # losses: constructing one gives a criterion; the logits ones apply the sigmoid themselves
    (("torch.nn.BCEWithLogitsLoss", "torch.nn.modules.loss.BCEWithLogitsLoss", "timm.loss.BinaryCrossEntropy",
      "timm.loss.AsymmetricLossMultiLabel", "torchvision.ops.sigmoid_focal_loss"), {ANY: LOGITS_LOSS_FN}),
    (("torch.nn.CrossEntropyLoss", "torch.nn.BCELoss", "torch.nn.NLLLoss", "torch.nn.MultiLabelSoftMarginLoss",
      "timm.loss.SoftTargetCrossEntropy", "timm.loss.LabelSmoothingCrossEntropy", "torch.nn.MSELoss",
      "torch.nn.L1Loss", "torch.nn.SmoothL1Loss", "torch.nn.HuberLoss"), {ANY: LOSS_FN}),
    # label encodings
    (("sklearn.preprocessing.LabelEncoder", "sklearn.preprocessing._label.LabelEncoder"), {ANY: LABEL_ENCODER}),
    # metrics
    (("sklearn.metrics.accuracy_score", "sklearn.metrics.f1_score", "sklearn.metrics.precision_score",
      "sklearn.metrics.recall_score", "sklearn.metrics.average_precision_score", "sklearn.metrics.roc_auc_score",
      ".functional.accuracy", ".functional.f1_score", ".functional.f1", ".functional.precision",
      ".functional.recall", ".classification.accuracy", "timm.utils.accuracy"), {ANY: METRIC}),
)
"""Module-level calls: (names, {argument meaning: result meaning})."""

LOGITS_LOSS_FUNCTIONS = frozenset(
    {"torch.nn.functional.binary_cross_entropy_with_logits", "torchvision.ops.sigmoid_focal_loss"}
)
"""Functional losses that take logits and apply the sigmoid themselves."""
LOSS_FUNCTIONS = frozenset(
    {
        "torch.nn.functional.cross_entropy", "torch.nn.functional.binary_cross_entropy",
        "torch.nn.functional.nll_loss", "torch.nn.functional.kl_div", "torch.nn.functional.mse_loss",
        "torch.nn.functional.multilabel_soft_margin_loss", *LOGITS_LOSS_FUNCTIONS,
    }
)

METHODS: dict[str, dict[str, str]] = {
    "sigmoid": {ANY: SIGMOID},
    "softmax": {ANY: SOFTMAX},
    "log_softmax": {ANY: LOG_PROB},
    "log": {SOFTMAX: LOG_PROB, SIGMOID: SIGMOID},
    "exp": {ANY: EXP},
    "sum": {EXP: EXP},
    "argmax": _ARGMAX,
    "fit_transform": {LABEL_ENCODER: CLASS_INDEX},
    **{name: {ANY: SAME} for name in (
        "cpu", "cuda", "detach", "numpy", "tolist", "to", "view", "view_as", "reshape", "squeeze", "unsqueeze",
        "flatten", "float", "long", "int", "bool", "clone", "type", "contiguous", "astype", "ravel", "double",
        "half", "type_as", "item", "flip", "roll", "to_numpy",
    )},
}
"""Method calls on a value: ``logits.softmax(-1)``, ``preds.cpu().numpy()``."""

INDEX_PAIR_METHODS = frozenset({"max", "topk", "sort"})
"""``z.max(1)``, ``torch.topk(z, k)``: (values, indices); the indices are an arg-max."""

INDEX_LIST_OF = {CLASS_INDEX: INDEX_LIST, INT: INDEX_LIST}
"""What a list comprehension of these is."""

THRESHOLD_OF = {SIGMOID: THRESHOLDED, LOGITS: THRESHOLDED, SCORES: THRESHOLDED, SOFTMAX: THRESHOLDED}
"""What a comparison of these with a threshold is (the sinks judge whether the threshold fits)."""

CLASS_INDEX_DATASETS = frozenset(
    {
        "torchvision.datasets.ImageFolder", "torchvision.datasets.DatasetFolder", "torchvision.datasets.CIFAR10",
        "torchvision.datasets.CIFAR100", "torchvision.datasets.MNIST", "torchvision.datasets.FashionMNIST",
        "torchvision.datasets.SVHN", "torchvision.datasets.STL10", "torchvision.datasets.Food101",
        "torchvision.datasets.Flowers102", "torchvision.datasets.ImageNet", "torchvision.datasets.folder.ImageFolder",
        "torchvision.datasets.cifar.CIFAR10", "torchvision.datasets.cifar.CIFAR100", "torchvision.datasets.mnist.MNIST",
        "timm.data.create_dataset", "timm.data.ImageDataset",
    }
)
"""Datasets whose samples are (image, class index)."""
LOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader", "timm.data.create_loader"})
"""Calls whose batches have the structure of their dataset's samples (collated)."""

OLD_FUNCTIONAL_METRICS = (
    "pytorch_lightning.metrics.functional.", "pytorch_lightning.metrics.functional.classification.",
    "torchmetrics.functional.", "torchmetrics.functional.classification.", "lightning.pytorch.metrics.functional.",
)
"""Functional metric modules whose calls without ``task`` count class indices (older releases
inferred multiclass from the shapes; ``pl.metrics`` is torchmetrics before it moved out)."""
CLASS_METRIC_FUNCTIONS = frozenset(
    {"accuracy", "f1", "f1_score", "fbeta", "fbeta_score", "precision", "recall", "precision_recall",
     "stat_scores", "confusion_matrix", "specificity", "auroc"}
)


_EXACT = {name: mapping for names, mapping in FUNCTIONS for name in names if not name.startswith(".")}
_SUFFIXES = tuple((name, mapping) for names, mapping in FUNCTIONS for name in names if name.startswith("."))


def row_for(qualified: str) -> dict[str, str] | None:
    """The transfer row of a module-level call, by qualified name (or by its suffix)."""
    found = _EXACT.get(qualified)
    if found is not None or "." not in qualified:
        return found
    return next((mapping for suffix, mapping in _SUFFIXES if qualified.endswith(suffix)), None)


def apply_row(mapping: dict[str, str], argument: str) -> str | None:
    """The result meaning a row gives for an argument meaning (None: the row does not say)."""
    result = mapping.get(argument, mapping.get(ANY))
    if result is None:
        return None
    return argument if result == SAME else result


# Library calls the CST analyses of predictions and log-softmax (``prediction_provider``,
# ``log_softmax``) recognise by qualified name.
SOFTMAX_FUNCTIONS = frozenset({"torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"})
SOFTMAX_MODULES = frozenset({"torch.nn.Softmax", "torch.nn.modules.activation.Softmax"})
LOG_SOFTMAX_FUNCTIONS = frozenset({"torch.nn.functional.log_softmax", "torch.log_softmax"})
JOIN_FUNCTIONS = frozenset({"torch.cat", "torch.concatenate", "numpy.concatenate"})
JOINS = {
    "append": JOIN_FUNCTIONS | {"numpy.vstack", "torch.vstack"},
    "extend": frozenset({"numpy.array", "numpy.asarray", "numpy.stack", "numpy.vstack", "torch.stack", "torch.tensor"}),
}
"""How a list of per-batch predictions becomes one [N, C] array: batches joined, rows stacked."""
