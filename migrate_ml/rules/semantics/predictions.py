"""Shared facts about classifier outputs and the predictions and accuracies computed from them.

Rules ML020 (predictions), ML021 (accuracy), ML022 (torchmetrics) and ML024 (softmax) must
agree on one question before they touch anything: *is this tensor the classifier's output?*
``argmax`` and ``softmax`` are everywhere in model code (attention, patch selection, a
distillation teacher's target), so a rewrite is only proven when the scores are

* a call of the model object: ``model(x)``, ``net(x)``, ``self.model(x)``, ``self(x)``
  (Lightning), optionally followed by ``.logits``, ``.data``, ``.detach()``, ``.to(...)``…;
* a name whose every binding in its scope is such a call; or
* the logits argument of a loss call found by :class:`LossFlowProvider`.

``prediction_provider.PredictionFlowProvider`` finds, once per file, the softmax calls over such
scores, the arg-max predictions taken from them and the accuracy comparisons of those
predictions with the labels. This module holds the name tests of that proof
(:func:`is_model_callee`, :func:`strip_transparent`) and what the provider finds
(:class:`PredictionFlow` and its parts). :class:`PredictionFlow` also builds the node edits
that rewrite them, once, so that two rules whose fixes share an edit hand the engine the
*same* ``NodeEdit`` object (applied once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import libcst as cst
from libcst.metadata import QualifiedNameProvider, QualifiedNameSource

from migrate_ml.rules._base import Fix, ImportEdit, NodeEdit
from migrate_ml.rules.semantics.rewrites import above_threshold, exact_match_rewrite, torch_sigmoid

_MODEL_NAME = re.compile(r"^(?:[a-z0-9]+_)?(?:model|net|network|classifier|clf|vit|cnn|convnet|resnet|student)(?:_[a-z0-9]+)?$")
_NOT_A_MODEL = re.compile(
    r"^(?:create|get|build|load|save|init|make|export|freeze|train|evaluate|eval|test|run|prepare|wrap|unwrap|teacher)_|teacher"
    r"|(?:^|_)(?:seg|segment\w*|unet|deeplab\w*)(?:_|$|\d)"  # a segmentation model: its arg-max over dim 1 is a mask
)
_TRANSPARENT_METHODS = frozenset({"detach", "cpu", "cuda", "to", "float", "double", "clone", "contiguous", "squeeze"})
_TRANSPARENT_ATTRIBUTES = frozenset({"data", "logits"})
LITERALS = (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString)
"""Literal operands: a prediction compared with one is compared with a class index (``pred == 3``), not the labels."""


def is_model_callee(func: cst.BaseExpression) -> bool:
    """``model``, ``net``, ``model_ft``, ``self.model``, ``self`` (a Lightning module calling itself)."""
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
        func = func.attr
    if not isinstance(func, cst.Name):
        return False
    name = func.value
    if name == "self":
        return True
    return bool(_MODEL_NAME.match(name)) and not _NOT_A_MODEL.search(name)


def strip_transparent(expression: cst.BaseExpression) -> cst.BaseExpression:
    """Drop ``.data``, ``.logits``, ``.detach()``, ``.to(device)``… which keep the scores the scores."""
    while True:
        if isinstance(expression, cst.Attribute) and expression.attr.value in _TRANSPARENT_ATTRIBUTES:
            expression = expression.value
        elif (
            isinstance(expression, cst.Call)
            and isinstance(expression.func, cst.Attribute)
            and expression.func.attr.value in _TRANSPARENT_METHODS
            and not (isinstance(expression.func.value, cst.Name) and expression.func.value.value == "torch")
        ):
            expression = expression.func.value
        elif (
            isinstance(expression, cst.Call)
            and isinstance(expression.func, cst.Attribute)
            and expression.func.attr.value == "squeeze"
            and isinstance(expression.func.value, cst.Name)
            and expression.func.value.value == "torch"
            and expression.args
        ):
            expression = expression.args[0].value  # predict scripts: torch.squeeze(model(img))
        else:
            return expression


def qualified_names(owner, node: cst.CSTNode) -> set[str]:
    """What ``node`` names after the file's imports; ``owner`` depends on ``QualifiedNameProvider``."""
    return {q.name for q in owner.get_metadata(QualifiedNameProvider, node, set())}


def is_imported(owner, node: cst.CSTNode) -> bool:
    """True for a module or function brought in by an import (``np``, ``F``), not a local tensor."""
    if not isinstance(node, (cst.Name, cst.Attribute)):
        return False  # a call's result is a value even when the callee was imported
    return any(q.source is QualifiedNameSource.IMPORT for q in owner.get_metadata(QualifiedNameProvider, node, set()))


