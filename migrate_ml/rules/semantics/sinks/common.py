"""What several sink checks share: the :class:`Sink` record, the label-name pattern, argument and
column helpers, the walk over a statement's own expressions, and the words of the hand-written
loss reports.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from migrate_ml.rules.semantics import hand_losses


LABEL_LIKE = re.compile(r"label|target|^y(_|$)|^gt", re.IGNORECASE)

_COMPOUND_FIELDS = frozenset({"body", "orelse", "finalbody", "handlers"})


@dataclass(frozen=True)
class Sink:
    node: ast.AST
    kind: str
    message: str
    suggestion: str
    related: tuple[int, ...] = ()
    enclosing: tuple[int, ...] = ()
    """The ``def``/``class`` lines around it (also in ``related``)."""


def _unwrapped_scalar(node: ast.AST) -> ast.AST:
    """``label`` of ``int(label)`` or ``label.item()``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "int" and len(node.args) == 1:
        return node.args[0]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "item" and not node.args:
        return node.func.value
    return node


_PASS_ATTRIBUTES = frozenset({"values", "data", "numpy", "cpu", "tolist", "to_numpy"})


def _column_name(node: ast.AST) -> str:
    """What ``train_df.label.values``, ``df["label"].to_numpy()`` or ``labels.cpu()`` is named: ``label``, ``labels``."""
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _PASS_ATTRIBUTES:
            node = node.func.value
        elif isinstance(node, ast.Attribute) and node.attr in _PASS_ATTRIBUTES:
            node = node.value
        else:
            break
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return node.id if isinstance(node, ast.Name) else ""


_HAND_WRITTEN = {
    hand_losses.DIRICHLET: "a Dirichlet over the classes (lgamma/digamma of alpha summed over the class dimension)",
    hand_losses.CATEGORICAL: "a categorical cross-entropy written out, -sum(y * log(p)) with no (1 - y) * log(1 - p) term",
}
_WHY = {
    hand_losses.DIRICHLET: "an evidential loss whose classes compete for one unit of belief (fed one-hot targets), "
    "one label per image",
    hand_losses.CATEGORICAL: "it scores the probability of the one true class, one label per image",
}
_ADVICE = {
    hand_losses.DIRICHLET: "for multi-label targets give each label its own Beta/Bernoulli: nn.BCEWithLogitsLoss() on "
    "the logits with float multi-hot [B, C] targets (keep the Dirichlet only if the classes are exclusive)",
    hand_losses.CATEGORICAL: "score each label on its own: -(y * log(p) + (1 - y) * log(1 - p)) on sigmoid probabilities, "
    "or nn.BCEWithLogitsLoss() on the logits",
}


def _argument(node: ast.Call, position: int, keywords: tuple[str, ...]) -> ast.AST | None:
    if len(node.args) > position and not any(isinstance(a, ast.Starred) for a in node.args[: position + 1]):
        return node.args[position]
    return next((k.value for k in node.keywords if k.arg in keywords), None)


def _is_column(node: ast.AST) -> bool:
    """``x.view(-1, 1)``, ``x.unsqueeze(1)``, ``x[:, None]``: one index per row, as a column."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        arguments = [ast.unparse(a) for a in node.args]
        if node.func.attr in ("view", "reshape") and arguments == ["-1", "1"]:
            return True
        if node.func.attr == "unsqueeze" and arguments in (["1"], ["-1"]):
            return True
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
        return [ast.unparse(e) for e in node.slice.elts] == [":", "None"]
    return False


def _own_nodes(statement: ast.stmt):
    """The expressions of ``statement`` itself: not the statements it holds, nor nested functions."""
    stack: list[ast.AST] = []
    for name, field in ast.iter_fields(statement):
        if name in _COMPOUND_FIELDS or name in ("decorator_list", "returns", "args"):
            continue
        if isinstance(field, list):
            stack.extend(item for item in field if isinstance(item, ast.AST))
        elif isinstance(field, ast.AST):
            stack.append(field)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Lambda, ast.stmt)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))
