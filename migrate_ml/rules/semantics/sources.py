"""Where meanings come from: models, datasets, Hugging Face predictions, class-index maps.

Also the first check on a source itself: a dataset's ``__getitem__`` that returns a class index
(a Python ``int``, a list of indices, a one-hot of one) as the label.
"""

from __future__ import annotations

import ast
import functools
import re

from migrate_ml.rules._prefilter import nodes_of
from migrate_ml.rules.semantics.meanings import (
    ARGMAX,
    CLASS_INDEX,
    CONTAINER,
    INDEX_LIST,
    INT,
    LOGITS,
    NOTHING,
    ONE_HOT,
    PREDICTED_NAME,
    SCORES,
    SOFTMAX,
    TABLE_CELL,
    Value,
)

MODEL_CALLEE = re.compile(
    r"(^|_)(model|net|classifier|backbone|vit|teacher|student|ema|encoder|pl_module)(_|$|\d)", re.IGNORECASE
)
"""Callables whose result is a model's output (``model(x)``, ``pl_module(imgs)``, ``self.net(x)``)."""
CLASS_INDEX_MAP = re.compile(r"(class|label|cat\w*|cls)e?s?_?(to|2)_?(idx|id|ids|index|num)$", re.IGNORECASE)
"""``class_to_idx[name]``, ``label2id[name]``: one class index."""
CLASS_LIST = re.compile(r"^(self\.)?(classes|class_?names|labels|label_?names|categories|cats|class_?list|folders)$")
"""What an ``enumerate`` over gives class indices (``for idx, name in enumerate(self.classes)``)."""
CLASS_NAME_MAP = re.compile(
    r"^(class_indict|class_indices|idx_to_class|idx2label|id2label|class_?names|classes|labels_map|categories"
    r"|imagenet_classes|class_dict|label_names)$"
)
"""The maps from a class index to its name: ``id2label[idx]``, ``class_names[pred]``."""
LABEL_RETURNED = re.compile(r"^(y|label|labels|target|targets|cls|class_id|class_idx|label_idx|label_id|lbl|category)$")
POSTPROCESS = "postprocess"
"""A serving handler's hook (TorchServe's ``BaseHandler.postprocess(data)``): it receives the
model's output for a batch and turns it into the response."""
METRICS_FUNCTION = re.compile(r"compute_metrics|metric", re.IGNORECASE)
"""Hugging Face ``compute_metrics(eval_pred)``: the predictions are the model's raw logits."""
TARGET_TRANSFORMS = frozenset({"target_transform"})
"""A dataset's optional transform of its label (torchvision's ``target_transform``, ``None`` by
default): ``self.target_transform(label)`` is read as the label it is given, what the dataset
returns when none is passed."""
_LABEL_KEYS = frozenset({"label", "labels", "target", "targets", "y", "class", "class_id"})


def parameter_values(function: ast.FunctionDef | ast.AsyncFunctionDef, raw_predictions: bool) -> dict[str, Value]:
    """What a function's parameters hold on entry: ``compute_metrics(eval_pred)`` gets the
    (logits, label_ids) pair of an ``EvalPrediction``, unless the file hands the Trainer a
    ``preprocess_logits_for_metrics`` (``raw_predictions`` False), which may return anything."""
    parameters = [a for a in function.args.args if a.arg not in ("self", "cls")]
    if function.name == POSTPROCESS and len(parameters) == 1:
        return {parameters[0].arg: model_output(function.lineno)}
    if not raw_predictions or not METRICS_FUNCTION.search(function.name):
        return {}
    if len(parameters) != 1:
        return {}
    line = function.lineno
    return {parameters[0].arg: Value(items=(Value(LOGITS, line), NOTHING), node=function)}


