"""ML101: datasets that can only yield one class index per image block the migration."""

from __future__ import annotations

import ast
import re
import sys

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._project import current_facts
from migrate_ml.rules._exprs import INTEGER_DTYPES, cst_any, cst_nodes_of, is_float_cast, is_integer_cast, keyword_arguments
from migrate_ml.rules.ml111_collate_class_indices import Words
from migrate_ml.rules._prefilter import TextFacts, nodes_of, text_facts, walk
from migrate_ml.rules.semantics.sinks.losses import LOSS_CALLEE
from migrate_ml.rules.semantics.tables import CLASS_INDEX_DATASETS, TIMM_DATASETS, named_class_index_dataset

_REGISTRY_CALLEE = r"\w*(?:registry|dataset|datamodule|loader|data)\w*"
_REGISTRY_CALL = re.compile(rf"""\b({_REGISTRY_CALLEE})\s*\([^()'"]*?['"]([\w-]+)['"]""", re.IGNORECASE)
"""``DATASET_REGISTRY("cifar10")``, ``get_dataset("imagenet")``, ``load_dataset("mnist")``: a dataset
picked by its name from a registry or factory (the name is judged by ``named_class_index_dataset``)."""
_CHOSEN_BY_NAME = "datasets.__dict__["
"""``datasets.__dict__[args.dataset]``: a torchvision dataset class picked by a name the run is given."""
TRIGGER_WORDS = (
    "ImageDataset", "__getitem__", ".features[", "ClassLabel", "range(", _CHOSEN_BY_NAME, "registry", "REGISTRY",
    "dataset(", "data(", "loader(", "load_data",
)
"""What the pre-filter looks for besides the dataset names (the regular expressions below sharpen it)."""
HF_CLASS_LABELS = frozenset({"datasets.ClassLabel", "datasets.features.ClassLabel", "datasets.features.features.ClassLabel"})

