"""ML011: ``labels = labels.long()`` feeding a BCE-with-logits loss becomes ``.float()``."""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule, enclosing, in_source_order
from migrate_ml.rules._exprs import INTEGER_DTYPES, INTEGER_METHODS, is_integer_cast
from migrate_ml.rules.semantics.flow import LossFlow, LossFlowProvider
from migrate_ml.rules._prefilter import has_loss_marker, text_facts, walk

_CHAIN_METHODS = frozenset({"to", "cuda", "cpu", "float", "detach", "contiguous", "squeeze", "type", *INTEGER_METHODS})


_LABEL_NAME = re.compile(r"label|target|^ys?$|^y_true$|^gts?$", re.IGNORECASE)
"""How code names the class labels it casts (``targets``, ``labels``, ``y``)."""
_LOSS_CALLEE = re.compile(r"loss|criterion|entropy", re.IGNORECASE)
_METRIC_CALLEE = re.compile(r"acc|score|metric|f1|precision|recall", re.IGNORECASE)
_CLASS_INDEX_SUGGESTION = (
    "multi-hot labels are float rows [B, C]: drop the integer cast (or make it .float()) and give "
    "them to a BCE-with-logits loss as floats; an integer cast would also truncate soft targets"
)

_TENSOR_WRAPPERS = frozenset({"from_numpy", "tensor", "as_tensor"})
"""``torch.from_numpy(target)``: the same values as a tensor, so ``target`` is still the root."""


def _tensor_of(expression: cst.BaseExpression) -> cst.Call | None:
    """``torch.tensor(y, ...)`` / ``torch.from_numpy(y)`` / ``torch.as_tensor(y)``, else None."""
    if (
        isinstance(expression, cst.Call)
        and isinstance(expression.func, cst.Attribute)
        and isinstance(expression.func.value, cst.Name)
        and expression.func.value.value in ("torch", "th")
        and expression.func.attr.value in _TENSOR_WRAPPERS
        and expression.args
        and expression.args[0].keyword is None
    ):
        return expression
    return None


def _root_name(expression: cst.BaseExpression) -> cst.Name | None:
    """``labels`` in ``labels.to(device).float()`` or ``torch.from_numpy(labels).long()``."""
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
        wrapped = _tensor_of(expression)
        if wrapped is not None:
            expression = wrapped.args[0].value
            break
        if expression.func.attr.value not in _CHAIN_METHODS:
            return None
        expression = expression.func.value
    return expression if isinstance(expression, cst.Name) else None


def _integer_dtype(expression: cst.BaseExpression) -> cst.Name | None:
    """The ``long`` of ``torch.tensor(y, dtype=torch.long)`` at the root of a cast chain."""
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute) and _tensor_of(expression) is None:
        expression = expression.func.value
    wrapped = _tensor_of(expression)
    if wrapped is None:
        return None
    dtype = next((arg.value for arg in wrapped.args if arg.keyword is not None and arg.keyword.value == "dtype"), None)
    if isinstance(dtype, cst.Attribute) and isinstance(dtype.value, cst.Name) and dtype.value.value in ("torch", "th") and dtype.attr.value in INTEGER_DTYPES:
        return dtype.attr
    return None


def _dtype_casts(call: cst.Call) -> list[cst.Name]:
    """The ``int64`` of ``y.to(device, dtype=torch.int64)``, ``y.to(torch.long)``, ``y.type(torch.long)``:
    the same class-index cast as ``.long()``, spelled as a dtype."""
    if not (isinstance(call.func, cst.Attribute) and call.func.attr.value in ("to", "type")):
        return []
    return [
        arg.value.attr
        for arg in call.args
        if (arg.keyword is None or arg.keyword.value == "dtype")
        and isinstance(arg.value, cst.Attribute) and isinstance(arg.value.value, cst.Name)
        and arg.value.value.value in ("torch", "th") and arg.value.attr.value in INTEGER_DTYPES
    ]


def _integer_casts(expression: cst.BaseExpression) -> list[cst.Name]:
    """The ``long``/``int`` method names in a cast chain such as ``y.to(device).long()``, and the
    integer dtypes of ``y.to(device, dtype=torch.int64)``."""
    found = []
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute) and _tensor_of(expression) is None:
        attribute = expression.func
        if attribute.attr.value not in _CHAIN_METHODS:
            return []
        if attribute.attr.value in INTEGER_METHODS and not expression.args:
            found.append(attribute.attr)
        found.extend(_dtype_casts(expression))
        expression = attribute.value
    return found