def attribute_value(base: Value, attribute: str, line: int) -> Value | None:
    """``outputs.logits``, ``eval_pred.predictions``/``label_ids``."""
    if attribute == "logits":
        return Value(LOGITS, line)
    if attribute == "predictions" and base.items:
        return base.items[0]
    if attribute == "label_ids" and len(base.items) > 1:
        return base.items[1]
    return None


def key_value(key: str, line: int) -> Value | None:
    """``outputs["logits"]``, ``outputs["softmax"]``: an entry named for the scores it holds is taken
    at its word, as ``outputs.logits`` is (a step's output dictionary handed to a callback)."""
    if key == "logits":
        return Value(LOGITS, line)
    if key == "softmax":
        return Value(SOFTMAX, line)
    return None


def is_model_callee(name: str) -> bool:
    return bool(MODEL_CALLEE.search(name))


def model_output(line: int) -> Value:
    """A model's output: logits or probabilities, depending on how the model ends."""
    return Value(SCORES, line)


def subscript_source(base_name: str, line: int) -> Value | None:
    """``self.class_to_idx[name]``: one class index."""
    if CLASS_INDEX_MAP.search(base_name.rpartition(".")[2]):
        return Value(CLASS_INDEX, line)
    return None


def class_name_of(mapping: ast.AST, index: Value, line: int) -> Value | None:
    """``model.config.id2label[pred]``, ``class_names[preds[i]]``: the name of a predicted class is
    still one class per sample, the same prediction as the arg-max it looks up."""
    name = mapping.attr if isinstance(mapping, ast.Attribute) else mapping.id if isinstance(mapping, ast.Name) else ""
    if index.meaning == ARGMAX and CLASS_NAME_MAP.match(name):
        return Value(PREDICTED_NAME, line)
    return None


STRING_METHODS = frozenset({"strip", "rstrip", "lstrip", "lower", "upper", "title", "capitalize", "replace"})
"""Methods of a string that give a string: what a list of names is built with."""


def holds_names(node: ast.AST | None) -> bool:
    """``["cat", "dog"]``, ``[name.strip() for name in text.split(",")]``: a list built of strings,
    the names an index picks one from, whatever the list is called."""
    if isinstance(node, ast.List):
        return bool(node.elts) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
    if isinstance(node, ast.ListComp):
        element = node.elt
        return (
            (isinstance(element, ast.Constant) and isinstance(element.value, str))
            or isinstance(element, ast.JoinedStr)
            or (isinstance(element, ast.Call) and isinstance(element.func, ast.Attribute) and element.func.attr in STRING_METHODS)
        )
    return False


_DATAFRAME_NAME = re.compile(r"(?:^|_)df(?:$|_)|dataframe", re.IGNORECASE)
"""How code names a pandas table whose columns it reads by name (``self.df["label"]``, ``train_df.label``)."""