_TENSOR_BUILDERS = frozenset({"torch.tensor", "torch.as_tensor", "torch.LongTensor"})
_DATASET_NAMES = frozenset(name.rsplit(".", 1)[1] for name in CLASS_INDEX_DATASETS)
_BUILT_OR_ALIASED = r"\b(?:{names})(?:\(| as |\)\s*:|[ \t]*$|[ \t]+if\b)"
"""``CIFAR10(``, ``ImageFolder as Folder``, ``class Mine(ImageFolder):`` or ``cls = CIFAR10`` (a class
chosen, called later), for the dataset names that occur as words."""
_BUILDER_NAMES = frozenset(name.rsplit(".", 1)[1] for name in _TENSOR_BUILDERS)
_LABEL_WORD = re.compile(r"label|target|class|categor|^cls$|^ys?$", re.IGNORECASE)
"""How a dataset names the label it returns (``row.label``, ``self.targets[idx]``, ``y``)."""
_MULTI_HOT_WORD = re.compile(r"multi|hot|vec", re.IGNORECASE)
"""Names that already say the label is a multi-hot row (``multi_hot``, ``onehot``, ``label_vec``)."""
_INPUT_WORD = re.compile(r"im(?:g|age)|pic|photo|pixel|^x$|^inputs?$|feature|^data$|sample|frame|transform", re.IGNORECASE)
"""How a dataset names what it returns beside the label (``image``, ``self.transform(...)``, ``x``)."""
_GETITEM_TEXT = re.compile(r"def __getitem__[\s\S]*(?:torch\.long|int64|LongTensor|\.long\(\)|\.i?loc\[)")
_PER_CLASS_LOOP = re.compile(r"for (\w+) in range\([^)\n]*class[^)\n]*\):[\s\S]*?\b\w*label\w*\s*==\s*\1\b", re.IGNORECASE)
"""``for i in range(num_classes): ... labels == i``: examples picked per class index."""
_NAMED_DATASET = re.compile(r"cifar_?100|cifar_?10|fashion_?mnist|mnist|svhn|stl_?10|food_?101|imagenet", re.IGNORECASE)
_DATA_WORD = re.compile(r"loader|dataset|datamodule|(?:^|_)data(?:$|_)", re.IGNORECASE)
_DATASET_WORDS = ("cifar", "mnist", "svhn", "stl", "food", "imagenet")
"""What every name ``_NAMED_DATASET`` accepts holds, lower-cased: a substring test of the file's
words before the called names are tested one by one."""
_LABEL_USE = re.compile(r"(?i).*(?:label|target|criterion|loss_fn|nll|argmax|accura|correct).*|cross_entropy|CrossEntropyLoss|acc\w*")
"""Names of a file that reads labels or learns or predicts classes (matched whole; not a GAN's
``binary_cross_entropy`` against its real/fake ``y``)."""
_LIBRARIES = frozenset(
    {"torch", "torchvision", "timm", "tensorflow", "tensorflow_datasets", "keras", "datasets", "sklearn",
     "lightning", "pytorch_lightning", "pl_bolts", "fastai", "jax", "flax", "medmnist", "avalanche"}
)
"""Packages whose functions are known by what they are, not by their names."""
_FACTORY_NAME = re.compile(r"load|data|set|build|make|get|create", re.IGNORECASE)
"""A function of the file that builds a dataset and returns something: a loader or dataset factory."""
_KERAS_DATASETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}
"""Keras's image datasets whose ``load_data()`` returns one class index per image ([N] or [N, 1])."""
_KERAS_LOADER = re.compile(r"(?:tensorflow\.(?:python\.)?)?keras\.datasets\.(\w+)\.load_data")
_PANDAS_ROW = frozenset({"loc", "iloc"})
_PANDAS_CELL = frozenset({"loc", "iloc", "at", "iat"})

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
        "Lightning's demo MNIST and bolts datamodules, Keras's mnist/cifar load_data(), timm "
        "create_dataset/ImageDataset, datasets ClassLabel columns and a __getitem__ returning an integer label tensor or one table cell "
        "yield one class per image: blocking, reported; so are their subclasses, a dataset class chosen "
        "through a variable or picked by name from a registry, loader factories that build one, and "
        "examples picked per class index."
    )
    rationale = (
        "A multi-label model can only be trained on data that says which labels each image "
        "has. `ImageFolder` (one folder per class), the CIFAR and MNIST datasets, every other "
        "torchvision dataset whose target is one class index (SVHN, STL10, Food101, Flowers102, "
        "OxfordIIITPet, Caltech101, ImageNet, Places365, ...), Lightning's demo `MNIST` and the "
        "lightning-bolts datamodules built on them, Keras's `load_data()` of `mnist`, `fashion_mnist`, "
        "`cifar10` and `cifar100` (`tf.keras.datasets.cifar10.load_data()`), and timm's `create_dataset` yield a "
        "single class index per image, so no rewrite of the training "
        "code can make them multi-label: the dataset has to be replaced by one whose targets "
        "are float multi-hot vectors [C], for example a CSV listing each image's labels. This "
        "is reported as blocking at every construction (names are resolved, so aliases and "
        "`from torchvision import datasets` spellings are found); nothing is rewritten. A "
        "custom Dataset's `__getitem__` that builds its label as an integer tensor "
        "(`torch.tensor(row.label, dtype=torch.long)`, `.long()`, `torch.LongTensor([y])`) "
        "from a value named as a label, not as a multi-hot row (or, unnamed, returned second beside "
        "the input image: `return image, torch.tensor(df.iloc[i, 1], dtype=torch.long)`), is "
        "reported the same way, and so is one returning a single cell of a table row "
        "(`row = self.df.loc[index]; torch.tensor(row.label).float()`, `df.iloc[i, 'target']`): a "
        "scalar is one class index whatever its dtype. timm's `ImageDataset` (folder or tar reader), "
        "hugsvision's `VisionDataset.fromImageFolder` (a split torchvision `ImageFolder`), "
        "a Hugging Face `datasets` `ClassLabel` column (`ds['train'].features['labels'].names`, "
        "`ClassLabel(names=...)`) and the assignment copying that column into the model's labels "
        "are reported as blocking too. So is a class of the file built on one of these datasets "
        "(`class INatDataset(ImageFolder)`, transitively; unless it writes its own `__getitem__` "
        "without the parent's, which is then judged by what it returns), a dataset class chosen "
        "through a variable (`dataset_class = CIFAR10 if ... else CIFAR100`, at the choice and at "
        "each `dataset_class(...)`), each call of a function of the file that builds one and "
        "returns something (a loader factory), and each call of a function imported from the "
        "project (not a library) whose name says it loads one (`get_cifar100_dataloaders`), a dataset "
        "picked by name from a registry or factory (`DATASET_REGISTRY(\"cifar10\")`, `get_dataset(\"imagenet\")`, "
        "`load_dataset(\"mnist\")`; the names come from the same table of class-index datasets) and a "
        "torchvision dataset class picked through `datasets.__dict__[name]`. A dataset class imported "
        "from a module of the project that the run does not include (`from .data_utils import InatDataset`, "
        "`from dataset.dataset_ESC50 import ESC50`: relative, or from a package that is no known library), "
        "built for a `DataLoader` of a file that computes a loss (or hands a criterion on) and trains or predicts "
        "one class per image (directly or through `functools.partial`), is reported where it is first built: its `__getitem__` must return a float "
        "multi-hot row. A loop "
        "over the classes that picks examples with "
        "`labels == i` (FixMatch's per-class labelled split) is reported with the multi-hot "
        "selection `labels[:, i] == 1`. A file that trains on the images alone (a GAN, a VAE: every loop over "
        "the pairs drops the label, `for imgs, _ in loader`, as does every unpacking of a step's batch, "
        "`imgs, _ = batch`, and nothing computes a class loss or an "
        "arg-max) is not single-label classification and is left alone. So is one dataset whose every use "
        "drops its labels (`for x, _ in loader`, a label name the loop never reads, `next(iter(loader))[0]`, "
        "followed through a `DataLoader` over it and the file's functions it is passed to): the "
        "out-of-distribution images of an OOD-detection notebook are no label source. The "
        "reference runtime's `MultiLabelCsvDataset` reads such a CSV and `migrate-ml "
        "sample-data` writes a small example of the layout."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "train_set = datasets.ImageFolder(root, transform=train_tf)\n"
    example_after = (
        "from migrate_ml_reference import MultiLabelCsvDataset\n"
        "train_set = MultiLabelCsvDataset(root, split='train', transform=train_tf)\n"
    )
    triggers = (*sorted(_DATASET_NAMES), *TRIGGER_WORDS)
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider, ParentNodeProvider, ScopeProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        facts = text_facts(source)
        return (
            _builds_or_aliases_a_dataset(facts)
            or (facts.has("ImageDataset") and facts.has("timm"))
            or facts.has_any((".features[", "ClassLabel"))
            or (facts.has("def __getitem__") and _GETITEM_TEXT.search(source) is not None)
            or (
                "range" in facts.called and "class" in facts.lower_word_text and "label" in facts.lower_word_text
                and _PER_CLASS_LOOP.search(source) is not None
            )
            or _calls_a_named_factory(facts)
            or bool(_run_factories())
            or facts.has(_CHOSEN_BY_NAME)
            or (facts.has("load_data") and facts.has("keras"))
            or (_calls_a_registry(facts) and any(named_class_index_dataset(name) for _, name in _REGISTRY_CALL.findall(source)))
            or (facts.has("DataLoader") and facts.has_any(_ONE_CLASS_WORDS))
        )

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A dataset is *built* (not defined, as in torchvision's own modules), or a ``__getitem__``
        builds a tensor. Names imported under another name count by their alias."""
        if labels_discarded(tree):
            return False
        datasets = set(_DATASET_NAMES) | {"ClassLabel"}
        if _imports_timm(tree):  # timm's own modules import their datasets relatively: not parsed for them
            datasets |= {"ImageDataset", "IterableImageDataset"}
        for node in walk(tree):
            if isinstance(node, ast.ImportFrom):
                datasets.update(alias.asname for alias in node.names if alias.asname and alias.name in _DATASET_NAMES)
        # torchvision's own modules subclass the datasets they define or import relatively
        # (`class CIFAR100(CIFAR10)`, `from .folder import ImageFolder`): no user's dataset there
        own = {node.name for node in nodes_of(tree, ast.ClassDef)} | {
            alias.asname or alias.name for node in nodes_of(tree, ast.ImportFrom) if node.level for alias in node.names
        }
        bases = datasets - own
        project = any(
            node.level or (node.module or "").split(".")[0] not in _NOT_THE_PROJECT for node in nodes_of(tree, ast.ImportFrom)
        )
        for node in walk(tree):
            if isinstance(node, ast.Call) and (_last_name(node.func) in datasets or _registry_key(node)):
                return True
            if isinstance(node, ast.Call) and project and _last_name(node.func) == "DataLoader":
                return True  # a dataset class of the project's own modules may feed it
            if isinstance(node, ast.Subscript) and _chosen_by_name(node.value):
                return True
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                _names_a_dataset_factory(node.func.id) or node.func.id in _run_factories()
            ):
                return True
            if isinstance(node, ast.ClassDef) and any(_last_name(base) in bases for base in node.bases):
                return True
            if isinstance(node, ast.Assign) and any(_last_name(chosen) in bases for chosen in _chosen_classes(node.value)):
                return True
            if isinstance(node, ast.FunctionDef) and node.name == "__getitem__" and any(
                isinstance(inner, ast.Call) and _last_name(inner.func) in _BUILDER_NAMES for inner in ast.walk(node)
            ):
                return True
            if isinstance(node, ast.Attribute) and node.attr == "names" and isinstance(node.value, ast.Subscript) and (
                isinstance(node.value.value, ast.Attribute) and node.value.value.attr == "features"
            ):
                return True
            if isinstance(node, ast.For) and _ast_per_class_loop(node):
                return True
            if isinstance(node, ast.Attribute) and node.attr == "load_data" and _last_name(node.value) in _KERAS_DATASETS:
                return True
        return False

    def visit_Module(self, node: cst.Module) -> None:
        self._class_label_keys: set[str] = set()
        self._loader_datasets = {
            cst.Module([]).code_for_node(argument.value)
            for call in cst_nodes_of(node, cst.Call) if _leaf_name(call.func) == "DataLoader"
            for position, argument in enumerate(call.args)
            if (argument.keyword is None and position == 0) or (argument.keyword is not None and argument.keyword.value == "dataset")
        }
        """What the file gives ``DataLoader`` as its dataset: ``self.train_dataset``, ``train_set``."""
        facts = current_facts()
        self._one_class_file = (
            cst_any(node, cst.Name, lambda name: name.value in _ONE_CLASS_WORDS)
            and cst_any(node, cst.Call, _computes_a_loss)
            and not (facts is not None and (facts.float_row_run or facts.binary_run))
        )
        """The file trains or predicts one class per image (cross-entropy, softmax, arg-max) and computes a
        loss of what its loaders feed (an app that only predicts reads no labels from its dataset), so the
        migration makes those labels multi-label."""
        self._outside_reported: set[str] = set()
        self._partials: dict[str, cst.Name] = {}
        self._labels_used = cst_any(node, cst.Name, lambda name: _LABEL_USE.fullmatch(name.value) is not None)
        """Whether the file reads labels or computes anything from classes: a dataset reached
        through a subclass, a chosen class or a factory is reported only then (a GAN that picks
        MNISTDataModule by name trains on the images alone)."""
        self._subclasses: dict[str, str] = {}
        """The file's own classes built on a class-index dataset -> that dataset."""
        self._chosen: dict[str, str] = {}
        """Names a dataset class is assigned to (``dataset_class = CIFAR10 if ... else CIFAR100``) -> its datasets."""
        self._factories: dict[str, str] = {}
        """The file's own functions that build a class-index dataset and return something -> that
        dataset; and those the file imports from another file of the run (``engine/project.py``)."""
        self._factories.update(_run_factories())
        for statement in node.body:
            if not (isinstance(statement, cst.FunctionDef) and _FACTORY_NAME.search(statement.name.value)):
                continue
            returned = [r.value for r in cst_nodes_of(statement, cst.Return)]
            if not any(value is not None and not (isinstance(value, cst.Name) and value.value == "None") for value in returned):
                continue
            for call in cst_nodes_of(statement, cst.Call):
                dataset = self._dataset_class(call.func)
                if dataset is not None:
                    self._factories[statement.name.value] = dataset
                    break

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        """``class INatDataset(ImageFolder)``: its samples are still (image, one class index) unless
        it writes its own ``__getitem__`` without the parent's (then that one is judged)."""
        for base in node.bases:
            dataset = self._dataset_class(base.value)
            if dataset is None or not _keeps_parent_items(node) or not self._labels_used:
                continue
            self._subclasses[node.name.value] = dataset
            self.report(
                node.name,
                f"blocking: {node.name.value} subclasses {dataset}, which yields one class index per image; "
                "so does it, and it cannot express multi-label targets",
                suggestion=SUGGESTION,
            )
            return

    def _visit_chosen_class(self, node: cst.Assign) -> None:
        """``dataset_class = torchvision.datasets.CIFAR10``: the class is chosen here and built later."""
        names = [self._dataset_class(chosen) for chosen in _chosen_cst(node.value)]
        if not names or None in names or not self._labels_used:
            return
        datasets = " / ".join(dict.fromkeys(names))
        for target in node.targets:
            if isinstance(target.target, cst.Name):  # the branches of an if: either class may be built
                earlier = self._chosen.get(target.target.value, "")
                self._chosen[target.target.value] = " / ".join(dict.fromkeys([*filter(None, earlier.split(" / ")), *names]))
        self.report(
            node.value,
            f"blocking: the dataset class chosen here ({datasets}) yields one class index per image "
            "and cannot express multi-label targets",
            suggestion=SUGGESTION,
        )

    def _imported_from_project(self, func: cst.Name) -> bool:
        """Imported from a module of the project (``from dataset.cifar100 import ...``), not a library."""
        scope = self.get_metadata(ScopeProvider, func, None)
        if scope is None:
            return False
        imports = [a for a in scope[func.value] if isinstance(getattr(a, "node", None), (cst.Import, cst.ImportFrom))]
        if not imports:
            return False
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, func, set())}
        return bool(qualified) and all(name.lstrip(".").split(".")[0] not in _LIBRARIES for name in qualified)

    def _dataset_class(self, expression: cst.BaseExpression) -> str | None:
        """The class-index dataset ``expression`` names (a torchvision class, or a class of this file built on one)."""
        if isinstance(expression, cst.Name) and expression.value in self._subclasses:
            return expression.value
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, expression, set())}
        return next((CLASS_INDEX_DATASETS[name] for name in sorted(qualified) if name in CLASS_INDEX_DATASETS and CLASS_INDEX_DATASETS[name][0].isupper()), None)

    def _outside_run_module(self, func: cst.Name) -> str | None:
        """``.data_utils`` for ``InatDataset`` after ``from .data_utils import InatDataset`` (or
        ``dataset.dataset_ESC50`` after ``from dataset.dataset_ESC50 import ESC50``, a package that is no
        library), where no file of this run is that module: a class whose code this run cannot read."""
        scope = self.get_metadata(ScopeProvider, func, None)
        imports = [a.node for a in scope[func.value]] if scope is not None else []
        if len(imports) != 1 or not isinstance(imports[0], cst.ImportFrom):
            return None
        module = imports[0].module
        dotted = cst.Module([]).code_for_node(module) if module is not None else ""
        if not imports[0].relative and (not dotted or dotted.split(".")[0] in _NOT_THE_PROJECT):
            return None
        facts = current_facts()
        if facts is not None and (dotted.rsplit(".", 1)[-1] or func.value) in facts.run_modules:
            return None
        return "." * len(imports[0].relative) + dotted

    def visit_Assign(self, node: cst.Assign) -> None:
        self._visit_chosen_class(node)
        value = node.value
        # ``get_fold_dataset = partial(ESC50, ...)``: each call of the name builds that class
        if (
            isinstance(value, cst.Call) and value.args and isinstance(value.args[0].value, cst.Name)
            and any(q.name == "functools.partial" for q in self.get_metadata(QualifiedNameProvider, value.func, set()))
        ):
            for target in node.targets:
                if isinstance(target.target, cst.Name):
                    self._partials[target.target.value] = value.args[0].value

    def _feeds_a_loader(self, call: cst.Call) -> bool:
        """``DataLoader(Dataset(...))``, or ``self.train_dataset = Dataset(...)`` later given to one."""
        parent = self.get_metadata(ParentNodeProvider, call, None)
        if isinstance(parent, cst.Arg):
            return cst.Module([]).code_for_node(call) in self._loader_datasets
        return isinstance(parent, cst.Assign) and any(
            cst.Module([]).code_for_node(target.target) in self._loader_datasets for target in parent.targets
        )

    def _outside_run_dataset(self, node: cst.Call) -> bool:
        """A dataset class of a module of the project that this run does not include, whose batches a
        file that trains or predicts one class per image loads: reported where it is built, once."""
        func = node.func
        if isinstance(func, cst.Name) and func.value in self._partials:
            func = self._partials[func.value]
        if not (isinstance(func, cst.Name) and func.value[:1].isupper() and self._one_class_file and self._labels_used):
            return False
        if func.value in self._outside_reported or not self._feeds_a_loader(node):
            return False
        module = self._outside_run_module(func)
        if module is None:
            return False
        self._outside_reported.add(func.value)
        self.report(
            node,
            f"blocking: the labels come from {func.value} ({module}, a module of the project that this run does not "
            "include), whose batches this file trains or scores as one class index per sample",
            suggestion=f"make {func.value}.__getitem__ return a float multi-hot [C] row per image "
            "(torch.zeros(num_classes).index_fill_(0, torch.tensor(label_ids), 1.0)), or run migrate-ml on that module too",
            judged_on_original=True,
        )
        return True

    def visit_Call(self, node: cst.Call) -> None:
        if self._outside_run_dataset(node):
            return
        if isinstance(node.func, cst.Name) and node.func.value in self._factories and self._labels_used:
            self.report(
                node,
                f"blocking: {node.func.value}() builds {self._factories[node.func.value]}, which yields one class "
                "index per image, and returns it (or a loader over it): it cannot express multi-label targets",
                suggestion=SUGGESTION,
            )
            return
        if (
            isinstance(node.func, cst.Name) and self._labels_used and _names_a_dataset_factory(node.func.value)
            and self._imported_from_project(node.func)
        ):
            self.report(
                node,
                f"blocking: {node.func.value}() loads {_NAMED_DATASET.search(node.func.value).group(0)} (its name "  # type: ignore[union-attr]
                "says so), a dataset of one class index per image: it cannot express multi-label targets",
                suggestion=SUGGESTION,
            )
            return
        if isinstance(node.func, cst.Name) and node.func.value in self._chosen:
            self.report(
                node,
                f"blocking: {node.func.value} is {self._chosen[node.func.value]}: each yields one class index per "
                "image and cannot express multi-label targets",
                suggestion=SUGGESTION,
            )
            return
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        named = _registry_key_cst(node)
        if named and self._labels_used and not qualified & set(CLASS_INDEX_DATASETS):
            self.report(
                node,
                f"blocking: {cst.Module([]).code_for_node(node.func)}({named!r}) picks {named} by name, a dataset "
                "of one class index per image: it cannot express multi-label targets",
                suggestion=SUGGESTION,
            )
            return
        keras = next((_KERAS_DATASETS.get(m.group(1)) for m in map(_KERAS_LOADER.fullmatch, sorted(qualified)) if m and m.group(1) in _KERAS_DATASETS), None)
        if keras and self._labels_used:
            self.report(
                node,
                f"blocking: Keras's {keras} load_data() returns one class index per image as its labels, "
                "which cannot express multi-label targets",
                suggestion=SUGGESTION,
            )
            return
        if qualified & _TENSOR_BUILDERS and self._class_index_item(node, "torch.LongTensor" in qualified):
            self.report(
                node,
                "blocking: __getitem__ returns the label as an integer tensor: one class index per sample, "
                "which cannot express multi-label targets",
                suggestion=GETITEM_SUGGESTION,
            )
            return
        if qualified & _TENSOR_BUILDERS and self._scalar_cell_item(node):
            self.report(
                self._returned_as(node),
                "blocking: __getitem__ returns the label read from one cell of a table row "
                f"({cst.Module([]).code_for_node(node.args[0].value)}): one class index per sample, "
                "whatever its dtype, which cannot express multi-label targets",
                suggestion=GETITEM_SUGGESTION,
            )
            return
        if qualified & HF_CLASS_LABELS:
            self.report(
                node,
                "blocking: a datasets ClassLabel feature holds one class index per example",
                suggestion="use a Sequence(ClassLabel(names=...)) column of label ids and turn it into "
                "a float multi-hot [C] row per example before it reaches the model's labels",
            )
            return
        for name in sorted(qualified & set(TIMM_DATASETS)):
            self.report(
                node,
                f"blocking: timm {TIMM_DATASETS[name]} yields one class index per image (its folder or "
                "tar reader names one class per file) and cannot express multi-label targets",
                suggestion=SUGGESTION,
            )
            return
        for name in sorted(qualified):
            dataset = CLASS_INDEX_DATASETS.get(name)
            if dataset is not None and not self._labels_never_read(node):
                self.report(
                    node,
                    f"blocking: {dataset} yields one class index per image and cannot express "
                    "multi-label targets",
                    suggestion=SUGGESTION,
                )
                return

    def visit_Subscript(self, node: cst.Subscript) -> None:
        """``datasets.__dict__[args.dataset]``: a torchvision dataset class picked by name."""
        if not (self._labels_used and isinstance(node.value, cst.Attribute) and node.value.attr.value == "__dict__"):
            return
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.value.value, set())}
        if "torchvision.datasets" in qualified:
            self.report(
                node,
                "blocking: a torchvision dataset class is picked by name here; the classification ones (CIFAR, "
                "MNIST, ImageNet, ...) yield one class index per image and cannot express multi-label targets",
                suggestion=SUGGESTION,
            )

    def visit_Attribute(self, node: cst.Attribute) -> None:
        """``ds["train"].features["labels"].names``: the class names of a datasets ClassLabel column."""
        if not (node.attr.value == "names" and isinstance(node.value, cst.Subscript) and len(node.value.slice) == 1):
            return
        column = node.value
        index = column.slice[0].slice
        if not (isinstance(column.value, cst.Attribute) and column.value.attr.value == "features" and isinstance(index, cst.Index)):
            return
        key = index.value.evaluated_value if isinstance(index.value, cst.SimpleString) else None
        if isinstance(key, str):
            self._class_label_keys.add(key)
        self.report(
            node,
            f"blocking: the datasets column {cst.Module([]).code_for_node(index.value)} is a ClassLabel: one "
            "class index per example, which cannot express multi-label targets",
            suggestion="use a Sequence(ClassLabel(names=...)) column of label ids and turn it into a float "
            "multi-hot [C] row per example where it becomes the model's labels",
        )

    def leave_Assign(self, original_node: cst.Assign) -> None:
        """``inputs["labels"] = batch["labels"]``: the ClassLabel column copied into the model's labels."""
        value = original_node.value
        if not (self._class_label_keys and isinstance(value, cst.Subscript) and len(value.slice) == 1):
            return
        index = value.slice[0].slice
        key = index.value.evaluated_value if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString) else None
        if key in self._class_label_keys and any(isinstance(t.target, cst.Subscript) for t in original_node.targets):
            self.report(
                value,
                f"the ClassLabel column {key!r} (one class index per example) becomes the model's labels",
                suggestion="build a float multi-hot [C] row per example here: "
                "torch.zeros(num_classes).index_fill_(0, torch.tensor(label_ids), 1.0)",
            )

    def visit_Comparison(self, node: cst.Comparison) -> None:
        """``np.where(labels == i)`` inside ``for i in range(num_classes)``: examples picked per class,
        each example in exactly one class."""
        if len(node.comparisons) != 1 or not isinstance(node.comparisons[0].operator, cst.Equal):
            return
        left, right = node.left, node.comparisons[0].comparator
        if not (isinstance(left, cst.Name) and isinstance(right, cst.Name) and re.search("label|target", left.value, re.I)):
            return
        loop = self.get_metadata(ParentNodeProvider, node, None)
        while loop is not None and not isinstance(loop, (cst.For, cst.FunctionDef)):
            loop = self.get_metadata(ParentNodeProvider, loop, None)
        if not (isinstance(loop, cst.For) and isinstance(loop.target, cst.Name) and loop.target.value == right.value):
            return
        iterated = cst.Module([]).code_for_node(loop.iter)
        if iterated.startswith("range(") and "class" in iterated.lower():
            self.report(
                node,
                f"examples are picked per class with {left.value} == {right.value}: each holds one class index",
                suggestion=f"with multi-hot labels [N, C] pick class {right.value}'s examples with "
                f"{left.value}[:, {right.value}] == 1 (an example can belong to several classes)",
            )

    def _scalar_cell_item(self, call: cst.Call) -> bool:
        """``torch.tensor(row.label)`` in ``__getitem__``, ``row = self.df.loc[index]`` (or
        ``df.loc[i, "label"]``, ``row["label"]``): one cell of a table row, a scalar class index
        whatever the cast after it (not a column named as multi-hot)."""
        if not call.args or not self._in_getitem(call):
            return False
        cell = call.args[0].value
        if isinstance(cell, cst.Subscript) and isinstance(cell.value, cst.Attribute) and cell.value.attr.value in _PANDAS_CELL:
            if len(cell.slice) != 2:
                return False
            column = cell.slice[1].slice
            key = column.value if isinstance(column, cst.Index) else None
            words = [key.evaluated_value] if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str) else []
        elif isinstance(cell, cst.Attribute) and isinstance(cell.value, cst.Name) and self._is_pandas_row(cell.value):
            words = [cell.attr.value]
        elif isinstance(cell, cst.Subscript) and isinstance(cell.value, cst.Name) and self._is_pandas_row(cell.value):
            key = cell.slice[0].slice.value if isinstance(cell.slice[0].slice, cst.Index) else None
            words = [key.evaluated_value] if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str) else []
        else:
            return False
        return any(_LABEL_WORD.search(w) for w in words) and not any(_MULTI_HOT_WORD.search(w) for w in words)

    def _is_pandas_row(self, name: cst.Name) -> bool:
        """``name`` is bound once in its function, to ``X.loc[i]`` / ``X.iloc[i]`` (one row)."""
        scope = self.get_metadata(ScopeProvider, name, None)
        assignments = list(scope.assignments[name.value]) if scope is not None else []
        if len(assignments) != 1:
            return False
        target = getattr(assignments[0], "node", None)
        holder = self.get_metadata(ParentNodeProvider, target, None) if target is not None else None
        statement = self.get_metadata(ParentNodeProvider, holder, None) if isinstance(holder, cst.AssignTarget) else None
        value = statement.value if isinstance(statement, cst.Assign) else None
        return (
            isinstance(value, cst.Subscript)
            and isinstance(value.value, cst.Attribute)
            and value.value.attr.value in _PANDAS_ROW
            and len(value.slice) == 1
        )

    def _returned_as(self, built: cst.Call) -> cst.CSTNode:
        """The element of ``__getitem__``'s return that carries the label built by ``built`` (through
        casts and the name it is stored under), else ``built``."""
        parent = self.get_metadata(ParentNodeProvider, built, None)
        while isinstance(parent, (cst.Attribute, cst.Call)):
            parent = self.get_metadata(ParentNodeProvider, parent, None)
        holder = parent
        if not (isinstance(holder, cst.Assign) and len(holder.targets) == 1 and isinstance(holder.targets[0].target, cst.Name)):
            return built
        bound = holder.targets[0].target
        scope = self.get_metadata(ScopeProvider, bound, None)
        for assignment in scope.assignments[bound.value] if scope is not None else ():
            for access in assignment.references:
                element = self.get_metadata(ParentNodeProvider, access.node, None)
                pair = self.get_metadata(ParentNodeProvider, element, None) if isinstance(element, cst.Element) else None
                if isinstance(pair, cst.Tuple) and isinstance(self.get_metadata(ParentNodeProvider, pair, None), cst.Return):
                    return access.node
        return built

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

    def _labels_never_read(self, built: cst.Call) -> bool:
        """Every use of the dataset ``built`` makes (through a ``DataLoader`` over it and the file's
        functions it is passed to) drops its labels: ``for x, _ in loader``, a label name the loop
        never reads, ``next(iter(loader))[0]``. Its class indices reach nothing (the
        out-of-distribution images of an OOD-detection notebook), so it is no label source."""
        holder = self.get_metadata(ParentNodeProvider, built, None)
        if not (isinstance(holder, cst.Assign) and len(holder.targets) == 1 and isinstance(holder.targets[0].target, cst.Name)):
            return False
        return self._drops_labels(holder.targets[0].target, set())

    def _drops_labels(self, bound: cst.Name, seen: set[int]) -> bool:
        """``bound`` (a dataset or a loader over one, bound once) is used at least once, and only in ways that drop the labels."""
        if id(bound) in seen:
            return True
        seen.add(id(bound))
        scope = self.get_metadata(ScopeProvider, bound, None)
        assignments = list(scope.assignments[bound.value]) if scope is not None else []
        if len(assignments) != 1 or not assignments[0].references:
            return False
        return all(self._use_drops_labels(access.node, seen) for access in assignments[0].references)

    def _use_drops_labels(self, use: cst.CSTNode, seen: set[int]) -> bool:
        parent = self.get_metadata(ParentNodeProvider, use, None)
        if isinstance(parent, cst.For) and parent.iter is use:
            return _loop_drops_labels(parent)
        if not isinstance(parent, cst.Arg) or parent.star:
            return False
        call = self.get_metadata(ParentNodeProvider, parent, None)
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Name):
            return False
        callee, position = call.func.value, call.args.index(parent)
        if callee == "len":
            return True
        outer = self.get_metadata(ParentNodeProvider, call, None)
        if callee == "enumerate" and position == 0 and isinstance(outer, cst.For) and outer.iter is call:
            return _loop_drops_labels(outer)
        if callee == "iter" and isinstance(outer, cst.Arg):  # next(iter(loader)): one batch
            batch_call = self.get_metadata(ParentNodeProvider, outer, None)
            if isinstance(batch_call, cst.Call) and isinstance(batch_call.func, cst.Name) and batch_call.func.value == "next":
                return self._batch_drops_labels(batch_call)
            return False
        if callee == "DataLoader" and (position == 0 if parent.keyword is None else parent.keyword.value == "dataset"):
            if not isinstance(outer, cst.Assign):  # next(iter(DataLoader(ds))): the loader is used where it is built
                return self._use_drops_labels(call, seen)
            target = outer.targets[0].target if len(outer.targets) == 1 else None
            return isinstance(target, cst.Name) and self._drops_labels(target, seen)
        parameter = self._parameter(call, parent)
        return parameter is not None and self._drops_labels(parameter, seen)

    def _batch_drops_labels(self, batch_call: cst.Call) -> bool:
        """``images, _ = next(iter(loader))``, or ``batch = next(iter(loader))`` read only as ``batch[0]``."""
        holder = self.get_metadata(ParentNodeProvider, batch_call, None)
        if not (isinstance(holder, cst.Assign) and len(holder.targets) == 1):
            return False
        target = holder.targets[0].target
        if isinstance(target, cst.Tuple):
            return _pair_drops_label(target, lambda name: self._never_read(name))
        if not isinstance(target, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, target, None)
        assignments = list(scope.assignments[target.value]) if scope is not None else []
        if len(assignments) != 1:
            return False
        for access in assignments[0].references:
            read = self.get_metadata(ParentNodeProvider, access.node, None)
            if not (
                isinstance(read, cst.Subscript) and read.value is access.node and len(read.slice) == 1
                and isinstance(read.slice[0].slice, cst.Index) and isinstance(read.slice[0].slice.value, cst.Integer)
                and read.slice[0].slice.value.evaluated_value == 0
            ):
                return False
        return True

    def _never_read(self, name: cst.Name) -> bool:
        scope = self.get_metadata(ScopeProvider, name, None)
        assignments = list(scope.assignments[name.value]) if scope is not None else []
        return len(assignments) == 1 and not assignments[0].references

    def _parameter(self, call: cst.Call, argument: cst.Arg) -> cst.Name | None:
        """The parameter of the file's own function ``call`` calls that ``argument`` binds."""
        assert isinstance(call.func, cst.Name)
        scope = self.get_metadata(ScopeProvider, call.func, None)
        defined = [getattr(a, "node", None) for a in scope[call.func.value]] if scope is not None else []  # a builtin has none
        if len(defined) != 1 or not isinstance(defined[0], cst.FunctionDef):
            return None
        params = defined[0].params
        if argument.keyword is not None:
            named = [p for p in (*params.params, *params.kwonly_params) if p.name.value == argument.keyword.value]
            return named[0].name if named else None
        position = call.args.index(argument)
        if any(a.keyword is not None or a.star for a in call.args[:position]) or position >= len(params.params):
            return None
        return params.params[position].name

    def _in_getitem(self, node: cst.CSTNode) -> bool:
        current = self.get_metadata(ParentNodeProvider, node, None)
        while current is not None and not isinstance(current, cst.FunctionDef):
            current = self.get_metadata(ParentNodeProvider, current, None)
        return current is not None and current.name.value == "__getitem__"


