"""ML104's mixing bodies: what a hand-written mixup/cutmix function does with its labels (hands back
their permutation unmixed, or mixes the label rows with a weight), which functions and classes mix
label rows with their permutation, and how mixing functions are named.
"""

from __future__ import annotations

import libcst as cst


_MIX_WORDS = ("mixup", "cutmix", "fmix", "snapmix")
"""How a hand-written mixing function is named (``mixup_data``, ``cutmix``, ``snapmix``)."""


def _callee_name(func: cst.BaseExpression) -> str:
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


def _is_self(expression: cst.BaseExpression) -> bool:
    return isinstance(expression, cst.Name) and expression.value == "self"


def _mix_name(name: str) -> bool:
    return any(word in name.lower() for word in _MIX_WORDS)


class _ReadMixers(cst.CSTVisitor):
    """Functions named as a mixup/cutmix/fmix/snapmix (not methods) whose labels are followed: they
    mix the label rows with a weight (``lam * y + (1 - lam) * y[index]``), or hand back their
    permutation unmixed (``return mixed_x, y, y[index], lam``) for two losses weighted by lambda,
    which are the BCE of the mixed rows once the loss is BCE. Either way a call of one is no
    one-hot mixing of an unseen body."""

    def __init__(self) -> None:
        self.read: set[str] = set()
        self.methods: set[str] = set()
        """Names of methods: ``self.mixup(x, y)`` calling one is the class's own code."""

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.methods.update(item.name.value for item in node.body.body if isinstance(item, cst.FunctionDef))
        return False  # a mixup class's methods are its implementation (timm's Mixup): not reported

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        params = node.params.params
        if not (_mix_name(node.name.value) and len(params) >= 2):
            return True
        if _follows_labels(node, params[1].name.value):
            self.read.add(node.name.value)
        return False


def _follows_labels(node: cst.FunctionDef, label: str) -> bool:
    """The mixing function ``node`` weighs its labels (``label``) or their permutation
    (``lam * y + (1 - lam) * y[index]``), or hands back their permutation unmixed."""
    derived = {label}
    permuted: set[str] = set()
    returned: set[str] = set()
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
            if (_names(inner.left) | _names(inner.right)) & (derived | permuted):
                return True
    return bool(permuted & returned)


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