def names_table(node: ast.AST) -> bool:
    """``df``, ``self.train_df``: named as a pandas table (a bare ``data`` may be a dict of batches)."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return bool(_DATAFRAME_NAME.search(name))


_SUBMISSION_NAME = re.compile(r"(?:^|_)(?:df|sub|submission|dataframe)(?:$|_)", re.IGNORECASE)
"""How code names a table it writes predictions into (``test_df``, ``sample_submission``)."""


def names_submission(node: ast.AST) -> bool:
    """``test_df``, ``sample_sub``, ``sample_submission``: named as a table predictions are written to
    (an attribute set on any other object, ``self.label``, is no column)."""
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return bool(_SUBMISSION_NAME.search(name))


def table_column(key: object, line: int) -> Value:
    """``df["label"]``, ``df.label``: a table's label column, one scalar per row (a class index or
    a class name, whatever the dtype); any other column (``"path"``, a plural ``"labels"`` of
    multi-label tables) says nothing."""
    return Value(CONTAINER, line, element=Value(INT, line)) if is_label_key(key) else NOTHING


def enumerate_index(iterated: str, line: int) -> Value:
    """The index ``enumerate`` gives over a list of classes is a class index; over anything else
    (a loader, a list of files) it says nothing."""
    return Value(CLASS_INDEX, line) if CLASS_LIST.match(iterated) else NOTHING


def index_lookup(receiver: str, line: int) -> Value | None:
    """``self.classes.index(name)``: one class index."""
    return Value(CLASS_INDEX, line) if CLASS_LIST.match(receiver) else None


def is_table_column(node: ast.Subscript) -> bool:
    """``data.iloc[:, 0]``: one column of a table, one value per row (a CSV's class column when a
    ``__getitem__`` returns its row's value as the label)."""
    if not (isinstance(node.value, ast.Attribute) and node.value.attr == "iloc" and isinstance(node.slice, ast.Tuple)):
        return False
    rows, *columns = node.slice.elts
    column = columns[0] if len(columns) == 1 else None
    if isinstance(column, ast.UnaryOp) and isinstance(column.op, ast.USub):
        column = column.operand
    return (
        isinstance(rows, ast.Slice) and rows.lower is None and rows.upper is None
        and isinstance(column, ast.Constant) and type(column.value) is int
    )


_LABEL_COLUMN = re.compile(r"label|target|class|categor|(?:^|_)(?:index|idx)$", re.IGNORECASE)
NOT_LABEL_COLUMN = re.compile(
    r"im(?:g|age)|file|path|fold|split|patient|user|multi|hot|vec|(?:labels|targets|tags|classes|categories)$", re.IGNORECASE
)
"""Columns that are not one label per row: inputs, folds, and plural label columns (``"labels"``
holds several labels per row in multi-label tables)."""


def is_label_key(key: object) -> bool:
    """A column or row key that names one label (``"label"``, ``"class_id"``), not several."""
    return isinstance(key, str) and bool(_LABEL_COLUMN.search(key)) and not NOT_LABEL_COLUMN.search(key)


_TABLE_CELL = frozenset({"loc", "iloc", "at", "iat"})
_TABLE_ROW = frozenset({"loc", "iloc"})


_PICKLED_LABELS = re.compile(r"^(?:(?:fine|coarse)_)?labels$")


def is_pickled_labels(node: ast.Subscript) -> bool:
    """``batch[b"labels"]``, ``meta["fine_labels"]``: the class-index list of a CIFAR pickle batch
    (a dict read with ``pickle.load(f, encoding="bytes")``), one class index per image. A plain
    ``"labels"`` string key is left out: datasets keep multi-hot rows under it too."""
    key = node.slice
    if not isinstance(key, ast.Constant):
        return False
    if isinstance(key.value, bytes):
        return bool(_PICKLED_LABELS.match(key.value.decode("latin-1")))
    return isinstance(key.value, str) and key.value in ("fine_labels", "coarse_labels")


def is_table_cell(node: ast.Subscript) -> bool:
    """``df.iloc[i, 1]``, ``df.loc[i, "label"]``, ``df.at[i, "label"]``: one cell of a table (a
    column given by position, or named as the label)."""
    if not (isinstance(node.value, ast.Attribute) and node.value.attr in _TABLE_CELL and isinstance(node.slice, ast.Tuple)):
        return False
    if len(node.slice.elts) != 2 or isinstance(node.slice.elts[0], ast.Slice):
        return False
    column = node.slice.elts[1]
    return isinstance(column, ast.Constant) and (type(column.value) is int or is_label_key(column.value))


def is_table_row(node: ast.Subscript) -> bool:
    """``df.iloc[i]``, ``self.df.loc[index]``: one row of a table."""
    return (
        isinstance(node.value, ast.Attribute) and node.value.attr in _TABLE_ROW
        and not isinstance(node.slice, (ast.Slice, ast.Tuple, ast.Constant))
    )


def is_table(node: ast.Attribute) -> bool:
    """``df.values``, ``self.train_df.values``: the rows of a DataFrame (named as one)."""
    return node.attr == "values" and isinstance(node.value, (ast.Name, ast.Attribute)) and bool(_TABLE_NAME.search(
        node.value.attr if isinstance(node.value, ast.Attribute) else node.value.id
    ))


_TABLE_NAME = re.compile(r"(?:^|_)df(?:$|_)|frame|csv|(?:^|_)(?:train|valid|val|test|data)$", re.IGNORECASE)
"""How code names a DataFrame whose ``.values`` are its rows (``df``, ``train_df``, ``self.data``)."""


def is_label_column(node: ast.Attribute) -> bool:
    """``df["cultivar_index"].values``, ``df["label"].values``, ``self.data.label.values``: the label column of a table, one
    scalar per row (a class index, whatever the dtype it is read with)."""
    if node.attr not in ("values", "array"):
        return False
    column = node.value
    if isinstance(column, ast.Attribute):  # self.data.label.values: a column read as an attribute of the table
        owner = column.value
        owner_name = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else ""
        return is_label_key(column.attr) and bool(_TABLE_NAME.search(owner_name))
    if not isinstance(column, ast.Subscript):
        return False
    key = column.slice
    return isinstance(key, ast.Constant) and is_label_key(key.value)


def is_int_choice(node: ast.IfExp) -> bool:
    """``1 if name == "dog" else 0``: one of two class indices."""
    return all(
        isinstance(branch, ast.Constant) and type(branch.value) is int for branch in (node.body, node.orelse)
    )


def int_chosen(statement: ast.If) -> str:
    """The name an ``if``/``else`` binds to a different integer in each branch, ``label =
    torch.tensor(0)`` / ``label = torch.tensor(1)`` (an ``elif`` chain too): one of the class indices,
    picked by the test ("" when it binds none)."""
    choices: dict[str, set[int]] = {}
    branches: list[list[ast.stmt]] = [statement.body]
    orelse = statement.orelse
    while len(orelse) == 1 and isinstance(orelse[0], ast.If):
        branches.append(orelse[0].body)
        orelse = orelse[0].orelse
    branches.append(orelse)
    for branch in branches:
        bound = {name: number for name, number in map(_int_bound, branch) if name}
        if not bound:
            return ""
        for name, number in bound.items():
            choices.setdefault(name, set()).add(number)
    chosen = [name for name, numbers in choices.items() if len(numbers) == len(branches)]
    return chosen[0] if len(chosen) == 1 else ""


def _int_bound(statement: ast.stmt) -> tuple[str, int]:
    """``label = 1``, ``label = torch.tensor(1)``: the name and the integer it is bound to."""
    if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name)):
        return "", 0
    value = statement.value
    if (
        isinstance(value, ast.Call) and len(value.args) == 1 and isinstance(value.func, ast.Attribute)
        and value.func.attr in ("tensor", "as_tensor") and isinstance(value.func.value, ast.Name) and value.func.value.id == "torch"
    ):
        value = value.args[0]
    if isinstance(value, ast.Constant) and type(value.value) is int:
        return statement.targets[0].id, value.value
    return "", 0