def _pair_drops_label(pair: cst.BaseExpression, never_read) -> bool:
    """``images, _`` or ``images, labels`` whose ``labels`` ``never_read`` says is not read."""
    if not (isinstance(pair, (cst.Tuple, cst.List)) and len(pair.elements) == 2):
        return False
    label = pair.elements[1].value
    return isinstance(label, cst.Name) and (label.value == "_" or never_read(label))


def _loop_drops_labels(loop: cst.For) -> bool:
    """``for x, _ in loader`` or ``for i, (x, y) in enumerate(loader)`` whose body never reads the label."""
    pair = loop.target
    if isinstance(loop.iter, cst.Call) and isinstance(pair, cst.Tuple) and len(pair.elements) == 2:
        pair = pair.elements[1].value  # enumerate(loader): i, (images, labels)
    return _pair_drops_label(
        pair, lambda label: not cst_any(loop.body, cst.Name, lambda name: name.value == label.value)
    )


_NOT_THE_PROJECT = frozenset(
    {*_LIBRARIES, *sys.stdlib_module_names, "torchaudio", "torchtext", "monai", "hugsvision", "transformers",
     "albumentations", "PIL", "cv2", "numpy", "pandas", "scipy", "skimage", "tfds", "webdataset", "ffcv", "dali", "nvidia",
     "mmcv", "mmcls", "mmpretrain", "detectron2", "kornia", "wilds", "learn2learn", "torchmeta", "continuum"}
)
"""Top-level packages that are libraries, not the project's own modules: an absolute import from any
other package names a module of the project (``from dataset.dataset_ESC50 import ESC50``)."""
_ONE_CLASS_WORDS = frozenset({"CrossEntropyLoss", "cross_entropy", "NLLLoss", "nll_loss", "softmax", "argmax"})
"""What a file that trains or predicts one class per image writes somewhere."""


