"""ML104: mixup/cutmix written for class indices must mix multi-hot targets instead.

The rule is split by idiom: what a hand-written mixing function's body does with its labels, and how
mixing functions and losses are named, is in ``_mixup_bodies``; the text and syntax-tree pre-checks are
in ``_mixup_prechecks``. Library mixups (timm, torchvision), pairs of weighted losses and the pairs a
mixup hands back are judged here.
"""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._exprs import positional_arguments
from migrate_ml.rules._mixup_bodies import (
    _PairMixers,
    _added_terms,
    _body_walk,
    _callee_name,
    _functions,
    _is_self,
    _loss_name,
    _mix_name,
    _mixes_rows,
    _named_loss_call,
    _same_loss_other_targets,
    _walk,
    _weighs_a_criterion_parameter,
)
from migrate_ml.rules._mixup_prechecks import (
    LIBRARY_MIXERS,
    _CONSTRUCTOR_MARKERS,
    _MIX_TEXT,
    _called_name,
    _calls_a_mix_name,
    _mixup_call_outside_classes,
    mixes_rows_with_their_permutation,
    _permutes_second_argument,
    _unpacked_mix_call,
    _weighted_loss_call,
    _weighted_name_call,
)
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.flow import MULTI_LABEL_KINDS, LossCall, LossFlowProvider
from migrate_ml.rules.semantics.names import imported_names, qualified_name
from migrate_ml.rules._prefilter import has_loss_marker, text_facts, walk

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
UNSEEN_MIX_SUGGESTION = (
    "check what it returns: multi-hot labels are mixed once as rows, lam * y + (1 - lam) * y[index], "
    "and fed to one BCE loss; any arg-max of the mixed rows it also returns is no label of a "
    "multi-label image"
)
PAIR_SUGGESTION = (
    "with multi-hot labels mix the label rows once, as the images are mixed: "
    "y = lam * y.float() + (1 - lam) * y[index].float() (lam per sample for SnapMix), return "
    "(mixed_x, y) and make one BCE call criterion(out, y)"
)
MIX_SUGGESTION = (
    "mix the float multi-hot targets with the same permutation as the images: "
    "lam * y + (1 - lam) * y.flip(0) (for cutmix, lam = kept area fraction), or turn mixup off"
)


