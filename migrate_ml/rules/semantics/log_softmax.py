"""Log-softmax over the classes, and the NLL losses that take it (ML003, ML103).

``F.nll_loss(F.log_softmax(z, dim=1), y)`` is cross-entropy written in two steps: these helpers
find the ``z`` under the log-softmax, tell which ``nll_loss`` calls BCE can take over, and
which log-softmax can be dropped because every use of it reads logits as well.
"""

from __future__ import annotations

from typing import Callable

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules.semantics.flow import call_argument
from migrate_ml.rules.semantics.shapes import is_class_dim
from migrate_ml.rules.semantics.tables import LOG_SOFTMAX_FUNCTIONS

_MODULE_ROOTS = frozenset({"torch", "scipy", "numpy", "jax", "tensorflow"})


def log_softmax_input(rule, expression: cst.BaseExpression) -> cst.BaseExpression | None:
    """``z`` when ``expression`` is a log-softmax of ``z`` over the class dimension (1 or -1).

    ``rule`` is anything with ``get_metadata`` that depends on ``QualifiedNameProvider``."""
    if not isinstance(expression, cst.Call):
        return None
    if isinstance(expression.func, cst.Attribute) and expression.func.attr.value == "log_softmax":
        qualified = {q.name for q in rule.get_metadata(QualifiedNameProvider, expression.func, set())}
        if qualified & LOG_SOFTMAX_FUNCTIONS:
            source, dim = _argument(expression, 0, "input"), _argument(expression, 1, "dim")
        elif any(name.partition(".")[0] in _MODULE_ROOTS for name in qualified):
            return None  # a log_softmax of another module (e.g. scipy.special)
        else:
            source, dim = expression.func.value, _argument(expression, 0, "dim")
    elif isinstance(expression.func, cst.Name):
        qualified = {q.name for q in rule.get_metadata(QualifiedNameProvider, expression.func, set())}
        if not qualified & LOG_SOFTMAX_FUNCTIONS:
            return None
        source, dim = _argument(expression, 0, "input"), _argument(expression, 1, "dim")
    else:
        return None
    if source is None or not is_class_dim(dim):
        return None
    return source


def _argument(call: cst.Call, index: int, keyword: str) -> cst.BaseExpression | None:
    positional = [arg for arg in call.args if arg.keyword is None]
    if len(positional) > index and not positional[index].star:
        return positional[index].value
    argument = next((arg for arg in call.args if arg.keyword is not None and arg.keyword.value == keyword), None)
    return argument.value if argument is not None else None


_NLL_SHARED_POSITIONS = 3  # nll_loss(input, target, weight, ...) matches BCE up to weight


def nll_options_supported(call: cst.Call) -> bool:
    """An ``nll_loss`` call ML003 converts: no ``ignore_index``, nothing past ``weight`` by position."""
    return (
        all(arg.keyword is None or arg.keyword.value != "ignore_index" for arg in call.args)
        and len([arg for arg in call.args if arg.keyword is None]) <= _NLL_SHARED_POSITIONS
        and not any(arg.star for arg in call.args)
    )


def droppable_log_softmax(owner, name: cst.Name, is_nll_input: Callable[[cst.Call], bool]) -> cst.Call | None:
    """The ``F.log_softmax(model(x), dim=1)`` that ``name`` is bound to, once, when ML003 drops it:
    the logits have no name of their own and every use of ``name`` is the input of an NLL loss
    call (``is_nll_input``) or an arg-max over the classes, which picks the same class from
    logits as from log-probabilities. ``owner`` depends on ``ScopeProvider``,
    ``ParentNodeProvider`` and ``QualifiedNameProvider``."""
    scope = owner.get_metadata(ScopeProvider, name, None)
    assignments = list(scope[name.value]) if scope is not None else []
    if len(assignments) != 1:
        return None
    bound = getattr(assignments[0], "node", None)
    target = owner.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
    statement = owner.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
    if not (isinstance(statement, cst.Assign) and len(statement.targets) == 1 and isinstance(statement.value, cst.Call)):
        return None
    if not isinstance(log_softmax_input(owner, statement.value), cst.Call):
        return None  # a named input is used directly
    accesses = [access.node for access in assignments[0].references]
    if not accesses or not all(_logits_safe_use(owner, node, is_nll_input) for node in accesses):
        return None
    return statement.value


def _logits_safe_use(owner, node: cst.CSTNode, is_nll_input: Callable[[cst.Call], bool]) -> bool:
    parent = owner.get_metadata(ParentNodeProvider, node, None)
    if isinstance(parent, cst.Arg) and parent.keyword is None:
        call = owner.get_metadata(ParentNodeProvider, parent, None)
        if isinstance(call, cst.Call) and call.args and call.args[0] is parent:
            if is_nll_input(call):
                return True
            if {q.name for q in owner.get_metadata(QualifiedNameProvider, call.func, set())} & {"torch.argmax", "torch.max"}:
                dim = call_argument(call, 1, "dim")
                return dim is not None and is_class_dim(dim.value)
        return False
    if isinstance(parent, cst.Attribute) and parent.value is node and parent.attr.value in ("argmax", "max"):
        call = owner.get_metadata(ParentNodeProvider, parent, None)
        dim = call_argument(call, 0, "dim") if isinstance(call, cst.Call) and call.func is parent else None
        return dim is not None and is_class_dim(dim.value)
    return False
