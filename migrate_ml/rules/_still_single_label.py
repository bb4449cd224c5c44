"""The safety net: find what still means "one label per image" in (already rewritten) code.

The rules fix what they can prove and report what they recognise; this detector is the last
look over a file, independent of them, so that no file ends silently single-label. The engine
runs it once over the text it is about to write (as ML100, for constructs no rule reported at
that line) and ``verify``'s static pass runs it over the code it checks.

It reads CPython's ``ast``, not LibCST: it runs over every candidate file's final text, and
``ast.parse`` plus one walk costs a small fraction of LibCST's parse and metadata resolution.
Names are resolved through the file's own imports (``from torch.nn import CrossEntropyLoss as
CE``, ``import torch.nn.functional as F``), so aliases are followed and a class the file defines
itself is not mistaken for the library's. Values are followed through one function at a time,
in statement order (a name bound to an arg-max, then rebound to a thresholded sigmoid, is a
multi-hot prediction from then on).

It is deliberately conservative about code that is already multi-label: an arg-max only
counts when its result is compared with something or handed to a metric, softmax only when
it is taken over a model's output outside ``forward`` (never attention), and a comparison of a
thresholded prediction only when it is averaged over every element instead of per sample.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["KINDS", "SingleLabelConstruct", "find_single_label", "could_contain_single_label"]

KINDS = (
    "single-label-loss",
    "argmax-compared",
    "argmax-metric",
    "softmax-class-dim",
    "class-index-metric",
    "per-element-accuracy",
    "prediction-item",
    "target-argmax",
    "topk-accuracy",
)
"""The stable ids of what the detector finds (``SingleLabelConstruct.kind``)."""


@dataclass(frozen=True)
class SingleLabelConstruct:
    """One construct that still assumes one label per image."""

    line: int
    """1-based line of the construct's start."""
    column: int
    """1-based column (in characters) of the construct's start."""
    kind: str
    """A stable short id, one of :data:`KINDS`."""
    message: str
    """What is still single-label."""
    suggestion: str
    """The concrete fix to make."""
    related_lines: tuple[int, ...] = field(default=(), compare=False)
    """Other lines the construct is built from (the arg-max a comparison uses): a finding a
    rule made on one of them already covers this construct."""


_TRIGGER = re.compile(
    r"CrossEntropy|cross_entropy|nll_loss|NLLLoss|argmax|\.max\(|topk|softmax|[Aa]ccuracy|multiclass|Multiclass"
    r"|==|\.eq\(|_score\("
)


def could_contain_single_label(text: str) -> bool:
    """Cheap text test: whether the file has any word the detector looks for."""
    return _TRIGGER.search(text) is not None


def find_single_label(module: "object | str") -> list[SingleLabelConstruct]:
    """Every still-single-label construct in ``module`` (a ``libcst.Module`` or source text).

    Text that does not parse yields nothing: the engine and ``verify`` report syntax errors
    themselves.
    """
    text = module if isinstance(module, str) else module.code  # type: ignore[attr-defined]
    if not could_contain_single_label(text):
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    return _Detector(text, tree).run()


# --- what the detector knows, as data -------------------------------------------------------

_LOSSES = {
    "CrossEntropyLoss": "nn.BCEWithLogitsLoss()",
    "NLLLoss": "nn.BCEWithLogitsLoss() on the logits before log_softmax",
    "cross_entropy": "F.binary_cross_entropy_with_logits(logits, targets.float())",
    "nll_loss": "F.binary_cross_entropy_with_logits on the logits before log_softmax, with targets.float()",
    "LabelSmoothingCrossEntropy": "timm.loss.BinaryCrossEntropy(smoothing=...)",
    "SoftTargetCrossEntropy": "timm.loss.BinaryCrossEntropy() on the mixed multi-hot targets",
    "JsdCrossEntropy": "BCE on the clean split (timm.loss.BinaryCrossEntropy), plus a per-label JSD on sigmoid outputs if wanted",
}
_LOSS_ROOTS = ("torch", "timm")
"""Packages whose losses these are; a name the file defines or imports elsewhere is someone else's."""

