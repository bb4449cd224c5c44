"""Where a single-label meaning does harm: losses, metrics, thresholds, logging.

Each check looks at one statement (its own expressions, not the bodies it holds) where the
walk of :mod:`summaries` has the meanings of its names, and reports what it proves.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from migrate_ml.rules.semantics import sources, tables
from migrate_ml.rules.semantics.meanings import (
    ARGMAX,
    CLASS_INDEX,
    INT,
    LOG_PROB,
    LOGITS,
    LOGITS_LOSS_FN,
    LOSS_FN,
    MULTI_HOT,
    ONE_HOT,
    SCORES,
    SIGMOID,
    SOFTMAX,
    THRESHOLDED,
    UNKNOWN,
)
from migrate_ml.rules.semantics.summaries import Analysis

KINDS = (
    "class-index-source",
    "class-index-target",
    "one-hot-target",
    "soft-target-cross-entropy",
    "sigmoid-before-logits-loss",
    "threshold-on-logits",
    "threshold-on-softmax",
    "model-output-relu",
    "argmax-logged",
    "uncast-target",
)
"""What this analysis adds to the safety net's kinds."""

LOSS_CALLEE = re.compile(r"(^|_)(criterion|loss_fn|loss_func|lossfn|loss|criteria)(_|$|\d)", re.IGNORECASE)
LOGITS_NAME = re.compile(r"logit", re.IGNORECASE)
"""A model output named as logits (``logits = model(x)``) is taken at its word."""
THRESHOLD_NAME = re.compile(r"thresh", re.IGNORECASE)
LABEL_LIKE = re.compile(r"label|target|^y(_|$)|^gt", re.IGNORECASE)
HEAD = re.compile(r"^(fc|fc\d|classifier|head|linear|out|output|logits?|cls_head|last_linear|final|last_layer)$")
_FEATURES = re.compile(r"backbone|encoder|feature|stem|trunk|body", re.IGNORECASE)
"""Modules that compute features for a head, not the model's output."""
_LOGGED = frozenset({"add_data", "set_title", "title", "add_text", "log_text"})
"""Calls that write one image's prediction next to it: a table row, a plot title."""
_CAST_METHODS = frozenset({"float", "double", "half", "type_as", "bfloat16"})
_FLOAT_DTYPES = frozenset({"float", "float32", "float16", "float64", "double", "half", "bfloat16"})
_TARGET_KEYWORDS = ("target", "targets", "labels", "label", "y", "y_true")
_COMPOUND_FIELDS = frozenset({"body", "orelse", "finalbody", "handlers"})


@dataclass(frozen=True)
class Sink:
    node: ast.AST
    kind: str
    message: str
    suggestion: str
    related: tuple[int, ...] = ()
    enclosing: tuple[int, ...] = ()
    """The ``def``/``class`` lines around it (also in ``related``)."""


