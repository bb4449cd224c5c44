"""Sinks on class scores picked by the label: the gathered or indexed log-probability or score of
the labelled class, and a softmax over the model's output served as the answer.
"""

from __future__ import annotations

import ast
import re

from migrate_ml.rules.semantics import sources
from migrate_ml.rules.semantics.meanings import CLASS_INDEX, LOG_PROB
from migrate_ml.rules.semantics.sinks.common import LABEL_LIKE, _argument, _is_column


class ScoreChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.sinks.core.Sinks` on class scores picked by label."""

    def _serving(self) -> bool:
        function = self.analysis.function
        return function is not None and function.name == sources.POSTPROCESS

    def _gathered_log_probability(self, node: ast.Call, gathered: ast.AST) -> None:
        """``-torch.log(y_hat.gather(1, y.view(-1, 1)))``, ``-np.log(p[range(B), y])``: the
        log-probability of one class per row, a hand-written cross-entropy."""
        if self._picks_labelled_class(gathered):
            self.report(
                node, "single-label-loss",
                "the log-probability of the labelled class of each row is read (p[range(B), y]): a hand-written "
                "cross-entropy, one label per image",
                "use nn.BCEWithLogitsLoss() on the logits with float multi-hot [B, C] targets",
            )
            return
        if not (isinstance(gathered, ast.Call) and isinstance(gathered.func, ast.Attribute) and gathered.func.attr == "gather"):
            return
        if len(gathered.args) < 2 or ast.unparse(gathered.args[0]) not in ("1", "-1"):
            return
        index = gathered.args[1]
        if not (_is_column(index) or _is_column(self.analysis.value(index).node or index)):
            return
        self.report(
            node, "single-label-loss",
            "the log-probability of one class per row is gathered (a hand-written cross-entropy): it trains "
            "one label per image",
            "use nn.BCEWithLogitsLoss() on the logits with float multi-hot [B, C] targets",
        )

    def _indexed_log_probability(self, node: ast.Subscript) -> None:
        """``log_p[torch.arange(len(x)), y]`` of ``log_p = F.log_softmax(x, dim=-1)``: the
        log-probability of the labelled class of each row (a focal loss's ``log_pt``)."""
        if self.analysis.value(node.value).meaning != LOG_PROB or not self._picks_labelled_class(node):
            return
        self.report(
            node, "single-label-loss",
            f"{ast.unparse(node)} reads the log-softmax probability of the labelled class of each row: a hand-written "
            "cross-entropy (or a focal loss built on it), one label per image",
            "use nn.BCEWithLogitsLoss() (or torchvision.ops.sigmoid_focal_loss) on the logits with float multi-hot "
            "[B, C] targets",
            self.analysis.value(node.value).line,
        )

    def _gathered_class_score(self, node: ast.Call) -> None:
        """``out.gather(dim=1, index=class_index)`` with one class index per row, as a column: the
        score of the labelled class (a likelihood, a hand-written loss built on it)."""
        dim = _argument(node, 0, ("dim",))
        index = _argument(node, 1, ("index",))
        if dim is None or index is None or ast.unparse(dim) not in ("1", "-1"):
            return
        shaped = index if _is_column(index) else self.analysis.value(index).node
        if shaped is None or not _is_column(shaped) or not (self._labels(index) or self._labels(shaped)):
            return
        self.report(
            node, "single-label-loss",
            "the score of the labelled class of each row is gathered (one class index per image): a likelihood "
            "of one true class, which a loss built on it trains as single-label",
            "score every label: nn.BCEWithLogitsLoss() on the logits with float multi-hot [B, C] targets",
        )

    def _picks_labelled_class(self, node: ast.AST) -> bool:
        """``p[range(B), y]``, ``p[torch.arange(n), labels]``: one entry per row, at its label."""
        if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2):
            return False
        rows, columns = node.slice.elts
        if isinstance(rows, ast.Name):
            rows = self._only_binding(rows.id) or rows  # ``all_rows = torch.arange(len(x))``
        if not isinstance(rows, ast.Call):
            return False
        ranged = (isinstance(rows.func, ast.Name) and rows.func.id == "range") or self.analysis.qualified(rows.func) in (
            "torch.arange", "numpy.arange"
        )
        return ranged and self._labels(columns)

    def _only_binding(self, name: str) -> ast.AST | None:
        """What the one assignment to ``name`` in this function assigns; None where it is bound
        otherwise or more than once (a loop variable, a parameter, a name rebound)."""
        function = self.analysis.function
        if function is None or name in {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}:
            return None
        bindings = [
            node for node in ast.walk(function)
            if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load)
        ]
        if len(bindings) != 1:
            return None
        statement = next(
            (s for s in ast.walk(function) if isinstance(s, ast.Assign) and s.targets == [bindings[0]]), None
        )
        return statement.value if statement is not None else None

    def _labels(self, node: ast.AST) -> bool:
        """Class labels: meant as class indices, or named as labels (``y``, ``targets``, ``class_index``)."""
        if self.analysis.value(node).meaning == CLASS_INDEX:
            return True
        root = node
        while isinstance(root, (ast.Call, ast.Attribute, ast.Subscript)):
            root = root.func.value if isinstance(root, ast.Call) and isinstance(root.func, ast.Attribute) else (
                root.func if isinstance(root, ast.Call) else root.value
            )
        name = root.id if isinstance(root, ast.Name) else ""
        return bool(LABEL_LIKE.search(name) or re.search(r"class_?(index|idx|id)", name, re.IGNORECASE))