_ARGMAX_FUNCTIONS = {"argmax"}
_INDEX_PAIR_FUNCTIONS = {"max", "topk"}
"""``torch.max(z, 1)``/``z.max(1)``/``z.topk(k)`` return (values, indices)."""

_PASS_THROUGH_METHODS = frozenset(
    {
        "cpu", "cuda", "detach", "numpy", "tolist", "to", "view", "view_as", "reshape", "squeeze",
        "unsqueeze", "t", "flatten", "float", "long", "int", "bool", "clone", "type", "contiguous",
        "data", "astype", "ravel", "double", "half",
    }
)
_PASS_THROUGH_FUNCTIONS = frozenset(
    {
        "cat", "concatenate", "stack", "vstack", "hstack", "array", "asarray", "tensor", "as_tensor",
        "from_numpy", "list", "gather", "gather_for_metrics", "all_gather", "concat", "squeeze", "flatten",
    }
)
_METRIC_FUNCTION = re.compile(
    r"(^|_)(accuracy|acc|f1|fbeta|precision|recall|jaccard|kappa|matthews|confusion|classification_report"
    r"|score|metric|metrics|auroc|auc)(_|$|\d)",
    re.IGNORECASE,
)
_METRIC_UPDATE_METHODS = frozenset({"update", "add_batch", "add", "compute", "forward"})
_METRIC_PREDICTION_KEYWORDS = frozenset({"predictions", "preds", "y_pred", "pred", "input", "output"})

_NOT_MODEL_OUTPUT = re.compile(
    r"acc|loss|metric|auc|f1|iou|epoch|best|dist|sim|cost|reward|count|len|perf|val_|valid|history|map_",
    re.IGNORECASE,
)
"""Names an arg-max may select from without predicting a class (``np.argmax(val_accuracy)``)."""
_LABEL_NAME = re.compile(r"^(y|y_true|ys|gt|gts|label|labels|target|targets|true|truth|y_batch|one_hot\w*|onehot\w*)$")
_OUTPUT_NAME = re.compile(
    r"^(out|outs|output|outputs|logit|logits|pred|preds|prediction|predictions|y_hat|yhat|y_pred|prob|probs"
    r"|probabilities|class_logits|cls_logits|pred_logits|model_output|model_outputs|net_out)$"
)
_MODEL_CALLEE = re.compile(r"(^|_)(model|net|self|classifier|backbone|vit|teacher|student|ema|encoder)(_|$|\d)", re.IGNORECASE)
_ATTENTION = re.compile(r"att(e)?n|attention|qk|affinity|energy|sim\b|similarity", re.IGNORECASE)
_THRESHOLD_NAME = re.compile(r"thresh", re.IGNORECASE)

_TORCHMETRICS_ROOTS = ("torchmetrics", "pytorch_lightning.metrics", "lightning.pytorch.metrics", "pl.metrics")
_TORCHMETRICS_TASK_METRICS = frozenset(
    {
        "Accuracy", "F1Score", "FBetaScore", "Precision", "Recall", "AUROC", "AveragePrecision",
        "ConfusionMatrix", "Specificity", "StatScores", "CohenKappa", "MatthewsCorrCoef", "JaccardIndex",
        "HammingDistance", "ExactMatch", "CalibrationError", "accuracy", "f1_score", "fbeta_score",
        "precision", "recall", "auroc", "average_precision", "specificity", "stat_scores",
        "confusion_matrix", "F1", "f1",
    }
)
_METRIC_PACKAGES = (*_TORCHMETRICS_ROOTS, "ignite.metrics", "evaluate.load", "datasets.load_metric", "sklearn.metrics")
_IGNITE_MULTILABEL_METRICS = frozenset({"Accuracy", "Precision", "Recall", "ConfusionMatrix"})
_IGNITE_SINGLE_LABEL_ONLY = frozenset({"TopKCategoricalAccuracy"})
_HF_CLASS_METRICS = frozenset({"accuracy", "f1", "precision", "recall"})

_SUGGEST_THRESHOLD = "predict with (torch.sigmoid(logits) > THRESHOLD) — one decision per label — instead of one arg-max class"
_SUGGEST_EXACT_MATCH = (
    "compare whole rows: (preds == labels.bool()).all(dim=1) for exact match, or use per-label metrics "
    "(F1 micro/macro, mAP, Hamming loss)"
)