class LongLabelsRule(Rule):
    code = "ML011"
    name = "long-labels"
    summary = (
        "labels = labels.long() becomes labels = labels.float() when the labels feed a BCE-with-logits "
        "loss; labels made int64 on their way to a loss it cannot see or to an accuracy are reported."
    )
    rationale = (
        "Single-label code often forces class indices to int64 (`labels = labels.long()`), "
        "because CrossEntropyLoss wants them so. After the migration the same variable feeds "
        "BCEWithLogitsLoss, which needs float targets; soft targets (label smoothing, mixup) "
        "would even be truncated to 0 by the integer cast. When a label variable that reaches "
        "a BCE-with-logits call is assigned from an integer cast of itself in the same scope, "
        "the cast becomes `.float()`; so does `torch.from_numpy(labels).long()`, an element of "
        "`data, labels = ..., labels.long()`, an integer dtype given to a cast (`labels.to(device, "
        "dtype=torch.int64)`, `labels.type(torch.long)`, through `.squeeze(-1)`), and `dtype=torch.long` in `torch.tensor(labels, "
        "dtype=torch.long)`, including the matching element of what a function or method of "
        "the same module returns to `x, labels = self._prepare(batch)`. Only that assignment "
        "changes: the variable is not cast anywhere else, so metric code comparing predictions with the labels keeps working "
        "(0/1 floats compare equal to 0/1 integers). Where no such fix reaches the cast, labels "
        "made integer class indices are reported: a cast of a value named as labels (or a batch's "
        "second item, `data[1].cuda().long()`) stored and then given to a loss migrate-ml cannot "
        "follow (`self.loss`, a criterion passed in), to an accuracy or an `==` comparison, a cast "
        "at such a loss call (`self.loss(logits, targets.long())`), and a helper returning its "
        "label argument cast (`return x, y.long()`)."
    )
    applicability = Applicability.SAFE
    example_before = "labels = labels.long()\nloss = criterion(outputs, labels.float())\n"
    example_after = "labels = labels.float()\nloss = criterion(outputs, labels.float())\n"
    triggers = (".long()", ".int()", "torch.long", "torch.int64")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, LossFlowProvider, ScopeProvider, ParentNodeProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        # labels cast and compared with a prediction (`p.argmax(1).eq(y)`) need no loss in the file
        facts = text_facts(source)
        return super().could_apply(source) and (
            has_loss_marker(source) or (facts.has(".long()") and facts.has_any((".eq(", "argmax")))
        )

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A loss somewhere, or labels cast to integers (``y = data[1].long()``)."""
        return any(_ast_label_cast(node) for node in walk(tree)) or any(
            isinstance(node, ast.Call) and _LOSS_CALLEE.search(_ast_callee(node)) for node in walk(tree)
        )

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node
        flow: LossFlow = self.get_metadata(LossFlowProvider, node)
        self._flow_calls = {loss_call.call for loss_call in flow.calls}
        self._fixed = seen = set()
        for loss_call in flow.calls:
            if loss_call.kinds != {"bce"} or loss_call.target is None:
                continue
            root = _root_name(loss_call.target.value)
            if root is None:
                continue
            scope = self.get_metadata(ScopeProvider, root, None)
            if scope is None:
                continue
            for assignment in scope[root.value]:
                for value in self._assigned_values(getattr(assignment, "node", None)):
                    self._report_casts(value, root.value, seen)

    def _report_casts(self, value: cst.BaseExpression, label: str, seen: set[cst.Name]) -> None:
        """The integer casts of ``label`` in ``value``: ``.long()``/``.int()`` become ``.float()``
        and ``dtype=torch.long`` becomes ``dtype=torch.float``."""
        root = _root_name(value)
        if root is None or root.value != label:
            return
        dtype = _integer_dtype(value)
        for cast in [*_integer_casts(value), *([dtype] if dtype is not None else [])]:
            if cast in seen:
                continue
            seen.add(cast)
            self.report(
                cast,
                "the labels feed a BCE-with-logits loss, which needs float targets; an "
                "integer cast would also truncate soft targets",
                fix=Fix(edits=(NodeEdit(cast, lambda _old: cst.Name("float")),)),
            )

    def visit_Call(self, node: cst.Call) -> None:
        """Labels made class indices where no BCE fix reaches them: ``targets = targets.long()``
        before a loss migrate-ml cannot see (``self.loss``, a criterion passed in) or an accuracy,
        ``criterion(logits, targets.long())``, and a helper's ``return x, y.long()``."""
        if not (is_integer_cast(node) and isinstance(node.func, cst.Attribute)):
            return
        casts = _dtype_casts(node) if node.args else [node.func.attr]
        if not casts or not self._fixed.isdisjoint(casts) or not _label_source(node.func.value):
            return
        sink = self._class_index_sink(node)
        if sink is not None:
            self.report(
                casts[0],
                f"labels are cast to int64 class indices ({_code(node)}) {sink}: one class per image",
                suggestion=_CLASS_INDEX_SUGGESTION,
            )

    def _class_index_sink(self, cast: cst.Call) -> str | None:
        """Where the integer labels go, in words, or None when nothing reads them as labels or a
        loss migrate-ml rewrites (and then fixes the cast) receives them."""
        holder = self.get_metadata(ParentNodeProvider, cast, None)
        while isinstance(holder, cst.Attribute) and holder.attr.value in _CHAIN_METHODS:  # `.long().to(device)`
            call = self.get_metadata(ParentNodeProvider, holder, None)
            if not (isinstance(call, cst.Call) and call.func is holder):
                break
            holder = self.get_metadata(ParentNodeProvider, call, None)
        bound = self._unpacked_into(holder) if isinstance(holder, cst.Element) else None
        if bound is not None:
            return self._stored_sink(bound)
        if isinstance(holder, cst.Arg):
            call = self.get_metadata(ParentNodeProvider, holder, None)
            if isinstance(call, cst.Call) and call not in self._flow_calls and _is_loss_target(call, holder):
                return f"at the call of {_code(call.func)}"
            return None
        if isinstance(holder, cst.Element):
            pair = self.get_metadata(ParentNodeProvider, holder, None)
            statement = self.get_metadata(ParentNodeProvider, pair, None) if isinstance(pair, cst.Tuple) else None
            function = enclosing(self, cast, cst.FunctionDef)
            root = chain_root_name(cast.func.value)
            if isinstance(statement, cst.Return) and function is not None and root in _parameters(function):
                return f"in what {function.name.value}() returns"
            return None
        if not (isinstance(holder, cst.Assign) and len(holder.targets) == 1 and isinstance(holder.targets[0].target, cst.Name)):
            return None
        return self._stored_sink(holder.targets[0].target)

    def _unpacked_into(self, element: cst.Element) -> cst.Name | None:
        """``data, target = a, <cast>``: the name the element is unpacked into, if any."""
        pair = self.get_metadata(ParentNodeProvider, element, None)
        statement = self.get_metadata(ParentNodeProvider, pair, None) if isinstance(pair, cst.Tuple) else None
        if not (isinstance(statement, cst.Assign) and statement.value is pair and len(statement.targets) == 1):
            return None
        names = statement.targets[0].target
        if isinstance(names, (cst.Tuple, cst.List)) and len(names.elements) == len(pair.elements):
            target = names.elements[list(pair.elements).index(element)].value
            return target if isinstance(target, cst.Name) else None
        return None

    def _stored_sink(self, bound: cst.Name) -> str | None:
        scope = self.get_metadata(ScopeProvider, bound, None)
        if scope is None:
            return None
        reads = [
            access.node
            for assignment in scope.assignments[bound.value]
            if getattr(assignment, "node", None) is bound
            for access in in_source_order(self, assignment.references)  # a set: the sink named follows hashes
        ]
        sinks = [self._read_as_labels(read) for read in reads]
        if any(sink == "" for sink in sinks):
            return None  # a loss migrate-ml follows receives them: its fix casts them
        found = next((sink for sink in sinks if sink), None)
        return f"and then given to {found}" if found else None

    def _read_as_labels(self, read: cst.CSTNode) -> str | None:
        """What a read of the cast labels feeds: a loss or metric call named in words, ``""`` for a
        loss call migrate-ml follows, None for anything else."""
        node, parent = read, self.get_metadata(ParentNodeProvider, read, None)
        while isinstance(parent, (cst.Attribute, cst.Call)) and _chains(parent, node):
            node, parent = parent, self.get_metadata(ParentNodeProvider, parent, None)
        if isinstance(parent, cst.Arg):
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not isinstance(call, cst.Call):
                return None
            if call in self._flow_calls:
                return ""
            if _is_loss_target(call, parent):
                return f"{_code(call.func)}()"
            callee = call.func.attr.value if isinstance(call.func, cst.Attribute) else _code(call.func)
            if callee == "eq" or _METRIC_CALLEE.search(callee):
                return f"{_code(call.func)}()"
            return None
        if isinstance(parent, cst.ComparisonTarget) and isinstance(parent.operator, cst.Equal):
            return "an == comparison with predictions"
        return None

    def _assigned_values(self, target: cst.CSTNode | None) -> list[cst.BaseExpression]:
        """What a binding of the label assigns: ``labels = v``; the matching element of
        ``data, labels = a, v``; or, for ``x, labels = self._prepare(batch)`` (a function or
        method of this module), the matching element of each of its ``return`` tuples."""
        if target is None:
            return []
        holder = self.get_metadata(ParentNodeProvider, target, None)
        statement = self.get_metadata(ParentNodeProvider, holder, None) if holder is not None else None
        if isinstance(holder, cst.AssignTarget) and isinstance(statement, cst.Assign):
            return [statement.value]
        if not isinstance(holder, cst.Element):
            return []
        pattern = self.get_metadata(ParentNodeProvider, holder, None)
        assign_target = self.get_metadata(ParentNodeProvider, pattern, None) if pattern is not None else None
        statement = self.get_metadata(ParentNodeProvider, assign_target, None) if assign_target is not None else None
        if not (isinstance(pattern, (cst.Tuple, cst.List)) and isinstance(assign_target, cst.AssignTarget) and isinstance(statement, cst.Assign)):
            return []
        position = list(pattern.elements).index(holder)
        width = len(pattern.elements)
        if isinstance(statement.value, (cst.Tuple, cst.List)):
            return _element(statement.value, position, width)
        if isinstance(statement.value, cst.Call):
            returned = []
            for value in self._returns_of(statement.value):
                returned.extend(_element(value, position, width))
            return returned
        return []

    def _returns_of(self, call: cst.Call) -> list[cst.BaseExpression]:
        """The returned values of ``helper(...)`` / ``self.helper(...)`` defined in this module."""
        func = call.func
        if isinstance(func, cst.Name):
            name = func.value
        elif isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self":
            name = func.attr.value
        else:
            return []
        module = self._module
        finder = _ReturnFinder(name)
        module.visit(finder)
        return finder.returned


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _chains(parent: cst.CSTNode, node: cst.CSTNode) -> bool:
    """``parent`` continues a method chain on ``node``: ``y.to(device)``, ``y.cuda()``."""
    if isinstance(parent, cst.Attribute):
        return parent.value is node and parent.attr.value in _CHAIN_METHODS
    return isinstance(parent, cst.Call) and parent.func is node


