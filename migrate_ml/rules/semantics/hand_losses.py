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

A loss written as a class (an ``nn.Module``, a ``_Loss``, a ``torch.autograd.Function``) is known
by its ``forward`` in the same way: a log-softmax over the classes of its first argument (or the
``log`` of a softmax over the classes: ``p = x.softmax(dim=1)`` then ``p.log()``), combined
with one of its other arguments (the targets, or a name computed from them) as a product (a
soft-target cross-entropy), a ``nll_loss`` (a cross-entropy in two steps), a pick of the labelled
class (``log_p[rows, y]``, ``gather``) or a one-hot of the class index, or a KL divergence between
two softmaxes (distillation); a softmax over the classes times a one-hot of the class index
(``mask.scatter_(1, targets.view(-1, 1), 1.)`` then ``(p * mask).sum(1)``: the labelled class's
probability, as softmax focal losses compute it before any log) is one too; a class whose ``forward`` calls one of those (``Function.apply``) is the
same loss. ``LOSS_CLASS_WORDS`` below are what a file must contain for the walk to be worth it.
"""

from __future__ import annotations

import ast
import copy as copy_module
import re
from dataclasses import dataclass
from typing import Callable

from migrate_ml.rules._prefilter import nodes_of

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_GAMMA_FUNCTIONS = frozenset(
    {"torch.lgamma", "torch.digamma", "torch.special.gammaln", "torch.special.digamma", "torch.special.psi",
     "scipy.special.gammaln", "scipy.special.digamma", "scipy.special.psi"}
)
_GAMMA_METHODS = frozenset({"lgamma", "digamma"})
LOSS_FUNCTION_WORDS = frozenset({"log", "lgamma", "digamma", "gammaln", "psi"})
"""A file holds one of these whole words wherever :func:`find_loss_functions` can find anything:
the last part of every log and gamma function it knows, which an alias is imported by."""
_SUMS = frozenset({"torch.sum", "numpy.sum"})
_LOGS = frozenset({"torch.log", "numpy.log", "math.log"})
_EXPS = frozenset({"torch.exp", "numpy.exp", "math.exp"})
_PER_SAMPLE_CE = frozenset({"torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss"})
_CLASS_DIMS = ("1", "-1")

LOSS_CLASS_WORDS = ("log_softmax", "LogSoftmax", "softmax")
"""A file with none of these defines no loss class known by its body (the cheap pre-filter)."""
_LOG_SOFTMAX = frozenset({"torch.nn.functional.log_softmax", "torch.log_softmax", "torch.special.log_softmax"})
_SOFTMAX = frozenset({"torch.nn.functional.softmax", "torch.softmax", "torch.special.softmax"})
_NLL = frozenset({"torch.nn.functional.nll_loss"})
_NLL_MODULES = frozenset({"torch.nn.NLLLoss"})
_KL = frozenset({"torch.nn.functional.kl_div"})
_KL_MODULES = frozenset({"torch.nn.KLDivLoss"})
_LOSS_BASES = ("nn.Module", "_Loss", "_WeightedLoss", "autograd.Function", "function.Function")
_ONE_HOT = frozenset({"torch.nn.functional.one_hot"})
_FORWARDS = ("forward", "__call__")
_CROSS_ENTROPY_NAME = re.compile(r"CrossEntropy|SoftmaxCE|LSRCE")
_PER_LABEL_NAME = re.compile(r"Binary|BCE|Sigmoid|MultiLabel|Multilabel", re.IGNORECASE)
_VISIBLE_ROOTS = frozenset({"torch", "numpy", "math", "scipy"})
_PER_CLASS_METHODS = frozenset({"neg", "neg_", "float", "double", "view", "reshape", "contiguous", "clamp", "clamp_min"})

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


SOFT_TARGET = "soft-target"
NLL = "nll"
PICK = "pick"
ONE_HOT_TARGET = "one-hot"
DISTILLATION = "distillation"
PROBABILITY_PICK = "probability-pick"
EXTENSION = "extension"
CLASS_COMPUTES = {
    EXTENSION: "a softmax cross-entropy, by its name, in a compiled extension whose body is not visible",
    SOFT_TARGET: "a soft-target cross-entropy, -sum(target * log_softmax(logits)) over the classes",
    NLL: "a cross-entropy in two steps, log_softmax then nll_loss of each image's class index",
    PICK: "the log-softmax probability of each image's one labelled class (log_p[rows, y], gather)",
    ONE_HOT_TARGET: "log_softmax scored against a (smoothed) one-hot of each image's class index",
    PROBABILITY_PICK: "the softmax probability of each image's one labelled class (softmax times a one-hot of the class index)",
    DISTILLATION: "a KL divergence between the softmaxes of two models' outputs (knowledge distillation)",
}


@dataclass(frozen=True)
class LossClass:
    """A class of the file whose ``forward`` computes a single-label loss."""

    node: ast.ClassDef
    kind: str
    line: int
    """Where the single-label computation is (in this class or the one it calls)."""
    smoothing: bool = False
    focal: bool = False
    through: str = ""
    """The loss class whose result this one computes with (``Function.apply``); "" where its own."""

    @property
    def computes(self) -> str:
        what = CLASS_COMPUTES[self.kind]
        if self.smoothing and self.kind != DISTILLATION:
            what = f"a label-smoothing version of {what}"
        if self.focal:
            what = f"a focal loss on {what}"
        return what


def class_advice(loss: LossClass) -> str:
    """What to use instead of a loss class of :func:`find_loss_classes`."""
    if loss.kind == DISTILLATION:
        return "distil per label: F.binary_cross_entropy_with_logits(student_logits / T, torch.sigmoid(teacher_logits / T)) * T * T"
    advice = "replace it with nn.BCEWithLogitsLoss() on the logits and float multi-hot [B, C] targets"
    if loss.smoothing:
        advice += "; smooth the targets instead: targets.float() * (1 - eps) + eps / 2"
    if loss.focal:
        advice += "; for the focal term, torchvision.ops.sigmoid_focal_loss(logits, targets.float())"
    return advice


def find_loss_classes(tree: ast.Module, qualified: Callable[[ast.AST], str]) -> dict[str, LossClass]:
    """The classes of ``tree`` (at any depth) that compute a single-label loss in ``forward``, by name."""
    classes = {
        node.name: node for node in nodes_of(tree, ast.ClassDef)
        if any(qualified(base).endswith(_LOSS_BASES) for base in node.bases)
    }
    found: dict[str, LossClass] = {}
    for name, cls in classes.items():
        forward = _forward(cls)
        if forward is not None:
            loss = _class_loss(cls, forward, qualified) or _extension_loss(cls, forward, qualified)
            if loss is not None:
                found[name] = loss
    changed = bool(found)
    while changed:
        changed = False
        for name, cls in classes.items():
            forward = _forward(cls)
            if name in found or forward is None:
                continue
            for node in ast.walk(forward):
                callee = _called_class(node, set(found))
                if callee:
                    inner = found[callee]
                    found[name] = LossClass(cls, inner.kind, inner.line, inner.smoothing, inner.focal, callee)
                    changed = True
                    break
    return found


def _forward(cls: ast.ClassDef) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    return next((s for s in cls.body if isinstance(s, _FUNCTIONS) and s.name in _FORWARDS), None)


def _called_class(node: ast.AST, losses: set[str]) -> str:
    """``Loss.apply(...)``, ``Loss(...)``, ``Loss()(...)``: a call of one of ``losses``."""
    if not isinstance(node, ast.Call):
        return ""
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "apply":
        func = func.value
    if isinstance(func, ast.Call):
        func = func.func
    return func.id if isinstance(func, ast.Name) and func.id in losses else ""


def _layers(cls: ast.ClassDef, qualified: Callable[[ast.AST], str]) -> dict[str, str]:
    """``self.nll = nn.NLLLoss(...)`` in any method: attribute -> qualified name of what it builds."""
    return {
        target.attr: qualified(node.value.func)
        for node in ast.walk(cls)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        for target in node.targets
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }


def _class_loss(cls: ast.ClassDef, forward: ast.FunctionDef | ast.AsyncFunctionDef, qualified: Callable[[ast.AST], str]) -> LossClass | None:
    parameters = [a.arg for a in (*forward.args.posonlyargs, *forward.args.args)]
    if parameters[:1] and parameters[0] in ("self", "ctx", "cls"):
        parameters = parameters[1:]
    if len(parameters) < 2:
        return None
    layers = _layers(cls, qualified)

    def calls_layer(node: ast.Call, names: frozenset[str]) -> bool:
        func = node.func
        return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self" and layers.get(func.attr, "") in names

    def is_log_softmax(node: ast.AST) -> bool:
        if not isinstance(node, ast.Call):
            return False
        if qualified(node.func) in _LOG_SOFTMAX or calls_layer(node, frozenset({"torch.nn.LogSoftmax"})):
            return True
        logged = _log_argument(node, qualified)
        if logged is not None:  # ``probs.log()`` of ``probs = x.softmax(dim=1)``: a log-softmax in two steps
            return is_probability(logged)
        return isinstance(node.func, ast.Attribute) and node.func.attr == "log_softmax" and not _module_root(node.func.value, qualified)

    def is_softmax(node: ast.AST) -> bool:
        if not isinstance(node, ast.Call):
            return False
        if qualified(node.func) in _SOFTMAX:
            return True
        return isinstance(node.func, ast.Attribute) and node.func.attr == "softmax" and not _module_root(node.func.value, qualified)

    def is_probability(node: ast.AST) -> bool:
        """A softmax over the classes, or a name bound to one, through ``.clamp(...)``/``.float()``."""
        while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _PER_CLASS_METHODS:
            node = node.func.value
        if is_softmax(node):
            dims = [ast.unparse(k.value) for k in node.keywords if k.arg == "dim"]
            dims += [ast.unparse(a) for a in node.args[1 if qualified(node.func) in _SOFTMAX else 0:][:1]]
            return bool(dims) and dims[0] in _CLASS_DIMS
        return isinstance(node, ast.Name) and node.id in probabilities

    statements = sorted(
        (n for n in ast.walk(forward) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and n.value is not None),
        key=lambda n: (n.lineno, n.col_offset),
    )
    probabilities: set[str] = set()
    for statement in statements:
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) and is_probability(statement.value):
            bound = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            probabilities.update(t.id for t in bound if isinstance(t, ast.Name))
    targets, log_probs = set(parameters[1:]), set()
    for statement in statements:
        names = [t.id for t in (statement.targets if isinstance(statement, ast.Assign) else [statement.target]) if isinstance(t, ast.Name)]
        mentioned = {n.id for n in ast.walk(statement.value) if isinstance(n, ast.Name)}
        if any(is_log_softmax(n) for n in ast.walk(statement.value)) or mentioned & log_probs and _keeps_log_probability(statement.value):
            log_probs.update(names)
        elif mentioned & targets and not mentioned & log_probs:
            targets.update(n for n in names if n != parameters[0])  # ``x = x[mask]`` stays the scores
    targets -= log_probs | {parameters[0]}
    if not log_probs and not any(is_log_softmax(n) for n in ast.walk(forward)):
        line = _picked_probability_line(forward, parameters[0], targets, is_probability, qualified)
        return LossClass(cls, PROBABILITY_PICK, line, False, _is_focal(cls, forward)) if line else None

    def log_probability(node: ast.AST) -> bool:
        return any(is_log_softmax(n) or (isinstance(n, ast.Name) and n.id in log_probs) for n in ast.walk(node))

    def per_class_log_probability(node: ast.AST) -> bool:
        """``log_p``, ``-F.log_softmax(x, 1)``, ``log_p.neg_()``: still one value per class (not a sum)."""
        while True:
            if isinstance(node, ast.UnaryOp):
                node = node.operand
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _PER_CLASS_METHODS:
                node = node.func.value
            else:
                break
        return is_log_softmax(node) or isinstance(node, ast.Name) and node.id in log_probs

    def target(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and n.id in targets for n in ast.walk(node))

    found: list[tuple[int, str]] = []
    for node in ast.walk(forward):
        if isinstance(node, ast.Call):
            name = qualified(node.func)
            if (name in _KL or calls_layer(node, _KL_MODULES)) and len(node.args) >= 2:
                if log_probability(node.args[0]) and any(is_softmax(n) or isinstance(n, ast.Name) for n in ast.walk(node.args[1])):
                    if any(is_softmax(n) for n in ast.walk(forward)):
                        found.append((node.lineno, DISTILLATION))
            elif (name in _NLL or calls_layer(node, _NLL_MODULES)) and len(node.args) >= 2:
                if log_probability(node.args[0]) and target(node.args[1]):
                    found.append((node.lineno, NLL))
            elif isinstance(node.func, ast.Attribute) and node.func.attr in ("mul", "mul_") and node.args:
                if per_class_log_probability(node.func.value) and target(node.args[0]):
                    found.append((node.lineno, SOFT_TARGET))
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "gather" and len(node.args) >= 2:
                if log_probability(node.func.value) and target(node.args[1]):
                    found.append((node.lineno, PICK))
            elif (name in _ONE_HOT or isinstance(node.func, ast.Attribute) and node.func.attr in ("scatter", "scatter_")) and node.args:
                index = node.args[0] if name in _ONE_HOT else node.args[1] if len(node.args) > 1 else None
                if index is not None and target(index):
                    found.append((node.lineno, ONE_HOT_TARGET))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for scores, other in ((node.left, node.right), (node.right, node.left)):
                if per_class_log_probability(scores) and not log_probability(other) and target(other):
                    found.append((node.lineno, SOFT_TARGET))
                    break
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2:
            if log_probability(node.value) and target(node.slice.elts[1]):
                found.append((node.lineno, PICK))
    if not found:
        return None
    line, kind = min(found)
    if kind == ONE_HOT_TARGET:
        product = [f for f in found if f[1] != ONE_HOT_TARGET]
        line, kind = min(product) if product else (line, kind)
    text = _without_docstrings(cls).lower()
    smoothing = "smooth" in text or any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("mean", "sum")
        and log_probability(n.func.value) and not target(n.func.value) and _class_dim(n)
        for n in ast.walk(forward)
    )
    return LossClass(cls, kind, line, smoothing, _is_focal(cls, forward))


def _is_focal(cls: ast.ClassDef, forward: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return "gamma" in _without_docstrings(cls).lower() and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) for n in ast.walk(forward))


def _picked_probability_line(
    forward: ast.FunctionDef | ast.AsyncFunctionDef,
    scores: str,
    targets: set[str],
    is_probability: Callable[[ast.AST], bool],
    qualified: Callable[[ast.AST], str],
) -> int:
    """The line where ``forward`` multiplies a softmax over the classes by a one-hot of its class
    index argument (``mask.scatter_(1, targets.view(-1, 1), 1.)`` then ``(p * mask).sum(1)``, or
    ``p * F.one_hot(targets, C)``): the labelled class's probability, one label per image; 0 where none.
    ``F.softmax(inputs)`` of the scores with no ``dim`` counts: torch's implicit dim of a
    ``[B, C]`` (or ``[B, C, H, W]``) input is the class axis, which the mask's ``scatter_`` on dim 1 confirms."""

    def implicit_softmax(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "softmax"
            and not node.keywords and len(node.args) == 1 and isinstance(node.args[0], ast.Name) and node.args[0].id == scores
        )

    implicit = {
        node.targets[0].id for node in ast.walk(forward)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and implicit_softmax(node.value)
    }

    def probability(node: ast.AST) -> bool:
        return is_probability(node) or implicit_softmax(node) or isinstance(node, ast.Name) and node.id in implicit

    one_hots = {
        node.func.value.id for node in ast.walk(forward)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "scatter_"
        and isinstance(node.func.value, ast.Name) and len(node.args) > 1 and _mentions(node.args[1], targets)
    }

    def one_hot(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in one_hots
        return isinstance(node, ast.Call) and qualified(node.func) in _ONE_HOT and bool(node.args) and _mentions(node.args[0], targets)

    for node in ast.walk(forward):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and one_hot(node.value):
            one_hots.add(node.targets[0].id)
    lines = [
        node.lineno for node in ast.walk(forward)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)
        and any(probability(a) and one_hot(b) for a, b in ((node.left, node.right), (node.right, node.left)))
    ]
    return min(lines, default=0)


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def _without_docstrings(cls: ast.ClassDef) -> str:
    """The class's code without its docstrings: "smoothly adjusts" in a focal loss's documentation
    is no label smoothing."""
    copy = copy_module.deepcopy(cls)
    for node in (copy, *(n for n in ast.walk(copy) if isinstance(n, _FUNCTIONS))):
        if len(node.body) > 1 and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str):
            node.body = node.body[1:]
    return ast.unparse(copy)


