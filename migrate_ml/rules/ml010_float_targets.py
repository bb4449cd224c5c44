"""ML010: the target of a BCE-with-logits call must be float.

The rule is split by idiom: where a target comes from (provably float, an arg-max, an integer cast, the
loader's labels) is in ``_target_origins``, and criteria called through a parameter whose callers are in
other files in ``_criterion_parameters``. BCE calls the loss flow follows, and criteria it does not
follow (a dict, a class of the file), are judged here.
"""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule
from migrate_ml.rules._criterion_parameters import CRITERION_PARAMETERS, CriterionParameters, per_image_names
from migrate_ml.rules._exprs import as_float_target, map_target
from migrate_ml.rules._criterion_routes import criterion_route
from migrate_ml.rules._target_origins import target_origin
from migrate_ml.rules.semantics.flow import (
    LossConstruction,
    LossFlow,
    LossFlowProvider,
    call_argument,
)
from migrate_ml.rules.semantics.class_index import report_not_label_rows
from migrate_ml.rules.semantics.heads import report_prediction_input
from migrate_ml.rules._project import current_facts
from migrate_ml.rules._prefilter import walk

TORCH_BCE = frozenset(
    {
        "torch.nn.BCEWithLogitsLoss",
        "torch.nn.modules.loss.BCEWithLogitsLoss",
        "torch.nn.functional.binary_cross_entropy_with_logits",
    }
)

_BCE_WORDS = ("BCEWithLogits", "binary_cross_entropy_with_logits")
"""What code that builds or calls a BCE-with-logits loss names (``TORCH_BCE``, aliases imported included)."""


