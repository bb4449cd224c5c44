"""ML010: the target of a BCE-with-logits call must be float."""

from __future__ import annotations

import ast
import dataclasses
import textwrap

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules.semantics.bindings import assignment_of, sole_binding
from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule
from migrate_ml.rules._exprs import INTEGER_DTYPES, INTEGER_METHODS, as_float_target, is_float_cast, is_float_dtype, map_target
from migrate_ml.rules._criterion_routes import criterion_route
from migrate_ml.rules.semantics.flow import (
    LossConstruction,
    LossFlow,
    LossFlowProvider,
    OpenParameterCall,
    ParameterHop,
    call_argument,
)
from migrate_ml.rules.semantics.class_index import is_class_index_target, report_not_label_rows
from migrate_ml.rules._project import current_facts
from migrate_ml.rules._prefilter import walk
from migrate_ml.rules.semantics.single_label_values import equality_operands

TORCH_BCE = frozenset(
    {
        "torch.nn.BCEWithLogitsLoss",
        "torch.nn.modules.loss.BCEWithLogitsLoss",
        "torch.nn.functional.binary_cross_entropy_with_logits",
    }
)

_BCE_WORDS = ("BCEWithLogits", "binary_cross_entropy_with_logits")
"""What code that builds or calls a BCE-with-logits loss names (``TORCH_BCE``, aliases imported included)."""

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
    if is_float_cast(expression) or isinstance(expression, cst.Float) or _cast_to_float_name(rule, expression):
        return True
    if isinstance(expression, cst.BinaryOperation):
        return provably_float(rule, expression.left, depth + 1) or provably_float(
            rule, expression.right, depth + 1
        )
    if isinstance(expression, cst.Subscript):
        return provably_float(rule, expression.value, depth + 1)  # rows of a tensor keep its dtype
    if isinstance(expression, cst.Name):
        statement = assignment_of(rule, sole_binding(rule, expression))
        if statement is not None:
            return provably_float(rule, statement.value, depth + 1)
        value = _rebound_value(rule, expression)
        return value is not None and provably_float(rule, value, depth + 1)
    return False


def _cast_to_float_name(rule: Rule, expression: cst.BaseExpression) -> bool:
    """``y.to(device, dtype)`` where ``dtype = torch.float32`` is the name's only binding."""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)):
        return False
    if expression.func.attr.value not in ("to", "type"):
        return False
    for arg in expression.args:
        if isinstance(arg.value, cst.Name):
            statement = assignment_of(rule, sole_binding(rule, arg.value))
            if statement is not None and is_float_dtype(statement.value):
                return True
    return False


def _rebound_value(rule: Rule, name: cst.Name) -> cst.BaseExpression | None:
    """The value the last assignment to ``name`` before this read gives it, when that assignment
    runs on every path to the read: a statement of a block the read is in, with no compound
    statement between them that binds the name too (``for x, y in loader:`` then
    ``x, y = x.to(device, dtype), y.to(device, dtype)``: the loop's binding never reaches a read
    after the reassignment). None when there is no such assignment."""
    node: cst.CSTNode | None = name
    while node is not None and not isinstance(node, (cst.FunctionDef, cst.Module)):
        parent = rule.get_metadata(ParentNodeProvider, node, None)
        body = getattr(parent, "body", None)
        if isinstance(parent, (cst.IndentedBlock, cst.Module)) and isinstance(body, (list, tuple)) and node in body:
            for statement in reversed(body[: body.index(node)]):
                found = _binding_in(statement, name.value)
                if found is not None:
                    return found if isinstance(found, cst.BaseExpression) else None
        elif isinstance(parent, (cst.For, cst.While)) and _binding_in(parent, name.value) is not None:
            return None  # the loop's target, or a binding later in its body, reaches the next pass
        elif isinstance(parent, cst.With) and any(
            item.asname is not None and any(isinstance(n, cst.Name) and n.value == name.value for n in _cst_walk(item.asname))
            for item in parent.items
        ):
            return None
        node = parent
    return None


