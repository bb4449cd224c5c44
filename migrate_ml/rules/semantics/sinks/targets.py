"""Sinks on targets encoded from one class index per sample: one-hot rows (``scatter_`` into a row
or a mask, rows of an identity, the file's one-hot helpers and their calls, a per-class value picked by a
one-hot), and random or mixed class indices.
"""

from __future__ import annotations

import ast
import re

from migrate_ml.rules.semantics.meanings import CLASS_INDEX, CONTAINER, INT, ONE_HOT
from migrate_ml.rules.semantics.sinks.common import LABEL_LIKE, _argument, _column_name, _is_column, _own_nodes


CLASS_INDEX_NAME = re.compile(r"^(class|label|target)_?(index|idx|ids?)$", re.IGNORECASE)
"""A tensor named as the class index of each row (``class_index``, ``label_idx``)."""

_RANDINT = frozenset({"torch.randint", "numpy.random.randint"})
_INDEX_TENSORS = frozenset({"torch.LongTensor", "torch.cuda.LongTensor"})
"""``torch.LongTensor(3).random_(5)``: an integer tensor of a given shape, filled in place with
class indices below ``random_``'s bound."""
_EYE = frozenset({"numpy.eye", "numpy.identity", "torch.eye"})


class TargetChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.sinks.core.Sinks` on how targets are encoded."""

    def _one_hot_call_at(self, line: int) -> ast.Call | None:
        """The ``one_hot(y, C)`` call of the enclosing function at ``line``, if there is one."""
        function = self.analysis.function
        if function is None or not line:
            return None
        return next((
            node for node in ast.walk(function)
            if isinstance(node, ast.Call) and node.lineno == line and node.args
            and self.analysis.qualified(node.func).endswith("one_hot")
        ), None)

    def _scatter_one_hot(self, node: ast.Call) -> None:
        """``torch.full((B, C), off).scatter_(1, x.view(-1, 1), on)``: one class index per row
        becomes a one-hot row (a vendored ``one_hot``/``mixup_target``)."""
        dim, index = _argument(node, 0, ("dim",)), _argument(node, 1, ("index",))
        fill = _argument(node, 2, ("value", "src"))
        if dim is None or index is None or fill is None:
            return
        if not (isinstance(dim, (ast.Constant, ast.UnaryOp)) and ast.unparse(dim) in ("1", "-1")):
            return
        shaped = index if _is_column(index) else self.analysis.value(index).node
        if shaped is None or not _is_column(shaped):
            if not (isinstance(index, ast.Name) and CLASS_INDEX_NAME.search(index.id)):
                return  # truth.scatter_(1, class_index, 1.0): named as the class of each row
        if self._scattered_mask(node):
            self.report(
                node, "one-hot-target",
                "one class index per row is scattered into a mask of each image's class (a margin or a "
                "selection by the true class): it marks one class per image",
                "a mask of each image's labels is the multi-hot rows themselves: index = target.bool()",
            )
            return
        # the mixing clause fits where the file mixes or smooths targets (timm's vendored
        # one_hot/mixup_target), not a kNN vote or a margin built from the true class
        mixing = any(
            isinstance(other, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(w in other.name.lower() for w in ("mix", "smooth"))
            for other in ast.walk(self.analysis.tree)
        )
        self.report(
            node, "one-hot-target",
            "one class index per row is scattered into a one-hot row (a one_hot/mixup_target that encodes class "
            "indices): mixed or smoothed, the targets still hold one class per image",
            "build targets from the multi-hot [B, C] labels; mix them directly (lam * y + (1 - lam) * y.flip(0))"
            if mixing else "build the [B, C] rows from the multi-hot labels themselves (y.float()), not from one class index per row",
        )

    def _picked_by_one_hot(self, node: ast.Call, summed: ast.AST) -> None:
        """``(weights * labels_one_hot).sum(1)``: a per-class value times a one-hot of the class
        index, summed over the classes, is each sample's value at its one class (a class-balanced
        weight per sample)."""
        dims = [ast.unparse(k.value) for k in node.keywords if k.arg in ("dim", "axis")]
        dims += [ast.unparse(a) for a in (node.args[1:2] if self.analysis.qualified(node.func) == "torch.sum" else node.args[:1])]
        if not dims or dims[0] not in ("1", "-1"):
            return
        value = self.analysis.value(summed)
        product = value.node
        if value.meaning != ONE_HOT or not (isinstance(product, ast.BinOp) and isinstance(product.op, ast.Mult)):
            return
        factors = [side for side in (product.left, product.right) if self.analysis.value(side).meaning != ONE_HOT]
        encoded = self._one_hot_call_at(value.line)
        if len(factors) != 1 or encoded is None or not self._labels(encoded.args[0]):
            return  # a one-hot of an expert or a token index routes, it does not label
        self.report(
            node, "one-hot-target",
            f"{ast.unparse(factors[0])} times a one-hot of the class index (line {product.lineno}) summed over the "
            "classes picks each sample's value at its one class (a class weight per sample): one label per image",
            "keep one value per label: weights * labels.float() as a [B, C] weight (weight= of "
            "binary_cross_entropy_with_logits), not summed over the classes",
            product.lineno,
        )

    def _scattered_mask(self, node: ast.Call) -> bool:
        """The scattered tensor is a mask: made as ``uint8``/``bool`` (``torch.zeros_like(x,
        dtype=torch.uint8)``) or the condition of a ``torch.where`` in the same function."""
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        function = self.analysis.function
        if not isinstance(receiver, ast.Name) or function is None:
            return False
        for inner in ast.walk(function):
            if isinstance(inner, ast.Assign) and any(isinstance(t, ast.Name) and t.id == receiver.id for t in inner.targets):
                if isinstance(inner.value, ast.Call) and any(
                    keyword.arg == "dtype" and isinstance(keyword.value, ast.Attribute) and keyword.value.attr in ("uint8", "bool")
                    for keyword in inner.value.keywords
                ):
                    return True
            if (
                isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "where"
                and inner.args and isinstance(inner.args[0], ast.Name) and inner.args[0].id == receiver.id
            ):
                return True
        return False

    def _eye_rows(self, statement: ast.Assign) -> None:
        """``self.labels = np.eye(C)[self.labels]``: rows of the identity picked by class indices, a
        one-hot of one class per sample."""
        value = statement.value
        if not (isinstance(value, ast.Subscript) and isinstance(value.value, ast.Call)):
            return
        if self.analysis.qualified(value.value.func) not in _EYE:
            return
        picked = self.analysis.value(value.slice)
        if picked.meaning == CONTAINER and picked.element is not None:
            picked = picked.element
        if picked.meaning not in (CLASS_INDEX, INT) and not LABEL_LIKE.search(_column_name(value.slice)):
            return
        self.report(
            value, "one-hot-target",
            f"{ast.unparse(value)} picks one row of the identity per sample: a one-hot of its one class index",
            "use the float multi-hot [N, C] labels themselves (a row may hold several 1.0)",
            picked.line,
        )

    def _random_class_indices(self, statement: ast.Assign) -> None:
        """``lb = torch.randint(0, 10, (20,))``: demo or test labels drawn as one class index per
        sample (a [N] shape), where the file trains or evaluates with a loss."""
        value = statement.value
        if (
            isinstance(value, ast.Call) and len(value.args) == 1
            and self.analysis.qualified(value.func) == "torch.autograd.Variable"
        ):
            value = value.args[0]
        if not isinstance(value, ast.Call):
            return
        size = self._random_fill_size(value)
        if size is None and self.analysis.qualified(value.func) not in _RANDINT:
            return
        names = [_column_name(target) for target in statement.targets]
        if not any(LABEL_LIKE.search(name) or name in ("lb", "lbs") for name in names):
            return
        if size is None:
            size = next((k.value for k in value.keywords if k.arg == "size"), value.args[2] if len(value.args) > 2 else None)
        if not (isinstance(size, (ast.Tuple, ast.List)) and len(size.elts) == 1) or not self._has_loss:
            return
        self.report(
            value, "class-index-source",
            f"{ast.unparse(value)} draws one class index per sample as the labels: one label per image",
            f"draw multi-hot labels: (torch.rand({ast.unparse(size.elts[0])}, num_classes) > 0.5).float()",
        )

    def _random_fill_size(self, value: ast.Call) -> ast.Tuple | None:
        """``torch.LongTensor(3).random_(5)``: the shape ``(3,)`` of an integer tensor filled with
        class indices below a bound."""
        func = value.func
        if not (isinstance(func, ast.Attribute) and func.attr == "random_" and value.args):
            return None
        made = func.value
        if not (isinstance(made, ast.Call) and self.analysis.qualified(made.func) in _INDEX_TENSORS):
            return None
        if not made.args or any(isinstance(size, (ast.List, ast.Tuple, ast.Starred)) for size in made.args):
            return None  # ``torch.LongTensor([1, 2])`` holds data, not a shape
        return ast.Tuple(elts=list(made.args), ctx=ast.Load())

    def _mixed_class_indices(self, statement: ast.Assign) -> None:
        """``target = rate * target + (1 - rate) * self.labels[ix]``: mixup, FMix or CutMix written
        over class indices (a weighted sum of two class numbers is no label of either image)."""
        value = statement.value
        if not (isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add)):
            return
        terms = (value.left, value.right)
        if not all(isinstance(term, ast.BinOp) and isinstance(term.op, ast.Mult) for term in terms):
            return
        meanings = [self.analysis.value(term).meaning for term in terms]
        if not all(meaning in (CLASS_INDEX, INT) for meaning in meanings):
            return
        if not any(LABEL_LIKE.search(ast.unparse(target)) for target in statement.targets):
            return
        if any(
            isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
            and (self.analysis.class_name, node.attr) in self.analysis.one_hot_attributes
            for term in terms for node in ast.walk(term)
        ):
            # the labels mixed may be one-hot rows (FMix written for `one_hot_label=True`): a mix of
            # rows, right as it stands once they are multi-hot
            return
        self.report(
            value, "class-index-target",
            f"{ast.unparse(value)} mixes two class indices (mixup, FMix or CutMix written for one label per image): "
            "the weighted sum of two class numbers is no label of either image",
            "mix the float multi-hot [C] rows of both images with the same weight: rate * y + (1 - rate) * y_other",
            self.analysis.value(terms[0]).line,
        )

    def _one_hot_helper(self, function: ast.FunctionDef | ast.AsyncFunctionDef, returned: ast.AST) -> None:
        """``def one_hot_embedding(labels, n): return torch.eye(n)[labels]``: a helper that encodes
        the class index of each sample, given as a label-named parameter, as a one-hot row."""
        if self.analysis.value(returned).meaning != ONE_HOT:
            return
        parameters = {a.arg for a in (*function.args.posonlyargs, *function.args.args)}
        encoded = [n.id for n in ast.walk(returned) if isinstance(n, ast.Name) and n.id in parameters and LABEL_LIKE.search(n.id)]
        if not encoded:
            return
        self.report(
            returned, "one-hot-target",
            f"{function.name}() encodes the class index of each sample ({encoded[0]}) as a one-hot row: one class per image",
            f"pass the float multi-hot [B, C] labels where {function.name}() is called, not one-hot rows of one class",
        )

    def _one_hot_helper_call(self, node: ast.Call) -> None:
        """A call of a one-hot helper of this file or, in a file that builds a criterion, of another
        file of the run on labels (``y = one_hot_embedding(labels, 10)``). Elsewhere the loss call
        given the helper's one-hot reports it (``criterion(outputs, y, ...)`` of a passed-in criterion)."""
        func = node.func
        if not (isinstance(func, ast.Name) and node.args):
            return
        if self._names_a_loss and self.analysis.returns_run_one_hot(func):
            summary = self.analysis.value(node)
        else:
            summary = self.analysis.returns.get(("", func.id)) if func.id in self.analysis.defined else None
        label = node.args[0]
        if summary is None or summary.meaning != ONE_HOT or not LABEL_LIKE.search(ast.unparse(label)):
            return
        if self._is_loss_target_here(node):
            return  # the loss reports its one-hot target
        self.report(
            node, "one-hot-target",
            f"{func.id}() makes one-hot rows of the class indices {ast.unparse(label)}: one class per image",
            "use the float multi-hot [B, C] labels themselves (several 1.0 per row)",
            summary.line,
        )

    def _is_loss_target_here(self, node: ast.Call) -> bool:
        return any(
            isinstance(other, ast.Call) and other is not node and self._is_loss_call(other)
            and any(inner is node for inner in ast.walk(other))
            for other in _own_nodes(self._statement)
        ) if self._statement is not None else False