class MixupOnClassIndicesRule(Rule):
    code = "ML104"
    name = "mixup-on-class-indices"
    summary = (
        "timm Mixup, torchvision MixUp/CutMix/RandomMixup/RandomCutmix, mixup_fn(x, y), hand-written "
        "mixup/cutmix/fmix/snapmix functions returning (y_a, y_b, lam) and two-loss mixup over class "
        "indices are reported with the multi-hot mixing to use."
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
        "ran) it is multi-label mixup already and left alone. A criterion the file does not build "
        "(`self.loss`, a criterion passed in) counts when one callee named as a loss is called on "
        "the same outputs with two targets (`criterion(out, labels[0]) * labels[2] + "
        "criterion(out, labels[1]) * (1 - labels[2])`, or losses stored first, as SnapMix's "
        "`loss_a * lam_a + loss_b * lam_b`). A function named as a mixup, cutmix, fmix or snapmix "
        "that returns its labels' permutation unmixed (`y_a, y_b = y, y[index]; return mixed_x, "
        "y_a, y_b, lam`, or `(target, target[indices], lam)`) is reported with its calls; one that "
        "mixes the label rows (`lam * y + (1 - lam) * y[index]`) is left alone. A mixing method of the "
        "class that calls it (`self.cutmix(images, targets)`) is read the same way: one that mixes the "
        "label rows, or hands back `(targets, targets[perm], lam)` for two losses weighted by lambda that "
        "the loss rules make BCE, is left alone, and so are two losses of a criterion the file is handed "
        "(`self.criterion`, migrated where it is built) weighed on that pair; one whose labels cannot be followed is reported as a "
        "method of the file. All are reported "
        "for a human, and so are calls of a mixup criterion helper (`mixup_criterion(criterion, "
        "out, y_a, y_b, lam)`), known by its name, by its body (a function or method of the file, "
        "whatever it is called, weighing a criterion it is given on the same outputs and two targets) or "
        "by what it is given (both labels of a pair that a mixing function hands back in the same scope: "
        "`Aug.mixed_criterion(self.criterion, outputs, targets_a, targets_b, lam)`). A mixup or cutmix "
        "(a function or class) that mixes label rows with their permutation but one-hot encodes class "
        "indices first (`F.one_hot(y, num_classes=C)` in a branch for [B] labels) is reported at the "
        "one-hot; nothing is rewritten."
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
    triggers = ("Mixup", "mixup", "MixUp", "CutMix", "Cutmix", "cutmix", "fmix", "snapmix", "lam *", "* lam", "lambda_", "- lam")
    METADATA_DEPENDENCIES = (
        *Rule.METADATA_DEPENDENCIES, QualifiedNameProvider, LossFlowProvider, ScopeProvider, ParentNodeProvider
    )

    @classmethod
    def could_apply(cls, source: str) -> bool:
        # A timm Mixup built or applied, or a mixing function named as one, is reason enough; the
        # weighted-loss form needs a loss.
        facts = text_facts(source)
        return super().could_apply(source) and (
            facts.has_any(_CONSTRUCTOR_MARKERS)
            or facts.has("mixup_fn(")
            or has_loss_marker(source)
            or (facts.has("one_hot(") and facts.has_any(("lam *", "* lam")))
            or (_calls_a_mix_name(facts) and _MIX_TEXT.search(source) is not None)
        )

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A library mixup built anywhere, a mixup applied outside a class body (not a mixup implementation), one unpacked into
        three or more names anywhere (a trainer's method applies it: ``x, y_a, y_b, lam =
        Aug.mixup_data(x, y, alpha)``), two weighted losses, or a mixing function that hands back
        its labels' permutation."""
        one_hot = False
        library_mixers: list[ast.Call] = []
        for node in walk(tree):
            if (
                (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
                 and _weighted_loss_call(node.left) and _weighted_loss_call(node.right))
                or (isinstance(node, ast.FunctionDef) and _mix_name(node.name) and _permutes_second_argument(node))
                or _unpacked_mix_call(node)
                or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
                    and _weighted_name_call(node.left) and _weighted_name_call(node.right))
            ):
                return True
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
        elif _callee_name(node.func) in self._pair_mixers or (
            _mix_name(_callee_name(node.func)) and len(positional_arguments(node)) >= 2 and self._unpacked_into_pair(node)
        ):
            name = _callee_name(node.func)
            if self._float_rows:
                return  # a pair of float label rows for two BCE losses: one BCE on the mixed rows
            method = self._read_methods.get(name) if isinstance(node.func, cst.Attribute) and _is_self(node.func.value) else None
            if method == "rows":
                return  # the class's own method mixes the label rows: multi-label mixup already
            self._note_pair(node)
            if method == "pair":
                # the class's own method hands back (y, y[index], lam) for two losses weighted by
                # lambda, which stay right once they are BCE: lam * BCE(y_a) + (1 - lam) * BCE(y_b)
                # is the BCE of the mixed rows
                self._note_pair(node, self._method_pairs)
                return
            if name in self._pair_mixers:
                self.report(
                    node,
                    f"{name}(inputs, labels, ...) hands back the labels and their permutation (y_a, y_b, lam) "
                    "for two losses weighted by lambda: class-index mixup",
                    suggestion=PAIR_SUGGESTION,
                )
            else:
                unseen = "a method of this file whose labels it cannot follow" if (
                    isinstance(node.func, cst.Attribute) and _is_self(node.func.value) and name in self._own_methods
                ) else "a mixing function this file does not define"
                self.report(
                    node,
                    f"{name}(inputs, labels, ...) is {unseen}, unpacked into three or more values: migrate-ml "
                    "cannot tell whether it hands back class indices and their permutation (y_a, y_b, lam) or "
                    "label rows it already mixed",
                    suggestion=UNSEEN_MIX_SUGGESTION,
                )
        elif len(positional_arguments(node)) >= 3 and (
            (_mix_name(_callee_name(node.func)) and _loss_name(_callee_name(node.func)))
            or _callee_name(node.func) in self._mixed_criteria
            or self._given_a_mixed_pair(node)
        ):
            if self._float_rows:
                return
            self.report(
                node,
                f"{_callee_name(node.func)}(...) weighs two losses on the pair of labels a class-index "
                "mixup hands back (y_a, y_b, lam)",
                suggestion=PAIR_SUGGESTION,
            )
        elif (
            (isinstance(node.func, cst.Name) or (isinstance(node.func, cst.Attribute) and _is_self(node.func.value)))
            and "mixup" in _callee_name(node.func).lower()
            and len(node.args) == 2
            and _callee_name(node.func) not in self._row_mixers  # mixes rows, or a method not read here
        ):
            self.report(
                node,
                f"{_callee_name(node.func)}(inputs, targets) mixes the targets the way a class-index mixup "
                "does (timm's Mixup one-hot encodes them first); multi-hot targets must be mixed as rows",
                suggestion=MIX_SUGGESTION,
            )

    def visit_Module(self, node: cst.Module) -> None:
        self._loss_calls = {call.call: call for call in self.get_metadata(LossFlowProvider, node).calls}
        finder = _PairMixers()
        node.visit(finder)
        self._pair_mixers = {definition.name.value for definition in finder.found}
        self._mixed_criteria = {
            definition.name.value for definition in _functions(node) if _weighs_a_criterion_parameter(definition)
        }
        self._pairs: dict[object, set[str]] = {}
        self._method_pairs: dict[object, set[str]] = {}
        """The pairs handed back by the class's own mixing methods read as ``"pair"``, per scope."""
        self._mixed_one_hots = {
            call for holder in _walk(node) if isinstance(holder, (cst.FunctionDef, cst.ClassDef)) and _mixes_rows(holder)
            for call in _body_walk(holder) if isinstance(call, cst.Call) and _callee_name(call.func) == "one_hot"
        }
        self._row_mixers = finder.row_mixers | finder.methods
        self._read_methods = finder.read_methods
        self._own_methods = finder.methods
        facts = current_facts()
        self._float_rows = facts is not None and facts.float_row_run
        for definition in ([] if self._float_rows else finder.found):
            self.report(
                definition.name,
                f"{definition.name.value} returns the labels and their permutation (y, y[index], lam) for "
                "two losses weighted by lambda: it mixes class indices, one label per image",
                suggestion=PAIR_SUGGESTION,
            )

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Add) or self._float_rows:
            return
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, cst.BinaryOperation) and isinstance(parent.operator, cst.Add):
            return  # the whole sum is read once, from its outermost `+`
        terms = [self._weighted_loss(term) for term in _added_terms(node)]
        if any(
            self._mixup_pair(left, right) and not self._of_a_method_pair(left, right) for left, right in zip(terms, terms[1:])
        ):
            self.report(
                node,
                "mixup written as two losses weighted by lambda assumes class-index targets (y_a, y_b)",
                suggestion="with multi-hot labels mix the label rows and make one BCE call: "
                "criterion(outputs, lam * y_a.float() + (1 - lam) * y_b.float())",
            )

    @staticmethod
    def _mixup_pair(left: LossCall | cst.Call | None, right: LossCall | cst.Call | None) -> bool:
        """Two weighted losses of one mixup: of criteria this file builds, unless both are BCE
        (multi-label mixup already); otherwise one criterion on the same outputs, two targets."""
        if left is None or right is None:
            return False
        if isinstance(left, LossCall) and isinstance(right, LossCall):
            return not left.kinds | right.kinds <= MULTI_LABEL_KINDS
        return _same_loss_other_targets(left, right)

    def _weighted_loss(self, expression: cst.BaseExpression) -> LossCall | cst.Call | None:
        """The loss call of ``lam * loss_call`` or ``loss_call * (1 - lam)``: a call of a criterion
        this file builds, else a call of a callee named as a loss (``self.loss(out, y_a)``, a
        criterion passed in), also through a name it is stored under (``loss_a * lam_a``)."""
        if not (isinstance(expression, cst.BinaryOperation) and isinstance(expression.operator, cst.Multiply)):
            return None
        for side in (expression.left, expression.right):
            if side in self._loss_calls:
                return self._loss_calls[side]
        for side in (expression.left, expression.right):
            call = self._stored_call(side) if isinstance(side, cst.Name) else side
            if _named_loss_call(call):
                return self._loss_calls.get(call, call)
        return None

    def _stored_call(self, name: cst.Name) -> cst.Call | None:
        """The call ``name`` holds when it is assigned once, by ``name = call(...)``, in its scope."""
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return None
        assignments = list(scope.assignments[name.value])
        if len(assignments) != 1:
            return None
        target = getattr(assignments[0], "node", None)
        holder = self.get_metadata(ParentNodeProvider, target, None) if target is not None else None
        statement = self.get_metadata(ParentNodeProvider, holder, None) if isinstance(holder, cst.AssignTarget) else None
        if isinstance(statement, cst.Assign) and len(statement.targets) == 1 and isinstance(statement.value, cst.Call):
            return statement.value
        return None

    def _note_pair(self, call: cst.Call, pairs: dict[object, set[str]] | None = None) -> None:
        """Remember the labels' pair of ``x, y_a, y_b, lam = mix(x, y, ...)`` (all but the first
        and the last name), in the scope that unpacks it (in ``pairs``, else ``self._pairs``)."""
        statement = self.get_metadata(ParentNodeProvider, call, None)
        if not self._unpacked_into_pair(call):
            return
        elements = statement.targets[0].target.elements
        names = {element.value.value for element in elements[1:-1] if isinstance(element.value, cst.Name)}
        (self._pairs if pairs is None else pairs).setdefault(self.get_metadata(ScopeProvider, call, None), set()).update(names)

    def _of_a_method_pair(self, left: LossCall | cst.Call, right: LossCall | cst.Call) -> bool:
        """Two losses of a criterion the file does not build (one passed in: ``self.criterion``),
        weighed on the two labels that the class's own mixing method handed back unmixed in this
        scope: the criterion is migrated where it is built, and then the two losses are the BCE of
        the mixed rows, as for the method's call."""
        if isinstance(left, LossCall) or isinstance(right, LossCall):
            return False
        pair = self._method_pairs.get(self.get_metadata(ScopeProvider, left, None), set())
        targets = [positional_arguments(call)[-1].value for call in (left, right)]
        return all(isinstance(target, cst.Name) and target.value in pair for target in targets)

    def _given_a_mixed_pair(self, call: cst.Call) -> bool:
        """A call given both labels of a mixup's pair unpacked in the same scope
        (``Aug.mixed_criterion(self.criterion, outputs, targets_a, targets_b, lam)``): whatever it
        is named or wherever it is defined, it weighs a loss on each label of the pair."""
        pair = self._pairs.get(self.get_metadata(ScopeProvider, call, None), set())
        given = {arg.value.value for arg in positional_arguments(call) if isinstance(arg.value, cst.Name)}
        return len(pair & given) >= 2

    def _unpacked_into_pair(self, call: cst.Call) -> bool:
        """``x, y_a, y_b, lam = mix(x, y, ...)``: three or more names, the labels' pair among them."""
        statement = self.get_metadata(ParentNodeProvider, call, None)
        return (
            isinstance(statement, cst.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0].target, (cst.Tuple, cst.List))
            and len(statement.targets[0].target.elements) >= 3
        )
