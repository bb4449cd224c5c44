"""ML104's pre-checks, on the file's text and on CPython's ``ast`` tree: a mixup constructor or a called
mixup in the text, and on the syntax tree a mixup applied outside a class or label rows mixed with their
permutation.
"""

from __future__ import annotations

import ast

from migrate_ml.rules._mixup_bodies import _mix_name
from migrate_ml.rules._prefilter import TextFacts


_CONSTRUCTOR_MARKERS = ("Mixup(", "MixUp(", "CutMix(", "RandomMixup(", "RandomCutmix(")


def _calls_a_mixup(facts: TextFacts) -> bool:
    """A called name holds ``mixup`` (``mixup_fn(samples, targets)``, ``self.mixup(x, y)``)."""
    return any("mixup" in name.lower() for name in facts.called)


def _mixup_call_outside_classes(tree: ast.AST) -> bool:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            continue
        if isinstance(node, ast.Call) and _mix_name(_called_name(node)):
            return True
        if _mixup_call_outside_classes(node):
            return True
    return False


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
