"""The safety net's checks on metrics: metric objects and calls that count one class per sample,
arg-max comparisons and branches on the predicted class, accuracies averaged over every element
of thresholded predictions, ``.item()`` per sample and counts of matches.
"""

from __future__ import annotations

import ast

from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.metrics import task_holder
from migrate_ml.rules.semantics.residue.tables import (
    _HF_CLASS_METRICS,
    _IGNITE_MULTILABEL_METRICS,
    _IGNITE_SINGLE_LABEL_ONLY,
    _METRIC_FUNCTION,
    _METRIC_PACKAGES,
    _METRIC_PREDICTION_KEYWORDS,
    _METRIC_UPDATE_METHODS,
    _SUGGEST_EXACT_MATCH,
    _SUGGEST_THRESHOLD,
    _SUGGEST_TORCHMETRICS,
    _TOP_K_METRIC,
    _TORCHMETRICS_ROOTS,
    _TORCHMETRICS_TASK_METRICS,
)
from migrate_ml.rules.semantics.single_label_values import (
    CLASS_INDEX,
    MATCHES,
    MULTI_HOT,
    PASS_THROUGH_METHODS,
    int_constant,
)


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _is_self_attribute(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"


def _holder_key(node: ast.AST) -> str | None:
    """``total`` or ``self.total``: a name or attribute a running count is kept in."""
    if isinstance(node, ast.Name):
        return node.id
    if _is_self_attribute(node):
        return "self." + node.attr
    return None


class MetricChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.residue.detector._Detector` on metrics."""

    def _note_metric_object(self, targets, value: ast.AST) -> None:
        """Remember names bound to metric objects, so that ``acc(preds, y)`` is a metric call."""
        if isinstance(value, ast.Call) and (
            self.qualified(value.func).startswith(_METRIC_PACKAGES) or self._run_metric_class(value.func)
        ):
            for target in targets:
                if isinstance(target, ast.Name):
                    self.metric_objects.add(target.id)
                elif isinstance(target, ast.Attribute):
                    self.metric_objects.add(target.attr)

    def _run_metric_class(self, func: ast.AST) -> bool:
        """``AccuracyMeter`` imported from a file of the run whose ``update`` scores its inputs."""
        facts = current_facts()
        return facts is not None and bool(facts.metric_classes) and facts.is_metric_class(self.qualified(func))

    def _check_equality(self, node: ast.AST, operands: list[ast.AST], equal: bool) -> None:
        """An arg-max compared with anything but a constant; a multi-hot ``==`` averaged over all entries.

        ``!=`` averaged over all entries is the Hamming loss, a multi-label metric: left alone.
        """
        values = [self.value_of(operand) for operand in operands]
        constants = [isinstance(operand, ast.Constant) for operand in operands]
        if any(constants):
            self._check_class_branches(node, values)
            return
        index_lines = [line for value, line in values if value == CLASS_INDEX]
        if index_lines and self.ranked_lines.intersection(index_lines):
            self._report(
                node,
                "topk-accuracy",
                "the top-ranked class indices of each image (top-k or a sort over the classes) are compared with "
                "its one true class: top-k accuracy, which has no multi-label meaning",
                "replace it with thresholded metrics: exact match (preds == labels.bool()).all(dim=1), F1 (micro/macro), mAP",
                tuple(index_lines),
            )
            return
        if index_lines and self._runs_over_classes(node, operands):
            self._report(
                node,
                "argmax-compared",
                "the arg-max (one class per image) is compared with each class of a loop over the classes "
                "(pred == i): the samples predicted as that one class",
                "threshold sigmoid probabilities (p > THRESHOLD) and take the class's column: preds[:, i] "
                "(and labels[:, i] for the multi-hot labels)",
                tuple(index_lines),
            )
            return
        if index_lines:
            self._note_index_labels(operands, values, node.lineno)
            self._report(
                node,
                "argmax-compared",
                "an arg-max (one class per image) is compared with the labels; with multi-hot labels this "
                "compares a class index with a [B, C] row",
                f"{_SUGGEST_THRESHOLD}, then {_SUGGEST_EXACT_MATCH}",
                tuple(index_lines),
            )
            return
        multi_hot_lines = [line for value, line in values if value == MULTI_HOT]
        if multi_hot_lines and equal and self._per_class_count(operands):
            self._report(
                node,
                "per-element-accuracy",
                "a per-class count of correct predictions selects the images of one class (y == c) and compares "
                "their prediction with that class index: with multi-hot labels an image belongs to several classes "
                "and its prediction is a row of C decisions, not one class",
                "count per label on [B, C] rows: true positives ((preds == 1) & (labels == 1)).sum(0) against "
                "labels.sum(0) (per-class recall), or torchmetrics MultilabelRecall(num_labels=C, average=None)",
                tuple(multi_hot_lines),
            )
            return
        if multi_hot_lines and equal and self._averaged_over_every_element(node) and not self._label_wise_accuracy(node):
            self._report(
                node,
                "per-element-accuracy",
                "a thresholded multi-label prediction is compared element by element and averaged over all "
                "B x C entries (label-wise accuracy, dominated by negatives; a count over B images exceeds 100 %)",
                "reduce per image first: (preds == labels.bool()).all(dim=1) for exact match, or report F1/mAP/Hamming loss",
                tuple(multi_hot_lines),
            )

    def _runs_over_classes(self, node: ast.AST, operands: list[ast.AST]) -> bool:
        """An operand that is the variable of an enclosing ``for i in range(...)``: one class at a time."""
        names = {operand.id for operand in operands if isinstance(operand, ast.Name)}
        above = self.parents.get(node)
        while above is not None and names:
            if (
                isinstance(above, ast.For)
                and isinstance(above.target, ast.Name)
                and above.target.id in names
                and isinstance(above.iter, ast.Call)
                and isinstance(above.iter.func, ast.Name)
                and above.iter.func.id == "range"
            ):
                return True
            above = self.parents.get(above)
        return False

    def _check_class_branches(self, node: ast.AST, values: list[tuple[object, int]]) -> None:
        """``if pred_idx[0] == 0: ... elif pred_idx[0] == 4: ...``: the predicted class index is
        matched against class numbers, one branch (one class shown) per image. Reported once, at
        the ``if`` that starts the chain."""
        statement = self.parents.get(node)
        index_lines = [line for value, line in values if value == CLASS_INDEX]
        if not (index_lines and isinstance(statement, ast.If) and statement.test is node):
            return
        if not (len(statement.orelse) == 1 and isinstance(statement.orelse[0], ast.If)):
            return  # one test is a decision about one class, not a display of the predicted one
        above = self.parents.get(statement)
        if isinstance(above, ast.If) and above.orelse == [statement]:
            return  # an elif of a chain reported at its first test
        self._report(
            node,
            "argmax-prediction",
            "the predicted class index is matched against class numbers (if pred == 0 ... elif pred == 1): each "
            "image shows exactly one class",
            "show every label above the threshold: for i in (probs > THRESHOLD).nonzero(): ... with sigmoid "
            "probabilities",
            tuple(index_lines),
        )

    @staticmethod
    def _per_class_count(operands: list[ast.AST]) -> bool:
        """``predicted[y == c] == c``: the predictions of the images whose label is ``c``, compared
        with ``c`` itself (a per-class table of correct counts)."""
        for selected, other in ((operands[0], operands[-1]), (operands[-1], operands[0])):
            mask = selected.slice if isinstance(selected, ast.Subscript) else None
            if not (isinstance(mask, ast.Compare) and len(mask.ops) == 1 and isinstance(mask.ops[0], ast.Eq)):
                continue
            sides = [mask.left, mask.comparators[0]]
            if isinstance(other, ast.Name) and any(isinstance(side, ast.Name) and side.id == other.id for side in sides):
                return True
        return False

    def _averaged_over_every_element(self, node: ast.AST) -> bool:
        """Whether the comparison is summed or averaged without reducing each row (``.all(1)``) first."""
        current = node
        while True:
            parent = self.parents.get(current)
            if isinstance(parent, ast.Attribute) and parent.value is current:
                call = self.parents.get(parent)
                if not isinstance(call, ast.Call) or call.func is not parent:
                    return False
                method = parent.attr
                if method in ("all", "any", "prod"):
                    return False
                if method in ("sum", "mean", "count_nonzero"):
                    return not call.args and not call.keywords
                if method in PASS_THROUGH_METHODS or method in ("squeeze", "item"):
                    current = call
                    continue
                return False
            if isinstance(parent, ast.Call) and current in parent.args:
                name = self.qualified(parent.func).split(".")[-1]
                if name in ("sum", "mean", "count_nonzero", "average"):
                    return len(parent.args) == 1 and not parent.keywords
                if name in ("float", "int") and isinstance(parent.func, ast.Name):
                    return False
                return False
            return False

    def _label_wise_accuracy(self, matches: ast.AST) -> bool:
        """Whether the count of ``matches`` is divided by an element count, B x C, and only by one:
        ``(preds == labels).sum() / labels.numel()``, or ``correct += ...`` over ``total += labels.numel()``.
        That is label-wise (Hamming) accuracy, bounded by 1, a multi-label metric; a count divided by
        the number of images is not."""
        count = matches
        while True:
            parent = self.parents.get(count)
            call = self.parents.get(parent) if isinstance(parent, ast.Attribute) and parent.value is count else None
            if isinstance(call, ast.Call) and call.func is parent and (
                parent.attr in PASS_THROUGH_METHODS or parent.attr in ("sum", "item", "count_nonzero")
            ):
                count = call
                continue
            break
        if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Div) and parent.left is count:
            return self._element_count(parent.right, parent)
        if isinstance(parent, (ast.Assign, ast.AugAssign)) and parent.value is count:
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            holder = self._enclosing(parent, ast.ClassDef if _is_self_attribute(targets[0]) else _FUNCTIONS)
            key = _holder_key(targets[0])
            if holder is None or key is None or len(targets) != 1:
                return False
            divisions = [
                division for division in ast.walk(holder)
                if isinstance(division, ast.BinOp) and isinstance(division.op, ast.Div)
                and any(_holder_key(name) == key for name in ast.walk(division.left))
            ]
            return bool(divisions) and all(self._element_count(division.right, holder) for division in divisions)
        return False

    def _element_count(self, node: ast.AST, where: ast.AST) -> bool:
        """``y.numel()``, ``torch.numel(y)``, ``y.size(0) * y.size(1)``, ``B * C`` after
        ``B, C = y.shape``, or a name or ``self.`` attribute that only accumulates those."""
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("numel", "nelement") and not node.args:
                return True
            return self.qualified(func) == "torch.numel"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            dims = {self._dimension(node.left, where), self._dimension(node.right, where)}
            return None not in dims and len(dims) == 2
        key = _holder_key(node)
        if key is None:
            return False
        kind = ast.ClassDef if _is_self_attribute(node) else _FUNCTIONS
        holder = where if isinstance(where, kind) else self._enclosing(where, kind)
        if holder is None:
            return False
        values = [
            statement.value for statement in ast.walk(holder)
            if isinstance(statement, (ast.Assign, ast.AugAssign)) and any(_holder_key(target) == key for target in (
                statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            ))
        ]
        counted = [value for value in values if not isinstance(value, ast.Constant)]
        return bool(counted) and all(
            not isinstance(value, ast.Name) and self._element_count(value, where) for value in counted
        )

    def _dimension(self, node: ast.AST, where: ast.AST) -> int | None:
        """The dimension ``y.size(1)``, ``y.shape[1]`` or ``C`` (after ``B, C = y.shape``) reads; -1 is 1."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "size" \
                and len(node.args) == 1:
            index = int_constant(node.args[0])
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
            index = int_constant(node.slice)
        elif isinstance(node, ast.Name):
            function = where if isinstance(where, _FUNCTIONS) else self._enclosing(where, _FUNCTIONS)
            for assign in ast.walk(function) if function is not None else ():
                if not isinstance(assign, ast.Assign):
                    continue
                target, value = assign.targets[0], assign.value
                if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "size" \
                        and not value.args:
                    value = value.func.value
                elif isinstance(value, ast.Attribute) and value.attr == "shape":
                    value = value.value
                else:
                    continue
                if isinstance(target, ast.Tuple) and len(target.elts) == 2:
                    for position, element in enumerate(target.elts):
                        if isinstance(element, ast.Name) and element.id == node.id:
                            return position
            return None
        else:
            return None
        return {0: 0, 1: 1, -1: 1}.get(index) if isinstance(index, int) else None

    def _enclosing(self, node: ast.AST, kind) -> ast.AST | None:
        current = self.parents.get(node)
        while current is not None and not isinstance(current, kind):
            current = self.parents.get(current)
        return current

    def _check_eq_method(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("eq", "ne", "equal") and node.args:
            if self.is_module(func.value):
                if len(node.args) >= 2:
                    self._check_equality(node, list(node.args[:2]), func.attr != "ne")
            else:
                self._check_equality(node, [func.value, node.args[0]], func.attr != "ne")

    def _metric_kind(self, node: ast.Call) -> tuple[str, str] | None:
        """(why, what to use) for a metric construction that counts class indices; None when it is multi-label."""
        qualified = self.qualified(node.func)
        parts = qualified.split(".")
        name = parts[-1]
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        # The task may be positional: Accuracy("multiclass", num_classes=10), accuracy(p, y, "multiclass").
        task = keywords.get("task") or next(
            (a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)), None
        )
        task_value = task.value if isinstance(task, ast.Constant) else None
        if qualified.startswith(_TORCHMETRICS_ROOTS):
            if name.startswith("Multiclass") or name.startswith("multiclass_"):
                return f"torchmetrics {name} scores one class index per image", _SUGGEST_TORCHMETRICS
            if name in _TORCHMETRICS_TASK_METRICS:
                if task_value == "multiclass":
                    return f'torchmetrics {name}(task="multiclass") scores one class index per image', _SUGGEST_TORCHMETRICS
                if task is None and "num_labels" not in keywords and parts[-2:-1] != ["functional"] and name[0].isupper():
                    return f"torchmetrics {name}() without task= scores class indices", _SUGGEST_TORCHMETRICS
            return None
        if qualified.startswith("ignite.metrics"):
            if name in _IGNITE_SINGLE_LABEL_ONLY:
                return f"ignite {name} ranks one true class per image", "drop it; report thresholded metrics (exact match, F1, mAP)"
            if name in _IGNITE_MULTILABEL_METRICS:
                flag = keywords.get("is_multilabel")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    return (
                        f"ignite {name}() without is_multilabel=True expects one class index per image",
                        f"{name}(output_transform=..., is_multilabel=True) on thresholded (sigmoid > THRESHOLD) outputs",
                    )
            return None
        if qualified in ("evaluate.load", "datasets.load_metric") and node.args:
            first = node.args[0]
            config = node.args[1] if len(node.args) > 1 else keywords.get("config_name")
            if (
                isinstance(first, ast.Constant)
                and first.value in _HF_CLASS_METRICS
                and not (isinstance(config, ast.Constant) and config.value == "multilabel")
            ):
                return (
                    f'evaluate.load("{first.value}") without the "multilabel" configuration expects one class per example',
                    f'evaluate.load("{first.value}", "multilabel") fed thresholded multi-hot predictions',
                )
        if (
            isinstance(keywords.get("task"), ast.Constant)
            and task_value == "multiclass"
            and "." in qualified
            and not qualified.startswith(_METRIC_PACKAGES)
            and _METRIC_FUNCTION.search(name)
        ):
            # get_metrics(task="multiclass", ...) imported from a module of the project: its metric factory,
            # handed the task it builds its library metrics with (a name the file binds itself is its own class)
            return (
                f'{name}(task="multiclass") builds metrics that score one class index per image',
                f'pass task="multilabel" with num_labels=C if {name} hands the task to torchmetrics (threshold=THRESHOLD; '
                "accuracy: ExactMatch), fed sigmoid probabilities and int multi-hot targets",
            )
        return None

    def _check_class_metric(self, node: ast.Call) -> None:
        if self.multiclass_tasks and self._task_from_holder(node):
            return
        kind = self._metric_kind(node)
        if kind is not None:
            self._report(node, "class-index-metric", *kind)
            return
        keywords = {k.arg for k in node.keywords}
        name = self.qualified(node.func).split(".")[-1]
        if _TOP_K_METRIC.match(name) and len(node.args) >= 2 and name not in self.defined:
            # pycls's ``meters.topk_errors(preds, labels, [1, 5])``, defined in another module
            self._report(
                node,
                "topk-accuracy",
                f"{name} ranks the classes of each image against its one true class (top-k accuracy or error); "
                "it has no multi-label meaning",
                "replace it with thresholded metrics: exact match, F1 (micro/macro), mAP",
            )
            return
        if "topk" in keywords and _METRIC_FUNCTION.search(name) and not (
                isinstance(node.func, ast.Name) and node.func.id in self.exact_match_helpers):
            self._report(
                node,
                "topk-accuracy",
                "top-k accuracy ranks one true class per image; it has no multi-label meaning",
                "replace it with thresholded metrics: exact match, F1 (micro/macro), mAP",
            )

    def _task_from_holder(self, node: ast.Call) -> bool:
        """``Accuracy(task=self.task, num_classes=C)`` where the file sets ``self.task = "multiclass"``:
        reported at the metric and, once, at that assignment (the one line that picks the task of
        them all)."""
        qualified = self.qualified(node.func)
        name = qualified.rpartition(".")[2]
        if not (qualified.startswith(_TORCHMETRICS_ROOTS) and name in _TORCHMETRICS_TASK_METRICS):
            return False
        task = next((k.value for k in node.keywords if k.arg == "task"), None)
        if task is None and node.args and not isinstance(node.args[0], ast.Starred) and name[0].isupper():
            task = node.args[0]  # Accuracy(task, num_classes=C): a class takes the task first
        holder = None if task is None else task_holder(task, self.multiclass_tasks)
        if holder is None:
            return False
        key, assignment = holder
        self._report(
            node, "class-index-metric",
            f'torchmetrics {name}(task={key}) scores one class index per image: {key} is "multiclass" '
            f"(line {assignment.lineno})",
            f'set {key} to "multilabel" (line {assignment.lineno}) and give the metric num_labels=C, '
            "threshold=THRESHOLD instead of num_classes (accuracy: ExactMatch, every label of an image right), "
            "fed sigmoid probabilities and int multi-hot targets",
            (assignment.lineno,),
        )
        known = self.task_assignments.get(key)
        if known is None:
            record = self._report(
                assignment, "class-index-metric", "",
                'set it to "multilabel" and give those metrics num_labels=C, threshold=THRESHOLD instead of num_classes',
                where_walked=False,
            )
            if record is None:
                return True
            record.followed = False  # the assignment statement being walked binds the metric, not this
            known = self.task_assignments[key] = (record, [])
        record, users = known
        users.append(node.lineno)
        record.related.add(node.lineno)
        # each line named as "line N", which the engine moves with the rewrite's edits
        built = ", ".join(f"line {line}" for line in users)
        record.message = f'{key} = "multiclass" picks torchmetrics\' single-label task for the metrics built with it ({built})'
        return True

    def _is_metric_call(self, node: ast.Call) -> bool:
        """``accuracy_score(...)``, ``acc(...)`` on a metric object, ``metric.update(...)``/``add_batch``."""
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        receiver_name = ""
        if isinstance(func, ast.Attribute):
            receiver = func.value
            receiver_name = receiver.attr if isinstance(receiver, ast.Attribute) else receiver.id if isinstance(receiver, ast.Name) else ""
        return (
            bool(_METRIC_FUNCTION.search(name))
            or name in self.metric_objects
            or (name in _METRIC_UPDATE_METHODS and (receiver_name in self.metric_objects or bool(_METRIC_FUNCTION.search(receiver_name))))
        )

    def _check_metric_inputs(self, node: ast.Call) -> None:
        if not self._is_metric_call(node):
            return
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        arguments = [*node.args, *(k.value for k in node.keywords if k.arg in _METRIC_PREDICTION_KEYWORDS)]
        flattened = [line for line in map(self._flattened_multi_hot, arguments) if line]
        if flattened and "acc" in name.lower():
            self._report(
                node,
                "per-element-accuracy",
                f"{name} of flattened multi-hot rows scores each of the B x C labels separately (label-wise "
                "accuracy, dominated by negatives)",
                "pass the [B, C] rows unflattened (accuracy_score then gives exact match), or report F1/mAP/Hamming loss",
                tuple(flattened),
            )
            return
        lines = [line for value, line in (self.value_of(argument) for argument in arguments) if value == CLASS_INDEX]
        if lines:
            self._report(
                node,
                "argmax-metric",
                f"{name} is given arg-max class indices (one label per image)",
                f"{_SUGGEST_THRESHOLD}, and pass those multi-hot rows (with multi-hot labels) to a multi-label metric",
                tuple(lines),
            )

    def _flattened_multi_hot(self, node: ast.AST) -> int:
        """The line of the prediction when ``node`` flattens thresholded rows (``preds.ravel()``,
        ``preds.reshape(-1)``, ``np.ravel(preds)``); 0 otherwise."""
        if not isinstance(node, ast.Call):
            return 0
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("ravel", "flatten") and not node.args:
            subject = func.value
        elif isinstance(func, ast.Attribute) and func.attr in ("reshape", "view") and len(node.args) == 1 \
                and int_constant(node.args[0]) == -1:
            subject = func.value
        elif self.qualified(func).split(".")[-1] in ("ravel", "flatten") and len(node.args) == 1:
            subject = node.args[0]
        else:
            return 0
        value, line = self.value_of(subject)
        return line if value == MULTI_HOT else 0

    def _check_item(self, node: ast.Call) -> None:
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr == "item" and not node.args):
            return
        subject = func.value
        if not isinstance(subject, ast.Subscript):
            return
        value, line = self.value_of(subject.value)
        if value not in (CLASS_INDEX, MULTI_HOT):
            # ``label[i, j]`` is one label of one image, a number
            label = subject.value.id if isinstance(subject.value, ast.Name) and not isinstance(subject.slice, ast.Tuple) else ""
            compared = self.multi_hot_labels.get((self.scope().line, label))
            if compared is not None:
                self._report(
                    node,
                    "class-index-target",
                    f"{ast.unparse(subject)} is one image's label read as one number, but {label} holds multi-hot "
                    f"[B, C] rows (compared whole with the thresholded prediction at line {compared}): .item() raises on a row of C labels",
                    f"a row of C labels has no one value: read it whole ({ast.unparse(subject)}.bool(), the image's labels) "
                    "or count per label (false positives: (pred & ~label.bool()).sum())",
                    (compared,),
                )
            return
        self._report(
            node,
            "prediction-item",
            "a per-sample .item() takes one number per image; a multi-label prediction is a row of C decisions",
            "collect whole rows instead (preds.tolist() / torch.cat of [B, C] batches)",
            (line,),
        )

    def _check_element_count(self, node: ast.Call) -> None:
        """``matches.long().sum()`` where ``matches = preds == labels`` on thresholded predictions."""
        func = node.func
        if node.args or node.keywords:
            subject = node.args[0] if len(node.args) == 1 and not node.keywords else None
            if subject is None or self.qualified(func).split(".")[-1] not in ("sum", "mean", "count_nonzero"):
                return
            if not (isinstance(func, ast.Attribute) and self.is_module(func.value)):
                return
        elif isinstance(func, ast.Attribute) and func.attr in ("sum", "mean", "count_nonzero"):
            subject = func.value
        else:
            return
        while isinstance(subject, ast.Call) and isinstance(subject.func, ast.Attribute) and subject.func.attr in PASS_THROUGH_METHODS:
            subject = subject.func.value
        if isinstance(subject, ast.Compare):
            return  # the comparison itself is checked where it is written
        value, line = self.value_of(subject)
        if value == MATCHES and not self._label_wise_accuracy(node):
            self._report(
                node,
                "per-element-accuracy",
                "element-wise matches of a thresholded multi-label prediction are counted over all B x C entries "
                "(label-wise accuracy; divided by the number of images it exceeds 100 %)",
                "reduce per image first: (preds == labels.bool()).all(dim=1) for exact match, or report F1/mAP/Hamming loss",
                (line,),
            )
