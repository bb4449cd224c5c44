"""ML101's pre-checks, on the file's text and on CPython's ``ast`` tree: a class-index dataset named,
built, aliased, subclassed, chosen or picked by name, a ``__getitem__`` building a tensor, a ``ClassLabel``
column, a loader factory, Keras's ``load_data()``, a project dataset fed to a ``DataLoader`` of a file that
trains one class per image, and a loop picking examples per class.
"""

from __future__ import annotations

import ast

from migrate_ml.rules._datasets_getitem import _BUILDER_NAMES, _GETITEM_TEXT
from migrate_ml.rules._datasets_labels_unread import labels_discarded
from migrate_ml.rules._datasets_library import (
    _CHOSEN_BY_NAME,
    _DATASET_NAMES,
    _KERAS_DATASETS,
    _REGISTRY_CALL,
    _builds_or_aliases_a_dataset,
    _calls_a_named_factory,
    _calls_a_registry,
    _chosen_by_name,
    _chosen_classes,
    _imports_timm,
    _last_name,
    _names_a_dataset_factory,
    _registry_key,
    _run_factories,
)
from migrate_ml.rules._datasets_outside_run import _NOT_THE_PROJECT, _ONE_CLASS_WORDS
from migrate_ml.rules._datasets_per_class import _PER_CLASS_LOOP, _ast_per_class_loop
from migrate_ml.rules._prefilter import nodes_of, text_facts, walk
from migrate_ml.rules.semantics.tables import named_class_index_dataset


TRIGGER_WORDS = (
    "ImageDataset", "__getitem__", ".features[", "ClassLabel", "range(", _CHOSEN_BY_NAME, "registry", "REGISTRY",
    "dataset(", "data(", "loader(", "load_data",
)
"""What the pre-filter looks for besides the dataset names (the regular expressions below sharpen it)."""


def text_may_name_a_dataset(source: str) -> bool:
    """Whether the text may build one of ML101's datasets, asked of ``text_facts`` (a regular expression
    only after the words it needs)."""
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


def tree_builds_a_dataset(tree: ast.Module) -> bool:
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
