"""The safety net's walk: :class:`_Detector` tracks names with ``ValueTracker``, hands each call,
assignment and comparison to its checks (mixins by concern: ``losses``, ``softmax``, ``metrics``,
``predictions``), records what they report and follows the names a construct is bound to.
"""

from __future__ import annotations

import ast

from migrate_ml.rules._exact_match import exact_match_helpers
from migrate_ml.rules._prefilter import nodes_of, text_facts
from migrate_ml.rules.semantics.metrics import MULTICLASS, multiclass_task_holders
from migrate_ml.rules.semantics.residue.construct import SingleLabelConstruct, _Record
from migrate_ml.rules.semantics.residue.losses import LossChecks
from migrate_ml.rules.semantics.residue.metrics import MetricChecks
from migrate_ml.rules.semantics.residue.predictions import PredictionChecks
from migrate_ml.rules.semantics.residue.prefilters import is_model_code_only
from migrate_ml.rules.semantics.residue.softmax import SoftmaxChecks
from migrate_ml.rules.semantics.residue.tables import _SOFTMAX_LAYERS, _argument_defaults, _binding_key
from migrate_ml.rules.semantics.single_label_values import CLASS_INDEX, MULTI_HOT, ValueTracker

_CTC_LOSSES = frozenset({"CTCLoss", "ctc_loss"})
_CASTS = frozenset({"bool", "float", "long", "int", "byte", "cpu", "cuda", "to", "detach"})

_FOLLOWED_KINDS = frozenset({"single-label-loss", "softmax-class-dim", "class-index-metric"})
"""Constructs whose value is used where it is bound (a criterion, probabilities, a metric object):
a finding where that name is used covers them, and so does the line that uses them."""