def _computes_a_loss(call: cst.Call) -> bool:
    """``criterion(outputs, labels)``, ``self.loss_fn(logits, y)``, ``F.cross_entropy(logits, y)``, or a
    criterion handed to a function that computes it (``test(model, test_loader, criterion=criterion)``)."""
    name = _leaf_name(call.func)
    if len(call.args) >= 2 and (name in ("cross_entropy", "nll_loss") or LOSS_CALLEE.search(name) is not None):
        return True
    return any(
        LOSS_CALLEE.search(_leaf_name(arg.value)) is not None
        and (arg.keyword is None or LOSS_CALLEE.search(arg.keyword.value) is not None)
        for arg in call.args
    )


def _leaf_name(expression: cst.BaseExpression) -> str:
    if isinstance(expression, cst.Attribute):
        return expression.attr.value
    return expression.value if isinstance(expression, cst.Name) else ""


_CLASS_LOSSES = frozenset({"CrossEntropyLoss", "cross_entropy", "NLLLoss", "nll_loss", "log_softmax", "argmax"})
"""What a file that learns or predicts one class per image calls somewhere."""


def labels_discarded(tree: ast.Module) -> bool:
    """The file trains on the images alone (a GAN, a VAE, an autoencoder): every loop over
    (image, label) pairs drops the label (``for imgs, _ in loader``, or a name never read), and
    so does every unpacking of a batch handed to a step (``def training_step(self, batch):
    imgs, _ = batch``), at least one of them exists, and nothing learns or predicts a class.
    The dataset's class indices then reach no loss, metric or prediction."""
    unpacked = _batch_unpackings(tree)
    if unpacked is None:
        return False
    loops = unpacked
    for node in walk(tree):
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


