"""``Analysis``'s call summaries: what a call returns (a method of a known value, a library function's
table row, the file's own function, dataset class or model, a function or class of another file of the
run), and what the file's calls pass its own functions and constructors (the arg-max predictions and the
labels followed into them).
"""

from __future__ import annotations

import ast

from migrate_ml.rules.semantics import sources, tables
from migrate_ml.rules.semantics.meanings import (
    ARGMAX,
    CONTAINER,
    INDEX_LIST,
    LOGITS_LOSS_FN,
    MODEL,
    NOTHING,
    ONE_HOT,
    SCORE_MEANINGS,
    TABLE_ROW,
    Value,
    join,
)
from migrate_ml.rules.semantics.names import qualified_name
from migrate_ml.rules.semantics.single_label_values import off_the_class_axis
from migrate_ml.rules.semantics.summaries_statements import _INDICES, _merge


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


class CallSummaries:
    """Mixin of ``Analysis``: what a call gives, from the library tables, the file's own functions, classes
    and models, and the facts of the run's other files."""

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
