"""How a file builds the objects it hands its training code, and how many labels its head has.

``train_one_epoch(model, optimizer, …)`` is called by the file's own ``main()`` with
``model = Net(num_classes=10).to(device)`` and ``optimizer = torch.optim.SGD(model.parameters(), lr=0.01)``.
verify builds the parameters the same way (a class or factory of the file, a ``torch.optim`` class with
the caller's literal keyword arguments) instead of its stand-ins, and sizes the sample labels from
the head the file builds (``nn.Linear(768, 10)`` as ``head``/``fc``/``classifier``, ``num_classes=10``
in a call).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import PositionProvider, QualifiedNameProvider

from migrate_ml.rules.semantics.flow import call_argument

_CHAIN_METHODS = frozenset({"to", "cuda", "cpu", "train", "eval", "float", "double", "half", "requires_grad_"})
"""``Net().to(device)``: methods that return the model they are called on."""
_HEAD_ATTRIBUTE = re.compile(r"^(head|heads|fc|classifier|cls_head|last_linear|last_layer|out|output|output_layer|"
                             r"fc_out|linear_out|logits|final|final_layer|top)$")
_COUNT_KEYWORD = re.compile(r"^(num_classes|n_classes|nb_classes|num_labels|out_features)$")
_MIN_CLASSES, _MAX_CLASSES = 2, 1000


@dataclass(frozen=True)
class Construction:
    """``NAME(…)`` assigned to a variable: the callee as written and qualified, with its literal keywords."""

    callee: str
    qualified: frozenset[str]
    line: int
    kwargs: dict

    def model_spec(self, buildable: set[str]) -> dict | None:
        if self.callee in buildable:
            return {"name": self.callee, "line": self.line, "kwargs": self.kwargs}
        return None

    def optimizer_spec(self) -> dict | None:
        name = next((q for q in sorted(self.qualified) if q.startswith("torch.optim.")), None)
        if name is None or name.count(".") != 2:
            return None
        return {"qualified_name": name, "line": self.line, "kwargs": self.kwargs}


class BuildSites(cst.CSTVisitor):
    """Calls by callee name, what each scope assigns to each name, and the class counts literals give."""

    METADATA_DEPENDENCIES = (PositionProvider, QualifiedNameProvider)

    def __init__(self) -> None:
        super().__init__()
        self._scopes: list[cst.CSTNode] = []
        self.calls: dict[str, list[tuple[cst.Call, cst.CSTNode]]] = {}
        self.assignments: dict[cst.CSTNode, dict[str, list[Construction]]] = {}
        self.head_counts: list[int] = []
        """``nn.Linear(_, N)`` assigned to a head-like attribute, ``num_classes=N`` in a call."""

    def visit_Module(self, node: cst.Module) -> None:
        self._scopes.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name):
            self.calls.setdefault(node.func.value, []).append((node, self._scopes[-1]))
        for arg in node.args:
            if arg.keyword is not None and _COUNT_KEYWORD.match(arg.keyword.value):
                self._count(arg.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        construction = self._construction(node.value)
        for target in node.targets:
            if isinstance(target.target, cst.Name) and construction is not None:
                scope = self.assignments.setdefault(self._scopes[-1], {})
                scope.setdefault(target.target.value, []).append(construction)
            if isinstance(target.target, cst.Attribute) and _HEAD_ATTRIBUTE.match(target.target.attr.value):
                self._head(node.value)

    def _construction(self, value: cst.BaseExpression) -> Construction | None:
        while (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)
               and value.func.attr.value in _CHAIN_METHODS and isinstance(value.func.value, cst.Call)):
            value = value.func.value
        if not isinstance(value, cst.Call):
            return None
        callee = get_full_name_for_node(value.func)
        if callee is None:
            return None
        qualified = frozenset(q.name for q in self.get_metadata(QualifiedNameProvider, value.func, set()))
        line = self.get_metadata(PositionProvider, value).start.line
        return Construction(callee, qualified, line, literal_kwargs(value))

    def _head(self, value: cst.BaseExpression) -> None:
        if not (isinstance(value, cst.Call) and (get_full_name_for_node(value.func) or "").split(".")[-1] == "Linear"):
            return
        out = call_argument(value, 1, "out_features")
        if out is not None:
            self._count(out.value)

    def _count(self, value: cst.BaseExpression) -> None:
        if isinstance(value, cst.Integer):
            count = int(value.evaluated_value)
            if _MIN_CLASSES <= count <= _MAX_CLASSES:
                self.head_counts.append(count)

    def built_for(self, callee: str, params: list[cst.Param], roles: dict[str, str | None],
                  buildable: set[str]) -> dict[str, dict]:
        """Per parameter with the model or optimizer role: how the file's callers of ``callee`` build it.

        ``params`` are the callee's parameters as a call passes them (``self`` left out).
        """
        found: dict[str, dict] = {}
        for call, scope in self.calls.get(callee, []):
            for index, param in enumerate(params):
                name = param.name.value
                role = roles.get(name)
                if role not in ("model", "optimizer") or name in found:
                    continue
                arg = call_argument(call, index, name)
                if arg is None or not isinstance(arg.value, cst.Name):
                    continue
                for construction in self.assignments.get(scope, {}).get(arg.value.value, []):
                    spec = construction.model_spec(buildable) if role == "model" else construction.optimizer_spec()
                    if spec is not None:
                        found[name] = spec
                        break
        return found


def literal_kwargs(call: cst.Call) -> dict:
    kwargs = {}
    empty = cst.Module(body=[])
    for arg in call.args:
        if arg.keyword is None:
            continue
        try:
            kwargs[arg.keyword.value] = ast.literal_eval(empty.code_for_node(arg.value))
        except (ValueError, SyntaxError):
            continue  # a runtime value (args.lr, a tensor): the class's default is used
    return kwargs
