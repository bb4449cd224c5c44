"""Sinks on metrics and what is reported: metric calls and the file's single-label metric helpers,
arg-max predictions logged, thresholds on logits or softmax, what a function returns, and
bookkeeping by predicted class.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace

from migrate_ml.rules._accuracy_names import _names_accuracy
from migrate_ml.rules._datasets_outside_run import _NOT_THE_PROJECT
from migrate_ml.rules._project import current_facts, original_text
from migrate_ml.rules.semantics import metrics, sources, tables
from migrate_ml.rules.semantics.meanings import (
    ARGMAX, CONTAINER, LOGITS, PREDICTED_NAME, SCORE_MEANINGS, SCORES, SOFTMAX, TABLE, THRESHOLDED, UNKNOWN,
)
from migrate_ml.rules.semantics.sinks.common import Sink, _argument, _unwrapped_scalar


LOGITS_NAME = re.compile(r"logit", re.IGNORECASE)
"""A model output named as logits (``logits = model(x)``) is taken at its word."""
THRESHOLD_NAME = re.compile(r"thresh", re.IGNORECASE)

_LOGGED = frozenset({"add_data", "set_title", "title", "add_text", "log_text"})
"""Calls that write one image's prediction next to it: a table row, a plot title."""

_INTEGER_TENSOR = re.compile(r"\.long\(\)|LongTensor|\.long\b|int64|\.int\(\)")


_ONE_CLASS_LOSS = re.compile(r"CrossEntropyLoss|(?<!binary_)cross_entropy\(|NLLLoss|nll_loss\(")
"""A loss of one class per image: a file naming one trained single-label before its migration."""
_NOT_ONE_CLASS = re.compile(r"multi_?label|binary|hamming|exact|sample", re.IGNORECASE)
"""Accuracies of another task by their name (``multilabel_acc``, ``binary_accuracy``)."""
_METRIC_HELPER = re.compile(r"metric|confusion|report|roc|auc|f1|precision|recall", re.IGNORECASE)
"""A project helper named as computing metrics of what it is given (``batch_metrics``,
``get_confusion_matrix``), whatever its result is used for."""
_METRIC_LIBRARIES = frozenset({"torchmetrics", "sklearn", "ignite", "evaluate", "keras", "tensorflow", "fastai", "imblearn"})


def _outside_project_module(tree: ast.Module, name: str) -> str | None:
    """The module of the project, not in this run, that ``name`` comes from: imported by name from
    it, or, not imported by name at all, from the only module the file star-imports. None for a
    library's name, the run's own modules (their helpers are read: ``FileFacts.reported_helpers``)
    and a name the file defines."""
    star: list[ast.ImportFrom] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return None
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.asname or alias.name.split(".")[0] for alias in node.names]
            if name in names:
                return _project_module(node) if isinstance(node, ast.ImportFrom) else None
            if isinstance(node, ast.ImportFrom) and names == ["*"]:
                star.append(node)
    return _project_module(star[0]) if len(star) == 1 else None


def _project_module(node: ast.ImportFrom) -> str | None:
    dotted = node.module or ""
    if not node.level and (not dotted or dotted.split(".")[0] in _NOT_THE_PROJECT | _METRIC_LIBRARIES):
        return None
    facts = current_facts()
    if facts is not None and (dotted.rpartition(".")[2] or None) in facts.run_modules:
        return None
    return "." * node.level + dotted


def _made_integer_tensor(function: ast.FunctionDef | ast.AsyncFunctionDef, item: ast.AST) -> bool:
    """The returned label is built as an integer tensor in ``__getitem__`` (``label =
    torch.tensor(y).long()``): ML101 reports that construction."""
    if _INTEGER_TENSOR.search(ast.unparse(item)):
        return True
    if not isinstance(item, ast.Name):
        return False
    return any(
        isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == item.id for t in node.targets)
        and _INTEGER_TENSOR.search(ast.unparse(node.value)) is not None
        for node in ast.walk(function)
    )


class MetricChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.sinks.core.Sinks` on metrics, thresholds and what is reported."""

    def _kept_by_predicted_class(self, statement: ast.stmt, target: ast.Subscript) -> None:
        """``mis_matrix[pred, true] += 1``, ``tp_per_class[pred][true].append(i)``: per-class or
        confusion bookkeeping indexed by the one arg-max class of each sample."""
        indices: list[ast.AST] = []
        node: ast.AST = target
        while isinstance(node, ast.Subscript):
            index = node.slice
            indices.extend(index.elts if isinstance(index, ast.Tuple) else (index,))
            node = node.value
        for index in map(_unwrapped_scalar, indices):
            value = self.analysis.value(index)
            if isinstance(index, (ast.Name, ast.Subscript)) and value.meaning == ARGMAX:
                self.report(
                    statement, "argmax-prediction",
                    f"{ast.unparse(target)} keeps per-class bookkeeping indexed by each sample's one predicted class "
                    f"({ast.unparse(index)}, an arg-max): a multi-label sample has several predicted labels, or none",
                    "keep it per label over the thresholded [N, C] predictions instead: one 2 x 2 matrix per label "
                    "(sklearn.metrics.multilabel_confusion_matrix), or one entry for each j in "
                    "(probs[i] > THRESHOLD).nonzero() of a sample",
                    value.line,
                )
                return

    def _old_functional_metric(self, node: ast.Call, qualified: str) -> None:
        module, _, name = qualified.rpartition(".")
        if f"{module}." not in tables.OLD_FUNCTIONAL_METRICS or name not in tables.CLASS_METRIC_FUNCTIONS:
            return
        keywords = {k.arg for k in node.keywords}
        if keywords & {"task", "num_labels", "multilabel"}:
            return
        if any(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args):
            return  # the task given positionally
        self.report(
            node, "class-index-metric",
            f"{qualified.replace('pytorch_lightning', 'pl')}() without task= scores class indices "
            "(older releases inferred multiclass from the shapes)",
            'pass task="multilabel", num_labels=C, threshold=THRESHOLD (torchmetrics.functional), on sigmoid outputs',
        )

    def _metric_call(self, node: ast.Call, qualified: str) -> None:
        """A library metric of :data:`metrics.METRIC_APIS`, a Keras-like ``metrics=["accuracy"]``, or a
        call of a single-label metric helper of this file or of another file of the run."""
        if qualified in metrics.PREDICTION_METRICS:
            self._metric_given_argmax(node, qualified.rpartition(".")[2])
            return
        self._one_vs_rest_on_indices(node, qualified)
        api = metrics.metric_api(qualified)
        if api is not None and (not api.needs_labels or (node.args and self._labels_given(node.args[0]))):
            self.report(node, "class-index-metric", f"{api.what}: one class per sample", api.advice)
            return
        listed = metrics.keras_accuracy(node)
        if listed is not None:
            self.report(
                listed, "class-index-metric",
                f"metrics={ast.unparse(listed)} is the accuracy of one class per sample (the arg-max against a class index)",
                'ask for per-label metrics instead (binary accuracy, F1, mAP), e.g. metrics=["binary_accuracy"], '
                "or torchmetrics MultilabelAveragePrecision",
            )
            return
        if any(k.arg in ("label_type", "task") and isinstance(k.value, ast.Constant) and k.value.value != metrics.MULTICLASS
               for k in node.keywords):
            return  # the caller picks another branch than the default
        func = node.func
        helper = self._metric_callees.get(func.id) if isinstance(func, ast.Name) else None
        if helper is not None and self.analysis.function is not helper.function:
            self._helper_call(
                node, func.id,
                f"{func.id}() ({f'{helper.name}, ' if helper.owner else ''}line {helper.function.lineno}) counts matches "
                "of one predicted class per sample with its label: a single-label metric",
                helper.function.lineno,
            )
        elif isinstance(func, (ast.Name, ast.Attribute)) and self.analysis.calls_run_metric(func):
            self._helper_call(
                node, ast.unparse(func),
                f"{ast.unparse(func)}() (another file of this run) counts matches of one predicted class per sample "
                "with its label: a single-label metric",
            )
        else:
            self._outside_helper_call(node)

    def _outside_helper_call(self, node: ast.Call) -> None:
        """``acc = cal_acc_from_logits(logits, y)``: an accuracy helper of the project that this run
        cannot read (imported from a module outside it), given the very scores and labels a loss of
        the same function trains on, in a file that trained one class per image. Its body is not
        here to prove it, but an accuracy of a model's output against the class labels scores the
        top class (or top k) of each sample. Kept only where such a loss call is found
        (:meth:`_outside_helpers_given_loss_inputs`): a helper given other things (images and labels
        to augment) is no metric of the classifier."""
        func = node.func
        if not isinstance(func, ast.Name) or len(node.args) < 2 or node.keywords or self.analysis.is_bound(func):
            return
        accuracy = _names_accuracy(func.id)
        if not (accuracy or _METRIC_HELPER.search(func.id)) or _NOT_ONE_CLASS.search(func.id):
            return
        module = _outside_project_module(self.analysis.tree, func.id)
        if module is None or not self._trained_one_class():
            return
        scores, labels = node.args[:2]
        if self.analysis.value(scores).meaning not in SCORE_MEANINGS or not self._labels(labels):
            return
        key = (id(self.analysis.function), metrics.root_name(scores), metrics.root_name(labels))
        if not all(key[1:]):
            return
        what = (
            "an accuracy of them scores each sample's top class (its arg-max, or top k) against one class index"
            if accuracy else
            "the metrics it computes of them (accuracy, F1, a confusion matrix, a report) score each sample's top "
            "class against one class index"
        )
        self._outside_helper_calls.append((key, self._sink(
            node, "single-label-helper",
            f"{func.id}() (from {module}, not in this run) is given the model's output {ast.unparse(scores)} and the "
            f"labels {ast.unparse(labels)} the loss trains on: {what}: a single-label metric",
            metrics.HELPER_ADVICE,
        )))

    def _report_accuracy_read(self, node: ast.Subscript) -> None:
        """``report["accuracy"]`` of ``report = classification_report(..., output_dict=True)``: the
        accuracy of one class per sample. On multi-hot rows the report has no "accuracy" key (it
        holds per-label rows and micro/macro/weighted/samples averages), so the read raises a
        KeyError once the predictions are migrated. Kept to a report of arg-max predictions, or in a
        file that trained one class per image."""
        key = node.slice
        if not (isinstance(key, ast.Constant) and key.value == "accuracy" and isinstance(node.value, ast.Name)):
            return
        scope = self.analysis.function or self.analysis.tree
        reports = [
            statement.value for statement in ast.walk(scope)
            if isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.value.id for t in statement.targets)
        ]
        if not reports or not all(
            isinstance(call, ast.Call) and self.analysis.qualified(call.func) == "sklearn.metrics.classification_report"
            and any(k.arg == "output_dict" and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords)
            for call in reports
        ):
            return
        predictions = [_argument(call, 1, ("y_pred",)) for call in reports]
        if not (self._trained_one_class() or any(
            p is not None and self.analysis.value(p).meaning in (ARGMAX, PREDICTED_NAME, THRESHOLDED) for p in predictions
        )):
            return
        logged = self._logged_name(node)
        self.report(
            node, "class-index-metric",
            f"{ast.unparse(node)}{logged} is classification_report's accuracy of one class per sample (line "
            f"{reports[0].lineno}): on multi-hot rows the report has no \"accuracy\" key, and reading it raises a KeyError",
            "score exact match with accuracy_score(y_true, y_pred) on the multi-hot rows, or read a per-label average "
            "of the report: report[\"micro avg\"][\"f1-score\"] (or \"samples avg\")",
            reports[0].lineno,
        )

    def _logged_name(self, node: ast.AST) -> str:
        """`` (reported as "train_accuracy")`` where the statement logs or prints ``node`` after a string name."""
        for call in ast.walk(self._statement) if self._statement is not None else ():
            if (isinstance(call, ast.Call) and len(call.args) > 1 and call.args[1] is node
                    and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
                return f' (reported as "{call.args[0].value}")'
        return ""

    def _trained_one_class(self) -> bool:
        """The file trained one class per image before this run's fixes: a cross-entropy or NLL loss,
        or a criterion of another file of the run that this run makes BCE, passed to one of its
        functions (``train_epoch(model, loader, criterion, ...)``)."""
        if self._one_class_loss is None:
            facts = current_facts()
            self._one_class_loss = _ONE_CLASS_LOSS.search(original_text() or self._text) is not None or (
                facts is not None and any(parameter.converted_by_run for parameter in facts.parameters)
            )
        return self._one_class_loss

    def _outside_helpers_given_loss_inputs(self) -> None:
        self.found.extend(sink for key, sink in self._outside_helper_calls if key in self._loss_inputs)

    def _one_vs_rest_on_indices(self, node: ast.Call, qualified: str) -> None:
        """``roc_curve(labels == i, probs[:, i])``: class ``i`` scored one-vs-rest, its binary labels
        made by comparing one class index per sample with ``i``, the index of the score column (a
        [N, C] array compared with ``i`` would not be one column). Multi-hot labels hold that
        column already: ``labels[:, i]``."""
        if qualified not in metrics.ONE_VS_REST_SCORES:
            return
        y_true = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "y_true"), None)
        y_score = node.args[1] if len(node.args) > 1 else next(
            (k.value for k in node.keywords if k.arg in ("y_score", "probas_pred")), None
        )
        while isinstance(y_true, ast.Call) and isinstance(y_true.func, ast.Attribute) and y_true.func.attr in ("astype", "int", "long", "float"):
            y_true = y_true.func.value  # (labels == i).astype(int)
        if not (
            isinstance(y_true, ast.Compare) and len(y_true.ops) == 1 and isinstance(y_true.ops[0], ast.Eq)
            and isinstance(y_score, ast.Subscript) and isinstance(y_score.slice, ast.Tuple) and len(y_score.slice.elts) == 2
        ):
            return
        rows, column = y_score.slice.elts
        if not (isinstance(rows, ast.Slice) and rows.lower is None and rows.upper is None and isinstance(column, ast.Name)):
            return
        sides = (y_true.left, y_true.comparators[0])
        labels = next((other for side, other in (sides, sides[::-1]) if isinstance(side, ast.Name) and side.id == column.id), None)
        if labels is None or isinstance(labels, ast.Constant):
            return
        name, index, shown = qualified.rpartition(".")[2], column.id, ast.unparse(labels)
        self.report(
            node, "class-index-metric",
            f"{name}() scores class {index} one-vs-rest with `{ast.unparse(y_true)}`: the labels are one class index "
            f"per sample; multi-hot [N, C] labels compared with {index} give no column of class {index}",
            f"pass the label column of class {index}: {name}({shown}[:, {index}], {ast.unparse(y_score)})",
        )

    def _metric_given_argmax(self, node: ast.Call, name: str) -> None:
        """A scikit-learn / imbalanced-learn metric whose ``y_pred`` holds arg-max predictions taken
        elsewhere: collected in a list, returned by a function, or handed to a parameter by a call
        of this file or of another file of the run (``meter.update(y_true, y_preds)``)."""
        predictions = next((k.value for k in node.keywords if k.arg == "y_pred"), None)
        if predictions is None and len(node.args) > 1 and not isinstance(node.args[1], ast.Starred):
            predictions = node.args[1]
        if predictions is None:
            return
        value = self.analysis.value(predictions)
        if value.meaning == CONTAINER and value.element is not None:
            value = value.element
        if value.meaning not in (ARGMAX, PREDICTED_NAME) or node.lineno <= value.line <= (node.end_lineno or node.lineno):
            return  # an arg-max written in the call is the arg-max's own construct
        given = self.analysis.argmax_given_by(predictions)
        source = f" handed in by {given}" if given else ""
        what = "the names of arg-max classes" if value.meaning == PREDICTED_NAME else "arg-max predictions"
        if name in metrics.SINGLE_LABEL_ONLY:
            message = (f"{name} scores {ast.unparse(predictions)}, {what} (one class per sample){source}, "
                       "and it rejects the multi-hot rows they migrate to")
            suggestion = "score each label's column on its own (y_true[:, j], y_pred[:, j]), or report F1/mAP instead"
        else:
            message = (f"{name} scores {ast.unparse(predictions)}, {what} (one class per sample){source}; "
                       "once they are multi-hot rows, its y_true must be multi-hot [N, C] rows too")
            suggestion = "give it multi-hot rows (sigmoid probabilities > THRESHOLD) against multi-hot [N, C] labels"
        self.report(node, "argmax-metric", message, suggestion, value.line)

    def _helper_call(self, node: ast.Call, helper: str, message: str, *related: int) -> None:
        """A call of a single-label metric helper, reported at its first call in a function only:
        the others there repeat it, and :meth:`_name_other_helper_calls` names their lines."""
        function = self.analysis.function
        if function is None:
            # module-level calls (script steps, notebook cells) each compute an accuracy of their own
            self.report(node, "single-label-helper", message, metrics.HELPER_ADVICE, *related)
            return
        first = self._helper_calls.get((helper, id(function)))
        if first is not None:
            first[1].append(node.lineno)
            return
        self.report(node, "single-label-helper", message, metrics.HELPER_ADVICE, *related)
        self._helper_calls[helper, id(function)] = (len(self.found) - 1, [])

    def _name_other_helper_calls(self) -> None:
        for index, lines in self._helper_calls.values():
            first = self.found[index]
            others = sorted(set(lines) - {first.node.lineno})
            if others:
                also = f" (called the same way at line{'s' if len(others) > 1 else ''} {', '.join(map(str, others))})"
                self.found[index] = replace(first, message=first.message + also)

    def _labels_given(self, node: ast.AST) -> bool:
        """Class labels: a label column of a table, or what :meth:`_labels` accepts."""
        return metrics.is_label_column(node) or self._labels(node)

    def _metric_definitions(self) -> None:
        """The file's ``"multiclass"`` defaults and single-label metric helpers, at their ``def``."""
        for function, parameter, default in metrics.multiclass_defaults(self.analysis.tree) if self._multiclass_defaults else ():
            self.found.append(Sink(
                default, "class-index-metric",
                f'{function}() defaults {parameter} to "multiclass": a caller that does not pass it gets the '
                "single-label branch (one arg-max class per sample)",
                f'default {parameter} to "multilabel" (sigmoid > THRESHOLD per label, multi-hot [B, C] targets), '
                "or pass it at every call",
            ))
        for helper in self._metric_helpers:
            self.found.append(Sink(
                helper.function, "single-label-helper",
                f"{helper.name}() counts matches of one predicted class per sample with its label "
                f"({ast.unparse(helper.comparison)}, line {helper.comparison.lineno}): a single-label metric",
                metrics.HELPER_ADVICE,
                (helper.comparison.lineno,),
            ))

    def _logged(self, node: ast.Call, method: str) -> None:
        """An arg-max written next to one image: a caption, a table row, a plot title."""
        logged: list[ast.AST] = [k.value for k in node.keywords if k.arg in ("caption", "captions", "data", "title")]
        if method in _LOGGED:
            logged.extend(node.args)
        for expression in logged:
            for part in ast.walk(expression):
                if isinstance(part, (ast.Name, ast.Subscript, ast.Attribute)) and self.analysis.value(part).meaning == ARGMAX:
                    self.report(
                        node, "argmax-logged",
                        "an arg-max prediction (one class per image) is logged with each image",
                        "log every label above the threshold: [classes[j] for j in (probs[i] > THRESHOLD).nonzero()]",
                        self.analysis.value(part).line,
                    )
                    return
        if isinstance(node.func, ast.Name) and node.func.id == "print":
            # the predictions themselves shown to the user, not a score computed from them
            for argument in node.args:
                value = self.analysis.value(argument)
                if isinstance(argument, (ast.Name, ast.Subscript, ast.Attribute)) and value.meaning == ARGMAX:
                    self.report(
                        node, "argmax-logged",
                        f"{ast.unparse(argument)} is printed as the prediction: one arg-max class per image",
                        "print every label above the threshold: (torch.sigmoid(logits) > THRESHOLD).nonzero()",
                        value.line,
                    )
                    return

    def _stored_in_table(self, statement: ast.Assign) -> None:
        """``test_df.label = preds``, ``info["ans"] = preds``: the predictions written as one column of
        a table (a submission) hold one class per row, an arg-max; the thresholded rows a migration
        gives instead are a [C] array in each cell, which ``to_csv`` writes as text."""
        target = statement.targets[0] if len(statement.targets) == 1 else None
        if isinstance(target, ast.Attribute):
            table, column = target.value, repr(target.attr)
        elif isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str):
            table, column = target.value, repr(target.slice.value)
        else:
            return  # ``df[classes] = preds`` writes one column per class
        if not (self.analysis.value(table).meaning == TABLE or sources.names_submission(table)):
            return
        stored = self.analysis.value(statement.value)
        if stored.meaning == CONTAINER and stored.element is not None:
            stored = stored.element
        if stored.meaning not in (ARGMAX, THRESHOLDED):
            return
        self.report(
            statement, "prediction-column",
            f"the predictions {ast.unparse(statement.value)} are stored as the one column {column} of the table "
            f"{ast.unparse(table)} (a submission or result table): one answer per image, a class index (or, "
            "once thresholded, a row of C decisions written as text)",
            "store every label above the threshold: one 0/1 column per class, df[class_names] = "
            "(probs > THRESHOLD).astype(int), or the names of the labels above it joined by spaces",
            # the arg-max is reported where it is taken; a thresholded row is what a fix wrote there
            *((stored.line,) if stored.meaning == ARGMAX else ()),
        )

    # -- comparisons and products

    def _compare(self, node: ast.Compare) -> None:
        if len(node.ops) != 1:
            return
        operator, right = node.ops[0], node.comparators[0]
        if isinstance(operator, (ast.Eq, ast.NotEq)):
            pair = metrics.argmax_against_labels(node)
            if pair is not None:
                self.report(
                    node, "argmax-compared",
                    f"the arg-max over the classes ({ast.unparse(pair[0])}) is compared with the label column "
                    f"{ast.unparse(pair[1])}: one class per sample",
                    "threshold sigmoid probabilities (p > THRESHOLD) and compare whole rows with the multi-hot labels: "
                    "(pred == labels.astype(bool)).all(axis=1).mean() for exact match, or per-label F1/mAP",
                )
        if isinstance(operator, (ast.Gt, ast.GtE)):
            self._threshold(node, node.left, right)
        elif isinstance(operator, (ast.Lt, ast.LtE)):
            self._threshold(node, right, node.left)

    def _threshold(self, node: ast.AST, subject: ast.AST, threshold: ast.AST) -> None:
        if isinstance(threshold, ast.Constant):
            if not isinstance(threshold.value, (int, float)) or isinstance(threshold.value, bool) or threshold.value == 0:
                return  # logits > 0 is the 0.5 decision on probabilities
        elif not THRESHOLD_NAME.search(ast.unparse(threshold)):
            return
        value = self.analysis.value(subject)
        meaning = value.meaning
        if meaning == SCORES and (LOGITS_NAME.search(ast.unparse(subject)) or self._fed_to_logits_loss_here(subject)):
            meaning = LOGITS
        squashed = self._sigmoid_taken_of(subject) if meaning in (SCORES, UNKNOWN) else 0
        if squashed:
            # probs = torch.sigmoid(outputs); outputs > threshold: half-migrated, the probabilities were meant
            self.report(
                node, "threshold-on-logits",
                f"{ast.unparse(subject)} holds raw logits (line {squashed} takes their sigmoid): a probability "
                f"threshold ({ast.unparse(threshold)}) on them decides at a probability of sigmoid(threshold), "
                "not at the threshold",
                f"threshold the sigmoid probabilities of line {squashed} instead (or compare the logits with 0 "
                "for a 0.5 threshold)",
                squashed,
            )
        elif meaning == LOGITS:
            self.report(
                node, "threshold-on-logits",
                f"{ast.unparse(subject)} holds raw logits: a probability threshold ({ast.unparse(threshold)}) "
                "on them decides at a probability of sigmoid(threshold), not at the threshold",
                f"threshold probabilities: torch.sigmoid({ast.unparse(subject)}) > {ast.unparse(threshold)}",
                value.line,
            )
        elif meaning == SOFTMAX:
            self.report(
                node, "threshold-on-softmax",
                "a threshold on softmax probabilities: they sum to 1 over the classes, so at most one label "
                "can pass 0.5 and several labels push each other down",
                "threshold torch.sigmoid(logits), one independent probability per label",
                value.line,
            )

    def _sigmoid_taken_of(self, subject: ast.AST) -> int:
        """The line where the enclosing function binds ``torch.sigmoid(subject)`` to another name:
        ``subject`` is what the sigmoid squashes, the logits."""
        function = self.analysis.function
        if function is None or not isinstance(subject, ast.Name):
            return 0
        for statement in ast.walk(function):
            if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)):
                continue
            call = statement.value
            if tables.row_for(self.analysis.qualified(call.func)) is tables.row_for("torch.sigmoid"):
                squashed = call.args[0] if call.args else None
            elif isinstance(call.func, ast.Attribute) and call.func.attr == "sigmoid" and not call.args:
                squashed = call.func.value
            else:
                continue
            if isinstance(squashed, ast.Name) and squashed.id == subject.id and not any(
                isinstance(target, ast.Name) and target.id == subject.id for target in statement.targets
            ):
                return statement.lineno
        return 0

    def _read_from_parameter(self, node: ast.AST) -> bool:
        """A local name bound to an item of a parameter: ``target = batch["targets"]`` in
        ``forward(self, outputs, batch)``."""
        while isinstance(node, ast.UnaryOp):
            node = node.operand
        if not isinstance(node, ast.Name) or self.analysis.function is None:
            return False
        return any(
            isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == node.id
            and isinstance(statement.value, ast.Subscript) and self._is_parameter(statement.value.value)
            for statement in ast.walk(self.analysis.function)
        )

    def _is_parameter(self, node: ast.AST) -> bool:
        while isinstance(node, (ast.UnaryOp, ast.Call, ast.Attribute)):
            node = node.operand if isinstance(node, ast.UnaryOp) else node.func if isinstance(node, ast.Call) else node.value
        function = self.analysis.function
        if function is None or not isinstance(node, ast.Name):
            return False
        arguments = function.args
        return node.id != "self" and node.id in {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}

    def _returned(self, statement: ast.Return) -> None:
        function = self.analysis.function
        if function is not None and sources.is_model_callee(function.name) and statement.value is not None:
            returned = self.analysis.value(statement.value)
            if returned.meaning == SOFTMAX:
                self.report(
                    statement, "softmax-class-dim",
                    f"{function.name}() is the model and returns softmax probabilities: the labels compete for one "
                    "unit of probability, and a BCE-with-logits loss or a sigmoid applied to them is wrong",
                    f"return the raw scores from {function.name}(); apply torch.sigmoid where probabilities are needed",
                    returned.line,
                )
            return
        if function is not None and function.name != "__getitem__" and statement.value is not None:
            self._one_hot_helper(function, statement.value)
        if function is None or function.name != "__getitem__":
            return
        facts = current_facts()
        if facts is not None and facts.binary_run:
            return  # one 0/1 number per image is the label of a one-output binary classifier
        for item, value, name in sources.returned_labels(statement.value, self.analysis.value):
            why = sources.class_index_label(name, value)
            if why and not _made_integer_tensor(function, item):
                self.report(
                    statement, "class-index-source",
                    f"the dataset returns {ast.unparse(item)} as the label: {why}",
                    "return a float multi-hot tensor of shape [C] (1.0 for each label of the image)",
                    value.line,
                )
                return
