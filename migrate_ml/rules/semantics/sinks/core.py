"""The sink walk: :class:`Sinks` runs every check on each statement the analysis walks (its calls
through :meth:`Sinks._call`), reports what they prove and adds the file-wide checks at
:meth:`Sinks.finish`. The checks live beside it, one module per concern, as mixins sharing its state.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from migrate_ml.rules._prefilter import has_loss_marker, text_facts
from migrate_ml.rules.semantics import hand_losses, metrics, sources, tables
from migrate_ml.rules.semantics.flow import LOSS_CLASS_WORDS
from migrate_ml.rules.semantics.meanings import (
    ARGMAX,
    CLASS_INDEX,
    INT,
    LABEL_ENCODER,
    LOGITS,
    LOG_PROB,
    ONE_HOT,
    SCORES,
    SIGMOID,
    SOFTMAX,
    STRATIFIED_SPLITTER,
    THRESHOLDED,
)
from migrate_ml.rules.semantics.sinks.annotations import AnnotationChecks
from migrate_ml.rules.semantics.sinks.common import Sink, _ADVICE, _HAND_WRITTEN, _WHY, _argument, _own_nodes
from migrate_ml.rules.semantics.sinks.dataset_labels import DatasetLabelChecks
from migrate_ml.rules.semantics.sinks.label_tables import LabelTableChecks, transform_functions
from migrate_ml.rules.semantics.sinks.losses import LossChecks
from migrate_ml.rules.semantics.sinks.metrics import MetricChecks
from migrate_ml.rules.semantics.sinks.multi_hot_targets import MultiHotTargetChecks
from migrate_ml.rules.semantics.sinks.scores import ScoreChecks
from migrate_ml.rules.semantics.sinks.targets import TargetChecks
from migrate_ml.rules.semantics.summaries import Analysis


KINDS = (
    "class-index-source",
    "class-index-target",
    "one-hot-target",
    "soft-target-cross-entropy",
    "sigmoid-before-logits-loss",
    "threshold-on-logits",
    "threshold-on-softmax",
    "model-output-relu",
    "argmax-logged",
    "prediction-column",
    "uncast-target",
)
"""What this analysis adds to the safety net's kinds."""

_CAST_METHODS = frozenset({"float", "double", "half", "type_as", "bfloat16"})
_FLOAT_DTYPES = frozenset({"float", "float32", "float16", "float64", "double", "half", "bfloat16"})
_TARGET_KEYWORDS = ("target", "targets", "labels", "label", "y", "y_true")

_COLLECTING = frozenset({"append", "extend", "add"})
"""What collects into an entry of a per-class table (``per_class[pred].append(i)``)."""

_CLASS_COUNTS = frozenset({"numpy.bincount", "torch.bincount", "numpy.unique", "torch.unique"})
_DISTINCT = frozenset({"numpy.unique", "torch.unique"})


def _is_float_cast(target: ast.AST) -> bool:
    for node in ast.walk(target):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _CAST_METHODS:
            return True
        if isinstance(node, ast.Attribute) and node.attr in _FLOAT_DTYPES and ast.unparse(node.value) == "torch":
            return True
    return False


_INDEX_TENSORS = frozenset({"tensor", "as_tensor", "LongTensor", "IntTensor"})
_INTEGER_DTYPES = frozenset({"long", "int", "int64", "int32"})


def _wrapped_class_index(target: ast.AST, element_meaning: Callable[[ast.AST], str]) -> bool:
    """``torch.tensor([label], dtype=torch.long).to(device)``, ``torch.LongTensor([y])``: one sample's
    class index made a batch of one (an integer type says it is an index, not a row of label
    values). With no type, ``torch.tensor([label])`` is one where ``element_meaning`` proves
    ``label`` a class index or an ``int`` (torch infers int64): in a file that already trains
    multi-label, a row of values is wrapped the same way."""
    while isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute) and target.func.attr in ("to", "cuda", "long"):
        target = target.func.value
    if not (isinstance(target, ast.Call) and target.args and isinstance(target.args[0], ast.List)):
        return False
    name = target.func.attr if isinstance(target.func, ast.Attribute) else getattr(target.func, "id", "")
    [*elements] = target.args[0].elts
    if name not in _INDEX_TENSORS or len(elements) != 1:
        return False
    if isinstance(elements[0], (ast.List, ast.Tuple, ast.ListComp, ast.Starred, ast.Constant)):
        return False  # a row of values; integer literals are a literal index tensor
    dtype = next((k.value for k in target.keywords if k.arg == "dtype"), None)
    if name in ("LongTensor", "IntTensor"):
        return True
    if name not in ("tensor", "as_tensor"):
        return False
    if dtype is None:
        return element_meaning(elements[0]) in (CLASS_INDEX, INT)
    return isinstance(dtype, ast.Attribute) and dtype.attr in _INTEGER_DTYPES


