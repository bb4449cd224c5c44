"""ML104: mixup/cutmix written for class indices must mix multi-hot targets instead."""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules.semantics.flow import MULTI_LABEL_KINDS, LossCall, LossFlowProvider
from migrate_ml.rules._prefilter import has_loss_marker

TIMM_MIXUP = frozenset(
    {"timm.data.Mixup", "timm.data.mixup.Mixup", "timm.data.FastCollateMixup", "timm.data.mixup.FastCollateMixup"}
)
TORCHVISION_MIXUP = frozenset(
    {
        "torchvision.transforms.v2.MixUp",
        "torchvision.transforms.v2.CutMix",
        "torchvision.transforms.v2._augment.MixUp",
        "torchvision.transforms.v2._augment.CutMix",
    }
)
REFERENCE_MIXUP = frozenset({"RandomMixup", "RandomCutmix"})
"""torchvision's classification reference scripts (``references/classification/transforms.py``),
copied into many projects as a local ``transforms`` module: matched by class name."""
MIX_SUGGESTION = (
    "mix the float multi-hot targets with the same permutation as the images: "
    "lam * y + (1 - lam) * y.flip(0) (for cutmix, lam = kept area fraction), or turn mixup off"
)


class MixupOnClassIndicesRule(Rule):
    code = "ML104"
    name = "mixup-on-class-indices"
    summary = (
        "timm Mixup, torchvision MixUp/CutMix/RandomMixup/RandomCutmix, mixup_fn(x, y) and "
        "hand-written two-loss mixup over class indices are reported with the multi-hot mixing to use."
    )
    rationale = (
        "timm's `Mixup` (and `FastCollateMixup`) one-hot encodes class indices internally "
        "(`num_classes`, `label_smoothing`) before mixing; fed multi-hot targets it produces "
        "wrong targets without failing. torchvision's `transforms.v2.MixUp`/`CutMix` and the "
        "`RandomMixup`/`RandomCutmix` of its classification references one-hot class indices "
        "of shape [B] too, and reject multi-hot [B, C] labels. For multi-label training the float multi-hot target "
        "rows themselves are mixed with the images' permutation and weight: "
        "`lam * y + (1 - lam) * y.flip(0)`, then one BCE loss. Mixup written by hand as two "
        "losses weighted by lambda (`lam * criterion(out, y_a) + (1 - lam) * criterion(out, "
        "y_b)`) equals one BCE on the mixed targets once the loss is BCE (BCE is linear in the "
        "target), but it still needs the permuted labels to be multi-hot rows, and one loss on "
        "mixed targets is the clearer form. The two-loss form is reported while its loss is a "
        "softmax cross-entropy; once the losses are BCE on float targets (after the loss rules "
        "ran) it is multi-label mixup already and left alone. All are reported for a human; "
        "nothing is rewritten."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = (
        "mixup_fn = Mixup(mixup_alpha=0.8, num_classes=nb_classes)\n"
        "samples, targets = mixup_fn(samples, targets)\n"
    )
    example_after = (
        "lam = np.random.beta(0.8, 0.8)\n"
        "samples = lam * samples + (1 - lam) * samples.flip(0)\n"
        "targets = lam * targets + (1 - lam) * targets.flip(0)\n"
    )
    triggers = ("Mixup", "mixup", "MixUp", "CutMix", "Cutmix", "lam *", "* lam", "lambda_", "- lam")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider, LossFlowProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        # A timm Mixup built or applied is reason enough; the weighted-loss form needs a loss.
        return super().could_apply(source) and (
            any(marker in source for marker in _CONSTRUCTOR_MARKERS) or "mixup_fn(" in source or has_loss_marker(source)
        )

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A mixup applied outside a class body (not a mixup implementation), or two weighted losses."""
        return _mixup_call_outside_classes(tree) or any(
            isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
            and _weighted_loss_call(node.left) and _weighted_loss_call(node.right)
            for node in ast.walk(tree)
        )

    def visit_Call(self, node: cst.Call) -> None:
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        if qualified & TIMM_MIXUP:
            self.report(
                node,
                "timm Mixup one-hot encodes class indices; it cannot mix multi-hot targets",
                suggestion=MIX_SUGGESTION,
            )
        elif qualified & TORCHVISION_MIXUP or _callee_name(node.func) in REFERENCE_MIXUP:
            self.report(
                node,
                f"torchvision {_callee_name(node.func)} one-hot encodes class indices of shape [B]; "
                "it rejects multi-hot [B, C] targets",
                suggestion=MIX_SUGGESTION,
            )
        elif isinstance(node.func, cst.Name) and "mixup" in node.func.value.lower() and len(node.args) == 2:
            self.report(
                node,
                f"{node.func.value}(inputs, targets) mixes the targets the way a class-index mixup "
                "does (timm's Mixup one-hot encodes them first); multi-hot targets must be mixed as rows",
                suggestion=MIX_SUGGESTION,
            )

    def visit_Module(self, node: cst.Module) -> None:
        self._loss_calls = {call.call: call for call in self.get_metadata(LossFlowProvider, node).calls}

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Add):
            return
        left, right = self._weighted_loss(node.left), self._weighted_loss(node.right)
        if left is not None and right is not None and not left.kinds | right.kinds <= MULTI_LABEL_KINDS:
            self.report(
                node,
                "mixup written as two losses weighted by lambda assumes class-index targets",
                suggestion="compute one loss on the mixed multi-hot targets: "
                "criterion(outputs, lam * y_a.float() + (1 - lam) * y_b.float())",
            )

    def _weighted_loss(self, expression: cst.BaseExpression) -> LossCall | None:
        """The loss call of ``lam * loss_call`` or ``loss_call * (1 - lam)``."""
        if not (isinstance(expression, cst.BinaryOperation) and isinstance(expression.operator, cst.Multiply)):
            return None
        return next((self._loss_calls[s] for s in (expression.left, expression.right) if s in self._loss_calls), None)


_CONSTRUCTOR_MARKERS = ("Mixup(", "MixUp(", "CutMix(", "RandomMixup(", "RandomCutmix(")


def _callee_name(func: cst.BaseExpression) -> str:
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


def _mixup_call_outside_classes(tree: ast.AST) -> bool:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            continue
        if isinstance(node, ast.Call) and any(word in _called_name(node).lower() for word in ("mixup", "cutmix")):
            return True
        if _mixup_call_outside_classes(node):
            return True
    return False


def _weighted_loss_call(node: ast.AST) -> bool:
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return False
    return any(
        isinstance(side, ast.Call) and any(word in _called_name(side).lower() for word in ("loss", "criterion", "entropy"))
        for side in (node.left, node.right)
    )


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""
