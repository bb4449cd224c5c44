"""Sinks on losses: the file's hand-written loss functions and loss classes where they are used or
built, which calls are loss calls and what their criterion and labels are, a model computing its
own loss, a criterion a project factory outside the run builds, soft targets times a log-softmax,
and a model output put through ReLU before its loss.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics import hand_losses, sources, tables
from migrate_ml.rules.semantics.meanings import (
    CLASS_INDEX,
    INT,
    LOGITS,
    LOGITS_LOSS_FN,
    LOG_PROB,
    LOSS_FN,
    MULTI_HOT,
    ONE_HOT,
    SCORES,
    SIGMOID,
    SOFTMAX,
    THRESHOLDED,
    UNKNOWN,
)
from migrate_ml.rules.semantics.sinks.common import LABEL_LIKE, _ADVICE, _HAND_WRITTEN, _WHY


LOSS_CALLEE = re.compile(r"(^|_)(criterion|loss_fn|loss_func|lossfn|loss|criteria)(_|$|\d)", re.IGNORECASE)

_CRITERION_FACTORY = re.compile(r"^(get|build|make|create|init|load|setup|define)_?\w*(criterion|loss)", re.IGNORECASE)
"""A function that builds a criterion: ``get_criterion``, ``build_loss``, ``make_loss_fn``."""

_LOSS_CLASS = re.compile(r"^[A-Z]\w*(Loss|Criterion)$")
"""A class named as a loss: ``GradientBoostingLoss``, ``LabelSmoothingCriterion``."""

_MULTI_LABEL_LOSS = re.compile(r"bce|binary|multi_?label|sigmoid|asymmetric", re.IGNORECASE)
"""What a criterion factory's name or arguments say when it builds a per-label loss."""

HEAD = re.compile(r"^(fc|fc\d|classifier|head|linear|out|output|logits?|cls_head|last_linear|final|last_layer)$")
_FEATURES = re.compile(r"backbone|encoder|feature|stem|trunk|body", re.IGNORECASE)
_SOFTMAX_MODEL = re.compile(r"^[A-Z]\w*[a-z0-9](?:Log)?Softmax$")
"""A class named as a model ending in softmax (``CNNLogSoftmax``): a prefix, then ``Softmax`` (not
torch's own ``Softmax``/``LogSoftmax`` layers, nor a ``GumbelSoftmax`` layer built as anything but the model)."""
_LIBRARIES = frozenset({
    "torch", "torchvision", "timm", "transformers", "lightning", "pytorch_lightning", "ignite", "torchmetrics",
    "sklearn", "numpy", "scipy", "tensorflow", "keras", "jax", "flax", "fastai", "monai", "kornia", "mmcv",
    "mmcls", "mmpretrain", "detectron2", "segmentation_models_pytorch", "torchaudio", "torchtext", "accelerate",
})


def _project_module_of(tree: ast.Module, name: str) -> str | None:
    """The module of the project (relative, or a package that is no library) that ``name`` is imported from."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any((alias.asname or alias.name) == name for alias in node.names):
            module = "." * node.level + (node.module or "")
            if node.level or (node.module or "").split(".")[0] not in _LIBRARIES:
                return module
            return None
    return None
"""Modules that compute features for a head, not the model's output."""


def _name_of(node: ast.AST) -> str:
    """``Encoder`` of ``Encoder`` or ``models.Encoder``."""
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _last_linear(layers: dict[str, ast.Call], qualified: Callable[[ast.AST], str]) -> str | None:
    """The name of the class's last-built ``Linear`` layer: the one that gives the model its outputs."""
    linear = [
        (call.lineno, call.col_offset, name) for name, call in layers.items()
        if qualified(call.func).endswith(("Linear", "LazyLinear"))
    ]
    return max(linear)[2] if linear else None


_LIBRARIES = frozenset(
    {"torch", "torchvision", "timm", "transformers", "pytorch_lightning", "lightning", "monai", "apex", "accelerate"}
)
"""Model classes from these take no labels in ``forward`` (Hugging Face's ``labels=`` is ML005's)."""


class LossChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.sinks.core.Sinks` on losses and what feeds them."""

    def _loss_function_use(self, node: ast.AST, name: str) -> None:
        """A call of (or a reference to) a hand-written loss function of the file, outside the
        functions that make up that loss (their ``def`` is where the loss is reported)."""
        function = self.analysis.function
        if function is not None and any(loss.function is function for loss in self._loss_functions.values()):
            return
        loss = self._loss_functions[name]
        self.report(
            node, "single-label-loss",
            f"{name}() (line {loss.function.lineno}) computes {_HAND_WRITTEN[loss.kind]}: {_WHY[loss.kind]}",
            _ADVICE[loss.kind],
            loss.function.lineno,
        )

    def _loss_class_built(self, node: ast.Call, name: str) -> None:
        """``criterion = LabelSmoothing(0.1)``: a loss class of this file (or of another file of the
        run, imported) that computes a single-label loss, built outside its own body."""
        loss = self._loss_classes.get(name)
        if loss is not None:
            if self.analysis.class_name == name or loss.node.lineno in self.analysis.scope_lines:
                return
            where, computes, advice = f"line {loss.node.lineno}", loss.computes, hand_losses.class_advice(loss)
        else:
            found = self.analysis.run_loss_class(node.func)
            if found is None:
                return
            where, computes, advice = found
        self.report(
            node, "single-label-loss",
            f"builds {name} ({where}), which computes {computes}: one label per image",
            advice,
        )

    def _parameter_name(self, function_name: str, position: int) -> str:
        function = next(
            f for f in self.analysis.tree.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name == function_name
        )
        return (*function.args.posonlyargs, *function.args.args)[position].arg

    def _is_loss_call(self, node: ast.Call) -> bool:
        func = node.func
        if self.analysis.qualified(func) in tables.LOSS_FUNCTIONS:
            return True
        if self.analysis.value(func).meaning in (LOSS_FN, LOGITS_LOSS_FN):
            return True
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return bool(LOSS_CALLEE.search(name)) and len(node.args) + len(node.keywords) >= 2

    def _is_logits_criterion(self, func: ast.AST) -> bool:
        return self.analysis.is_logits_loss(func) or bool(self._criterion_name(func))

    def _criterion_name(self, func: ast.AST) -> str:
        """How a BCE-with-logits criterion object is called (``criterion``, ``self.loss_fn``,
        ``losses["val"]``), also where a function receives it as a parameter of that name or from
        another file of the run; "" for anything else, the functional losses included."""
        if self.analysis.qualified(func) in tables.LOSS_FUNCTIONS:
            return ""
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        meaning = self.analysis.value(func).meaning
        if meaning == LOGITS_LOSS_FN:
            return ast.unparse(func)
        # The name alone stands for the criterion only where no binding of this scope says what it
        # holds (a parameter, a global): ``loss = nn.MSELoss()`` in another function is another loss.
        if name in self.analysis.logits_loss_names and not self.analysis.is_bound(func):
            return ast.unparse(func)
        return ""

    def _integer_label(self, target: ast.AST) -> bool:
        """Class labels as they come from a loader: a label-named value with no float cast, or ``.long()``."""
        meaning = self.analysis.value(target).meaning
        if meaning in (MULTI_HOT, ONE_HOT, SIGMOID, SOFTMAX, THRESHOLDED, LOGITS, SCORES):
            return False
        if any(isinstance(n, ast.Attribute) and n.attr in ("long", "int") for n in ast.walk(target)):
            return True
        root = target
        while isinstance(root, (ast.Call, ast.Attribute, ast.Subscript)):
            root = root.func if isinstance(root, ast.Call) else root.value
        name = root.id if isinstance(root, ast.Name) else ""
        if name == "self" and isinstance(target, ast.Attribute):
            name = target.attr
        return bool(LABEL_LIKE.search(name)) and meaning in (UNKNOWN, CLASS_INDEX, INT)

    def _fed_to_logits_loss_here(self, subject: ast.AST) -> bool:
        """Whether the enclosing function passes this name to a BCE-with-logits loss: then it holds logits."""
        function = self.analysis.function
        if function is None or not isinstance(subject, ast.Name):
            return False
        names = self._fed_to_logits_loss.get(function)
        if names is None:
            names = self._fed_to_logits_loss[function] = {
                call.args[0].id
                for call in ast.walk(function)
                if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Name)
                and self._is_logits_criterion(call.func)
            }
        return subject.id in names

    def _soft_target_product(self, node: ast.BinOp) -> None:
        """``-target * F.log_softmax(x, -1)``: cross-entropy against soft targets, written out."""
        left, right = self.analysis.value(node.left), self.analysis.value(node.right)
        for scores, other, other_node in ((left, right, node.right), (right, left, node.left)):
            if scores.meaning != LOG_PROB or isinstance(other_node, ast.Constant) or other.meaning in (LOG_PROB, SCORES, LOGITS):
                continue
            if not (self._is_parameter(other_node) or self._read_from_parameter(other_node)):
                continue  # a soft target passed in (forward(self, x, target)), not a prior of the module
            self.report(
                node, "soft-target-cross-entropy",
                "a target times log_softmax over the classes: a hand-written (soft-target) cross-entropy, "
                "one label per image however the target is mixed",
                "use BCEWithLogitsLoss (timm.loss.BinaryCrossEntropy) on the logits with float multi-hot targets",
                scores.line,
            )
            return

    # -- returns and models

    def _model_computes_loss(self, statement: ast.Assign) -> None:
        """``loss = model(x, y)`` where the model's class comes from a module outside the run, in a
        file whose other losses are BCE: the model's own loss was not migrated with them."""
        call = statement.value
        if not self.multi_label_training or len(statement.targets) != 1 or not isinstance(call, ast.Call):
            return
        target = statement.targets[0]
        if not (isinstance(target, ast.Name) and "loss" in target.id.lower()) or len(call.args) < 2:
            return
        callee = self.analysis.key(call.func).rpartition(".")[2] or (call.func.id if isinstance(call.func, ast.Name) else "")
        if not sources.is_model_callee(callee) or not self._labels(call.args[1]):
            return
        origins = self._model_classes()
        facts = current_facts()
        run = set(facts.run_modules) if facts is not None else set()
        if not origins or "" in origins.values() or any(module.rpartition(".")[2] in run for module in origins.values()):
            return  # a class of this file or of the run: its own loss is migrated (or reported) there
        built = ", ".join(f"{name} from {module}" for name, module in sorted(origins.items()))
        self.report(
            statement, "single-label-loss",
            f"the model computes its own loss from the labels ({ast.unparse(call)}): its class ({built}) is not in "
            "this run, so that loss was not migrated with this file's BCE; a CrossEntropyLoss in its forward still "
            "trains one label per image",
            "make the model return logits and compute nn.BCEWithLogitsLoss()(logits, y.float()) here, or rewrite "
            "the model's module in the same run",
        )

    def _criterion_from_outside_factory(self, statement: ast.Assign) -> None:
        """``self.criterion = get_criterion()`` where ``get_criterion`` is imported from a module of
        the project outside the run, and the criterion is called on the labels in this file: what it
        builds (often ``nn.CrossEntropyLoss()``) was not migrated with this file. So is a loss class
        of such a module (``self.criterion = GradientBoostingLoss()``): what its ``forward``
        computes is unknown here, and a cast of its targets at the call does not migrate it."""
        call = statement.value
        if len(statement.targets) != 1 or not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            return
        bound = statement.targets[0]
        built_as_class = bool(_LOSS_CLASS.match(call.func.id))
        if not (_CRITERION_FACTORY.search(call.func.id) or built_as_class) or not LOSS_CALLEE.search(_name_of(bound)):
            return
        if _MULTI_LABEL_LOSS.search(ast.unparse(call)):
            return  # get_multilabel_loss(loss_type="weighted_bce"): asked for a per-label loss already
        module = _project_module_of(self.analysis.tree, call.func.id)
        facts = current_facts()
        if module is None or (facts is not None and module.rpartition(".")[2] in facts.run_modules):
            return  # a library's, or the run rewrites (or reports) what the factory returns
        key = ast.unparse(bound)
        calls = [node for node in ast.walk(self.analysis.tree) if isinstance(node, ast.Call) and ast.unparse(node.func) == key]
        lines = sorted(node.lineno for node in calls if len(node.args) == 2 and self._labels(node.args[1]))
        if not lines:
            return
        if built_as_class and len(lines) < len(calls):
            return  # also called on other things (``self.loss(x, *output)`` of a VAE branch): another task's loss
        if built_as_class:
            self.report(
                statement, "single-label-loss",
                f"{ast.unparse(bound)} is a {call.func.id} of {module}, a module this run does not include, called on "
                f"the labels (line {lines[0]}): what it computes was not migrated with this file, and a softmax or a "
                "pick of the labelled class in its forward would still train one label per image",
                f"re-derive {call.func.id} for float multi-hot [B, C] targets (per-label BCE with logits), or rewrite "
                f"{module} in the same run",
            )
            return
        self.report(
            statement, "single-label-loss",
            f"{ast.unparse(bound)} is built by {call.func.id}() of {module}, a module this run does not include, and "
            f"called on the labels (line {lines[0]}): a CrossEntropyLoss or NLLLoss it returns still trains one label "
            "per image",
            f"make {call.func.id}() return nn.BCEWithLogitsLoss() and pass float multi-hot [B, C] targets, or rewrite "
            f"{module} in the same run",
        )

    def _model_classes(self) -> dict[str, str]:
        """The classes the file builds its model from (``model = VisionTransformer(...)``), with
        the module each is imported from ("" for a class of this file)."""
        if self._built_models is None:
            self._built_models = {}
            for node in ast.walk(self.analysis.tree):
                if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)):
                    continue
                if not any(sources.is_model_callee(self.analysis.key(t).rpartition(".")[2]) for t in node.targets):
                    continue
                name = node.value.func.id
                wrapped = node.value.args[:1]
                if wrapped and sources.is_model_callee(self.analysis.key(wrapped[0]).rpartition(".")[2]):
                    continue  # ``model = DDP(model)``: a wrapper around the model built elsewhere
                if name in self.analysis.modules:
                    self._built_models[name] = ""
                elif name in self.analysis.imports and name[:1].isupper():
                    module = self.analysis.imports[name].rpartition(".")[0]
                    if module.partition(".")[0] not in _LIBRARIES:
                        self._built_models[name] = module
        return self._built_models

    def _relu_head(self, statement: ast.Assign) -> None:
        """``self.classifier = nn.Sequential(nn.Linear(d, C), nn.ReLU())``: logits never below 0."""
        call = statement.value
        if not self._classification_training or not isinstance(call, ast.Call) or not self._ends_in_relu(call):
            return
        names = [self.analysis.key(target).rpartition(".")[2] for target in statement.targets]
        if not any(HEAD.match(name) or (sources.is_model_callee(name) and not _FEATURES.search(name)) for name in names):
            return  # a backbone or encoder ending in ReLU feeds a head: its features may be non-negative
        self._report_relu(call.args[-1])

    def _ends_in_relu(self, call: ast.Call) -> bool:
        """``nn.Sequential(..., nn.Linear(d, C), nn.ReLU())``."""
        if not self.analysis.qualified(call.func).endswith("Sequential") or len(call.args) < 2:
            return False
        last, before = call.args[-1], call.args[-2]
        return (
            isinstance(last, ast.Call) and self.analysis.qualified(last.func).endswith(("ReLU", "ReLU6"))
            and isinstance(before, ast.Call) and self.analysis.qualified(before.func).endswith("Linear")
        )

    def _softmax_model_built(self, node: ast.Call, name: str) -> None:
        """``return CNNLogSoftmax(out_features=125)`` in ``initial_model``: a model class of another
        module of the project, named as ending in (log-)softmax, built as the model of a file whose
        loss applies the sigmoid itself: BCE with logits and a sigmoid threshold read its
        probabilities as logits. Its ``forward`` is not in this file, so the name is the evidence."""
        if not self._logits_loss_named or not _SOFTMAX_MODEL.match(name):
            return
        module = _project_module_of(self.analysis.tree, name)
        if module is None:
            return
        function = self.analysis.function
        statement = self._statement
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        as_model = (function is not None and isinstance(statement, ast.Return) and "model" in function.name.lower()) or any(
            sources.is_model_callee(self.analysis.key(target).rpartition(".")[2]) for target in targets
        )
        if not as_model:
            return
        ends = "log_softmax" if "LogSoftmax" in name else "softmax"
        self.report(
            node, "sigmoid-before-logits-loss",
            f"{name} ({module}) is named as a model whose forward ends in {ends}: the BCE-with-logits loss (and any "
            f"sigmoid threshold) of this file read its {'log-' if ends == 'log_softmax' else ''}probabilities as logits",
            f"make the model return raw logits (drop the final {ends} of {name}.forward, or build its logits variant); "
            "BCEWithLogitsLoss applies the sigmoid itself",
        )

    def _report_relu(self, node: ast.AST) -> None:
        if any(sink.node is node and sink.kind == "model-output-relu" for sink in self.found):
            return  # the head's ReLU, reached both from its assignment and from ``forward``
        self.report(
            node, "model-output-relu",
            "the model's last op is a ReLU: its logits are never below 0, so sigmoid(logits) is never below 0.5 "
            "and every label is predicted",
            "end the model with the Linear layer (raw logits); apply torch.sigmoid where probabilities are needed",
        )

    def forward_return(self, statement: ast.Return) -> None:
        """``return F.relu(self.fc(x))`` in ``forward``, also through the returned name (``x =
        torch.relu(self.l2(x)); return x``) and through a layer ending in ReLU (``return self.layer3(x)``
        with ``self.layer3 = nn.Sequential(nn.Linear(h, C), nn.ReLU(True))``)."""
        value = statement.value
        function = self.analysis.function
        if not self._classification_training or function is None or self.analysis.class_name in self._feeding_heads():
            return
        if isinstance(value, ast.Name):
            value = sources.last_assigned(function, value.id, statement)
        if not isinstance(value, ast.Call) or len(value.args) != 1:
            return
        layers = sources.class_layers(self.analysis.tree).get(self.analysis.class_name, {})
        layer = sources.self_layer(value.func)
        if layer is not None and layer in layers and self._ends_in_relu(layers[layer]):
            self._report_relu(layers[layer].args[-1])
            return
        func = value.func
        relu = self.analysis.qualified(func) in ("torch.relu", "torch.nn.functional.relu") or (
            isinstance(func, ast.Attribute) and self.analysis.key(func) in ("self.relu", "self.act")
        )
        inner = value.args[0]
        layer = sources.self_layer(inner.func) if relu and isinstance(inner, ast.Call) else None
        if layer is not None and (HEAD.match(layer) or layer == _last_linear(layers, self.analysis.qualified)):
            self._report_relu(value)

    def _feeding_heads(self) -> set[str]:
        """The classes built as a layer of another class of the file that builds a ``Linear``
        (``self.encoder = Encoder()`` beside ``self.fc``): their output is features for that head."""
        feeding: set[str] = set()
        for owner, layers in sources.class_layers(self.analysis.tree).items():
            built = {_name_of(call.func) for call in layers.values()}
            if any(self.analysis.qualified(call.func).endswith(("Linear", "LazyLinear")) for call in layers.values()):
                feeding |= built - {owner}
        return feeding
