"""ML104: mixup/cutmix written for class indices must mix multi-hot targets instead."""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._exprs import positional_arguments
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.flow import MULTI_LABEL_KINDS, LossCall, LossFlowProvider
from migrate_ml.rules._prefilter import TextFacts, has_loss_marker, text_facts, walk

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
_MIX_WORDS = ("mixup", "cutmix", "fmix", "snapmix")
"""How a hand-written mixing function is named (``mixup_data``, ``cutmix``, ``snapmix``)."""
_MIX_TEXT = re.compile(
    r"def (?:mixup|cutmix|fmix|snapmix)\w*\("
    r"|\w+\s*,\s*\w+\s*,[^=\n]*=\s*[\w.]*(?:mixup|cutmix|fmix|snapmix)\w*\("
    r"|(?:mixup|cutmix|fmix|snapmix)\w*(?:criterion|loss)\w*\(",
    re.IGNORECASE,
)
"""A mixing function defined under its own name, one unpacked into three or more names
(``x, y_a, y_b, lam = mixup_data(...)``), or a mixup criterion called: the text that lets a file
without a loss marker through (timm's own mixup helpers are called with other names)."""
_LOSS_WORDS = ("loss", "criterion", "entropy")
"""How a loss callee is named when no criterion built in the file reaches it (``self.loss``)."""
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
        "mixes the label rows (`lam * y + (1 - lam) * y[index]`) is left alone. All are reported "
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
        """A mixup applied outside a class body (not a mixup implementation), one unpacked into
        three or more names anywhere (a trainer's method applies it: ``x, y_a, y_b, lam =
        Aug.mixup_data(x, y, alpha)``), two weighted losses, or a mixing function that hands back
        its labels' permutation."""
        return _mixup_call_outside_classes(tree) or any(
            (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
             and _weighted_loss_call(node.left) and _weighted_loss_call(node.right))
            or (isinstance(node, ast.FunctionDef) and _mix_name(node.name) and _permutes_second_argument(node))
            or _unpacked_mix_call(node)
            or (isinstance(node, ast.Call) and _called_name(node) == "one_hot")
            or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
                and _weighted_name_call(node.left) and _weighted_name_call(node.right))
            for node in walk(tree)
        )

    def visit_Call(self, node: cst.Call) -> None:
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
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
            self._note_pair(node)
            if name in self._pair_mixers:
                self.report(
                    node,
                    f"{name}(inputs, labels, ...) hands back the labels and their permutation (y_a, y_b, lam) "
                    "for two losses weighted by lambda: class-index mixup",
                    suggestion=PAIR_SUGGESTION,
                )
            else:
                self.report(
                    node,
                    f"{name}(inputs, labels, ...) is a mixing function this file does not define, unpacked "
                    "into three or more values: migrate-ml cannot tell whether it hands back class indices "
                    "and their permutation (y_a, y_b, lam) or label rows it already mixed",
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
        self._mixed_one_hots = {
            call for holder in _walk(node) if isinstance(holder, (cst.FunctionDef, cst.ClassDef)) and _mixes_rows(holder)
            for call in _body_walk(holder) if isinstance(call, cst.Call) and _callee_name(call.func) == "one_hot"
        }
        self._row_mixers = finder.row_mixers | finder.methods
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
        if any(self._mixup_pair(left, right) for left, right in zip(terms, terms[1:])):
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

    def _note_pair(self, call: cst.Call) -> None:
        """Remember the labels' pair of ``x, y_a, y_b, lam = mix(x, y, ...)`` (all but the first
        and the last name), in the scope that unpacks it."""
        statement = self.get_metadata(ParentNodeProvider, call, None)
        if not self._unpacked_into_pair(call):
            return
        elements = statement.targets[0].target.elements
        names = {element.value.value for element in elements[1:-1] if isinstance(element.value, cst.Name)}
        self._pairs.setdefault(self.get_metadata(ScopeProvider, call, None), set()).update(names)

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


_CONSTRUCTOR_MARKERS = ("Mixup(", "MixUp(", "CutMix(", "RandomMixup(", "RandomCutmix(")


def _calls_a_mix_name(facts: TextFacts) -> bool:
    """A called name holds a mixing word: each form ``_MIX_TEXT`` accepts calls one (a regex
    without a literal to look for first is tried at every position of the file)."""
    return any(word in name.lower() for name in facts.called for word in _MIX_WORDS)


def _callee_name(func: cst.BaseExpression) -> str:
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


def _is_self(expression: cst.BaseExpression) -> bool:
    return isinstance(expression, cst.Name) and expression.value == "self"


def _mix_name(name: str) -> bool:
    return any(word in name.lower() for word in _MIX_WORDS)


def _loss_name(name: str) -> bool:
    return any(word in name.lower() for word in _LOSS_WORDS)


def _named_loss_call(call: cst.BaseExpression | None) -> bool:
    return (
        isinstance(call, cst.Call)
        and _loss_name(_callee_name(call.func))
        and len(positional_arguments(call)) >= 2
    )


def _same_loss_other_targets(left: LossCall | cst.Call, right: LossCall | cst.Call) -> bool:
    """One criterion called on the same outputs with two targets: ``loss(out, y_a)`` and ``loss(out, y_b)``."""
    first, second = (side.call if isinstance(side, LossCall) else side for side in (left, right))
    code = cst.Module([]).code_for_node
    a, b = positional_arguments(first), positional_arguments(second)
    return (
        code(first.func) == code(second.func)
        and code(a[0].value) == code(b[0].value)
        and code(a[-1].value) != code(b[-1].value)
    )


def _added_terms(expression: cst.BaseExpression) -> list[cst.BaseExpression]:
    """``a + b + c`` -> ``[a, b, c]``."""
    if isinstance(expression, cst.BinaryOperation) and isinstance(expression.operator, cst.Add):
        return [*_added_terms(expression.left), *_added_terms(expression.right)]
    return [expression]


class _PairMixers(cst.CSTVisitor):
    """Functions named as a mixup/cutmix/fmix/snapmix (not methods) that return their labels'
    permutation unmixed: ``y_a, y_b = y, y[index]; return mixed_x, y_a, y_b, lam`` or
    ``targets = (target, target[indices], lam)``. One that mixes the label rows with a weight
    (``lam * y + (1 - lam) * y[index]``) is multi-label mixup already and is not listed."""

    def __init__(self) -> None:
        self.found: list[cst.FunctionDef] = []
        self.row_mixers: set[str] = set()
        """The mixing functions that mix their label rows with a weight."""
        self.methods: set[str] = set()
        """Names of methods: ``self.mixup(x, y)`` calling one is the class's own code, unread here."""

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.methods.update(item.name.value for item in node.body.body if isinstance(item, cst.FunctionDef))
        return False  # a mixup class's methods are its implementation (timm's Mixup)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        params = node.params.params
        if not (_mix_name(node.name.value) and len(params) >= 2):
            return True
        label = params[1].name.value
        derived = {label}
        permuted: set[str] = set()
        returned: set[str] = set()
        mixes_rows = False
        for inner in _walk(node.body):
            if isinstance(inner, cst.Assign):
                names = _names(inner.value)
                if _permutes(inner.value, label) or names & permuted:
                    permuted.update(_target_names(inner))
                if names & derived:
                    derived.update(_target_names(inner))
            elif isinstance(inner, cst.Return) and inner.value is not None:
                returned |= _names(inner.value)
                if _permutes(inner.value, label):
                    returned.add(label)
                    permuted.add(label)
            elif isinstance(inner, cst.BinaryOperation) and isinstance(inner.operator, cst.Multiply):
                mixes_rows |= bool((_names(inner.left) | _names(inner.right)) & (derived | permuted))
        if permuted & returned and not mixes_rows:
            self.found.append(node)
        elif mixes_rows:
            self.row_mixers.add(node.name.value)
        return False


def _functions(module: cst.Module):
    """Every function of ``module``, methods of its classes included."""
    for inner in _walk(module):
        if isinstance(inner, cst.FunctionDef):
            yield inner
        elif isinstance(inner, cst.ClassDef):
            yield from (item for item in _walk(inner.body) if isinstance(item, cst.FunctionDef))


def _weighs_a_criterion_parameter(definition: cst.FunctionDef) -> bool:
    """The body weighs two calls of a criterion it is given, on the same outputs and two targets:
    ``return lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b)`` (a mixup criterion,
    known by what it computes whatever it is called). Its calls are reported; the sum itself only
    when its criterion is known (``visit_BinaryOperation``): the one given may be BCE."""
    parameters = {param.name.value for param in definition.params.params}
    for inner in _walk(definition.body):
        if not (isinstance(inner, cst.BinaryOperation) and isinstance(inner.operator, cst.Add)):
            continue
        calls = [_parameter_call(term, parameters) for term in _added_terms(inner)]
        if any(left and right and _same_loss_other_targets(left, right) for left, right in zip(calls, calls[1:])):
            return True
    return False


def _given(call: cst.Call, parameters: set[str]) -> bool:
    """The outputs and the target of ``criterion(pred, y)`` are parameters too: the function is
    handed the pair (a training loop that mixes its own batch is no mixup criterion)."""
    arguments = positional_arguments(call)
    return all(isinstance(arg.value, cst.Name) and arg.value.value in parameters for arg in (arguments[0], arguments[-1]))


def _parameter_call(term: cst.BaseExpression, parameters: set[str]) -> cst.Call | None:
    """The call of ``lam * criterion(out, y)``, when ``criterion`` is a parameter given two or more arguments."""
    if not (isinstance(term, cst.BinaryOperation) and isinstance(term.operator, cst.Multiply)):
        return None
    for side in (term.left, term.right):
        if (
            isinstance(side, cst.Call) and isinstance(side.func, cst.Name) and side.func.value in parameters
            and len(positional_arguments(side)) >= 2 and _given(side, parameters)
        ):
            return side
    return None


def _mixes_rows(holder: cst.FunctionDef | cst.ClassDef) -> bool:
    """A module-level function or class that mixes label rows with a permutation of themselves,
    ``lam * y + (1 - lam) * y[index]`` (or ``y.flip(0)``), somewhere in its body."""
    for inner in _body_walk(holder):
        if not (isinstance(inner, cst.BinaryOperation) and isinstance(inner.operator, cst.Add)):
            continue
        left, right = inner.left, inner.right
        if not all(isinstance(term, cst.BinaryOperation) and isinstance(term.operator, cst.Multiply) for term in (left, right)):
            continue
        for first, second in ((left, right), (right, left)):
            names = {side.value for side in (first.left, first.right) if isinstance(side, cst.Name)}
            if any(_permuted_name(side) in names for side in (second.left, second.right)):
                return True
    return False


def _body_walk(holder: cst.FunctionDef | cst.ClassDef):
    """Every node of a function's body, or of the methods of a class."""
    if isinstance(holder, cst.FunctionDef):
        yield from _walk(holder.body)
        return
    for item in _walk(holder.body):
        if isinstance(item, cst.FunctionDef):
            yield from _walk(item.body)


def _permuted_name(expression: cst.BaseExpression) -> str:
    """``y`` of ``y[index]`` or ``y.flip(0)``."""
    if isinstance(expression, cst.Subscript) and isinstance(expression.value, cst.Name):
        return expression.value.value
    if (
        isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)
        and expression.func.attr.value == "flip" and isinstance(expression.func.value, cst.Name)
    ):
        return expression.func.value.value
    return ""


