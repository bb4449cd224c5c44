"""ML101's datasets from modules outside the run: a dataset class imported from a module of the project
that the run does not include, built for a ``DataLoader`` of a file that computes a loss and trains or
predicts one class per image.
"""

from __future__ import annotations

import sys

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._datasets_library import _LIBRARIES
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.sinks.losses import LOSS_CALLEE


_NOT_THE_PROJECT = frozenset(
    {*_LIBRARIES, *sys.stdlib_module_names, "torchaudio", "torchtext", "monai", "hugsvision", "transformers",
     "albumentations", "PIL", "cv2", "numpy", "pandas", "scipy", "skimage", "tfds", "webdataset", "ffcv", "dali", "nvidia",
     "mmcv", "mmcls", "mmpretrain", "detectron2", "kornia", "wilds", "learn2learn", "torchmeta", "continuum"}
)
"""Top-level packages that are libraries, not the project's own modules: an absolute import from any
other package names a module of the project (``from dataset.dataset_ESC50 import ESC50``)."""
_ONE_CLASS_WORDS = frozenset({"CrossEntropyLoss", "cross_entropy", "NLLLoss", "nll_loss", "softmax", "argmax"})
"""What a file that trains or predicts one class per image writes somewhere."""


class OutsideRunDatasets:
    """Mixin for ML101: a dataset class whose module this run cannot read, loaded by a file that trains on its labels."""

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