@dataclass(eq=False)
class Flatten:
    """A flatten (see :func:`is_flatten`) the prediction goes through, which its fix drops."""

    call: cst.Call
    standalone: bool
    """It is a whole assigned value, argument or returned value: no parentheses needed."""
    self_assignment: cst.SimpleStatementLine | None = None
    """``pred = pred.view(-1)`` alone on its line, with no comment, in a block of several
    statements: without the flatten it would read ``pred = pred``, so the line goes."""


@dataclass(eq=False)
class Softmax:
    """``F.softmax(z, dim=1)``, ``z.softmax(-1)``, ``nn.Softmax(dim=1)(z)`` over classifier scores."""

    call: cst.Call
    scores: cst.BaseExpression
    consumed: bool = False
    """True when a prediction takes the arg-max of this softmax directly (the prediction rewrite covers it)."""


@dataclass(eq=False)
class Comparison:
    """``p == y``, ``p.eq(y)``, ``torch.eq(p, y)``: the labels side is addressed by position."""

    node: cst.CSTNode
    label_position: str
    """``left``/``right`` of a ``==``; ``arg0``/``arg1`` or ``receiver`` of an ``eq`` call."""
    numpy: bool = False
    """The prediction reaches the comparison as a NumPy array (``.numpy()``, ``np.concatenate``)."""
    negated: bool = False
    """``p != y`` / ``p.ne(y)``: an error (miss) per sample, the complement of exact match."""
    denominators: list[cst.Call] = field(default_factory=list)
    """``y.numel()``/``y.nelement()``/``torch.numel(y)`` of the labels ``y`` compared here: one
    count per sample of class indices, B x C of multi-hot labels; they become ``y.size(0)``."""


@dataclass(eq=False)
class Prediction:
    """An arg-max prediction: the expression (or ``_, p = ...`` statement) to replace."""

    node: cst.CSTNode
    scores: cst.BaseExpression
    """What the arg-max is taken over, as written."""
    proven: bool = False
    decision_input: cst.BaseExpression | None = None
    """What goes in front of ``> THRESHOLD``: ``torch.sigmoid(z)``, or a name already holding probabilities."""
    unpacking: bool = False
    binding: cst.Name | None = None
    parenthesize: bool = True
    softmaxes: list[Softmax] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    blocked: str = ""
    """Why a proven prediction still cannot be rewritten (empty when it can)."""
    blocked_at: cst.CSTNode | None = None
    """The use that blocks it, when it is not the prediction itself (``[names[p] for p in rows]``
    after the batches were appended and joined): the finding names its line."""
    escapes: list[cst.Call] = field(default_factory=list)
    """Calls the prediction is passed to that nothing follows (a helper defined elsewhere)."""
    returned_under: list[tuple[str, cst.Subscript]] = field(default_factory=list)
    """Keys of a returned dict the prediction is a value of, each with where another function of
    the file reads that key (Lightning's ``return {"val_preds": preds}`` read back in
    ``validation_epoch_end`` as ``x["val_preds"]``): that reader gets [B, C] rows after the fix."""
    flattens: list[Flatten] = field(default_factory=list)
    """``.flatten()``/``.view(-1)``/``.reshape(-1)``/``.ravel()`` between the prediction and a
    comparison or a name it is carried to: a no-op on class indices [B], a mix of every
    sample's labels on [B, C] rows, so the fix drops them."""

    def drop_flattens(self, flattens: list[Flatten]) -> None:
        self.flattens.extend(f for f in flattens if all(f.call is not known.call for known in self.flattens))