def _walk(node: cst.CSTNode):
    """Every node under ``node``, not entering nested functions or classes."""
    for child in node.children:
        yield child
        if not isinstance(child, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            yield from _walk(child)


def _names(expression: cst.CSTNode) -> set[str]:
    found = {expression.value} if isinstance(expression, cst.Name) else set()
    for inner in _walk(expression):
        if isinstance(inner, cst.Name):
            found.add(inner.value)
    return found


def _target_names(assign: cst.Assign) -> set[str]:
    return {name for target in assign.targets for name in _names(target.target)}


def _permutes(expression: cst.CSTNode, label: str) -> bool:
    """``label[index]`` (an index that is a name or a call such as ``randperm``), somewhere in ``expression``."""
    return any(
        isinstance(inner, cst.Subscript)
        and isinstance(inner.value, cst.Name)
        and inner.value.value == label
        and isinstance(inner.slice[0].slice, cst.Index)
        and isinstance(inner.slice[0].slice.value, (cst.Name, cst.Call))
        for inner in (expression, *_walk(expression))
    )


def _permutes_second_argument(definition: ast.FunctionDef) -> bool:
    """The syntax-tree pre-check of ``_PairMixers``: the second argument indexed by a name or a call."""
    if len(definition.args.args) < 2:
        return False
    label = definition.args.args[1].arg
    return any(
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == label
        and isinstance(node.slice, (ast.Name, ast.Call))
        for node in ast.walk(definition)
    )


def _weighted_name_call(term: ast.AST) -> bool:
    """``lam * f(out, y)``: the syntax-tree pre-check of ``_weighs_a_criterion_parameter``, whose
    ``f`` must be a parameter (a criterion given to a mixup criterion)."""
    return isinstance(term, ast.BinOp) and isinstance(term.op, ast.Mult) and any(
        isinstance(side, ast.Call) and isinstance(side.func, ast.Name) and len(side.args) >= 2
        for side in (term.left, term.right)
    )


def _mixup_call_outside_classes(tree: ast.AST) -> bool:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            continue
        if isinstance(node, ast.Call) and _mix_name(_called_name(node)):
            return True
        if _mixup_call_outside_classes(node):
            return True
    return False


def _unpacked_mix_call(node: ast.AST) -> bool:
    """``a, b, c, ... = mix(x, y, ...)``: the form ``visit_Call`` reports wherever it is called."""
    return (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], (ast.Tuple, ast.List))
        and len(node.targets[0].elts) >= 3
        and isinstance(node.value, ast.Call)
        and _mix_name(_called_name(node.value))
        and len(node.value.args) >= 2
    )


def _weighted_loss_call(node: ast.AST) -> bool:
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return False
    return any(
        (isinstance(side, ast.Call) and any(word in _called_name(side).lower() for word in _LOSS_WORDS))
        or (isinstance(side, ast.Name) and "loss" in side.id.lower())
        for side in (node.left, node.right)
    )


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""
