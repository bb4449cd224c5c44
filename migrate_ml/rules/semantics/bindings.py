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
    function's body), only the last binding before the read does: ``loss_fn = nn.NLLLoss()``
    then ``loss_fn = nn.CrossEntropyLoss()`` are two criteria, each with its own calls. A read
    inside a function or class body, or with no binding before it, may see any of them."""
    if len(assignments) < 2:
        return assignments
    statements = [_statement_in(owner, getattr(a, "node", None), None) for a in assignments]
    block = owner.get_metadata(ParentNodeProvider, statements[0], None) if statements[0] is not None else None
    if not isinstance(block, (cst.Module, cst.IndentedBlock)) or any(
        statement is None or owner.get_metadata(ParentNodeProvider, statement, None) is not block
        for statement in statements
    ):
        return assignments
    if isinstance(block, cst.IndentedBlock) and not isinstance(
        owner.get_metadata(ParentNodeProvider, block, None), cst.FunctionDef
    ):
        return assignments  # a loop's body runs again: a later binding reaches an earlier read
    read = _statement_in(owner, name, block)
    if read is None:
        return assignments
    body = list(block.body)
    here = body.index(read)
    before = [body.index(statement) for statement in statements if body.index(statement) < here]
    if not before:
        return assignments
    return [a for a, statement in zip(assignments, statements) if body.index(statement) == max(before)]


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
