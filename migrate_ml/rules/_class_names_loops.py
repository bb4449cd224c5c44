"""ML106's loops and comprehensions: which names walk every class (``for i in range(len(probs))``,
``{names[i]: p[i] for i in range(C)}``), the members of a set of class indices, the keys of a map walked
itself, a top-k walked, and which walk a batch's labels (``for x in classes`` after ``inputs, classes =
next(iter(loader))``); with the expression helpers the rule's other modules share.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules.semantics.sources import CLASS_NAME_MAP


class ClassLoops:
    """Mixin for ML106: the loops and comprehensions around a lookup (``_every_class``, ``_label_items``,
    ``_top_k`` of the rule)."""

    def visit_For(self, node: cst.For) -> None:
        iterator = node.iter
        walked = _names_in(iterator) & self._top_k.keys() if self._top_k else set()
        if walked:
            line = min(self._top_k[name] for name in walked)
            self._top_k |= dict.fromkeys(_bound_names(node.target), line)  # for value, index in zip(values, indices)
            self._every_class.append({})
            self._label_items.append(set())
            return
        self._every_class.append(self._walked_names(node.target, iterator))
        self._label_items.append(_bound_names(node.target) if self._is_batch_labels(iterator) else set())

    def leave_For(self, original_node: cst.For) -> None:
        self._every_class.pop()
        self._label_items.pop()

    def _enter_comprehension(self, node: cst.ListComp | cst.SetComp | cst.DictComp | cst.GeneratorExp) -> None:
        # `{class_names[i]: float(probs[0][i]) for i in range(len(class_names))}` names every class;
        # the comprehension is entered before its element, so its loops are known there.
        walked: dict[str, str | None] = {}
        labels: set[str] = set()
        loop: cst.CompFor | None = node.for_in
        while loop is not None:
            walked |= self._walked_names(loop.target, loop.iter)
            if self._is_batch_labels(loop.iter):
                labels |= _bound_names(loop.target)
            loop = loop.inner_for_in
        self._every_class.append(walked)
        self._label_items.append(labels)

    def visit_ListComp(self, node: cst.ListComp) -> None:
        self._enter_comprehension(node)

    def leave_ListComp(self, original_node: cst.ListComp) -> None:
        self._every_class.pop()
        self._label_items.pop()

    def visit_SetComp(self, node: cst.SetComp) -> None:
        self._enter_comprehension(node)

    def leave_SetComp(self, original_node: cst.SetComp) -> None:
        self._every_class.pop()
        self._label_items.pop()

    def visit_DictComp(self, node: cst.DictComp) -> None:
        self._enter_comprehension(node)

    def leave_DictComp(self, original_node: cst.DictComp) -> None:
        self._every_class.pop()
        self._label_items.pop()

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        self._enter_comprehension(node)

    def leave_GeneratorExp(self, original_node: cst.GeneratorExp) -> None:
        self._every_class.pop()
        self._label_items.pop()

    def _walked_names(self, target: cst.BaseExpression, iterator: cst.BaseExpression) -> dict[str, str | None]:
        """The names ``target`` binds that walk classes rather than images (see ``_every_class``):
        indices over every class (:func:`_index_names`), the members of a set of class indices
        (``for i in sorted(rare_cls)``, ``rare_cls = {c for c, n in counts.items() if n < k}``: each
        class once, not one per image) and the keys of a map walked itself (``for i in classes``,
        ``for i in classes.keys()``), which index that map only. A batch's labels unpacked as
        ``inputs, classes = next(iter(loader))`` are none of these (ML106/batch_labels_named)."""
        walked: dict[str, str | None] = dict.fromkeys(_index_names(target, iterator))
        if self._is_set(iterator):
            walked |= dict.fromkeys(_bound_names(target))
        keys = iterator
        if isinstance(keys, cst.Call) and isinstance(keys.func, cst.Attribute) and keys.func.attr.value == "keys" and not keys.args:
            keys = keys.func.value
        named = keys.attr.value if isinstance(keys, cst.Attribute) else getattr(keys, "value", None)
        if isinstance(named, str) and CLASS_NAME_MAP.match(named) and not self._is_batch_labels(keys):
            walked |= dict.fromkeys(_bound_names(target), _code(keys))
        return walked

    def _is_set(self, iterator: cst.BaseExpression) -> bool:
        """``rare_cls``, ``sorted(rare_cls)`` or ``list(rare_cls)`` where every binding of ``rare_cls``
        in its scope is a set (a set comprehension, ``set(...)``, a ``{...}`` display)."""
        while isinstance(iterator, cst.Call) and isinstance(iterator.func, cst.Name) and iterator.func.value in ("sorted", "list") and len(iterator.args) == 1:
            iterator = iterator.args[0].value
        if not isinstance(iterator, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, iterator, None)
        assignments = list(scope[iterator.value]) if scope is not None else []
        values = []
        for assignment in assignments:
            bound = getattr(assignment, "node", None)
            target = self.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
            statement = self.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
            if not isinstance(statement, cst.Assign) or target.target is not bound:
                return False
            values.append(statement.value)
        return bool(values) and all(
            isinstance(value, (cst.SetComp, cst.Set))
            or (isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == "set")
            for value in values
        )

    def _is_batch_labels(self, iterator: cst.BaseExpression) -> bool:
        """``classes`` bound as the second of two names unpacked from one batch: ``inputs, classes =
        next(iter(loader))`` or ``for inputs, classes in loader`` (not ``enumerate``/``zip``)."""
        if not isinstance(iterator, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, iterator, None)
        assignments = list(scope[iterator.value]) if scope is not None else []
        if not assignments:
            return False
        for assignment in assignments:
            bound = getattr(assignment, "node", None)
            element = self.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
            pair = self.get_metadata(ParentNodeProvider, element, None) if isinstance(element, cst.Element) else None
            if not (isinstance(pair, (cst.Tuple, cst.List)) and len(pair.elements) == 2 and pair.elements[1] is element):
                return False
            holder = self.get_metadata(ParentNodeProvider, pair, None)
            if isinstance(holder, cst.AssignTarget):
                statement = self.get_metadata(ParentNodeProvider, holder, None)
                value = statement.value if isinstance(statement, cst.Assign) else None
                if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == "next"):
                    return False
            elif isinstance(holder, (cst.For, cst.CompFor)) and holder.target is pair:
                if isinstance(holder.iter, cst.Call) and isinstance(holder.iter.func, cst.Name) and holder.iter.func.value in ("enumerate", "zip"):
                    return False
            else:
                return False
        return True


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _index_names(target: cst.BaseExpression, iterator: cst.BaseExpression) -> set[str]:
    """The names a loop binds to indices that walk every class: all of ``range``'s, the first of
    ``enumerate``'s (``for idx, (image, pred) in enumerate(zip(...))``: ``pred`` is an item)."""
    if not (isinstance(iterator, cst.Call) and isinstance(iterator.func, cst.Name)):
        return set()
    if iterator.func.value == "range":
        return _bound_names(target)
    if iterator.func.value == "enumerate":
        if isinstance(target, (cst.Tuple, cst.List)) and target.elements:
            return _bound_names(target.elements[0].value)
        return _bound_names(target)
    return set()


def _bound_names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return {name for element in target.elements for name in _bound_names(element.value)}
    return set()


def _names_in(expression: cst.CSTNode) -> set[str]:
    if isinstance(expression, cst.Name):
        return {expression.value}
    if isinstance(expression, cst.Attribute):
        return _names_in(expression.value)  # `indices.shape`, not the attribute name
    return {name for child in expression.children for name in _names_in(child)}
