"""Shared facts about classifier outputs and the predictions and accuracies computed from them.

Rules ML020 (predictions), ML021 (accuracy), ML022 (torchmetrics) and ML024 (softmax) must
agree on one question before they touch anything: *is this tensor the classifier's output?*
``argmax`` and ``softmax`` are everywhere in model code (attention, patch selection, a
distillation teacher's target), so a rewrite is only proven when the scores are

* a call of the model object: ``model(x)``, ``net(x)``, ``self.model(x)``, ``self(x)``
  (Lightning), optionally followed by ``.logits``, ``.data``, ``.detach()``, ``.to(...)``…;
* a name whose every binding in its scope is such a call; or
* the logits argument of a loss call found by :class:`LossFlowProvider`.

:class:`PredictionFlowProvider` finds, once per file, the softmax calls over such scores, the
arg-max predictions taken from them and the accuracy comparisons of those predictions with
the labels. It also builds the node edits that rewrite them, once, so that two rules whose
fixes share an edit hand the engine the *same* ``NodeEdit`` object (applied once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import libcst as cst
from libcst.metadata import (
    BatchableMetadataProvider,
    ParentNodeProvider,
    QualifiedNameProvider,
    QualifiedNameSource,
    ScopeProvider,
)

from migrate_ml.rules._base import Fix, ImportEdit, NodeEdit
from migrate_ml.rules._exprs import method_call
from migrate_ml.rules._flow import LossFlow, LossFlowProvider, call_argument
from migrate_ml.rules._project import current_facts

_MODEL_NAME = re.compile(r"^(?:[a-z0-9]+_)?(?:model|net|network|classifier|clf|vit|cnn|convnet|resnet|student)(?:_[a-z0-9]+)?$")
_NOT_A_MODEL = re.compile(r"^(?:create|get|build|load|save|init|make|export|freeze|train|evaluate|eval|test|run|prepare|wrap|unwrap|teacher)_|teacher")
_TRANSPARENT_METHODS = frozenset({"detach", "cpu", "cuda", "to", "float", "double", "clone", "contiguous", "squeeze"})
_TRANSPARENT_ATTRIBUTES = frozenset({"data", "logits"})
_PREDICTION_CHAIN = frozenset({"detach", "cpu", "cuda", "to", "numpy", "clone"})
_SOFTMAX_FUNCTIONS = frozenset({"torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax"})
_SOFTMAX_MODULES = frozenset({"torch.nn.Softmax", "torch.nn.modules.activation.Softmax"})
_LITERALS = (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString)
MODEL_INTERNALS = frozenset({"forward", "__init__", "__call__"})
"""Functions whose softmax belongs to the model itself (attention, heads) and is never touched."""


def is_model_callee(func: cst.BaseExpression) -> bool:
    """``model``, ``net``, ``model_ft``, ``self.model``, ``self`` (a Lightning module calling itself)."""
    if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
        func = func.attr
    if not isinstance(func, cst.Name):
        return False
    name = func.value
    if name == "self":
        return True
    return bool(_MODEL_NAME.match(name)) and not _NOT_A_MODEL.search(name)


def strip_transparent(expression: cst.BaseExpression) -> cst.BaseExpression:
    """Drop ``.data``, ``.logits``, ``.detach()``, ``.to(device)``… which keep the scores the scores."""
    while True:
        if isinstance(expression, cst.Attribute) and expression.attr.value in _TRANSPARENT_ATTRIBUTES:
            expression = expression.value
        elif (
            isinstance(expression, cst.Call)
            and isinstance(expression.func, cst.Attribute)
            and expression.func.attr.value in _TRANSPARENT_METHODS
            and not (isinstance(expression.func.value, cst.Name) and expression.func.value.value == "torch")
        ):
            expression = expression.func.value
        elif (
            isinstance(expression, cst.Call)
            and isinstance(expression.func, cst.Attribute)
            and expression.func.attr.value == "squeeze"
            and isinstance(expression.func.value, cst.Name)
            and expression.func.value.value == "torch"
            and expression.args
        ):
            expression = expression.args[0].value  # predict scripts: torch.squeeze(model(img))
        else:
            return expression


def dim_value(expression: cst.BaseExpression | None) -> int | None:
    """The integer of a literal ``1`` or ``-1``; None for anything else."""
    if isinstance(expression, cst.Integer):
        return int(expression.value)
    if (
        isinstance(expression, cst.UnaryOperation)
        and isinstance(expression.operator, cst.Minus)
        and isinstance(expression.expression, cst.Integer)
    ):
        return -int(expression.expression.value)
    return None


def torch_sigmoid(torch_name: str, scores: cst.BaseExpression) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(value=cst.Name(torch_name), attr=cst.Name("sigmoid")),
        args=[cst.Arg(scores.with_changes(lpar=[], rpar=[]) if _bare_ok(scores) else scores)],
    )


def _bare_ok(expression: cst.BaseExpression) -> bool:
    return bool(getattr(expression, "lpar", None)) and not isinstance(expression, (cst.Tuple, cst.GeneratorExp))


def above_threshold(left: cst.BaseExpression, threshold_name: str) -> cst.Comparison:
    return cst.Comparison(
        left=left,
        comparisons=[cst.ComparisonTarget(operator=cst.GreaterThan(), comparator=cst.Name(threshold_name))],
    )


@dataclass(eq=False)
class Softmax:
    """``F.softmax(z, dim=1)``, ``z.softmax(-1)``, ``nn.Softmax(dim=1)(z)`` over classifier scores."""

    call: cst.Call
    scores: cst.BaseExpression
    consumed: bool = False
    """True when a prediction takes the arg-max of this softmax directly (the prediction rewrite covers it)."""


@dataclass(eq=False)
class Comparison:
    """``p == y``, ``p.eq(y)``, ``torch.eq(p, y)``: the labels side is addressed by position."""

    node: cst.CSTNode
    label_position: str
    """``left``/``right`` of a ``==``; ``arg0``/``arg1`` or ``receiver`` of an ``eq`` call."""


@dataclass(eq=False)
class Prediction:
    """An arg-max prediction: the expression (or ``_, p = ...`` statement) to replace."""

    node: cst.CSTNode
    scores: cst.BaseExpression
    """What the arg-max is taken over, as written."""
    proven: bool = False
    decision_input: cst.BaseExpression | None = None
    """What goes in front of ``> THRESHOLD``: ``torch.sigmoid(z)``, or a name already holding probabilities."""
    unpacking: bool = False
    binding: cst.Name | None = None
    parenthesize: bool = True
    softmaxes: list[Softmax] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    blocked: str = ""
    """Why a proven prediction still cannot be rewritten (empty when it can)."""


@dataclass
class PredictionFlow:
    predictions: list[Prediction] = field(default_factory=list)
    softmaxes: list[Softmax] = field(default_factory=list)
    torch_name: str = "torch"
    torch_imported: bool = True
    is_classifier_scores: Callable[[cst.BaseExpression], bool] = lambda expression: False
    """The proof described in the module docstring, answered for the first argument of any call
    with two or more arguments (metric updates, ``accuracy(output, target)``…)."""
    _edits: dict = field(default_factory=dict)
    _fixes: dict = field(default_factory=dict)

    @property
    def torch_imports(self) -> tuple[ImportEdit, ...]:
        return () if self.torch_imported else (ImportEdit("torch"),)

    def sigmoid(self, scores: cst.BaseExpression) -> cst.Call:
        return torch_sigmoid(self.torch_name, scores)

    def softmax_edit(self, softmax: Softmax) -> NodeEdit:
        key = id(softmax)
        if key not in self._edits:
            replacement = self.sigmoid(softmax.scores).with_changes(lpar=softmax.call.lpar, rpar=softmax.call.rpar)
            self._edits[key] = NodeEdit(softmax.call, lambda updated: replacement)
        return self._edits[key]

    def fix_for(self, prediction: Prediction, threshold_name: str) -> Fix:
        """One fix for the prediction, the softmaxes it relies on and its accuracy comparisons."""
        key = (id(prediction), threshold_name)
        if key not in self._fixes:
            edits = [NodeEdit(prediction.node, self._prediction_rewrite(prediction, threshold_name))]
            edits.extend(self.softmax_edit(softmax) for softmax in prediction.softmaxes)
            edits.extend(NodeEdit(c.node, _exact_match_rewrite(c.label_position)) for c in prediction.comparisons)
            self._fixes[key] = Fix(edits=tuple(edits), add_imports=self.torch_imports, needs_threshold=True)
        return self._fixes[key]

    def _prediction_rewrite(self, prediction: Prediction, threshold_name: str):
        assert prediction.decision_input is not None
        decision = above_threshold(prediction.decision_input, threshold_name)

        def apply(updated: cst.CSTNode) -> cst.CSTNode:
            if prediction.unpacking:
                assert isinstance(updated, cst.Assign) and prediction.binding is not None
                return updated.with_changes(targets=[cst.AssignTarget(target=prediction.binding)], value=decision)
            if prediction.parenthesize:
                return decision.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            return decision

        return apply


def _exact_match_rewrite(label_position: str):
    """``p == y`` -> ``(p == y.bool()).all(dim=1)``: one correct/incorrect per sample."""

    def apply(updated: cst.CSTNode) -> cst.CSTNode:
        if isinstance(updated, cst.Comparison):
            target = updated.comparisons[0]
            if label_position == "left":
                compared = updated.with_changes(left=as_bool(updated.left), lpar=[], rpar=[])
            else:
                compared = updated.with_changes(
                    comparisons=[target.with_changes(comparator=as_bool(target.comparator))], lpar=[], rpar=[]
                )
            compared = compared.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        else:
            assert isinstance(updated, cst.Call) and isinstance(updated.func, cst.Attribute)
            if label_position == "receiver":
                compared = updated.with_changes(func=updated.func.with_changes(value=as_bool(updated.func.value)))
            else:
                index = int(label_position.removeprefix("arg"))
                args = list(updated.args)
                args[index] = args[index].with_changes(value=as_bool(args[index].value))
                compared = updated.with_changes(args=args)
            compared = compared.with_changes(lpar=[], rpar=[])
        return cst.Call(
            func=cst.Attribute(value=compared, attr=cst.Name("all")),
            args=[cst.Arg(keyword=cst.Name("dim"), value=cst.Integer("1"), equal=cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")))],
            lpar=updated.lpar if isinstance(updated, cst.Call) else [],
            rpar=updated.rpar if isinstance(updated, cst.Call) else [],
        )

    return apply


def as_bool(expression: cst.BaseExpression) -> cst.BaseExpression:
    if (
        isinstance(expression, cst.Call)
        and isinstance(expression.func, cst.Attribute)
        and expression.func.attr.value == "bool"
        and not expression.args
    ):
        return expression
    return method_call(expression, "bool")


def _qualified(owner, node: cst.CSTNode) -> set[str]:
    return {q.name for q in owner.get_metadata(QualifiedNameProvider, node, set())}


def _imported(owner, node: cst.CSTNode) -> bool:
    """True for a module or function brought in by an import (``np``, ``F``), not a local tensor."""
    if not isinstance(node, (cst.Name, cst.Attribute)):
        return False  # a call's result is a value even when the callee was imported
    return any(q.source is QualifiedNameSource.IMPORT for q in owner.get_metadata(QualifiedNameProvider, node, set()))


class PredictionFlowProvider(BatchableMetadataProvider[PredictionFlow]):
    """Computes a :class:`PredictionFlow` and stores it on the ``Module`` node."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider, ParentNodeProvider, LossFlowProvider)

    def __init__(self) -> None:
        super().__init__()
        self._calls: list[cst.Call] = []
        self._candidates: list[cst.CSTNode] = []
        self._module: cst.Module | None = None

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node

    def visit_Call(self, node: cst.Call) -> None:
        self._calls.append(node)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            index = node.slice[0].slice.value
            if isinstance(index, cst.Integer) and index.value == "1" and isinstance(node.value, cst.Call):
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

        candidates = [c for c in self._calls if _argmax_call(c)] + self._candidates
        for node in candidates:
            prediction = self._prediction(node, softmax_by_call)
            if prediction is not None:
                flow.predictions.append(prediction)
        self._link_comparisons(flow.predictions)
        flow.predictions = [p for p in flow.predictions if p.proven or p.comparisons]
        self.set_metadata(original_node, flow)

    # -- proofs -------------------------------------------------------------------------------

    def _loss_logit_names(self, loss: LossFlow) -> set[tuple[object, str]]:
        names = set()
        for call in loss.calls:
            if call.logits is None:
                continue
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
        assignments = list(scope[expression.value])
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
        function = self._enclosing(param, cst.FunctionDef) if facts is not None else None
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
        """The input of a softmax call, in any spelling; None if ``call`` is not a softmax."""
        func = call.func
        if isinstance(func, cst.Call):  # nn.Softmax(dim=1)(z)
            if _qualified(self, func.func) & _SOFTMAX_MODULES and call.args:
                return call.args[0].value
            return None
        if not isinstance(func, cst.Attribute) or func.attr.value != "softmax":
            return None
        if _qualified(self, func) & _SOFTMAX_FUNCTIONS:
            argument = call_argument(call, 0, "input")
            return argument.value if argument is not None else None
        if _imported(self, func.value):
            return None  # a module function of some other library
        return func.value

    def _inside_model(self, node: cst.CSTNode) -> bool:
        function = self._enclosing(node, cst.FunctionDef)
        return isinstance(function, cst.FunctionDef) and function.name.value in MODEL_INTERNALS

    def _enclosing(self, node: cst.CSTNode, kind) -> cst.CSTNode | None:
        current = node
        while True:
            current = self.get_metadata(ParentNodeProvider, current, None)
            if current is None or isinstance(current, kind):
                return current

    # -- predictions ---------------------------------------------------------------------------

    def _max_call(self, call: cst.CSTNode) -> cst.Call | None:
        """``torch.max(z, 1)`` or ``z.max(1)``/``z.max(dim=-1)``: the reducing form of max."""
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "max"):
            return None
        if _qualified(self, call.func) & {"torch.max"}:
            dim = call_argument(call, 1, "dim")
        elif _imported(self, call.func.value):
            return None  # np.max and other libraries' module functions
        else:
            dim = call_argument(call, 0, "dim")
        return call if dim is not None and dim_value(dim.value) in (1, -1) else None

    def _prediction(self, node: cst.CSTNode, softmax_by_call: dict[cst.Call, Softmax]) -> Prediction | None:
        if isinstance(node, (cst.Subscript, cst.Attribute)):
            call = self._max_call(node.value)
            if call is None:
                return None
            method = not (_qualified(self, call.func) & {"torch.max"})
        else:
            assert isinstance(node, cst.Call)
            call = node
            if _qualified(self, call.func) & {"numpy.argmax"}:
                return None
            method = not (_qualified(self, call.func) & {"torch.argmax", "torch.max"})
            if call.func.attr.value == "max":
                parent = self.get_metadata(ParentNodeProvider, call)
                if self._max_call(call) is None or not isinstance(parent, cst.Assign):
                    return None  # only `_, p = torch.max(z, 1)`; `[1]` and `.indices` are their own candidates
            else:
                if method and _imported(self, call.func.value):
                    return None  # np.argmax and other libraries' module functions
                dim = call_argument(call, 0, "dim") if method else call_argument(call, 1, "dim")
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
        if isinstance(inner, cst.Call) and inner in softmax_by_call:
            softmax_by_call[inner].consumed = True
            prediction.decision_input = torch_sigmoid(self._torch_name, softmax_by_call[inner].scores)
        elif isinstance(inner, cst.Call) and self._is_sigmoid_of_scores(inner):
            prediction.decision_input = inner
        elif self._is_scores(scores, 0):
            prediction.decision_input = torch_sigmoid(self._torch_name, scores)
        elif isinstance(inner, cst.Name):
            softmaxes = self._probability_bindings(inner, softmax_by_call)
            if softmaxes is not None:
                prediction.decision_input = inner
                prediction.softmaxes = softmaxes
        prediction.proven = prediction.decision_input is not None
        self._bind(prediction)
        return prediction

    def _probability_bindings(self, name: cst.Name, softmax_by_call: dict[cst.Call, Softmax]) -> list[Softmax] | None:
        """Softmaxes behind ``probs`` when every binding is softmax/sigmoid of the scores; else None."""
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None or not scope[name.value]:
            return None
        found: list[Softmax] = []
        for assignment in scope[name.value]:
            value = self._assigned_value(getattr(assignment, "node", None))
            if isinstance(value, cst.Call) and value in softmax_by_call:
                found.append(softmax_by_call[value])
            elif not (isinstance(value, cst.Call) and self._is_sigmoid_of_scores(value)):
                return None
        return found

    def _is_sigmoid_of_scores(self, call: cst.Call) -> bool:
        func = call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "sigmoid"):
            return False
        if _qualified(self, func) & {"torch.sigmoid", "torch.nn.functional.sigmoid"}:
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

    def _bind(self, prediction: Prediction) -> None:
        """Find the name the prediction is assigned to, and mark ``_, p = torch.max(...)``."""
        node = prediction.node
        parent = self.get_metadata(ParentNodeProvider, node)
        if isinstance(node, cst.Call) and isinstance(parent, cst.Assign) and self._max_call(node) is node:
            target = parent.targets[0].target if len(parent.targets) == 1 else None
            if isinstance(target, cst.Tuple) and len(target.elements) == 2 and not any(
                isinstance(e, cst.StarredElement) for e in target.elements
            ):
                values, indices = (e.value for e in target.elements)
                if not isinstance(indices, cst.Name):
                    prediction.blocked = "the indices are not assigned to a plain name"
                elif not (isinstance(values, cst.Name) and values.value.startswith("_")) and self._is_used(values):
                    prediction.blocked = f"the max values `{values.value}` are used too"
                prediction.node, prediction.unpacking, prediction.binding = parent, True, indices
            return
        current = node
        while True:
            parent = self.get_metadata(ParentNodeProvider, current)
            if isinstance(parent, cst.Attribute) and parent.attr.value in _PREDICTION_CHAIN:
                call = self.get_metadata(ParentNodeProvider, parent)
                if isinstance(call, cst.Call) and call.func is parent:
                    current = call
                    continue
            break
        if current is node and isinstance(parent, (cst.Assign, cst.AnnAssign, cst.Return, cst.Arg)):
            prediction.parenthesize = False
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
            prediction.binding = parent.targets[0].target
        elif current is node:
            use = self._comparison_of(node)
            if isinstance(use, Comparison):
                prediction.comparisons.append(use)
            elif use:
                prediction.blocked = use

    def _is_used(self, name: cst.Name) -> bool:
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return True
        return any(getattr(a, "node", None) is name and a.references for a in scope[name.value])

    def _link_comparisons(self, predictions: list[Prediction]) -> None:
        bindings = {p.binding for p in predictions if p.binding is not None and p.proven and not p.blocked}
        for prediction in predictions:
            if prediction.binding is None:
                continue
            scope = self.get_metadata(ScopeProvider, prediction.binding, None)
            if scope is None:
                continue
            for assignment in scope[prediction.binding.value]:
                if getattr(assignment, "node", None) is not prediction.binding:
                    continue
                for access in assignment.references:
                    referents = [getattr(r, "node", None) for r in access.referents]
                    if prediction.proven and not all(r in bindings for r in referents):
                        continue  # another binding of the name is not a rewritten prediction
                    use = self._comparison_of(access.node)
                    if isinstance(use, Comparison):
                        prediction.comparisons.append(use)
                    elif use and not prediction.blocked:
                        prediction.blocked = use

    def _comparison_of(self, prediction: cst.CSTNode) -> Comparison | str | None:
        """How a prediction is used: an accuracy comparison with the labels, a use as one class
        index (a reason that blocks the rewrite), or None for anything neutral."""
        parent = self.get_metadata(ParentNodeProvider, prediction, None)
        if isinstance(parent, cst.Comparison) and len(parent.comparisons) == 1 and isinstance(
            parent.comparisons[0].operator, (cst.Equal, cst.NotEqual)
        ):
            left = parent.left is prediction
            other = parent.comparisons[0].comparator if left else parent.left
            if isinstance(other, _LITERALS) or isinstance(parent.comparisons[0].operator, cst.NotEqual):
                return "it is compared with a class index"
            return Comparison(parent, "right" if left else "left")
        if isinstance(parent, cst.Attribute) and parent.attr.value in ("eq", "item"):
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not (isinstance(call, cst.Call) and call.func is parent):
                return None
            if parent.attr.value == "item":
                return "it is read as one class index with .item()"
            if len(call.args) == 1:
                if isinstance(call.args[0].value, _LITERALS):
                    return "it is compared with a class index"
                return Comparison(call, "arg0")
            return None
        if isinstance(parent, cst.Index):
            return "it is used as an index (one class per sample)"
        if isinstance(parent, cst.Arg):
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not isinstance(call, cst.Call) or parent.keyword is not None:
                return None
            if isinstance(call.func, cst.Name) and call.func.value in ("int", "str"):
                return f"it is converted with {call.func.value}() as one class index"
            if _qualified(self, call.func) & {"torch.eq"} and len(call.args) == 2:
                label_index = 1 - call.args.index(parent)
                if isinstance(call.args[label_index].value, _LITERALS):
                    return "it is compared with a class index"
                return Comparison(call, f"arg{label_index}")
            if isinstance(call.func, cst.Attribute) and call.func.attr.value == "eq" and len(call.args) == 1:
                return Comparison(call, "receiver")
        return None


def _argmax_call(call: cst.Call) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in ("argmax", "max")


def _torch_binding(module: cst.Module) -> tuple[str, bool]:
    """The name ``torch`` is imported as at module level, and whether it is imported at all."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    if isinstance(alias.name, cst.Name) and alias.name.value == "torch":
                        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                            return alias.asname.name.value, True
                        return "torch", True
    return "torch", False
