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
    PREDICTED_NAME,
    SCORE_MEANINGS,
    SCORES,
    SIGMOID,
    SOFTMAX,
    STRATIFIED_SPLITTER,
    TABLE,
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
    (("str",), {ARGMAX: ARGMAX}),  # class_indict[str(pred)]: the predicted class, as a key
    # pandas tables: their label columns hold one scalar per row
    (("pandas.read_csv", "pandas.read_excel", "pandas.read_table", "pandas.read_parquet", "pandas.read_feather",
      "pandas.read_pickle", "pandas.read_json", "pandas.DataFrame"), {ANY: TABLE}),
    (("torch.cat", "torch.stack", "torch.tensor", "torch.as_tensor", "torch.from_numpy", "numpy.array",
      "numpy.asarray", "numpy.concatenate", "numpy.stack", "list"), {ANY: SAME}),
    # shape-only functions, as their methods (``.flatten()``, ``.squeeze()``) above: the same values
    (("torch.flatten", "torch.squeeze", "torch.unsqueeze", "torch.reshape", "torch.ravel", "numpy.ravel",
      "numpy.squeeze", "numpy.reshape"), {ANY: SAME}),
    # scikit-learn's stratified splitters: their split(X, y) stratifies on one class label per sample
    (("sklearn.model_selection.StratifiedKFold", "sklearn.model_selection.StratifiedShuffleSplit",
      "sklearn.model_selection.RepeatedStratifiedKFold", "sklearn.model_selection.StratifiedGroupKFold"),
     {ANY: STRATIFIED_SPLITTER}),
    # losses: constructing one gives a criterion; the logits ones apply the sigmoid themselves
    (("torch.nn.BCEWithLogitsLoss", "torch.nn.modules.loss.BCEWithLogitsLoss", "timm.loss.BinaryCrossEntropy",
      "timm.loss.AsymmetricLossMultiLabel", "torchvision.ops.sigmoid_focal_loss"), {ANY: LOGITS_LOSS_FN}),
    (("torch.nn.CrossEntropyLoss", "torch.nn.BCELoss", "torch.nn.NLLLoss", "torch.nn.MultiLabelSoftMarginLoss",
      "timm.loss.SoftTargetCrossEntropy", "timm.loss.LabelSmoothingCrossEntropy", "torch.nn.MSELoss",
      "torch.nn.L1Loss", "torch.nn.SmoothL1Loss", "torch.nn.HuberLoss"), {ANY: LOSS_FN}),
    # label encodings
    (
        (
            "sklearn.preprocessing.LabelEncoder",
            "sklearn.preprocessing._label.LabelEncoder",
            "sklearn.preprocessing.label.LabelEncoder",  # the module path before scikit-learn 0.22
        ),
        {ANY: LABEL_ENCODER},
    ),
    # metrics
    (("sklearn.metrics.accuracy_score", "sklearn.metrics.f1_score", "sklearn.metrics.precision_score",
      "sklearn.metrics.recall_score", "sklearn.metrics.average_precision_score", "sklearn.metrics.roc_auc_score",
      ".functional.accuracy", ".functional.f1_score", ".functional.f1", ".functional.precision",
      ".functional.recall", ".classification.accuracy", "timm.utils.accuracy"), {ANY: METRIC}),
)
"""Module-level calls: (names, {argument meaning: result meaning})."""

LOGITS_LOSS_FUNCTIONS = frozenset(
    {"torch.nn.functional.binary_cross_entropy_with_logits", "torchvision.ops.sigmoid_focal_loss",
     "torchvision.ops.focal_loss.sigmoid_focal_loss"}
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
    # a predicted class's name, spelled another way, is the same prediction
    **{name: {PREDICTED_NAME: PREDICTED_NAME} for name in ("lower", "upper", "strip", "title", "capitalize")},
}
"""Method calls on a value: ``logits.softmax(-1)``, ``preds.cpu().numpy()``."""

