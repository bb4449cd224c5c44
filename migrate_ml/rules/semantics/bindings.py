"""Which bindings of a name reach one read of it, where the code says so by its order.

LibCST's scopes are not flow-sensitive: every read of a name refers to every binding of it in
its scope. In straight-line code (a script, a notebook's joined cells, a function body) the
order decides: ``loss_fn = nn.NLLLoss()`` ... ``loss_fn = nn.CrossEntropyLoss()`` are two
criteria, each with its own calls, and ``Y = np.array(...)`` then ``Y = torch.tensor([0])`` two
targets. ``owner`` is a rule or metadata provider that depends on ``ParentNodeProvider`` (and on
``ScopeProvider`` for :func:`sole_binding`).
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider


def sole_binding(owner, name: cst.Name) -> cst.CSTNode | None:
    """What binds ``name`` (a parameter, an assignment's target) when that is the name's only
    binding in its scope; None when it has none or several."""
    scope = owner.get_metadata(ScopeProvider, name, None)
    assignments = list(scope[name.value]) if scope is not None else []
    return getattr(assignments[0], "node", None) if len(assignments) == 1 else None


def assignment_of(owner, bound: cst.CSTNode | None) -> cst.Assign | None:
    """The ``Assign`` statement ``bound`` is a whole target of (``x`` of ``x = value`` or ``x = y = value``)."""
    holder = owner.get_metadata(ParentNodeProvider, bound, None) if bound is not None else None
    statement = owner.get_metadata(ParentNodeProvider, holder, None) if isinstance(holder, cst.AssignTarget) else None
    return statement if isinstance(statement, cst.Assign) else None


def reaching_bindings(owner, name: cst.Name, assignments: list) -> list:
    """The bindings of ``name`` that can reach this read of it. Where every binding and the
    read are statements of one straight-line block (a module, a notebook's joined cells, a
    function's or a loop's body), only the last binding before the read does:
    ``loss_fn = nn.NLLLoss()`` then ``loss_fn = nn.CrossEntropyLoss()`` are two criteria, each
    with its own calls, and ``outputs = model(x)``, ``outputs = outputs.argmax(1)`` in a loop's
    body are two values. A read inside a function or class body, or with no binding before it
    (in a loop, the last iteration's binding reaches it too), may see any of them. Where the
    bindings are spread over nested blocks, a plain assignment earlier in a block around the
    read hides every binding outside that block (see :func:`_dominated`)."""
    if len(assignments) < 2:
        return assignments
    statements = [_statement_in(owner, getattr(a, "node", None), None) for a in assignments]
    block = owner.get_metadata(ParentNodeProvider, statements[0], None) if statements[0] is not None else None
    if not isinstance(block, (cst.Module, cst.IndentedBlock)) or any(
        statement is None or owner.get_metadata(ParentNodeProvider, statement, None) is not block
        for statement in statements
    ):
        return _dominated(owner, name, assignments)
    read = _statement_in(owner, name, block)
    if read is None:
        return assignments
    body = list(block.body)
    here = body.index(read)
    before = [body.index(statement) for statement in statements if body.index(statement) < here]
    if not before:
        return assignments
    return [a for a, statement in zip(assignments, statements) if body.index(statement) == max(before)]


def _dominated(owner, name: cst.Name, assignments: list) -> list:
    """The bindings that can reach ``name`` when they lie in several blocks: from the read's
    own block outwards, the first block with a plain assignment of the name before the read's
    statement (``preds = torch.argmax(outs, dim=-1)`` in the validation loop's body, read by
    ``grid_image(..., preds)`` under ``if figure is None:`` below it) is passed on every way to
    the read, so only that assignment and the bindings after it (in statements up to the
    read's, all of that statement's when it is compound: a loop may come round, except the read's
    own assignment, ``criterion = criterion.half()`` under an ``if``) reach it; the
    training loop's ``preds`` above do not. Every binding is kept where no such block is found
    before a function, lambda or class."""
    current: cst.CSTNode = name
    while True:
        read = _statement_in(owner, current, None)
        block = owner.get_metadata(ParentNodeProvider, read, None) if read is not None else None
        if not isinstance(block, (cst.Module, cst.IndentedBlock)):
            return assignments
        body = list(block.body)
        here = body.index(read)
        places = []
        for assignment in assignments:
            statement = _statement_in(owner, getattr(assignment, "node", None), block)
            places.append(body.index(statement) if statement is not None else None)
        plain = [
            place for assignment, place in zip(assignments, places)
            if place is not None and place < here and _plain_assignment(owner, getattr(assignment, "node", None), body[place])
        ]
        if plain:
            last = max(plain)
            compound = isinstance(read, cst.BaseCompoundStatement)
            own = _statement_in(owner, name, None)
            return [
                a for a, place in zip(assignments, places)
                if place is not None and (last <= place < here or (
                    place == here and compound and _statement_in(owner, getattr(a, "node", None), None) is not own
                ))
            ]
        if isinstance(block, cst.Module):
            return assignments
        current = block


def _plain_assignment(owner, bound: cst.CSTNode | None, statement: cst.CSTNode) -> bool:
    """``bound`` is a target of an assignment that is ``statement`` itself (a simple statement,
    run whenever its block is): not a walrus inside an expression, not a loop's target."""
    current = bound
    while current is not None and current is not statement:
        if not isinstance(
            current,
            (cst.Name, cst.Element, cst.StarredElement, cst.Tuple, cst.List, cst.AssignTarget, cst.Assign, cst.AnnAssign, cst.AugAssign, cst.SimpleStatementLine),
        ):
            return False
        current = owner.get_metadata(ParentNodeProvider, current, None)
    return current is statement and isinstance(statement, cst.SimpleStatementLine)


def _statement_in(owner, node: cst.CSTNode | None, block: cst.CSTNode | None) -> cst.CSTNode | None:
    """The statement of ``block`` that holds ``node`` (with ``None``, of the block directly
    around ``node``); ``None`` when a function, lambda or class lies between them."""
    current = node
    while current is not None:
        parent = owner.get_metadata(ParentNodeProvider, current, None)
        if block is None and isinstance(parent, (cst.Module, cst.IndentedBlock)) and isinstance(
            current, (cst.SimpleStatementLine, cst.BaseCompoundStatement)
        ):
            return current
        if block is not None and parent is block:
            return current
        if isinstance(current, (cst.FunctionDef, cst.Lambda, cst.ClassDef)) and current is not node:
            return None
        current = parent
    return None


def reads_the_same_at(owner, expression: cst.BaseExpression, destination: cst.CSTNode) -> bool:
    """Whether ``expression``, copied from where it is written to ``destination`` (a node of the
    same module), reads the same bindings there: an edit that moves ``cfg.train.label_smoothing``
    from ``main`` into ``validate(args, ...)`` must not introduce a name ``validate`` does not
    bind. A parameter of another function is another binding even where it has the same name
    (nothing says the caller passes the same object), except ``self`` in two methods of one
    class. Names bound nowhere (builtins) read the same everywhere."""
    names = _read_names(expression)
    if names is None:
        return False
    if not names:
        return True
    source = owner.get_metadata(ScopeProvider, expression, None)
    target = owner.get_metadata(ScopeProvider, destination, None)
    if source is None or target is None:
        return False
    if source is target:
        return True
    shared_self = _method_class(owner, source.node) is not None and _method_class(owner, source.node) is _method_class(
        owner, target.node
    )
    for name in names:
        if shared_self and name == "self" and _first_parameter(source.node) == _first_parameter(target.node) == "self":
            continue
        if {id(getattr(a, "node", a)) for a in source[name]} != {id(getattr(a, "node", a)) for a in target[name]}:
            return False
    return True


def _read_names(expression: cst.BaseExpression) -> set[str] | None:
    """The names ``expression`` reads (not attribute or keyword names); None where it holds its
    own scope (a lambda, a comprehension), which a copy would not keep in step."""
    names: set[str] = set()
    own_scope = False

    class _Reads(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            names.add(node.value)

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            nonlocal own_scope
            own_scope = True
            return False

        def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
            return self.visit_Lambda(node)  # type: ignore[arg-type]

        def visit_ListComp(self, node: cst.ListComp) -> bool:
            return self.visit_Lambda(node)  # type: ignore[arg-type]

        def visit_SetComp(self, node: cst.SetComp) -> bool:
            return self.visit_Lambda(node)  # type: ignore[arg-type]

        def visit_DictComp(self, node: cst.DictComp) -> bool:
            return self.visit_Lambda(node)  # type: ignore[arg-type]

    expression.visit(_Reads())
    return None if own_scope else names


def _method_class(owner, node: cst.CSTNode | None) -> cst.ClassDef | None:
    """The class ``node`` is a method of (a function written directly in its body)."""
    if not isinstance(node, cst.FunctionDef):
        return None
    block = owner.get_metadata(ParentNodeProvider, node, None)
    holder = owner.get_metadata(ParentNodeProvider, block, None) if block is not None else None
    return holder if isinstance(holder, cst.ClassDef) else None


def _first_parameter(node: cst.CSTNode | None) -> str | None:
    if not isinstance(node, cst.FunctionDef) or not node.params.params:
        return None
    return node.params.params[0].name.value
