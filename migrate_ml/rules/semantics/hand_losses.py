"""Hand-written single-label losses, known by what their functions compute (on CPython's ``ast``).

A loss written as plain functions has no class or library name to match; its body says what it is:

* a **Dirichlet over the classes** (evidential deep learning's ``edl_mse_loss``/``edl_log_loss``/
  ``edl_digamma_loss``): ``lgamma``/``digamma`` of ``alpha`` summed over the class dimension,
  the normaliser of one distribution over competing classes;
* a **categorical cross-entropy written out**: ``-sum(y * log(p))`` of two of its parameters with no
  ``(1 - y) * log(1 - p)`` term (the NumPy ``cross_entropy(actual, predicted)`` of tutorials);
* a **focal term read from a per-sample cross-entropy**: ``p = exp(-ce)`` of a parameter is the
  probability of the one true class only where that parameter is given
  ``F.cross_entropy(..., reduction="none")``.

A function of the file that returns what one of these computes is the same loss (``edl_mse_loss``
returns ``mse_loss(...)``, which adds ``kl_divergence(...)``); a function that only calls one
(a training loop) is where it is used.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Callable

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_GAMMA_FUNCTIONS = frozenset(
    {"torch.lgamma", "torch.digamma", "torch.special.gammaln", "torch.special.digamma", "torch.special.psi",
     "scipy.special.gammaln", "scipy.special.digamma", "scipy.special.psi"}
)
_GAMMA_METHODS = frozenset({"lgamma", "digamma"})
_SUMS = frozenset({"torch.sum", "numpy.sum"})
_LOGS = frozenset({"torch.log", "numpy.log", "math.log"})
_EXPS = frozenset({"torch.exp", "numpy.exp", "math.exp"})
_PER_SAMPLE_CE = frozenset({"torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss"})
_CLASS_DIMS = ("1", "-1")

DIRICHLET = "dirichlet"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class LossFunction:
    """A function of the file that computes a single-label loss."""

    function: ast.FunctionDef | ast.AsyncFunctionDef
    kind: str
    line: int
    """Where the single-label computation is (in this function or the one it returns the result of)."""
    through: str = ""
    """The function whose result this one returns; "" where the computation is its own."""


def find_loss_functions(tree: ast.Module, qualified: Callable[[ast.AST], str]) -> dict[str, LossFunction]:
    """The module-level functions of ``tree`` that compute a Dirichlet over the classes or a
    categorical cross-entropy, and those that return what one of them computes, by name."""
    functions = {s.name: s for s in tree.body if isinstance(s, _FUNCTIONS)}
    found: dict[str, LossFunction] = {}
    for name, function in functions.items():
        line = _dirichlet_line(function, qualified)
        if line:
            found[name] = LossFunction(function, DIRICHLET, line)
            continue
        line = _categorical_line(function, qualified)
        if line:
            found[name] = LossFunction(function, CATEGORICAL, line)
    changed = bool(found)
    while changed:
        changed = False
        for name, function in functions.items():
            if name in found or _trains(function):
                continue
            callee = _returned_call(function, set(found))
            if callee:
                found[name] = LossFunction(function, found[callee].kind, found[callee].line, callee)
                changed = True
    return found


def exp_of_negated_parameters(tree: ast.Module, qualified: Callable[[ast.AST], str]) -> dict[str, dict[int, int]]:
    """Module-level functions whose body takes ``exp(-parameter)``: name -> {position: line}."""
    found: dict[str, dict[int, int]] = {}
    for function in tree.body:
        if not isinstance(function, _FUNCTIONS):
            continue
        positions = {a.arg: i for i, a in enumerate((*function.args.posonlyargs, *function.args.args))}
        for node in ast.walk(function):
            if not isinstance(node, ast.Call) or len(node.args) != 1:
                continue
            if qualified(node.func) not in _EXPS:
                continue
            negated = node.args[0]
            if isinstance(negated, ast.UnaryOp) and isinstance(negated.op, ast.USub):
                operand = negated.operand
                if isinstance(operand, ast.Name) and operand.id in positions:
                    found.setdefault(function.name, {})[positions[operand.id]] = node.lineno
    return found


def is_per_sample_cross_entropy(node: ast.AST, qualified: Callable[[ast.AST], str]) -> bool:
    """``F.cross_entropy(logits, y, reduction="none")``: one loss per sample, of its one class."""
    if not (isinstance(node, ast.Call) and qualified(node.func) in _PER_SAMPLE_CE):
        return False
    reduction = next((k.value for k in node.keywords if k.arg == "reduction"), None)
    return isinstance(reduction, ast.Constant) and reduction.value == "none"


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    arguments = function.args
    return {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)} - {"self", "cls"}


def _is_class_sum(node: ast.AST, qualified: Callable[[ast.AST], str]) -> bool:
    """``torch.sum(alpha, dim=1)``, ``alpha.sum(1)``, ``np.sum(a, axis=-1)``: a sum over the classes."""
    if not isinstance(node, ast.Call):
        return False
    dims = [ast.unparse(k.value) for k in node.keywords if k.arg in ("dim", "axis")]
    if qualified(node.func) in _SUMS:
        dims += [ast.unparse(a) for a in node.args[1:2]]
    elif isinstance(node.func, ast.Attribute) and node.func.attr == "sum":
        dims += [ast.unparse(a) for a in node.args[:1]]
    else:
        return False
    return bool(dims) and dims[0] in _CLASS_DIMS


def _dirichlet_line(function: ast.FunctionDef | ast.AsyncFunctionDef, qualified: Callable[[ast.AST], str]) -> int:
    sums = {
        target.id
        for node in ast.walk(function)
        if isinstance(node, ast.Assign) and _is_class_sum(node.value, qualified)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    lines = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        if qualified(node.func) in _GAMMA_FUNCTIONS and node.args:
            argument = node.args[0]
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _GAMMA_METHODS and not node.args:
            argument = node.func.value
        else:
            continue
        if _is_class_sum(argument, qualified) or (isinstance(argument, ast.Name) and argument.id in sums):
            lines.append(node.lineno)
    return min(lines, default=0)


def _categorical_line(function: ast.FunctionDef | ast.AsyncFunctionDef, qualified: Callable[[ast.AST], str]) -> int:
    parameters = _parameters(function)
    if not parameters:
        return 0
    for node in ast.walk(function):
        # ``1 - y``: a binary cross-entropy's other term, one decision per label
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and ast.unparse(node.left) in ("1", "1.0"):
            if _root(node.right) in parameters:
                return 0
    for total in ast.walk(function):
        node = _summed(total, qualified)
        while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node = node.operand
        # the whole sum is the product: ``sum(rate - y * log(rate))`` (a Poisson likelihood) is not
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for logged, other in ((node.left, node.right), (node.right, node.left)):
                if isinstance(other, ast.UnaryOp) and isinstance(other.op, ast.USub):
                    other = other.operand
                log_of = _log_argument(logged, qualified)
                if log_of is None:
                    continue
                first, second = _root(log_of), _root(other)
                if first in parameters and second in parameters and first != second:
                    return node.lineno
    return 0


def _summed(node: ast.AST, qualified: Callable[[ast.AST], str]) -> ast.AST | None:
    """What ``torch.sum(x)``/``np.sum(x)``/``x.sum()`` adds up."""
    if not isinstance(node, ast.Call):
        return None
    if qualified(node.func) in _SUMS and node.args:
        return node.args[0]
    if isinstance(node.func, ast.Attribute) and node.func.attr == "sum":
        return node.func.value
    return None


def _log_argument(node: ast.AST, qualified: Callable[[ast.AST], str]) -> ast.AST | None:
    if not isinstance(node, ast.Call):
        return None
    if qualified(node.func) in _LOGS and len(node.args) == 1:
        return node.args[0]
    if isinstance(node.func, ast.Attribute) and node.func.attr == "log" and not node.args:
        return node.func.value
    return None


def _root(node: ast.AST) -> str:
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _trains(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A training step (``loss.backward()``, ``optimizer.step()``) uses a loss; it is not one."""
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("backward", "step")
        for node in ast.walk(function)
    )


def _returned_call(function: ast.FunctionDef | ast.AsyncFunctionDef, losses: set[str]) -> str:
    """The loss function of ``losses`` whose result ``function`` returns (through its local names)."""
    carried: dict[str, str] = {}

    def called(expression: ast.AST) -> str:
        for node in ast.walk(expression):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in losses:
                return node.func.id
            if isinstance(node, ast.Name) and node.id in carried:
                return carried[node.id]
        return ""

    statements = [node for node in ast.walk(function) if isinstance(node, (ast.Assign, ast.AugAssign, ast.Return))]
    statements.sort(key=lambda node: (node.lineno, node.col_offset))
    for statement in statements:
        if isinstance(statement, ast.Return):
            if statement.value is not None and called(statement.value):
                return called(statement.value)
            continue
        source = called(statement.value)
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        for target in targets:
            if isinstance(target, ast.Name) and source:
                carried[target.id] = source
    return ""