def _extension_loss(cls: ast.ClassDef, forward: ast.FunctionDef | ast.AsyncFunctionDef, qualified: Callable[[ast.AST], str]) -> LossClass | None:
    """``class LSRCrossEntropyFunctionV3(torch.autograd.Function)`` whose ``forward`` hands its
    arguments to a compiled extension (``lsr_cpp.lsr_forward(logits, labels, ...)``): the body
    cannot be read, so the name, a softmax cross-entropy and not a per-label one, says what it is."""
    if not _CROSS_ENTROPY_NAME.search(cls.name) or _PER_LABEL_NAME.search(cls.name):
        return None
    if not any(qualified(base).endswith(("autograd.Function", "function.Function")) for base in cls.bases):
        return None
    parameters = {a.arg for a in forward.args.args[1:]}
    for node in ast.walk(forward):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            root = qualified(node.func).partition(".")[0]
            given = {n.id for argument in node.args for n in ast.walk(argument) if isinstance(n, ast.Name)}
            if root and root not in _VISIBLE_ROOTS and isinstance(node.func.value, ast.Name) and len(given & parameters) >= 2:
                return LossClass(cls, EXTENSION, node.lineno)
    return None


def _keeps_log_probability(value: ast.AST) -> bool:
    """``log_p = log_p[mask]``, ``log_preds.view(-1, C)``: still the log-probabilities (not a sum of them)."""
    return isinstance(value, (ast.Subscript, ast.Name)) or (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
        and value.func.attr in ("view", "reshape", "contiguous", "float", "permute", "transpose", "squeeze", "unsqueeze")
    )


def _class_dim(call: ast.Call) -> bool:
    dims = [ast.unparse(k.value) for k in call.keywords if k.arg in ("dim", "axis")] + [ast.unparse(a) for a in call.args[:1]]
    return bool(dims) and dims[0] in _CLASS_DIMS


def _module_root(node: ast.AST, qualified: Callable[[ast.AST], str]) -> bool:
    """``scipy.special`` of ``scipy.special.log_softmax``: a library, not a tensor."""
    return qualified(node).partition(".")[0] in ("scipy", "numpy", "jax", "tensorflow")


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
