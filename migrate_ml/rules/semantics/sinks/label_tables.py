"""Sinks on label tables: a label column encoded as class indices (``LabelEncoder``, a map to each
class's position, a table numbering the class names), dummies of the label, counts and frequencies by
label, splits stratified on one label, the classes counted as a label column's distinct values, the rows
of one class, class indices remapped, a table whose label column is built from collected class indices,
and a Hugging Face batch transform passing its ``"label"`` column.
"""

from __future__ import annotations

import ast
import re

from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics import sources
from migrate_ml.rules.semantics.meanings import CLASS_INDEX, CONTAINER, INDEX_LIST, INT, MULTI_HOT, ONE_HOT, TABLE, UNKNOWN
from migrate_ml.rules.semantics.sinks.common import LABEL_LIKE, _column_name, _unwrapped_scalar


def _int_to_int(mapping: ast.Dict) -> bool:
    return bool(mapping.keys) and all(
        isinstance(part, ast.Constant) and type(part.value) is int for part in (*mapping.keys, *mapping.values)
    )


def _names_to_indices(mapping: ast.Dict) -> bool:
    """``{'akiec': 0, 'bcc': 1, 'bkl': 2}``: class names numbered 0 .. K-1, one number each."""
    values = [value.value for value in mapping.values if isinstance(value, ast.Constant) and type(value.value) is int]
    return (
        len(mapping.keys) >= 2 and len(values) == len(mapping.keys)
        and all(isinstance(key, ast.Constant) and isinstance(key.value, str) for key in mapping.keys)
        and sorted(values) == list(range(len(values)))
    )


_TABLE_READERS = frozenset({"pandas.read_csv", "pandas.read_excel", "pandas.read_table", "pandas.read_parquet"})


_LABEL_TARGET = re.compile(r"label|target|^y(_|$)|class|categor", re.IGNORECASE)
_LABEL_COLUMN_KEY = re.compile(r"label|target|class|categor|(?:^|_)(?:index|idx|id)$", re.IGNORECASE)


_BATCH_TRANSFORM_SETTERS = frozenset({"with_transform", "set_transform"})
_MODEL_LABEL_KEYS = frozenset({"label", "labels"})


def transform_functions(tree: ast.Module) -> frozenset[str]:
    """The functions given to a Hugging Face dataset's ``with_transform``/``set_transform``: each
    builds the batch the model is fed, its ``"labels"`` too."""
    return frozenset(
        node.args[0].id for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _BATCH_TRANSFORM_SETTERS
        and node.args and isinstance(node.args[0], ast.Name)
    )


def _looks_up_position(body: ast.AST) -> bool:
    """``classes.index(c)``, ``class_to_idx[c]``: the position of one class name."""
    if isinstance(body, ast.Call) and isinstance(body.func, ast.Attribute) and body.func.attr == "index":
        return len(body.args) == 1
    if isinstance(body, ast.Subscript):
        return bool(sources.CLASS_INDEX_MAP.search(ast.unparse(body.value).rpartition(".")[2]))
    return False

class LabelTableChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.sinks.core.Sinks` on tables of labels and
    the class indices they encode."""

    def _label_encoding(self, node: ast.Call) -> None:
        """``y = LabelEncoder().fit_transform(df["species"])``: one class name per row encoded as
        one class index (a label, by the name it is stored under)."""
        statement = self._statement
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if not any(_LABEL_TARGET.search(ast.unparse(target)) for target in targets):
            return  # a categorical feature encoded, not the label
        self.report(
            node, "class-index-source",
            "LabelEncoder encodes one class name per row as one class index: one label per sample",
            "encode every label of a row with sklearn.preprocessing.MultiLabelBinarizer (float multi-hot [N, C])",
        )

    def _dummies_of_label(self, node: ast.Call) -> None:
        """``pd.get_dummies(df, columns=["label"])``, ``pd.get_dummies(df["label"])``: a one-hot of
        the one label of each row."""
        columns = next((k.value for k in node.keywords if k.arg == "columns"), None)
        keys: list[ast.AST] = list(columns.elts) if isinstance(columns, (ast.List, ast.Tuple)) else []
        if columns is None and node.args and isinstance(node.args[0], ast.Subscript):
            keys = [node.args[0].slice]
        named = [k.value for k in keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        if not any(_LABEL_TARGET.search(key) for key in named):
            return  # dummies of input features
        self.report(
            node, "one-hot-target",
            f"get_dummies of the label column ({', '.join(repr(k) for k in named)}) is a one-hot of one class per row",
            "read every label of a row as multi-hot columns: df['labels'].str.get_dummies(sep=' ') (space-separated names)",
        )

    def _mapped_to_class_index(self, node: ast.Call) -> None:
        """``df["cultivar_index"] = df["cultivar"].map(lambda c: classes.index(c))`` (or
        ``.map(class_to_idx)``): a label column encoded as one class index per row."""
        statement = self._statement
        if not (isinstance(statement, ast.Assign) and statement.value is node):
            return
        column = next((t.slice for t in statement.targets if isinstance(t, ast.Subscript)), None)
        if not (isinstance(column, ast.Constant) and isinstance(column.value, str) and _LABEL_COLUMN_KEY.search(column.value)):
            return
        if sources.NOT_LABEL_COLUMN.search(column.value):
            return
        mapping = node.args[0]
        encodes = (isinstance(mapping, (ast.Name, ast.Attribute)) and sources.CLASS_INDEX_MAP.search(ast.unparse(mapping).rpartition(".")[2])) or (
            isinstance(mapping, ast.Lambda) and _looks_up_position(mapping.body)
        )
        if not encodes:
            return
        self.report(
            node, "class-index-source",
            f"the column {column.value!r} is encoded as one class index per row: one label per sample",
            "keep every label of a row: multi-hot columns (df['labels'].str.get_dummies(sep=' ')) or a list of label ids",
        )

    def _counted_by_label(self, statement: ast.AugAssign, target: ast.Subscript) -> None:
        """``label_to_count[label] += 1``: a count (or sum) per class indexed by the one class of
        each sample."""
        index = _unwrapped_scalar(target.slice)
        if isinstance(index, ast.Subscript) and self.analysis.value(index).meaning == CLASS_INDEX:
            # count[train_set[i][1]] += 1: the label of a class-index dataset's sample
            self.report(
                statement, "class-index-source",
                f"{ast.unparse(target)} counts per class with the one class index of each sample",
                f"count every label of a sample: {ast.unparse(target.value)} += its float multi-hot [C] row "
                "(labels.sum(0) for a batch)",
                self.analysis.value(index).line,
            )
            return
        if not (isinstance(index, ast.Name) and sources.LABEL_RETURNED.match(index.id)):
            return
        if self.analysis.value(index).meaning in (MULTI_HOT, ONE_HOT):
            return
        scope = self.analysis.function or self.analysis.tree
        if any(isinstance(loop, (ast.For, ast.comprehension)) and isinstance(loop.target, ast.Name)
               and loop.target.id == index.id for loop in ast.walk(scope)):
            return  # for label in tags: counts[label] += 1 counts the several labels of one image
        if sum(
            isinstance(other, ast.AugAssign) and isinstance(other.target, ast.Subscript)
            and ast.unparse(_unwrapped_scalar(other.target.slice)) == index.id
            for other in ast.walk(scope)
        ) > 1:
            return  # class_correct[label] += ...; class_total[label] += 1: per-class accuracy (ML105)
        self.report(
            statement, "class-index-source",
            f"{ast.unparse(target)} counts per class with the one class index of each sample ({index.id})",
            f"count every label of a sample: {ast.unparse(target.value)} += {index.id} (a float multi-hot [C] row; "
            "labels.sum(0) for a batch)",
        )

    def _class_frequencies(self, node: ast.Call, qualified: str) -> None:
        """``np.bincount(labels)``, ``np.unique(y, return_counts=True)``: class frequencies counted
        from one class per sample (for class weights or a balanced sampler)."""
        if qualified.endswith("unique") and not any(k.arg == "return_counts" for k in node.keywords):
            return
        counted = node.args[0]
        name = _column_name(counted)
        if not (LABEL_LIKE.search(name) or self.analysis.value(counted).meaning in (CLASS_INDEX, INT)):
            return
        if self.analysis.value(counted).meaning in (MULTI_HOT, ONE_HOT):
            return
        self.report(
            node, "class-index-source",
            f"class frequencies are counted from one class index per sample ({ast.unparse(counted)})",
            "count each label over multi-hot [N, C] labels: labels.sum(0) (a sample adds to every class it has)",
        )

    def _stratified_on_one_label(self, node: ast.Call, labels: ast.AST | None) -> None:
        """``train_test_split(df, stratify=df["label"])``, ``StratifiedKFold(...).split(X, y=labels)``:
        folds balanced on one class label per sample, which has to change with the labels (StratifiedKFold
        rejects multi-hot rows; the shuffle splits stratify on label combinations). A plural column
        known by its name only (``df["labels"]``) may hold each row's label set joined into one
        string, the stratification a multi-label table can have: it is left alone, and so is a ``y``
        known by its name only in a file that builds multi-hot rows (``MultiLabelBinarizer``): the
        shuffle splits stratify on their label combinations."""
        if labels is None:
            return
        value = self.analysis.value(labels)
        element = value.element.meaning if value.element is not None else UNKNOWN
        proven = value.meaning in (CLASS_INDEX, INT, INDEX_LIST) or (value.meaning == CONTAINER and element in (CLASS_INDEX, INT))
        name = _column_name(labels)
        named = LABEL_LIKE.search(name) and not sources.NOT_LABEL_COLUMN.search(name) and not self._multi_hot_rows_built
        if not (proven or named):
            return
        self.report(
            node, "class-index-source",
            f"the split is stratified on {ast.unparse(labels)}, one class label per sample: a multi-label sample "
            "has a multi-hot row of labels to balance across the splits, not one class",
            "stratify on the multi-hot [N, C] rows: iteratively with iterstrat.ml_stratifiers.MultilabelStratifiedKFold"
            "(n_splits=...).split(X, Y) (StratifiedKFold rejects multi-hot rows), or on each row's label combination "
            "(train_test_split(..., stratify=Y) and StratifiedShuffleSplit treat each combination as one class)",
            value.line,
        )

    def _class_label_column_passed(self, statement: ast.Assign) -> None:
        """``inputs["labels"] = example_batch["label"]`` in a function a Hugging Face dataset applies
        to its batches (``dataset.with_transform(transform)``): the dataset's ``"label"`` column (a
        ``ClassLabel``, one class index per image) becomes the labels the model is trained on."""
        function = self.analysis.function
        if function is None or function.name not in self._batch_transforms or len(statement.targets) != 1:
            return
        target, value = statement.targets[0], statement.value
        if not (isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) and target.slice.value in _MODEL_LABEL_KEYS):
            return
        if not (isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant) and sources.is_label_key(value.slice.value)):
            return
        batch = value.value
        parameters = {argument.arg for argument in function.args.args}
        if not (isinstance(batch, ast.Name) and batch.id in parameters):
            return
        self.report(
            statement, "class-index-source",
            f"{ast.unparse(target)} is set from the dataset's {value.slice.value!r} column, one class index per image "
            "(a ClassLabel): the model trains on one class per image",
            "give each example a float multi-hot row of its labels (a Sequence(ClassLabel) column turned into "
            "[C] floats, 1.0 for each label) and set inputs['labels'] to those rows",
        )

    def _table_of_class_indices(self, node: ast.Call) -> None:
        """``pd.DataFrame({"filename": paths, "label": labels})`` where ``labels`` collected one integer
        per file (``labels.append(int(folder))``): the table's label column is one class index per row."""
        columns = node.args[0] if node.args else None
        if not isinstance(columns, ast.Dict):
            return
        facts = current_facts()
        if facts is not None and facts.binary_run:
            return  # one 0/1 number per file is the label of a one-output binary classifier
        for key, column in zip(columns.keys, columns.values):
            if not (isinstance(key, ast.Constant) and sources.is_label_key(key.value)):
                continue
            value = self.analysis.value(column)
            element = value.element.meaning if value.element is not None else UNKNOWN
            if not (value.meaning == INDEX_LIST or (value.meaning == CONTAINER and element in (CLASS_INDEX, INT))):
                continue
            self.report(
                node, "class-index-source",
                f"the table's {key.value!r} column is built from {ast.unparse(column)}, one class index per row "
                f"(collected at line {value.line}): one label per image",
                "keep every label of an image: one multi-hot column per class, or the label names joined into one "
                "string per row (read back with df['labels'].str.get_dummies(sep=' '))",
                value.line,
            )
            return

    def _classes_from_label_column(self, node: ast.Call, column: ast.AST) -> None:
        """``CassvaImgClassifier(arch, train.label.nunique())``: the number of classes counted as the
        distinct values of a table's label column, one class per row (in a multi-label table they are
        label combinations). A value printed is display, left alone."""
        statement = self._statement
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) and isinstance(statement.value.func, ast.Name) and statement.value.func.id == "print":
            return
        if not (isinstance(column, (ast.Attribute, ast.Subscript)) and sources.is_label_key(_column_name(column))):
            return
        if self.analysis.value(column.value).meaning != TABLE:
            return
        facts = current_facts()
        if facts is not None and facts.binary_run:
            return  # a 0/1 column of a one-output binary classifier
        self.report(
            node, "class-index-source",
            f"the number of classes is counted as the distinct values of the label column {ast.unparse(column)}, one "
            "class per row (in a multi-label table they are label combinations)",
            "count the label names themselves: len(classes), or the width of the multi-hot rows "
            "(df['labels'].str.get_dummies(sep=' ').shape[1])",
        )

    def _rows_of_one_class(self, node: ast.Subscript) -> None:
        """``train[train["label"] == class_id]``: the rows of one class picked by the table's label
        column, which holds one class per row."""
        test = node.slice
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
            return
        column = test.left
        if isinstance(column, ast.Subscript) and isinstance(column.slice, ast.Constant):
            key, table = column.slice.value, column.value
        elif isinstance(column, ast.Attribute):
            key, table = column.attr, column.value
        else:
            return
        if not (sources.is_label_key(key) and ast.dump(table) == ast.dump(node.value)):
            return
        self.report(
            node, "class-index-source",
            f"{ast.unparse(node)} picks the rows of one class by the label column {key!r}: each row holds one class",
            f"with a multi-hot label column per class pick the rows that have it: {ast.unparse(table)}[{ast.unparse(table)}[<class>] == 1]",
        )

    def _remapped_class(self, node: ast.Subscript) -> None:
        """``label_map[label]`` with ``label_map = {0: 0, 2: 1}``: class indices mapped to others."""
        base = self.analysis.value(node.value)
        if not (isinstance(base.node, ast.Dict) and _int_to_int(base.node)):
            return
        if self.analysis.value(node.slice).meaning != CLASS_INDEX:
            return
        self.report(
            node, "class-index-source",
            f"{ast.unparse(node)} maps one class index per sample to another (classes kept or merged): one label per image",
            "keep the columns of the kept classes of the multi-hot labels instead: labels[:, kept_classes]",
            base.line,
        )

    def _class_number_stored(self, node: ast.Subscript) -> None:
        """``image_label_dict[name] = ctg[image_label[i]]`` with ``ctg = {'akiec': 0, 'bcc': 1, ...}``: each
        sample's class name looked up in a table numbering the classes, and kept as its label."""
        statement = self._statement
        stored = isinstance(statement, ast.Assign) and statement.value is node and any(
            isinstance(target, ast.Subscript) for target in statement.targets
        )
        appended = (
            isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) and statement.value.args == [node]
            and isinstance(statement.value.func, ast.Attribute) and statement.value.func.attr == "append"
        )
        if not (stored or appended) or isinstance(node.slice, ast.Constant) or not isinstance(node.value, ast.Name):
            return
        tables, columns = self._class_tables(self.analysis.function or self.analysis.tree)
        table = tables.get(node.value.id)
        key = node.slice
        if table is None or not (isinstance(key, ast.Subscript) and isinstance(key.value, ast.Name) and key.value.id in columns):
            return  # a class name read from a table's column (not a word looked up in a vocabulary)
        self.report(
            node, "class-index-source",
            f"{ast.unparse(node)} numbers each sample's one class name ({node.value.id} maps the class names "
            "to 0 .. K-1) and keeps it as its label: one label per image",
            "keep every label of a sample as a float multi-hot [C] row: row[[table[name] for name in names]] = 1.0",
            table.lineno,
        )

    def _class_tables(self, scope: ast.AST) -> tuple[dict[str, ast.Dict], set[str]]:
        """The names of ``scope`` whose one binding there is a table numbering class names, and those
        bound to one column of a table read by pandas (``image_label = label_file["dx"]`` after
        ``label_file = pd.read_csv(...)``); found once per scope."""
        found = self._class_tables_by_scope.get(scope)
        if found is None:
            bindings: dict[str, list[ast.expr]] = {}
            for assignment in ast.walk(scope):
                if isinstance(assignment, ast.Assign):
                    for target in assignment.targets:
                        if isinstance(target, ast.Name):
                            bindings.setdefault(target.id, []).append(assignment.value)
            tables = {
                name: values[0] for name, values in bindings.items()
                if len(values) == 1 and isinstance(values[0], ast.Dict) and _names_to_indices(values[0])
            }
            read = {
                name for name, values in bindings.items()
                if all(isinstance(v, ast.Call) and self.analysis.qualified(v.func) in _TABLE_READERS for v in values)
            }
            columns = {
                name for name, values in bindings.items()
                if all(
                    isinstance(v, ast.Subscript) and isinstance(v.value, ast.Name) and v.value.id in read
                    and isinstance(v.slice, ast.Constant) and isinstance(v.slice.value, str) for v in values
                )
            }
            found = self._class_tables_by_scope[scope] = (tables, columns)
        return found