CLASS_AXIS_METHODS = frozenset({"softmax", "log_softmax", "argmax"})
CLASS_AXIS_FUNCTIONS = frozenset(
    name for names, row in FUNCTIONS if (ANY in row and set(row.values()) & {SOFTMAX, LOG_PROB}) or row is _ARGMAX
    for name in names
)
"""Calls whose result is per sample only along the class axis (their rows above): the same call
along the batch axis (``F.softmax(z, dim=0)``) is none of them."""

INDEX_PAIR_METHODS = frozenset({"max", "topk", "sort"})
"""``z.max(1)``, ``torch.topk(z, k)``: (values, indices); the indices are an arg-max."""

INDEX_LIST_OF = {CLASS_INDEX: INDEX_LIST, INT: INDEX_LIST}
"""What a list comprehension of these is."""

THRESHOLD_OF = {SIGMOID: THRESHOLDED, LOGITS: THRESHOLDED, SCORES: THRESHOLDED, SOFTMAX: THRESHOLDED}
"""What a comparison of these with a threshold is (the sinks judge whether the threshold fits)."""

# torchvision datasets whose items are (image, one class index), by defining module. CelebA
# (attributes: multi-hot), VOC, COCO, captions, stereo and flow datasets are not here.
_TORCHVISION_CLASS_INDEX: dict[str, tuple[str, ...]] = {
    "folder": ("ImageFolder", "DatasetFolder"),
    "cifar": ("CIFAR10", "CIFAR100"),
    "mnist": ("MNIST", "FashionMNIST", "KMNIST", "EMNIST", "QMNIST"),
    "svhn": ("SVHN",),
    "stl10": ("STL10",),
    "food101": ("Food101",),
    "flowers102": ("Flowers102",),
    "oxford_iiit_pet": ("OxfordIIITPet",),
    "caltech": ("Caltech101", "Caltech256"),
    "imagenet": ("ImageNet",),
    "imagenette": ("Imagenette",),
    "places365": ("Places365",),
    "stanford_cars": ("StanfordCars",),
    "fgvc_aircraft": ("FGVCAircraft",),
    "dtd": ("DTD",),
    "eurosat": ("EuroSAT",),
    "gtsrb": ("GTSRB",),
    "country211": ("Country211",),
    "pcam": ("PCAM",),
    "rendered_sst2": ("RenderedSST2",),
    "sun397": ("SUN397",),
    "fer2013": ("FER2013",),
    "semeion": ("SEMEION",),
    "usps": ("USPS",),
    "lsun": ("LSUN",),
    "omniglot": ("Omniglot",),
    "inaturalist": ("INaturalist",),
    "clevr": ("CLEVRClassification",),
    "lfw": ("LFWPeople",),
    "fakedata": ("FakeData",),
    "ucf101": ("UCF101",),
    "hmdb51": ("HMDB51",),
    "kinetics": ("Kinetics",),
}

# Lightning's demo MNIST and the lightning-bolts datamodules of class-index datasets.
_LIGHTNING_CLASS_INDEX: dict[str, tuple[str, ...]] = {
    **{
        f"{package}.demos.mnist_datamodule": ("MNIST", "MNISTDataModule")
        for package in ("lightning.pytorch", "pytorch_lightning")
    },
    "pl_bolts.datamodules": (
        "MNISTDataModule", "FashionMNISTDataModule", "BinaryMNISTDataModule", "EMNISTDataModule",
        "BinaryEMNISTDataModule", "CIFAR10DataModule", "TinyCIFAR10DataModule", "STL10DataModule",
        "ImagenetDataModule",
    ),
    "pl_bolts.datamodules.mnist_datamodule": ("MNISTDataModule",),
    "pl_bolts.datamodules.fashion_mnist_datamodule": ("FashionMNISTDataModule",),
    "pl_bolts.datamodules.binary_mnist_datamodule": ("BinaryMNISTDataModule",),
    "pl_bolts.datamodules.emnist_datamodule": ("EMNISTDataModule",),
    "pl_bolts.datamodules.binary_emnist_datamodule": ("BinaryEMNISTDataModule",),
    "pl_bolts.datamodules.cifar10_datamodule": ("CIFAR10DataModule", "TinyCIFAR10DataModule"),
    "pl_bolts.datamodules.stl10_datamodule": ("STL10DataModule",),
    "pl_bolts.datamodules.imagenet_datamodule": ("ImagenetDataModule",),
    "pl_bolts.datasets": ("TrialCIFAR10", "BinaryMNIST", "BinaryEMNIST"),
}

