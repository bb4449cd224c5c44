"""ML010: the target of a BCE-with-logits call must be float."""

from __future__ import annotations

import dataclasses

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule
from migrate_ml.rules._exprs import as_float_target, is_float_cast, map_target
from migrate_ml.rules._project import current_facts
from migrate_ml.rules._flow import LossFlow, LossFlowProvider, OpenParameterCall, ParameterHop, call_argument

TORCH_BCE = frozenset(
    {
        "torch.nn.BCEWithLogitsLoss",
        "torch.nn.modules.loss.BCEWithLogitsLoss",
        "torch.nn.functional.binary_cross_entropy_with_logits",
    }
)

# Parameter names that, by near-universal convention, hold the criterion. A name alone proves
# nothing, which is why calls found this way only get an unsafe fix.
CRITERION_PARAMETERS = frozenset(
    {"criterion", "loss_fn", "loss_func", "loss_function", "loss_fct", "base_criterion", "train_criterion"}
)


def provably_float(rule: Rule, expression: cst.BaseExpression, depth: int = 0) -> bool:
    """An explicit float cast, float arithmetic (``y * 0.9 + 0.05``), or a name whose only
    binding in its scope is one of those."""
    if depth > 3:
        return False
    if is_float_cast(expression) or isinstance(expression, cst.Float):
        return True
    if isinstance(expression, cst.BinaryOperation):
        return provably_float(rule, expression.left, depth + 1) or provably_float(
            rule, expression.right, depth + 1
        )
    if isinstance(expression, cst.Name):
        scope = rule.get_metadata(ScopeProvider, expression, None)
        if scope is None:
            return False
        assignments = list(scope[expression.value])
        if len(assignments) != 1:
            return False
        target = getattr(assignments[0], "node", None)
        holder = rule.get_metadata(ParentNodeProvider, target, None) if target is not None else None
        statement = rule.get_metadata(ParentNodeProvider, holder, None) if holder is not None else None
        if isinstance(holder, cst.AssignTarget) and isinstance(statement, cst.Assign):
            return provably_float(rule, statement.value, depth + 1)
    return False


class FloatTargetsRule(Rule):
    code = "ML010"
    name = "float-loss-targets"
    summary = "The target of a BCEWithLogitsLoss / binary_cross_entropy_with_logits call gets .float()."
    rationale = (
        "`BCEWithLogitsLoss` and `binary_cross_entropy_with_logits` need float targets of the "
        "logits' shape; integer multi-hot labels (what most datasets and collate functions "
        "build, int64) make them fail with a dtype error. The loss rules (ML001–ML004) cast the "
        "targets of the calls they convert; this rule covers the rest: BCE calls that already "
        "exist (for example a hand migration that forgot the cast) get `.float()` after any "
        "`.to(device)`/`.cuda()` chain, unless the target is already provably float "
        "(`.float()`, `.to(torch.float32)`, `.type(torch.float)`, `.to(device, "
        "dtype=torch.float)`, float arithmetic, or a name bound once to one of those). A "
        "criterion received as a parameter (`criterion`, `loss_fn`, ...) by a function that no "
        "code in the same file calls, or only passes its own parameter to (`train(..., "
        "loss_fn)` calling `train_step(..., loss_fn=loss_fn)`), cannot be proven to be a BCE "
        "loss, so its calls are reported, naming that chain, with an unsafe fix that adds the "
        "cast. When `rewrite` is given the other files too (a folder, or `main.py engine.py`), "
        "the criteria they pass are followed across modules: a parameter fed only criteria "
        "that are (or this run makes) `BCEWithLogitsLoss` gets the cast as a safe fix, and the "
        "finding names the file and line where the criterion is built. `.float()` returns a float32 target "
        "unchanged, so the added cast costs nothing where the labels were float already."
    )
    applicability = Applicability.SAFE
    example_before = (
        "criterion = nn.BCEWithLogitsLoss()\n"
        "loss = criterion(outputs, labels.to(device))\n"
    )
    example_after = (
        "criterion = nn.BCEWithLogitsLoss()\n"
        "loss = criterion(outputs, labels.to(device).float())\n"
    )
    triggers = (
        "BCEWithLogits",
        "binary_cross_entropy_with_logits",
        *(f"{name}(" for name in CRITERION_PARAMETERS),
    )
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, LossFlowProvider, ScopeProvider, ParentNodeProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        facts = current_facts()  # another file of the run passes this one a criterion
        return super().could_apply(source) or (facts is not None and bool(facts.parameters))

    def leave_Module(self, original_node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, original_node)
        for loss_call in flow.calls:
            names = {c.qualified_name for c in loss_call.constructions}
            if loss_call.functional:
                names = {"torch.nn.functional.binary_cross_entropy_with_logits"} if loss_call.kinds == {"bce"} else set()
            if not names or not names <= TORCH_BCE or loss_call.target is None:
                continue
            if provably_float(self, loss_call.target.value):
                continue
            self.report(
                loss_call.call,
                "BCE-with-logits needs float targets; this target is not provably float",
                fix=Fix(edits=(NodeEdit(loss_call.call, map_target(loss_call.call, loss_call.target, as_float_target)),)),
            )
        for open_call in flow.open_parameter_calls:
            self._check_parameter_call(open_call)

    def _check_parameter_call(self, open_call: OpenParameterCall) -> None:
        call = open_call.call
        attribute = isinstance(call.func, cst.Attribute)
        name = cst.Module([]).code_for_node(call.func)
        short = call.func.attr.value if attribute else name
        target = call_argument(call, 1, "target")
        if not open_call.chains or not (short in CRITERION_PARAMETERS or open_call.facts):
            return  # not named or passed like a criterion, or fed something else by this file's own calls
        if target is None or len(call.args) != 2 or provably_float(self, target.value):
            return
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


def _sources(open_call: OpenParameterCall) -> str:
    return "; ".join(dict.fromkeys(fact.describe() for fact in open_call.facts))


def describe_route(chain: tuple[ParameterHop, ...]) -> str:
    """``a parameter of train_step(), passed from train(loss_fn)``."""
    first, *rest = chain
    text = f"a parameter of {first.function}()"
    if rest:
        text += ", passed from " + " <- ".join(f"{hop.function}({hop.parameter})" for hop in rest)
    return text