def _binding_in(statement: cst.CSTNode, name: str) -> cst.BaseExpression | bool | None:
    """What a statement binds ``name`` to: the value of a simple or flat tuple assignment, True for
    any other binding of it (a compound statement, an augmented assignment), None for none."""
    if isinstance(statement, cst.SimpleStatementLine):
        for small in statement.body:
            if isinstance(small, cst.Assign):
                for target in small.targets:
                    if isinstance(target.target, cst.Name) and target.target.value == name:
                        return small.value
                    if isinstance(target.target, (cst.Tuple, cst.List)):
                        for element in target.target.elements:
                            if isinstance(element.value, cst.Name) and element.value.value == name:
                                return _paired_value(target.target, element, small.value) or True
            elif any(isinstance(n, cst.Name) and n.value == name for n in _stored(small)):
                return True
        return None
    return True if any(isinstance(n, cst.Name) and n.value == name for n in _stored(statement)) else None


def _stored(node: cst.CSTNode) -> list[cst.CSTNode]:
    """Names a node binds: assignment, augmented and annotated targets, loop and with targets."""
    found: list[cst.CSTNode] = []
    for child in _cst_walk(node):
        if isinstance(child, cst.AssignTarget):
            found.extend(_cst_walk(child.target))
        elif isinstance(child, (cst.AugAssign, cst.AnnAssign)):
            found.append(child.target)
        elif isinstance(child, (cst.For, cst.CompFor)):
            found.extend(_cst_walk(child.target))
        elif isinstance(child, cst.AsName):
            found.append(child.name)
    return found


def _cst_walk(node: cst.CSTNode) -> list[cst.CSTNode]:
    found, pending = [], [node]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(current.children)
    return found


_ONE_HOT = frozenset({"torch.nn.functional.one_hot"})
_DATA_CHAIN = frozenset({"cuda", "cpu", "detach", "contiguous"})
_DEVICE_HINTS = ("device", "cuda", "gpu", "rank")


def target_origin(rule: Rule, expression: cst.BaseExpression, depth: int = 0, visiting: frozenset = frozenset()) -> str:
    """Where a BCE target comes from, as far as this file shows:

    * ``"float"``: provably float (:func:`provably_float`);
    * ``"class-index"``: an arg-max of scores, one class per sample;
    * ``"integer"``: an integer cast, ``F.one_hot(...)`` or ``dtype=torch.long``;
    * ``"data"``: labels as the loader yields them (a loop variable, ``batch["labels"]``,
      ``data[1]``), possibly moved with ``.to(device)``/``.cuda()``: int64 in most datasets;
    * ``"computed"``: anything else (``torch.zeros_like(logits)``, ``y.to(logits.dtype)``, soft
      targets from a sigmoid or mixup arithmetic), which is what already-multi-label code builds.
    """
    if provably_float(rule, expression):
        return "float"
    if is_class_index_target(rule, expression):
        return "class-index"
    if depth > 3:
        return "computed"
    if _is_integer(rule, expression):
        return "integer"
    while _is_device_move(expression):
        expression = expression.func.value
    if isinstance(expression, (cst.Subscript, cst.Attribute)) and isinstance(
        expression.value, (cst.Name, cst.Attribute)
    ):
        return "data"  # batch["labels"], data[1], batch.y
    if not isinstance(expression, cst.Name):
        return "computed"
    scope = rule.get_metadata(ScopeProvider, expression, None)
    assignments = list(scope[expression.value]) if scope is not None else []
    bindings = [getattr(a, "node", None) for a in assignments]
    # `targets = targets.to(device)` reads the name's other bindings: each is looked at once.
    origins = {_binding_origin(rule, b, depth, visiting | set(map(id, bindings))) for b in bindings if id(b) not in visiting}
    if not bindings or "computed" in origins:
        return "computed"
    for origin in ("class-index", "integer", "data"):
        if origin in origins:
            return origin
    return "float"


