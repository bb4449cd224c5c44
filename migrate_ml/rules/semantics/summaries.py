"""The meaning of every expression, followed through functions, methods and class attributes.

``Analysis`` walks each function's statements in order with an environment of what names and
``self.`` attributes hold. A summary round comes first: what each class stores on ``self``
(in ``__init__``, in ``on_train_batch_start``, in any method) and what each of the file's own
functions returns, so that ``self.targets`` set in one method has its meaning in
``training_step`` and ``one_hot(target, n)`` calls a helper whose result is known. The last
round hands every statement to the sinks.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from migrate_ml.rules._prefilter import module_functions
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics import sources, tables
from migrate_ml.rules.semantics.meanings import (
    ARGMAX,
    CLASS_INDEX,
    CONTAINER,
    EXP,
    INDEX_LIST,
    INT,
    LOGITS_LOSS_FN,
    MODEL,
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
from migrate_ml.rules.semantics.names import import_bindings, qualified_name
from migrate_ml.rules.semantics.single_label_values import off_the_class_axis

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_INDICES = (CLASS_INDEX, INT)


def _statements(body: list[ast.stmt]):
    """Every statement, nested ones too (imports and definitions are statements: walking the
    expressions as well would cost as much as the analysis)."""
    stack = list(body)
    while stack:
        statement = stack.pop()
        yield statement
        for field in ("body", "orelse", "finalbody"):
            stack.extend(getattr(statement, field, ()))
        for handler in getattr(statement, "handlers", ()):
            stack.extend(handler.body)
        for case in getattr(statement, "cases", ()):
            stack.extend(case.body)


def _unset_beside(statement: ast.stmt, branch: list[ast.stmt]) -> bool:
    """``target = None`` where the other branch of the ``if`` binds ``target`` to something."""
    if not (
        isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name)
        and isinstance(statement.value, ast.Constant) and statement.value.value is None
    ):
        return False
    name = statement.targets[0].id
    return any(
        isinstance(other, ast.Assign) and not (isinstance(other.value, ast.Constant) and other.value.value is None)
        and any(isinstance(target, ast.Name) and target.id == name for target in other.targets)
        for other in branch
    )


def _merge(old: Value | None, new: Value) -> Value:
    if old is None or old.meaning == UNKNOWN and not old.items and old.element is None:
        return new
    if new.meaning == UNKNOWN and not new.items and new.element is None:
        return old
    if old.meaning == CONTAINER and new.meaning == CONTAINER:
        return new if new.element is not None else old
    for first, second in ((old, new), (new, old)):
        if first.meaning == CONTAINER and first.element is not None and first.element.meaning in _INDICES and second.meaning == ONE_HOT:
            return first  # labels = df["label"].values, or np.eye(C)[labels]: one class per sample either way
    for first, second in ((old, new), (new, old)):
        if first.meaning == CONTAINER and first.element is not None and first.element.meaning == ARGMAX == second.meaning:
            return new  # self.preds.extend(p.cpu().numpy()), then self.preds = np.array(self.preds): the same predictions
    meaning = join(old.meaning, new.meaning)
    return new if meaning == new.meaning else Value(meaning, new.line)


def _joined(parts: tuple[Value, ...]) -> Value:
    """The meaning of the parts of a concatenation, an empty list a loop starts from left out
    (``preds = np.concatenate((preds, batch_preds))`` after ``preds = []``); unknown where they differ."""
    known = [part for part in parts if not (part.meaning == CONTAINER and part.element is None and not part.items)]
    if not known:
        return NOTHING
    meaning = known[0].meaning
    for part in known[1:]:
        meaning = join(meaning, part.meaning)
    return known[-1] if meaning == known[-1].meaning else Value(meaning, known[-1].line)


class Analysis:
    """What each expression of one module means."""

    def __init__(self, tree: ast.Module, text: str = "") -> None:
        self.tree = tree
        self.raw_predictions = "preprocess_logits_for_metrics" not in text
        """Hugging Face predictions are the model's logits unless a preprocessing hook changes them."""
        self.imports: dict[str, str] = {}
        self._run_imports: dict[str, str] = {}
        """``imports`` and the relative ones (``from .helpers import f``: ``helpers.f``), which only
        the run's own modules can be: the names the run's facts are looked up by."""
        self.defined: set[str] = set()
        self.modules: set[str] = set()
        """The file's own ``nn.Module`` subclasses: an instance's call is the model's output."""
        for node in _statements(tree.body):
            if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module and not node.level):
                # bound as they are met: a class met before an import resolves its bases without it
                self.imports.update(import_bindings(node))
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self._run_imports[alias.asname or alias.name] = ".".join(filter(None, (node.module, alias.name)))
            elif isinstance(node, (*_FUNCTIONS, ast.ClassDef)):
                self.defined.add(node.name)
                if isinstance(node, ast.ClassDef) and any(qualified_name(base, self.imports).endswith("nn.Module") for base in node.bases):
                    self.modules.add(node.name)
        self._run_imports.update(self.imports)
        self._init_parameters: dict[str, list[str]] = {}
        """The file's own classes -> the parameters of their ``__init__`` (``self`` left out)."""
        for node in _statements(tree.body):
            if isinstance(node, ast.ClassDef):
                for method in node.body:
                    if isinstance(method, _FUNCTIONS) and method.name == "__init__":
                        self._init_parameters[node.name] = [a.arg for a in (*method.args.posonlyargs, *method.args.args)][1:]
        self._parameters: dict[tuple[str, str], list[str]] = {
            (owner, function.name): [a.arg for a in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)
                                     if a.arg not in ("self", "cls")]
            for owner, function in module_functions(tree)
        }
        """(class or "", function) -> its parameters, ``self`` left out."""
        self._passed: dict[tuple[str, str, str], Value] = {}
        """(class or "", function, parameter) -> the arg-max predictions a call of this file passes
        it (``report(y_true, y_pred)`` after ``y_pred = logits.argmax(1)``): the helper scores them."""
        self._constructed: dict[tuple[str, str], Value] = {}
        """(class, parameter of its ``__init__``) -> what the file's constructions pass it
        (``CassavaDataset(ids, labels=df["label"].values)``)."""
        self.index_datasets: set[str] = set()
        """The file's own classes built on a class-index dataset (``class INatDataset(ImageFolder)``)."""
        for node in _statements(tree.body):
            if isinstance(node, ast.ClassDef) and any(
                qualified_name(base, self.imports) in tables.INDEX_DATASET_CALLS
                or (isinstance(base, ast.Name) and base.id in self.index_datasets)
                for base in node.bases
            ):
                self.index_datasets.add(node.name)
        self.attributes: dict[tuple[str, str], Value] = {}
        """(class, attribute) -> what ``self.attribute`` holds anywhere in the class."""
        self.one_hot_attributes: set[tuple[str, str]] = set()
        """(class, attribute) of a ``self.attribute`` also bound to one-hot rows (``self.labels =
        np.eye(C)[self.labels]`` under a flag), which ``attributes`` reads as class indices still."""
        self.returns: dict[tuple[str, str], Value] = {}
        """(class or "", function) -> what the function returns."""
        self.logits_loss_names: set[str] = set()
        """Names and ``self.`` attributes bound to a logits loss anywhere (``criterion``): a
        function's parameter of that name is the same criterion, passed in."""
        facts = current_facts()
        self._facts = facts
        self._bce_parameters: dict[str, set[str]] = {}
        """function -> parameters that the run's other files pass a BCE criterion to (engine/project.py)."""
        if facts is not None:
            for fact in facts.parameters:
                if fact.sources and all(source.becomes_bce for source in fact.sources):
                    self._bce_parameters.setdefault(fact.function, set()).add(fact.parameter)
        self.env: dict[str, Value] = {}
        self._run_objects: dict[str, str] = {}
        """Names bound to an object of a class of another file of the run with a method in
        ``FileFacts.argmax_returns`` -> that class (``training = Training(...)``: ``Training.Training``)."""
        self._given_by: dict[str, str] = {}
        """Parameters of the function being walked -> where another file of the run hands them an arg-max."""
        self._cache: dict[ast.AST, Value] = {}
        self.class_name = ""
        self.scope_lines: list[int] = []
        """The lines of the enclosing ``class`` and ``def`` statements: a finding there covers what is inside."""
        self.function: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        self.on_statement: Callable[[ast.stmt], None] | None = None

    # -- walking

    def run(self, on_statement: Callable[[ast.stmt], None]) -> None:
        self._walk_body(self.tree.body, "")  # summaries first: the last walk sees every method's
        self.on_statement = on_statement
        self._walk_body(self.tree.body, "")

    def _walk_body(self, body: list[ast.stmt], class_name: str) -> None:
        for statement in body:
            if isinstance(statement, ast.ClassDef):
                self._walk_class(statement)
            elif isinstance(statement, _FUNCTIONS):
                self._walk_function(statement, class_name)
            elif not class_name:
                saved = self.class_name, self.function
                self.class_name, self.function = "", None
                self._statement(statement)
                self.class_name, self.function = saved

    def _walk_class(self, node: ast.ClassDef) -> None:
        self.scope_lines.append(node.lineno)
        self._walk_body(node.body, node.name)
        self.scope_lines.pop()

    def _walk_function(self, function: ast.FunctionDef | ast.AsyncFunctionDef, class_name: str) -> None:
        saved = self.env, self.class_name, self.function
        saved_objects = self._run_objects
        self._cache.clear()
        # A function sees the module's names (and a nested one its enclosing function's), except
        # where its parameters shadow them.
        arguments = function.args
        shadowed = {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg) if a}
        self.env = {k: v for k, v in self.env.items() if k not in shadowed} | sources.parameter_values(function, self.raw_predictions)
        self._run_objects = {k: v for k, v in self._run_objects.items() if k not in shadowed}
        if function.name == "__init__":
            for name in shadowed:
                passed = self._constructed.get((class_name, name))
                if passed is not None:
                    self.env[name] = passed
        saved_given_by, self._given_by = self._given_by, {}
        for name in shadowed - self.env.keys():
            passed = self._passed.get((class_name, function.name, name))
            if passed is not None:
                self.env[name] = passed
        if self._facts is not None and self._facts.argmax_arguments:
            positional = [a.arg for a in (*arguments.posonlyargs, *arguments.args) if a.arg not in ("self", "cls")]
            qualified = f"{class_name}.{function.name}" if class_name else function.name
            for given, argument, where in self._facts.argmax_arguments:
                name = positional[int(argument)] if argument.isdigit() and int(argument) < len(positional) else argument
                if given == qualified and name in shadowed and name not in self.env:
                    self.env[name] = Value(ARGMAX, function.lineno)  # another file of the run passes an arg-max here
                    self._given_by[name] = where
        for name in shadowed & self._bce_parameters.get(function.name, set()):
            self.env[name] = Value(LOGITS_LOSS_FN, function.lineno)
            self.logits_loss_names.add(name)
        self.class_name, self.function = class_name, function
        self.scope_lines.append(function.lineno)
        for statement in function.body:
            self._statement(statement)
        self.scope_lines.pop()
        self.env, self.class_name, self.function = saved
        self._run_objects = saved_objects
        self._given_by = saved_given_by
        self._cache.clear()

    def _statement(self, statement: ast.stmt) -> None:
        if isinstance(statement, _FUNCTIONS):
            self._walk_function(statement, self.class_name)  # a nested function sees the outer names
            return
        if isinstance(statement, ast.ClassDef):
            self._walk_class(statement)
            return
        if isinstance(statement, ast.Assign):
            value = self._passed_through(statement) or self.value(statement.value)
            evaluated = dict(self._cache)
            for target in statement.targets:
                self.bind(target, value)
            built = self._run_class_built(statement.value)
            if built and len(statement.targets) == 1 and self.key(statement.targets[0]):
                self._run_objects[self.key(statement.targets[0])] = built
            # the right-hand side keeps the meanings it was evaluated with: in ``w = w.sum(1)`` the
            # sinks ask what the ``w`` being summed held, not what the name holds afterwards
            self._cache.update(evaluated)
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            self.bind(statement.target, self.value(statement.value))
        elif isinstance(statement, ast.AugAssign) and isinstance(statement.op, ast.Add):
            self._note_extended(statement.target, statement.value)
        elif isinstance(statement, ast.Expr):
            self.value(statement.value)
            self._note_append(statement.value)
        elif isinstance(statement, ast.Return) and statement.value is not None:
            value = self.value(statement.value)
            if self.function is not None:
                key = (self.class_name, self.function.name)
                if self.function.name == "__getitem__":
                    # a sample's labels come from this return (where a finding about them is)
                    line = statement.lineno
                    items = tuple(Value(item.meaning, line, item.items, item.element) for item in value.items)
                    value = Value(value.meaning, line, items, value.element)
                self.returns[key] = _merge(self.returns.get(key), value)
        elif isinstance(statement, (ast.For, ast.AsyncFor)):
            self.bind(statement.target, self.element(self.value(statement.iter), statement.iter))
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            for item in statement.items:
                self.value(item.context_expr)
        if self.on_statement is not None:
            self.on_statement(statement)
        in_getitem = self.function is not None and self.function.name == "__getitem__"
        for field in ("body", "orelse", "finalbody"):
            for child in getattr(statement, field, ()):
                if in_getitem and field == "orelse" and isinstance(statement, ast.If) and _unset_beside(child, statement.body):
                    continue  # `else: target = None`: no label on that path, the one of the `if` is the label
                self._statement(child)
        if in_getitem and isinstance(statement, ast.If):
            chosen = sources.int_chosen(statement)
            if chosen:  # a sample's label: if "cat" in name: label = 0 / else: label = 1
                self.bind(ast.Name(chosen, ast.Store()), Value(INT, statement.lineno, node=statement))
        for handler in getattr(statement, "handlers", ()):
            for child in handler.body:
                self._statement(child)

    def _passed_through(self, statement: ast.Assign) -> Value | None:
        """``img, target = fmix(img, target, self.labels)`` in a ``__getitem__``: a joint augmentation
        of the sample, handed its image and label in the order it returns them, gives the label back
        as what it was (a mix of class indices is still one class per image), where what the call
        returns is not known."""
        if self.function is None or self.function.name != "__getitem__" or len(statement.targets) != 1:
            return None
        names, call = statement.targets[0], statement.value
        if not (isinstance(names, ast.Tuple) and isinstance(call, ast.Call) and len(names.elts) >= 2):
            return None
        if len(call.args) < len(names.elts) or not all(
            isinstance(name, ast.Name) and isinstance(argument, ast.Name) and argument.id == name.id
            for name, argument in zip(names.elts, call.args)
        ):
            return None
        items = tuple(self.value(argument) for argument in call.args[: len(names.elts)])
        if any(item.meaning != UNKNOWN for item in self.value(call).items) or not any(
            item.meaning in (*_INDICES, ONE_HOT) for item in items
        ):
            return None
        return Value(items=items, line=statement.lineno, node=call)

    def _note_append(self, node: ast.AST) -> None:
        """``samples.append((path, idx))``: the list holds such elements from then on."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            return
        if node.func.attr not in ("append", "extend", "add"):
            return
        element = self.value(node.args[0])
        if node.func.attr == "extend":
            element = self.element(element, node.args[0])
        self.bind(node.func.value, Value(CONTAINER, node.lineno, element=element))

    def _note_extended(self, target: ast.AST, added: ast.AST) -> None:
        """``y_pred += predicted.cpu()``: a list extended by a batch holds its samples from then on
        (a number or a tensor added to in place keeps its meaning)."""
        collected = self.value(target)
        if collected.meaning != CONTAINER or collected.element is not None or collected.items:
            return
        element = self.element(self.value(added), added)
        if element.meaning != UNKNOWN:
            self.bind(target, Value(CONTAINER, target.lineno, element=element))

    # -- binding

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

    # -- meanings

    def qualified(self, node: ast.AST) -> str:
        return qualified_name(node, self.imports)

    def argmax_given_by(self, node: ast.AST) -> str:
        """``path:line`` of the call in another file of the run that hands the arg-max predictions
        a parameter holds (``node`` names the parameter); "" for any other value."""
        return self._given_by.get(node.id, "") if isinstance(node, ast.Name) and self.env.get(node.id, NOTHING).line == (
            self.function.lineno if self.function else -1) else ""

    def run_qualified(self, node: ast.AST) -> str:
        """The qualified name, relative imports included: how the run's own modules are named."""
        return qualified_name(node, self._run_imports)

    def returns_run_one_hot(self, func: ast.AST) -> bool:
        """``func`` names a function of another file of the run that returns a one-hot of class
        indices (``helpers.one_hot_embedding``, imported absolutely or relatively)."""
        if self._facts is None:
            return False
        return self._facts.returns_one_hot(qualified_name(func, self._run_imports))

    def calls_run_metric(self, func: ast.AST) -> bool:
        """``func`` names a single-label metric helper of another file of the run (``metrics.Accuracy``)."""
        if self._facts is None or not self._facts.single_label_metrics:
            return False
        return self._facts.is_single_label_metric(qualified_name(func, self._run_imports))

    def run_loss_class(self, func: ast.AST) -> tuple[str, str, str] | None:
        """(where, what it computes, what to use) when ``func`` names a class of another file of the
        run whose ``forward`` computes a single-label loss (``from .smoothing import SoftTargetCrossEntropy``)."""
        if self._facts is None or not isinstance(func, (ast.Name, ast.Attribute)):
            return None
        found = self._facts.loss_class(qualified_name(func, self._run_imports))
        if found is None:
            return None
        name, computes, advice = found
        return f"from {name.rpartition('.')[0]}", computes, advice

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

    def _call(self, node: ast.Call, line: int) -> Value:
        arguments = [self.value(argument) for argument in node.args]
        for keyword in node.keywords:
            self.value(keyword.value)
        func = node.func
        if isinstance(func, ast.Attribute) and not self.is_module(func.value):
            receiver = self.value(func.value)
            method = func.attr
            if method in tables.INDEX_PAIR_METHODS and receiver.meaning in SCORE_MEANINGS and (node.args or node.keywords):
                if method == "max" and self._off_the_class_axis(node, func.value, 0):
                    return NOTHING  # z.max(0): the most confident sample of each class
                return Value(items=(receiver, Value(ARGMAX, line, node=node)), line=line, node=node)
            if method == "iterrows":  # for _, row in df.iterrows(): row["label"] is one cell per sample
                pair = Value(items=(NOTHING, Value(TABLE_ROW, line, node=node)), line=line)
                return Value(CONTAINER, line, element=pair, node=node)
            if method == "itertuples":
                return Value(CONTAINER, line, element=Value(TABLE_ROW, line, node=node), node=node)
            row = tables.METHODS.get(method)
            if row is not None:
                result = tables.apply_row(row, receiver.meaning)
                if result is None or (method in tables.CLASS_AXIS_METHODS and self._off_the_class_axis(node, func.value, 0)):
                    return NOTHING
                if result == receiver.meaning:
                    return Value(result, receiver.line, receiver.items, receiver.element, node)
                return Value(result, line, node=node)
            if method == "index":
                return sources.index_lookup(self.key(func.value), line) or NOTHING
            if method in sources.TARGET_TRANSFORMS and self.key(func.value) == "self" and len(arguments) == 1:
                return arguments[0]
            if method == "__getitem__" and receiver.element is not None:
                return receiver.element  # train_set.__getitem__(i): one sample
            if method in ("items", "values", "keys"):
                return NOTHING
            built = self._run_objects.get(self.key(func.value))
            if built is not None:
                return self._run_argmax_return(f"{built}.{method}", line)
            if self.key(func.value) == "self":
                self._note_passed((self.class_name, method), node, arguments)
                summary = self.returns.get((self.class_name, method))
                if summary is not None:
                    return summary
            if sources.is_model_callee(method) or sources.is_model_callee(self.key(func.value)):
                return sources.model_output(line) if method in ("forward", "__call__") or sources.is_model_callee(method) else NOTHING
            return NOTHING
        qualified = self.qualified(func)
        if self.returns_run_one_hot(func):
            return Value(ONE_HOT, line, node=node)  # a helper of another file of the run: helpers.one_hot_embedding
        if self._facts is not None and self._facts.argmax_returns and isinstance(func, (ast.Name, ast.Attribute)):
            returned = self._run_argmax_return(qualified_name(func, self._run_imports), line)
            if returned is not NOTHING:
                return returned
        if qualified in tables.INDEX_DATASET_CALLS:
            return sources.class_index_samples(line, node)
        if qualified in tables.LOADERS:
            return arguments[0] if arguments else next((self.value(k.value) for k in node.keywords if k.arg == "dataset"), NOTHING)
        if isinstance(func, ast.Name):
            if func.id == "self":
                return sources.model_output(line)
            if func.id in self.modules:
                return Value(MODEL, line, node=node)
            if self.env.get(func.id, NOTHING).meaning == MODEL:
                return self._module_output(self.env[func.id], line)
            if func.id in self.defined and func.id not in self.imports:
                self._note_construction(func.id, node, arguments)
                sample = self.returns.get((func.id, "__getitem__"))
                if sample is not None:  # the file's own Dataset: its samples are what __getitem__ returns
                    return Value(CONTAINER, line, element=sample, node=node)
                if func.id in self.index_datasets:
                    return sources.class_index_samples(line, node)
                self._note_passed(("", func.id), node, arguments)
                return self.returns.get(("", func.id), NOTHING)
            if func.id == "zip":
                zipped = tuple(self.element(argument, n) for argument, n in zip(arguments, node.args))
                return Value(CONTAINER, line, element=Value(items=zipped, line=line))
            if func.id == "enumerate" and node.args:
                iterated = self.key(node.args[0])
                pair = (sources.enumerate_index(iterated, line), self.element(arguments[0], node.args[0]))
                return Value(CONTAINER, line, element=Value(items=pair, line=line))
        if qualified in ("torch.max", "torch.topk", "torch.sort") and len(node.args) + len(node.keywords) >= 2 and arguments:
            if arguments[0].meaning in SCORE_MEANINGS and not (qualified == "torch.max" and self._off_the_class_axis(node, node.args[0], 1)):
                return Value(items=(arguments[0], Value(ARGMAX, line, node=node)), line=line, node=node)
        row = tables.row_for(qualified)
        if row is not None:
            # np.argmax(a=probs, axis=1), torch.softmax(input=z, dim=1): the array given by keyword
            first = arguments[0] if arguments else next((self.value(k.value) for k in node.keywords if k.arg in ("a", "input")), NOTHING)
            if qualified in tables.JOIN_FUNCTIONS and first.items:
                first = _joined(first.items)  # np.concatenate((predictions, output)): what the parts all hold
            if first.meaning == CONTAINER and first.element is not None:
                first = first.element
            result = tables.apply_row(row, first.meaning)
            subject = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg in ("a", "input")), None)
            if result is None or (qualified in tables.CLASS_AXIS_FUNCTIONS and self._off_the_class_axis(node, subject, 1)):
                return NOTHING
            if result == first.meaning:
                return Value(result, first.line, node=node)
            return Value(result, line, node=node)
        callee = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if callee and sources.is_model_callee(callee):
            if not (isinstance(func, ast.Name) and func.id in self.defined):
                return sources.model_output(line)
        return NOTHING

    def _off_the_class_axis(self, node: ast.Call, subject: ast.AST | None, position: int) -> bool:
        """``F.softmax(z, dim=0)``, ``z.argmax(0)``, ``np.argmax(p, axis=0)`` on [B, C] scores: along
        the batch (a contrastive term, the most confident sample of each class), so nothing is one
        class per sample. The axis is argument ``position`` or ``dim=``/``axis=``."""
        axis = node.args[position] if len(node.args) > position else next(
            (k.value for k in node.keywords if k.arg in ("dim", "axis")), None
        )
        return off_the_class_axis(axis, subject, self.function or self.tree)

    def _run_class_built(self, value: ast.AST) -> str:
        """``Training.Training`` for ``Training(...)``, a class of another file of the run one of whose
        methods returns arg-max predictions; "" for anything else."""
        if not (self._facts is not None and self._facts.argmax_returns and isinstance(value, ast.Call)):
            return ""
        if not isinstance(value.func, (ast.Name, ast.Attribute)) or (isinstance(value.func, ast.Name) and value.func.id in self.defined):
            return ""
        qualified = qualified_name(value.func, self._run_imports)
        return ".".join(qualified.split(".")[-2:]) if self._facts.returns_argmax_class(qualified) else ""

    def _run_argmax_return(self, qualified: str, line: int) -> Value:
        """What a call of a function or method of another file of the run returning arg-max
        predictions gives here (``FileFacts.argmax_returns``): the arg-max, or a tuple holding it."""
        found = self._facts.argmax_return(qualified) if self._facts is not None else None
        if found is None:
            return NOTHING
        size, positions = found
        if not size:
            return Value(ARGMAX, line)
        return Value(items=tuple(Value(ARGMAX, line) if i in positions else NOTHING for i in range(size)), line=line)

    def _note_passed(self, function: tuple[str, str], node: ast.Call, arguments: list[Value]) -> None:
        """The arg-max predictions a call of the file's own function or method passes it, by
        parameter: what the function is handed, whoever computed it."""
        parameters = self._parameters.get(function)
        if not parameters:
            return
        passed = [(p, v) for p, v, a in zip(parameters, arguments, node.args) if not isinstance(a, ast.Starred)]
        passed += [(k.arg, self.value(k.value)) for k in node.keywords if k.arg in parameters]
        for parameter, value in passed:
            predicted = value.element if value.meaning == CONTAINER and value.element is not None else value
            if predicted.meaning == ARGMAX:
                key = (*function, parameter)
                self._passed[key] = _merge(self._passed.get(key), value)

    def _note_construction(self, name: str, node: ast.Call, arguments: list[Value]) -> None:
        """The labels a construction of the file's own class passes to its ``__init__`` (a label
        source followed into a dataset; criteria and models passed in are followed elsewhere)."""
        parameters = self._init_parameters.get(name)
        if not parameters:
            return
        passed = list(zip(parameters, arguments))
        passed += [(k.arg, self.value(k.value)) for k in node.keywords if k.arg in parameters]
        for parameter, value in passed:
            labels = value.element if value.meaning == CONTAINER and value.element is not None else value
            if labels.meaning in (*_INDICES, INDEX_LIST, ONE_HOT):
                key = (name, parameter)
                self._constructed[key] = _merge(self._constructed.get(key), value)

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

    def _module_output(self, model: Value, line: int) -> Value:
        """What calling an instance of the file's own module gives: its scores, or, where its
        ``forward`` returns a tuple (``return output, features``), the scores first."""
        built = model.node
        name = built.func.id if isinstance(built, ast.Call) and isinstance(built.func, ast.Name) else ""
        returned = self.returns.get((name, "forward"))
        if returned is not None and returned.items:
            return Value(items=(sources.model_output(line), *(NOTHING for _ in returned.items[1:])), line=line)
        return sources.model_output(line)

    def is_logits_loss(self, func: ast.AST) -> bool:
        """A criterion that applies the sigmoid itself: ``BCEWithLogitsLoss()``, ``F.binary_cross_entropy_with_logits``."""
        if self.qualified(func) in tables.LOGITS_LOSS_FUNCTIONS:
            return True
        return self.value(func).meaning == LOGITS_LOSS_FN
