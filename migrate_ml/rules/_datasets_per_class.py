"""ML101's examples picked per class index: a loop over the classes that picks the examples whose label
equals the loop's class (``for i in range(num_classes): ... labels == i``, FixMatch's per-class labelled
split), on the text, on CPython's ``ast`` tree and on LibCST's.
"""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import ParentNodeProvider

from migrate_ml.rules._datasets_library import _last_name


_PER_CLASS_LOOP = re.compile(r"for (\w+) in range\([^)\n]*class[^)\n]*\):[\s\S]*?\b\w*label\w*\s*==\s*\1\b", re.IGNORECASE)
"""``for i in range(num_classes): ... labels == i``: examples picked per class index."""


class PerClassPicks:
    """Mixin for ML101: examples picked per class, each example in exactly one class."""

    def _picked_per_class(self, node: cst.Comparison) -> None:
        """``np.where(labels == i)`` inside ``for i in range(num_classes)``: examples picked per class,
        each example in exactly one class."""
        if len(node.comparisons) != 1 or not isinstance(node.comparisons[0].operator, cst.Equal):
            return
        left, right = node.left, node.comparisons[0].comparator
        if not (isinstance(left, cst.Name) and isinstance(right, cst.Name) and re.search("label|target", left.value, re.I)):
            return
        loop = self.get_metadata(ParentNodeProvider, node, None)
        while loop is not None and not isinstance(loop, (cst.For, cst.FunctionDef)):
            loop = self.get_metadata(ParentNodeProvider, loop, None)
        if not (isinstance(loop, cst.For) and isinstance(loop.target, cst.Name) and loop.target.value == right.value):
            return
        iterated = cst.Module([]).code_for_node(loop.iter)
        if iterated.startswith("range(") and "class" in iterated.lower():
            self.report(
                node,
                f"examples are picked per class with {left.value} == {right.value}: each holds one class index",
                suggestion=f"with multi-hot labels [N, C] pick class {right.value}'s examples with "
                f"{left.value}[:, {right.value}] == 1 (an example can belong to several classes)",
            )


def _ast_per_class_loop(loop: ast.For) -> bool:
    """``for i in range(num_classes)`` whose body compares a label name with ``i``."""
    if not (isinstance(loop.target, ast.Name) and isinstance(loop.iter, ast.Call) and _last_name(loop.iter.func) == "range"):
        return False
    if "class" not in ast.unparse(loop.iter).lower():
        return False
    return any(
        isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and "label" in node.left.id.lower()
        and any(isinstance(c, ast.Name) and c.id == loop.target.id for c in node.comparators)
        for statement in loop.body for node in ast.walk(statement)
    )
