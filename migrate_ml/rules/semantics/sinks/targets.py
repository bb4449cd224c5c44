"""Sinks on targets built from one class index per sample: one-hot encodings (``scatter_``, rows of
an identity, the file's one-hot helpers), random or mixed class indices, label encoding, dummies,
class remaps, counts and frequencies by label, and dataset labels read as one class.
"""

from __future__ import annotations

import ast
import re

from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics import sources, tables
from migrate_ml.rules.semantics.meanings import CLASS_INDEX, CONTAINER, INDEX_LIST, INT, MULTI_HOT, ONE_HOT, TABLE, UNKNOWN
from migrate_ml.rules.semantics.sinks.common import LABEL_LIKE, _argument, _is_column, _own_nodes, _unwrapped_scalar


CLASS_INDEX_NAME = re.compile(r"^(class|label|target)_?(index|idx|ids?)$", re.IGNORECASE)
"""A tensor named as the class index of each row (``class_index``, ``label_idx``)."""

_RANDINT = frozenset({"torch.randint", "numpy.random.randint"})
_INDEX_TENSORS = frozenset({"torch.LongTensor", "torch.cuda.LongTensor"})
"""``torch.LongTensor(3).random_(5)``: an integer tensor of a given shape, filled in place with
class indices below ``random_``'s bound."""
_EYE = frozenset({"numpy.eye", "numpy.identity", "torch.eye"})

_PASS_ATTRIBUTES = frozenset({"values", "data", "numpy", "cpu", "tolist", "to_numpy"})


def _column_name(node: ast.AST) -> str:
    """What ``train_df.label.values``, ``df["label"].to_numpy()`` or ``labels.cpu()`` is named: ``label``, ``labels``."""
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _PASS_ATTRIBUTES:
            node = node.func.value
        elif isinstance(node, ast.Attribute) and node.attr in _PASS_ATTRIBUTES:
            node = node.value
        else:
            break
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return node.id if isinstance(node, ast.Name) else ""


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


class TargetChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.sinks.core.Sinks` on how targets are built."""

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

    def _dataset_labels_read(self, node: ast.AST, labels: ast.AST) -> None:
        """``[s[-1] for s in dataset.samples]``, ``dataset.targets[idx]``: the class indices a
        class-index dataset keeps, read one per image (k-NN labels, per-sample weights)."""
        if not (isinstance(labels, ast.Attribute) and labels.attr in sources.DATASET_LABELS):
            return
        dataset = self.analysis.index_dataset(self.analysis.value(labels.value))
        if not dataset:
            return
        self.report(
            node, "class-index-source",
            f"{ast.unparse(labels)} of {dataset} holds one class index per image, read here as the labels",
            "read the float multi-hot [C] labels of a multi-label dataset "
            "(migrate_ml_reference.MultiLabelCsvDataset keeps them per image)",
        )

    def _classes_from_dataset_labels(self, node: ast.Call, labels: ast.AST) -> None:
        """``n_classes = len(set(test_set.targets))``: the classes kept as the distinct class indices of
        a class-index dataset's labels (a multi-hot row per image is no hashable class)."""
        if not (isinstance(labels, ast.Attribute) and labels.attr in sources.DATASET_LABELS):
            return
        dataset = self.analysis.index_dataset(self.analysis.value(labels.value))
        if not dataset:
            return
        self.report(
            node, "class-index-source",
            f"the classes are taken as the distinct values of {ast.unparse(labels)}, one class index per image "
            f"of {dataset}",
            "with float multi-hot [N, C] labels the classes are their columns: num_classes = labels.shape[1] "
            "(or len(classes) of the multi-label dataset)",
        )

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

    def _folder_class_collected(self, statement: ast.Expr) -> None:
        """``for name in class_names: label_id = label2id[name]`` then, for each file of that class's
        folder, ``labels.append(label_id)`` (or a counter, ``label = 0`` before the loop over the class
        folders and ``label += 1`` after each): every image gets the one class of the folder it sits
        in. The label is fixed before the loop over the folder's files, so one image can never have two."""
        call = statement.value
        if not (
            isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "append"
            and len(call.args) == 1 and not call.keywords and isinstance(call.args[0], (ast.Name, ast.Subscript, ast.Call))
            and LABEL_LIKE.search(_column_name(call.func.value))
        ):
            return
        scope = self.analysis.function or self.analysis.tree
        loops = _loops_around(scope, statement)
        if len(loops) < 2:
            return
        appended = call.args[0]
        numbered = self._class_looked_up(appended, loops)
        if numbered is None and isinstance(appended, ast.Name):
            numbered = _folder_counter(scope, appended.id, loops)
        if numbered is None:
            return
        self.report(
            statement, "class-index-source",
            f"{ast.unparse(call)} gives every image of a class folder that folder's one class index (numbered at "
            f"line {numbered}): one label per image",
            "a multi-label dataset lists each image's labels (a CSV of image and label names): collect a float "
            "multi-hot [C] row per image instead, row[[label2id[name] for name in names]] = 1.0",
            numbered,
        )

    def _class_looked_up(self, appended: ast.AST, loops: list[ast.For]) -> int | None:
        """The line where ``appended`` (or the one binding of its name in the loops) looks up the class
        index of a loop's class name (``label2id[class_name]``, ``classes.index(c)``), that loop being an
        outer one of the append: the same class for every file of the inner loop."""
        lookup = appended
        if isinstance(appended, ast.Name):
            bindings = [
                node for node in ast.walk(loops[0]) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For))
                and any(t.id == appended.id for t in _bound_names(node))
            ]
            if len(bindings) != 1 or not isinstance(bindings[0], ast.Assign) or len(bindings[0].targets) != 1:
                return None
            lookup = bindings[0].value
        if isinstance(lookup, ast.Subscript):
            key = lookup.slice
            if self.analysis.value(lookup).meaning != CLASS_INDEX:
                return None
        elif isinstance(lookup, ast.Call) and isinstance(lookup.func, ast.Attribute) and lookup.func.attr == "index" and len(lookup.args) == 1:
            key = lookup.args[0]
            if not sources.CLASS_LIST.match(ast.unparse(lookup.func.value)):
                return None
        else:
            return None
        if not isinstance(key, ast.Name):
            return None
        for loop in loops[:-1]:
            if isinstance(loop.target, ast.Name) and loop.target.id == key.id:
                rebound = sum(any(t.id == key.id for t in _bound_names(node)) for node in ast.walk(loop))
                # the key changes only between class folders, not between the files of one
                return lookup.lineno if rebound == 1 and _names_folders(loop) else None
        return None

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


_FOLDER_WORDS = re.compile(r"class|dir|folder|categor|^cats?$|^cls|label", re.IGNORECASE)


def _names_folders(loop: ast.For) -> bool:
    """``for class_name in class_names``, ``for sub_dir in os.listdir(root)``: a loop over the classes
    or their folders."""
    return isinstance(loop.target, ast.Name) and bool(_FOLDER_WORDS.search(loop.target.id) or _FOLDER_WORDS.search(ast.unparse(loop.iter)))


def _bound_names(node: ast.AST) -> list[ast.Name]:
    """The names ``node`` binds (not those it reads in a target, ``table[label] = name``)."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
        targets = [node.target]
    else:
        return []
    return [leaf for target in targets for leaf in ast.walk(target) if isinstance(leaf, ast.Name) and isinstance(leaf.ctx, ast.Store)]


def _loops_around(scope: ast.AST, statement: ast.stmt) -> list[ast.For]:
    """The ``for`` loops of ``scope`` that hold ``statement``, outermost first (not those of nested functions)."""
    path: list[ast.For] = []

    def find(node: ast.AST) -> bool:
        for child in ast.iter_child_nodes(node):
            if child is statement:
                return True
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(child, ast.stmt) or isinstance(child, ast.excepthandler):
                if isinstance(child, ast.For):
                    path.append(child)
                if find(child):
                    return True
                if isinstance(child, ast.For):
                    path.pop()
        return False

    return path if find(scope) else []


def _folder_counter(scope: ast.AST, name: str, loops: list[ast.For]) -> int | None:
    """``label = 0`` before a loop over class folders and ``label += 1`` once in its body, outside the
    loop over each folder's files that collects it: a class number per folder. The line of the count."""
    for depth, loop in enumerate(loops[:-1]):
        if not _names_folders(loop):
            continue
        inner = loops[depth + 1]
        bindings = [
            node for node in ast.walk(scope) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For))
            and any(t.id == name for t in _bound_names(node))
        ]
        starts = [
            node for node in bindings if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and node.value.value == 0 and type(node.value.value) is int and node.lineno < loop.lineno
        ]
        steps = [
            node for node in bindings if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add)
            and isinstance(node.value, ast.Constant) and node.value.value == 1 and type(node.value.value) is int
        ]
        if len(starts) != 1 or len(steps) != 1 or len(bindings) != 2:
            return None
        step = steps[0]
        in_loop, in_inner = list(ast.walk(loop)), list(ast.walk(inner))
        if step in in_loop and step not in in_inner:
            return step.lineno
        return None
    return None
