"""The safety net's checks on losses: a single-label loss called, referenced or looked up with
``getattr``, an arg-max of the labels, and a model's own arg-max fed back as its target.
"""

from __future__ import annotations

import ast
import re

from migrate_ml.rules._prefilter import nodes_of
from migrate_ml.rules.semantics.heads import per_head_criterion
from migrate_ml.rules.semantics.residue.tables import _LOSSES, _LOSS_MODULES, _LOSS_ROOTS, _name_of
from migrate_ml.rules.semantics.sinks.losses import _CRITERION_FACTORY
from migrate_ml.rules.semantics.single_label_values import CLASS_INDEX, LABEL_NAME, PASS_THROUGH_METHODS, int_constant

_LOSS_CALLEE = re.compile(r"criterion|loss", re.IGNORECASE)
_CRITERION_NAME = re.compile(r"^(?:criterion|loss_fn|loss_func|lossfn|criteria)$", re.IGNORECASE)
"""How a script names the criterion an earlier cell or script built (``criterion``, ``loss_fn``)."""
_TARGET_WRAPPERS = frozenset({"Variable", "LongTensor", "IntTensor", "tensor", "as_tensor", "from_numpy", "array"})
"""Calls that wrap a class index into a target tensor without changing it."""
_TARGET_TENSORS = frozenset({"LongTensor", "IntTensor", "tensor", "as_tensor"})
_LOSS_FUNCTIONS = frozenset({"cross_entropy", "nll_loss", "log_softmax", "softmax"})
_BINARY_FUNCTIONS = frozenset({"binary_cross_entropy", "binary_cross_entropy_with_logits", "sigmoid", "logsigmoid"})
_QUALIFIED_LABELS = re.compile(r"^(?!pred|output|logit|prob|score|pseudo|soft|teacher)[a-z]\w*_(?:labels?|targets?)$")
"""A batch's labels named by what they label (``image_labels``, ``batch_targets``), not a model's
predicted labels or scores, nor the pseudo-labels a model or a teacher gives (``pseudo_label``)."""