def returned_labels(returned: ast.AST, value_of) -> list[tuple[ast.AST, Value, str]]:
    """The labels of a ``__getitem__``'s return value, with the name each is returned under: the
    items after the first of a tuple or list (``image, label``), and the first one too when it is
    named as a label (``return label, image``), the label keys of a dict
    (``{"target": torch.tensor(...)}``)."""
    if isinstance(returned, (ast.Tuple, ast.List)) and len(returned.elts) >= 2:
        first = returned.elts[0]
        items = returned.elts if isinstance(first, ast.Name) and LABEL_RETURNED.match(first.id) else returned.elts[1:]
        return [(item, value_of(item), item.id if isinstance(item, ast.Name) else "") for item in items]
    if isinstance(returned, ast.Dict):
        return [
            (item, value_of(item), key.value)
            for key, item in zip(returned.keys, returned.values)
            if isinstance(key, ast.Constant) and key.value in _LABEL_KEYS
        ]
    return []


def class_index_label(name: str, value: Value) -> str:
    """Why a label returned under ``name`` is single-label ("" when it is not known to be)."""
    if value.meaning == CLASS_INDEX:
        return "a class index (one class per image)"
    if value.meaning == INDEX_LIST:
        return "a list of class indices, not a multi-hot row"
    if value.meaning == ONE_HOT:
        return "a one-hot of one class index"
    if value.meaning in (INT, TABLE_CELL) and LABEL_RETURNED.match(name):
        if isinstance(value.node, (ast.IfExp, ast.If)):  # 1 if name == "dog" else 0
            return "one number per image (a class index), not a multi-hot row"
        # A table's cell (df.iloc[i, 1], row.label) holds what the table was built with: a number or a name.
        return "one value per image (a class index or a class name), not a multi-hot row"
    return ""


