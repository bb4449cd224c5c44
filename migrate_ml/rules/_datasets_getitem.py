"""ML101's custom datasets: a ``__getitem__`` that returns its label as an integer tensor built from a
value named as a label (or returned second, beside the input image), or as one cell of a table row.
"""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._exprs import INTEGER_DTYPES, cst_nodes_of, is_float_cast, is_integer_cast, keyword_arguments
from migrate_ml.rules.semantics.sources import NOT_LABEL_COLUMN
from migrate_ml.rules.ml111_collate_class_indices import Words


_TENSOR_BUILDERS = frozenset({"torch.tensor", "torch.as_tensor", "torch.LongTensor"})
_BUILDER_NAMES = frozenset(name.rsplit(".", 1)[1] for name in _TENSOR_BUILDERS)
_LABEL_WORD = re.compile(r"label|target|class|categor|^cls$|^ys?$", re.IGNORECASE)
"""How a dataset names the label it returns (``row.label``, ``self.targets[idx]``, ``y``)."""
_MULTI_HOT_WORD = re.compile(r"multi|hot|vec", re.IGNORECASE)
"""Names that already say the label is a multi-hot row (``multi_hot``, ``onehot``, ``label_vec``)."""
_INPUT_WORD = re.compile(r"im(?:g|age)|pic|photo|pixel|^x$|^inputs?$|feature|^data$|sample|frame|transform", re.IGNORECASE)
"""How a dataset names what it returns beside the label (``image``, ``self.transform(...)``, ``x``)."""
_GETITEM_TEXT = re.compile(r"def __getitem__[\s\S]*(?:torch\.long|int64|LongTensor|\.long\(\)|\.i?loc\[)")
_NOT_CLASS_COLUMN = re.compile(r"(?:^|_)ids?$|name|len|size|width|height|area|count|box|coord|token|^values$", re.IGNORECASE)
"""Integer columns that are not a class: ids, names, lengths, sizes, counts, boxes, tokens."""
_PANDAS_ROW = frozenset({"loc", "iloc"})
_PANDAS_CELL = frozenset({"loc", "iloc", "at", "iat"})