def _int_constant(node: ast.AST) -> int | None:
    """The value of ``1`` or ``-1`` (a unary minus over a constant in the tree)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_constant(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _binding_key(target: ast.AST) -> str:
    """``name`` or ``self.name``: the targets whose later uses can be followed."""
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        return f"self.{target.attr}"
    return ""


# --- the detector -----------------------------------------------------------------------------

# What a value is known to hold.
CLASS_INDEX = "class-index"
"""One class per sample: an arg-max, ``max(dim)[1]``, ``topk(k)[1]``."""
MULTI_HOT = "multi-hot"
"""A thresholded multi-label prediction: ``torch.sigmoid(z) > t``."""
MODEL_OUTPUT = "model-output"
"""What a model call returned: logits (or probabilities) over classes."""
PAIR = "pair"
"""The (values, indices) pair ``torch.max(z, 1)`` or ``z.topk(k)`` returns."""


@dataclass
class _Record:
    """A construct while the walk goes on: its uses further down add related lines."""

    line: int
    column: int
    kind: str
    message: str
    suggestion: str
    related: set[int]
    bound_to: str = ""
    used: bool = False


_FOLLOWED_KINDS = frozenset({"single-label-loss", "softmax-class-dim", "class-index-metric"})
"""Constructs whose value is used where it is bound (a criterion, probabilities, a metric object):
a finding where that name is used covers them, and so does the line that uses them."""


@dataclass
class _Scope:
    function: str
    class_name: str
    line: int = 0
    """The line of the ``def`` or ``class`` statement."""
    values: dict[str, object] = field(default_factory=dict)
    origins: dict[str, int] = field(default_factory=dict)
    """The line a tracked name got its value on."""


class _Detector(ast.NodeVisitor):
    def __init__(self, text: str, tree: ast.Module) -> None:
        self.lines = text.splitlines()
        self.tree = tree
        self.found: dict[int, _Record] = {}
        self.bound_constructs: dict[str, _Record] = {}
        """Names bound to a loss, a softmax or a metric object that was reported, by name."""
        self.parents: dict[ast.AST, ast.AST] = {}
        self.imports: dict[str, str] = {}
        self.defined: set[str] = set()
        self.scopes: list[_Scope] = [_Scope(function="", class_name="")]
        self.metric_objects: set[str] = set()

    def run(self) -> list[SingleLabelConstruct]:
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.imports[local] = alias.name if alias.asname else local
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defined.add(node.name)
        self.visit(self.tree)
        return self._finish()

    # -- reporting

    def _report(self, node: ast.AST, kind: str, message: str, suggestion: str, related: tuple[int, ...] = ()) -> None:
        line = node.lineno  # type: ignore[attr-defined]
        if line in self.found:
            return  # one construct per line: a second one there adds nothing for a reader
        text = self.lines[line - 1] if line <= len(self.lines) else ""
        # ast counts columns in UTF-8 bytes; findings count characters.
        column = len(text.encode("utf-8")[: node.col_offset].decode("utf-8", errors="replace")) + 1  # type: ignore[attr-defined]
        # A finding on the enclosing def or class (a whole top-k helper, a hand-written loss)
        # covers what is inside it.
        enclosing = {scope.line for scope in self.scopes if scope.line}
        self.found[line] = _Record(line, column, kind, message, suggestion, set(related) | enclosing)

    def _finish(self) -> list[SingleLabelConstruct]:
        constructs = []
        for record in self.found.values():
            if record.kind == "softmax-class-dim" and record.bound_to and not record.used:
                continue  # a softmax whose result is never read (left behind by a loss rewrite) changes nothing
            related = tuple(sorted(record.related - {record.line}))
            constructs.append(
                SingleLabelConstruct(record.line, record.column, record.kind, record.message, record.suggestion, related)
            )
        return sorted(constructs, key=lambda c: (c.line, c.column, c.kind))

    # -- names

    def qualified(self, node: ast.AST) -> str:
        """``torch.nn.CrossEntropyLoss`` for ``nn.CrossEntropyLoss`` after ``import torch.nn as nn``."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return ""
        head = self.imports.get(node.id, node.id)
        return ".".join([head, *reversed(parts)])

    def _scope(self) -> _Scope:
        return self.scopes[-1]

    def lookup(self, name: str) -> tuple[object, int]:
        for scope in reversed(self.scopes):
            if name in scope.values:
                return scope.values[name], scope.origins.get(name, 0)
        return None, 0

    def bind(self, target: ast.AST, value: object, line: int) -> None:
        if isinstance(target, ast.Name):
            scope = self._scope()
            if value is None:
                scope.values.pop(target.id, None)
                scope.origins.pop(target.id, None)
            else:
                scope.values[target.id] = value
                scope.origins[target.id] = line
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = value if isinstance(value, tuple) else None
            if value == PAIR:
                items = (None, CLASS_INDEX)
            for index, element in enumerate(target.elts):
                element_value = items[index] if items is not None and index < len(items) else None
                self.bind(element, element_value, line)
        elif isinstance(target, ast.Starred):
            self.bind(target.value, None, line)

    # -- what an expression holds

    def value_of(self, node: ast.AST) -> tuple[object, int]:
        """(kind, line of origin) of what ``node`` evaluates to, as far as it is tracked."""
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, (ast.Tuple, ast.List)):
            values = [self.value_of(element) for element in node.elts]
            if isinstance(node, ast.List) and len(values) == 1:
                return values[0]
            return tuple(v for v, _ in values), max((line for _, line in values), default=0)
        if isinstance(node, ast.Subscript):
            inner, line = self.value_of(node.value)
            index = node.slice
            if inner == PAIR and _int_constant(index) in (1, -1):
                return CLASS_INDEX, line
            position = _int_constant(index)
            if isinstance(inner, tuple) and position is not None:
                try:
                    return inner[position], line
                except IndexError:
                    return None, 0
            if inner in (CLASS_INDEX, MULTI_HOT):
                return inner, line
            if inner == MODEL_OUTPUT and not isinstance(index, ast.Constant):
                return MODEL_OUTPUT, line
            return None, 0
        if isinstance(node, ast.Attribute):
            if node.attr == "indices":
                inner, line = self.value_of(node.value)
                return (CLASS_INDEX, line) if inner == PAIR else (None, 0)
            if node.attr in ("data", "T"):
                return self.value_of(node.value)
            if node.attr == "logits":
                return MODEL_OUTPUT, node.lineno
            return None, 0
        if isinstance(node, ast.Compare):
            return (MULTI_HOT, node.lineno) if self._is_thresholded(node) else (None, 0)
        if isinstance(node, ast.Call):
            return self._call_value(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.BitAnd, ast.BitOr)):
            left, line = self.value_of(node.left)
            return (left, line) if left == MULTI_HOT else (None, 0)
        return None, 0

    def _call_value(self, node: ast.Call) -> tuple[object, int]:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        receiver = func.value if isinstance(func, ast.Attribute) else None
        if receiver is None and name not in self.imports:
            pass  # the builtin max() or the file's own argmax(), not torch's or NumPy's
        elif name in _ARGMAX_FUNCTIONS:
            subject = receiver if receiver is not None and not self._is_module(receiver) else (node.args[0] if node.args else None)
            if subject is not None and self._predicts_a_class(subject):
                return CLASS_INDEX, node.lineno
            return None, 0
        elif name in _INDEX_PAIR_FUNCTIONS:
            on_module = receiver is None or self._is_module(receiver)
            subject = node.args[0] if on_module and node.args else receiver
            dims = node.args[1:] if on_module else node.args
            has_dim = bool(dims) or any(k.arg in ("dim", "k") for k in node.keywords) or name == "topk"
            if subject is not None and has_dim and self._predicts_a_class(subject):
                return PAIR, node.lineno
            return None, 0
        if name == "round":
            subject = receiver if receiver is not None and not self._is_module(receiver) else (node.args[0] if node.args else None)
            if subject is not None and self._is_sigmoid(subject):
                return MULTI_HOT, node.lineno
        if name in ("gt", "ge") and receiver is not None and self._is_sigmoid(receiver):
            return MULTI_HOT, node.lineno
        if name in _PASS_THROUGH_METHODS and receiver is not None and not self._is_module(receiver):
            return self.value_of(receiver)
        if name in _PASS_THROUGH_FUNCTIONS and node.args:
            return self.value_of(node.args[0])
        if self._is_model_call(node):
            return MODEL_OUTPUT, node.lineno
        return None, 0

    def _is_module(self, node: ast.AST) -> bool:
        qualified = self.qualified(node)
        return qualified.split(".")[0] in ("torch", "numpy", "np", "F", "jnp", "tf")

    def _root_name(self, node: ast.AST) -> str:
        while True:
            if isinstance(node, ast.Attribute):
                if node.attr not in _PASS_THROUGH_METHODS and node.attr not in ("logits",):
                    return node.attr
                node = node.value
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr in _PASS_THROUGH_METHODS | {"softmax", "sigmoid", "log_softmax"}:
                    node = func.value
                elif node.args and self.qualified(func).split(".")[-1] in {"softmax", "log_softmax", "sigmoid", *_PASS_THROUGH_FUNCTIONS}:
                    node = node.args[0]
                else:
                    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                    return name
            elif isinstance(node, ast.Subscript):
                node = node.value
            elif isinstance(node, ast.Name):
                return node.id
            else:
                return ""

    def _predicts_a_class(self, subject: ast.AST) -> bool:
        """An arg-max over this selects a class: not a list of accuracies, not the labels."""
        root = self._root_name(subject)
        if _LABEL_NAME.match(root):
            return False
        return not (root and _NOT_MODEL_OUTPUT.search(root))

    def _is_sigmoid(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("sigmoid", "expit"):
                return True
            if name in _PASS_THROUGH_METHODS and isinstance(func, ast.Attribute):
                return self._is_sigmoid(func.value)
        if isinstance(node, ast.Name):
            return bool(re.search(r"prob|sigm|score", node.id, re.IGNORECASE)) and self.lookup(node.id)[0] != CLASS_INDEX
        return False

    def _is_thresholded(self, node: ast.Compare) -> bool:
        if len(node.ops) != 1 or not isinstance(node.ops[0], (ast.Gt, ast.GtE)):
            return False
        right = node.comparators[0]
        threshold = (isinstance(right, ast.Name) and _THRESHOLD_NAME.search(right.id)) or (
            isinstance(right, ast.Attribute) and _THRESHOLD_NAME.search(right.attr)
        )
        return bool(threshold) or self._is_sigmoid(node.left)

    def _is_model_call(self, node: ast.Call) -> bool:
        func = node.func
        if isinstance(func, ast.Name):
            return bool(_MODEL_CALLEE.search(func.id)) and func.id not in self.defined
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            return bool(_MODEL_CALLEE.search(func.attr))
        return False

    def _model_output_like(self, node: ast.AST) -> bool:
        value, _ = self.value_of(node)
        if value == MODEL_OUTPUT:
            return True
        if isinstance(node, ast.Call) and self._is_model_call(node):
            return True
        root = self._root_name(node)
        return bool(_OUTPUT_NAME.match(root)) and value is None and not _ATTENTION.search(root)

    # -- scopes and statements

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for child in node.bases + node.keywords + node.decorator_list:
            self.visit(child)
        self.scopes.append(_Scope(function=self._scope().function, class_name=node.name, line=node.lineno))
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in node.decorator_list:
            self.visit(child)
        self.visit(node.args)
        self.scopes.append(_Scope(function=node.name, class_name=self._scope().class_name, line=node.lineno))
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Assign(self, node: ast.Assign) -> None:
        before = set(self.found)
        self.visit(node.value)
        value, line = self.value_of(node.value)
        for target in node.targets:
            self.visit(target)
            self.bind(target, value, line or node.lineno)
        self._note_metric_object(node.targets, node.value)
        self._follow(node.targets, [self.found[line] for line in set(self.found) - before])

    def _follow(self, targets, records: list[_Record]) -> None:
        """Bind the names a reported criterion, softmax or metric object is assigned to."""
        for target in targets:
            key = _binding_key(target)
            if not key:
                continue
            self.bound_constructs.pop(key, None)
            for record in records:
                if record.kind in _FOLLOWED_KINDS:
                    record.bound_to = key
                    self.bound_constructs[key] = record

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._used(node.id, node.lineno)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            key = _binding_key(node)
            if key:
                self._used(key, node.lineno)

    def _used(self, key: str, line: int) -> None:
        record = self.bound_constructs.get(key)
        if record is not None and line != record.line:
            record.used = True
            record.related.add(line)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            before = set(self.found)
            self.visit(node.value)
            value, line = self.value_of(node.value)
            self.bind(node.target, value, line or node.lineno)
            self._note_metric_object([node.target], node.value)
            self._follow([node.target], [self.found[line] for line in set(self.found) - before])

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self.visit(node.target)
        value, line = self.value_of(node.value)
        if value in (CLASS_INDEX, MULTI_HOT) and isinstance(node.target, ast.Name):
            self.bind(node.target, value, line)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        value, line = self.value_of(node.iter)
        if isinstance(node.iter, ast.Call) and isinstance(node.iter.func, ast.Name) and node.iter.func.id == "zip":
            parts = [self.value_of(arg) for arg in node.iter.args]
            value, line = tuple(v for v, _ in parts), max((ln for _, ln in parts), default=0)
        self.bind(node.target, value if value != MODEL_OUTPUT else None, line)
        for statement in node.body + node.orelse:
            self.visit(statement)

    visit_AsyncFor = visit_For  # type: ignore[assignment]

    def visit_Expr(self, node: ast.Expr) -> None:
        self.generic_visit(node)
        call = node.value
        # preds.append(p) / preds.extend(p): the list holds what was appended.
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in ("append", "extend")
            and isinstance(call.func.value, ast.Name)
            and call.args
        ):
            value, line = self.value_of(call.args[0])
            if value in (CLASS_INDEX, MULTI_HOT):
                self.bind(call.func.value, value, line)

    def _note_metric_object(self, targets, value: ast.AST) -> None:
        """Remember names bound to metric objects, so that ``acc(preds, y)`` is a metric call."""
        if isinstance(value, ast.Call) and self.qualified(value.func).startswith(_METRIC_PACKAGES):
            for target in targets:
                if isinstance(target, ast.Name):
                    self.metric_objects.add(target.id)
                elif isinstance(target, ast.Attribute):
                    self.metric_objects.add(target.attr)

    # -- constructs

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        self._check_loss(node)
        self._check_argmax_on_labels(node)
        self._check_softmax(node)
        self._check_class_metric(node)
        self._check_metric_inputs(node)
        self._check_eq_method(node)
        self._check_item(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        self.generic_visit(node)
        if not any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            return
        equal = all(isinstance(op, ast.Eq) for op in node.ops)
        self._check_equality(node, [node.left, *node.comparators], equal)

    def _check_equality(self, node: ast.AST, operands: list[ast.AST], equal: bool) -> None:
        """An arg-max compared with anything but a constant; a multi-hot ``==`` averaged over all entries.

        ``!=`` averaged over all entries is the Hamming loss, a multi-label metric: left alone.
        """
        values = [self.value_of(operand) for operand in operands]
        constants = [isinstance(operand, ast.Constant) for operand in operands]
        if any(constants):
            return
        index_lines = [line for value, line in values if value == CLASS_INDEX]
        if index_lines:
            self._report(
                node,
                "argmax-compared",
                "an arg-max (one class per image) is compared with the labels; with multi-hot labels this "
                "compares a class index with a [B, C] row",
                f"{_SUGGEST_THRESHOLD}, then {_SUGGEST_EXACT_MATCH}",
                tuple(index_lines),
            )
            return
        multi_hot_lines = [line for value, line in values if value == MULTI_HOT]
        if multi_hot_lines and equal and self._averaged_over_every_element(node):
            self._report(
                node,
                "per-element-accuracy",
                "a thresholded multi-label prediction is compared element by element and averaged over all "
                "B x C entries (label-wise accuracy, dominated by negatives; a count over B images exceeds 100 %)",
                "reduce per image first: (preds == labels.bool()).all(dim=1) for exact match, or report F1/mAP/Hamming loss",
                tuple(multi_hot_lines),
            )

    def _averaged_over_every_element(self, node: ast.AST) -> bool:
        """Whether the comparison is summed or averaged without reducing each row (``.all(1)``) first."""
        current = node
        while True:
            parent = self.parents.get(current)
            if isinstance(parent, ast.Attribute) and parent.value is current:
                call = self.parents.get(parent)
                if not isinstance(call, ast.Call) or call.func is not parent:
                    return False
                method = parent.attr
                if method in ("all", "any", "prod"):
                    return False
                if method in ("sum", "mean", "count_nonzero"):
                    return not call.args and not call.keywords
                if method in _PASS_THROUGH_METHODS or method in ("squeeze", "item"):
                    current = call
                    continue
                return False
            if isinstance(parent, ast.Call) and current in parent.args:
                name = self.qualified(parent.func).split(".")[-1]
                if name in ("sum", "mean", "count_nonzero", "average"):
                    return len(parent.args) == 1 and not parent.keywords
                if name in ("float", "int") and isinstance(parent.func, ast.Name):
                    return False
                return False
            return False

    def _check_eq_method(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("eq", "ne", "equal") and node.args:
            if self._is_module(func.value):
                if len(node.args) >= 2:
                    self._check_equality(node, list(node.args[:2]), func.attr != "ne")
            else:
                self._check_equality(node, [func.value, node.args[0]], func.attr != "ne")

    def _check_loss(self, node: ast.Call) -> None:
        qualified = self.qualified(node.func)
        name = qualified.split(".")[-1]
        if name not in _LOSSES:
            return
        head = qualified.split(".")[0]
        own = isinstance(node.func, ast.Name) and node.func.id in self.defined and node.func.id not in self.imports
        if own or head not in (*_LOSS_ROOTS, "nn", "F"):
            return
        self._report(
            node,
            "single-label-loss",
            f"{name} is a single-label loss: softmax over classes, one class index per image",
            f"use {_LOSSES[name]}",
        )

    def _check_argmax_on_labels(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name not in ("argmax", "max"):
            return
        receiver = func.value if isinstance(func, ast.Attribute) else None
        on_module = receiver is None or self._is_module(receiver)
        subject = node.args[0] if on_module and node.args else receiver
        dims = (node.args[1:] if on_module else node.args) or [k.value for k in node.keywords if k.arg in ("dim", "axis")]
        if subject is None or not dims:
            return
        if name == "max" and not self._takes_indices(node):
            return
        root = self._root_name(subject)
        if not _LABEL_NAME.match(root):
            return
        self._report(
            node,
            "target-argmax",
            f"{root} is collapsed to one class index per image; multi-hot targets have several",
            f"keep {root} as the float multi-hot [B, C] tensor and compare or score whole rows",
        )

    def _takes_indices(self, node: ast.Call) -> bool:
        parent = self.parents.get(node)
        if isinstance(parent, ast.Subscript) and _int_constant(parent.slice) in (1, -1):
            return True
        if isinstance(parent, ast.Attribute) and parent.attr == "indices":
            return True
        if isinstance(parent, ast.Assign) and isinstance(parent.targets[0], ast.Tuple):
            elements = parent.targets[0].elts
            return len(elements) == 2 and not (isinstance(elements[1], ast.Name) and elements[1].id == "_")
        return False

    def _check_softmax(self, node: ast.Call) -> None:
        func = node.func
        qualified = self.qualified(func)
        name = qualified.split(".")[-1]
        if name not in ("softmax", "log_softmax"):
            return
        scope = self._scope()
        if scope.function.startswith("forward") or scope.function in ("__init__", "__call__"):
            return
        if _ATTENTION.search(scope.function) or _ATTENTION.search(scope.class_name):
            return
        method = isinstance(func, ast.Attribute) and not self._is_module(func.value)
        subject = func.value if method else (node.args[0] if node.args else None)
        if subject is None or any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult) for n in ast.walk(subject)):
            return
        if not self._model_output_like(subject):
            return
        if name == "softmax":
            message = "softmax over the classes makes the labels compete for one unit of probability"
            suggestion = "use torch.sigmoid(logits): one independent probability per label"
        else:
            message = "log_softmax over the classes normalises the labels against each other (a single-label log-likelihood)"
            suggestion = "keep the raw logits and use BCEWithLogitsLoss / torch.sigmoid(logits)"
        self._report(node, "softmax-class-dim", message, suggestion)

    def _metric_kind(self, node: ast.Call) -> str | None:
        """Why a metric construction counts class indices, or None when it is multi-label."""
        qualified = self.qualified(node.func)
        parts = qualified.split(".")
        name = parts[-1]
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        task = keywords.get("task")
        task_value = task.value if isinstance(task, ast.Constant) else None
        if qualified.startswith(_TORCHMETRICS_ROOTS):
            if name.startswith("Multiclass") or name.startswith("multiclass_"):
                return f"torchmetrics {name} scores one class index per image"
            if name in _TORCHMETRICS_TASK_METRICS:
                if task_value == "multiclass":
                    return f'torchmetrics {name}(task="multiclass") scores one class index per image'
                if task is None and "num_labels" not in keywords and parts[-2:-1] != ["functional"] and name[0].isupper():
                    return f"torchmetrics {name}() without task= scores class indices"
            return None
        if qualified.startswith("ignite.metrics"):
            if name in _IGNITE_SINGLE_LABEL_ONLY:
                return f"ignite {name} ranks one true class per image"
            if name in _IGNITE_MULTILABEL_METRICS:
                flag = keywords.get("is_multilabel")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    return f"ignite {name}() without is_multilabel=True expects one class index per image"
            return None
        if qualified in ("evaluate.load", "datasets.load_metric") and node.args:
            first = node.args[0]
            config = node.args[1] if len(node.args) > 1 else keywords.get("config_name")
            if (
                isinstance(first, ast.Constant)
                and first.value in _HF_CLASS_METRICS
                and not (isinstance(config, ast.Constant) and config.value == "multilabel")
            ):
                return f'evaluate.load("{first.value}") without the "multilabel" configuration expects one class per example'
        return None

    def _check_class_metric(self, node: ast.Call) -> None:
        why = self._metric_kind(node)
        if why is not None:
            self._report(
                node,
                "class-index-metric",
                why,
                'use the multi-label form: torchmetrics task="multilabel", num_labels=C, threshold=THRESHOLD '
                '(MultilabelAccuracy/F1Score/AveragePrecision); ignite is_multilabel=True; evaluate.load(name, "multilabel")',
            )
            return
        keywords = {k.arg for k in node.keywords}
        name = self.qualified(node.func).split(".")[-1]
        if "topk" in keywords and _METRIC_FUNCTION.search(name):
            self._report(
                node,
                "topk-accuracy",
                "top-k accuracy ranks one true class per image; it has no multi-label meaning",
                "replace it with thresholded metrics: exact match, F1 (micro/macro), mAP",
            )

    def _check_metric_inputs(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        receiver_name = ""
        if isinstance(func, ast.Attribute):
            receiver = func.value
            receiver_name = receiver.attr if isinstance(receiver, ast.Attribute) else receiver.id if isinstance(receiver, ast.Name) else ""
        is_metric = (
            bool(_METRIC_FUNCTION.search(name))
            or name in self.metric_objects
            or (name in _METRIC_UPDATE_METHODS and (receiver_name in self.metric_objects or bool(_METRIC_FUNCTION.search(receiver_name))))
        )
        if not is_metric:
            return
        arguments = [*node.args, *(k.value for k in node.keywords if k.arg in _METRIC_PREDICTION_KEYWORDS)]
        lines = [line for value, line in (self.value_of(argument) for argument in arguments) if value == CLASS_INDEX]
        if lines:
            self._report(
                node,
                "argmax-metric",
                f"{name} is given arg-max class indices (one label per image)",
                f"{_SUGGEST_THRESHOLD}, and pass those multi-hot rows (with multi-hot labels) to a multi-label metric",
                tuple(lines),
            )

    def _check_item(self, node: ast.Call) -> None:
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr == "item" and not node.args):
            return
        subject = func.value
        if not isinstance(subject, ast.Subscript):
            return
        value, line = self.value_of(subject.value)
        if value not in (CLASS_INDEX, MULTI_HOT):
            return
        self._report(
            node,
            "prediction-item",
            "a per-sample .item() takes one number per image; a multi-label prediction is a row of C decisions",
            "collect whole rows instead (preds.tolist() / torch.cat of [B, C] batches)",
            (line,),
        )