@dataclass
class PredictionFlow:
    predictions: list[Prediction] = field(default_factory=list)
    softmaxes: list[Softmax] = field(default_factory=list)
    torch_name: str = "torch"
    torch_imported: bool = True
    is_classifier_scores: Callable[[cst.BaseExpression], bool] = lambda expression: False
    """The proof described in the module docstring, answered for the first argument of any call
    with two or more arguments (metric updates, ``accuracy(output, target)``…)."""
    collapsed_targets: list[cst.CSTNode] = field(default_factory=list)
    """Arg-max over the targets (``target.argmax(1)``) that predictions are compared with."""
    loss_calls: frozenset[int] = frozenset()
    """The ids of the file's loss calls: a prediction given to one is where the logits belong."""
    _edits: dict = field(default_factory=dict)
    _fixes: dict = field(default_factory=dict)

    @property
    def torch_imports(self) -> tuple[ImportEdit, ...]:
        return () if self.torch_imported else (ImportEdit("torch"),)

    def sigmoid(self, scores: cst.BaseExpression) -> cst.Call:
        return torch_sigmoid(self.torch_name, scores)

    def softmax_edit(self, softmax: Softmax) -> NodeEdit:
        key = ("softmax", id(softmax))
        if key not in self._edits:
            replacement = self.sigmoid(softmax.scores).with_changes(lpar=softmax.call.lpar, rpar=softmax.call.rpar)
            self._edits[key] = NodeEdit(softmax.call, lambda updated: replacement)
        return self._edits[key]

    def comparison_edit(self, comparison: Comparison) -> NodeEdit:
        """One edit per comparison node: predictions that share a name (a module-level
        ``predicted`` bound in two loops) share the comparisons of that name too."""
        key = ("comparison", id(comparison.node))
        if key not in self._edits:
            self._edits[key] = NodeEdit(
                comparison.node, exact_match_rewrite(comparison.label_position, comparison.numpy, comparison.negated)
            )
        return self._edits[key]

    def flatten_edit(self, flatten: Flatten) -> NodeEdit:
        """``p.view(-1)`` -> ``p``: the rows stay rows. The decision's own parentheses go where
        the flatten stood alone (``pred = p.view(-1)``, an argument)."""
        key = ("flatten", id(flatten.call))
        if key not in self._edits and flatten.self_assignment is not None:
            self._edits[key] = NodeEdit(flatten.self_assignment, lambda updated: cst.RemoveFromParent())
        if key not in self._edits:

            def apply(updated: cst.CSTNode) -> cst.CSTNode:
                assert isinstance(updated, cst.Call) and isinstance(updated.func, cst.Attribute)
                receiver = updated.func.value
                if flatten.standalone and isinstance(receiver, cst.Comparison) and not updated.lpar:
                    return receiver.with_changes(lpar=[], rpar=[])
                if updated.lpar and not getattr(receiver, "lpar", None):
                    return receiver.with_changes(lpar=updated.lpar, rpar=updated.rpar)
                return receiver

            self._edits[key] = NodeEdit(flatten.call, apply)
        return self._edits[key]

    def denominator_edit(self, call: cst.Call) -> NodeEdit:
        """``y.numel()`` -> ``y.size(0)``: the same number for class indices [B], and still the
        number of samples for multi-hot [B, C], which is what an exact-match count is divided by."""
        key = ("denominator", id(call))
        if key not in self._edits:

            def apply(updated: cst.CSTNode) -> cst.CSTNode:
                assert isinstance(updated, cst.Call) and isinstance(updated.func, cst.Attribute)
                labels = updated.args[0].value if updated.args else updated.func.value
                return cst.Call(
                    func=cst.Attribute(value=labels, attr=cst.Name("size")),
                    args=[cst.Arg(cst.Integer("0"))],
                    lpar=updated.lpar,
                    rpar=updated.rpar,
                )

            self._edits[key] = NodeEdit(call, apply)
        return self._edits[key]

    def fix_for(self, prediction: Prediction, threshold_name: str) -> Fix:
        """One fix for the prediction, the softmaxes it relies on and its accuracy comparisons."""
        key = (id(prediction), threshold_name)
        if key not in self._fixes:
            edits = [NodeEdit(prediction.node, self._prediction_rewrite(prediction, threshold_name))]
            edits.extend(self.softmax_edit(softmax) for softmax in prediction.softmaxes)
            edits.extend(self.flatten_edit(flatten) for flatten in prediction.flattens)
            edits.extend(self.comparison_edit(comparison) for comparison in prediction.comparisons)
            edits.extend(
                self.denominator_edit(call) for comparison in prediction.comparisons for call in comparison.denominators
            )
            self._fixes[key] = Fix(edits=tuple(edits), add_imports=self.torch_imports, needs_threshold=True)
        return self._fixes[key]

    def _prediction_rewrite(self, prediction: Prediction, threshold_name: str):
        assert prediction.decision_input is not None
        decision = above_threshold(prediction.decision_input, threshold_name)

        def apply(updated: cst.CSTNode) -> cst.CSTNode:
            if prediction.unpacking:
                assert isinstance(updated, cst.Assign) and prediction.binding is not None
                return updated.with_changes(targets=[cst.AssignTarget(target=prediction.binding)], value=decision)
            if prediction.parenthesize:
                return decision.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            return decision

        return apply