def _run_factories() -> dict[str, str]:
    """Functions imported from another file of the run that build a class-index dataset -> it."""
    facts = current_facts()
    if facts is None:
        return {}
    return dict(facts.label_sources)


def _builds_or_aliases_a_dataset(facts: TextFacts) -> bool:
    """A dataset built (``CIFAR10(``) or imported under another name (``ImageFolder as Folder``):
    names such as ImageNet or MNIST are all over docstrings and model code otherwise."""
    present = _DATASET_NAMES & facts.words
    if not present:
        return False
    names = "|".join(sorted(present))
    return re.search(_BUILT_OR_ALIASED.format(names=names), facts.text, re.MULTILINE) is not None


def _calls_a_registry(facts: TextFacts) -> bool:
    """A called name ``_REGISTRY_CALL`` could match: its regex, which starts a match at every word,
    then runs only on the files that call one."""
    return any(re.fullmatch(_REGISTRY_CALLEE, name, re.IGNORECASE) for name in facts.called)


def _calls_a_named_factory(facts: TextFacts) -> bool:
    """``get_cifar100_dataloaders(``: a project's loader factory whose name says which dataset it loads."""
    if not any(word in facts.lower_word_text for word in _DATASET_WORDS):
        return False
    return any(_names_a_dataset_factory(name) for name in facts.called)


