"""The provider that finds, once per file, what :mod:`~migrate_ml.rules.semantics.predictions` describes.

:class:`PredictionFlowProvider` proves which tensors are the classifier's scores (see
``predictions``), then finds the softmax calls over them and the arg-max predictions taken
from them; :class:`~migrate_ml.rules.semantics.prediction_uses.PredictionUses`, mixed in, follows
where each prediction goes.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import BatchableMetadataProvider, ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._exprs import module_alias
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.bindings import reaching_bindings
from migrate_ml.rules.semantics.flow import LossFlow, LossFlowProvider, call_argument
from migrate_ml.rules.semantics.heads import other_head_calls
from migrate_ml.rules.semantics.log_softmax import droppable_log_softmax, log_softmax_input, nll_options_supported
from migrate_ml.rules.semantics.prediction_uses import PredictionUses
from migrate_ml.rules.semantics.predictions import (
    Flatten,
    Prediction,
    PredictionFlow,
    Softmax,
    is_imported,
    is_model_callee,
    qualified_names,
    strip_transparent,
)
from migrate_ml.rules.semantics.rewrites import torch_sigmoid
from migrate_ml.rules.semantics.shapes import dim_value
from migrate_ml.rules.semantics.single_label_values import RESHAPED
from migrate_ml.rules.semantics.tables import SOFTMAX_FUNCTIONS, SOFTMAX_MODULES
from migrate_ml.rules._base import enclosing

MODEL_INTERNALS = frozenset({"forward", "__init__", "__call__"})
"""Functions whose softmax belongs to the model itself (attention, heads) and is never touched."""


class PredictionFlowProvider(PredictionUses, BatchableMetadataProvider[PredictionFlow]):
    """Computes a :class:`PredictionFlow` and stores it on the ``Module`` node."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider, ParentNodeProvider, PositionProvider, LossFlowProvider)

    def __init__(self) -> None:
        super().__init__()
        self._calls: list[cst.Call] = []
        self._candidates: list[cst.CSTNode] = []
        self._module: cst.Module | None = None
        self._collapsed_targets: list[cst.CSTNode] = []
        self._listed: set[int] = set()
        """Names bound to a prediction turned into a Python list (``pred = p.tolist()``)."""
        self._walked_flattens: list[Flatten] = []
        self._numpy_bindings: set[int] = set()
        """Names bound to a prediction converted to NumPy (``preds = p.cpu().numpy()``)."""
        self._keyed: dict[str, list[cst.Subscript]] = {}
        """Subscripts by a string key (``x["val_preds"]``), where a returned prediction is read back."""

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node

    def visit_Call(self, node: cst.Call) -> None:
        self._calls.append(node)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            index = node.slice[0].slice.value
            if isinstance(index, cst.SimpleString):
                self._keyed.setdefault(index.evaluated_value, []).append(node)
            if dim_value(index) in (1, -1) and isinstance(node.value, cst.Call):  # indices of (values, indices)
                self._candidates.append(node)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value == "indices" and isinstance(node.value, cst.Call):
            self._candidates.append(node)

    def leave_Module(self, original_node: cst.Module) -> None:
        flow = PredictionFlow()
        flow.torch_name, flow.torch_imported = _torch_binding(original_node)
        self._torch_name = flow.torch_name
        loss: LossFlow = self.get_metadata(LossFlowProvider, original_node)
        self._loss = loss
        self._loss_logits = self._loss_logit_names(loss)
        self._loss_targets = {id(c.target.value) for c in loss.calls if c.target is not None}
        flow.loss_calls = frozenset(id(c.call) for c in loss.calls)
        # Functional nll_loss calls ML003 converts (no ignore_index, options by keyword).
        self._functional_nll = {
            id(c.call)
            for c in loss.calls
            if c.functional and c.kinds == {"nll"} and c.target is not None and nll_options_supported(c.call)
        }
        # Rules ask about the first argument of metric-like calls after this provider has run,
        # when its scope metadata is gone: answer those questions now.
        proven = {
            id(call.args[0].value)
            for call in self._calls
            if len(call.args) >= 2 and self._is_scores(call.args[0].value, 0)
        }
        flow.is_classifier_scores = lambda expression: id(expression) in proven

        softmax_by_call: dict[cst.Call, Softmax] = {}
        for call in self._calls:
            scores = self._softmax_scores(call)
            if scores is not None and self._is_scores(scores, 0) and not self._inside_model(call):
                softmax = Softmax(call, scores)
                softmax_by_call[call] = softmax
                flow.softmaxes.append(softmax)

        self._exponentiated = self._exponentiated_models()
        self._probabilities = self._probability_models()
        candidates = [c for c in self._calls if _argmax_call(c)] + self._candidates
        for node in candidates:
            prediction = self._prediction(node, softmax_by_call)
            if prediction is not None:
                flow.predictions.append(prediction)
        self._link_comparisons(flow.predictions)
        flow.collapsed_targets = self._collapsed_targets
        flow.predictions = [p for p in flow.predictions if p.proven or p.comparisons]
        self.set_metadata(original_node, flow)

    # -- proofs -------------------------------------------------------------------------------

    def _loss_logit_names(self, loss: LossFlow) -> set[tuple[object, str]]:
        names = set()
        # a second head sharing the class head's criterion (a 3-way comparison head) stays as it is
        other_heads = {call for c in loss.constructions for call in other_head_calls(self, loss.calls_of(c))}
        for call in loss.calls:
            if call.logits is None or "nll" in call.kinds or call in other_heads:
                continue  # nll_loss reads log-probabilities: a sigmoid over them is meaningless
            logits = strip_transparent(call.logits)
            if isinstance(logits, cst.Name):
                names.add((self.get_metadata(ScopeProvider, logits, None), logits.value))
        return names

    def _is_scores(self, expression: cst.BaseExpression, depth: int) -> bool:
        if depth > 4:
            return False
        expression = strip_transparent(expression)
        if isinstance(expression, cst.Call):
            return is_model_callee(expression.func)
        if not isinstance(expression, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, expression, None)
        if scope is None:
            return False
        if (scope, expression.value) in self._loss_logits:
            return True
        assignments = reaching_bindings(self, expression, list(scope[expression.value]))
        if not assignments:
            return False
        for assignment in assignments:
            bound = getattr(assignment, "node", None)
            if isinstance(bound, cst.Param) and self._scores_from_project(bound):
                continue
            value = self._assigned_value(bound)
            if value is None or not self._is_scores(value, depth + 1):
                return False
        return True

    def _scores_from_project(self, param: cst.Param) -> bool:
        """Every caller in the run's other files passes this helper parameter a model's output."""
        facts = current_facts()
        function = enclosing(self, param, cst.FunctionDef) if facts is not None else None
        return isinstance(function, cst.FunctionDef) and facts.receives_scores(function.name.value, param.name.value)

    def _assigned_value(self, bound: cst.CSTNode | None) -> cst.BaseExpression | None:
        """The value a plain ``name = value`` binds; None for loops, parameters, unpacking…"""
        if not isinstance(bound, cst.Name):
            return None
        target = self.get_metadata(ParentNodeProvider, bound, None)
        statement = self.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
        if isinstance(statement, cst.Assign) and len(statement.targets) == 1:
            return statement.value
        if isinstance(target, cst.AnnAssign) and target.target is bound:
            return target.value
        return None

    def _softmax_scores(self, call: cst.Call) -> cst.BaseExpression | None:
        """The input of a softmax call over the class axis, in any spelling; None if ``call`` is
        not a softmax, or one along a literal axis other than 1 or -1 (``F.softmax(z, dim=0)``:
        over the batch, a contrastive term's, not a class distribution)."""
        func = call.func
        if isinstance(func, cst.Call):  # nn.Softmax(dim=1)(z)
            if qualified_names(self, func.func) & SOFTMAX_MODULES and call.args and self._class_axis(call_argument(func, 0, "dim"), call.args[0].value):
                return call.args[0].value
            return None
        if not isinstance(func, cst.Attribute) or func.attr.value != "softmax":
            return None
        if qualified_names(self, func) & SOFTMAX_FUNCTIONS:
            argument = call_argument(call, 0, "input")
            return argument.value if argument is not None and self._class_axis(call_argument(call, 1, "dim"), argument.value) else None
        if is_imported(self, func.value):
            return None  # a module function of some other library
        return func.value if self._class_axis(call_argument(call, 0, "dim"), func.value) else None

    def _class_axis(self, dim: cst.Arg | None, subject: cst.BaseExpression) -> bool:
        """A softmax's ``dim``: absent, not a literal, 1 or -1 (the class axis of [B, C]), or 0 where
        ``subject`` may be one sample's [C] (squeezed, reshaped or indexed, as written or where its
        name is bound: the reading ``single_label_values.off_the_class_axis`` makes on ``ast``)."""
        value = dim_value(dim.value) if dim is not None else None
        if value is None or value in (1, -1):
            return True
        if value != 0:
            return False
        code = cst.Module([]).code_for_node
        if RESHAPED.search(code(subject)):
            return True
        scope = self.get_metadata(ScopeProvider, subject, None) if isinstance(subject, cst.Name) else None
        if isinstance(subject, cst.Name) and scope is None:
            return True
        bindings = scope[subject.value] if scope is not None else ()
        values = [self._assigned_value(getattr(binding, "node", None)) for binding in bindings]
        return any(bound is None or RESHAPED.search(code(bound)) for bound in values)

    def _model_callee(self, expression: cst.BaseExpression, depth: int) -> str | None:
        """``model`` for ``model(x)``, also through the plain names it is bound to: which model gave the scores."""
        expression = strip_transparent(expression)
        if isinstance(expression, cst.Call) and is_model_callee(expression.func):
            return cst.Module([]).code_for_node(expression.func)
        scope = self.get_metadata(ScopeProvider, expression, None) if isinstance(expression, cst.Name) and depth < 4 else None
        if scope is None:
            return None
        for assignment in scope[expression.value]:
            value = self._assigned_value(getattr(assignment, "node", None))
            callee = self._model_callee(value, depth + 1) if value is not None else None
            if callee is not None:
                return callee
        return None

    def _exponentiated_models(self) -> dict[str, cst.Call]:
        """The models whose scores the file exponentiates (``torch.exp(logps)``, ``out.exp()``),
        by callee, with that call: such a model ends in log_softmax."""
        found: dict[str, cst.Call] = {}
        for call in self._calls:
            if qualified_names(self, call.func) & {"torch.exp", "numpy.exp"} and call.args:
                value = call.args[0].value
            elif isinstance(call.func, cst.Attribute) and call.func.attr.value == "exp" and not call.args and not is_imported(self, call.func.value):
                value = call.func.value
            else:
                continue
            callee = self._model_callee(value, 0) if self._is_scores(value, 0) and not self._normalised(call) else None
            if callee is not None:
                found.setdefault(callee, call)
        return found

    def _probability_models(self) -> set[str]:
        """The models whose scores the file gives ``BCELoss``/``F.binary_cross_entropy`` (not the
        with-logits forms), by callee: such a model ends in a sigmoid and returns probabilities,
        whose own sigmoid would put every one above 0.5. A criterion is known by the name it is
        bound to or passed as (``self.loss_fn = nn.BCELoss()``, ``loss_fn=nn.BCELoss(...)``)."""
        criteria: set[str] = set()
        for call in self._calls:
            func = call.func.attr if isinstance(call.func, cst.Attribute) else call.func
            if not (isinstance(func, cst.Name) and func.value == "BCELoss"):
                continue
            parent = self.get_metadata(ParentNodeProvider, call, None)
            if isinstance(parent, cst.Arg) and parent.keyword is not None:
                criteria.add(parent.keyword.value)
            elif isinstance(parent, cst.Assign):
                for target in parent.targets:
                    name = target.target.attr if isinstance(target.target, cst.Attribute) else target.target
                    if isinstance(name, cst.Name):
                        criteria.add(name.value)
        found: set[str] = set()
        for call in self._calls:
            func = call.func
            named = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
            probability_loss = named in criteria or bool(
                qualified_names(self, func) & {"torch.nn.functional.binary_cross_entropy", "torch.binary_cross_entropy"}
            )
            if probability_loss and call.args and self._is_scores(call.args[0].value, 0):
                callee = self._model_callee(call.args[0].value, 0)
                if callee is not None:
                    found.add(callee)
        return found

    def _normalised(self, call: cst.Call) -> bool:
        """``np.exp(z) / np.sum(np.exp(z))``, ``e = z.exp(); e / e.sum(1)``: a softmax written out over
        logits, not probabilities recovered from log-probabilities."""
        reads: list[cst.CSTNode] = [call]
        parent = self.get_metadata(ParentNodeProvider, call, None)
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
            scope = self.get_metadata(ScopeProvider, parent.targets[0].target, None)
            if scope is not None:
                reads.extend(access.node for access in scope.accesses[parent.targets[0].target.value])
        for node in reads:
            current = node
            for _ in range(3):
                current = self.get_metadata(ParentNodeProvider, current, None)
                if isinstance(current, cst.BinaryOperation) and isinstance(current.operator, cst.Divide):
                    return True
                if isinstance(current, (cst.Attribute, cst.Name)) and getattr(current, "attr", current).value == "sum":
                    return True
                if isinstance(current, cst.Call) and isinstance(current.func, (cst.Attribute, cst.Name)) and (
                    getattr(current.func, "attr", current.func).value == "sum"
                ):
                    return True
                if current is None or isinstance(current, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                    break
        return False

    def _inside_model(self, node: cst.CSTNode) -> bool:
        function = enclosing(self, node, cst.FunctionDef)
        return isinstance(function, cst.FunctionDef) and function.name.value in MODEL_INTERNALS

    # -- predictions ---------------------------------------------------------------------------

    def _max_call(self, call: cst.CSTNode) -> cst.Call | None:
        """``torch.max(z, 1)`` or ``z.max(1)``/``z.max(dim=-1)``: the reducing form of max; also
        ``z.topk(1)``/``torch.topk(z, 1)``, whose indices are the arg-max (with a kept dim)."""
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)):
            return None
        if call.func.attr.value == "topk":
            return self._top1_call(call)
        if call.func.attr.value != "max":
            return None
        if qualified_names(self, call.func) & {"torch.max"}:
            dim = call_argument(call, 1, "dim") or call_argument(call, 10**6, "axis")
        elif is_imported(self, call.func.value):
            return None  # np.max and other libraries' module functions
        else:
            dim = call_argument(call, 0, "dim")
        return call if dim is not None and dim_value(dim.value) in (1, -1) else None

    def _top1_call(self, call: cst.Call) -> cst.Call | None:
        """``z.topk(1)``, ``z.topk(1, dim=1)``, ``torch.topk(z, 1)``: k is the literal 1 and the
        dimension (default -1) is the class dimension."""
        module = bool(qualified_names(self, call.func) & {"torch.topk"})
        if not module and is_imported(self, call.func.value):
            return None
        offset = 1 if module else 0
        k = call_argument(call, offset, "k")
        dim = call_argument(call, offset + 1, "dim")
        if k is None or dim_value(k.value) != 1:
            return None
        return call if dim is None or dim_value(dim.value) in (1, -1) else None

    def _prediction(self, node: cst.CSTNode, softmax_by_call: dict[cst.Call, Softmax]) -> Prediction | None:
        if isinstance(node, (cst.Subscript, cst.Attribute)):
            call = self._max_call(node.value)
            if call is None:
                return None
            method = not (qualified_names(self, call.func) & {"torch.max", "torch.topk"})
        else:
            assert isinstance(node, cst.Call)
            call = node
            if qualified_names(self, call.func) & {"numpy.argmax"}:
                return None
            method = not (qualified_names(self, call.func) & {"torch.argmax", "torch.max"})
            if call.func.attr.value == "max":
                parent = self.get_metadata(ParentNodeProvider, call)
                if self._max_call(call) is None or not isinstance(parent, cst.Assign):
                    return None  # only `_, p = torch.max(z, 1)`; `[1]` and `.indices` are their own candidates
            else:
                if method and is_imported(self, call.func.value):
                    return None  # np.argmax and other libraries' module functions
                dim = call_argument(call, 0, "dim") if method else (
                    call_argument(call, 1, "dim") or call_argument(call, 10**6, "axis")  # torch accepts numpy's name
                )
                if dim is None or dim_value(dim.value) not in (1, -1):
                    return None
        if self._inside_loss_target(node) or self._inside_model(node):
            return None
        if method:
            scores = call.func.value
        else:
            argument = call_argument(call, 0, "input")
            if argument is None:
                return None
            scores = argument.value
        prediction = Prediction(node=node, scores=scores)
        inner = strip_transparent(scores)
        exponentiated = None
        if isinstance(inner, cst.Call) and inner in softmax_by_call:
            softmax_by_call[inner].consumed = True
            prediction.decision_input = torch_sigmoid(self._torch_name, softmax_by_call[inner].scores)
        elif isinstance(inner, cst.Call) and self._is_sigmoid_of_scores(inner):
            prediction.decision_input = inner
        elif self._is_scores(scores, 0) and (self._model_callee(scores, 0) or "") in self._probabilities:
            # the model ends in a sigmoid (its outputs feed BCELoss): threshold them as they are
            prediction.decision_input = scores
        elif self._is_scores(scores, 0):
            prediction.decision_input = torch_sigmoid(self._torch_name, scores)
            exponentiated = self._exponentiated.get(self._model_callee(scores, 0) or "")
        elif self._log_softmax_scores(inner) is not None:
            # arg-max over log_softmax(z) is the arg-max over z: decide on sigmoid(z)
            prediction.decision_input = torch_sigmoid(self._torch_name, self._log_softmax_scores(inner))
        elif isinstance(inner, cst.Name) and droppable_log_softmax(self, inner, self._droppable_nll_input):
            # ML003 drops this log_softmax in the same fix pass: the name holds the logits
            prediction.decision_input = torch_sigmoid(self._torch_name, scores)
        elif isinstance(inner, cst.Name):
            softmaxes = self._probability_bindings(inner, softmax_by_call)
            if softmaxes is not None:
                prediction.decision_input = inner
                prediction.softmaxes = softmaxes
        prediction.proven = prediction.decision_input is not None
        self._bind(prediction)
        if exponentiated is not None and not prediction.blocked:
            # `ps = torch.exp(logps)`: this model returns log-probabilities (a LogSoftmax head),
            # whose sigmoid is no per-label probability; its head has to change first
            prediction.blocked = (
                "the model's outputs are log-probabilities (the file takes their exp), so a sigmoid "
                "of them is no per-label probability; make its head return logits first"
            )
            prediction.blocked_at = exponentiated
        return prediction

    def _droppable_nll_input(self, call: cst.Call) -> bool:
        return id(call) in self._functional_nll

    def _log_softmax_scores(self, expression: cst.BaseExpression) -> cst.BaseExpression | None:
        """``z`` for ``F.log_softmax(z, dim=1)`` over proven scores, inline or through a name bound
        once; ``z`` must be a name bound at most once, so that reading it again is the same."""
        if isinstance(expression, cst.Name):
            scope = self.get_metadata(ScopeProvider, expression, None)
            assignments = list(scope[expression.value]) if scope is not None else []
            if len(assignments) != 1:
                return None
            expression = self._assigned_value(getattr(assignments[0], "node", None))
        scores = log_softmax_input(self, expression) if isinstance(expression, cst.Call) else None
        if not isinstance(scores, cst.Name) or not self._is_scores(scores, 0):
            return None
        scope = self.get_metadata(ScopeProvider, scores, None)
        return scores if scope is not None and len(list(scope[scores.value])) == 1 else None

    def _probability_bindings(self, name: cst.Name, softmax_by_call: dict[cst.Call, Softmax], depth: int = 0) -> list[Softmax] | None:
        """Softmaxes behind ``probs`` when every binding reaching this read is softmax/sigmoid of
        the scores, or a copy of such a name moved to the host (``probs = F.softmax(probs, dim=1)``
        then ``probs = probs.cpu().numpy()``: still the same probabilities); else None."""
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None or not scope[name.value] or depth > 4:
            return None
        found: list[Softmax] = []
        for assignment in reaching_bindings(self, name, list(scope[name.value])):
            value = self._assigned_value(getattr(assignment, "node", None))
            copied = _host_copy(value) if value is not None else None
            if isinstance(value, cst.Call) and value in softmax_by_call:
                found.append(softmax_by_call[value])
            elif isinstance(value, cst.Call) and (averaged := self._averaged_probabilities(value, softmax_by_call)) is not None:
                found.extend(averaged)
            elif isinstance(copied, cst.Name) and copied is not value:
                behind = self._probability_bindings(copied, softmax_by_call, depth + 1)
                if behind is None:
                    return None
                found.extend(behind)
            elif not (isinstance(value, cst.Call) and self._is_sigmoid_of_scores(value)):
                return None
        return found

    def _averaged_probabilities(self, call: cst.Call, softmax_by_call: dict[cst.Call, Softmax]) -> list[Softmax] | None:
        """The softmaxes behind ``torch.mean(torch.stack(probs), dim=0)`` (or ``.mean(0)`` of the
        stack) when each ``probs.append(...)`` adds a softmax or sigmoid of the scores: test-time
        augmentation or an ensemble averaging the probabilities, still one row per sample; else None."""
        if qualified_names(self, call.func) & {"torch.mean"}:
            stacked, dim = call_argument(call, 0, "input"), call_argument(call, 1, "dim")
        elif isinstance(call.func, cst.Attribute) and call.func.attr.value == "mean":
            stacked, dim = cst.Arg(call.func.value), call_argument(call, 0, "dim")
        else:
            return None
        if stacked is None or dim is None or dim_value(dim.value) != 0:
            return None
        inner = stacked.value
        if not (isinstance(inner, cst.Call) and qualified_names(self, inner.func) & {"torch.stack"} and len(inner.args) == 1):
            return None
        listed = inner.args[0].value
        scope = self.get_metadata(ScopeProvider, listed, None) if isinstance(listed, cst.Name) else None
        if scope is None:
            return None
        assignments = list(scope[listed.value])
        if len(assignments) != 1 or not isinstance(self._assigned_value(getattr(assignments[0], "node", None)), cst.List):
            return None
        found: list[Softmax] = []
        for access in scope.accesses[listed.value]:
            if access.node is listed:
                continue
            method = self.get_metadata(ParentNodeProvider, access.node, None)
            append = self.get_metadata(ParentNodeProvider, method, None) if isinstance(method, cst.Attribute) else None
            if not (isinstance(append, cst.Call) and method.attr.value == "append" and len(append.args) == 1):
                return None
            added = append.args[0].value
            if isinstance(added, cst.Call) and added in softmax_by_call:
                found.append(softmax_by_call[added])
            elif not (isinstance(added, cst.Call) and self._is_sigmoid_of_scores(added)):
                return None
        return found

    def _is_sigmoid_of_scores(self, call: cst.Call) -> bool:
        func = call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "sigmoid"):
            return False
        if qualified_names(self, func) & {"torch.sigmoid", "torch.nn.functional.sigmoid"}:
            argument = call_argument(call, 0, "input")
            return argument is not None and self._is_scores(argument.value, 0)
        return self._is_scores(func.value, 0)

    def _inside_loss_target(self, node: cst.CSTNode) -> bool:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, cst.BaseStatement):
            if id(current) in self._loss_targets:
                return True
            current = self.get_metadata(ParentNodeProvider, current, None)
        return False


def _host_copy(expression: cst.BaseExpression) -> cst.BaseExpression:
    """``probs`` for ``probs.cpu().detach().numpy()``: the same values, on the host as an array."""
    while True:
        expression = strip_transparent(expression)
        if isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute) and expression.func.attr.value == "numpy" and not expression.args:
            expression = expression.func.value
        else:
            return expression


def _argmax_call(call: cst.Call) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in ("argmax", "max")


def _torch_binding(module: cst.Module) -> tuple[str, bool]:
    """The name ``torch`` is imported as at module level, and whether it is imported at all."""
    alias = module_alias(module, "torch")
    return alias or "torch", alias is not None
