"""ML104: mixers that one-hot encode class indices must mix multi-hot targets instead.

What a hand-written mixing function's body does with its labels, and how mixing functions are named,
is in ``_mixup_bodies``; the text and syntax-tree pre-checks are in ``_mixup_prechecks``. Library
mixups (timm, torchvision), a one-hot inside a mixer of rows and a 2-argument ``mixup(inputs,
targets)`` whose body is not seen are judged here. A mixer handing back ``(x, y_a, y_b, lam)`` for two
losses weighted by lambda is no finding: once the loss is BCE-with-logits the two losses are the BCE
of the mixed rows (BCE is linear in the target), and class-index labels are their source's finding.
"""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._mixup_bodies import _ReadMixers, _body_walk, _callee_name, _is_self, _mixes_rows, _walk
from migrate_ml.rules._mixup_prechecks import (
    LIBRARY_MIXERS,
    _CONSTRUCTOR_MARKERS,
    _called_name,
    _calls_a_mixup,
    _mixup_call_outside_classes,
    mixes_rows_with_their_permutation,
)
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.names import imported_names, qualified_name
from migrate_ml.rules._prefilter import text_facts, walk

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
        "timm Mixup, torchvision MixUp/CutMix/RandomMixup/RandomCutmix, a one-hot of class indices "
        "inside a mixup and mixup_fn(x, y) of an unseen body are reported with the multi-hot mixing to use."
    )
    rationale = (
        "timm's `Mixup` (and `FastCollateMixup`) one-hot encodes class indices internally "
        "(`num_classes`, `label_smoothing`) before mixing; fed multi-hot targets it produces "
        "wrong targets without failing. torchvision's `transforms.v2.MixUp`/`CutMix` and the "
        "`RandomMixup`/`RandomCutmix` of its classification references one-hot class indices "
        "of shape [B] too, and reject multi-hot [B, C] labels. For multi-label training the float multi-hot target "
        "rows themselves are mixed with the images' permutation and weight: "
        "`lam * y + (1 - lam) * y.flip(0)`, then one BCE loss. A mixup or cutmix (a function or class) "
        "that mixes label rows with their permutation but one-hot encodes class indices first "
        "(`F.one_hot(y, num_classes=C)` in a branch for [B] labels) is reported at the one-hot, and so is "
        "a 2-argument `mixup_fn(samples, targets)` whose body the file does not show (timm's Mixup is "
        "applied this way). A mixer that hands back the labels and their permutation "
        "(`return mixed_x, y_a, y_b, lam`) for two losses weighted by lambda "
        "(`lam * criterion(out, y_a) + (1 - lam) * criterion(out, y_b)`) is left alone, and so are "
        "those losses and a mixup criterion weighing them: once the loss is BCE-with-logits (the loss "
        "rules make it so) the two losses are the BCE of the mixed rows, because BCE is linear in the "
        "target. Labels that are still class indices there are the label source's finding (ML100, "
        "ML101, ML010, ML011). Nothing is rewritten."
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
    triggers = ("Mixup", "mixup", "MixUp", "CutMix", "Cutmix", "lam *", "* lam")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider, ParentNodeProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        # A library mixer built, a mixup called, or a one-hot beside a mixing weight.
        facts = text_facts(source)
        return super().could_apply(source) and (
            facts.has_any(_CONSTRUCTOR_MARKERS)
            or _calls_a_mixup(facts)
            or (facts.has("one_hot(") and facts.has_any(("lam *", "* lam")))
        )

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A library mixup built anywhere, a mixup applied outside a class body (not a mixup
        implementation), or a one-hot in a file that mixes rows with their permutation."""
        one_hot = False
        library_mixers: list[ast.Call] = []
        for node in walk(tree):
            if isinstance(node, ast.Call) and _called_name(node) in LIBRARY_MIXERS:
                library_mixers.append(node)
            one_hot = one_hot or (isinstance(node, ast.Call) and _called_name(node) == "one_hot")
        if library_mixers:  # a class of the file's own named Mixup is no library mixer
            imports = imported_names(tree.body)
            if any(qualified_name(call.func, imports).startswith(("timm.", "torchvision.")) for call in library_mixers):
                return True
        # A one-hot is only reported inside a function or class that mixes rows with their permutation.
        return _mixup_call_outside_classes(tree) or (one_hot and mixes_rows_with_their_permutation(tree))

    def visit_Call(self, node: cst.Call) -> None:
        # ``CutMix(num_classes=C)(x, y)``: the applied call inherits the built one's name; the mixer is reported once, where built
        built_here = not isinstance(node.func, cst.Call)
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())} if built_here else set()
        if node in self._mixed_one_hots:
            if not self._float_rows:
                self.report(
                    node,
                    "this mixup or cutmix one-hot encodes class indices (one label per image) before mixing them "
                    "as rows",
                    suggestion="with multi-hot [B, C] labels mix the float label rows themselves and drop the "
                    "class-index branch (and a class count taken from the labels' maximum)",
                )
        elif qualified & TIMM_MIXUP:
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
        elif (
            (isinstance(node.func, cst.Name) or (isinstance(node.func, cst.Attribute) and _is_self(node.func.value)))
            and "mixup" in _callee_name(node.func).lower()
            and len(node.args) == 2
            and _callee_name(node.func) not in self._seen_mixers
            and not self._unpacked_into_three(node)
        ):
            self.report(
                node,
                f"{_callee_name(node.func)}(inputs, targets) mixes the targets the way a class-index mixup "
                "does (timm's Mixup one-hot encodes them first); multi-hot targets must be mixed as rows",
                suggestion=MIX_SUGGESTION,
            )

    def visit_Module(self, node: cst.Module) -> None:
        readers = _ReadMixers()
        node.visit(readers)
        self._seen_mixers = readers.read | readers.methods
        """Mixing functions whose labels are followed and the file's methods: their bodies are seen."""
        self._mixed_one_hots = {
            call for holder in _walk(node) if isinstance(holder, (cst.FunctionDef, cst.ClassDef)) and _mixes_rows(holder)
            for call in _body_walk(holder) if isinstance(call, cst.Call) and _callee_name(call.func) == "one_hot"
        }
        facts = current_facts()
        self._float_rows = facts is not None and facts.float_row_run

    def _unpacked_into_three(self, call: cst.Call) -> bool:
        """``x, y_a, y_b, lam = mix(x, y)``: a mixer handing back the labels' pair for two losses,
        which are the BCE of the mixed rows once the loss is BCE (not the one-hot mixing reported)."""
        statement = self.get_metadata(ParentNodeProvider, call, None)
        return (
            isinstance(statement, cst.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0].target, (cst.Tuple, cst.List))
            and len(statement.targets[0].target.elements) >= 3
        )
