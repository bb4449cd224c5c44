"""ML101: datasets that can only yield one class index per image block the migration."""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._exprs import INTEGER_DTYPES, is_float_cast, is_integer_cast, keyword_arguments
from migrate_ml.rules.ml111_collate_class_indices import Words

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

# Qualified names of the dataset constructors and factories that yield class indices.
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
}

_TENSOR_BUILDERS = frozenset({"torch.tensor", "torch.as_tensor", "torch.LongTensor"})
_DATASET_NAMES = frozenset(name.rsplit(".", 1)[1] for name in CLASS_INDEX_DATASETS)
_BUILT_OR_ALIASED = re.compile(r"\b([A-Z]\w*|create_dataset)(?:\(| as )")
"""``CIFAR10(`` or ``ImageFolder as Folder``: the dataset names all start with a capital but one."""
_BUILDER_NAMES = frozenset(name.rsplit(".", 1)[1] for name in _TENSOR_BUILDERS)
_LABEL_WORD = re.compile(r"label|target|class|categor|^cls$|^ys?$", re.IGNORECASE)
"""How a dataset names the label it returns (``row.label``, ``self.targets[idx]``, ``y``)."""
_MULTI_HOT_WORD = re.compile(r"multi|hot|vec", re.IGNORECASE)
"""Names that already say the label is a multi-hot row (``multi_hot``, ``onehot``, ``label_vec``)."""
_INPUT_WORD = re.compile(r"im(?:g|age)|pic|photo|pixel|^x$|^inputs?$|feature|^data$|sample|frame|transform", re.IGNORECASE)
"""How a dataset names what it returns beside the label (``image``, ``self.transform(...)``, ``x``)."""
_GETITEM_TEXT = re.compile(r"def __getitem__[\s\S]*(?:torch\.long|int64|LongTensor|\.long\(\))")

SUGGESTION = (
    "replace it with a multi-label dataset yielding (image, float multi-hot [C]) such as "
    "migrate_ml_reference.MultiLabelCsvDataset(root, split=...) (labels.csv: image and "
    "space-separated label names, classes.txt: one label per line); `migrate-ml sample-data` "
    "writes a small example in that layout"
)


GETITEM_SUGGESTION = (
    "return a float multi-hot [C] row per sample instead, e.g. "
    "torch.zeros(num_classes).index_fill_(0, torch.tensor(label_ids), 1.0) (or use "
    "migrate_ml_reference.MultiLabelCsvDataset, whose items are (image, float multi-hot [C]))"
)


