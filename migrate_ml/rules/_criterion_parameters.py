"""ML010's criteria called through a parameter: a function of the file calls a criterion it is given
(``criterion(output, target)``), whose callers are in other files of the run; its target must be float if
the criterion is BCE-with-logits, unless the function already scores the target rows one decision per label.
"""

from __future__ import annotations

import ast
import dataclasses
import textwrap

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit
from migrate_ml.rules._exprs import as_float_target, cst_nodes_of, map_target
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
        self._check_per_sample_weight(call, name)
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
        if facts is not None and facts.criteria_cast_targets and not open_call.facts:
            return  # handed in from outside the run, whose loss classes all cast their targets themselves
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
        message = (
            f"{name} is {route}, whose callers are in other files{passed}: if it is a "
            "BCE-with-logits criterion its target must be float"
        )
        if self._joined_with_same_line(call, message, cast):
            return
        self.report(
            call,
            message,
            suggestion=f"{name}(output, target.float()) with float multi-hot targets [B, C]",
            fix=dataclasses.replace(cast, applicability=Applicability.UNSAFE),
        )

    def _joined_with_same_line(self, call: cst.Call, message: str, cast: Fix) -> bool:
        """``lam * criterion(preds, y_a) + (1 - lam) * criterion(preds, y_b)``: the second call of one
        line gets the same finding as the first, which then names and casts both (one finding, one fix)."""
        line = self.get_metadata(PositionProvider, call).start.line
        for earlier in self.context.violations:
            if (
                earlier.code == self.code and earlier.message == message and earlier.fix is not None
                and self.get_metadata(PositionProvider, earlier.node).start.line == line
            ):
                earlier.fix = dataclasses.replace(earlier.fix, edits=earlier.fix.edits + cast.edits)
                earlier.extra_nodes = (*earlier.extra_nodes, call)
                return True
        return False

    def _check_per_sample_weight(self, call: cst.Call, name: str) -> None:
        """``torch.mean(loss_a * lam_a + loss_b * lam_b)`` where ``loss_a = criterion(out, y_a)``
        and ``lam_a`` is one weight per image (snapmix's area weights, ``torch.ones(x.size(0))``):
        an unreduced BCE criterion returns ``[B, C]``, which a ``[B]`` weight does not broadcast over
        (it raises, or silently pairs images with classes when B == C). A scalar ``lam`` is fine."""
        for weight, product in self._weights_of(call):
            while isinstance(parent := self.get_metadata(ParentNodeProvider, product, None), cst.BinaryOperation):
                product = parent  # the whole weighted sum, reported once
            if id(product) in self._weighted_reported:
                continue
            self._weighted_reported.add(id(product))
            self.report(
                product,
                f"{weight.value} holds one weight per image [B] and multiplies the loss of {name}, whose "
                "callers are in other files: with BCE-with-logits and reduction='none' that loss is [B, C] "
                "(one per label), which a [B] weight does not broadcast over",
                suggestion=(
                    f"reduce the loss over the classes first ({name}(output, target).mean(1)) or weight "
                    f"each label: {weight.value}.unsqueeze(1)"
                ),
            )

    def _weights_of(self, call: cst.Call) -> list[tuple[cst.Name, cst.BinaryOperation]]:
        """The per-image weights that multiply the value of ``call``, directly or through the one name it is bound to."""
        parent = self.get_metadata(ParentNodeProvider, call, None)
        uses: list[cst.CSTNode] = [call]
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
            uses = [access.node for access in _accesses(self, parent.targets[0].target)]
        found = []
        for use in uses:
            product = self.get_metadata(ParentNodeProvider, use, None)
            if not (isinstance(product, cst.BinaryOperation) and isinstance(product.operator, cst.Multiply)):
                continue
            weight = _without_device_move(product.right if product.left is use else product.left)
            if isinstance(weight, cst.Name) and weight.value in self._per_image:
                found.append((weight, product))
        return found

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


_TENSOR_BUILDERS = frozenset({"ones", "zeros", "rand", "randn", "full", "empty"})


def _sized_by_batch(value: cst.BaseExpression) -> bool:
    """``torch.ones(data.size(0))``, ``torch.rand(x.shape[0])``, ``torch.zeros(len(images))``: a
    tensor of one value per image of the batch (one size only)."""
    if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value in _TENSOR_BUILDERS):
        return False
    sizes = [a for a in value.args if a.keyword is None]
    if len(sizes) != 1:
        return False
    size = sizes[0].value
    if isinstance(size, cst.Call) and isinstance(size.func, cst.Attribute) and size.func.attr.value == "size":
        return len(size.args) == 1 and isinstance(size.args[0].value, cst.Integer) and size.args[0].value.value == "0"
    if isinstance(size, cst.Call) and isinstance(size.func, cst.Name) and size.func.value == "len":
        return len(size.args) == 1
    return (
        isinstance(size, cst.Subscript) and isinstance(size.value, cst.Attribute) and size.value.attr.value == "shape"
        and len(size.slice) == 1 and isinstance(size.slice[0].slice, cst.Index)
        and isinstance(size.slice[0].slice.value, cst.Integer) and size.slice[0].slice.value.value == "0"
    )


def per_image_names(module: cst.Module) -> frozenset[str]:
    """Names the file binds to one value per image: ``lam_a = torch.ones(data.size(0))``."""
    return frozenset(
        assign.targets[0].target.value
        for assign in cst_nodes_of(module, cst.Assign)
        if len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name) and _sized_by_batch(assign.value)
    )


def _without_device_move(weight: cst.BaseExpression) -> cst.BaseExpression:
    """``lam_a`` of ``lam_a.to(device)`` or ``lam_a.cuda()``: the same values, the same shape."""
    while (
        isinstance(weight, cst.Call) and isinstance(weight.func, cst.Attribute)
        and weight.func.attr.value in ("to", "cuda", "float", "detach")
    ):
        weight = weight.func.value
    return weight


def _accesses(rule, bound: cst.Name) -> list:
    scope = rule.get_metadata(ScopeProvider, bound, None)
    if scope is None:
        return []
    return [access for assignment in scope.assignments[bound.value] if assignment.node is bound for access in assignment.references]


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
