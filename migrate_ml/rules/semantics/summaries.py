"""The meaning of every expression, followed through functions, methods and class attributes.

``Analysis`` walks each function's statements in order with an environment of what names and
``self.`` attributes hold. A summary round comes first: what each class stores on ``self``
(in ``__init__``, in ``on_train_batch_start``, in any method) and what each of the file's own
functions returns, so that ``self.targets`` set in one method has its meaning in
``training_step`` and ``one_hot(target, n)`` calls a helper whose result is known. The last
round hands every statement to the sinks.

This module keeps ``Analysis``'s state and what it collects before the walk (imports, the file's own
classes and functions, what other files of the run pass them). The walk over statements and branches,
and how two meanings merge, is in ``summaries_statements``; the meanings of expressions, names and
``self.`` attributes in ``summaries_values``; what calls give and pass in ``summaries_calls``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from migrate_ml.rules._prefilter import module_functions
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics import tables
from migrate_ml.rules.semantics.meanings import Value
from migrate_ml.rules.semantics.names import import_bindings, qualified_name
from migrate_ml.rules.semantics.summaries_calls import CallSummaries
from migrate_ml.rules.semantics.summaries_statements import _FUNCTIONS, StatementWalk
from migrate_ml.rules.semantics.summaries_values import Values


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


class Analysis(StatementWalk, Values, CallSummaries):
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