class Sinks(
    LossChecks, TargetChecks, MultiHotTargetChecks, LabelTableChecks, DatasetLabelChecks, ScoreChecks, MetricChecks,
    AnnotationChecks,
):
    """Runs every check on each statement the analysis walks; ``found`` collects the constructs."""

    def __init__(self, analysis: Analysis, text: str) -> None:
        self.analysis = analysis
        self.found: list[Sink] = []
        facts = text_facts(text)
        self.multi_label_training = facts.has_any(("BCEWithLogits", "binary_cross_entropy_with_logits", "sigmoid("))
        self._names_a_loss = facts.has_any(LOSS_CLASS_WORDS)
        self._has_loss = has_loss_marker(text)
        self._classification_training = self.multi_label_training or facts.has_any(("CrossEntropyLoss", "cross_entropy("))
        """A ReLU'd output is harmless to cross-entropy's training but breaks the sigmoid it migrates to."""
        self._fed_to_logits_loss: dict[ast.AST, set[str]] = {}
        self._statement: ast.stmt | None = None
        self._loss_targets: list[tuple[str, ast.Call, ast.AST, bool]] = []
        self._class_tables_by_scope: dict[ast.AST, tuple[dict[str, ast.Dict], set[str]]] = {}
        self._loss_functions = (
            hand_losses.find_loss_functions(analysis.tree, analysis.qualified)
            if not facts.words.isdisjoint(hand_losses.LOSS_FUNCTION_WORDS) else {}
        )
        self._exp_parameters = (
            hand_losses.exp_of_negated_parameters(analysis.tree, analysis.qualified) if facts.has("exp(-") else {}
        )
        self._loss_classes = (
            hand_losses.find_loss_classes(analysis.tree, analysis.qualified)
            if facts.has_any(hand_losses.LOSS_CLASS_WORDS) else {}
        )
        self._built_models: dict[str, str] | None = None
        self._multi_hot_rows_built = facts.has_any(("MultiLabelBinarizer", "MultilabelStratified"))
        self._batch_transforms = transform_functions(analysis.tree) if facts.has_any(("with_transform", "set_transform")) else frozenset()
        """Functions a Hugging Face dataset applies to each batch it gives (``dataset.with_transform(transform)``)."""
        self._multi_hot_by_function: dict[ast.AST, dict[str, int]] = {}
        self._bce_criteria_keys: frozenset[str] | None = None
        self._logits_loss_named = facts.has_any(("BCEWithLogits", "binary_cross_entropy_with_logits"))
        """A function -> its parameters given to a BCE loss as targets (``_multi_hot_parameters``)."""
        self._fed_cross_entropy: dict[str, tuple[str, int, int]] = {}
        """A function taking ``exp(-parameter)`` -> (parameter, exp line, line of the call giving it a cross-entropy)."""
        self._multiclass_defaults = facts.has(metrics.MULTICLASS)
        self._metric_helpers = (
            metrics.single_label_metrics(analysis.tree, self._multiclass_defaults) if metrics.may_hold_helpers(text) else []
        )
        self._metric_callees = {helper.owner or helper.name: helper for helper in self._metric_helpers}
        self._helper_calls: dict[tuple[str, int], tuple[int, list[int]]] = {}
        """(helper, the calling function) -> (index in ``found`` of its first call's construct there,
        lines of its other calls there)."""
        """Module-level names whose call hands data to one of the file's single-label metric helpers."""
        self._loss_inputs: set[tuple[int, str, str]] = set()
        """(the function, the scores' name, the target's name) of each loss call: what its loss trains on."""
        self._outside_helper_calls: list[tuple[tuple[int, str, str], Sink]] = []
        """A call of a project helper outside the run given scores and labels, kept where a loss of
        its function is given the same two names (:meth:`_outside_helpers_given_loss_inputs`)."""
        self._text = text
        self._jaxtyping = "jaxtyping" in facts.words
        """Labels annotated with jaxtyping's dtypes (:mod:`annotations`)."""
        self._one_class_loss: bool | None = None
        """Found on the first call that needs it (:meth:`_trained_one_class`)."""
        self._reads_reports = facts.has("output_dict")
        """A ``classification_report(..., output_dict=True)`` whose keys may be read."""

    def report(self, node: ast.AST, kind: str, message: str, suggestion: str, *related: int) -> None:
        self.found.append(self._sink(node, kind, message, suggestion, *related))

    def _sink(self, node: ast.AST, kind: str, message: str, suggestion: str, *related: int) -> Sink:
        enclosing = tuple(self.analysis.scope_lines)
        return Sink(node, kind, message, suggestion, tuple(line for line in (*related, *enclosing) if line), enclosing)

    def __call__(self, statement: ast.stmt) -> None:
        self._statement = statement
        callees = set()
        for node in _own_nodes(statement):
            if isinstance(node, ast.Call):
                callees.add(node.func)
                self._call(node)
                if node.args and isinstance(statement, ast.Assign) and self._distinct_values(node):
                    self._classes_from_dataset_labels(node, node.args[0])
                if isinstance(node.func, ast.Attribute) and node.func.attr == "nunique" and not node.args:
                    self._classes_from_label_column(node, node.func.value)
            elif isinstance(node, ast.Name) and node not in callees and node.id in self._loss_functions:
                self._loss_function_use(node, node.id)  # ``criterion = edl_mse_loss``, passed as a criterion
            elif isinstance(node, ast.Compare):
                self._compare(node)
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
                self._soft_target_product(node)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
                self._remapped_class(node)
                self._class_number_stored(node)
                self._rows_of_one_class(node)
                if sources.reads_pair_label(statement, node, self.analysis.function or self.analysis.tree):
                    self._dataset_labels_read(node, node.value)
                self._indexed_log_probability(node)
                if self._reads_reports:
                    self._report_accuracy_read(node)
                if self.multi_label_training:
                    self._multi_hot_subscript(node)
            elif isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
                for generator in node.generators:
                    if sources.reads_pair_labels(node, generator):
                        self._dataset_labels_read(node, generator.iter)
        if isinstance(statement, ast.Return) and statement.value is not None:
            self._returned(statement)
        if isinstance(statement, ast.Assign):
            self._mixed_class_indices(statement)
            self._class_label_column_passed(statement)
            self._eye_rows(statement)
            self._random_class_indices(statement)
            self._relu_head(statement)
            self._model_computes_loss(statement)
            self._criterion_from_outside_factory(statement)
            self._stored_in_table(statement)
        if isinstance(statement, ast.AnnAssign) and self._jaxtyping:
            self._annotated_assignment(statement)
        if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Subscript):
            self._counted_by_label(statement, statement.target)
            self._kept_by_predicted_class(statement, statement.target)
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            func = statement.value.func
            if isinstance(func, ast.Attribute) and func.attr in _COLLECTING and isinstance(func.value, ast.Subscript):
                self._kept_by_predicted_class(statement, func.value)
            if isinstance(func, ast.Attribute) and func.attr == "append":
                self._folder_class_collected(statement)
                self._samples_bucketed_by_label(statement)

    def _distinct_values(self, node: ast.Call) -> bool:
        """``set(x)``, ``np.unique(x)``, ``torch.unique(x)``: the distinct values of ``x``."""
        func = node.func
        if isinstance(func, ast.Name) and func.id == "set" and not self.analysis.is_bound(func):
            return True
        return self.analysis.qualified(func) in _DISTINCT

    def finish(self) -> list[Sink]:
        """The file-wide checks: the hand-written losses of the file, at their ``def``; a logits
        criterion given float targets at one call and integer labels at another (the residue of a
        rewrite that could not follow every call)."""
        self._name_other_helper_calls()
        if self._jaxtyping:
            self._annotated_parameters()
        for name, loss in self._loss_functions.items():
            what = _HAND_WRITTEN[loss.kind]
            how = f"returns {loss.through}(), which computes {what}" if loss.through else f"computes {what}"
            self.found.append(Sink(
                loss.function, "single-label-loss",
                f"{name}() {how} (line {loss.line}): {_WHY[loss.kind]}",
                _ADVICE[loss.kind],
                (loss.line,),
            ))
        for name, loss in self._loss_classes.items():
            how = f"calls {loss.through}, which computes" if loss.through else "computes"
            self.found.append(Sink(
                loss.node, "single-label-loss",
                f"{name} {how} {loss.computes} (line {loss.line}): the classes compete for one unit of "
                "probability, one label per image",
                hand_losses.class_advice(loss),
                # no related line: the class is a construct of its own even where a line of its
                # body (the ``nll_loss`` an ML003 finding names) is reported for something else
            ))
        for name, (parameter, line, call) in self._fed_cross_entropy.items():
            function = next(f for f in self.analysis.tree.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name == name)
            self.found.append(Sink(
                function, "single-label-loss",
                f"{name}() reads exp(-{parameter}) (line {line}) as the probability of the one true class: it is "
                f"given a per-sample cross-entropy (line {call}), one label per image",
                "give it the per-element BCE, F.binary_cross_entropy_with_logits(logits, targets.float(), "
                "reduction='none') of shape [B, C]: exp(-bce) is then each label's probability of being right",
                (line,),  # not the call's line: the cross-entropy there is a construct (and a finding) of its own
            ))
        self._metric_definitions()
        self._outside_helpers_given_loss_inputs()
        # One criterion or several, a call of a BCE criterion that casts its targets shows what
        # the others need: integer labels left at another call are what the rewrite did not reach.
        cast = [(name, call) for name, call, _, is_cast in self._loss_targets if is_cast]
        for name, call, target, is_cast in self._loss_targets if cast else ():
            if not is_cast:
                self.found.append(Sink(
                    call,
                    "uncast-target",
                    f"{name} (BCE with logits) is given {ast.unparse(target)}, integer class labels left from before "
                    f"the migration, where {cast[0][0]} at line {cast[0][1].lineno} gets float targets",
                    f"pass float multi-hot [B, C] targets: {ast.unparse(target)}.float()",
                    (cast[0][1].lineno,),
                ))
        return self.found

    # -- calls

    def _call(self, node: ast.Call) -> None:
        analysis = self.analysis
        value = analysis.value
        func = node.func
        method = func.attr if isinstance(func, ast.Attribute) else ""
        qualified = analysis.qualified(func)
        if isinstance(func, ast.Name) and not analysis.is_bound(func):
            self._loss_class_built(node, func.id)
            self._softmax_model_built(node, func.id)
            if func.id in self._loss_functions:
                self._loss_function_use(node, func.id)
            for position, line in self._exp_parameters.get(func.id, {}).items():
                given = node.args[position] if position < len(node.args) else None
                if given is not None and hand_losses.is_per_sample_cross_entropy(given, analysis.qualified):
                    parameter = self._parameter_name(func.id, position)
                    self._fed_cross_entropy.setdefault(func.id, (parameter, line, node.lineno))
        if self._is_loss_call(node):
            target = _argument(node, 1, _TARGET_KEYWORDS)
            scores = _argument(node, 0, ("input", "logits", "inputs"))
            if scores is not None and target is not None:
                self._loss_inputs.add((id(analysis.function), metrics.root_name(scores), metrics.root_name(target)))
            if scores is not None and target is not None and value(scores).meaning == LOG_PROB and value(target).meaning == SOFTMAX:
                self.report(
                    node, "single-label-loss",
                    "a KL divergence between softmax distributions over the classes (distillation): the student "
                    "learns the teacher's one-class-per-image distribution",
                    "distil per label: F.binary_cross_entropy_with_logits(student_logits / T, "
                    "torch.sigmoid(teacher_logits / T)) * T * T",
                    value(scores).line, value(target).line,
                )
            if target is not None and self.multi_label_training and _wrapped_class_index(target, lambda element: value(element).meaning):
                self.report(
                    target, "class-index-target",
                    f"the loss target {ast.unparse(target)} wraps one sample's class index in a tensor: one class per "
                    "image, [1] against the [1, C] scores of a multi-label model",
                    "pass the sample's float multi-hot row as a batch of one: "
                    "torch.as_tensor(label_row, dtype=torch.float32).unsqueeze(0)",
                )
            if target is not None and value(target).meaning == ONE_HOT:
                encoded = self._one_hot_call_at(value(target).line)
                if encoded is not None and encoded.lineno != node.lineno:
                    # reported where the class indices are encoded: that line is what to change
                    self.report(
                        encoded, "one-hot-target",
                        f"{ast.unparse(encoded.args[0])} is read as one class index per sample and one-hot encoded "
                        f"as the target of the loss at line {node.lineno}: one class per image",
                        "pass the real float multi-hot [B, C] targets to the loss (several labels per image) and "
                        "drop the encoding",
                        node.lineno,
                    )
                else:
                    self.report(
                        node, "one-hot-target",
                        "the loss target is a one-hot of class indices (however smoothed or mixed): one class per image",
                        "pass the real float multi-hot [B, C] targets (several labels per image)",
                        value(target).line,
                    )
            if scores is not None and analysis.is_logits_loss(func):
                meaning = value(scores).meaning
                if meaning in (SIGMOID, SOFTMAX):
                    what = "torch.sigmoid" if meaning == SIGMOID else "softmax"
                    self.report(
                        node, "sigmoid-before-logits-loss",
                        f"{what} is applied before a loss that applies the sigmoid itself (BCE with logits): "
                        "the loss sees squashed scores and its gradients vanish",
                        "pass the raw logits to BCEWithLogitsLoss / binary_cross_entropy_with_logits",
                        value(scores).line,
                    )
            if target is not None and self._is_logits_criterion(func) and value(target).meaning == CLASS_INDEX:
                self.report(
                    node, "class-index-target",
                    f"the labels given to this BCE-with-logits loss are class indices (from line {value(target).line}): "
                    "one class per image, not a [B, C] multi-hot row",
                    "load float multi-hot labels (a Dataset whose __getitem__ returns a [C] float tensor)",
                    value(target).line,
                )
            criterion = self._criterion_name(func)
            if target is not None and criterion:
                if _is_float_cast(target):
                    self._loss_targets.append((criterion, node, target, True))
                elif self._integer_label(target) and not (scores is not None and value(scores).meaning in (ARGMAX, THRESHOLDED)):
                    # a loss given a prediction is reported for that (heads.report_prediction_input): no cast helps it
                    self._loss_targets.append((criterion, node, target, False))
        if self.multi_label_training:
            self._einops_of_targets(node)
            self._multi_hot_call(node, method, qualified)
        if method in ("scatter_", "scatter"):
            self._scatter_one_hot(node)
        if method == "sum" and isinstance(func, ast.Attribute):
            self._picked_by_one_hot(node, func.value)
        elif qualified == "torch.sum" and node.args:
            self._picked_by_one_hot(node, node.args[0])
        if method == "fit_transform" and isinstance(func, ast.Attribute) and value(func.value).meaning == LABEL_ENCODER:
            self._label_encoding(node)
        if qualified == "pandas.get_dummies":
            self._dummies_of_label(node)
        if method == "map" and len(node.args) == 1:
            self._mapped_to_class_index(node)
        if qualified == "pandas.DataFrame":
            self._table_of_class_indices(node)
        if qualified == "sklearn.model_selection.train_test_split":
            self._stratified_on_one_label(node, next((k.value for k in node.keywords if k.arg == "stratify"), None))
        elif method == "split" and isinstance(func, ast.Attribute) and value(func.value).meaning == STRATIFIED_SPLITTER:
            self._stratified_on_one_label(node, _argument(node, 1, ("y",)))
        self._one_hot_helper_call(node)
        if qualified in _CLASS_COUNTS and node.args:
            self._class_frequencies(node, qualified)
        if qualified in ("torch.log", "numpy.log") and node.args:
            self._gathered_log_probability(node, node.args[0])
        elif method == "log" and not node.args:
            self._gathered_log_probability(node, func.value)
        elif method == "gather":
            self._gathered_class_score(node)
        if tables.row_for(qualified) is tables.row_for("torch.nn.functional.one_hot") and node.args:
            if value(node.args[0]).meaning == ARGMAX:
                self.report(
                    node, "argmax-prediction",
                    "a one-hot of an arg-max is still one predicted class per image",
                    "predict with (torch.sigmoid(logits) > THRESHOLD).float() — one decision per label",
                    value(node.args[0]).line,
                )
        if self._serving() and (method == "softmax" or tables.row_for(qualified) is tables.row_for("torch.softmax")):
            module_call = tables.row_for(qualified) is tables.row_for("torch.softmax")
            scores = (node.args[0] if node.args else None) if module_call else func.value
            if scores is not None and value(scores).meaning in (SCORES, LOGITS):
                self.report(
                    node, "softmax-class-dim",
                    "the response is built from a softmax over the model's output: the classes compete for one unit "
                    "of probability, and the top class(es) are served as the answer",
                    "serve torch.sigmoid(logits) and every label above THRESHOLD: "
                    "[[mapping[j] for j in (row > THRESHOLD).nonzero()] for row in probs]",
                    value(scores).line,
                )
        self._old_functional_metric(node, qualified)
        self._metric_call(node, qualified)
        self._logged(node, method)
        if method in ("gt", "ge", "__gt__") and node.args and isinstance(func, ast.Attribute):
            self._threshold(node, func.value, node.args[0])