def class_index_samples(line: int, built: ast.AST | None = None) -> Value:
    """A dataset of (image, class index) samples: iterating it, or a loader over it, gives them.
    ``built`` is the call that made the dataset (its ``.samples`` and ``.targets`` are known too)."""
    return Value(CONTAINER, line, element=Value(items=(NOTHING, Value(CLASS_INDEX, line)), line=line), node=built)


DATASET_LABELS = frozenset({"samples", "imgs", "targets"})
"""What a torchvision class-index dataset keeps its labels in: (path, class index) pairs, class indices."""


def reads_pair_labels(comprehension: ast.ListComp | ast.GeneratorExp | ast.SetComp, generator: ast.comprehension) -> bool:
    """Whether a comprehension over a dataset's (path, class index) pairs reads their labels:
    ``[s[1] for s in ds.samples]`` and ``[y for _, y in ds.imgs]`` do, ``[item[0] for item in
    ds.imgs]`` reads only the file paths. Anything but ``.samples``/``.imgs`` counts as read."""
    if not (isinstance(generator.iter, ast.Attribute) and generator.iter.attr in ("samples", "imgs")):
        return True
    pair = generator.target
    used = [comprehension.elt, *(test for other in comprehension.generators for test in other.ifs)]
    reads = [node for expression in used for node in ast.walk(expression) if isinstance(node, ast.Name)]
    if isinstance(pair, (ast.Tuple, ast.List)):
        label = pair.elts[-1] if len(pair.elts) == 2 else None
        return not isinstance(label, ast.Name) or any(node.id == label.id for node in reads)
    if not isinstance(pair, ast.Name):
        return True
    parents = {id(child): parent for expression in used for parent in ast.walk(expression) for child in ast.iter_child_nodes(parent)}
    return any(
        node.id == pair.id and not _path_item(parents.get(id(node)), node) for node in reads
    )


def reads_pair_label(statement: ast.stmt, read: ast.Subscript, scope: ast.AST) -> bool:
    """Whether one (path, class index) pair read as ``ds.samples[i]`` in ``statement`` has its label
    read: ``path, label = ds.samples[i]`` with ``label`` used in ``scope`` (the enclosing function,
    else the module) does; ``path, _ = ds.samples[i]`` with ``_`` never read there, and
    ``ds.samples[i][0]``, read only the file's path. Anything but ``.samples``/``.imgs`` counts as read."""
    if not (isinstance(read.value, ast.Attribute) and read.value.attr in ("samples", "imgs")):
        return True
    if any(
        isinstance(node, ast.Subscript) and node.value is read and isinstance(node.slice, ast.Constant) and node.slice.value == 0
        for node in ast.walk(statement)
    ):
        return False
    if not (isinstance(statement, ast.Assign) and statement.value is read and len(statement.targets) == 1):
        return True
    pair = statement.targets[0]
    label = pair.elts[-1] if isinstance(pair, (ast.Tuple, ast.List)) and len(pair.elts) == 2 else None
    if not isinstance(label, ast.Name):
        return True
    return any(
        isinstance(node, ast.Name) and node.id == label.id and isinstance(node.ctx, ast.Load) for node in ast.walk(scope)
    )


