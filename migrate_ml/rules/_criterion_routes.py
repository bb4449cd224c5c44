"""Where a criterion that the loss flow does not follow is called, for ML010.

``LossFlowProvider`` follows a criterion bound to a name or a ``self.`` attribute into its calls
and through module-local functions. Two routes it does not take are common in training code and
hide integer targets after a loss rewrite: a dict of criteria (``losses["ce"](out, y)``) and a
criterion handed to a class of the same file, which stores it in ``__init__`` and calls it from
a method (``Trainer(model, nn.BCEWithLogitsLoss())`` then ``self.criterion(out, y)``). This module
finds the calls at the end of those routes, so that their targets can be checked.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._base import Rule, in_source_order


@dataclass(frozen=True)
class CriterionRoute:
    """A route a criterion takes out of sight of the loss flow, and the calls found at its end."""

    description: str
    """How the criterion travels: ``the dict losses["ce"]``, ``Trainer(criterion) as self.criterion``."""
    calls: tuple[cst.Call, ...]


def criterion_route(rule: Rule, module: cst.Module, construction: cst.Call) -> CriterionRoute | None:
    """The dict or same-file constructor ``construction`` is handed to; None for any other use."""
    parent = rule.get_metadata(ParentNodeProvider, construction, None)
    if isinstance(parent, cst.DictElement) and parent.value is construction:
        return _dict_route(rule, parent)
    if isinstance(parent, cst.Arg) and parent.value is construction and not parent.star:
        call = rule.get_metadata(ParentNodeProvider, parent, None)
        if isinstance(call, cst.Call) and isinstance(call.func, cst.Name):
            return _constructor_route(module, call, parent)
    return None


def _dict_route(rule: Rule, element: cst.DictElement) -> CriterionRoute | None:
    mapping = rule.get_metadata(ParentNodeProvider, element, None)
    assign = rule.get_metadata(ParentNodeProvider, mapping, None) if isinstance(mapping, cst.Dict) else None
    if not (isinstance(assign, cst.Assign) and len(assign.targets) == 1 and isinstance(assign.targets[0].target, cst.Name)):
        return None
    name = assign.targets[0].target
    key = element.key.evaluated_value if isinstance(element.key, cst.SimpleString) else None
    scope = rule.get_metadata(ScopeProvider, name, None)
    if scope is None:
        return None
    calls = []
    for assignment in scope.assignments[name.value]:
        if getattr(assignment, "node", None) is not name:
            continue
        for access in in_source_order(rule, assignment.references):
            subscript = rule.get_metadata(ParentNodeProvider, access.node, None)
            call = rule.get_metadata(ParentNodeProvider, subscript, None) if isinstance(subscript, cst.Subscript) else None
            if not (isinstance(call, cst.Call) and call.func is subscript and len(subscript.slice) == 1):
                continue
            index = subscript.slice[0].slice
            looked_up = index.value if isinstance(index, cst.Index) else None
            # a literal key reaches this entry only when it is this key; any other key may
            if isinstance(looked_up, cst.SimpleString) and looked_up.evaluated_value != key:
                continue
            calls.append(call)
    shown = f'{name.value}["{key}"]' if isinstance(key, str) else name.value
    return CriterionRoute(f"the dict {shown}", tuple(calls))


def _constructor_route(module: cst.Module, call: cst.Call, argument: cst.Arg) -> CriterionRoute | None:
    classes = [c for c in module.body if isinstance(c, cst.ClassDef) and c.name.value == call.func.value]
    if len(classes) != 1:
        return None
    owner = classes[0]
    inits = [f for f in owner.body.body if isinstance(f, cst.FunctionDef) and f.name.value == "__init__"]
    if len(inits) != 1:
        return None
    parameters = inits[0].params
    if argument.keyword is not None:
        every = [*parameters.posonly_params, *parameters.params, *parameters.kwonly_params]
        param = next((p for p in every if p.name.value == argument.keyword.value), None)
    else:
        positional = [*parameters.posonly_params, *parameters.params][1:]  # after self
        index = [arg for arg in call.args if arg.keyword is None and not arg.star].index(argument)
        param = positional[index] if index < len(positional) else None
    if param is None:
        return None
    import libcst.matchers as m  # ~0.3 s to import: only files that hand a criterion to a class pay for it

    stored = m.Assign(
        targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self"), attr=m.SaveMatchedNode(m.Name(), "attr")))],
        value=m.Name(param.name.value),
    )
    attributes = {
        found["attr"].value for found in m.extractall(inits[0], stored)  # type: ignore[union-attr]
    }
    if not attributes:
        return None
    called = m.Call(func=m.Attribute(value=m.Name("self"), attr=m.OneOf(*(m.Name(a) for a in attributes))))
    calls = tuple(found for found in m.findall(owner, called) if isinstance(found, cst.Call))
    return CriterionRoute(f"{owner.name.value}({param.name.value}) as self.{sorted(attributes)[0]}", calls)
