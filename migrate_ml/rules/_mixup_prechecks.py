"""ML104's pre-checks, on the file's text and on CPython's ``ast`` tree: a mixup constructor or a mixing
function's name in the text, and on the syntax tree a mixup applied outside a class, one unpacked into
three or more names, two weighted losses, a mixing function that indexes its labels.
"""

from __future__ import annotations

import ast
import re

from migrate_ml.rules._mixup_bodies import _LOSS_WORDS, _MIX_WORDS, _mix_name
from migrate_ml.rules._prefilter import TextFacts


_MIX_TEXT = re.compile(
    r"def (?:mixup|cutmix|fmix|snapmix)\w*\("
    r"|\w+\s*,\s*\w+\s*,[^=\n]*=\s*[\w.]*(?:mixup|cutmix|fmix|snapmix)\w*\("
    r"|(?:mixup|cutmix|fmix|snapmix)\w*(?:criterion|loss)\w*\(",
    re.IGNORECASE,
)
"""A mixing function defined under its own name, one unpacked into three or more names
(``x, y_a, y_b, lam = mixup_data(...)``), or a mixup criterion called: the text that lets a file
without a loss marker through (timm's own mixup helpers are called with other names)."""
_CONSTRUCTOR_MARKERS = ("Mixup(", "MixUp(", "CutMix(", "RandomMixup(", "RandomCutmix(")


def _calls_a_mix_name(facts: TextFacts) -> bool:
    """A called name holds a mixing word: each form ``_MIX_TEXT`` accepts calls one (a regex
    without a literal to look for first is tried at every position of the file)."""
    return any(word in name.lower() for name in facts.called for word in _MIX_WORDS)


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


LIBRARY_MIXERS = frozenset({"Mixup", "FastCollateMixup", "MixUp", "CutMix"})
"""timm's and torchvision's (v2) mixing classes: built anywhere, in a data module's collate function
too, they are a use of the library, not a mixup the file implements (``visit_Call`` confirms them
by qualified name)."""


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def mixes_rows_with_their_permutation(tree: ast.Module) -> bool:
    """The syntax-tree pre-check of ``_mixes_rows``: ``lam * y + (1 - lam) * y[index]`` (or
    ``y.flip(0)``) somewhere; timm's ``y1 * lam + y2 * (1. - lam)`` over two one-hots is not it."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
            continue
        terms = (node.left, node.right)
        if not all(isinstance(term, ast.BinOp) and isinstance(term.op, ast.Mult) for term in terms):
            continue
        for first, second in (terms, terms[::-1]):
            names = {side.id for side in (first.left, first.right) if isinstance(side, ast.Name)}
            if any(_permuted_name(side) in names for side in (second.left, second.right)):
                return True
    return False


def _permuted_name(expression: ast.expr) -> str:
    """``y`` of ``y[index]`` or ``y.flip(0)``."""
    if isinstance(expression, ast.Subscript) and isinstance(expression.value, ast.Name):
        return expression.value.id
    if (
        isinstance(expression, ast.Call) and isinstance(expression.func, ast.Attribute)
        and expression.func.attr == "flip" and isinstance(expression.func.value, ast.Name)
    ):
        return expression.func.value.id
    return ""