def _config_key(node: ast.AST) -> str:
    """The key a configured value is read under: ``args.loss``, ``loss``, ``cfg["loss"]`` (``loss``)."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return ""


class LossChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.residue.detector._Detector` on losses."""

    def _loss_named(self, node: ast.AST) -> str:
        """``CrossEntropyLoss`` when ``node`` names torch's or timm's single-label loss; else ""."""
        qualified = self.qualified(node)
        name = qualified.split(".")[-1]
        if name not in _LOSSES:
            return ""
        head = qualified.split(".")[0]
        own = isinstance(node, ast.Name) and node.id in self.defined and node.id not in self.imports
        return "" if own or head not in (*_LOSS_ROOTS, "nn", "F") else name

    def _check_loss(self, node: ast.Call) -> None:
        name = self._loss_named(node.func)
        if name and not self._per_head(node):
            self._report(
                node,
                "single-label-loss",
                f"{name} is a single-label loss: softmax over classes, one class index per image",
                f"use {_LOSSES[name]}",
            )

    def _note_criterion_from_outside(self, node: ast.Call) -> None:
        """``loss = criterion(outputs, target_)`` in a script fragment that never binds ``criterion``
        (an earlier cell or script builds it): what it computes is unknown here, so it is kept until
        the walk ends and reported where the same labels are compared with an arg-max in the same
        scope (:meth:`_report_criteria_from_outside`)."""
        func = node.func
        if not (isinstance(func, ast.Name) and _CRITERION_NAME.match(func.id) and len(node.args) == 2):
            return
        if not isinstance(node.args[1], ast.Name) or func.id in self.imports or func.id in self.defined:
            return
        if self.bound_names is None:
            self.bound_names = {
                bound.id if isinstance(bound, ast.Name) else bound.arg
                for bound in nodes_of(self.tree, ast.Name, ast.arg)
                if not isinstance(bound, ast.Name) or not isinstance(bound.ctx, ast.Load)
            }
        if func.id not in self.bound_names:
            enclosing = tuple(scope.line for scope in self.scopes if scope.line)
            self.outside_criterion_calls.append((node, self.scope().line, node.args[1].id, enclosing))

    def _note_index_labels(self, operands: list[ast.AST], values: list[tuple[object, int]], line: int) -> None:
        """``pred == target_`` with ``pred`` an arg-max: ``target_`` holds one class index per image."""
        for operand, (value, _) in zip(operands, values):
            while isinstance(operand, ast.Attribute) and operand.attr == "data":
                operand = operand.value
            if isinstance(operand, ast.Name) and value is None:
                self.index_labels.setdefault((self.scope().line, operand.id), line)

    def _report_criteria_from_outside(self) -> None:
        for call, scope, labels, enclosing in self.outside_criterion_calls:
            compared = self.index_labels.get((scope, labels))
            if compared is None:
                continue
            self._report(
                call,
                "single-label-loss",
                f"{ast.unparse(call.func)} is built outside this file and called on {labels}, one class index per "
                f"image (compared with an arg-max at line {compared}): a CrossEntropyLoss there trains one label per image",
                f"build it as nn.BCEWithLogitsLoss() where it is defined and pass float multi-hot [B, C] targets: "
                f"{ast.unparse(call.func)}({ast.unparse(call.args[0])}, {labels}.float())",
                (compared, *enclosing),
                where_walked=False,
            )

    def _check_loss_reference(self, node: ast.Name | ast.Attribute) -> None:
        """``loss_fn = F.cross_entropy``, ``partial(F.cross_entropy, ...)``, ``{"ce": nn.CrossEntropyLoss}``:
        the loss is called somewhere this file cannot follow. A call is :meth:`_check_loss`'s; a
        type check (``isinstance``, an annotation, a comparison) builds no loss."""
        parent = self.parents.get(node)
        if isinstance(parent, ast.Call) and parent.func is node or isinstance(parent, ast.Attribute):
            return
        name = self._loss_named(node)
        if not name or self._in_type_check(node):
            return
        self._report(
            node,
            "single-label-loss",
            f"{name} is a single-label loss (referenced here, called elsewhere): softmax over classes, "
            "one class index per image",
            f"use {_LOSSES[name]}",
        )

    def _in_type_check(self, node: ast.AST) -> bool:
        child, parent = node, self.parents.get(node)
        while parent is not None and not isinstance(parent, ast.stmt):
            if isinstance(parent, ast.Compare):
                return True
            if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id in ("isinstance", "issubclass"):
                return True
            if isinstance(parent, ast.arg) and parent.annotation is child:
                return True
            child, parent = parent, self.parents.get(parent)
        if isinstance(parent, ast.AnnAssign) and parent.annotation is child:
            return True
        return isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) and parent.returns is child

    def _check_getattr_loss(self, node: ast.Call) -> None:
        """``getattr(nn, "CrossEntropyLoss")``, or ``getattr(nn, args.loss)`` / ``eval(cfg["loss"])``
        where the configuration defaults that key to one (an option, a config class's field, a
        config dict's entry, a parameter's default)."""
        if not (isinstance(node.func, ast.Name) and node.func.id in ("getattr", "eval") and node.func.id not in self.defined):
            return
        if node.func.id == "getattr":
            if len(node.args) < 2 or self.qualified(node.args[0]) not in _LOSS_MODULES:
                return
            attribute = node.args[1]
        elif len(node.args) == 1 and not isinstance(node.args[0], ast.Constant):
            attribute = node.args[0]  # eval(config["loss"]["name"]): the name as code
        else:
            return
        if isinstance(attribute, ast.Constant) and isinstance(attribute.value, str):
            name, origin, change, related = attribute.value, "", "", ()
        else:
            key = _config_key(attribute)
            if key not in self.argument_defaults:
                return
            name, option, line = self.argument_defaults[key]
            origin, change, related = f" (the default of {option}, line {line})", f"; change the default of {option}", (line,)
        if name not in _LOSSES:
            return
        self._report(
            node,
            "single-label-loss",
            f"{node.func.id} builds {name}{origin}, a single-label loss: softmax over classes, one class index per image",
            f"use {_LOSSES[name]}{change}",
            related,
        )

    def _check_factory_default(self, node: ast.Call) -> None:
        """``create_criterion(args.criterion)`` with ``--criterion`` defaulting to ``"cross_entropy"``:
        the factory (of this file or another of the run) builds the loss the option names, a
        single-label one whenever the option is not given. Reported at the default."""
        name = _name_of(node)
        if not (_CRITERION_FACTORY.search(name) and len(node.args) == 1):
            return
        key = _config_key(node.args[0])
        if key not in self.argument_defaults:
            return
        loss, option, line = self.argument_defaults[key]
        default = next(
            (c for c in nodes_of(self.tree, ast.Constant) if c.lineno == line and c.value == loss), None
        )
        if default is None or loss not in _LOSSES:
            return
        self._report(
            default,
            "single-label-loss",
            f"{option} defaults to {loss!r}, the name of a single-label loss that {name}() builds (line "
            f"{node.lineno}): a run without the option trains one class index per image",
            f"default {option} to a BCE-with-logits entry of {name}() ({_LOSSES[loss]})",
            (node.lineno,),
            where_walked=False,
        )

    def _check_argmax_on_labels(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name not in ("argmax", "max"):
            return
        receiver = func.value if isinstance(func, ast.Attribute) else None
        on_module = receiver is None or self.is_module(receiver)
        subject = node.args[0] if on_module and node.args else receiver
        dims = (node.args[1:] if on_module else node.args) or [k.value for k in node.keywords if k.arg in ("dim", "axis")]
        if subject is None or not dims:
            return
        if name == "max" and not self._takes_indices(node):
            return
        root = self.root_name(subject)
        if not (LABEL_NAME.match(root) or _QUALIFIED_LABELS.match(root)):
            return
        self._report(
            node,
            "target-argmax",
            f"{root} is collapsed to one class index per image; multi-hot targets have several",
            f"keep {root} as the float multi-hot [B, C] tensor and compare or score whole rows",
        )

    def _check_pseudo_label(self, node: ast.Call) -> None:
        """``criterion(outputs, torch.LongTensor([pred]))`` with ``pred`` the model's own arg-max: a
        one-class pseudo-label (ODIN's input perturbation, self-training)."""
        if self.is_module(node.func) or not _LOSS_CALLEE.search(_name_of(node)) or len(node.args) < 2:
            return
        statement = node
        while statement is not None and not isinstance(statement, ast.stmt):
            statement = self.parents.get(statement)
        target: ast.AST | None = node.args[1]
        built = False  # a tensor built from the arg-max, not an arg-max passed as it is (a teacher's hard target)
        for _ in range(6):
            if target is None or statement is None:
                return
            value, origin = self.value_of(target)
            if value == CLASS_INDEX and built:
                break
            if isinstance(target, ast.Name):
                target = self._last_bound(target.id, statement)
            elif isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute) and target.func.attr in PASS_THROUGH_METHODS:
                target = target.func.value
            elif isinstance(target, ast.Call) and _name_of(target) in _TARGET_WRAPPERS and len(target.args) == 1:
                built = built or _name_of(target) in _TARGET_TENSORS
                target = target.args[0]
            elif isinstance(target, (ast.List, ast.Tuple)) and len(target.elts) == 1:
                target = target.elts[0]
            else:
                return
        else:
            return
        self._report(
            node,
            "target-argmax",
            "the model's own arg-max class is the target of this loss (a one-class pseudo-label): multi-hot targets "
            "have every label above the threshold",
            "build the target from the sigmoid decisions, (torch.sigmoid(logits) > THRESHOLD).float(), and use "
            "BCEWithLogitsLoss",
            (origin,),
        )

    def _check_class_weight_by_target(self, node: ast.Subscript | ast.Call) -> None:
        """``self.alpha[target]``, ``alpha.gather(0, target.view(-1))`` in a loss's ``forward``: a
        per-class weight picked by the one class index of each sample (a focal loss's alpha)."""
        if isinstance(node, ast.Subscript):
            table, index = node.value, node.slice
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "gather" and len(node.args) == 2 \
                and int_constant(node.args[0]) == 0:
            table, index = node.func.value, node.args[1]
        else:
            return
        function = self._enclosing_function(node)
        if function is None or function.name not in ("forward", "__call__") or not self._computes_a_loss(function):
            return
        positional = [argument.arg for argument in function.args.args]
        if len(positional) < 3 or self.root_name(index) != positional[2]:
            return  # indexed by the target (``forward(self, logits, target)``), not by a position
        if self.root_name(table) in positional[1:] or isinstance(index, (ast.Slice, ast.Tuple)):
            return  # the scores or the target themselves, indexed
        self._report(
            node,
            "single-label-loss",
            f"a per-class weight ({ast.unparse(table)}) is picked by the one target class of each sample: "
            "the loss assumes a class index per image",
            "with multi-hot [B, C] targets weigh every label: alpha of shape [C] broadcast over the class axis "
            "(alpha * target + (1 - alpha) * (1 - target) for a focal loss), not indexed by the target",
        )

    def _per_head(self, node: ast.Call) -> bool:
        """A criterion built in a function (or the module) and called there on one head's states at a time
        (``heads.per_head_criterion``): a multi-task model already."""
        current: ast.AST = node
        holder = self.parents.get(node)
        while isinstance(holder, ast.Attribute) and isinstance(self.parents.get(holder), ast.Call):
            current = self.parents.get(holder)  # ``nn.CrossEntropyLoss().to(device)``
            if current.func is not holder:
                return False
            holder = self.parents.get(current)
        if not (isinstance(holder, ast.Assign) and len(holder.targets) == 1 and isinstance(holder.targets[0], ast.Name)):
            return False
        scope = self._enclosing_function(holder) or self.tree
        return per_head_criterion(scope, holder.targets[0].id)

    def _enclosing_function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        while node is not None and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node = self.parents.get(node)
        return node

    def _computes_a_loss(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        """The function computes a single-label loss itself (a cross-entropy, a log-softmax) and no
        binary one: a binary focal loss indexes ``[alpha, 1 - alpha]`` by each 0/1 target entry."""
        names = {_name_of(inner) for inner in ast.walk(function) if isinstance(inner, ast.Call)}
        if names & _BINARY_FUNCTIONS:
            return False
        return bool(names & _LOSS_FUNCTIONS) or any(
            isinstance(inner, ast.Call) and self._loss_named(inner.func) for inner in ast.walk(function)
        )
