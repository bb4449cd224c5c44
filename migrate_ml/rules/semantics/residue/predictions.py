"""The safety net's checks on arg-max predictions: over a model's output or a reported softmax,
stored in a table column and read back, and the most confident class.
"""

from __future__ import annotations

import ast

from migrate_ml.rules.semantics.heads import second_head_output
from migrate_ml.rules.semantics.residue.construct import _Record
from migrate_ml.rules.semantics.residue.tables import (
    _PROBABILITIES,
    _SUGGEST_THRESHOLD,
    _binding_key,
    _is_column_key,
    _off_the_class_axis,
    _over_the_class_axis,
)
from migrate_ml.rules.semantics.sources import names_submission
from migrate_ml.rules.semantics.single_label_values import (
    CLASS_INDEX,
    LABEL_NAME,
    MODEL_OUTPUT,
    PASS_THROUGH_METHODS,
    int_constant,
)


class PredictionChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.residue.detector._Detector` on arg-max predictions."""

    def _takes_indices(self, node: ast.Call) -> bool:
        parent = self.parents.get(node)
        if isinstance(parent, ast.Subscript) and int_constant(parent.slice) in (1, -1):
            return True
        if isinstance(parent, ast.Attribute) and parent.attr == "indices":
            return True
        if isinstance(parent, ast.Assign) and isinstance(parent.targets[0], ast.Tuple):
            elements = parent.targets[0].elts
            return len(elements) == 2 and not (isinstance(elements[1], ast.Name) and elements[1].id == "_")
        return False

    def _check_stored_prediction(self, node: ast.Assign) -> None:
        """``test["label"] = predictions.argmax(1)``, ``oof["preds"] = ckpt["preds"].argmax(1)``: an
        arg-max over the class axis written as a table's column is the predicted class of each
        image (a submission, out-of-fold predictions), whatever the scores were called; so is a
        name bound to one before (``pred = pred.argmax(axis=1)`` and, cells later,
        ``sample_sub["label"] = pred``), or set as an attribute of a table named as one
        (``sample_submission.label = pred_labels``)."""
        target = node.targets[0] if len(node.targets) == 1 else None
        if isinstance(target, ast.Subscript) and _is_column_key(target.slice):
            key = target.slice.value if isinstance(target.slice, ast.Constant) else ""
            self._report_stored_argmax(node.value, node, ast.unparse(target), key)
        elif isinstance(target, ast.Attribute) and names_submission(target.value):
            self._report_stored_argmax(node.value, node, ast.unparse(target), target.attr)

    def _read_argmax_column(self, node: ast.Assign) -> None:
        """``preds = result_df["preds"].values``: a column this file stores an arg-max in, read back
        from whichever table holds it now (out-of-fold frames joined across folds): class indices."""
        value = node.value
        while isinstance(value, ast.Attribute) and value.attr == "values" or (
            isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in ("to_numpy", "tolist")
        ):
            value = value.value if isinstance(value, ast.Attribute) else value.func.value
        if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant) and value.slice.value in self.argmax_columns:
            for target in node.targets:
                # the read's own line: the stored arg-max stays reported where it is taken
                self.bind(target, CLASS_INDEX, node.lineno)

    def _check_prediction_table(self, node: ast.Call) -> None:
        """``pd.DataFrame({"image_id": ids, "label": preds})`` with ``preds`` an arg-max over the classes."""
        if not (self.qualified(node.func) == "pandas.DataFrame" and node.args and isinstance(node.args[0], ast.Dict)):
            return
        statement = self.parents.get(node)
        while statement is not None and not isinstance(statement, ast.stmt):
            statement = self.parents.get(statement)
        for key, value in zip(node.args[0].keys, node.args[0].values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and statement is not None:
                self._report_stored_argmax(value, statement, f"{key.value!r}", key.value)

    def _report_stored_argmax(self, value: ast.AST, statement: ast.stmt, column: str, key: str) -> None:
        stored = ""
        if isinstance(value, ast.Name):
            stored, value = value.id, self._last_bound(value.id, statement)
        if not (isinstance(value, ast.Call) and self._argmax_over_classes(value)):
            return
        if key:
            self.argmax_columns.add(key)
        where = f" (stored as the column {column} at line {statement.lineno})" if stored else ""
        self._report(
            value,
            "argmax-prediction",
            f"an arg-max over the classes is stored as each image's predicted label (a submission or out-of-fold "
            f"column){where}: exactly one class per image",
            "store every label above the threshold instead: one 0/1 column per label, (probs > THRESHOLD).astype(int), "
            "or the names of the labels above it joined by spaces",
            (statement.lineno,) if stored else (),
        )

    def _argmax_over_classes(self, value: ast.Call) -> bool:
        subject = self.index_subject(value)
        func = value.func
        if subject is None or not (isinstance(func, ast.Attribute) and func.attr == "argmax" or self._takes_indices(value)):
            return False
        if LABEL_NAME.match(self.root_name(subject)):
            return False
        return _over_the_class_axis(value, self.is_module(func.value) if isinstance(func, ast.Attribute) else True)

    def _last_bound(self, name: str, before: ast.stmt) -> ast.AST | None:
        """What the last plain ``name = ...`` of the scope of ``before`` (its function, or the module)
        above it assigns."""
        def scope_of(node: ast.AST) -> ast.AST | None:
            scope = self.parents.get(node)
            while scope is not None and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                scope = self.parents.get(scope)
            return scope

        scope = scope_of(before)
        bindings = [
            statement for statement in ast.walk(scope or self.tree) if isinstance(statement, ast.Assign)
            and statement.lineno < before.lineno and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == name
            and scope_of(statement) is scope
        ]
        return max(bindings, key=lambda statement: statement.lineno).value if bindings else None

    def _check_most_confident_class(self, node: ast.Assign) -> None:
        """``incorrect_prob, incorrect_label = torch.max(probs, dim=0)``: the most probable class of
        one image's probabilities, shown as its predicted label."""
        target = node.targets[0] if len(node.targets) == 1 else None
        value = node.value
        if not (isinstance(target, ast.Tuple) and len(target.elts) == 2 and isinstance(value, ast.Call)):
            return
        subject = self.index_subject(value)
        if subject is None or not _PROBABILITIES.search(self.root_name(subject)):
            return
        self._report(
            value,
            "argmax-prediction",
            "the most probable class of an image's probabilities is taken as its one predicted label",
            "show every label above the threshold: (probs > THRESHOLD).nonzero() with sigmoid probabilities",
        )

    def _check_class_choice(self, node: ast.IfExp) -> None:
        """``'{}% dog'.format(p) if p > 0.5 else '{}% cat'.format(1 - p)`` with ``p`` a softmax
        probability or an arg-max: one of two class names shown per image, never both or neither."""
        if not (_is_text(node.body) and _is_text(node.orelse) and isinstance(node.test, ast.Compare)):
            return
        for operand in (node.test.left, *node.test.comparators):
            softmax = self._reported_softmax(operand)
            if softmax is not None:
                softmax.related.discard(node.lineno)
                line = softmax.line
                break
            value, line = self.value_of(operand)
            if value == CLASS_INDEX or _complement_shown(node, operand):
                break
        else:
            return
        self._report(
            node,
            "argmax-prediction",
            "one of two class names is shown per image, chosen by one predicted class (or a probability against "
            "its complement): a multi-label image may have both labels or neither",
            "show every label whose sigmoid probability is above the threshold, each with its own probability",
            (line,),
        )

    def _check_prediction(self, node: ast.Call) -> None:
        """An arg-max over a model's output: one class per image, even when nothing here compares it."""
        subject = self.index_subject(node)
        if subject is None:
            return
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name != "argmax" and not self._takes_indices(node):
            return
        if name == "argmax" and _off_the_class_axis(
            node, not isinstance(func, ast.Attribute) or self.is_module(func.value), self.parents, self.tree
        ):
            return
        value = self.value_of(subject)[0]
        if value == MODEL_OUTPUT or isinstance(subject, ast.Call) and self.is_model_call(subject):
            message = "an arg-max over the model's output predicts exactly one class per image"
        elif value is None and self._own_logits(subject) and self._over_classes(node) and self._whole_value(node):
            # ``logits = sbs.predict(x); np.argmax(logits, 1)``: whatever returned them, logits
            # are scores over the classes, and their arg-max along the class axis is one class.
            message = "an arg-max over the logits' class axis predicts exactly one class per image"
        elif value is None and self._reported_softmax(subject) and self._over_classes(node) and self._whole_value(node):
            # ``proba = F.softmax(logits, dim=-1); labels = torch.argmax(proba, dim=-1)`` in a
            # prediction helper: the softmax is reported, and its arg-max is the helper's answer,
            # reported as built on it (not as a use that the softmax's finding covers).
            softmax = self._reported_softmax(subject)
            softmax.related.discard(node.lineno)
            self._report(
                node, "argmax-prediction", "an arg-max over the softmax probabilities predicts exactly one class per image",
                _SUGGEST_THRESHOLD, (softmax.line,),
            )
            return
        elif value is None and self._returned_by_predict_step(node) and self.predicts_a_class(subject) and self._over_classes(node):
            message = (
                "predict_step returns an arg-max over the classes: trainer.predict hands exactly one class per image "
                "to whatever writes the predictions"
            )
        else:
            return
        self._report(node, "argmax-prediction", message, _SUGGEST_THRESHOLD)

    def _reported_softmax(self, subject: ast.AST) -> _Record | None:
        """The softmax over a model's output reported here that the name ``subject`` is bound to."""
        record = self.bound_constructs.get(_binding_key(subject))
        return record if record is not None and record.kind == "softmax-class-dim" else None

    def _whole_value(self, node: ast.Call) -> bool:
        """The arg-max is what a statement binds, returns or shows (``predicted = np.argmax(z, 1)``):
        one inside a comparison or a metric call is reported as that comparison or metric."""
        return isinstance(self.parents.get(node), (ast.Assign, ast.AnnAssign, ast.Return, ast.Expr))

    def _own_logits(self, subject: ast.AST) -> bool:
        """Logits by name that are this model's: a teacher's arg-max is a distillation target,
        reported at the loss it is given to."""
        return (
            self.is_logits(subject)
            and self.predicts_a_class(subject)
            and "teacher" not in self.root_name(subject).lower()
            and not self._second_head(subject)
        )

    def _second_head(self, subject: ast.AST) -> bool:
        """Logits of a second head of the module (see ``heads.second_head_output``)."""
        if not isinstance(subject, ast.Name):
            return False
        function = self.parents.get(subject)
        while function is not None and not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = self.parents.get(function)
        cls = self.parents.get(function) if function is not None else None
        return isinstance(cls, ast.ClassDef) and second_head_output(self.tree, cls, function, subject.id)

    def _over_classes(self, node: ast.Call) -> bool:
        """An arg-max or index pair along axis 1 or -1 (``max``/``topk`` are checked by their own
        dims) that picks one class: ``topk(2)`` ranks two (the most confused pair of a callback)."""
        func = node.func
        if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) == "topk":
            return self.k_of_topk(node) == 1
        if isinstance(func, ast.Attribute) and func.attr == "argmax":
            return _over_the_class_axis(node, self.is_module(func.value))
        if isinstance(func, ast.Name) and func.id == "argmax":
            return _over_the_class_axis(node, True)
        return True

    def _returned_by_predict_step(self, node: ast.Call) -> bool:
        """``return preds.argmax(1)`` in a Lightning ``predict_step``: its result is what
        ``trainer.predict`` collects as the predictions (the other steps train and score)."""
        if self.scope().function != "predict_step" or not self.scope().class_name:
            return False
        current: ast.AST = node
        parent = self.parents.get(current)
        while isinstance(parent, ast.Attribute) and parent.attr in PASS_THROUGH_METHODS:
            call = self.parents.get(parent)
            if not isinstance(call, ast.Call):
                return False
            current, parent = call, self.parents.get(call)
        return isinstance(parent, ast.Return)


def _is_text(node: ast.AST) -> bool:
    """A string shown to a reader: a literal, an f-string, or a literal's ``.format(...)`` or ``%``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        node = node.func.value
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        node = node.left
    return isinstance(node, ast.JoinedStr) or isinstance(node, ast.Constant) and isinstance(node.value, str)


def _complement_shown(node: ast.IfExp, operand: ast.expr) -> bool:
    """``'{}% cat'.format(int(100 * (1 - pred)))`` in a branch chosen by ``pred > 0.5``: the other
    class's probability read as the complement of one probability, which holds only when exactly one
    of the two classes is present (sigmoid probabilities of a multi-label head do not sum to 1)."""
    if not (isinstance(operand, ast.Name) and any(
        isinstance(side, ast.Constant) and side.value == 0.5 for side in (node.test.left, *node.test.comparators)
    )):
        return False
    return any(
        isinstance(part, ast.BinOp) and isinstance(part.op, ast.Sub)
        and isinstance(part.left, ast.Constant) and part.left.value == 1
        and isinstance(part.right, ast.Name) and part.right.id == operand.id
        for branch in (node.body, node.orelse) for part in ast.walk(branch)
    )

