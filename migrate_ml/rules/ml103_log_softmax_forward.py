"""ML103: a model whose ``forward`` returns ``log_softmax`` feeds a single-label ``nll_loss``."""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule
from migrate_ml.rules.semantics.bindings import assignment_of, sole_binding
from migrate_ml.rules.semantics.flow import LossFlow, LossFlowProvider
from migrate_ml.rules._prefilter import model_may_end_in, text_facts
from migrate_ml.rules.ml002_functional_cross_entropy import functional_imports
from migrate_ml.rules._exprs import keyword_arguments, positional_arguments
from migrate_ml.rules.semantics.log_softmax import log_softmax_input, nll_options_supported
from migrate_ml.rules.semantics.shapes import is_class_dim
from migrate_ml.rules.ml001_cross_entropy_loss import reduction_mode
from migrate_ml.rules.ml003_nll_log_softmax import nll_to_bce_edits
from migrate_ml.rules.semantics.reductions import modulated_elementwise

_LOG_SOFTMAX_LAYERS = frozenset({"torch.nn.LogSoftmax", "torch.nn.modules.activation.LogSoftmax"})
_SEQUENTIAL = frozenset({"torch.nn.Sequential", "torch.nn.modules.container.Sequential"})
LAYER_SUGGESTION = (
    "remove the nn.LogSoftmax layer so the model returns raw logits, and train with "
    "nn.BCEWithLogitsLoss() on float multi-hot targets instead of NLLLoss/nll_loss"
)

SUGGESTION = (
    "return raw logits from forward (drop the log_softmax) and use "
    "F.binary_cross_entropy_with_logits(output, target.float()) instead of nll_loss"
)


