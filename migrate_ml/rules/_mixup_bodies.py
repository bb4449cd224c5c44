"""ML104's mixing bodies: what a hand-written mixup/cutmix function does with its labels (hands back
their permutation unmixed, or mixes the label rows with a weight), which functions weigh two calls of a
criterion they are given, and how mixing functions and losses are named.
"""

from __future__ import annotations

import libcst as cst

from migrate_ml.rules._exprs import positional_arguments
from migrate_ml.rules.semantics.flow import LossCall


_MIX_WORDS = ("mixup", "cutmix", "fmix", "snapmix")
"""How a hand-written mixing function is named (``mixup_data``, ``cutmix``, ``snapmix``)."""
_LOSS_WORDS = ("loss", "criterion", "entropy")
"""How a loss callee is named when no criterion built in the file reaches it (``self.loss``)."""


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
        """Names of methods: ``self.mixup(x, y)`` calling one is the class's own code."""
        self.read_methods: dict[str, str] = {}
        """Mixing methods (``def cutmix(self, images, targets)``) read as the functions are: ``"rows"``
        for one that mixes its label rows, ``"pair"`` for one that hands back their permutation unmixed."""

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        for item in node.body.body:
            if not isinstance(item, cst.FunctionDef):
                continue
            self.methods.add(item.name.value)
            params = item.params.params
            if _mix_name(item.name.value) and len(params) >= 3 and params[0].name.value == "self":
                mixes = _mixes_labels(item, params[2].name.value)
                if mixes is not None:
                    self.read_methods[item.name.value] = mixes
        return False  # a mixup class's methods are its implementation (timm's Mixup): not reported

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        params = node.params.params
        if not (_mix_name(node.name.value) and len(params) >= 2):
            return True
        mixes = _mixes_labels(node, params[1].name.value)
        if mixes == "pair":
            self.found.append(node)
        elif mixes == "rows":
            self.row_mixers.add(node.name.value)
        return False


def _mixes_labels(node: cst.FunctionDef, label: str) -> str | None:
    """``"rows"`` when the mixing function ``node`` weighs its labels (``label``) or their permutation
    (``lam * y + (1 - lam) * y[index]``), ``"pair"`` when it hands back their permutation unmixed,
    else None."""
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
    if mixes_rows:
        return "rows"
    return "pair" if permuted & returned else None


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
