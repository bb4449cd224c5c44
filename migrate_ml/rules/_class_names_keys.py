"""ML106's lookup keys: whether a key is the label map being built, a reference label compared with a
prediction, a configured class (a parameter's default, a value with no call, a module constant) or a
class name looked up for its index while walking the list the map was enumerated from.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._class_names_loops import _names_in
from migrate_ml.rules._exprs import cst_walk


class LookupKeys:
    """Mixin for ML106: what the key of a class-name lookup is, when it is not a predicted index."""

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node
        self._equalities: list[tuple[cst.Name, cst.BaseExpression]] | None = None
        """``a == b`` / ``a != b`` between a name and another expression, both ways round, in no
        particular order; found by a walk of the whole module when first asked for (most files
        never ask)."""

    def _module_equalities(self) -> list[tuple[cst.Name, cst.BaseExpression]]:
        if self._equalities is None:
            self._equalities = []
            for comparison in cst_walk(self._module):
                if not isinstance(comparison, cst.Comparison):
                    continue
                if len(comparison.comparisons) != 1 or not isinstance(comparison.comparisons[0].operator, (cst.Equal, cst.NotEqual)):
                    continue
                left, right = comparison.left, comparison.comparisons[0].comparator
                self._equalities.extend((a, b) for a, b in ((left, right), (right, left)) if isinstance(a, cst.Name))
        return self._equalities

    def _tested_against_prediction(self, key: cst.Name) -> bool:
        """``key`` is compared with a prediction in its own scope (``is_correct = ans == pred``):
        it is the reference label a prediction is scored against, not a prediction."""
        scope = self.get_metadata(ScopeProvider, key, None)
        for name, other in self._module_equalities():
            root = _root(other)
            predicted = (isinstance(root, cst.Name) and root.value.lower().startswith("pred")) or "argmax" in _names_in(other)
            if name.value == key.value and predicted and self.get_metadata(ScopeProvider, name, None) is scope:
                return True
        return False

    def _configured(self, key: cst.Name) -> bool:
        """Every binding of ``key`` in its scope is a parameter with a default (``minority_idx=None``)
        or a value computed without a call or a subscript (``minority_idx = num_classes - 1``, a
        module constant ``TARGET = 3``): one class the run is told about, the same for every image,
        not a prediction, which a call (a model, an arg-max) or an item of a batch gives."""
        bindings = self._bindings(key)
        if not bindings:
            return False
        for bound in bindings:
            if isinstance(bound, cst.Param):
                if bound.default is None:
                    return False
                continue
            target = self.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
            statement = self.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
            if not (isinstance(statement, cst.Assign) and target.target is bound):
                return False
            if _calls_in(statement.value) or any(isinstance(node, cst.Subscript) for node in cst_walk(statement.value)):
                return False
        return True

    def _names_its_index(self, mapping: cst.Name, key: cst.Name) -> bool:
        """``mapping`` is built from ``enumerate(items)`` (``dict((k, v) for v, k in enumerate(items))``)
        and ``key`` walks the same ``items`` (``for cla in items``): a class name looked up for its
        class index, the single-label annotation of a folder-per-class dataset."""
        items = {self._loop_items(bound) for bound in self._bindings(key)}
        if len(items) != 1 or None in items:
            return False
        (walked,) = items
        for bound in self._bindings(mapping):
            target = self.get_metadata(ParentNodeProvider, bound, None)
            statement = self.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
            if not isinstance(statement, cst.Assign) or not any(
                isinstance(call.func, cst.Name) and call.func.value == "enumerate" and call.args
                and isinstance(call.args[0].value, cst.Name) and call.args[0].value.value == walked
                for call in _calls_in(statement.value)
            ):
                return False
        return bool(self._bindings(mapping))

    def _bindings(self, name: cst.Name) -> list[cst.CSTNode]:
        scope = self.get_metadata(ScopeProvider, name, None)
        return [getattr(a, "node", None) for a in scope[name.value]] if scope is not None else []

    def _loop_items(self, bound: cst.CSTNode | None) -> str | None:
        """The name of the list a ``for`` loop walks, where ``bound`` is that loop's whole target."""
        loop = self.get_metadata(ParentNodeProvider, bound, None) if bound is not None else None
        if isinstance(loop, (cst.For, cst.CompFor)) and loop.target is bound and isinstance(loop.iter, cst.Name):
            return loop.iter.value
        return None

    def _is_assigned(self, node: cst.CSTNode) -> bool:
        parent = self.get_metadata(ParentNodeProvider, node, None)
        while isinstance(parent, (cst.Element, cst.Tuple, cst.List, cst.StarredElement)):
            node, parent = parent, self.get_metadata(ParentNodeProvider, parent, None)
        if isinstance(parent, cst.AssignTarget) or (isinstance(parent, (cst.AnnAssign, cst.AugAssign)) and parent.target is node):
            return True
        return isinstance(parent, (cst.For, cst.CompFor)) and parent.target is node


def _root(expression: cst.BaseExpression) -> cst.BaseExpression:
    """``labels`` in ``labels[idx].item()``, ``labels[i][0]`` or ``labels.tolist()[i]``."""
    while True:
        if isinstance(expression, (cst.Subscript, cst.Attribute)):
            expression = expression.value
        elif isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
            expression = expression.func.value
        elif isinstance(expression, cst.Call) and isinstance(expression.func, cst.Name) and expression.func.value == "int" and expression.args:
            expression = expression.args[0].value
        else:
            return expression


def _calls_in(expression: cst.CSTNode) -> list[cst.Call]:
    calls = [expression] if isinstance(expression, cst.Call) else []
    return calls + [call for child in expression.children for call in _calls_in(child)]
