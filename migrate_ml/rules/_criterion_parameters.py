"""ML010's criteria called through a parameter: a function of the file calls a criterion it is given
(``criterion(output, target)``), whose callers are in other files of the run; its target must be float if
the criterion is BCE-with-logits, unless the function already scores the target rows one decision per label.
"""

from __future__ import annotations

import ast
import dataclasses
import textwrap

import libcst as cst
from libcst.metadata import ParentNodeProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit
from migrate_ml.rules._exprs import as_float_target, map_target
from migrate_ml.rules._project import current_facts
from migrate_ml.rules._target_origins import target_origin
from migrate_ml.rules.semantics.class_index import report_not_label_rows
from migrate_ml.rules.semantics.flow import OpenParameterCall, ParameterHop, call_argument
from migrate_ml.rules.semantics.single_label_values import equality_operands


# Parameter names that, by near-universal convention, hold the criterion. A name alone proves
# nothing, which is why calls found this way only get an unsafe fix.
CRITERION_PARAMETERS = frozenset(
    {"criterion", "loss_fn", "loss_func", "loss_function", "loss_fct", "base_criterion", "train_criterion"}
)


class CriterionParameters:
    """Mixin for ML010: the target of a criterion called through a parameter, whose callers are in other files."""

    def _check_parameter_call(self, open_call: OpenParameterCall) -> None:
        call = open_call.call
        attribute = isinstance(call.func, cst.Attribute)
        name = cst.Module([]).code_for_node(call.func)
        short = call.func.attr.value if attribute else name
        target = call_argument(call, 1, "target")
        if not open_call.chains or not (short in CRITERION_PARAMETERS or open_call.facts):
            return  # not named or passed like a criterion, or fed something else by this file's own calls
        if target is None or len(call.args) != 2:
            return
        origin = target_origin(self, target.value)
        if origin == "class-index":
            self.report(
                call,
                "the target is an arg-max (one class index per sample): targets collapsed from one-hot or "
                "multi-hot rows, or a teacher's decision",
                suggestion=(
                    "pass the [B, C] multi-hot targets as floats, or a teacher's decision as "
                    f"(torch.sigmoid(teacher_logits) > {self.context.threshold_name}).float()"
                ),
            )
            return
        facts = current_facts()
        if facts is not None and facts.float_row_run:
            return  # the run's criteria are BCE and its datasets return float label rows
        if report_not_label_rows(self, target.value):
            return  # a literal, a wrapped class index or a column: a float cast would not make it rows
        already_multi_label = open_call.proven_bce and not open_call.converted_by_run
        if origin == "float" or (origin == "computed" and (already_multi_label or not self._is_parameter(target.value))):
            return  # float, or built by already-multi-label code: left as written
        if self._scored_per_label(call, target.value):
            return  # already-multi-label code: the targets are rows, scored one decision per label
        route = ("set from " if attribute else "") + describe_route(open_call.chains[0])
        cast = Fix(edits=(NodeEdit(call, map_target(call, target, as_float_target)),))
        if open_call.proven_bce:
            self.report(
                call,
                f"{name} is {route}, which other files of this run pass "
                f"{_sources(open_call)} (BCE-with-logits after this run): its target must be float",
                fix=cast,
            )
            return
        passed = f"; other files of this run pass it {_sources(open_call)}" if open_call.facts else ""
        self.report(
            call,
            f"{name} is {route}, whose callers are in other files{passed}: if it is a "
            "BCE-with-logits criterion its target must be float",
            suggestion=f"{name}(output, target.float()) with float multi-hot targets [B, C]",
            fix=dataclasses.replace(cast, applicability=Applicability.UNSAFE),
        )

    def _scored_per_label(self, call: cst.Call, target: cst.BaseExpression) -> bool:
        """Whether the function of ``call`` compares ``target`` with thresholded outputs
        (``output = output >= 0.5`` then ``output.float() == target``): one decision per label
        compared with its target, so the criterion already trains those rows as they are."""
        if not isinstance(target, cst.Name):
            return False
        function = self.get_metadata(ParentNodeProvider, call, None)
        while function is not None and not isinstance(function, cst.FunctionDef):
            function = self.get_metadata(ParentNodeProvider, function, None)
        if function is None:
            return False
        tree = ast.parse(textwrap.dedent(cst.Module(body=[function]).code))
        decisions = {
            bound.id for node in ast.walk(tree) if isinstance(node, ast.Assign) and _is_decision(node.value)
            for bound in node.targets if isinstance(bound, ast.Name)
        }
        for node in ast.walk(tree):
            operands = equality_operands(node)
            if operands is None:
                continue
            for mine, other in (operands, operands[::-1]):
                other = _without_casts(other)
                if isinstance(mine, ast.Name) and mine.id == target.value and (
                    _is_decision(other) or (isinstance(other, ast.Name) and other.id in decisions)
                ):
                    return True
        return False


def _is_decision(node: ast.expr) -> bool:
    """``output >= 0.5``, ``probs > threshold``: a thresholded score, one decision per label."""
    return isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Gt, ast.GtE))


def _without_casts(node: ast.expr) -> ast.expr:
    """``output`` of ``output.float()`` or ``output.cpu().int()``."""
    while (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args
        and node.func.attr in ("float", "int", "long", "bool", "double", "cpu", "detach")
    ):
        node = node.func.value
    return node


def _sources(open_call: OpenParameterCall) -> str:
    return "; ".join(dict.fromkeys(fact.describe() for fact in open_call.facts))


def describe_route(chain: tuple[ParameterHop, ...]) -> str:
    """``a parameter of train_step(), passed from train(loss_fn)``."""
    first, *rest = chain
    text = f"a parameter of {first.function}()"
    if rest:
        text += ", passed from " + " <- ".join(f"{hop.function}({hop.parameter})" for hop in rest)
    return text
