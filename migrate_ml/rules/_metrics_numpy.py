"""ML023's NumPy predictions: the sigmoid decision written in NumPy, and where an arg-max goes
(its reads, through ``.cpu().numpy()``/``.tolist()``, and rows appended per batch then joined)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider, ScopeProvider

from migrate_ml.rules._base import in_source_order
from migrate_ml.rules._exprs import module_alias, parenthesize
from migrate_ml.rules.semantics.flow import call_argument
from migrate_ml.rules._metrics_hf import converted_to_numpy
from migrate_ml.rules.semantics.rewrites import above_threshold

ARRAY_CHAIN = frozenset({"numpy", "cpu", "detach", "tolist", "cuda", "to"})
"""Conversions between the arg-max and the metric, or between the model output and the arg-max."""
ACCUMULATE_METHODS = frozenset({"append", "extend"})
CONCATENATE_FUNCTIONS = frozenset({"numpy.concatenate", "torch.cat", "torch.concatenate"})
JOIN_FUNCTIONS = CONCATENATE_FUNCTIONS | {"numpy.stack", "torch.stack", "numpy.array", "numpy.asarray"}
"""How per-batch rows are joined after the loop; only the concatenating ones keep ``[B, C]`` rows ``[N, C]``."""


@dataclass
class Accumulation:
    """A prediction appended to a list per batch, and what the list is turned into and fed to."""

    append: cst.Call
    joins: list[cst.Call]
    consumers: list[cst.CSTNode]
    """Every use of the joined arrays (as ``_consumers`` finds them), and the list itself passed to a metric."""
    other_uses: bool
    """The list is also read otherwise: appended elsewhere, printed, passed as is, re-bound from a non-empty value."""


def expit_alias(module: cst.Module) -> str | None:
    """The name ``scipy.special.expit`` is imported as at module level, if it is."""
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if (
                isinstance(small, cst.ImportFrom)
                and small.module is not None
                and cst.Module(body=[]).code_for_node(small.module) == "scipy.special"
                and not isinstance(small.names, cst.ImportStar)
            ):
                for alias in small.names:
                    if isinstance(alias.name, cst.Name) and alias.name.value == "expit":
                        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                            return alias.asname.name.value
                        return "expit"
    return None


class NumpyPredictions:
    """Mixin for ML023: write the NumPy decision and follow a prediction to its uses."""

    def _numpy_name(self, call: cst.Call) -> str | None:
        func = call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and self._qualified(func) & {"numpy.argmax"}:
            return func.value.value
        return module_alias(self._module, "numpy")

    def _decision_rewrite(self, call: cst.Call):
        """``np.argmax(z, axis=-1)`` -> ``1 / (1 + np.exp(-z)) > THRESHOLD``."""
        threshold = self.context.threshold_name
        expit = expit_alias(self._module)
        numpy = self._numpy_name(call) or "numpy"
        function_form = bool(self._qualified(call.func) & {"numpy.argmax"})
        parent = self.get_metadata(ParentNodeProvider, call, None)
        bare = isinstance(parent, (cst.Assign, cst.AnnAssign, cst.Return, cst.Arg))

        def apply(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.Call) and isinstance(updated.func, cst.Attribute)
            scores = call_argument(updated, 0, "a").value if function_form else updated.func.value
            scores = scores.with_changes(lpar=[], rpar=[]) if isinstance(scores, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) else scores
            if expit is not None:
                probability: cst.BaseExpression = cst.Call(func=cst.Name(expit), args=[cst.Arg(scores)])
            else:
                exponential = cst.Call(
                    func=cst.Attribute(value=cst.Name(numpy), attr=cst.Name("exp")),
                    args=[cst.Arg(cst.UnaryOperation(operator=cst.Minus(), expression=parenthesize(scores)))],
                )
                probability = cst.BinaryOperation(
                    left=cst.Integer("1"),
                    operator=cst.Divide(),
                    right=cst.BinaryOperation(
                        left=cst.Integer("1"), operator=cst.Add(), right=exponential,
                        lpar=[cst.LeftParen()], rpar=[cst.RightParen()],
                    ),
                )
            decision = above_threshold(probability, threshold)
            if bare:
                return decision.with_changes(lpar=updated.lpar, rpar=updated.rpar)
            return decision.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])

        return apply

    def _multi_hot_row(self, scores: cst.BaseExpression) -> str:
        """The row to append: the PyTorch decision converted back, or NumPy's when the scores already are an array."""
        tensor = scores
        while (
            isinstance(tensor, cst.Call)
            and isinstance(tensor.func, cst.Attribute)
            and tensor.func.attr.value in ("numpy", "cpu", "detach")
            and not tensor.args
        ):
            tensor = tensor.func.value
        threshold = self.context.threshold_name
        if converted_to_numpy(scores, tensor):
            return f"({self._flow.torch_name}.sigmoid({self._module.code_for_node(tensor)}) > {threshold}).cpu().numpy()"
        return f"1 / (1 + np.exp(-{self._module.code_for_node(scores)})) > {threshold}"

    def _consumers(self, node: cst.CSTNode, statement: cst.CSTNode | None) -> list[cst.CSTNode]:
        """Where the prediction's value goes: its own position, or every read of the name it is assigned to."""
        current = self._through_chain(node)
        parent = self.get_metadata(ParentNodeProvider, current, None)
        if (
            isinstance(parent, cst.Assign)
            and len(parent.targets) == 1
            and isinstance(parent.targets[0].target, cst.Name)
            and parent.value is current
        ):
            return self._reads(parent.targets[0].target, statement)
        return [current]

    def _reads(self, binding: cst.Name, statement: cst.CSTNode | None) -> list[cst.CSTNode]:
        """Every read of ``binding``, each climbed through its conversions (``.cpu().numpy()``)."""
        scope = self.get_metadata(ScopeProvider, binding, None)
        if scope is None:
            return [binding]  # unknown uses block the rewrite
        start = self.get_metadata(PositionProvider, statement).start if self._excluded(statement) is not None else None
        reads = []
        for assignment in scope[binding.value]:
            if getattr(assignment, "node", None) is not binding:
                continue
            for access in in_source_order(self, assignment.references):
                if self._statement(access.node) is statement:
                    continue
                if start is not None and self.get_metadata(PositionProvider, access.node).start.line < start.line:
                    continue  # read before this binding, in straight-line code: another binding's value
                reads.append(self._through_chain(access.node))
        return reads

    def _through_chain(self, node: cst.CSTNode) -> cst.CSTNode:
        """Climb ``pred.cpu().numpy()``/``pred.tolist()``: conversions keep the prediction."""
        current = node
        while True:
            parent = self.get_metadata(ParentNodeProvider, current, None)
            if isinstance(parent, cst.Attribute) and parent.attr.value in ARRAY_CHAIN:
                call = self.get_metadata(ParentNodeProvider, parent, None)
                if isinstance(call, cst.Call) and call.func is parent:
                    current = call
                    continue
            return current

    def _follow_accumulations(self, consumers: list[cst.CSTNode]) -> tuple[list[cst.CSTNode], list[Accumulation]]:
        """Replace each ``rows.append(prediction)`` by the uses of ``np.concatenate(rows)``."""
        followed: list[cst.CSTNode] = []
        accumulations: list[Accumulation] = []
        for consumer in consumers:
            accumulation = self._accumulation(consumer)
            if accumulation is None:
                followed.append(consumer)
            else:
                accumulations.append(accumulation)
                followed.extend(accumulation.consumers)
        return followed, accumulations

    def _accumulation(self, consumer: cst.CSTNode) -> Accumulation | None:
        """``rows.append(consumer)`` / ``rows.extend(consumer)`` with ``rows`` joined later in the function."""
        argument = self.get_metadata(ParentNodeProvider, consumer, None)
        append = self.get_metadata(ParentNodeProvider, argument, None) if isinstance(argument, cst.Arg) else None
        if not (
            isinstance(append, cst.Call)
            and len(append.args) == 1
            and append.args[0] is argument
            and argument.keyword is None
            and isinstance(append.func, cst.Attribute)
            and append.func.attr.value in ACCUMULATE_METHODS
            and isinstance(append.func.value, cst.Name)
        ):
            return None
        rows = append.func.value
        scope = self.get_metadata(ScopeProvider, rows, None)
        if scope is None:
            return None
        joins: list[cst.Call] = []
        consumers: list[cst.CSTNode] = []
        other_uses = False
        for access in in_source_order(self, scope.accesses[rows.value]):
            node = access.node
            if node is rows:
                continue
            parent = self.get_metadata(ParentNodeProvider, node, None)
            join = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
            if isinstance(join, cst.Call) and join.args[0] is parent and self._qualified(join.func) & JOIN_FUNCTIONS:
                joins.append(join)
                consumers.extend(self._consumers(join, self._statement(join)))
                continue
            if isinstance(join, cst.Call) and self._sklearn_metric(join) is not None:
                consumers.append(node)  # `f1_score(y_true, y_pred)` on the list of `.tolist()` rows
            other_uses = True
        if not consumers:
            return None
        for assignment in scope[rows.value]:
            bound = self._bound_value(assignment.node) if isinstance(getattr(assignment, "node", None), cst.Name) else None
            if bound is None or not (isinstance(bound[1], cst.List) and not bound[1].elements):
                other_uses = True  # rows that may already hold something else than these predictions
        return Accumulation(append, joins, consumers, other_uses)