def _binding_origin(rule: Rule, bound: cst.CSTNode | None, depth: int, visiting: frozenset) -> str:
    if isinstance(bound, cst.Param):
        return "computed"  # a loss helper's `targets` (focal loss, smoothing): its callers decide
    holder = rule.get_metadata(ParentNodeProvider, bound, None) if bound is not None else None
    if isinstance(holder, cst.AssignTarget):
        statement = rule.get_metadata(ParentNodeProvider, holder, None)
        if isinstance(statement, cst.Assign):
            return target_origin(rule, statement.value, depth + 1, visiting)
    if isinstance(holder, (cst.For, cst.CompFor)) and holder.target is bound:
        return "data"
    if isinstance(holder, cst.Element):  # `for images, labels in loader` / `x, y = batch`
        current = holder
        while isinstance(current, (cst.Element, cst.Tuple, cst.List)):
            current = rule.get_metadata(ParentNodeProvider, current, None)
        if isinstance(current, (cst.For, cst.CompFor)):
            return "data"
        if isinstance(current, cst.AssignTarget):
            statement = rule.get_metadata(ParentNodeProvider, current, None)
            if isinstance(statement, cst.Assign) and isinstance(statement.value, (cst.Name, cst.Subscript, cst.Attribute)):
                return "data"
            paired = _paired_value(current.target, holder, statement.value) if isinstance(statement, cst.Assign) else None
            if paired is not None:  # `x, y = x.to(device), y.to(device)`
                return target_origin(rule, paired, depth + 1, visiting)
    return "computed"


def _paired_value(target: cst.BaseExpression, element: cst.Element, value: cst.BaseExpression) -> cst.BaseExpression | None:
    """The value a flat tuple assignment gives to one of its targets, when both sides have the same length."""
    if not (isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, (cst.Tuple, cst.List))):
        return None
    if len(target.elements) != len(value.elements) or element not in target.elements:
        return None
    paired = value.elements[target.elements.index(element)]
    return None if isinstance(paired, cst.StarredElement) else paired.value


def _is_device_move(expression: cst.BaseExpression) -> bool:
    """``.cuda()``, ``.detach()``, ``.to(device)``, ``.to(args.device, non_blocking=True)``."""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)):
        return False
    method = expression.func.attr.value
    if method in _DATA_CHAIN:
        return True
    if method != "to" or any(arg.keyword is not None and arg.keyword.value == "dtype" for arg in expression.args):
        return False
    positional = [arg.value for arg in expression.args if arg.keyword is None]
    return len(positional) == 1 and _names_a_device(positional[0])


def _names_a_device(expression: cst.BaseExpression) -> bool:
    if isinstance(expression, cst.SimpleString):
        return True  # "cuda", "cpu", "cuda:0"
    if isinstance(expression, cst.Call):
        return isinstance(expression.func, (cst.Name, cst.Attribute)) and _names_a_device(expression.func)
    text = expression.attr.value if isinstance(expression, cst.Attribute) else getattr(expression, "value", "")
    return isinstance(text, str) and any(hint in text.lower() for hint in _DEVICE_HINTS)


def _is_integer(rule: Rule, expression: cst.BaseExpression) -> bool:
    if not isinstance(expression, cst.Call):
        return False
    func = expression.func
    if isinstance(func, cst.Attribute) and func.attr.value in INTEGER_METHODS and not expression.args:
        return True
    if {q.name for q in rule.get_metadata(QualifiedNameProvider, func, set())} & _ONE_HOT:
        return True
    for arg in expression.args:
        value = arg.value
        dtype = arg.keyword is not None and arg.keyword.value == "dtype"
        if (dtype or (isinstance(func, cst.Attribute) and func.attr.value in ("to", "type"))) and (
            isinstance(value, cst.Attribute) and value.attr.value in INTEGER_DTYPES
        ):
            return True
    return False


class FloatTargetsRule(Rule):
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
        "finding names the file and line where the criterion is built. A BCE criterion "
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

    def _is_parameter(self, expression: cst.BaseExpression) -> bool:
        """A bare parameter (``forward(self, outputs, labels)``): whatever its callers pass, often int64 labels."""
        if not isinstance(expression, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, expression, None)
        assignments = list(scope[expression.value]) if scope is not None else []
        return bool(assignments) and all(isinstance(getattr(a, "node", None), cst.Param) for a in assignments)


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


def _word(node: ast.Name | ast.Attribute | ast.alias) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else node.name


def _is_self(expression: ast.expr) -> bool:
    return isinstance(expression, ast.Name) and expression.id == "self"


def _sources(open_call: OpenParameterCall) -> str:
    return "; ".join(dict.fromkeys(fact.describe() for fact in open_call.facts))


def describe_route(chain: tuple[ParameterHop, ...]) -> str:
    """``a parameter of train_step(), passed from train(loss_fn)``."""
    first, *rest = chain
    text = f"a parameter of {first.function}()"
    if rest:
        text += ", passed from " + " <- ".join(f"{hop.function}({hop.parameter})" for hop in rest)
    return text
