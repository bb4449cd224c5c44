"""Loss targets that are one class index per sample, traced back to the arg-max that made them.

A target collapsed with ``t.argmax(1)`` or ``t.max(1)[1]`` stays a class index whatever
``.float()`` does to it; ML001, ML002 and ML010 ask :func:`is_class_index_target` before they
call a target multi-hot.

Three more targets are not the labels a cast would make multi-hot (:func:`not_label_rows`): a
literal tensor of class indices (``torch.tensor([0, 2, 1])``, one index per sample: ``[N]``
against ``[N, C]`` logits), one sample's class index made a batch of one
(``torch.tensor([label], dtype=torch.long)``: ``[1]`` against ``[1, C]``) and one column of a
label tensor (``label_g[:, 1]`` of a two-wide one-hot, ``[B]``). The loss rules leave such a
target uncast and report it at its own line.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._base import NodeEdit
from migrate_ml.rules._exprs import INTEGER_DTYPES, append_argument, is_argmax
from migrate_ml.rules.semantics.bindings import reaching_bindings
from migrate_ml.rules.semantics.flow import call_argument
from migrate_ml.rules.semantics.shapes import dim_value

def is_class_index_target(rule, expression: cst.BaseExpression) -> bool:
    """A loss target that is an arg-max of scores: inline (``t.argmax(dim=1)``, ``t.max(1)[1]``)
    or through a name every binding of which in its scope is one (``hard = t.argmax(dim=-1)``,
    ``_, hard = t.max(1)``). Such a target is one class per sample (hard distillation, or
    one-hot/multi-hot targets collapsed to one index), which a ``.float()`` cast does not turn
    into multi-hot labels. ``rule`` must depend on ``ScopeProvider`` and ``ParentNodeProvider``."""
    return bool(class_index_sources(rule, expression))


def class_index_sources(rule, expression: cst.BaseExpression, depth: int = 0) -> list[cst.CSTNode]:
    """The arg-max expressions behind ``expression`` when it is one class index per sample (see
    :func:`is_class_index_target`); empty when it is not, or not in every binding."""
    if depth > 2:
        return []
    if is_argmax(expression) or _is_max_indices(expression):
        return [expression]
    if not isinstance(expression, cst.Name):
        return []
    scope = rule.get_metadata(ScopeProvider, expression, None)
    assignments = list(scope[expression.value]) if scope is not None else []
    sources: list[cst.CSTNode] = []
    for assignment in assignments:
        bound = getattr(assignment, "node", None)
        holder = rule.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
        found: list[cst.CSTNode] = []
        if isinstance(holder, cst.AssignTarget):
            statement = rule.get_metadata(ParentNodeProvider, holder, None)
            if isinstance(statement, cst.Assign):
                found = class_index_sources(rule, statement.value, depth + 1)
        elif isinstance(holder, cst.Element):  # `_, hard = t.max(1)`
            pair = rule.get_metadata(ParentNodeProvider, holder, None)
            target = rule.get_metadata(ParentNodeProvider, pair, None) if isinstance(pair, cst.Tuple) else None
            statement = rule.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
            if (
                isinstance(statement, cst.Assign)
                and len(pair.elements) == 2
                and pair.elements[1] is holder
                and _is_reducing_max(statement.value)
            ):
                found = [statement.value]
        if not found:
            return []
        sources.extend(found)
    return sources


def class_index_message(rule, call: cst.Call, expression: cst.BaseExpression, loss: str) -> tuple[str, str]:
    """The finding and suggestion for a loss whose target is an arg-max (see
    :func:`is_class_index_target`). The scores collapsed can be one-hot or multi-hot labels as
    well as a teacher's outputs, and the right multi-label target differs (the rows themselves as
    floats, or the teacher's thresholded decision), so both are named on the tensor collapsed.
    ``loss`` is how the multi-label call is written (``F.binary_cross_entropy_with_logits``,
    ``criterion``); ``call`` is the loss call, whose logits the suggestion keeps."""
    logits = call_argument(call, 0, "input")
    scores = _code(logits.value) if logits is not None else "outputs"
    collapsed = {_argmax_operand(source) for source in class_index_sources(rule, expression)}
    operands = {_code(operand) for operand in collapsed}
    rows = operands.pop() if len(operands) == 1 else "scores"
    threshold = rule.context.threshold_name
    softmax_of = {_code(found) for found in (_softmax_input(rule, operand) for operand in collapsed) if found is not None}
    if len(softmax_of) == 1 and len(collapsed) == 1:
        teacher = softmax_of.pop()
        # FixMatch's ``pseudo_label = torch.softmax(logits_u_w.detach() / T, dim=-1)``: the arg-max of
        # probabilities is a pseudo-label or a teacher's decision, and its multi-label form thresholds
        # the logits through a sigmoid (a sigmoid of probabilities lies in (0.5, 0.74): every label passes 0.5)
        return (
            f"the target is an arg-max of `{rows}`, softmax probabilities of `{teacher}` (one class index per "
            "sample): a pseudo-label or a teacher's decision; multi-label training needs one 0/1 decision "
            "per class",
            f"threshold the logits themselves, not the softmax probabilities: "
            f"{loss}({scores}, (torch.sigmoid({teacher}) > {threshold}).float())",
        )
    message = (
        f"the target is an arg-max of `{rows}` (one class index per sample): one-hot or multi-hot "
        "labels collapsed to one class, or a teacher's decision (hard distillation); multi-label "
        "training needs the [B, C] rows"
    )
    suggestion = (
        f"if `{rows}` holds the labels, use {loss}({scores}, {rows}.float()); if it holds a "
        f"teacher's scores, {loss}({scores}, (torch.sigmoid({rows}) > {threshold}).float())"
    )
    return message, suggestion


def _code(node: cst.CSTNode) -> str:
    return " ".join(cst.Module([]).code_for_node(node).split())


def _argmax_operand(source: cst.CSTNode) -> cst.CSTNode:
    """``t`` of ``t.argmax(1)``, ``torch.argmax(t, 1)``, ``t.max(1)[1]``, ``torch.max(t, 1)`` (the
    pair ``_, hard = ...`` unpacks), after the casts and moves :func:`is_argmax` looks through."""
    while isinstance(source, (cst.Subscript, cst.Attribute)) and not (
        isinstance(source, cst.Attribute) and source.attr.value in ("argmax", "max")
    ):
        source = source.value
    while isinstance(source, cst.Call) and isinstance(source.func, cst.Attribute) and source.func.attr.value not in ("argmax", "max"):
        source = source.func.value
    if not (isinstance(source, cst.Call) and isinstance(source.func, (cst.Attribute, cst.Name))):
        return source
    func = source.func
    if isinstance(func, cst.Attribute) and not (isinstance(func.value, cst.Name) and func.value.value == "torch"):
        return func.value
    first = call_argument(source, 0, "input")
    return first.value if first is not None else source


def _softmax_input(rule, operand: cst.CSTNode) -> cst.BaseExpression | None:
    """``x`` when ``operand`` is a softmax of it along one axis (``torch.softmax(x, dim=-1)``,
    ``F.softmax(x, 1)``, ``x.softmax(-1)``), inline or through a name every binding of which is one."""
    values = [operand]
    if isinstance(operand, cst.Name):
        scope = rule.get_metadata(ScopeProvider, operand, None)
        assignments = list(scope[operand.value]) if scope is not None else []
        values = []
        for assignment in assignments:
            bound = getattr(assignment, "node", None)
            holder = rule.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
            statement = rule.get_metadata(ParentNodeProvider, holder, None) if isinstance(holder, cst.AssignTarget) else None
            if not isinstance(statement, cst.Assign):
                return None
            values.append(statement.value)
    found = [_softmax_argument(rule, value) for value in values]
    if not found or None in found or len({_code(node) for node in found}) != 1:
        return None
    return found[0]


def _softmax_argument(rule, value: cst.BaseExpression) -> cst.BaseExpression | None:
    if not (isinstance(value, cst.Call) and isinstance(value.func, (cst.Attribute, cst.Name))):
        return None
    func = value.func
    if (func.attr if isinstance(func, cst.Attribute) else func).value != "softmax":
        return None
    if isinstance(func, cst.Attribute) and _code(func.value) not in _TORCH_SOFTMAX_OWNERS:
        if _imported(rule, func.value):
            return None  # ``scipy.special.softmax(x)``: NumPy scores, no torch.sigmoid to put on them
        return func.value  # ``x.softmax(-1)``
    first = call_argument(value, 0, "input")
    return first.value if first is not None else None


def _imported(rule, owner: cst.BaseExpression) -> bool:
    """The root name of ``owner`` (``torch`` of ``torch.nn.functional``) is bound by an import."""
    while isinstance(owner, cst.Attribute):
        owner = owner.value
    scope = rule.get_metadata(ScopeProvider, owner, None) if isinstance(owner, cst.Name) else None
    return scope is not None and any(isinstance(getattr(a, "node", None), (cst.Import, cst.ImportFrom)) for a in scope[owner.value])


_TORCH_SOFTMAX_OWNERS = frozenset({"torch", "F", "nn.functional", "torch.nn.functional", "functional"})


_LITERAL_TENSORS = frozenset({"tensor", "as_tensor", "LongTensor", "IntTensor"})


def not_label_rows(rule, expression: cst.BaseExpression, converted: bool = False) -> tuple[str, list[cst.CSTNode]] | None:
    """``("literal", nodes)`` when a loss target is a literal 1-D tensor of class indices and
    ``("column", nodes)`` when it is one column of a tensor (``y[:, 1]``, ``y[..., 0]``), inline or
    through a name every binding of which that reaches the loss is one; ``nodes`` are the expressions to
    report. None for anything else. ``converted``: the target of a cross-entropy the caller converts
    (see :func:`_is_wrapped_index`). ``rule`` must depend on ``ScopeProvider`` and
    ``ParentNodeProvider``."""
    found = _target_sources(rule, expression, 0, converted)
    if not found:
        return None
    kinds = {kind for kind, _ in found}
    if len(kinds) != 1:
        return None
    return kinds.pop(), list(dict.fromkeys(node for _, node in found))


def _target_sources(rule, expression: cst.BaseExpression, depth: int, converted: bool) -> list[tuple[str, cst.CSTNode]]:
    expression = _uncast(expression)
    if _is_index_literal(expression):
        return [("literal", expression)]
    if _is_wrapped_index(expression, converted):
        return [("wrapped", expression)]
    if _is_column(expression):
        return [("column", expression)]
    if depth > 2 or not isinstance(expression, cst.Name):
        return []
    scope = rule.get_metadata(ScopeProvider, expression, None)
    assignments = reaching_bindings(rule, expression, list(scope[expression.value])) if scope is not None else []
    found: list[tuple[str, cst.CSTNode]] = []
    for assignment in assignments:
        bound = getattr(assignment, "node", None)
        holder = rule.get_metadata(ParentNodeProvider, bound, None) if isinstance(bound, cst.Name) else None
        statement = rule.get_metadata(ParentNodeProvider, holder, None) if isinstance(holder, cst.AssignTarget) else None
        if not isinstance(statement, cst.Assign) or holder.target is not bound:
            return []
        sources = _target_sources(rule, statement.value, depth + 1, converted)
        if not sources:
            return []
        found.extend(sources)
    return found


def _uncast(expression: cst.BaseExpression) -> cst.BaseExpression:
    """``y.to(device)``/``.cuda()``/``.long()``: the tensor moved or cast is the same target."""
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute) and (
        expression.func.attr.value in ("to", "cuda", "long", "detach", "cpu")
    ):
        expression = expression.func.value
    return expression


def _literal_tensor_data(expression: cst.BaseExpression) -> tuple[str, cst.BaseExpression | None]:
    """The constructor's name and the data a ``torch.tensor(...)``/``torch.LongTensor(...)`` call is
    built from (its first positional argument); ``("", None)`` for any other expression."""
    if not (isinstance(expression, cst.Call) and expression.args and expression.args[0].keyword is None):
        return "", None
    func = expression.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return (name, expression.args[0].value) if name in _LITERAL_TENSORS else ("", None)


def _is_index_literal(expression: cst.BaseExpression) -> bool:
    """``torch.tensor([0, 2, 1])``, ``torch.LongTensor([3])``: integers in one flat list."""
    _, values = _literal_tensor_data(expression)
    return (
        isinstance(values, (cst.List, cst.Tuple))
        and bool(values.elements)
        and all(isinstance(element.value, cst.Integer) for element in values.elements)
    )


def _is_wrapped_index(expression: cst.BaseExpression, converted: bool) -> bool:
    """``torch.tensor([label], dtype=torch.long)``, ``torch.LongTensor([target])``: one sample's class
    index made a batch of one (an evaluation loop over single images); an integer type says it is an
    index, not a row of label values. The target of a cross-entropy being ``converted`` is one with
    no type too (``torch.tensor([label])``: the int64 torch infers from a Python int is the class
    index cross-entropy takes); a BCE loss already written takes a row wrapped the same way."""
    name, values = _literal_tensor_data(expression)
    if not (isinstance(values, cst.List) and len(values.elements) == 1 and isinstance(values.elements[0], cst.Element)):
        return False
    if isinstance(values.elements[0].value, (cst.List, cst.Tuple, cst.ListComp, cst.Integer)):
        return False  # a row of values, or the integer literals ``_is_index_literal`` reads
    dtype = next((arg.value for arg in expression.args if arg.keyword is not None and arg.keyword.value == "dtype"), None)
    if name in ("LongTensor", "IntTensor"):
        return True
    if name not in ("tensor", "as_tensor"):
        return False
    return (dtype is None and converted) or (isinstance(dtype, cst.Attribute) and dtype.attr.value in INTEGER_DTYPES)


def _with_index_dtype(expression: cst.BaseExpression) -> cst.Call | None:
    """``torch.tensor([label], dtype=torch.long)`` for ``torch.tensor([label])``: the int64 torch
    infers from the class index a cross-entropy took, written out so that the BCE loss the rewrite
    leaves behind still shows a class index (a re-scan of ``torch.tensor([label_row])`` at a BCE
    loss written by hand cannot tell it from a row). None where the type is given already or the
    module is not named (``from torch import tensor``)."""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute) and isinstance(expression.func.value, cst.Name)):
        return None
    if any(arg.keyword is not None and arg.keyword.value == "dtype" for arg in expression.args):
        return None
    if expression.func.attr.value not in ("tensor", "as_tensor"):
        return None
    dtype = cst.Arg(
        keyword=cst.Name("dtype"), value=cst.Attribute(expression.func.value, cst.Name("long")),
        equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")),
    )
    return expression.with_changes(args=append_argument(list(expression.args), dtype, expression.whitespace_before_args))


def index_dtype_edits(nodes: tuple[cst.CSTNode, ...]) -> list[NodeEdit]:
    """The edits giving each untyped wrapped class index that :func:`report_not_label_rows` reported
    at a converted cross-entropy its int64 type (see :func:`_with_index_dtype`)."""
    return [
        NodeEdit(node, lambda updated: _with_index_dtype(updated) or updated)
        for node in nodes
        if isinstance(node, cst.BaseExpression) and _is_wrapped_index(node, converted=True) and _with_index_dtype(node) is not None
    ]


def _is_column(expression: cst.BaseExpression) -> bool:
    """``y[:, 1]``, ``y[..., -1]``: one column of every row, not the rows."""
    if not (isinstance(expression, cst.Subscript) and len(expression.slice) == 2):
        return False
    rows, column = (element.slice for element in expression.slice)
    whole = (isinstance(rows, cst.Slice) and rows.lower is None and rows.upper is None and rows.step is None) or (
        isinstance(rows, cst.Index) and isinstance(rows.value, cst.Ellipsis)
    )
    return whole and isinstance(column, cst.Index) and dim_value(column.value) is not None


def _is_reducing_max(expression: cst.BaseExpression) -> bool:
    """``t.max(1)``, ``t.max(dim=-1)``, ``torch.max(t, 1)``: a (values, indices) pair."""
    if not (isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute)):
        return False
    if expression.func.attr.value != "max":
        return False
    module = isinstance(expression.func.value, cst.Name) and expression.func.value.value == "torch"
    dim = call_argument(expression, 1 if module else 0, "dim")
    return dim is not None and dim_value(dim.value) in (1, -1)


def _is_max_indices(expression: cst.BaseExpression) -> bool:
    """``t.max(1)[1]``, ``t.max(1)[-1]`` or ``t.max(1).indices``."""
    if isinstance(expression, cst.Attribute) and expression.attr.value == "indices":
        return _is_reducing_max(expression.value)
    if isinstance(expression, cst.Subscript) and len(expression.slice) == 1:
        index = expression.slice[0].slice
        return isinstance(index, cst.Index) and dim_value(index.value) in (1, -1) and _is_reducing_max(expression.value)
    return False


def report_not_label_rows(rule, target: cst.BaseExpression, converted: bool = False) -> tuple[cst.CSTNode, ...]:
    """Report at its own line a target that :func:`not_label_rows` finds (once per node, whichever
    rule saw it first) and return the nodes reported: the caller leaves that target uncast and
    names them in its fix's ``notes``. The words do not depend on the rule, so that the same
    finding made by ML010 on the rewritten text (``rewrite --check``) is one finding."""
    found = not_label_rows(rule, target, converted)
    if found is None:
        return ()
    kind, nodes = found
    for node in nodes:
        # an untyped class index gets its dtype from the conversion (index_dtype_edits): named as
        # it will read, it is the finding ML010 makes on the rewritten text, in the same words
        typed = _with_index_dtype(node) if kind == "wrapped" and converted and isinstance(node, cst.BaseExpression) else None
        code = " ".join(cst.Module([]).code_for_node(typed or node).split())
        if any(v.node is node and v.message.startswith(f"`{code}` is ") for v in rule.context.violations):
            continue  # one target behind several loss calls or rules (a notebook's cells) is reported once
        if kind == "literal":
            rule.report(
                node,
                f"`{code}` is a literal tensor of class indices (one per sample), the target of a "
                f"multi-label (BCE) loss that needs [N, C] multi-hot rows: left uncast (a float cast "
                f"would give [N] against [N, C] logits)",
                suggestion="write the multi-hot rows: torch.tensor([[1., 0., 0.], [0., 1., 1.]]) (one row per sample, one column per class)",
            )
        elif kind == "wrapped":
            rule.report(
                node,
                f"`{code}` wraps one sample's class index in a tensor, the target of a multi-label (BCE) loss "
                f"that needs the sample's [1, C] multi-hot row: left uncast (a float cast would give [1] against "
                f"[1, C] logits)",
                suggestion="pass the sample's float multi-hot row as a batch of one: "
                "torch.as_tensor(label_row, dtype=torch.float32).unsqueeze(0), from a dataset whose labels are [C] rows",
            )
        else:
            assert isinstance(node, cst.Subscript)
            rows = " ".join(cst.Module([]).code_for_node(node.value).split())
            rule.report(
                node,
                f"`{code}` is one column of a label tensor, not the labels, the target of a multi-label "
                f"(BCE) loss that needs the [B, C] multi-hot rows: left uncast",
                suggestion=f"pass the multi-hot rows: criterion(logits, {rows}.float())",
            )
    return tuple(nodes)
