"""ML010's target origins: where a BCE-with-logits target comes from as far as the file shows (provably
float, an arg-max, an integer cast, labels as the loader yields them, or computed), followed through the
names it is bound to and the device moves applied to it.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Rule
from migrate_ml.rules._exprs import INTEGER_DTYPES, INTEGER_METHODS, is_float_cast, is_float_dtype
from migrate_ml.rules.semantics.bindings import assignment_of, sole_binding
from migrate_ml.rules.semantics.class_index import is_class_index_target


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