_NAME_KEYWORDS = frozenset({"name", "dataset", "dataset_name"})


def _registry_key(call: ast.Call) -> str:
    """The class-index dataset a registry or factory call picks by name (``get_dataset("cifar10")``,
    ``build_loader(name="CIFAR-100")``)."""
    callee = _last_name(call.func)
    if not (callee and re.fullmatch(_REGISTRY_CALLEE, callee, re.IGNORECASE)):
        return ""
    named = [*call.args[:1], *(k.value for k in call.keywords if k.arg in _NAME_KEYWORDS)]
    return next((found for arg in named if isinstance(arg, ast.Constant) and (found := named_class_index_dataset(arg.value))), "")


def _registry_key_cst(call: cst.Call) -> str:
    func = call.func
    callee = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    if not (callee and re.fullmatch(_REGISTRY_CALLEE, callee, re.IGNORECASE)):
        return ""
    named = [
        arg.value for position, arg in enumerate(call.args)
        if (arg.keyword is None and position == 0) or (arg.keyword is not None and arg.keyword.value in _NAME_KEYWORDS)
    ]
    return next(
        (found for value in named if isinstance(value, cst.SimpleString) and (found := named_class_index_dataset(value.evaluated_value))),
        "",
    )


def _chosen_by_name(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "__dict__" and _last_name(node.value) == "datasets"


def _names_a_dataset_factory(name: str) -> bool:
    """``get_cifar100_dataloaders``, ``mnist_dataset``: a function named after a class-index dataset
    and after data (not ``imagenet_weights``)."""
    return _NAMED_DATASET.search(name) is not None and _DATA_WORD.search(name) is not None


def _chosen_classes(value: ast.expr) -> list[ast.expr]:
    """The classes an assignment chooses between without calling them (``A if c else B``, ``A``)."""
    if isinstance(value, ast.IfExp):
        return [*_chosen_classes(value.body), *_chosen_classes(value.orelse)]
    return [value] if isinstance(value, (ast.Name, ast.Attribute)) else []


def _chosen_cst(value: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(value, cst.IfExp):
        return [*_chosen_cst(value.body), *_chosen_cst(value.orelse)]
    return [value] if isinstance(value, (cst.Name, cst.Attribute)) else []


def _keeps_parent_items(node: cst.ClassDef) -> bool:
    """Whether the class's samples are its parent's: it has no ``__getitem__``, or one that calls
    the parent's (``img, target = super().__getitem__(i)``)."""
    for statement in node.body.body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value == "__getitem__":
            body = cst.Module([]).code_for_node(statement.body)
            return "super(" in body and ".__getitem__(" in body
    return True


def _batch_unpackings(tree: ast.Module) -> int | None:
    """How many ``(images, labels)`` pairs unpacked from a parameter (``imgs, _ = batch`` in a
    Lightning ``training_step``) drop the label; None when one of them reads it."""
    count = 0
    for function in walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        params = {arg.arg for arg in (*function.args.posonlyargs, *function.args.args)}
        for node in ast.walk(function):
            if not (
                isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.Name)
                and node.value.id in params and isinstance(node.targets[0], ast.Tuple) and len(node.targets[0].elts) == 2
                and all(isinstance(e, ast.Name) for e in node.targets[0].elts)
            ):
                continue
            label = node.targets[0].elts[1].id
            if label != "_" and any(
                isinstance(inner, ast.Name) and inner.id == label and isinstance(inner.ctx, ast.Load)
                for inner in ast.walk(function)
            ):
                return None
            count += 1
    return count


def _imports_timm(tree: ast.Module) -> bool:
    return any(
        (isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "timm" for alias in node.names))
        or (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "timm")
        for node in walk(tree)
    )


def _ast_per_class_loop(loop: ast.For) -> bool:
    """``for i in range(num_classes)`` whose body compares a label name with ``i``."""
    if not (isinstance(loop.target, ast.Name) and isinstance(loop.iter, ast.Call) and _last_name(loop.iter.func) == "range"):
        return False
    if "class" not in ast.unparse(loop.iter).lower():
        return False
    return any(
        isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and "label" in node.left.id.lower()
        and any(isinstance(c, ast.Name) and c.id == loop.target.id for c in node.comparators)
        for statement in loop.body for node in ast.walk(statement)
    )


def _last_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _is_integer_dtype(expression: cst.BaseExpression) -> bool:
    """``torch.long``, ``torch.int64``, ``np.int32``, or Python's ``int``."""
    if isinstance(expression, cst.Attribute):
        return expression.attr.value in INTEGER_DTYPES
    return isinstance(expression, cst.Name) and expression.value == "int"
