"""``Analysis``'s walk over statements: the module's classes and functions in order, what a function's
parameters hold when it is entered (what the file's calls pass it, what another file of the run hands it),
each statement's bindings, nested blocks and branches (``else: target = None`` beside a bound label), and
how two meanings of one name, return or ``self.`` attribute merge (``_merge``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from migrate_ml.rules.semantics import sources, tables
from migrate_ml.rules.semantics.meanings import (
    ARGMAX,
    CLASS_INDEX,
    CONTAINER,
    INT,
    LOGITS_LOSS_FN,
    LOSS_FN,
    NOTHING,
    ONE_HOT,
    SCORES,
    UNKNOWN,
    Value,
    join,
)


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_INDICES = (CLASS_INDEX, INT)
_LOSS_NAME = re.compile(r"criterion|loss", re.IGNORECASE)


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


def _rank_of(node: ast.expr) -> str | None:
    """``t`` of ``t.ndim``, ``t.dim()``, ``t.ndimension()``, ``len(t.shape)`` or ``len(t.size())``."""
    if isinstance(node, ast.Attribute) and node.attr == "ndim" and isinstance(node.value, ast.Name):
        return node.value.id
    if isinstance(node, ast.Call) and not node.args and isinstance(node.func, ast.Attribute) and node.func.attr in ("dim", "ndimension"):
        return node.func.value.id if isinstance(node.func.value, ast.Name) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len" and len(node.args) == 1:
        shape = node.args[0]
        if isinstance(shape, ast.Call) and not shape.args and isinstance(shape.func, ast.Attribute) and shape.func.attr == "size":
            shape = shape.func.value
        elif isinstance(shape, ast.Attribute) and shape.attr == "shape":
            shape = shape.value
        else:
            return None
        return shape.id if isinstance(shape, ast.Name) else None
    return None


def _one_dimensional_name(test: ast.expr) -> str | None:
    """The name ``test`` holds 1-D (``t.ndim == 1``, ``t.dim() == 1``, ``len(t.shape) == 1``): a
    batch of class indices, never its [B, C] rows."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return None
    for rank, other in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
        if isinstance(other, ast.Constant) and other.value == 1 and not isinstance(other.value, bool):
            return _rank_of(rank)
    return None


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


class StatementWalk:
    """Mixin of ``Analysis``: the walk over a module's classes, functions and statements, nested blocks and
    branches included, and what it notes on the way (returns, appends, what a ``__getitem__`` labels)."""

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
            value = self._passed_through(statement) or self._unpacked_scores(statement) or self.value(statement.value)
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
        encoded = _one_dimensional_name(statement.test) if isinstance(statement, ast.If) and not statement.orelse else None
        given = self.env.get(encoded) if encoded is not None else None
        unknown_before = encoded is not None and (given is None or given.meaning == UNKNOWN)
        for field in ("body", "orelse", "finalbody"):
            for child in getattr(statement, field, ()):
                if in_getitem and field == "orelse" and isinstance(statement, ast.If) and _unset_beside(child, statement.body):
                    continue  # `else: target = None`: no label on that path, the one of the `if` is the label
                self._statement(child)
        if unknown_before and self.env.get(encoded, Value(UNKNOWN, 0)).meaning == ONE_HOT:
            # `if teacher.ndim == 1: teacher = torch.eye(C)[teacher]`: only 1-D class indices are
            # encoded; [B, C] rows skip the branch, so after it the name holds whatever it was given
            if given is None:
                self.env.pop(encoded)
            else:
                self.env[encoded] = given
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

    def _unpacked_scores(self, statement: ast.Assign) -> Value | None:
        """``outputs, _ = model(images)``: a model of another module returning a tuple whose first
        item the same function gives a loss as its scores (``criterion(outputs, labels)``, as the
        LibCST prediction proof reads it): that item is the scores, the others are not known."""
        if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Tuple):
            return None
        names = statement.targets[0].elts
        if len(names) < 2 or not isinstance(names[0], ast.Name) or not isinstance(statement.value, ast.Call):
            return None
        value = self.value(statement.value)
        if value.meaning != SCORES or value.items:
            return None
        first = names[0].id
        if not any(
            isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Name) and call.args[0].id == first
            and self._is_loss_callee(call.func)
            for call in ast.walk(self.function or self.tree)
        ):
            return None
        return Value(items=(value, *(NOTHING for _ in names[1:])), line=value.line, node=statement.value)

    def _is_loss_callee(self, func: ast.AST) -> bool:
        """A loss function, a criterion object, or a callee named as one (``criterion``, ``self.loss_fn``)."""
        if self.qualified(func) in tables.LOSS_FUNCTIONS or self.value(func).meaning in (LOSS_FN, LOGITS_LOSS_FN):
            return True
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return _LOSS_NAME.search(name) is not None

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
