"""Text tests that rules combine with their triggers before a file is parsed.

Words such as ``argmax``, ``softmax``, ``.long()`` or ``lam`` occur all over model and library
code (attention, patch selection, dtype plumbing), where no migration applies. Parsing and
resolving metadata for such a file costs about ten times its parse, so rules keyed on common
words also require one of these markers of training, evaluation or loss code.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import Callable

# The training markers: each regex is searched only when its literal occurs (``str.__contains__``
# is a fast scan; a regex without a literal prefix is tried at every position of the file).
_TRAINING_PATTERNS = (
    ("criterion", re.compile(r"\bcriterion\b")),
    ("loss_fn(", re.compile(r"\bloss_fn\(")),
    ("accuracy(", None),
    ("_step(self", None),
    ("compute_metrics", None),
    ("torchmetrics", None),
    ("predict", re.compile(r"\bpredict\b")),
    (".eval()", re.compile(r"\b(?:model|net|model_ft)\.eval\(\)")),
    ("correct", re.compile(r"\bcorrect(?:s|_\w+)?\s*\+=")),
    ("acc", re.compile(r"\bacc\d?\s*\+?=")),
)
_MODEL_CALLS = ("model(", "net(", "self(", "model_ft(")
"""``model(x)``, ``net(x)``, ``self(x)``: a call of the model, found by ``str.find`` at a word start."""


def _training_code(source: str) -> bool:
    for literal, pattern in _TRAINING_PATTERNS:
        if literal in source and (pattern is None or pattern.search(source)):
            return True
    for call in _MODEL_CALLS:
        found = source.find(call)
        while found != -1:
            if found == 0 or not (source[found - 1].isalnum() or source[found - 1] == "_"):
                return True
            found = source.find(call, found + 1)
    return False


_LOSS_WORDS = ("CrossEntropy", "cross_entropy", "BCEWithLogits", "binary_cross_entropy", "nll_loss", "NLLLoss", ".backward(")
_LOSS_NAMES = (("criterion", re.compile(r"\bcriterion\b")), ("loss_fn", re.compile(r"\bloss_fn\b")))
"""Loss words as substrings, and names that count as whole words only: each regex is searched
only where its literal occurs (a regex over a file without a match visits every position)."""


_last: dict[Callable[[str], bool], tuple[str, bool]] = {}
"""The last text each marker was searched in, and the answer: every rule asks about the same text."""


def _search(marker: Callable[[str], bool], source: str) -> bool:
    last = _last.get(marker)
    if last is not None and last[0] is source:
        return last[1]
    found = marker(source)
    _last[marker] = (source, found)
    return found


def has_training_marker(source: str) -> bool:
    """Training, evaluation or inference code: a model call, a criterion, an accuracy counter…"""
    return _search(_training_code, source)


def has_loss_marker(source: str) -> bool:
    """A loss is built, called or back-propagated somewhere in the file."""
    return _search(_loss_code, source)


def _loss_code(source: str) -> bool:
    return any(word in source for word in _LOSS_WORDS) or any(
        literal in source and pattern.search(source) is not None for literal, pattern in _LOSS_NAMES
    )


_last_tree: tuple[str, ast.Module] | None = None


def parse_once(text: str) -> ast.Module:
    """``ast.parse(text)``, once per text: the rules' syntax-tree pre-check and the safety net
    read the same file, and neither changes the tree. Raises what ``ast.parse`` raises."""
    global _last_tree
    if _last_tree is not None and _last_tree[0] is text:
        return _last_tree[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarnings about the user's code are not this run's to print
        tree = ast.parse(text)
    _last_tree = (text, tree)
    return tree


class _Walked:
    """One walk of a syntax tree, shared by every pre-check and the safety net that reads it."""

    def __init__(self, tree: ast.AST) -> None:
        self.tree = tree  # held, so that its id is not reused while this answer is cached
        self.nodes: list[ast.AST] = [tree]
        self.parents: dict[ast.AST, ast.AST] = {}
        # ast.walk's order (breadth first), with the parent links found on the way; the children
        # as ast.iter_child_nodes finds them, without its two generators per node
        append = self.nodes.append
        for node in self.nodes:
            for name in node._fields:
                try:
                    value = getattr(node, name)
                except AttributeError:
                    continue
                if isinstance(value, ast.AST):
                    self.parents[value] = node
                    append(value)
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.AST):
                            self.parents[item] = node
                            append(item)
        self.by_type: dict[tuple[type, ...], list[ast.AST]] = {}


_walked: dict[int, _Walked] = {}


def _walk_of(tree: ast.AST) -> _Walked:
    walked = _walked.get(id(tree))
    if walked is None or walked.tree is not tree:
        if len(_walked) >= 4:
            _walked.clear()  # the trees of earlier files: a run reads one file at a time
        walked = _walked[id(tree)] = _Walked(tree)
    return walked


def walk(tree: ast.AST) -> list[ast.AST]:
    """``list(ast.walk(tree))``, computed once per tree: the rules' pre-checks, the dense-prediction
    test, the docstring filter and the safety net each walked the same module again (the walk,
    not the tests on its nodes, was most of their time). The tree must not be changed."""
    return _walk_of(tree).nodes


def nodes_of(tree: ast.AST, *types: type) -> list[ast.AST]:
    """The nodes of ``tree`` that are instances of ``types``, in :func:`walk` order."""
    walked = _walk_of(tree)
    found = walked.by_type.get(types)
    if found is None:
        found = walked.by_type[types] = [node for node in walked.nodes if isinstance(node, types)]
    return found


def parent_links(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    """Each node's parent in ``tree`` (read only: it is shared)."""
    return _walk_of(tree).parents


def model_may_end_in(tree: ast.Module, function: str, layer: str) -> bool:
    """A cheap superset of "the model's output is ``function(...)``": a ``layer`` module is built
    (``nn.Softmax``), or a ``forward``/``__call__`` returns a ``function`` call, directly or
    through a name it was assigned to. Attention (``attn = q.softmax(-1)``, ``return attn @ v``)
    fails it."""
    for node in nodes_of(tree, ast.Call, ast.FunctionDef, ast.AsyncFunctionDef):
        if isinstance(node, ast.Call) and _called(node) == layer:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
            node.name.startswith("forward") or node.name == "__call__"
        ):
            returned: set[str] = set()
            bound: set[str] = set()
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None:
                    values = inner.value.elts if isinstance(inner.value, ast.Tuple) else [inner.value]
                    if any(isinstance(value, ast.Call) and _called(value) == function for value in values):
                        return True
                    returned.update(value.id for value in values if isinstance(value, ast.Name))
                elif isinstance(inner, ast.Assign) and isinstance(inner.value, ast.Call) and _called(inner.value) == function:
                    bound.update(target.id for target in inner.targets if isinstance(target, ast.Name))
            if returned & bound:
                return True
    return False


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