class GetitemReturns:
    """Mixin for ML101: does this tensor built in a ``__getitem__`` hold one class index per sample?"""

    def _scalar_cell_item(self, call: cst.Call) -> bool:
        """``torch.tensor(row.label)`` in ``__getitem__``, ``row = self.df.loc[index]`` (or
        ``df.loc[i, "label"]``, ``row["label"]``): one cell of a table row, a scalar class index
        whatever the cast after it (not a column named as multi-hot)."""
        if not call.args or not self._in_getitem(call):
            return False
        cell = call.args[0].value
        if isinstance(cell, cst.Subscript) and isinstance(cell.value, cst.Attribute) and cell.value.attr.value in _PANDAS_CELL:
            if len(cell.slice) != 2:
                return False
            column = cell.slice[1].slice
            key = column.value if isinstance(column, cst.Index) else None
            words = [key.evaluated_value] if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str) else []
        elif isinstance(cell, cst.Attribute) and isinstance(cell.value, cst.Name) and self._is_pandas_row(cell.value):
            words = [cell.attr.value]
        elif isinstance(cell, cst.Subscript) and isinstance(cell.value, cst.Name) and self._is_pandas_row(cell.value):
            key = cell.slice[0].slice.value if isinstance(cell.slice[0].slice, cst.Index) else None
            words = [key.evaluated_value] if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str) else []
        else:
            return False
        return any(_LABEL_WORD.search(w) for w in words) and not any(_MULTI_HOT_WORD.search(w) for w in words)

    def _is_pandas_row(self, name: cst.Name) -> bool:
        """``name`` is bound once in its function, to ``X.loc[i]`` / ``X.iloc[i]`` (one row)."""
        scope = self.get_metadata(ScopeProvider, name, None)
        assignments = list(scope.assignments[name.value]) if scope is not None else []
        if len(assignments) != 1:
            return False
        target = getattr(assignments[0], "node", None)
        holder = self.get_metadata(ParentNodeProvider, target, None) if target is not None else None
        statement = self.get_metadata(ParentNodeProvider, holder, None) if isinstance(holder, cst.AssignTarget) else None
        value = statement.value if isinstance(statement, cst.Assign) else None
        return (
            isinstance(value, cst.Subscript)
            and isinstance(value.value, cst.Attribute)
            and value.value.attr.value in _PANDAS_ROW
            and len(value.slice) == 1
        )

    def _returned_as(self, built: cst.Call) -> cst.CSTNode:
        """The element of ``__getitem__``'s return that carries the label built by ``built`` (through
        casts and the name it is stored under), else ``built``."""
        parent = self.get_metadata(ParentNodeProvider, built, None)
        while isinstance(parent, (cst.Attribute, cst.Call)):
            parent = self.get_metadata(ParentNodeProvider, parent, None)
        holder = parent
        if not (isinstance(holder, cst.Assign) and len(holder.targets) == 1 and isinstance(holder.targets[0].target, cst.Name)):
            return built
        bound = holder.targets[0].target
        scope = self.get_metadata(ScopeProvider, bound, None)
        for assignment in scope.assignments[bound.value] if scope is not None else ():
            for access in assignment.references:
                element = self.get_metadata(ParentNodeProvider, access.node, None)
                pair = self.get_metadata(ParentNodeProvider, element, None) if isinstance(element, cst.Element) else None
                if isinstance(pair, cst.Tuple) and isinstance(self.get_metadata(ParentNodeProvider, pair, None), cst.Return):
                    return access.node
        return built

    def _class_index_item(self, call: cst.Call, long_tensor: bool) -> bool:
        """``torch.tensor(row.label, dtype=torch.long)`` (or ``.long()``, ``torch.LongTensor([y])``)
        built inside a ``__getitem__`` from, or stored under, a label name that does not say
        multi-hot."""
        if not call.args or not self._in_getitem(call):
            return False
        collected = Words()
        call.args[0].value.visit(collected)
        dtype = keyword_arguments(call).get("dtype")
        integer = long_tensor or (dtype is not None and _is_integer_dtype(dtype.value))
        built: cst.BaseExpression = call
        parent = self.get_metadata(ParentNodeProvider, call, None)
        method = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Attribute) else None
        if isinstance(method, cst.Call) and method.func is parent and (is_integer_cast(method) or is_float_cast(method)):
            integer, built = is_integer_cast(method), method  # the cast decides: `.long()` / `.float()`
        holder = self.get_metadata(ParentNodeProvider, built, None)
        if isinstance(holder, cst.Assign):  # the name it is stored under: `onehot = torch.tensor(...)`
            for target in holder.targets:
                target.target.visit(collected)
        elif isinstance(holder, cst.DictElement):
            holder.key.visit(collected)
        words = collected.found
        if not integer or any(_MULTI_HOT_WORD.search(word) for word in words):
            return False
        return (
            any(_LABEL_WORD.search(word) for word in words)
            or self._returned_beside_input(built)
            or (self._table_column_cell(call.args[0].value) and not any(_NOT_CLASS_COLUMN.search(word) for word in words))
        )

    def _table_column_cell(self, cell: cst.BaseExpression) -> bool:
        """``self.grapheme_roots[idx]``, every ``self.grapheme_roots`` of the class being a table's
        column (``self.metadata.grapheme_root.values``): one scalar per sample whatever the column is
        named; made an integer tensor for the sample it is a class index (one per head of a
        multi-task table), unless the column names an id, a size or an input."""
        if not (
            isinstance(cell, cst.Subscript) and len(cell.slice) == 1 and isinstance(cell.slice[0].slice, cst.Index)
            and isinstance(cell.value, cst.Attribute) and isinstance(cell.value.value, cst.Name) and cell.value.value.value == "self"
        ):
            return False
        owner = self.get_metadata(ParentNodeProvider, cell, None)
        while owner is not None and not isinstance(owner, cst.ClassDef):
            owner = self.get_metadata(ParentNodeProvider, owner, None)
        if owner is None:
            return False
        attribute = cell.value.attr.value
        bound = [
            statement.value
            for statement in cst_nodes_of(owner, cst.Assign)
            for target in statement.targets
            if isinstance(target.target, cst.Attribute) and target.target.attr.value == attribute
            and isinstance(target.target.value, cst.Name) and target.target.value.value == "self"
        ]
        return bool(bound) and all(_column_read(value) for value in bound)

    def _returned_beside_input(self, built: cst.BaseExpression) -> bool:
        """``return image, torch.tensor(self.df.iloc[i, 1], dtype=torch.long)``: an unnamed integer
        tensor returned second, after the input image (not after token ids, which are integers too)."""
        element = self.get_metadata(ParentNodeProvider, built, None)
        pair = self.get_metadata(ParentNodeProvider, element, None) if isinstance(element, cst.Element) else None
        statement = self.get_metadata(ParentNodeProvider, pair, None) if isinstance(pair, cst.Tuple) else None
        if not (isinstance(statement, cst.Return) and len(pair.elements) == 2 and pair.elements[1] is element):
            return False
        first = Words()
        pair.elements[0].value.visit(first)
        return any(_INPUT_WORD.search(word) for word in first.found) and not any(_LABEL_WORD.search(word) for word in first.found)

    def _in_getitem(self, node: cst.CSTNode) -> bool:
        current = self.get_metadata(ParentNodeProvider, node, None)
        while current is not None and not isinstance(current, cst.FunctionDef):
            current = self.get_metadata(ParentNodeProvider, current, None)
        return current is not None and current.name.value == "__getitem__"


def _column_read(value: cst.BaseExpression) -> bool:
    """``table.grapheme_root.values`` or ``table["grapheme_root"].values``: one column of a pandas
    table (a bare ``.values`` attribute is pandas' own), not named as an id, a size or an input."""
    if not (isinstance(value, cst.Attribute) and value.attr.value == "values"):
        return False
    column = value.value
    if isinstance(column, cst.Attribute):
        name = column.attr.value
    elif isinstance(column, cst.Subscript) and len(column.slice) == 1 and isinstance(column.slice[0].slice, cst.Index):
        key = column.slice[0].slice.value
        name = key.evaluated_value if isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str) else ""
    else:
        return False
    return bool(name) and not _NOT_CLASS_COLUMN.search(name) and not NOT_LABEL_COLUMN.search(name)


def _is_integer_dtype(expression: cst.BaseExpression) -> bool:
    """``torch.long``, ``torch.int64``, ``np.int32``, or Python's ``int``."""
    if isinstance(expression, cst.Attribute):
        return expression.attr.value in INTEGER_DTYPES
    return isinstance(expression, cst.Name) and expression.value == "int"
