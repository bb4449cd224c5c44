"""``Analysis``'s meanings of expressions: names and ``self.`` attributes bound (an attribute's meaning
summed up over every method of its class), attribute reads, subscripts (table columns, rows and cells,
tuple items, one sample of a container), comprehensions, comparisons and arithmetic.
"""

from __future__ import annotations

import ast

from migrate_ml.rules.semantics import sources, tables
from migrate_ml.rules.semantics.meanings import (
    CLASS_INDEX,
    CONTAINER,
    EXP,
    INDEX_LIST,
    INT,
    LOGITS_LOSS_FN,
    NOTHING,
    ONE_HOT,
    SCORE_MEANINGS,
    SOFTMAX,
    TABLE,
    TABLE_CELL,
    TABLE_ROW,
    UNKNOWN,
    Value,
    join,
)
from migrate_ml.rules.semantics.names import qualified_name
from migrate_ml.rules.semantics.summaries_statements import _INDICES, _merge


class Values:
    """Mixin of ``Analysis``: what an expression means where the walk is, names and ``self.`` attributes bound."""

    def key(self, target: ast.AST) -> str:
        if isinstance(target, ast.Name):
            return target.id
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            return f"self.{target.attr}"
        return ""

    def bind(self, target: ast.AST, value: Value) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            items = value.items if len(value.items) == len(target.elts) else ()
            if value.meaning == TABLE_ROW:  # img_name, label = self.df.values[index]: one cell each
                items = tuple(Value(INT, value.line) for _ in target.elts)
            for position, element in enumerate(target.elts):
                self.bind(element, items[position] if items else NOTHING)
            return
        key = self.key(target)
        if not key:
            return
        self._cache.clear()
        self._run_objects.pop(key, None)
        self.env[key] = value
        if value.meaning == LOGITS_LOSS_FN:
            self.logits_loss_names.add(key.rpartition(".")[2])
        if key.startswith("self.") and self.class_name:
            attribute = (self.class_name, key[5:])
            self.attributes[attribute] = _merge(self.attributes.get(attribute), value)
            if value.meaning == ONE_HOT:
                self.one_hot_attributes.add(attribute)

    def is_bound(self, node: ast.AST) -> bool:
        """Whether the scope the walk is in binds this name (or ``self.`` attribute) itself."""
        key = self.key(node)
        return bool(key) and key in self.env

    def qualified(self, node: ast.AST) -> str:
        return qualified_name(node, self.imports)

    def is_module(self, node: ast.AST) -> bool:
        """``torch``/``np``/``F``: a module the file imports, not a value."""
        while isinstance(node, ast.Attribute):
            node = node.value
        return isinstance(node, ast.Name) and node.id in self.imports and node.id not in self.env

    def element(self, value: Value, node: ast.AST) -> Value:
        """What iterating over or indexing ``value`` gives."""
        if value.element is not None:
            return value.element
        if value.meaning == INDEX_LIST:
            return Value(CLASS_INDEX, value.line)
        if value.meaning in (CONTAINER, UNKNOWN, TABLE) or value.items:
            return NOTHING
        return Value(value.meaning, value.line, node=node)  # one sample's prediction, one row of scores

    def value(self, node: ast.AST) -> Value:
        """The meaning of ``node`` where the walk is (cached until a name is bound again: the
        sinks ask about every sub-expression of a statement)."""
        cached = self._cache.get(node)
        if cached is None:
            cached = self._cache[node] = self._value(node)
        return cached

    def _value(self, node: ast.AST) -> Value:
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Name):
            return self.env.get(node.id, NOTHING)
        if isinstance(node, ast.Attribute):
            key = self.key(node)
            if key:
                if key in self.env:
                    return self.env[key]
                stored = self.attributes.get((self.class_name, node.attr))
                if stored is not None:
                    return stored
            if sources.is_label_column(node):
                return Value(CONTAINER, line, element=Value(INT, line), node=node)
            if sources.is_table(node):
                return Value(CONTAINER, line, element=Value(TABLE_ROW, line), node=node)
            base = self.value(node.value)
            if base.meaning == TABLE_ROW:  # row.label
                return Value(INT, line, node=node) if sources.is_label_key(node.attr) else NOTHING
            if base.meaning == TABLE or sources.names_table(node.value):  # temp.label, self.df.label
                if node.attr == "values" and base.meaning == TABLE:
                    return Value(CONTAINER, line, element=Value(TABLE_ROW, line), node=node)
                return sources.table_column(node.attr, line)
            if node.attr in ("data", "T", "values"):
                return base
            if node.attr in sources.DATASET_LABELS and self.index_dataset(base):
                return sources.dataset_labels(node.attr, line)
            found = sources.attribute_value(base, node.attr, line)
            if found is not None:
                return found
            if node.attr == "indices" and len(base.items) == 2:
                return base.items[1]
            return NOTHING
        if isinstance(node, ast.Call):
            return self._call(node, line)
        if isinstance(node, ast.Subscript):
            return self._subscript(node, line)
        if isinstance(node, ast.Tuple):
            return Value(items=tuple(self.value(item) for item in node.elts), line=line, node=node)
        if isinstance(node, (ast.List, ast.Set)):
            values = [self.value(item) for item in node.elts]
            return Value(CONTAINER, line, element=values[0] if values else None, node=node)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
            self._bind_generators(node.generators)
            element = self.value(node.elt)
            meaning = tables.INDEX_LIST_OF.get(element.meaning, CONTAINER)
            return Value(meaning, line, element=element, node=node)
        if isinstance(node, ast.DictComp):
            self._bind_generators(node.generators)
            return Value(CONTAINER, line, element=self.value(node.value), node=node)
        if isinstance(node, ast.Compare):
            left = self.value(node.left)
            for comparator in node.comparators:
                self.value(comparator)
            if all(isinstance(op, (ast.Gt, ast.GtE)) for op in node.ops):
                result = tables.THRESHOLD_OF.get(left.meaning)
                if result is not None:
                    return Value(result, line, node=node)
            return NOTHING
        if isinstance(node, ast.BinOp):
            return self._binop(node, line)
        if isinstance(node, ast.UnaryOp):
            return self.value(node.operand)
        if isinstance(node, ast.IfExp):
            self.value(node.test)
            if sources.is_int_choice(node):
                return Value(INT, line, node=node)  # label = 1 if name == "dog" else 0
            body, orelse = self.value(node.body), self.value(node.orelse)
            return Value(join(body.meaning, orelse.meaning), line)
        if isinstance(node, ast.Dict):
            if node.keys and all(isinstance(part, ast.Constant) and type(part.value) is int for part in (*node.keys, *node.values)):
                return Value(CONTAINER, line, node=node)  # {0: 0, 2: 1}: a map between class indices, perhaps
            values = [self.value(item) for item in node.values]
            meanings = {value.meaning for value in values}
            if len(meanings) == 1 and UNKNOWN not in meanings:  # {"train": criterion, "val": criterion}
                return Value(CONTAINER, line, element=values[0], node=node)
            return NOTHING
        if isinstance(node, ast.JoinedStr):
            for item in node.values:
                if isinstance(item, ast.FormattedValue):
                    self.value(item.value)
            return NOTHING
        if isinstance(node, ast.Lambda):
            return NOTHING
        return NOTHING

    def _bind_generators(self, generators: list[ast.comprehension]) -> None:
        for generator in generators:
            self.bind(generator.target, self.element(self.value(generator.iter), generator.iter))

    def _binop(self, node: ast.BinOp, line: int) -> Value:
        """Smoothing and mixing keep a target's meaning (``y1 * lam + y2 * (1 - lam)``), and so
        does scaling scores (``logits / T``)."""
        left, right = self.value(node.left), self.value(node.right)
        if isinstance(node.op, ast.Div) and left.meaning == right.meaning == EXP:
            return Value(SOFTMAX, line, node=node)  # X_exp / X_exp.sum(dim=1, keepdim=True)
        if EXP in (left.meaning, right.meaning):
            return NOTHING
        if left.meaning == right.meaning:
            return Value(left.meaning, left.line or right.line, node=node) if left.meaning != UNKNOWN else NOTHING
        known = [v for v in (left, right) if v.meaning != UNKNOWN]
        if len(known) == 1 and known[0].meaning in (*SCORE_MEANINGS, ONE_HOT) and not isinstance(node.op, ast.MatMult):
            return Value(known[0].meaning, known[0].line, node=node)
        if len(known) == 1 and known[0].meaning in _INDICES and isinstance(node.op, ast.Mult):
            return Value(known[0].meaning, known[0].line, node=node)  # rate * target: class indices mixed
        if len(known) == 1 and known[0].meaning in _INDICES and isinstance(node.op, (ast.Add, ast.Sub)) and any(
            isinstance(side, ast.Constant) and type(side.value) is int for side in (node.left, node.right)
        ):
            return Value(known[0].meaning, known[0].line, node=node)  # label - 1: 1-based class ids made 0-based
        return NOTHING

    def _subscript(self, node: ast.Subscript, line: int) -> Value:
        base = self.value(node.value)
        self.value(node.slice)
        index = node.slice
        if sources.is_table_column(node) or sources.is_pickled_labels(node):
            return Value(CONTAINER, line, element=Value(INT, line), node=node)
        if sources.is_table_cell(node):
            return Value(INT, line, node=node)
        if sources.is_table_row(node):
            return Value(TABLE_ROW, line, node=node)
        if base.meaning == UNKNOWN and not isinstance(index, (ast.Slice, ast.Tuple)) and self._column_read(node.value):
            return Value(TABLE_CELL, line, node=node)  # self.df["breed_id"][idx]
        if base.meaning == TABLE_ROW:  # row["label"], self.df.iloc[i]["label"]
            key = index.value if isinstance(index, ast.Constant) else None
            return Value(INT, line, node=node) if sources.is_label_key(key) else NOTHING
        if isinstance(index, ast.Constant) and isinstance(index.value, str) and (
            base.meaning == TABLE or sources.names_table(node.value)
        ):
            return sources.table_column(index.value, line)  # self.df["label"]: one cell per row
        if isinstance(index, ast.Constant) and isinstance(index.value, str) and not base.items:
            named = sources.key_value(index.value, line)
            if named is not None:
                return named
        named = sources.class_name_of(node.value, self.value(index), line)
        if named is not None:
            return named
        if base.items and isinstance(index, ast.Constant) and isinstance(index.value, int):
            if -len(base.items) <= index.value < len(base.items):
                return base.items[index.value]
            return NOTHING
        if base.element is not None and not isinstance(index, ast.Slice):
            return base.element
        if base.meaning == CONTAINER:
            return base if isinstance(index, ast.Slice) else NOTHING
        key = self.key(node.value) or (node.value.id if isinstance(node.value, ast.Name) else "")
        found = sources.subscript_source(key, line) if key else None
        if found is not None:
            return found
        if base.meaning != UNKNOWN and not base.items:
            return Value(base.meaning, base.line, node=node)  # a slice of predictions, one sample's row
        return NOTHING

    def _column_read(self, node: ast.AST) -> bool:
        """``self.df["breed_id"]``: a column of a pandas table read by name (not an input column)."""
        return (
            isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)
            and not sources.NOT_LABEL_COLUMN.search(node.slice.value)
            and (self.value(node.value).meaning == TABLE or sources.names_table(node.value))
        )

    def index_dataset(self, value: Value) -> str:
        """The class-index dataset ``value`` was built as (``datasets.ImageFolder``, a class of the
        file built on one); "" when it was not."""
        built = value.node
        if not (value.meaning == CONTAINER and isinstance(built, ast.Call)):
            return ""
        if isinstance(built.func, ast.Name) and built.func.id in self.index_datasets:
            return built.func.id
        qualified = self.qualified(built.func)
        return qualified.rpartition(".")[2] if qualified in tables.INDEX_DATASET_CALLS else ""