def chain_root_name(expression: cst.BaseExpression) -> str | None:
    root = _root_name(expression)
    return root.value if root is not None else None


def _label_source(expression: cst.BaseExpression) -> bool:
    """A value named as labels (``targets.to(device)``), or the second item of a batch (``data[1]``)."""
    while isinstance(expression, cst.Call) and isinstance(expression.func, cst.Attribute):
        wrapped = _tensor_of(expression)
        if wrapped is not None:  # torch.from_numpy(target)
            expression = wrapped.args[0].value
            break
        if expression.func.attr.value not in _CHAIN_METHODS:
            return False
        expression = expression.func.value
    if isinstance(expression, cst.Name):
        return _LABEL_NAME.search(expression.value) is not None
    if isinstance(expression, cst.Subscript) and isinstance(expression.value, cst.Name) and len(expression.slice) == 1:
        index = expression.slice[0].slice
        return isinstance(index, cst.Index) and isinstance(index.value, cst.Integer) and index.value.value == "1"
    return False


def _is_loss_target(call: cst.Call, argument: cst.Arg) -> bool:
    """``argument`` is the target (second positional, or ``target=``) of a call named as a loss."""
    callee = call.func.attr.value if isinstance(call.func, cst.Attribute) else _code(call.func)
    if not _LOSS_CALLEE.search(callee):
        return False
    if argument.keyword is not None:
        return argument.keyword.value in ("target", "targets", "labels", "y")
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return argument in positional[1:]


