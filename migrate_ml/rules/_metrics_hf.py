"""ML023's proofs that an array holds the classifier's logits.

Hugging Face ``compute_metrics(eval_pred)`` receives them as the first element of its
``EvalPrediction`` (``logits, labels = eval_pred``, ``eval_pred.predictions``);
``trainer.predict(ds).predictions`` holds them too; and in a plain loop they are a model call's
output converted with ``.detach().cpu().numpy()``.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules.semantics.bindings import sole_binding
from migrate_ml.rules.semantics.flow import call_argument
from migrate_ml.rules.semantics.predictions import is_model_callee, strip_transparent
from migrate_ml.rules._base import enclosing

EVALUATE_LOADS = frozenset({"evaluate.load", "datasets.load_metric"})
EVALUATE_CLASS_METRICS = frozenset(
    {"accuracy", "f1", "precision", "recall", "roc_auc", "matthews_correlation", "confusion_matrix", "glue", "xnli"}
)
"""``evaluate`` metrics that score one class index per example unless loaded as ``"multilabel"``
(GLUE's tasks are single-label classification, but for ``stsb``, a regression)."""
EVALUATE_NOT_CLASSIFICATION = frozenset({("glue", "stsb")})

PREDICT_METHODS = frozenset({"predict"})
"""``trainer.predict(ds).predictions`` holds the logits, as ``EvalPrediction.predictions`` does."""


class LogitsProofs:
    """Mixin for ML023: is this expression the classifier's logits?"""

    def _is_logits(
        self, expression: cst.BaseExpression, excluded: cst.CSTNode | None, depth: int, tensor_ok: bool
    ) -> bool:
        """The classifier's logits: a model call's output or Hugging Face's ``predictions``.

        ``tensor_ok`` False asks for a NumPy array: a model call counts only behind ``.numpy()``.
        """
        if depth > 5:
            return False
        stripped = self._strip(expression)
        tensor_ok = tensor_ok or converted_to_numpy(expression, stripped)
        expression = stripped
        if isinstance(expression, cst.Call):
            return tensor_ok and is_model_callee(expression.func)
        if isinstance(expression, cst.Attribute) and expression.attr.value == "predictions":
            return self._is_prediction_output(expression.value, depth + 1)
        if (
            isinstance(expression, cst.Subscript)
            and len(expression.slice) == 1
            and isinstance(expression.slice[0].slice, cst.Index)
            and isinstance(expression.slice[0].slice.value, cst.Integer)
            and expression.slice[0].slice.value.value == "0"
        ):
            return self._is_logits(expression.value, excluded, depth + 1, tensor_ok)  # logits = logits[0] of a tuple output
        if not isinstance(expression, cst.Name):
            return False
        if self._is_eval_prediction(expression):
            return False  # the (logits, labels) pair itself, not the logits
        bindings = self._bindings(expression, excluded)
        if not bindings:
            return False
        for bound in bindings:
            if isinstance(bound, cst.Param):
                if self._parameter_logits(bound, depth, tensor_ok):
                    continue
                return False
            value = self._bound_value(bound)
            if value is None:
                return False
            kind, node = value
            if kind == "first-of-eval-pred":
                continue
            if not self._is_logits(node, self._excluded(self._statement(node)), depth + 1, tensor_ok):
                return False
        return True

    def _parameter_logits(self, param: cst.Param, depth: int, tensor_ok: bool) -> bool:
        """A helper's parameter (``def accuracy(outputs, labels)``) that every call of the helper
        in this file feeds the logits (``accuracy(model(x).detach().cpu().numpy(), y)``)."""
        function = self.get_metadata(ParentNodeProvider, self.get_metadata(ParentNodeProvider, param, None), None)
        if not isinstance(function, cst.FunctionDef) or isinstance(
            enclosing(self, function, (cst.ClassDef, cst.FunctionDef)), cst.ClassDef
        ):
            return False  # methods are called through their object, which this does not follow
        positional = [*function.params.posonly_params, *function.params.params]
        index = next((i for i, p in enumerate(positional) if p is param), None)
        calls = self._helper_calls.get(function.name.value, [])
        for call in calls:
            argument = call_argument(call, index if index is not None else 10**6, param.name.value)
            if argument is None or not self._is_logits(
                argument.value, self._excluded(self._statement(call)), depth + 1, tensor_ok
            ):
                return False
        return bool(calls)

    def _bindings(self, name: cst.Name, excluded: cst.CSTNode | None) -> list[cst.CSTNode]:
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return []
        found = []
        for assignment in scope[name.value]:
            node = getattr(assignment, "node", None)
            if node is None:
                return []
            if excluded is not None and self._statement(node) is excluded:
                continue  # `logits = logits[0]`, `preds = np.argmax(preds, 1)`: the statement reads the binding before it
            found.append(node)
        return found

    def _bound_value(self, bound: cst.CSTNode) -> tuple[str, cst.BaseExpression] | None:
        """What a binding assigns: ``("value", expr)``, or ``("first-of-eval-pred", name)`` for
        ``logits, labels = eval_pred``; None for parameters, loops and anything else."""
        parent = self.get_metadata(ParentNodeProvider, bound, None)
        if isinstance(parent, cst.AssignTarget):
            statement = self.get_metadata(ParentNodeProvider, parent, None)
            if isinstance(statement, cst.Assign) and len(statement.targets) == 1:
                return "value", statement.value
            return None
        if isinstance(parent, cst.AnnAssign) and parent.value is not None:
            return "value", parent.value
        if not isinstance(parent, cst.Element):
            return None
        tuple_node = self.get_metadata(ParentNodeProvider, parent, None)
        target = self.get_metadata(ParentNodeProvider, tuple_node, None)
        statement = self.get_metadata(ParentNodeProvider, target, None)
        if not (isinstance(tuple_node, (cst.Tuple, cst.List)) and isinstance(target, cst.AssignTarget) and isinstance(statement, cst.Assign)):
            return None
        position = list(tuple_node.elements).index(parent)
        value = statement.value
        if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(tuple_node.elements):
            return "value", value.elements[position].value
        if position == 0 and isinstance(value, cst.Name) and self._is_eval_prediction(value):
            return "first-of-eval-pred", value
        return None

    def _is_eval_prediction(self, name: cst.Name) -> bool:
        """The first parameter of ``compute_metrics``: Hugging Face's ``EvalPrediction``."""
        param = sole_binding(self, name)
        if not isinstance(param, cst.Param):
            return False
        function = enclosing(self, param, cst.FunctionDef)
        if not isinstance(function, cst.FunctionDef) or "compute_metrics" not in function.name.value:
            return False
        params = [p for p in function.params.params if p.name.value not in ("self", "cls")]
        return bool(params) and params[0] is param

    def _is_prediction_output(self, expression: cst.BaseExpression, depth: int) -> bool:
        """``eval_pred`` of compute_metrics, or ``trainer.predict(...)`` (directly or by name)."""
        expression = self._strip(expression)
        if isinstance(expression, cst.Call):
            return isinstance(expression.func, cst.Attribute) and expression.func.attr.value in PREDICT_METHODS
        if not isinstance(expression, cst.Name) or depth > 5:
            return False
        if self._is_eval_prediction(expression):
            return True
        bindings = self._bindings(expression, None)
        for bound in bindings:
            value = self._bound_value(bound)
            if value is None or value[0] != "value" or not self._is_prediction_output(value[1], depth + 1):
                return False
        return bool(bindings)

    def _strip(self, expression: cst.BaseExpression) -> cst.BaseExpression:
        """Drop ``.numpy()``/``.cpu()``/``.detach()``… and the transparent chains of ML020's proof."""
        while True:
            stripped = strip_transparent(expression)
            if (
                isinstance(stripped, cst.Call)
                and isinstance(stripped.func, cst.Attribute)
                and stripped.func.attr.value == "numpy"
                and not stripped.args
            ):
                stripped = stripped.func.value
            if stripped is expression:
                return expression
            expression = stripped

    def _statement(self, node: cst.CSTNode) -> cst.CSTNode | None:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            current = self.get_metadata(ParentNodeProvider, current, None)
        return current

    def _excluded(self, statement: cst.CSTNode | None) -> cst.CSTNode | None:
        """The statement whose own binding cannot reach its reads: any statement outside loops."""
        current = statement
        while current is not None and not isinstance(current, (cst.FunctionDef, cst.Module)):
            current = self.get_metadata(ParentNodeProvider, current, None)
            if isinstance(current, (cst.For, cst.While)):
                return None
        return statement

    def _in_compute_metrics(self, node: cst.CSTNode) -> bool:
        function = enclosing(self, node, cst.FunctionDef)
        return isinstance(function, cst.FunctionDef) and "compute_metrics" in function.name.value


def single_label_evaluate_load(call: cst.Call) -> str | None:
    """``"glue", "mrpc"`` for ``evaluate.load("glue", "mrpc")`` (the caller checks the name):
    the metric and configuration of a load that scores class indices; None for a multilabel
    configuration, a metric that is not a classification one, or names it cannot read."""
    name = call_argument(call, 0, "path")
    config = call_argument(call, 1, "config_name")
    if name is None or not isinstance(name.value, cst.SimpleString):
        return None
    metric = name.value.evaluated_value
    config_value = config.value.evaluated_value if config is not None and isinstance(config.value, cst.SimpleString) else None
    if config is not None and config_value is None:
        return None  # a configuration from a variable: it may be "multilabel"
    if metric not in EVALUATE_CLASS_METRICS or config_value == "multilabel" or (metric, config_value) in EVALUATE_NOT_CLASSIFICATION:
        return None
    return f'"{metric}", "{config_value}"' if config_value else f'"{metric}"'


def converted_to_numpy(expression: cst.BaseExpression, inner: cst.BaseExpression) -> bool:
    """True when a ``.numpy()`` call lies between ``expression`` and the ``inner`` node it wraps."""
    while expression is not inner:
        if isinstance(expression, cst.Attribute):  # .data, .logits
            expression = expression.value
        elif isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
            if expression.func.attr.value == "numpy":
                return True
            method_form = not (isinstance(expression.func.value, cst.Name) and expression.func.value.value == "torch")
            expression = expression.func.value if method_form else expression.args[0].value  # torch.squeeze(z)
        else:
            return False
    return False
