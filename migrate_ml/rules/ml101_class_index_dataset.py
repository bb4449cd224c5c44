"""ML101: datasets that can only yield one class index per image block the migration.

The rule is split by idiom: the library datasets (names built, aliased, subclassed, chosen, picked from a
registry, loaded by a named factory) are in ``_datasets_library``, a custom ``__getitem__``'s returns in
``_datasets_getitem``, dataset classes from modules outside the run in ``_datasets_outside_run``, the
labels a file never reads in ``_datasets_labels_unread``, Hugging Face ``ClassLabel`` columns in
``_datasets_class_label``, examples picked per class index in ``_datasets_per_class``, and the text and
syntax-tree pre-checks in ``_datasets_prechecks``. This module keeps the rule and its dispatch.
"""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._datasets_class_label import ClassLabelColumns
from migrate_ml.rules._datasets_getitem import _TENSOR_BUILDERS, GetitemReturns
from migrate_ml.rules._datasets_labels_unread import _LABEL_USE, UnreadLabels
from migrate_ml.rules._datasets_library import (
    _DATASET_NAMES,
    _FACTORY_NAME,
    _KERAS_DATASETS,
    _KERAS_LOADER,
    _NAMED_DATASET,
    LibraryDatasets,
    _chosen_cst,
    _keeps_parent_items,
    _names_a_dataset_factory,
    _registry_key_cst,
    _run_factories,
)
from migrate_ml.rules._datasets_outside_run import _ONE_CLASS_WORDS, OutsideRunDatasets, _computes_a_loss, _leaf_name
from migrate_ml.rules._datasets_per_class import PerClassPicks
from migrate_ml.rules._datasets_prechecks import TRIGGER_WORDS, text_may_name_a_dataset, tree_builds_a_dataset
from migrate_ml.rules._exprs import cst_any, cst_nodes_of
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.tables import CLASS_INDEX_DATASETS, TIMM_DATASETS

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


class ClassIndexDatasetRule(LibraryDatasets, GetitemReturns, OutsideRunDatasets, UnreadLabels, ClassLabelColumns, PerClassPicks, Rule):
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
        return text_may_name_a_dataset(source)

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        return tree_builds_a_dataset(tree)

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
        if self._class_label_built(node, qualified):
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
        self._class_label_names(node)

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._class_label_copied(original_node)

    def visit_Comparison(self, node: cst.Comparison) -> None:
        self._picked_per_class(node)