class FloatTargetsRule(CriterionParameters, Rule):
    code = "ML010"
    name = "float-loss-targets"
    summary = "The target of a BCEWithLogitsLoss / binary_cross_entropy_with_logits call gets .float()."
    rationale = (
        "`BCEWithLogitsLoss` and `binary_cross_entropy_with_logits` need float targets of the "
        "logits' shape; integer multi-hot labels (what most datasets and collate functions "
        "build, int64) make them fail with a dtype error. The loss rules (ML001–ML004) cast the "
        "targets of the calls they convert; this rule covers BCE calls that already exist (for "
        "example a hand migration that forgot the cast). It adds `.float()`, after any "
        "`.to(device)`/`.cuda()` chain, only where the target is provably an integer "
        "(`.long()`, `F.one_hot(...)`, `dtype=torch.long`) or is the labels as the loader "
        "yields them (a loop variable, `batch[\"labels\"]`, moved to the device), "
        "whose dtype is usually int64. Targets the code computes itself (`torch.zeros_like"
        "(logits)`, `y.to(logits.dtype)`, `y.type_as(logits)`, a sigmoid or a mixup of soft "
        "targets), a loss helper's `targets` parameter (its callers decide) and provably "
        "float ones (`.float()`, `.to(torch.float32)`, `.to(device, dtype)` with `dtype = "
        "torch.float32`, float arithmetic, rows of such a tensor, `y[:bs]`, and a name rebound so on "
        "every path before the call) belong to code that "
        "is already multi-label and are left as written. A target that is "
        "an arg-max of scores is one class per sample, which no cast repairs: it is reported. "
        "A criterion received as a parameter (`criterion`, `loss_fn`, ...) by a function that no "
        "code in the same file calls, or only passes its own parameter to (`train(..., "
        "loss_fn)` calling `train_step(..., loss_fn=loss_fn)`), cannot be proven to be a BCE "
        "loss, so its calls are reported, naming that chain, with an unsafe fix that adds the "
        "cast. When `rewrite` is given the other files too (a folder, or `main.py engine.py`), "
        "the criteria they pass are followed across modules: a parameter fed only criteria "
        "that are (or this run makes) `BCEWithLogitsLoss` gets the cast as a safe fix, and the "
        "finding names the file and line where the criterion is built; a parameter no file of the run "
        "feeds is left alone where every loss class the run defines casts its target itself (its "
        "`F.cross_entropy`, made BCE with `target.float()`, or a `target.float()` of its own). Such a criterion's loss "
        "multiplied by one weight per image (`torch.mean(loss_a * lam_a + loss_b * lam_b)` with snapmix's "
        "`lam_a = torch.ones(data.size(0))`) is reported at the weighted sum: unreduced BCE is [B, C], "
        "which a [B] weight does not broadcast over (reduce over the classes first, or unsqueeze the "
        "weight); a scalar `lam` is fine. A BCE criterion "
        "kept in a dict (`losses[\"ce\"](out, y)`) or handed to a class of the same file that "
        "stores it in `__init__` (`Trainer(model, criterion)` calling `self.criterion(out, y)`) "
        "is not followed by the loss rules, so a loss rewrite cannot cast there: each such call "
        "whose target is not provably float is reported, with an unsafe fix that adds the cast "
        "(the criterion itself when no call is found), and a re-scan of rewritten code still "
        "reports it."
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
    triggers = (*_BCE_WORDS, *(f"{name}(" for name in CRITERION_PARAMETERS))
    METADATA_DEPENDENCIES = (
        *Rule.METADATA_DEPENDENCIES, LossFlowProvider, ScopeProvider, ParentNodeProvider, QualifiedNameProvider
    )

    @classmethod
    def could_apply(cls, source: str) -> bool:
        facts = current_facts()  # another file of the run passes this one a criterion
        return super().could_apply(source) or (facts is not None and bool(facts.parameters))

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """Without a BCE loss named in code and criteria passed in from other files, only a call
        like ``criterion(output, target)`` of a parameter, or of ``self.criterion`` set from one,
        is reported: files that build their criterion (``self.criterion = make_loss(...)``) or
        call one with other arguments are settled here."""
        facts = current_facts()
        if facts is not None and facts.parameters:
            return True
        parameters: set[str] = set()
        attributes_from_names: set[str] = set()
        called_names: set[str] = set()
        called_attributes: set[str] = set()
        for node in walk(tree):
            if isinstance(node, (ast.Name, ast.Attribute, ast.alias)) and any(bce in _word(node) for bce in _BCE_WORDS):
                return True
            if isinstance(node, ast.arg):
                parameters.add(node.arg)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
                attributes_from_names.update(
                    target.attr for target in node.targets if isinstance(target, ast.Attribute) and _is_self(target.value)
                )
            elif isinstance(node, ast.Call) and len(node.args) + len(node.keywords) == 2:
                func = node.func
                if isinstance(func, ast.Name) and func.id in CRITERION_PARAMETERS:
                    called_names.add(func.id)
                elif isinstance(func, ast.Attribute) and func.attr in CRITERION_PARAMETERS and _is_self(func.value):
                    called_attributes.add(func.attr)
        return bool(called_names & parameters or called_attributes & attributes_from_names)

    def leave_Module(self, original_node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, original_node)
        for loss_call in flow.calls:
            names = {c.qualified_name for c in loss_call.constructions}
            if loss_call.functional:
                names = {"torch.nn.functional.binary_cross_entropy_with_logits"} if loss_call.kinds == {"bce"} else set()
            if not names or not names <= TORCH_BCE or loss_call.target is None:
                continue
            if report_prediction_input(self, loss_call):
                continue  # the logits belong there: a cast would present the call as migrated
            origin = target_origin(self, loss_call.target.value)
            if origin == "class-index":
                self.report(
                    loss_call.call,
                    "the target is an arg-max of scores (one class per sample), not multi-hot labels; "
                    ".float() would not make it a multi-label target",
                    suggestion=f"use (torch.sigmoid(teacher_logits) > {self.context.threshold_name}).float() as the target",
                )
            if origin != "float" and report_not_label_rows(self, loss_call.target.value):
                continue  # not the label rows at all (a literal of class indices, one column): no cast helps
            if origin not in ("integer", "data"):
                continue  # float, or built by already-multi-label code: left as written
            self.report(
                loss_call.call,
                "BCE-with-logits needs float targets; this target is not provably float",
                fix=Fix(edits=(NodeEdit(loss_call.call, map_target(loss_call.call, loss_call.target, as_float_target)),)),
            )
        self._per_image = per_image_names(original_node) if flow.open_parameter_calls else frozenset()
        self._weighted_reported: set[int] = set()
        for open_call in flow.open_parameter_calls:
            self._check_parameter_call(open_call)
        for construction in flow.constructions:
            if construction.qualified_name in TORCH_BCE and not construction.uses_accounted:
                self._check_unfollowed_criterion(original_node, construction)

    def _check_unfollowed_criterion(self, module: cst.Module, construction: LossConstruction) -> None:
        """A BCE criterion in a dict or handed to a class of this file: the loss flow does not
        follow it, so a loss rewrite could not cast the targets of its calls. Each call found
        whose target is not provably float is reported; the construction when none is found."""
        route = criterion_route(self, module, construction.call)
        if route is None:
            return
        line = self.get_metadata(PositionProvider, construction.call).start.line
        if not route.calls:
            self.report(
                construction.call,
                f"this BCE-with-logits criterion is reached through {route.description}, whose calls "
                "could not be found: targets passed to it must be float",
                suggestion="pass float multi-hot targets [B, C]: criterion(logits, targets.float())",
            )
        for call in route.calls:
            target = call_argument(call, 1, "target")
            if target is None or len(call.args) != 2:
                continue
            origin = target_origin(self, target.value)
            if origin == "float" or (origin == "computed" and not self._is_parameter(target.value)):
                continue  # float, or built by already-multi-label code: left as written
            if report_not_label_rows(self, target.value):
                continue
            self.report(
                call,
                f"BCE criterion called with targets that are not cast to float: it is built on line {line} "
                f"and reached through {route.description}, which the loss rules do not follow",
                suggestion="pass float multi-hot targets [B, C]: criterion(logits, targets.float())",
                fix=Fix(
                    edits=(NodeEdit(call, map_target(call, target, as_float_target)),),
                    applicability=Applicability.UNSAFE,
                ),
            )


    def _is_parameter(self, expression: cst.BaseExpression) -> bool:
        """A bare parameter (``forward(self, outputs, labels)``): whatever its callers pass, often int64 labels."""
        if not isinstance(expression, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, expression, None)
        assignments = list(scope[expression.value]) if scope is not None else []
        return bool(assignments) and all(isinstance(getattr(a, "node", None), cst.Param) for a in assignments)


def _word(node: ast.Name | ast.Attribute | ast.alias) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else node.name


def _is_self(expression: ast.expr) -> bool:
    return isinstance(expression, ast.Name) and expression.id == "self"