class Sinks:
    """Runs every check on each statement the analysis walks; ``found`` collects the constructs."""

    def __init__(self, analysis: Analysis, text: str) -> None:
        self.analysis = analysis
        self.found: list[Sink] = []
        self.multi_label_training = any(
            word in text for word in ("BCEWithLogits", "binary_cross_entropy_with_logits", "sigmoid(")
        )
        self._fed_to_logits_loss: dict[ast.AST, set[str]] = {}
        self._loss_targets: list[tuple[str, ast.Call, ast.AST, bool]] = []

    def report(self, node: ast.AST, kind: str, message: str, suggestion: str, *related: int) -> None:
        enclosing = tuple(self.analysis.scope_lines)
        self.found.append(
            Sink(node, kind, message, suggestion, tuple(line for line in (*related, *enclosing) if line), enclosing)
        )

    def __call__(self, statement: ast.stmt) -> None:
        for node in _own_nodes(statement):
            if isinstance(node, ast.Call):
                self._call(node)
            elif isinstance(node, ast.Compare):
                self._compare(node)
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
                self._soft_target_product(node)
        if isinstance(statement, ast.Return) and statement.value is not None:
            self._returned(statement)
        if isinstance(statement, ast.Assign):
            self._relu_head(statement)

    def finish(self) -> list[Sink]:
        """The file-wide check: a logits criterion given float targets at one call and integer
        labels at another (the residue of a rewrite that could not follow every call)."""
        # One criterion or several, a call of a BCE criterion that casts its targets shows what
        # the others need: integer labels left at another call are what the rewrite did not reach.
        cast = [(name, call) for name, call, _, is_cast in self._loss_targets if is_cast]
        for name, call, target, is_cast in self._loss_targets if cast else ():
            if not is_cast:
                self.found.append(Sink(
                    call,
                    "uncast-target",
                    f"{name} (BCE with logits) is given {ast.unparse(target)}, integer class labels left from before "
                    f"the migration, where {cast[0][0]} at line {cast[0][1].lineno} gets float targets",
                    f"pass float multi-hot [B, C] targets: {ast.unparse(target)}.float()",
                    (cast[0][1].lineno,),
                ))
        return self.found

    # -- calls

    def _call(self, node: ast.Call) -> None:
        analysis = self.analysis
        value = analysis.value
        func = node.func
        method = func.attr if isinstance(func, ast.Attribute) else ""
        qualified = analysis.qualified(func)
        if self._is_loss_call(node):
            target = _argument(node, 1, _TARGET_KEYWORDS)
            scores = _argument(node, 0, ("input", "logits", "inputs"))
            if target is not None and value(target).meaning == ONE_HOT:
                self.report(
                    node, "one-hot-target",
                    "the loss target is a one-hot of class indices (however smoothed or mixed): one class per image",
                    "pass the real float multi-hot [B, C] targets (several labels per image)",
                    value(target).line,
                )
            if scores is not None and analysis.is_logits_loss(func):
                meaning = value(scores).meaning
                if meaning in (SIGMOID, SOFTMAX):
                    what = "torch.sigmoid" if meaning == SIGMOID else "softmax"
                    self.report(
                        node, "sigmoid-before-logits-loss",
                        f"{what} is applied before a loss that applies the sigmoid itself (BCE with logits): "
                        "the loss sees squashed scores and its gradients vanish",
                        "pass the raw logits to BCEWithLogitsLoss / binary_cross_entropy_with_logits",
                        value(scores).line,
                    )
            if target is not None and self._is_logits_criterion(func) and value(target).meaning == CLASS_INDEX:
                self.report(
                    node, "class-index-target",
                    f"the labels given to this BCE-with-logits loss are class indices (from line {value(target).line}): "
                    "one class per image, not a [B, C] multi-hot row",
                    "load float multi-hot labels (a Dataset whose __getitem__ returns a [C] float tensor)",
                    value(target).line,
                )
            criterion = self._criterion_name(func)
            if target is not None and criterion:
                if _is_float_cast(target):
                    self._loss_targets.append((criterion, node, target, True))
                elif self._integer_label(target):
                    self._loss_targets.append((criterion, node, target, False))
        if method in ("scatter_", "scatter") and len(node.args) >= 3:
            self._scatter_one_hot(node)
        if qualified == "torch.log" and node.args:
            self._gathered_log_probability(node, node.args[0])
        elif method == "log" and not node.args:
            self._gathered_log_probability(node, func.value)
        if tables.row_for(qualified) is tables.row_for("torch.nn.functional.one_hot") and node.args:
            if value(node.args[0]).meaning == ARGMAX:
                self.report(
                    node, "argmax-prediction",
                    "a one-hot of an arg-max is still one predicted class per image",
                    "predict with (torch.sigmoid(logits) > THRESHOLD).float() — one decision per label",
                    value(node.args[0]).line,
                )
        if self._serving() and (method == "softmax" or tables.row_for(qualified) is tables.row_for("torch.softmax")):
            module_call = tables.row_for(qualified) is tables.row_for("torch.softmax")
            scores = (node.args[0] if node.args else None) if module_call else func.value
            if scores is not None and value(scores).meaning in (SCORES, LOGITS):
                self.report(
                    node, "softmax-class-dim",
                    "the response is built from a softmax over the model's output: the classes compete for one unit "
                    "of probability, and the top class(es) are served as the answer",
                    "serve torch.sigmoid(logits) and every label above THRESHOLD: "
                    "[[mapping[j] for j in (row > THRESHOLD).nonzero()] for row in probs]",
                    value(scores).line,
                )
        self._old_functional_metric(node, qualified)
        self._logged(node, method)
        if method in ("gt", "ge", "__gt__") and node.args and isinstance(func, ast.Attribute):
            self._threshold(node, func.value, node.args[0])

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

    def _scatter_one_hot(self, node: ast.Call) -> None:
        """``torch.full((B, C), off).scatter_(1, x.view(-1, 1), on)``: one class index per row
        becomes a one-hot row (a vendored ``one_hot``/``mixup_target``)."""
        dim, index = node.args[0], node.args[1]
        if not (isinstance(dim, (ast.Constant, ast.UnaryOp)) and ast.unparse(dim) in ("1", "-1")):
            return
        shaped = index if _is_column(index) else self.analysis.value(index).node
        if shaped is None or not _is_column(shaped):
            return
        if self._scattered_mask(node):
            self.report(
                node, "one-hot-target",
                "one class index per row is scattered into a mask of each image's class (a margin or a "
                "selection by the true class): it marks one class per image",
                "a mask of each image's labels is the multi-hot rows themselves: index = target.bool()",
            )
            return
        # the mixing clause fits where the file mixes or smooths targets (timm's vendored
        # one_hot/mixup_target), not a kNN vote or a margin built from the true class
        mixing = any(
            isinstance(other, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(w in other.name.lower() for w in ("mix", "smooth"))
            for other in ast.walk(self.analysis.tree)
        )
        self.report(
            node, "one-hot-target",
            "one class index per row is scattered into a one-hot row (a one_hot/mixup_target that encodes class "
            "indices): mixed or smoothed, the targets still hold one class per image",
            "build targets from the multi-hot [B, C] labels; mix them directly (lam * y + (1 - lam) * y.flip(0))"
            if mixing else "build the [B, C] rows from the multi-hot labels themselves (y.float()), not from one class index per row",
        )

    def _scattered_mask(self, node: ast.Call) -> bool:
        """The scattered tensor is a mask: made as ``uint8``/``bool`` (``torch.zeros_like(x,
        dtype=torch.uint8)``) or the condition of a ``torch.where`` in the same function."""
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        function = self.analysis.function
        if not isinstance(receiver, ast.Name) or function is None:
            return False
        for inner in ast.walk(function):
            if isinstance(inner, ast.Assign) and any(isinstance(t, ast.Name) and t.id == receiver.id for t in inner.targets):
                if isinstance(inner.value, ast.Call) and any(
                    keyword.arg == "dtype" and isinstance(keyword.value, ast.Attribute) and keyword.value.attr in ("uint8", "bool")
                    for keyword in inner.value.keywords
                ):
                    return True
            if (
                isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "where"
                and inner.args and isinstance(inner.args[0], ast.Name) and inner.args[0].id == receiver.id
            ):
                return True
        return False

    def _serving(self) -> bool:
        function = self.analysis.function
        return function is not None and function.name == sources.POSTPROCESS

    def _gathered_log_probability(self, node: ast.Call, gathered: ast.AST) -> None:
        """``-torch.log(y_hat.gather(1, y.view(-1, 1)))``: the log-probability of one class per
        row, a hand-written cross-entropy."""
        if not (isinstance(gathered, ast.Call) and isinstance(gathered.func, ast.Attribute) and gathered.func.attr == "gather"):
            return
        if len(gathered.args) < 2 or ast.unparse(gathered.args[0]) not in ("1", "-1"):
            return
        index = gathered.args[1]
        if not (_is_column(index) or _is_column(self.analysis.value(index).node or index)):
            return
        self.report(
            node, "single-label-loss",
            "the log-probability of one class per row is gathered (a hand-written cross-entropy): it trains "
            "one label per image",
            "use nn.BCEWithLogitsLoss() on the logits with float multi-hot [B, C] targets",
        )

    def _old_functional_metric(self, node: ast.Call, qualified: str) -> None:
        module, _, name = qualified.rpartition(".")
        if f"{module}." not in tables.OLD_FUNCTIONAL_METRICS or name not in tables.CLASS_METRIC_FUNCTIONS:
            return
        keywords = {k.arg for k in node.keywords}
        if keywords & {"task", "num_labels", "multilabel"}:
            return
        if any(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args):
            return  # the task given positionally
        self.report(
            node, "class-index-metric",
            f"{qualified.replace('pytorch_lightning', 'pl')}() without task= scores class indices "
            "(older releases inferred multiclass from the shapes)",
            'pass task="multilabel", num_labels=C, threshold=THRESHOLD (torchmetrics.functional), on sigmoid outputs',
        )

    def _logged(self, node: ast.Call, method: str) -> None:
        """An arg-max written next to one image: a caption, a table row, a plot title."""
        logged: list[ast.AST] = [k.value for k in node.keywords if k.arg in ("caption", "captions", "data", "title")]
        if method in _LOGGED:
            logged.extend(node.args)
        for expression in logged:
            for part in ast.walk(expression):
                if isinstance(part, (ast.Name, ast.Subscript, ast.Attribute)) and self.analysis.value(part).meaning == ARGMAX:
                    self.report(
                        node, "argmax-logged",
                        "an arg-max prediction (one class per image) is logged with each image",
                        "log every label above the threshold: [classes[j] for j in (probs[i] > THRESHOLD).nonzero()]",
                        self.analysis.value(part).line,
                    )
                    return
        if isinstance(node.func, ast.Name) and node.func.id == "print":
            # the predictions themselves shown to the user, not a score computed from them
            for argument in node.args:
                value = self.analysis.value(argument)
                if isinstance(argument, (ast.Name, ast.Subscript, ast.Attribute)) and value.meaning == ARGMAX:
                    self.report(
                        node, "argmax-logged",
                        f"{ast.unparse(argument)} is printed as the prediction: one arg-max class per image",
                        "print every label above the threshold: (torch.sigmoid(logits) > THRESHOLD).nonzero()",
                        value.line,
                    )
                    return

    # -- comparisons and products

    def _compare(self, node: ast.Compare) -> None:
        if len(node.ops) != 1:
            return
        operator, right = node.ops[0], node.comparators[0]
        if isinstance(operator, (ast.Gt, ast.GtE)):
            self._threshold(node, node.left, right)
        elif isinstance(operator, (ast.Lt, ast.LtE)):
            self._threshold(node, right, node.left)

    def _threshold(self, node: ast.AST, subject: ast.AST, threshold: ast.AST) -> None:
        if isinstance(threshold, ast.Constant):
            if not isinstance(threshold.value, (int, float)) or isinstance(threshold.value, bool) or threshold.value == 0:
                return  # logits > 0 is the 0.5 decision on probabilities
        elif not THRESHOLD_NAME.search(ast.unparse(threshold)):
            return
        value = self.analysis.value(subject)
        meaning = value.meaning
        if meaning == SCORES and (LOGITS_NAME.search(ast.unparse(subject)) or self._fed_to_logits_loss_here(subject)):
            meaning = LOGITS
        if meaning == LOGITS:
            self.report(
                node, "threshold-on-logits",
                f"{ast.unparse(subject)} holds raw logits: a probability threshold ({ast.unparse(threshold)}) "
                "on them decides at a probability of sigmoid(threshold), not at the threshold",
                f"threshold probabilities: torch.sigmoid({ast.unparse(subject)}) > {ast.unparse(threshold)}",
                value.line,
            )
        elif meaning == SOFTMAX:
            self.report(
                node, "threshold-on-softmax",
                "a threshold on softmax probabilities: they sum to 1 over the classes, so at most one label "
                "can pass 0.5 and several labels push each other down",
                "threshold torch.sigmoid(logits), one independent probability per label",
                value.line,
            )

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
            if not self._is_parameter(other_node):
                continue  # a soft target passed in (forward(self, x, target)), not a prior of the module
            self.report(
                node, "soft-target-cross-entropy",
                "a target times log_softmax over the classes: a hand-written (soft-target) cross-entropy, "
                "one label per image however the target is mixed",
                "use BCEWithLogitsLoss (timm.loss.BinaryCrossEntropy) on the logits with float multi-hot targets",
                scores.line,
            )
            return

    def _is_parameter(self, node: ast.AST) -> bool:
        while isinstance(node, (ast.UnaryOp, ast.Call, ast.Attribute)):
            node = node.operand if isinstance(node, ast.UnaryOp) else node.func if isinstance(node, ast.Call) else node.value
        function = self.analysis.function
        if function is None or not isinstance(node, ast.Name):
            return False
        arguments = function.args
        return node.id != "self" and node.id in {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}

    # -- returns and models

    def _returned(self, statement: ast.Return) -> None:
        function = self.analysis.function
        if function is not None and sources.is_model_callee(function.name) and statement.value is not None:
            returned = self.analysis.value(statement.value)
            if returned.meaning == SOFTMAX:
                self.report(
                    statement, "softmax-class-dim",
                    f"{function.name}() is the model and returns softmax probabilities: the labels compete for one "
                    "unit of probability, and a BCE-with-logits loss or a sigmoid applied to them is wrong",
                    f"return the raw scores from {function.name}(); apply torch.sigmoid where probabilities are needed",
                    returned.line,
                )
            return
        if function is None or function.name != "__getitem__":
            return
        for item, value in sources.returned_labels(statement.value, self.analysis.value):
            why = sources.class_index_label(item, value)
            if why:
                self.report(
                    statement, "class-index-source",
                    f"the dataset returns {ast.unparse(item)} as the label: {why}",
                    "return a float multi-hot tensor of shape [C] (1.0 for each label of the image)",
                    value.line,
                )
                return

    def _relu_head(self, statement: ast.Assign) -> None:
        """``self.classifier = nn.Sequential(nn.Linear(d, C), nn.ReLU())``: logits never below 0."""
        call = statement.value
        if not self.multi_label_training or not isinstance(call, ast.Call) or not call.args:
            return
        if not self.analysis.qualified(call.func).endswith("Sequential"):
            return
        last, before = call.args[-1], call.args[-2] if len(call.args) > 1 else None
        if not (isinstance(last, ast.Call) and self.analysis.qualified(last.func).endswith(("ReLU", "ReLU6"))):
            return
        if not (isinstance(before, ast.Call) and self.analysis.qualified(before.func).endswith("Linear")):
            return
        names = [self.analysis.key(target).rpartition(".")[2] for target in statement.targets]
        if not any(HEAD.match(name) or (sources.is_model_callee(name) and not _FEATURES.search(name)) for name in names):
            return  # a backbone or encoder ending in ReLU feeds a head: its features may be non-negative
        self._report_relu(last)

    def _report_relu(self, node: ast.AST) -> None:
        self.report(
            node, "model-output-relu",
            "the model's last op is a ReLU: its logits are never below 0, so sigmoid(logits) is never below 0.5 "
            "and every label is predicted",
            "end the model with the Linear layer (raw logits); apply torch.sigmoid where probabilities are needed",
        )

    def forward_return(self, statement: ast.Return) -> None:
        """``return F.relu(self.fc(x))`` in ``forward``."""
        value = statement.value
        if not self.multi_label_training or not isinstance(value, ast.Call) or len(value.args) != 1:
            return
        func = value.func
        relu = self.analysis.qualified(func) in ("torch.relu", "torch.nn.functional.relu") or (
            isinstance(func, ast.Attribute) and self.analysis.key(func) in ("self.relu", "self.act")
        )
        inner = value.args[0]
        if relu and isinstance(inner, ast.Call) and HEAD.match(self.analysis.key(inner.func).rpartition(".")[2] or "-"):
            if self.analysis.key(inner.func).startswith("self."):
                self._report_relu(value)


def _argument(node: ast.Call, position: int, keywords: tuple[str, ...]) -> ast.AST | None:
    if len(node.args) > position and not any(isinstance(a, ast.Starred) for a in node.args[: position + 1]):
        return node.args[position]
    return next((k.value for k in node.keywords if k.arg in keywords), None)


def _is_float_cast(target: ast.AST) -> bool:
    for node in ast.walk(target):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _CAST_METHODS:
            return True
        if isinstance(node, ast.Attribute) and node.attr in _FLOAT_DTYPES and ast.unparse(node.value) == "torch":
            return True
    return False


def _is_column(node: ast.AST) -> bool:
    """``x.view(-1, 1)``, ``x.unsqueeze(1)``, ``x[:, None]``: one index per row, as a column."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        arguments = [ast.unparse(a) for a in node.args]
        if node.func.attr in ("view", "reshape") and arguments == ["-1", "1"]:
            return True
        if node.func.attr == "unsqueeze" and arguments in (["1"], ["-1"]):
            return True
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
        return [ast.unparse(e) for e in node.slice.elts] == [":", "None"]
    return False


def _own_nodes(statement: ast.stmt):
    """The expressions of ``statement`` itself: not the statements it holds, nor nested functions."""
    stack: list[ast.AST] = []
    for name, field in ast.iter_fields(statement):
        if name in _COMPOUND_FIELDS or name in ("decorator_list", "returns", "args"):
            continue
        if isinstance(field, list):
            stack.extend(item for item in field if isinstance(item, ast.AST))
        elif isinstance(field, ast.AST):
            stack.append(field)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Lambda, ast.stmt)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))
