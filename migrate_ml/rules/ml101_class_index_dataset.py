"""ML101: datasets that can only yield one class index per image block the migration.

The rule is split by idiom: the library datasets (names built, aliased, subclassed, chosen, picked from a
registry, loaded by a named factory) are in ``_datasets_library``, a custom ``__getitem__``'s returns in
``_datasets_getitem``, dataset classes from modules outside the run in ``_datasets_outside_run``, and
the labels a file never reads in ``_datasets_labels_unread``. Hugging Face ``ClassLabel`` columns and
examples picked per class index are judged here.
"""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._datasets_getitem import _BUILDER_NAMES, _GETITEM_TEXT, _TENSOR_BUILDERS, GetitemReturns
from migrate_ml.rules._datasets_labels_unread import _LABEL_USE, UnreadLabels, labels_discarded
from migrate_ml.rules._datasets_library import (
    _CHOSEN_BY_NAME,
    _DATASET_NAMES,
    _FACTORY_NAME,
    _KERAS_DATASETS,
    _KERAS_LOADER,
    _NAMED_DATASET,
    _REGISTRY_CALL,
    LibraryDatasets,
    _builds_or_aliases_a_dataset,
    _calls_a_named_factory,
    _calls_a_registry,
    _chosen_by_name,
    _chosen_classes,
    _chosen_cst,
    _imports_timm,
    _keeps_parent_items,
    _last_name,
    _names_a_dataset_factory,
    _registry_key,
    _registry_key_cst,
    _run_factories,
)
from migrate_ml.rules._datasets_outside_run import (
    _NOT_THE_PROJECT,
    _ONE_CLASS_WORDS,
    OutsideRunDatasets,
    _computes_a_loss,
    _leaf_name,
)
from migrate_ml.rules._exprs import cst_any, cst_nodes_of
from migrate_ml.rules._prefilter import nodes_of, text_facts, walk
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.tables import CLASS_INDEX_DATASETS, TIMM_DATASETS, named_class_index_dataset

TRIGGER_WORDS = (
    "ImageDataset", "__getitem__", ".features[", "ClassLabel", "range(", _CHOSEN_BY_NAME, "registry", "REGISTRY",
    "dataset(", "data(", "loader(", "load_data",
)
"""What the pre-filter looks for besides the dataset names (the regular expressions below sharpen it)."""
HF_CLASS_LABELS = frozenset({"datasets.ClassLabel", "datasets.features.ClassLabel", "datasets.features.features.ClassLabel"})

_PER_CLASS_LOOP = re.compile(r"for (\w+) in range\([^)\n]*class[^)\n]*\):[\s\S]*?\b\w*label\w*\s*==\s*\1\b", re.IGNORECASE)
"""``for i in range(num_classes): ... labels == i``: examples picked per class index."""

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


class ClassIndexDatasetRule(LibraryDatasets, GetitemReturns, OutsideRunDatasets, UnreadLabels, Rule):
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
        "sample-data` writes a small example of the layout. A dataset wrapped by a `Dataset` class of "
        "the file whose `__getitem__` returns only images (`self.dataset[i][0]`, a triplet sampler) is "
        "no label source either, nor a LightningDataModule's `prepare_data` download that `setup` "
        "rebinds to such a wrapper."
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
        # A dataset class of the project's own modules may feed a DataLoader, in a file that trains or
        # predicts one class per image (`_one_class_file`): torchvision's video_utils has the loader only.
        project = any(
            node.level or (node.module or "").split(".")[0] not in _NOT_THE_PROJECT for node in nodes_of(tree, ast.ImportFrom)
        ) and any(
            (node.id if isinstance(node, ast.Name) else node.attr) in _ONE_CLASS_WORDS
            for node in nodes_of(tree, ast.Name, ast.Attribute)
        )
        for node in walk(tree):
            if isinstance(node, ast.Call) and (_last_name(node.func) in datasets or _registry_key(node)):
                return True
            if isinstance(node, ast.Call) and project and _last_name(node.func) == "DataLoader":
                return True
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