def _path_item(parent: ast.AST | None, pair: ast.Name) -> bool:
    """``item[0]``: the path of a (path, class index) pair."""
    return (
        isinstance(parent, ast.Subscript) and parent.value is pair
        and isinstance(parent.slice, ast.Constant) and parent.slice.value == 0
    )


def dataset_labels(attribute: str, line: int) -> Value:
    """``dataset.samples`` / ``dataset.imgs`` / ``dataset.targets`` of a class-index dataset."""
    if attribute == "targets":
        return Value(INDEX_LIST, line)
    return class_index_samples(line)


# The file's own models: their layers and the one ``forward`` returns ---------------------------

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def self_layer(node: ast.AST) -> str | None:
    """``l2`` of ``self.l2``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def last_assigned(function: ast.FunctionDef | ast.AsyncFunctionDef, name: str, until: ast.stmt) -> ast.AST | None:
    """The value last bound to ``name`` by a plain statement of ``function``'s body before ``until``."""
    value = None
    for statement in function.body:
        if statement is until:
            return value
        if isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in statement.targets):
            value = statement.value if len(statement.targets) == 1 else None
        elif any(isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store) for node in ast.walk(statement)):
            value = None  # bound in a branch, a loop or a ``with``: not one proven value
    return None


@functools.lru_cache(maxsize=8)
def class_layers(tree: ast.Module) -> dict[str, dict[str, ast.Call]]:
    """Each class's ``self.<name> = <call>`` layers (the last assignment of each name). Shared: read only."""
    layers: dict[str, dict[str, ast.Call]] = {}
    for cls in nodes_of(tree, ast.ClassDef):
        own = layers.setdefault(cls.name, {})
        for node in ast.walk(cls):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1:
                name = self_layer(node.targets[0])
                if name is not None:
                    own[name] = node.value
    return layers


def forward_layer(cls: ast.ClassDef) -> str | None:
    """The ``self.<name>`` layer whose output the class's ``forward`` returns, where its one
    ``return`` shows it: ``return self.fc(x)``, ``return torch.sigmoid(self.head(x)).squeeze(1)``,
    ``x = self.out(x); return x``. ``None`` when it returns something else, or more than once."""
    forward = next((item for item in cls.body if isinstance(item, _FUNCTIONS) and item.name == "forward"), None)
    if forward is None:
        return None
    returns = [node for node in ast.walk(forward) if isinstance(node, ast.Return) and node.value is not None]
    if len(returns) != 1 or returns[0] not in forward.body:
        return None
    statement = returns[0]
    arguments = forward.args
    local = {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)} | {
        node.id for node in ast.walk(forward) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }
    value: ast.AST | None = statement.value
    for _ in range(32):  # each step peels one call or follows one assignment back
        if isinstance(value, ast.Name):
            assigned = [s for s in forward.body[: forward.body.index(statement)] if _binds(s, value.id)]
            if not assigned or not isinstance(assigned[-1], ast.Assign) or len(assigned[-1].targets) != 1:
                return None
            statement, value = assigned[-1], assigned[-1].value
        elif isinstance(value, ast.Call):
            func = value.func
            layer = self_layer(func)
            if layer is not None:
                return layer
            if isinstance(func, ast.Attribute) and not (isinstance(func.value, ast.Name) and func.value.id not in local):
                value = func.value  # a method of the tensor: x.view(B, -1), logits.squeeze(1)
            elif value.args:
                value = value.args[0]  # torch.sigmoid(x), torch.flatten(x, 1), F.relu(x)
            else:
                return None
        else:
            return None
    return None


def _binds(statement: ast.stmt, name: str) -> bool:
    return any(isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Store) for node in ast.walk(statement))