CLASS_INDEX_DATASETS: dict[str, str] = {
    **{
        f"torchvision.datasets{where}.{name}": name
        for module, names in _TORCHVISION_CLASS_INDEX.items()
        for where in ("", f".{module}")
        for name in names
    },
    **{f"{module}.{name}": name for module, names in _LIGHTNING_CLASS_INDEX.items() for name in names},
    "timm.data.create_dataset": "create_dataset",
    "timm.data.dataset_factory.create_dataset": "create_dataset",
    # hugsvision's loaders split a torchvision ImageFolder: (train, test, id2label, label2id)
    **{
        f"hugsvision.dataio.VisionDataset.VisionDataset.{name}": f"VisionDataset.{name} (an ImageFolder)"
        for name in ("fromImageFolder", "fromImageFolders")
    },
}
TIMM_DATASETS: dict[str, str] = {
    f"timm.data{where}.{name}": name
    for where in ("", ".dataset")
    for name in ("ImageDataset", "IterableImageDataset")
}
"""timm's datasets over a folder or tar reader: one class index per image. Their names are common
for users' own classes, so only a file that mentions timm is parsed for them."""
"""Datasets whose samples are (image, class index): qualified name of the constructor or
factory -> its name. The one table of them (ML101, the analysis, the run's facts)."""
INDEX_DATASET_CALLS = frozenset({*CLASS_INDEX_DATASETS, *TIMM_DATASETS})
"""Every call that builds a class-index dataset, timm's included."""
_DATASET_ALIASES = frozenset({"imagenet1k", "ilsvrc2012", "tinyimagenet", "fmnist", "cifar"})
NAMED_CLASS_INDEX_DATASETS = frozenset(
    {name.lower() for name in CLASS_INDEX_DATASETS.values() if name[0].isupper() and "Folder" not in name} | _DATASET_ALIASES
)
"""What registries and factories call these datasets (``DATASET_REGISTRY("cifar10")``,
``get_dataset("imagenet")``, ``load_dataset("mnist")``), spelled without case, ``_`` or ``-``."""


def named_class_index_dataset(name: object) -> str:
    """The class-index dataset a registry key names (``"cifar10"``, ``"Fashion-MNIST"``), else ""."""
    if not isinstance(name, str):
        return ""
    key = name.lower().replace("_", "").replace("-", "")
    return name if key in NAMED_CLASS_INDEX_DATASETS else ""


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
TENSOR_COPIES = frozenset({"torch.tensor", "torch.as_tensor"})
"""``torch.tensor(pred, dtype=torch.float)``: a tensor given one tensor is that tensor copied or
cast, each row the same sample's (the transfer row above keeps its meaning)."""
JOIN_FUNCTIONS = frozenset({"torch.cat", "torch.concatenate", "numpy.concatenate"})
JOINS = {
    "append": JOIN_FUNCTIONS | {"numpy.vstack", "torch.vstack"},
    "extend": frozenset({"numpy.array", "numpy.asarray", "numpy.stack", "numpy.vstack", "torch.stack", "torch.tensor"}),
}
"""How a list of per-batch predictions becomes one [N, C] array: batches joined, rows stacked."""


TORCHMETRICS_TASK_METRICS = {"Accuracy": True, "F1Score": True, "Precision": True, "Recall": True, "AUROC": False, "AveragePrecision": False}
"""torchmetrics' task-dispatching classes that ML022 rewrites to their multilabel forms (also
``Multiclass<name>``), by their last name component: True when they take a threshold."""