class _Detector(LossChecks, SoftmaxChecks, MetricChecks, PredictionChecks, ValueTracker):
    def __init__(
        self, text: str, tree: ast.Module, seeds: dict[str, dict[int | str, tuple[str, int]]] | None = None
    ) -> None:
        super().__init__(tree, seeds)
        self.lines = text.splitlines()
        self.model_code_only = is_model_code_only(text)
        self.helper_inputs: dict[str, dict[int | str, tuple[str, int]]] = {}
        """The file's own functions called with thresholded predictions or an arg-max:
        name -> {position or keyword: (value, line of the call)}."""
        self.found: dict[int, _Record] = {}
        self.bound_constructs: dict[str, _Record] = {}
        """Names bound to a loss, a softmax or a metric object that was reported, by name."""
        self.metric_objects: set[str] = set()
        self.argmax_columns: set[str] = set()
        """Columns the file stores an arg-max over the classes in (``val_df["preds"]``), by name."""
        self.argument_defaults = _argument_defaults(tree)
        self.multiclass_tasks = multiclass_task_holders(tree) if text_facts(text).has(MULTICLASS) else {}
        """Names and ``self.`` attributes the file sets to ``"multiclass"``: a metric's task read from one."""
        self.task_assignments: dict[str, tuple[_Record, list[int]]] = {}
        """A holder of :attr:`multiclass_tasks` reported at its assignment -> (that record, the metrics' lines)."""
        self.exact_match_helpers = exact_match_helpers(tree)
        """The file's helpers named like top-k accuracy whose body is exact match: their calls are multi-label."""
        self.ctc = any(
            (node.attr if isinstance(node, ast.Attribute) else node.id) in _CTC_LOSSES
            for node in nodes_of(tree, ast.Attribute, ast.Name)
        )
        """The file computes a CTC loss, which takes per-time-step log-probabilities (a sequence loss)."""
        self.multi_hot_labels: dict[tuple[int, str], int] = {}
        """(line of the enclosing ``def``, name) -> the line that compares the name, as a whole, with
        a thresholded prediction (``(pred == label.bool()).all(dim=1)``): it holds multi-hot rows."""
        self.index_labels: dict[tuple[int, str], int] = {}
        """(line of the enclosing ``def``, name) -> the line that compares the name with an arg-max."""
        self.outside_criterion_calls: list[tuple[ast.Call, int, str, tuple[int, ...]]] = []
        """Calls of a criterion the file never binds: (call, its scope's line, its labels' name, enclosing lines)."""
        self.bound_names: set[str] | None = None
        """Every name the file binds, found on the first call of a criterion it may not bind."""
        self.softmax_modules: dict[str, list[tuple[int, ast.Call]]] = {}
        """Local names bound to an ``nn.Softmax(...)`` module: name -> [(line, construction)]."""
        for assign in nodes_of(tree, ast.Assign):
            target = assign.targets[0] if len(assign.targets) == 1 else None
            if isinstance(target, ast.Name) and isinstance(assign.value, ast.Call) and self.qualified(assign.value.func) in _SOFTMAX_LAYERS:
                self.softmax_modules.setdefault(target.id, []).append((assign.lineno, assign.value))

    def run(self) -> list[SingleLabelConstruct]:
        self.visit(self.tree)
        self._report_criteria_from_outside()
        return self._finish()

    # -- reporting

    def _report(
        self, node: ast.AST, kind: str, message: str, suggestion: str, related: tuple[int, ...] = (),
        where_walked: bool = True,
    ) -> _Record | None:
        """``where_walked``: ``node`` is where the walk is, inside its ``def``/``class`` (not the
        assignment, elsewhere, that a construct reads)."""
        line = node.lineno  # type: ignore[attr-defined]
        if line in self.found:
            return None  # one construct per line: a second one there adds nothing for a reader
        text = self.lines[line - 1] if line <= len(self.lines) else ""
        # ast counts columns in UTF-8 bytes; findings count characters.
        column = len(text.encode("utf-8")[: node.col_offset].decode("utf-8", errors="replace")) + 1  # type: ignore[attr-defined]
        # A finding on the enclosing def or class (a whole top-k helper, a hand-written loss)
        # covers what is inside it.
        enclosing = {scope.line for scope in self.scopes if scope.line} if where_walked else set()
        record = self.found[line] = _Record(
            line, column, kind, message, suggestion, set(related) | enclosing, frozenset(enclosing)
        )
        return record

    def _finish(self) -> list[SingleLabelConstruct]:
        constructs = []
        built_on = {line for record in self.found.values() for line in record.related}
        for record in self.found.values():
            if self.model_code_only and not record.model_output:
                continue
            if record.kind == "softmax-class-dim" and record.bound_to and not record.used:
                continue  # a softmax whose result is never read (left behind by a loss rewrite) changes nothing
            if record.kind == "argmax-prediction" and record.line in built_on:
                continue  # the comparison or metric that uses it is the construct to report
            related = tuple(sorted(record.related - {record.line}))
            covering = tuple(sorted(record.scopes - {record.line}))
            constructs.append(
                SingleLabelConstruct(
                    record.line, record.column, record.kind, record.message, record.suggestion, related, covering
                )
            )
        return sorted(constructs, key=lambda c: (c.line, c.column, c.kind))

    def visit_Assign(self, node: ast.Assign) -> None:
        before = set(self.found)
        super().visit_Assign(node)
        self._note_metric_object(node.targets, node.value)
        self._check_stored_prediction(node)
        self._read_argmax_column(node)
        self._check_most_confident_class(node)
        self._follow(node.targets, [self.found[line] for line in set(self.found) - before])

    def _follow(self, targets, records: list[_Record]) -> None:
        """Bind the names a reported criterion, softmax or metric object is assigned to."""
        for target in targets:
            key = _binding_key(target)
            if not key:
                continue
            self.bound_constructs.pop(key, None)
            for record in records:
                if record.kind in _FOLLOWED_KINDS and record.followed:
                    record.bound_to = key
                    self.bound_constructs[key] = record

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._used(node.id, node.lineno)
            self._check_loss_reference(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            key = _binding_key(node)
            if key:
                self._used(key, node.lineno)
            self._check_loss_reference(node)

    def _used(self, key: str, line: int) -> None:
        record = self.bound_constructs.get(key)
        if record is not None and line != record.line:
            record.used = True
            record.related.add(line)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            before = set(self.found)
            super().visit_AnnAssign(node)
            self._note_metric_object([node.target], node.value)
            self._follow([node.target], [self.found[line] for line in set(self.found) - before])

    # -- constructs

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        self._check_loss(node)
        self._note_criterion_from_outside(node)
        self._check_getattr_loss(node)
        self._check_factory_default(node)
        self._check_argmax_on_labels(node)
        self._check_pseudo_label(node)
        self._check_softmax(node)
        self._check_softmax_layer(node)
        self._check_exp_of_log_probabilities(node)
        self._check_class_weight_by_target(node)
        self._check_class_metric(node)
        self._check_metric_inputs(node)
        self._check_eq_method(node)
        self._check_item(node)
        self._check_element_count(node)
        self._check_prediction(node)
        self._check_prediction_table(node)
        self._note_helper_inputs(node)

    def _note_helper_inputs(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in self.defined and node.func.id not in self.imports:
            arguments = [*enumerate(node.args), *((k.arg, k.value) for k in node.keywords if k.arg)]
            for position, argument in arguments:
                value, _ = self.value_of(argument)
                if value in (MULTI_HOT, CLASS_INDEX):
                    self.helper_inputs.setdefault(node.func.id, {})[position] = (value, node.lineno)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.generic_visit(node)
        self._check_class_weight_by_target(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.generic_visit(node)
        self._check_class_choice(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self.generic_visit(node)
        self._check_written_softmax(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        self.generic_visit(node)
        if not any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            return
        equal = all(isinstance(op, ast.Eq) for op in node.ops)
        self._check_equality(node, [node.left, *node.comparators], equal)
        self._note_multi_hot_label(node)

    def _note_multi_hot_label(self, node: ast.Compare) -> None:
        if len(node.comparators) != 1:
            return
        sides = (node.left, node.comparators[0])
        for side, other in (sides, sides[::-1]):
            while isinstance(other, ast.Call) and isinstance(other.func, ast.Attribute) and other.func.attr in _CASTS and not other.args:
                other = other.func.value
            if isinstance(other, ast.Name) and self.value_of(side)[0] == MULTI_HOT and self.value_of(other)[0] is None:
                self.multi_hot_labels.setdefault((self.scope().line, other.id), node.lineno)

    def bind(self, target: ast.AST, value: object, line: int) -> None:
        super().bind(target, value, line)
        if isinstance(target, ast.Name):
            self.multi_hot_labels.pop((self.scope().line, target.id), None)
