"""ML024: softmax over the classifier's logits becomes torch.sigmoid."""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import ParentNodeProvider

from migrate_ml.rules._base import Applicability, Fix, Rule, enclosing
from migrate_ml.rules._exprs import cst_nodes_of
from migrate_ml.rules.semantics.flow import LOSS_CLASSES
from migrate_ml.rules.semantics.prediction_provider import PredictionFlowProvider
from migrate_ml.rules.semantics.predictions import PredictionFlow
from migrate_ml.rules._prefilter import has_training_marker
from migrate_ml.rules.semantics.tasks import ReadsTheTrainedHead


class SoftmaxToSigmoidRule(ReadsTheTrainedHead, Rule):
    code = "ML024"
    name = "softmax-to-sigmoid"
    summary = "softmax over the classifier's logits becomes torch.sigmoid(z): one probability per label."
    rationale = (
        "Softmax normalises the scores so that they sum to one across classes: raising one label's "
        "probability lowers all the others, which is right when exactly one label is true and wrong "
        "when several can be. A multi-label model trained with BCEWithLogitsLoss gives each label "
        "its own probability, `torch.sigmoid(z)`, and those are what thresholds, mAP and "
        "calibration expect. `F.softmax(z, dim=1)`, `torch.softmax(z, -1)`, `z.softmax(-1)` and "
        "`nn.Softmax(dim=1)(z)` are rewritten only when `z` is proven to be the classifier's "
        "output (bound from `model(x)`, `net(x)`, `self.model(x)`, `model(x).logits`, or the "
        "logits of a loss call). Softmax inside a model (attention weights, `nn.Softmax` in "
        "`__init__`/`forward`) normalises something else and is never touched; a softmax taken "
        "directly under an arg-max is replaced by that prediction's rewrite (ML020). A script's or "
        "notebook's top-level softmax that runs after weights are loaded and before the file goes on "
        "to train (a sanity check of the pretrained ImageNet head before fine-tuning) reads a head "
        "trained with softmax: it is reported, not rewritten; a file that never trains such a model "
        "(ML100 `pretrained-untrained`) is left alone."
    )
    applicability = Applicability.SAFE
    example_before = (
        "output = model(images)\n"
        "probs = F.softmax(output, dim=1)\n"
    )
    example_after = (
        "output = model(images)\n"
        "probs = torch.sigmoid(output)\n"
    )
    triggers = ("softmax", "Softmax")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, PredictionFlowProvider, ParentNodeProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return super().could_apply(source) and has_training_marker(source)

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """Some softmax outside ``forward*``/``__init__``: inside them it is model code (attention);
        none in a file whose model is a library's pretrained single-label head it never trains."""
        return super().could_apply_tree(tree) and any(
            _is_softmax_call(node) and not _in_model_code(node, parents)
            for node, parents in _walk_with_functions(tree)
        )

    def visit_Module(self, node: cst.Module) -> None:
        flow: PredictionFlow = self.get_metadata(PredictionFlowProvider, node)
        for softmax in flow.softmaxes:
            if softmax.consumed:
                continue
            if self._before_training_on_loaded_weights(node, softmax.call):
                self.report(
                    softmax.call,
                    "softmax over a model that still holds the weights it was loaded with (nothing in this file "
                    "has trained it yet): its head was trained with softmax, so this stays a softmax",
                    suggestion="leave it, or drop this check of the pretrained weights; once the model is trained "
                    "with BCEWithLogitsLoss, read its outputs with torch.sigmoid",
                )
                continue
            self.report(
                softmax.call,
                "softmax makes the labels compete for one unit of probability; each label needs its own sigmoid",
                fix=Fix(edits=(flow.softmax_edit(softmax),), add_imports=flow.torch_imports),
            )
            for metric in self._injected_metric_feeds(softmax.call):
                # Reported on the rewritten softmax (a line the fix edits), so the note survives
                # the rewrite: the metric's call itself does not look single-label.
                self.report(
                    softmax.call,
                    f"the probabilities are passed to {metric}(), a metric object this file is handed by its "
                    "caller, so migrate-ml cannot see what it computes: after the rewrite it receives sigmoid "
                    "probabilities [B, C] and multi-hot labels",
                    suggestion=(
                        "where it is built, make it a multilabel metric: torchmetrics' task=\"multilabel\", "
                        "num_labels=C (MultilabelAUROC, MultilabelF1Score, ExactMatch for accuracy)"
                    ),
                )


    def _injected_metric_feeds(self, call: cst.Call) -> list[str]:
        """``self.metric.update(pred_proba, targets)`` where ``pred_proba = <this softmax>`` and
        ``self.metric`` is assigned a parameter of ``__init__`` (``Trainer(..., metric)``): the
        metric objects, handed in from outside the file, that this softmax's probabilities feed."""
        assign = self.get_metadata(ParentNodeProvider, call, None)
        if not (isinstance(assign, cst.Assign) and len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name)):
            return []
        name = assign.targets[0].target.value
        function = enclosing(self, assign, cst.FunctionDef)
        owner = enclosing(self, function, cst.ClassDef) if function is not None else None
        if owner is None:
            return []
        injected = set()
        for init in cst_nodes_of(owner.body, cst.FunctionDef):
            if init.name.value != "__init__":
                continue
            parameters = {p.name.value for p in init.params.params}
            for statement in cst_nodes_of(init.body, cst.Assign):
                for target in statement.targets:
                    bound = target.target
                    if (
                        isinstance(bound, cst.Attribute) and isinstance(bound.value, cst.Name) and bound.value.value == "self"
                        and isinstance(statement.value, cst.Name) and statement.value.value in parameters
                    ):
                        injected.add(bound.attr.value)
        found: list[str] = []
        for feed in cst_nodes_of(function.body, cst.Call):
            func = feed.func
            if not (isinstance(func, cst.Attribute) and func.attr.value in ("update", "forward")):
                continue
            metric = func.value
            if not (
                isinstance(metric, cst.Attribute) and isinstance(metric.value, cst.Name) and metric.value.value == "self"
                and metric.attr.value in injected
            ):
                continue
            if feed.args and isinstance(feed.args[0].value, cst.Name) and feed.args[0].value.value == name:
                found.append(f"self.{metric.attr.value}.{func.attr.value}")
        return list(dict.fromkeys(found))

    def _before_training_on_loaded_weights(self, module: cst.Module, call: cst.Call) -> bool:
        """A script's (or notebook's) top-level softmax that runs after weights are loaded and
        before the file goes on to train: the outputs are the pretrained head's (ImageNet's 1000
        softmax classes), not the migrated model's. A prediction script that trains nothing loads
        the weights its training run wrote: there the softmax is the migrated model's."""
        statement: cst.CSTNode = call
        while (parent := self.get_metadata(ParentNodeProvider, statement, None)) is not module:
            if parent is None or isinstance(parent, (cst.FunctionDef, cst.ClassDef)):
                return False  # a function may run after training
            statement = parent
        position = module.body.index(statement)
        before = [module.code_for_node(earlier) for earlier in module.body[:position]]
        if any(_TRAINS.search(code) for code in before) or not any(_LOADS_WEIGHTS.search(code) for code in before):
            return False
        return any(_TRAINS.search(module.code_for_node(later)) for later in module.body[position + 1:])


_TRAINS = re.compile(
    r"\.backward\(|\b(?:%s)\(" % "|".join(sorted({re.escape(name.rpartition(".")[2]) for name in LOSS_CLASSES}))
)
"""A statement that trains a model (or builds the criterion that will)."""
_LOADS_WEIGHTS = re.compile(r"load_state_dict\(|pretrained\s*=\s*True|from_pretrained\(|load_state_dict_from_url\(|hub\.load\(")
"""A statement that gives a model weights trained elsewhere."""


def _walk_with_functions(tree: ast.AST, functions: tuple[str, ...] = ()):
    """Every node with the names of the functions enclosing it."""
    for child in ast.iter_child_nodes(tree):
        yield child, functions
        inner = functions + (child.name,) if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else functions
        yield from _walk_with_functions(child, inner)


def _is_softmax_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in ("softmax", "Softmax")


def _in_model_code(node: ast.AST, functions: tuple[str, ...]) -> bool:
    return any(name.startswith("forward") or name == "__init__" for name in functions)
