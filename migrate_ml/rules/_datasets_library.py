"""ML101's library datasets: the class-index dataset names as code writes them (built, aliased,
subclassed, chosen through a variable, picked by name from a registry, loaded by a factory named after
one, Keras's ``load_data()``), and the classes of a file that resolve to one.
"""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._prefilter import TextFacts, walk
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.tables import CLASS_INDEX_DATASETS, named_class_index_dataset


_REGISTRY_CALLEE = r"\w*(?:registry|dataset|datamodule|loader|data)\w*"
_REGISTRY_CALL = re.compile(rf"""\b({_REGISTRY_CALLEE})\s*\([^()'"]*?['"]([\w-]+)['"]""", re.IGNORECASE)
"""``DATASET_REGISTRY("cifar10")``, ``get_dataset("imagenet")``, ``load_dataset("mnist")``: a dataset
picked by its name from a registry or factory (the name is judged by ``named_class_index_dataset``)."""
_CHOSEN_BY_NAME = "datasets.__dict__["
"""``datasets.__dict__[args.dataset]``: a torchvision dataset class picked by a name the run is given."""
_DATASET_NAMES = frozenset(name.rsplit(".", 1)[1] for name in CLASS_INDEX_DATASETS)
_BUILT_OR_ALIASED = r"\b(?:{names})(?:\(| as |\)\s*:|[ \t]*$|[ \t]+if\b)"
"""``CIFAR10(``, ``ImageFolder as Folder``, ``class Mine(ImageFolder):`` or ``cls = CIFAR10`` (a class
chosen, called later), for the dataset names that occur as words."""
_NAMED_DATASET = re.compile(r"cifar_?100|cifar_?10|fashion_?mnist|mnist|svhn|stl_?10|food_?101|imagenet", re.IGNORECASE)
_DATA_WORD = re.compile(r"loader|dataset|datamodule|(?:^|_)data(?:$|_)", re.IGNORECASE)
_DATASET_WORDS = ("cifar", "mnist", "svhn", "stl", "food", "imagenet")
"""What every name ``_NAMED_DATASET`` accepts holds, lower-cased: a substring test of the file's
words before the called names are tested one by one."""
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
_NAME_KEYWORDS = frozenset({"name", "dataset", "dataset_name"})


class LibraryDatasets:
    """Mixin for ML101: which class-index dataset a class of the file names, and where a factory comes from."""

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


def _imports_timm(tree: ast.Module) -> bool:
    return any(
        (isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "timm" for alias in node.names))
        or (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "timm")
        for node in walk(tree)
    )


def _last_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""
