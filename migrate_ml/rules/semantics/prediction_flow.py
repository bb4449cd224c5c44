"""The provider that finds, once per file, what :mod:`~migrate_ml.rules.semantics.predictions` describes.

:class:`PredictionFlowProvider` proves which tensors are the classifier's scores (see
``predictions``), then finds the softmax calls over them, the arg-max predictions taken from
them, and where each prediction goes: accuracy comparisons with the labels, flattens, lists
and joins, NumPy conversions, gathers, and calls nothing follows.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import (
    BatchableMetadataProvider,
    ParentNodeProvider,
    QualifiedNameProvider,
    QualifiedNameSource,
    ScopeProvider,
)

from migrate_ml.rules._exprs import module_alias
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics.class_index import class_index_sources
from migrate_ml.rules.semantics.flow import LossFlow, LossFlowProvider, call_argument
from migrate_ml.rules.semantics.log_softmax import droppable_log_softmax, log_softmax_input, nll_options_supported
from migrate_ml.rules.semantics.predictions import (
    LITERALS,
    Comparison,
    Flatten,
    Prediction,
    PredictionFlow,
    Softmax,
    is_model_callee,
    strip_transparent,
)
from migrate_ml.rules.semantics.rewrites import torch_sigmoid
from migrate_ml.rules.semantics.shapes import dim_value, is_flatten, unflattened
from migrate_ml.rules.semantics.tables import JOIN_FUNCTIONS, JOINS, SOFTMAX_FUNCTIONS, SOFTMAX_MODULES

_PREDICTION_CHAIN = frozenset({"detach", "cpu", "cuda", "to", "numpy", "clone"})
_GATHER_METHODS = frozenset({"gather", "gather_for_metrics", "all_gather", "pad_across_processes"})
"""Distributed collection (accelerate, Lightning, torch_xla): the rows of every process, same layout."""
_FOLLOWED_METHODS = _GATHER_METHODS | {"append", "extend", "update", "add_batch", "add", "compute", "eq", "ne", "log"}
"""Calls a prediction goes through that other code follows or reports (ML022, ML023, the gathers)."""
_NEUTRAL_BUILTINS = frozenset({"print", "len", "int", "str", "type", "isinstance", "repr"})
_METRIC_LIBRARIES = ("sklearn.", "torchmetrics.")
MODEL_INTERNALS = frozenset({"forward", "__init__", "__call__"})
"""Functions whose softmax belongs to the model itself (attention, heads) and is never touched."""


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
        self._collapsed_targets: list[cst.CSTNode] = []
        self._listed: set[int] = set()
        """Names bound to a prediction turned into a Python list (``pred = p.tolist()``)."""
        self._walked_flattens: list[Flatten] = []
        self._numpy_bindings: set[int] = set()
        """Names bound to a prediction converted to NumPy (``preds = p.cpu().numpy()``)."""

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node

    def visit_Call(self, node: cst.Call) -> None:
        self._calls.append(node)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            index = node.slice[0].slice.value
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
        for call in loss.calls:
            if call.logits is None or "nll" in call.kinds:
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
            if _qualified(self, func.func) & SOFTMAX_MODULES and call.args:
                return call.args[0].value
            return None
        if not isinstance(func, cst.Attribute) or func.attr.value != "softmax":
            return None
        if _qualified(self, func) & SOFTMAX_FUNCTIONS:
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
        """``torch.max(z, 1)`` or ``z.max(1)``/``z.max(dim=-1)``: the reducing form of max; also
        ``z.topk(1)``/``torch.topk(z, 1)``, whose indices are the arg-max (with a kept dim)."""
        if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)):
            return None
        if call.func.attr.value == "topk":
            return self._top1_call(call)
        if call.func.attr.value != "max":
            return None
        if _qualified(self, call.func) & {"torch.max"}:
            dim = call_argument(call, 1, "dim") or call_argument(call, 10**6, "axis")
        elif _imported(self, call.func.value):
            return None  # np.max and other libraries' module functions
        else:
            dim = call_argument(call, 0, "dim")
        return call if dim is not None and dim_value(dim.value) in (1, -1) else None

    def _top1_call(self, call: cst.Call) -> cst.Call | None:
        """``z.topk(1)``, ``z.topk(1, dim=1)``, ``torch.topk(z, 1)``: k is the literal 1 and the
        dimension (default -1) is the class dimension."""
        module = bool(_qualified(self, call.func) & {"torch.topk"})
        if not module and _imported(self, call.func.value):
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
            method = not (_qualified(self, call.func) & {"torch.max", "torch.topk"})
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
        if isinstance(inner, cst.Call) and inner in softmax_by_call:
            softmax_by_call[inner].consumed = True
            prediction.decision_input = torch_sigmoid(self._torch_name, softmax_by_call[inner].scores)
        elif isinstance(inner, cst.Call) and self._is_sigmoid_of_scores(inner):
            prediction.decision_input = inner
        elif self._is_scores(scores, 0):
            prediction.decision_input = torch_sigmoid(self._torch_name, scores)
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
        current, flattens, numpy, listed = self._chain_top(node)
        parent = self.get_metadata(ParentNodeProvider, current)
        if current is node and isinstance(parent, (cst.Assign, cst.AnnAssign, cst.Return, cst.Arg)):
            prediction.parenthesize = False
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
            prediction.binding = parent.targets[0].target
            prediction.drop_flattens(flattens)
            if listed:
                self._listed.add(id(prediction.binding))
            if numpy:
                self._numpy_bindings.add(id(prediction.binding))
        else:
            self._classify_use(prediction, node, False)

    def _chain_top(self, node: cst.CSTNode) -> tuple[cst.CSTNode, list[Flatten], bool, bool]:
        """Walk up from ``node`` through calls that keep one row per sample: transfers
        (``.cpu()``, ``.numpy()``…), flattens and ``.tolist()``. Returns the outermost of them,
        the flattens passed, and whether the value became a NumPy array or a Python list."""
        current, flattens, numpy, listed = node, [], False, False
        while True:
            parent = self.get_metadata(ParentNodeProvider, current, None)
            call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Attribute) else None
            if not (isinstance(call, cst.Call) and call.func is parent and parent.value is current):
                break
            method = parent.attr.value
            if is_flatten(call):
                flattens.append(self._flatten(call))
            elif method not in _PREDICTION_CHAIN and method != "tolist":
                break
            numpy = numpy or method == "numpy"
            listed = listed or method == "tolist"
            current = call
        return current, flattens, numpy, listed

    def _flatten(self, call: cst.Call) -> Flatten:
        flatten = Flatten(call, self._standalone(call))
        statement = self.get_metadata(ParentNodeProvider, call, None)
        line = self.get_metadata(ParentNodeProvider, statement, None) if isinstance(statement, cst.Assign) else None
        block = self.get_metadata(ParentNodeProvider, line, None) if isinstance(line, cst.SimpleStatementLine) else None
        receiver = call.func.value if isinstance(call.func, cst.Attribute) else None
        if (
            isinstance(block, (cst.IndentedBlock, cst.Module))
            and len(block.body) > 1
            and len(line.body) == 1
            and not line.leading_lines
            and line.trailing_whitespace.comment is None
            and len(statement.targets) == 1
            and isinstance(receiver, cst.Name)
            and statement.targets[0].target.deep_equals(receiver)
        ):
            flatten.self_assignment = line
        return flatten

    def _standalone(self, node: cst.CSTNode) -> bool:
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, (cst.Assign, cst.Return)):
            return parent.value is node
        return isinstance(parent, cst.Arg) and parent.value is node

    def _is_used(self, name: cst.Name) -> bool:
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return True
        return any(getattr(a, "node", None) is name and a.references for a in scope[name.value])

    def _link_comparisons(self, predictions: list[Prediction]) -> None:
        holders: dict[int, list[tuple[cst.CSTNode, bool]]] = {}
        for prediction in predictions:
            numpy = prediction.binding is not None and id(prediction.binding) in self._numpy_bindings
            found = [(prediction.binding, numpy)] if prediction.binding is not None else []
            seeds = [prediction.binding] if prediction.binding is not None else [prediction.node]
            self._walked_flattens = []
            for seed in seeds:
                found.extend(self._carried_names(seed, seed is prediction.binding, 0, numpy))
            prediction.drop_flattens(self._walked_flattens)
            holders[id(prediction)] = found
        bindings = {
            name for p in predictions if p.proven and not p.blocked for name, _ in holders[id(p)]
        }
        for prediction in predictions:
            for name, numpy in holders[id(prediction)]:
                if not isinstance(name, cst.Name):
                    self._classify_use(prediction, name, numpy)  # torch.cat(rows) == labels
                    continue
                for use in self._reads(name):
                    referents = [getattr(r, "node", None) for r in use.referents]
                    if prediction.proven and not all(r in bindings or self._starts_empty(r) for r in referents):
                        continue  # another binding of the name is not a rewritten prediction
                    kinds = {flag for n, flag in holders[id(prediction)] if n in referents}
                    listed = any(id(r) in self._listed for r in referents)
                    self._classify_use(prediction, use.node, numpy if len(kinds) <= 1 else None, listed)

    def _classify_use(self, prediction: Prediction, node: cst.CSTNode, numpy: bool | None, listed: bool = False) -> None:
        self._note_escape(prediction, node)
        top, flattens, moved, made_list = self._chain_top(node)
        use = self._comparison_of(top)
        if isinstance(use, Comparison) and numpy is None:
            use = "the name holds a tensor in one place and a NumPy array in another"
        if isinstance(use, Comparison) and (listed or made_list):
            use = "it is compared as a Python list (.tolist()), element by element"
        if isinstance(use, Comparison):
            use.numpy = bool(numpy) or moved
            prediction.drop_flattens(flattens)
            use.denominators = self._element_counts(_label_side(use))
            if all(use.node is not known.node for known in prediction.comparisons):
                prediction.comparisons.append(use)  # a name and its gathered re-binding read it once each
        elif use and not prediction.blocked:
            prediction.blocked = use

    def _element_counts(self, labels: cst.BaseExpression) -> list[cst.Call]:
        """``labels.numel()``, ``labels.nelement()`` and ``torch.numel(labels)`` on the bindings of
        the labels name compared with the prediction (``seen += y.numel()``)."""
        name, previous = labels, None
        while name is not previous:  # y.to(device).view(-1), target.view_as(pred)
            previous, name = name, unflattened(strip_transparent(name))
            if isinstance(name, cst.Call) and isinstance(name.func, cst.Attribute) and name.func.attr.value == "view_as":
                name = name.func.value
        scope = self.get_metadata(ScopeProvider, name, None) if isinstance(name, cst.Name) else None
        if scope is None:
            return []
        referents = [
            assignment
            for access in scope.accesses[name.value]
            if access.node is name
            for assignment in access.referents
        ]
        found: list[cst.Call] = []
        for assignment in referents:
            for access in assignment.references:
                parent = self.get_metadata(ParentNodeProvider, access.node, None)
                call = self.get_metadata(ParentNodeProvider, parent, None)
                if (
                    isinstance(parent, cst.Attribute)
                    and parent.value is access.node
                    and parent.attr.value in ("numel", "nelement")
                    and isinstance(call, cst.Call)
                    and call.func is parent
                    and not call.args
                ) or (
                    isinstance(parent, cst.Arg)
                    and isinstance(call, cst.Call)
                    and len(call.args) == 1
                    and _qualified(self, call.func) & {"torch.numel"}
                ):
                    if all(call is not known for known in found):
                        found.append(call)
        return found

    def _starts_empty(self, bound: cst.CSTNode | None) -> bool:
        """``rows = []`` or ``rows, labels = [], []``: the accumulator a joined prediction re-binds
        (``rows = torch.cat(rows)``)."""
        value = self._assigned_value(bound)
        element = self.get_metadata(ParentNodeProvider, bound, None) if value is None else None
        pair = self.get_metadata(ParentNodeProvider, element, None) if isinstance(element, cst.Element) else None
        target = self.get_metadata(ParentNodeProvider, pair, None) if isinstance(pair, cst.Tuple) else None
        statement = self.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
        if isinstance(statement, cst.Assign) and isinstance(statement.value, cst.Tuple):
            index = next(i for i, e in enumerate(pair.elements) if e is element)
            values = statement.value.elements
            value = values[index].value if len(values) == len(pair.elements) else None
        return isinstance(value, cst.List) and not value.elements

    def _note_escape(self, prediction: Prediction, node: cst.CSTNode) -> None:
        """Record a call that receives the prediction (after ``.cpu()``/``.numpy()``…) and that
        nothing here follows: a helper defined elsewhere, ``np.bincount``, a plotting function.
        A flatten on the way is dropped, so that the call gets the [B, C] rows its note names."""
        current, flattens, _, _ = self._chain_top(node)
        parent = self.get_metadata(ParentNodeProvider, current, None)
        call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
        if not isinstance(call, cst.Call) or parent.value is not current:
            return
        func = call.func
        if isinstance(func, cst.Attribute) and (func.attr.value in _FOLLOWED_METHODS or func.attr.value.endswith("_as")):
            return  # followed or reported elsewhere; `labels.view_as(pred)` only reads the shape
        if isinstance(func, cst.Name) and func.value in _NEUTRAL_BUILTINS:
            return
        if isinstance(func, (cst.Name, cst.Attribute)) and (func.value if isinstance(func, cst.Name) else func.attr.value).endswith("_like"):
            return  # torch.zeros_like(pred) reads only the shape
        qualified = _qualified(self, func)
        if qualified & JOIN_FUNCTIONS or any(q.startswith(_METRIC_LIBRARIES) for q in qualified):
            return  # joins are followed; scikit-learn and torchmetrics calls have their own rules
        if all(call is not known for known in prediction.escapes):
            prediction.escapes.append(call)
        prediction.drop_flattens(flattens)

    def _reads(self, binding: cst.Name) -> list:
        scope = self.get_metadata(ScopeProvider, binding, None)
        if scope is None:
            return []
        return [
            access
            for assignment in scope[binding.value]
            if getattr(assignment, "node", None) is binding
            for access in assignment.references
        ]

    def _carried_names(
        self, seed: cst.CSTNode, is_binding: bool, depth: int, numpy: bool = False
    ) -> list[tuple[cst.CSTNode, bool]]:
        """Names (or unnamed joins, ``torch.cat(rows)``) the prediction reaches after transfers
        that keep one row per sample:
        ``.cpu()``/``.detach()``/``.numpy()``, ``accelerator.gather_for_metrics((preds, labels))``
        (also ``gather``/``all_gather``/``pad_across_processes``) with tuple unpacking, and rows
        appended to a list that ``torch.cat``/``np.concatenate`` joins. Each name comes with
        whether it holds a NumPy array."""
        if depth > 3:
            return []
        found: list[tuple[cst.CSTNode, bool]] = []
        reads = [access.node for access in self._reads(seed)] if is_binding else [seed]
        for node in reads:
            for holder, as_numpy in self._carried_from(node, None, numpy, depth):
                if all(holder is not known for known, _ in found):
                    found.append((holder, as_numpy))
                    if isinstance(holder, cst.Name):
                        found.extend(self._carried_names(holder, True, depth + 1, as_numpy))
        return found

    def _carried_from(
        self, node: cst.CSTNode, position: int | None, numpy: bool, depth: int, collected: bool = False
    ) -> list[tuple[cst.CSTNode, bool]]:
        """Where the value of ``node`` (element ``position`` of it, for a tuple) is bound. A
        ``collected`` value (a join or a gather's result) that is used without a name is
        returned itself, so that a comparison on it is found too."""
        current, flattens = node, []
        while position is None:
            parent = self.get_metadata(ParentNodeProvider, current, None)
            call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Attribute) else None
            if not (
                isinstance(call, cst.Call)
                and call.func is parent
                and parent.value is current
                and (
                    parent.attr.value in _PREDICTION_CHAIN
                    or (parent.attr.value == "tolist" and self._extends(call))
                    or is_flatten(call)
                )
            ):
                break
            if is_flatten(call):
                flattens.append(self._flatten(call))
            numpy = numpy or parent.attr.value == "numpy"
            current = call
        found = self._holders_of(current, position, numpy, depth, collected)
        if found:
            self._walked_flattens.extend(flattens)
        return found

    def _holders_of(
        self, current: cst.CSTNode, position: int | None, numpy: bool, depth: int, collected: bool
    ) -> list[tuple[cst.CSTNode, bool]]:
        parent = self.get_metadata(ParentNodeProvider, current, None)
        if isinstance(parent, cst.Element) and position is None:
            pair = self.get_metadata(ParentNodeProvider, parent, None)
            if isinstance(pair, cst.Tuple):
                index = next(i for i, element in enumerate(pair.elements) if element is parent)
                return self._carried_from(pair, index, numpy, depth)
            return []
        if isinstance(parent, cst.Arg) and parent.keyword is None:
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)):
                return []
            if (
                call.func.attr.value == "all_gather"
                and len(call.args) == 2
                and call.args[1] is parent
                and isinstance(call.args[0].value, cst.Name)
                and position is None
            ):
                return self._joined(call.args[0].value, "append", numpy, depth)  # dist.all_gather(rows, pred)
            if call.args[0] is not parent:
                return []
            if call.func.attr.value in _GATHER_METHODS:
                return self._carried_from(call, position, numpy, depth, collected=True)
            if call.func.attr.value in ("append", "extend") and position is None and isinstance(call.func.value, cst.Name):
                return self._joined(call.func.value, call.func.attr.value, numpy, depth)
            return []
        if isinstance(parent, cst.AugAssign) and isinstance(parent.operator, cst.AddAssign) and position is None:
            if isinstance(parent.target, cst.Name) and parent.value is current:
                return self._joined(parent.target, "extend", numpy, depth)  # rows += pred.tolist()
            return []
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            target = parent.targets[0].target
            if position is None and isinstance(target, cst.Name):
                return [(target, numpy)]
            if (
                position is not None
                and isinstance(target, (cst.Tuple, cst.List))
                and len(target.elements) > position
                and isinstance(target.elements[position].value, cst.Name)
                and not any(isinstance(e, cst.StarredElement) for e in target.elements)
            ):
                return [(target.elements[position].value, numpy)]
        return [(current, numpy)] if collected and position is None else []

    def _extends(self, tolist: cst.Call) -> bool:
        """``rows.extend(pred.tolist())`` / ``rows += pred.tolist()``: the list gains the rows."""
        parent = self.get_metadata(ParentNodeProvider, tolist, None)
        if isinstance(parent, cst.AugAssign):
            return parent.value is tolist and isinstance(parent.operator, cst.AddAssign)
        call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
        return isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "extend"

    def _joined(self, rows: cst.Name, how: str, numpy: bool, depth: int) -> list[tuple[cst.CSTNode, bool]]:
        """``preds = torch.cat(all_preds)`` for the list ``all_preds`` that batches are appended
        to, or ``np.array(all_preds)`` for one extended with their rows (``how``)."""
        scope = self.get_metadata(ScopeProvider, rows, None)
        if scope is None:
            return []
        found = []
        for assignment in scope[rows.value]:
            for access in assignment.references:
                parent = self.get_metadata(ParentNodeProvider, access.node, None)
                join = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
                if isinstance(join, cst.Call) and join.args and join.args[0] is parent:
                    qualified = _qualified(self, join.func) & JOINS[how]
                    if qualified:
                        as_numpy = numpy or any(name.startswith("numpy.") for name in qualified)
                        found.extend(self._carried_from(join, None, as_numpy, depth, collected=True))
        return found

    def _iterated(self, node: cst.CSTNode) -> bool:
        """``for p in pred``, ``for t, p in zip(target, pred)``, ``enumerate(pred)`` in a loop or a
        comprehension: each step reads one sample's prediction."""
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, cst.Arg) and parent.keyword is None and parent.value is node:
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value in ("zip", "enumerate")):
                return False
            node, parent = call, self.get_metadata(ParentNodeProvider, call, None)
        return isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is node

    def _comparison_of(self, prediction: cst.CSTNode) -> Comparison | str | None:
        """How a prediction is used: an accuracy comparison with the labels, a use as one class
        index (a reason that blocks the rewrite), or None for anything neutral. Labels that are
        themselves an arg-max (``target.argmax(1)``: one-hot or multi-hot targets collapsed to
        one class index) block it too, and are recorded to be reported where they are made."""
        use = self._use_of(prediction)
        if not isinstance(use, Comparison):
            return use
        sources = class_index_sources(self, _label_side(use))
        if not sources:
            return use
        self._collapsed_targets.extend(s for s in sources if all(s is not known for known in self._collapsed_targets))
        return "the labels it is compared with are one class index per sample (an arg-max over the targets)"

    def _use_of(self, prediction: cst.CSTNode) -> Comparison | str | None:
        parent = self.get_metadata(ParentNodeProvider, prediction, None)
        if self._iterated(prediction):
            return (
                "it is iterated one sample at a time (for ... in zip(..., pred)) as one class index; "
                "a multi-label sample has a row of labels, so the loop body needs rewriting first"
            )
        if (
            isinstance(parent, cst.Subscript)
            and parent.value is prediction
            and len(parent.slice) == 1
            and isinstance(parent.slice[0].slice, cst.Index)
        ):
            return (
                "it is read one sample at a time (pred[i]) as one class index; collect whole rows "
                "instead (y_pred.extend(pred.tolist()), with the targets' rows alike)"
            )
        if isinstance(parent, cst.Comparison) and len(parent.comparisons) == 1 and isinstance(
            parent.comparisons[0].operator, (cst.Equal, cst.NotEqual)
        ):
            left = parent.left is prediction
            other = parent.comparisons[0].comparator if left else parent.left
            if isinstance(other, LITERALS):
                return "it is compared with a class index"
            negated = isinstance(parent.comparisons[0].operator, cst.NotEqual)
            return Comparison(parent, "right" if left else "left", negated=negated)
        if isinstance(parent, cst.Attribute) and parent.attr.value in ("eq", "ne", "item"):
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not (isinstance(call, cst.Call) and call.func is parent):
                return None
            if parent.attr.value == "item":
                return "it is read as one class index with .item()"
            if len(call.args) == 1:
                if isinstance(call.args[0].value, LITERALS):
                    return "it is compared with a class index"
                return Comparison(call, "arg0", negated=parent.attr.value == "ne")
            return None
        if isinstance(parent, cst.Index):
            return "it is used as an index (one class per sample)"
        if isinstance(parent, cst.Arg):
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not isinstance(call, cst.Call):
                return None
            if parent.keyword is not None:
                if (
                    parent.keyword.value == "predictions"
                    and isinstance(call.func, cst.Attribute)
                    and call.func.attr.value in ("add_batch", "add", "compute")
                ):
                    return (
                        "it is fed to a Hugging Face `evaluate` metric, whose single-label configuration "
                        "rejects multi-hot rows (load evaluate.load(\"f1\", \"multilabel\") and pass average=\"micro\")"
                    )
                return None
            if isinstance(call.func, cst.Name) and call.func.value in ("int", "str"):
                return f"it is converted with {call.func.value}() as one class index"
            equality = _qualified(self, call.func) & {"torch.eq", "torch.ne"}
            if equality and len(call.args) == 2:
                label_index = 1 - call.args.index(parent)
                if isinstance(call.args[label_index].value, LITERALS):
                    return "it is compared with a class index"
                return Comparison(call, f"arg{label_index}", negated=equality == {"torch.ne"})
            if isinstance(call.func, cst.Attribute) and call.func.attr.value in ("eq", "ne") and len(call.args) == 1:
                return Comparison(call, "receiver", negated=call.func.attr.value == "ne")
        return None


def _label_side(comparison: Comparison) -> cst.BaseExpression:
    node, position = comparison.node, comparison.label_position
    if isinstance(node, cst.Comparison):
        return node.left if position == "left" else node.comparisons[0].comparator
    assert isinstance(node, cst.Call)
    if position == "receiver":
        assert isinstance(node.func, cst.Attribute)
        return node.func.value
    return node.args[int(position.removeprefix("arg"))].value


def _argmax_call(call: cst.Call) -> bool:
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in ("argmax", "max")


def _torch_binding(module: cst.Module) -> tuple[str, bool]:
    """The name ``torch`` is imported as at module level, and whether it is imported at all."""
    alias = module_alias(module, "torch")
    return alias or "torch", alias is not None