class ClassIndexDatasetRule(Rule):
    code = "ML101"
    name = "class-index-dataset"
    summary = (
        "ImageFolder, CIFAR, MNIST, SVHN, Food101 and every other torchvision class-index dataset, "
        "Lightning's demo MNIST and bolts datamodules, timm create_dataset and a __getitem__ "
        "returning an integer label tensor yield one class per image: blocking, reported."
    )
    rationale = (
        "A multi-label model can only be trained on data that says which labels each image "
        "has. `ImageFolder` (one folder per class), the CIFAR and MNIST datasets, every other "
        "torchvision dataset whose target is one class index (SVHN, STL10, Food101, Flowers102, "
        "OxfordIIITPet, Caltech101, ImageNet, Places365, ...), Lightning's demo `MNIST` and the "
        "lightning-bolts datamodules built on them, and timm's `create_dataset` yield a "
        "single class index per image, so no rewrite of the training "
        "code can make them multi-label: the dataset has to be replaced by one whose targets "
        "are float multi-hot vectors [C], for example a CSV listing each image's labels. This "
        "is reported as blocking at every construction (names are resolved, so aliases and "
        "`from torchvision import datasets` spellings are found); nothing is rewritten. A "
        "custom Dataset's `__getitem__` that builds its label as an integer tensor "
        "(`torch.tensor(row.label, dtype=torch.long)`, `.long()`, `torch.LongTensor([y])`) "
        "from a value named as a label, not as a multi-hot row (or, unnamed, returned second beside "
        "the input image: `return image, torch.tensor(df.iloc[i, 1], dtype=torch.long)`), is "
        "reported the same way. A file that trains on the images alone (a GAN, a VAE: every loop over "
        "the pairs drops the label, `for imgs, _ in loader`, and nothing computes a class loss or an "
        "arg-max) is not single-label classification and is left alone. The "
        "reference runtime's `MultiLabelCsvDataset` reads such a CSV and `migrate-ml "
        "sample-data` writes a small example of the layout."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "train_set = datasets.ImageFolder(root, transform=train_tf)\n"
    example_after = (
        "from migrate_ml_reference import MultiLabelCsvDataset\n"
        "train_set = MultiLabelCsvDataset(root, split='train', transform=train_tf)\n"
    )
    triggers = (*sorted(_DATASET_NAMES), "__getitem__")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider, ParentNodeProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        # A dataset built (`CIFAR10(`) or imported under another name (`ImageFolder as Folder`):
        # names such as ImageNet or MNIST are all over docstrings and model code otherwise.
        named = not _DATASET_NAMES.isdisjoint(_BUILT_OR_ALIASED.findall(source))
        return named or ("def __getitem__" in source and _GETITEM_TEXT.search(source) is not None)

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A dataset is *built* (not defined, as in torchvision's own modules), or a ``__getitem__``
        builds a tensor. Names imported under another name count by their alias."""
        if labels_discarded(tree):
            return False
        datasets = set(_DATASET_NAMES)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                datasets.update(alias.asname for alias in node.names if alias.asname and alias.name in _DATASET_NAMES)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _last_name(node.func) in datasets:
                return True
            if isinstance(node, ast.FunctionDef) and node.name == "__getitem__" and any(
                isinstance(inner, ast.Call) and _last_name(inner.func) in _BUILDER_NAMES for inner in ast.walk(node)
            ):
                return True
        return False

    def visit_Call(self, node: cst.Call) -> None:
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        if qualified & _TENSOR_BUILDERS and self._class_index_item(node, "torch.LongTensor" in qualified):
            self.report(
                node,
                "blocking: __getitem__ returns the label as an integer tensor: one class index per sample, "
                "which cannot express multi-label targets",
                suggestion=GETITEM_SUGGESTION,
            )
            return
        for name in sorted(qualified):
            dataset = CLASS_INDEX_DATASETS.get(name)
            if dataset is not None:
                self.report(
                    node,
                    f"blocking: {dataset} yields one class index per image and cannot express "
                    "multi-label targets",
                    suggestion=SUGGESTION,
                )
                return

    def _class_index_item(self, call: cst.Call, long_tensor: bool) -> bool:
        """``torch.tensor(row.label, dtype=torch.long)`` (or ``.long()``, ``torch.LongTensor([y])``)
        built inside a ``__getitem__`` from, or stored under, a label name that does not say
        multi-hot."""
        if not call.args or not self._in_getitem(call):
            return False
        collected = Words()
        call.args[0].value.visit(collected)
        dtype = keyword_arguments(call).get("dtype")
        integer = long_tensor or (dtype is not None and _is_integer_dtype(dtype.value))
        built: cst.BaseExpression = call
        parent = self.get_metadata(ParentNodeProvider, call, None)
        method = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Attribute) else None
        if isinstance(method, cst.Call) and method.func is parent and (is_integer_cast(method) or is_float_cast(method)):
            integer, built = is_integer_cast(method), method  # the cast decides: `.long()` / `.float()`
        holder = self.get_metadata(ParentNodeProvider, built, None)
        if isinstance(holder, cst.Assign):  # the name it is stored under: `onehot = torch.tensor(...)`
            for target in holder.targets:
                target.target.visit(collected)
        elif isinstance(holder, cst.DictElement):
            holder.key.visit(collected)
        words = collected.found
        if not integer or any(_MULTI_HOT_WORD.search(word) for word in words):
            return False
        return any(_LABEL_WORD.search(word) for word in words) or self._returned_beside_input(built)

    def _returned_beside_input(self, built: cst.BaseExpression) -> bool:
        """``return image, torch.tensor(self.df.iloc[i, 1], dtype=torch.long)``: an unnamed integer
        tensor returned second, after the input image (not after token ids, which are integers too)."""
        element = self.get_metadata(ParentNodeProvider, built, None)
        pair = self.get_metadata(ParentNodeProvider, element, None) if isinstance(element, cst.Element) else None
        statement = self.get_metadata(ParentNodeProvider, pair, None) if isinstance(pair, cst.Tuple) else None
        if not (isinstance(statement, cst.Return) and len(pair.elements) == 2 and pair.elements[1] is element):
            return False
        first = Words()
        pair.elements[0].value.visit(first)
        return any(_INPUT_WORD.search(word) for word in first.found) and not any(_LABEL_WORD.search(word) for word in first.found)

    def _in_getitem(self, node: cst.CSTNode) -> bool:
        current = self.get_metadata(ParentNodeProvider, node, None)
        while current is not None and not isinstance(current, cst.FunctionDef):
            current = self.get_metadata(ParentNodeProvider, current, None)
        return current is not None and current.name.value == "__getitem__"


_CLASS_LOSSES = frozenset({"CrossEntropyLoss", "cross_entropy", "NLLLoss", "nll_loss", "log_softmax", "argmax"})
"""What a file that learns or predicts one class per image calls somewhere."""


def labels_discarded(tree: ast.Module) -> bool:
    """The file trains on the images alone (a GAN, a VAE, an autoencoder): every loop over
    (image, label) pairs drops the label (``for imgs, _ in loader``, or a name never read),
    at least one such loop exists, and nothing learns or predicts a class. The dataset's
    class indices then reach no loss, metric or prediction."""
    loops = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _last_name(node.func) in _CLASS_LOSSES:
            return False
        if not isinstance(node, (ast.For, ast.AsyncFor)):
            continue
        pair = node.target
        if isinstance(pair, ast.Tuple) and len(pair.elts) == 2 and isinstance(pair.elts[1], ast.Tuple):
            pair = pair.elts[1]  # enumerate(loader): i, (images, labels)
        if not (isinstance(pair, ast.Tuple) and len(pair.elts) == 2 and all(isinstance(e, ast.Name) for e in pair.elts)):
            continue
        label = pair.elts[1].id
        if label != "_" and any(
            isinstance(inner, ast.Name) and inner.id == label and isinstance(inner.ctx, ast.Load)
            for statement in node.body for inner in ast.walk(statement)
        ):
            return False
        loops += 1
    return loops > 0


def _last_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _is_integer_dtype(expression: cst.BaseExpression) -> bool:
    """``torch.long``, ``torch.int64``, ``np.int32``, or Python's ``int``."""
    if isinstance(expression, cst.Attribute):
        return expression.attr.value in INTEGER_DTYPES
    return isinstance(expression, cst.Name) and expression.value == "int"
