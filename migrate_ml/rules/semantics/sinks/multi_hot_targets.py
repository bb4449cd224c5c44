"""Sinks on the targets a loss is given, read back as one class index per sample: what a function
gives a BCE loss as multi-hot [B, C] rows one-hot encoded, scattered or gathered on the class axis or
indexing a per-class table there, and an einops pattern with no class axis applied to a loss's targets.
"""

from __future__ import annotations

import ast

from migrate_ml.rules.semantics import tables
from migrate_ml.rules.semantics.sinks.common import _argument, _is_column, _own_nodes


_EINOPS_RESHAPES = frozenset({"einops.repeat", "einops.rearrange"})
_TARGETS = ("target", "targets", "labels", "y")
_MOVES_AND_CASTS = frozenset({"to", "cuda", "float", "long", "half", "double", "type_as"})
_ACROSS_INDICES = frozenset({"sum", "max", "amax", "any", "clamp"})
_BCE_CRITERIA = frozenset({"torch.nn.BCEWithLogitsLoss", "torch.nn.modules.loss.BCEWithLogitsLoss"})
_RESHAPES_AND_CASTS = _MOVES_AND_CASTS | {"view", "reshape", "unsqueeze", "int"}


def _moved_or_cast(target: ast.AST | None) -> str:
    """``targets`` for ``targets``, ``targets.float()`` or ``targets.to(device)``; "" for anything else."""
    while isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute) and target.func.attr in _MOVES_AND_CASTS:
        target = target.func.value
    return target.id if isinstance(target, ast.Name) else ""


def _smoothed_name(target: ast.AST | None) -> str:
    """``labels`` for :func:`_moved_or_cast` forms and their smoothing, ``labels.float() * (1 - e) + e / 2``
    (the name is the leftmost operand)."""
    while isinstance(target, ast.BinOp):
        target = target.left
    return _moved_or_cast(target)


def _index_name(index: ast.AST | None) -> str:
    """``labels`` for ``labels``, ``labels.view(-1, 1).long()``, ``labels.unsqueeze(1)``; "" for anything else."""
    while isinstance(index, ast.Call) and isinstance(index.func, ast.Attribute) and index.func.attr in _RESHAPES_AND_CASTS:
        index = index.func.value
    return index.id if isinstance(index, ast.Name) else ""


def _assigned_keys(function: ast.AST) -> set[str]:
    """The names and ``self.`` attributes ``function`` binds."""
    keys = set()
    for node in ast.walk(function):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)) else []
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, (ast.Name, ast.Attribute)) and isinstance(leaf.ctx, ast.Store):
                    keys.add(ast.unparse(leaf))
    return keys


def _is_label_pair(tree: ast.Module, indexed: ast.AST) -> bool:
    """``self.alpha = torch.tensor([alpha, 1 - alpha])``: a pair indexed by 0/1 targets weighs each
    element by whether its label is on (a binary focal alpha), which multi-hot rows keep."""
    key = ast.unparse(indexed)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(ast.unparse(t) == key for t in node.targets):
            if any(isinstance(part, (ast.List, ast.Tuple)) and len(part.elts) == 2 for part in ast.walk(node.value)):
                return True
    return False


class MultiHotTargetChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.sinks.core.Sinks` on loss targets read as
    class indices."""

    def _multi_hot_parameters(self) -> dict[str, int]:
        """The parameters of the enclosing function given as targets to a BCE loss there and never
        rebound: parameter -> line of that loss. They hold multi-hot [B, C] rows (the migrated
        loss reads them so), not one class index per sample."""
        function = self.analysis.function
        if function is None:
            return {}
        if function not in self._multi_hot_by_function:
            arguments = function.args
            parameters = {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}
            found: dict[str, int] = {}
            for call in ast.walk(function):
                # named, not asked of the walk (``analysis.value``): the loss may come after this line
                if isinstance(call, ast.Call) and (
                    self.analysis.qualified(call.func) in tables.LOGITS_LOSS_FUNCTIONS or ast.unparse(call.func) in self._bce_criteria()
                ):
                    name = _smoothed_name(_argument(call, 1, _TARGETS))
                    if name in parameters:
                        found.setdefault(name, call.lineno)
            rebound = _assigned_keys(function) if found else set()
            self._multi_hot_by_function[function] = {name: line for name, line in found.items() if name not in rebound}
        return self._multi_hot_by_function[function]

    def _bce_criteria(self) -> frozenset[str]:
        """The names and ``self.`` attributes the file binds to a ``BCEWithLogitsLoss(...)``."""
        if self._bce_criteria_keys is None:
            self._bce_criteria_keys = frozenset(
                ast.unparse(target)
                for node in ast.walk(self.analysis.tree)
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and self.analysis.qualified(node.value.func) in _BCE_CRITERIA
                for target in node.targets
            )
        return self._bce_criteria_keys

    def _multi_hot_read_as_index(self, node: ast.AST, index: ast.AST | None, how: str, suggestion: str) -> None:
        """A class-index use (``F.one_hot``, ``scatter_``/``gather`` on the class axis, indexing)
        of what this function gives a BCE loss as its multi-hot targets."""
        name = _index_name(index)
        line = self._multi_hot_parameters().get(name) if name else None
        if line is None or line == node.lineno:
            return
        self.report(
            node, "class-index-target",
            f"{ast.unparse(node)} {how} {name} as one class index per sample, but the BCE loss at line {line} takes "
            f"{name} as multi-hot [B, C] rows: on them this raises or picks the wrong values",
            suggestion.format(name=name),
            line,
        )

    def _multi_hot_call(self, node: ast.Call, method: str, qualified: str) -> None:
        if qualified == "torch.nn.functional.one_hot" and node.args:
            if self._statement is not None and any(
                isinstance(other, ast.Call) and isinstance(other.func, ast.Attribute) and other.func.value is node
                and other.func.attr in _ACROSS_INDICES for other in _own_nodes(self._statement)
            ):
                return  # F.one_hot(label_ids, C).sum(1): several label indices per row made multi-hot
            self._multi_hot_read_as_index(
                node, node.args[0], "one-hot encodes",
                "{name} already is the [B, C] rows: use {name}.float() where the one-hot is used",
            )
        elif method in ("scatter_", "scatter", "gather"):
            dim = _argument(node, 0, ("dim",))
            if dim is None or ast.unparse(dim) not in ("1", "-1"):
                return
            index = _argument(node, 1, ("index",))
            while isinstance(index, ast.Call) and isinstance(index.func, ast.Attribute) and index.func.attr in _MOVES_AND_CASTS:
                index = index.func.value
            if index is None or not _is_column(index):
                return  # scatter_(1, label_ids, 1.0): several label indices per row make a multi-hot row
            if method == "gather":
                how, suggestion = "gathers the scores at", "keep every label: use the [B, C] values weighted by {name} ((x * {name}).sum(1)) or per label"
            else:
                how, suggestion = "scatters", "{name} already is the [B, C] mask of each image's labels: use {name}.float() (or {name}.bool())"
            self._multi_hot_read_as_index(node, _argument(node, 1, ("index",)), how, suggestion)

    def _multi_hot_subscript(self, node: ast.Subscript) -> None:
        """``self.alpha[targets]``: a per-class table indexed by the loss targets."""
        table = node.value
        while isinstance(table, ast.Call) and isinstance(table.func, ast.Attribute) and table.func.attr in _MOVES_AND_CASTS:
            table = table.func.value
        if not isinstance(node.slice, (ast.Name, ast.Call)) or _index_name(node.slice) not in self._multi_hot_parameters():
            return
        if not _is_label_pair(self.analysis.tree, table):
            self._multi_hot_read_as_index(
                node, node.slice, "indexes by",
                f"weigh each label column by its class: multiply the [B, C] per-label loss (before any reduction "
                f"over the classes) by {ast.unparse(table)} itself, a [C] vector that broadcasts over the rows",
            )

    def _einops_of_targets(self, node: ast.Call) -> None:
        """``targets = repeat(targets, "b -> (b l)", l=views)``: an einops pattern that names one axis,
        applied to what this function gives a loss as its targets, reads them as one class index per
        sample; the multi-hot [B, C] targets of the migrated loss make einops raise."""
        if self.analysis.qualified(node.func) not in _EINOPS_RESHAPES or len(node.args) < 2:
            return
        pattern, subject = node.args[1], node.args[0]
        if not (isinstance(pattern, ast.Constant) and isinstance(pattern.value, str) and "->" in pattern.value):
            return
        axes = pattern.value.split("->", 1)[0].split()
        if len(axes) != 1 or not axes[0].isidentifier() or not isinstance(subject, ast.Name):
            return
        function = self.analysis.function
        if function is None or not any(
            isinstance(call, ast.Call) and self._is_loss_call(call) and _moved_or_cast(_argument(call, 1, _TARGETS)) == subject.id
            for call in ast.walk(function)
        ):
            return
        self.report(
            node, "class-index-target",
            f"{ast.unparse(node)} reads the loss targets as one class index per sample (the pattern "
            f"{pattern.value!r} has no class axis): einops raises on the [B, C] multi-hot targets",
            f"give the class axis its own name: {ast.unparse(node.func)}({subject.id}, "
            f"\"{axes[0]} c -> {pattern.value.split('->', 1)[1].strip()} c\", ...)",
        )