def _parameters(function: cst.FunctionDef) -> set[str]:
    return {param.name.value for param in (*function.params.posonly_params, *function.params.params)}


def _ast_callee(call: ast.Call) -> str:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return call.func.id if isinstance(call.func, ast.Name) else ""


def _ast_label_cast(node: ast.AST) -> bool:
    """``<labels>.long()`` (or ``.to(device, dtype=torch.int64)``) on CPython's tree: a name like
    ``targets`` or ``data[1]``, through ``.to()``/``.cuda()``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return False
    if node.func.attr in ("to", "type"):
        if not any(
            isinstance(arg, ast.Attribute) and arg.attr in INTEGER_DTYPES
            for arg in (*node.args, *(k.value for k in node.keywords if k.arg == "dtype"))
        ):
            return False
    elif node.args or node.func.attr not in INTEGER_METHODS:
        return False
    value = node.func.value
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in _CHAIN_METHODS:
        value = value.func.value
    if isinstance(value, ast.Name):
        return _LABEL_NAME.search(value.id) is not None
    return isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant) and value.slice.value == 1


def _element(value: cst.BaseExpression, position: int, width: int) -> list[cst.BaseExpression]:
    if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == width:
        element = value.elements[position]
        return [] if isinstance(element, cst.StarredElement) else [element.value]
    return []


class _ReturnFinder(cst.CSTVisitor):
    """The values returned by the functions named ``name`` (methods included), not by functions nested in them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.returned: list[cst.BaseExpression] = []
        self._inside: list[bool] = []
        """One entry per enclosing function: whether it is the named one."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._inside.append(not self._inside and node.name.value == self.name)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._inside.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if self._inside and self._inside[-1] and node.value is not None:
            self.returned.append(node.value)
