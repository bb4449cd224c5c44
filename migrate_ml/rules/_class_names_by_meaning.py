"""ML106's by-meaning fallback: a list named otherwise but built of strings (``labels = [s.strip() for
s in text.split(',')]``, ``["cat", "dog"]``), looked up by an index the meaning analysis proves an arg-max
at the end of the module.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider

from migrate_ml.rules._prefilter import parse_once
from migrate_ml.rules.semantics import argmax_name_lookups
from migrate_ml.rules.semantics.sources import STRING_METHODS


class ByMeaningLookups:
    """Mixin for ML106: lookups of lists built of strings (``_by_meaning`` of the rule), reported where
    the meaning analysis proves the index an arg-max; the list's bindings come from ``LookupKeys``."""

    def leave_Module(self, original_node: cst.Module) -> None:
        if not self._by_meaning:
            return
        text = original_node.code
        try:
            proven = argmax_name_lookups(parse_once(text), text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return
        for node, name, index in self._by_meaning:
            if (self.get_metadata(PositionProvider, node).start.line, name, index) in proven:
                key = node.slice[0].slice.value
                self._report_predicted(node, name, key, key.args[0].value if isinstance(key, cst.Call) else key)

    def _built_of_strings(self, owner: cst.BaseExpression) -> bool:
        """``labels`` bound somewhere in its scope to a list built of strings (``[s.strip() for s in
        text.split(",")]``, ``["cat", "dog"]``): the cheap test before the meaning analysis is asked."""
        if not isinstance(owner, cst.Name):
            return False
        for bound in self._bindings(owner):
            target = self.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
            statement = self.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
            value = statement.value if isinstance(statement, cst.Assign) else None
            if isinstance(value, cst.List) and value.elements and all(isinstance(e.value, cst.SimpleString) for e in value.elements):
                return True
            if isinstance(value, cst.ListComp) and (
                isinstance(value.elt, (cst.SimpleString, cst.FormattedString))
                or (isinstance(value.elt, cst.Call) and isinstance(value.elt.func, cst.Attribute) and value.elt.func.attr.value in STRING_METHODS)
            ):
                return True
        return False
