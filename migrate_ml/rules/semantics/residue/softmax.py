"""The safety net's checks on softmax over the classes: over a model's output, written out as
``exp / sum(exp)``, returned by ``forward`` (directly or through a name), or the last layer of an
``nn.Sequential``.
"""

from __future__ import annotations

import ast

from migrate_ml.rules.semantics.residue.construct import _Record
from migrate_ml.rules.semantics.residue.tables import (
    _NOT_CLASS_SCORES,
    _SEQUENTIAL,
    _SOFTMAX_LAYERS,
    _off_the_class_axis,
    _binding_key,
    _name_of,
)
from migrate_ml.rules.semantics.single_label_values import ATTENTION, MODEL_OUTPUT, int_constant


def _exp_argument(node: ast.AST) -> ast.AST | None:
    """``z`` of ``np.exp(z)``, ``torch.exp(z)`` or ``z.exp()``."""
    if not (isinstance(node, ast.Call) and _name_of(node) == "exp"):
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and not node.args:
        return func.value
    return node.args[0] if node.args else None


_REDUCTIONS = frozenset({"sum", "mean", "prod", "log", "cumsum"})


class SoftmaxChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.residue.detector._Detector` on softmax."""

    def _check_written_softmax(self, node: ast.BinOp) -> None:
        """``np.exp(z) / np.sum(np.exp(z))``: a softmax written out over a model's class scores."""
        if not isinstance(node.op, ast.Div):
            return
        numerator = _exp_argument(node.left)
        denominator = node.right
        if not (isinstance(denominator, ast.Call) and _name_of(denominator) == "sum"):
            return
        func = denominator.func
        if isinstance(func, ast.Attribute) and not self.is_module(func.value):
            summed: ast.AST | None = func.value  # ``np.exp(z).sum(axis=1)``
        else:
            summed = denominator.args[0] if denominator.args else None
        inner = _exp_argument(summed) if summed is not None else None
        if numerator is None or inner is None or ast.dump(inner) != ast.dump(numerator):
            return
        if not self.model_output_like(numerator):
            return
        self._report(
            node,
            "softmax-class-dim",
            "a softmax written out (exp divided by the sum of exp) makes the labels compete for one unit of probability",
            "use the sigmoid of each score, 1 / (1 + np.exp(-z)) or torch.sigmoid(z): one independent probability per label",
        )

    def _check_softmax(self, node: ast.Call) -> None:
        func = node.func
        # ``smax = nn.Softmax(); smax(out)``: the module is known by what built it, not by its name,
        # and the finding goes where it is built (the line to change).
        built = self._softmax_module_called(node)
        # ``self.fc(x).softmax(dim=1)`` has no qualified name: the attribute still names the call.
        name = "softmax" if built is not None else func.attr if isinstance(func, ast.Attribute) else self.qualified(func).split(".")[-1]
        if name not in ("softmax", "log_softmax"):
            return
        scope = self.scope()
        if scope.function == "__init__" or ATTENTION.search(scope.function) or ATTENTION.search(scope.class_name):
            return
        # ``self.softmax(x)`` calls an ``nn.Softmax`` layer on ``x``; ``x.softmax(dim=1)`` is a method of ``x``.
        layer = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"
        method = isinstance(func, ast.Attribute) and not self.is_module(func.value) and not layer
        subject = func.value if method else (node.args[0] if node.args else None)
        if subject is None or any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult) for n in ast.walk(subject)):
            return
        if built is None and _off_the_class_axis(node, not method, self.parents, self.tree):
            # ``F.softmax(z, dim=0)``: over the batch (a contrastive term), not the classes; one
            # returned as the function's answer may be meant over the classes, which is the
            # author's to say
            if name == "softmax" and self._returned_as_answer(node) and self.model_output_like(subject):
                self._report(
                    node, "softmax-class-dim",
                    f"{ast.unparse(node)} normalises the model's [B, C] output over the batch (dim 0), not over the "
                    "classes, and is returned as the answer",
                    "if these are meant as class probabilities, the multi-label ones are torch.sigmoid of the output "
                    "(one independent probability per label); over the batch, leave it",
                )
            return
        if name == "log_softmax" and self.ctc:
            return  # CTC's input: a distribution over the alphabet at each time step, not image labels
        parent = self.parents.get(node)
        if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.MatMult):
            return  # weights for a matrix product (attention, an expectation over bins)
        if scope.function.startswith("forward") or scope.function == "__call__":
            # Model code: only a softmax the model returns is over its classes.
            if not isinstance(parent, ast.Return) and not self._returned_through_name(node, subject):
                return
            if name == "softmax":
                self._model_output(self._report(
                    node,
                    "softmax-class-dim",
                    "forward returns softmax probabilities: the labels compete for one unit of probability, "
                    "and a BCE-with-logits loss or a sigmoid applied to them is wrong",
                    "return the raw logits from forward; apply torch.sigmoid(logits) where probabilities are needed",
                ))
            return  # a log_softmax returned from forward is ML103's
        fed_to_metric = isinstance(parent, ast.Call) and node in parent.args and self._is_metric_call(parent)
        if not fed_to_metric and not self.model_output_like(subject):
            return
        distilled = isinstance(parent, ast.Call) and self.qualified(parent.func).split(".")[-1] == "kl_div"
        if distilled:
            message = "distillation by KL divergence between softmax distributions treats the classes as exclusive"
            suggestion = (
                "distil per label: F.binary_cross_entropy_with_logits(student_logits / T, "
                "torch.sigmoid(teacher_logits / T))"
            )
        elif name == "softmax":
            message = "softmax over the classes makes the labels compete for one unit of probability"
            suggestion = "use torch.sigmoid(logits): one independent probability per label"
        else:
            message = "log_softmax over the classes normalises the labels against each other (a single-label log-likelihood)"
            suggestion = "keep the raw logits and use BCEWithLogitsLoss / torch.sigmoid(logits)"
        if built is not None:
            message = f"this nn.Softmax module is applied to the model's output further down: {message}"
            suggestion = "build nn.Sigmoid() instead: one independent probability per label"
        self._report(built or node, "softmax-class-dim", message, suggestion, (node.lineno,))

    def _softmax_module_called(self, node: ast.Call) -> ast.Call | None:
        """The ``nn.Softmax(...)`` construction that the local name ``node`` calls was last bound to
        in the same function (``softmax = torch.nn.Softmax(dim=0); softmax(outputs[0][0])``)."""
        if not isinstance(node.func, ast.Name):
            return None
        built = [
            (line, call) for line, call in self.softmax_modules.get(node.func.id, ())
            if line <= node.lineno and self._same_function(call, node)
        ]
        return max(built, key=lambda item: item[0])[1] if built else None

    def _same_function(self, first: ast.AST, second: ast.AST) -> bool:
        def function_of(node: ast.AST) -> ast.AST | None:
            while node is not None and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                node = self.parents.get(node)
            return node

        return function_of(first) is function_of(second)

    def _check_exp_of_log_probabilities(self, node: ast.Call) -> None:
        """``ps = torch.exp(logps)`` with ``logps = model(x)``: the model ends in log_softmax (the
        file recovers probabilities from it), and what it gets back are softmax probabilities."""
        subject = _exp_argument(node)
        if subject is None or self.value_of(subject)[0] != MODEL_OUTPUT or self.is_module(subject):
            return
        scope = self.scope()
        if scope.function.startswith("forward") or scope.function == "__call__" or self._normalised_exp(node):
            return
        self._report(
            node,
            "softmax-class-dim",
            "the exp of the model's outputs: a model returning log-probabilities (a LogSoftmax head) gives softmax "
            "probabilities back, the labels competing for one unit of probability",
            "make the model return raw logits (drop its LogSoftmax) and use torch.sigmoid(logits): one independent "
            "probability per label",
        )

    def _normalised_exp(self, node: ast.Call) -> bool:
        """The exp is part of a softmax written out or of another formula (``e / e.sum(1)``,
        ``torch.exp(z) * w``): only exp taken on its own recovers probabilities."""
        parent = self.parents.get(node)
        if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name)):
            if isinstance(parent, ast.Attribute):
                return parent.attr in _REDUCTIONS  # ``torch.exp(z).sum(1)``: a normaliser or an energy
            return not isinstance(parent, ast.Subscript)
        name = parent.targets[0].id
        function = parent
        while function is not None and not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
            function = self.parents.get(function)
        return any(
            isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Div)
            and any(isinstance(side, ast.Name) and side.id == name for side in ast.walk(inner))
            for inner in ast.walk(function)
        )

    def _returned_as_answer(self, node: ast.Call) -> bool:
        """``probs = F.softmax(z, dim=0)`` ... ``return loss, probs``: a name bound once in its function
        to ``node`` and returned from it as written."""
        statement = self.parents.get(node)
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name)):
            return False
        name, function = statement.targets[0].id, statement
        while function is not None and not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = self.parents.get(function)
        if function is None:
            return False
        return any(
            isinstance(returned, ast.Return) and returned.value is not None
            and any(isinstance(n, ast.Name) and n.id == name for n in ([returned.value, *getattr(returned.value, "elts", [])]))
            for returned in ast.walk(function)
        )

    def _returned_through_name(self, node: ast.Call, subject: ast.AST) -> bool:
        """``out = F.softmax(z, dim=1); return out``: the assignment is the binding of ``out`` that a
        ``return out`` (or ``return out, features``) of the same function reads."""
        statement = self.parents.get(node)
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name)):
            return False
        name = statement.targets[0].id
        if any(_NOT_CLASS_SCORES.search(word) for word in (name, self.root_name(subject), self.scope().class_name)):
            return False  # pooling, gating or routing weights, returned as such
        dims = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "dim")]
        if any(int_constant(dim) not in (1, -1) for dim in dims):
            return False  # over a dimension chosen at run time, or not the class dimension
        function = statement
        while function is not None and not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = self.parents.get(function)
        if function is None:
            return False
        bindings = sorted(
            (child.lineno, child)
            for child in ast.walk(function)
            if isinstance(child, ast.Name) and child.id == name and isinstance(child.ctx, ast.Store)
        )
        for returned in ast.walk(function):
            if not isinstance(returned, ast.Return) or returned.value is None:
                continue
            value = returned.value.elts[0] if isinstance(returned.value, ast.Tuple) and returned.value.elts else returned.value
            if not (isinstance(value, ast.Name) and value.id == name):
                continue
            before = [bound for line, bound in bindings if line <= returned.lineno]
            if before and self.parents.get(before[-1]) is statement:
                return True
        return False

    def _check_softmax_layer(self, node: ast.Call) -> None:
        """``nn.Sequential(nn.Linear(d, C), nn.Softmax(dim=1))``: the model ends in probabilities.

        Only the last layer of a ``Sequential`` counts, over the class dimension, and not where
        the names say attention or the layer before it scores one unit (attention pooling)."""
        if self.qualified(node.func) not in _SOFTMAX_LAYERS:
            return
        dim = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "dim"), None)
        if dim is not None and int_constant(dim) not in (1, -1):
            return
        sequential = self.parents.get(node)
        if isinstance(sequential, ast.Call) and isinstance(sequential.func, ast.Attribute) and sequential.func.attr == "append":
            sequential = self._sequential_of_last_layer(sequential)
        elif not (
            isinstance(sequential, ast.Call)
            and self.qualified(sequential.func) in _SEQUENTIAL
            and sequential.args
            and sequential.args[-1] is node
        ):
            return
        if sequential is None:
            return
        scope = self.scope()
        holder = self.parents.get(sequential)
        bound = " ".join(_binding_key(target) for target in getattr(holder, "targets", ()))
        if any(ATTENTION.search(name) for name in (scope.function, scope.class_name, bound)):
            return
        previous = sequential.args[-2] if len(sequential.args) > 1 else None
        if isinstance(previous, ast.Call) and len(previous.args) >= 2 and int_constant(previous.args[1]) == 1:
            return  # nn.Linear(d, 1) then Softmax: weights over positions, not classes
        record = self._report(
            node,
            "softmax-class-dim",
            "an nn.Softmax layer ends the model: it outputs probabilities over competing classes, and a "
            "BCE-with-logits loss or a sigmoid applied to them is wrong",
            "remove the nn.Softmax layer so the model returns raw logits; apply torch.sigmoid(logits) where "
            "probabilities are needed",
        )
        if record is not None:
            record.followed = False  # the layer is reported where it is built, whatever uses the model
        self._model_output(record)

    def _sequential_of_last_layer(self, append: ast.Call) -> ast.Call | None:
        """``layers.append(nn.Softmax(dim=1))`` as the last layer appended before
        ``nn.Sequential(*layers)`` in the same block of code: that Sequential ends in it."""
        layers = append.func.value  # type: ignore[attr-defined]
        if not isinstance(layers, ast.Name):
            return None
        scope: ast.AST | None = append
        while scope is not None and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
            scope = self.parents.get(scope)
        if scope is None:
            return None
        appends, built = [], None
        for inner in ast.walk(scope):
            if not isinstance(inner, ast.Call):
                continue
            if isinstance(inner.func, ast.Attribute) and inner.func.attr in ("append", "extend") and \
                    isinstance(inner.func.value, ast.Name) and inner.func.value.id == layers.id:
                appends.append(inner)
            elif self.qualified(inner.func) in _SEQUENTIAL and len(inner.args) == 1 and isinstance(inner.args[0], ast.Starred) \
                    and isinstance(inner.args[0].value, ast.Name) and inner.args[0].value.id == layers.id:
                built = inner
        if built is None:
            return None
        before = [call for call in appends if (call.lineno, call.col_offset) < (built.lineno, built.col_offset)]
        last = max(before, key=lambda call: (call.lineno, call.col_offset), default=None)
        return built if last is append else None

    def _model_output(self, record: _Record | None) -> None:
        if record is not None:
            record.model_output = True