class LogSoftmaxInForwardRule(Rule):
    code = "ML103"
    name = "log-softmax-in-forward"
    summary = "A model's forward returns log_softmax: report it; unsafe fix returns raw logits and converts nll_loss."
    rationale = (
        "A classifier whose `forward` ends in `log_softmax` over the classes (the pytorch/examples "
        "MNIST and Lightning baseline style) can only express one label per image: the "
        "log-probabilities sum to one across classes, and `nll_loss` reads the one true class. "
        "Multi-label training needs the raw logits, scored per label by "
        "`binary_cross_entropy_with_logits`. The change spans the model and the loss, and other "
        "code may rely on the model's log-probabilities (saved checkpoints are unaffected, the "
        "layer has no weights), so this is reported at the `log_softmax`. When the file also "
        "holds the `nll_loss` calls that consume the model's output, an unsafe fix removes the "
        "`log_softmax` from `forward` and converts those calls (targets cast to float); "
        "`argmax` over the raw logits picks the same class as over log-probabilities, so the "
        "single-label evaluation code keeps working until the prediction rules rewrite it. An "
        "`nn.LogSoftmax(dim=1)` layer does the same and is reported, without a fix, where it "
        "shapes the model's output: an element of `nn.Sequential(...)` (also a named one, "
        "`nn.Sequential(OrderedDict([..., (\"output\", nn.LogSoftmax(dim=1))]))`), a layer set into a built model "
        "(`model.classifier._modules['7'] = nn.LogSoftmax(dim=1)`, `model.fc = ...`), or a `self.` layer whose "
        "call `forward` returns (a `LogSoftmax` inside a loss class is ML108's concern). A name "
        "rebound layer after layer (`out = F.log_softmax(out, dim=1); return out`) returns its last "
        "binding in the same block; that case is reported without a fix."
    )
    applicability = Applicability.UNSAFE
    example_before = (
        "def forward(self, x):\n"
        "    x = self.fc2(F.relu(self.fc1(x)))\n"
        "    return F.log_softmax(x, dim=1)\n"
        "...\n"
        "loss = F.nll_loss(model(data), target)\n"
    )
    example_after = (
        "def forward(self, x):\n"
        "    x = self.fc2(F.relu(self.fc1(x)))\n"
        "    return x\n"
        "...\n"
        "loss = F.binary_cross_entropy_with_logits(model(data), target.float())\n"
    )
    triggers = ("log_softmax(", "LogSoftmax(")
    METADATA_DEPENDENCIES = (
        *Rule.METADATA_DEPENDENCIES,
        LossFlowProvider,
        ParentNodeProvider,
        QualifiedNameProvider,
        ScopeProvider,
    )

    @classmethod
    def could_apply(cls, source: str) -> bool:
        facts = text_facts(source)
        return (facts.has("log_softmax(") and facts.has("def forward")) or facts.has("LogSoftmax(")

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A model that may return log-probabilities: a log_softmax inside ``forward`` that is not
        returned (a distillation loss's KL term) is not this rule's."""
        return model_may_end_in(tree, "log_softmax", "LogSoftmax")

    def __init__(self, context) -> None:
        super().__init__(context)
        self._returned: list[cst.Call] = []
        self._rebound: set[cst.Call] = set()
        self._in_forward: list[bool] = []
        """One entry per enclosing function: is it a method named ``forward``?"""
        self._layer_attributes: list[dict[str, cst.Call]] = []
        """Per enclosing class: ``self.<name> = nn.LogSoftmax(...)`` layers."""
        self._returned_attributes: list[set[str]] = []
        """Per enclosing class: ``self.<name>`` layers whose call ``forward`` returns."""

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._layer_attributes.append({})
        self._returned_attributes.append(set())

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        layers, returned = self._layer_attributes.pop(), self._returned_attributes.pop()
        for name in sorted(returned & layers.keys()):
            self._report_layer(layers[name])

    def visit_Call(self, node: cst.Call) -> None:
        if not self._is_log_softmax_layer(node):
            return
        parent = self.get_metadata(ParentNodeProvider, node, None)
        container = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
        if isinstance(container, cst.Call) and self._qualified(container.func) & _SEQUENTIAL:
            self._report_layer(node)
        elif self._named_in_sequential(node):
            self._report_layer(node)
        elif _placed_into_a_model(parent):
            self._report_layer(node)
        elif (
            isinstance(parent, cst.Assign)
            and len(parent.targets) == 1
            and _self_attribute(parent.targets[0].target) is not None
            and self._layer_attributes
        ):
            self._layer_attributes[-1][_self_attribute(parent.targets[0].target)] = node

    def _named_in_sequential(self, layer: cst.Call) -> bool:
        """``nn.Sequential(OrderedDict([..., ("output", nn.LogSoftmax(dim=1))]))``: a named layer of
        the ``OrderedDict`` a ``Sequential`` is built from."""
        chain: list[cst.CSTNode] = [layer]
        for _ in range(6):  # Element, Tuple, Element, List, Arg, OrderedDict(...)
            parent = self.get_metadata(ParentNodeProvider, chain[-1], None)
            if parent is None:
                return False
            chain.append(parent)
        _, _, pair, _, layers, argument, ordered = chain
        if not (
            isinstance(pair, cst.Tuple) and len(pair.elements) == 2 and pair.elements[1].value is layer
            and isinstance(layers, (cst.List, cst.Tuple)) and isinstance(argument, cst.Arg)
            and isinstance(ordered, cst.Call) and {"collections.OrderedDict"} & self._qualified(ordered.func)
        ):
            return False
        outer = self.get_metadata(ParentNodeProvider, ordered, None)
        container = self.get_metadata(ParentNodeProvider, outer, None) if isinstance(outer, cst.Arg) else None
        return isinstance(container, cst.Call) and bool(self._qualified(container.func) & _SEQUENTIAL)

    def _is_log_softmax_layer(self, call: cst.Call) -> bool:
        if not self._qualified(call.func) & _LOG_SOFTMAX_LAYERS:
            return False
        positional = positional_arguments(call)
        dim = positional[0] if positional else keyword_arguments(call).get("dim")
        return is_class_dim(dim.value if dim is not None else None)

    def _report_layer(self, layer: cst.Call) -> None:
        self.report(
            layer,
            "an nn.LogSoftmax layer makes the model output log-probabilities over competing "
            "classes: a multi-label model must return raw logits",
            suggestion=LAYER_SUGGESTION,
        )

    def _qualified(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        parent = self.get_metadata(ParentNodeProvider, node, None)
        class_body = isinstance(parent, cst.IndentedBlock) and isinstance(
            self.get_metadata(ParentNodeProvider, parent, None), cst.ClassDef
        )
        self._in_forward.append(node.name.value == "forward" and class_body)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._in_forward.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if not (self._in_forward and self._in_forward[-1]) or node.value is None:
            return
        value = node.value
        layer = _returned_layer(value)
        if layer is not None and self._returned_attributes:
            self._returned_attributes[-1].add(layer)
        if log_softmax_input(self, value) is not None:
            self._returned.append(value)
        elif isinstance(value, cst.Name):
            bound = self._log_softmax_bound_to(value)
            if bound is None:
                bound = self._bound_just_before(node, value)
                if bound is not None:
                    self._rebound.add(bound)  # dropping the call would leave `out = out`: no fix
            if bound is not None:
                self._returned.append(bound)

    def _bound_just_before(self, returned: cst.Return, name: cst.Name) -> cst.Call | None:
        """``out = self.fc2(out); out = F.log_softmax(out, dim=1); return out``: a name rebound
        layer after layer returns what its last binding in the same straight-line block holds."""
        line = self.get_metadata(ParentNodeProvider, returned, None)
        block = self.get_metadata(ParentNodeProvider, line, None) if line is not None else None
        if not isinstance(block, cst.IndentedBlock) or line not in block.body:
            return None
        for statement in reversed(block.body[: block.body.index(line)]):
            if not isinstance(statement, cst.SimpleStatementLine):
                return None  # a branch or loop may rebind it
            for small in reversed(statement.body):
                if isinstance(small, cst.Assign) and any(
                    isinstance(t.target, cst.Name) and t.target.value == name.value for t in small.targets
                ):
                    value = small.value
                    if len(small.targets) == 1 and isinstance(value, cst.Call) and log_softmax_input(self, value) is not None:
                        return value
                    return None
        return None

    def _log_softmax_bound_to(self, name: cst.Name) -> cst.Call | None:
        """``output = F.log_softmax(x, dim=1); return output`` with one binding in forward."""
        statement = assignment_of(self, sole_binding(self, name))
        if statement is not None and len(statement.targets) == 1:
            value = statement.value
            if isinstance(value, cst.Call) and log_softmax_input(self, value) is not None:
                return value
        return None

    def leave_Module(self, original_node: cst.Module) -> None:
        if not self._returned:
            return
        flow: LossFlow = self.get_metadata(LossFlowProvider, original_node)
        consumers = [
            call
            for call in flow.calls
            if call.functional
            and call.kinds == {"nll"}
            and call.logits is not None
            and log_softmax_input(self, call.logits) is None
            and not self._bound_to_log_softmax(call.logits)
        ]
        fix = None
        if consumers and not self._rebound and all(
            c.target is not None and nll_options_supported(c.call) and reduction_mode(c.call) != "unknown"
            for c in consumers
        ):
            edits: list[NodeEdit] = []
            adds: list = []
            removes: list = []
            for log_softmax in self._returned:
                logits = log_softmax_input(self, log_softmax)
                edits.append(NodeEdit(log_softmax, lambda _old, z=logits: z.deep_clone()))
            for consumer in consumers:
                edits.extend(nll_to_bce_edits(
                    consumer, lambda value: value, elementwise=modulated_elementwise(self, consumer.call)
                ))
                add, remove = functional_imports(consumer.call.func, "torch.nn.functional.nll_loss")
                adds.extend(add)
                removes.extend(remove)
            fix = Fix(
                edits=tuple(edits),
                applicability=Applicability.UNSAFE,
                add_imports=tuple(adds),
                remove_imports=tuple(removes),
            )
        for log_softmax in self._returned:
            self.report(
                log_softmax,
                "forward returns log_softmax over the classes, which makes the labels compete: "
                "a multi-label model must return raw logits",
                suggestion=SUGGESTION,
                fix=fix,
                extra_nodes=[c.call for c in consumers] if fix else (),
            )
            fix = None  # one violation carries the edits; the others point at the same change

    def _bound_to_log_softmax(self, expression: cst.BaseExpression) -> bool:
        return isinstance(expression, cst.Name) and self._log_softmax_bound_to(expression) is not None


def _self_attribute(expression: cst.BaseExpression) -> str | None:
    """``name`` of ``self.name``."""
    if (
        isinstance(expression, cst.Attribute)
        and isinstance(expression.value, cst.Name)
        and expression.value.value == "self"
    ):
        return expression.attr.value
    return None


def _placed_into_a_model(parent: cst.CSTNode | None) -> bool:
    """``model.fc = nn.LogSoftmax(dim=1)``, ``model.classifier._modules['7'] = ...``,
    ``model.classifier[6] = ...``: a layer set into a built model becomes part of its output. A
    class's own ``self.name = ...`` is judged by whether ``forward`` returns its call."""
    if not (isinstance(parent, cst.Assign) and len(parent.targets) == 1):
        return False
    target = parent.targets[0].target
    return isinstance(target, cst.Subscript) or (isinstance(target, cst.Attribute) and _self_attribute(target) is None)


def _returned_layer(value: cst.BaseExpression) -> str | None:
    """``name`` of a returned ``self.name(...)``."""
    if isinstance(value, cst.Call):
        return _self_attribute(value.func)
    return None
