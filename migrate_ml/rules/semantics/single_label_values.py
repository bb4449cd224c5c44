"""What values hold, for the safety net: one pass over a function's statements, in order.

``ValueTracker`` walks CPython's ``ast`` and knows, for each name in the function being walked,
whether it holds one class index per sample (an arg-max, ``max(dim)[1]``, ``topk(k)[1]``), a
thresholded multi-label prediction (``torch.sigmoid(z) > t``) or a model's output. Values are
followed through the forms training code moves predictions with: ``.cpu()``/``.detach()``/
``.numpy()``/``.tolist()``, ``torch.cat``/``np.concatenate`` of accumulated lists,
``accelerator.gather_for_metrics((preds, labels))`` and tuple unpacking, ``zip`` loops and
``list.append``. Names are resolved through the file's own imports, so ``import numpy as np``
and ``from torch import argmax`` both count and a file's own ``argmax`` or the builtin ``max``
do not. ``semantics/residue/`` builds its checks on it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from migrate_ml.rules._prefilter import nodes_of, parent_links
from migrate_ml.rules.semantics.names import imported_names, qualified_name


def equality_operands(node: ast.AST) -> tuple[ast.AST, ast.AST] | None:
    """The two sides of an equality test, written ``a == b`` or ``a.eq(b)``; None for anything else."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
        return node.left, node.comparators[0]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "eq" and len(node.args) == 1:
        return node.func.value, node.args[0]
    return None

# What a value is known to hold.
CLASS_INDEX = "class-index"
"""One class per sample: an arg-max, ``max(dim)[1]``, ``topk(k)[1]``."""
MULTI_HOT = "multi-hot"
"""A thresholded multi-label prediction: ``torch.sigmoid(z) > t``."""
MODEL_OUTPUT = "model-output"
"""What a model call returned: logits (or probabilities) over classes."""
MATCHES = "matches"
"""``preds == labels`` element by element, for thresholded predictions: [B, C] booleans."""
PAIR = "pair"
"""The (values, indices) pair ``torch.max(z, 1)`` or ``z.topk(k)`` returns."""

ARGMAX_FUNCTIONS = {"argmax"}
INDEX_PAIR_FUNCTIONS = {"max", "topk"}
"""``torch.max(z, 1)``/``z.max(1)``/``z.topk(k)`` return (values, indices)."""

PASS_THROUGH_METHODS = frozenset(
    {
        "cpu", "cuda", "detach", "numpy", "tolist", "to", "view", "view_as", "reshape", "squeeze",
        "unsqueeze", "t", "flatten", "float", "long", "int", "bool", "clone", "type", "contiguous",
        "data", "astype", "ravel", "double", "half",
    }
)
PASS_THROUGH_FUNCTIONS = frozenset(
    {
        "cat", "concatenate", "stack", "vstack", "hstack", "array", "asarray", "tensor", "as_tensor",
        "from_numpy", "list", "gather", "gather_for_metrics", "all_gather", "concat", "squeeze", "flatten", "reshape",
    }
)
_JOINING_FUNCTIONS = frozenset({"cat", "concatenate", "concat", "stack", "vstack", "hstack"})
_GATHERING_HELPER = re.compile(r"(?:^|_)(?:concat|gather)(?:_|$)")
"""A helper named as a join across processes (``distributed_concat``, ``concat_all_gather``): it
returns its first argument's rows from every process, with the same meaning."""

NOT_MODEL_OUTPUT = re.compile(
    r"acc|loss|metric|auc|f1|iou|epoch|best|dist|sim|cost|reward|count|len|perf|val_|valid|history|map_",
    re.IGNORECASE,
)
"""Names an arg-max may select from without predicting a class (``np.argmax(val_accuracy)``)."""
LABEL_NAME = re.compile(r"^(y|y_true|ys|gt|gts|label|labels|target|targets|true|truth|y_batch|one_hot\w*|onehot\w*)$")
OUTPUT_NAME = re.compile(
    r"^(out|outs|output|outputs|logit|logits|pred|preds|prediction|predictions|y_hat|yhat|y_pred|prob|probs"
    r"|probabilities|class_logits|cls_logits|pred_logits|model_output|model_outputs|net_out"
    r"|(student|teacher|s|t)_(logits|out|outs|output|outputs))$"
)
MODEL_CALLEE = re.compile(r"(^|_)(model|net|self|classifier|backbone|vit|teacher|student|ema|encoder)(_|$|\d)", re.IGNORECASE)
SEGMENTATION_MODEL = re.compile(r"(^|_)(seg|segment\w*|unet|deeplab\w*)(_|$|\d)", re.IGNORECASE)
"""``seg_model``, ``self.segmentation_net``, ``unet``: a segmentation model's outputs are per-pixel
scores [B, C, H, W], and their arg-max over dim 1 is a mask, not one class per image."""
ATTENTION = re.compile(r"att(e)?n|attention|qk|affinity|energy|sim\b|similarity", re.IGNORECASE)
THRESHOLD_NAME = re.compile(r"thresh", re.IGNORECASE)


def int_constant(node: ast.AST) -> int | None:
    """The value of ``1`` or ``-1`` (a unary minus over a constant in the tree)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = int_constant(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


RESHAPED = re.compile(r"\b(?:squeeze|unsqueeze|flatten|ravel|view|reshape|select|permute|transpose)\(|\.T\b|\[[^\[\]:]*\]")
"""A squeeze, reshape or integer index: what was [B, C] may now be one sample's [C]."""


def off_the_class_axis(axis: ast.AST | None, subject: ast.AST | None, scope: ast.AST | None) -> bool:
    """A literal ``axis`` of a softmax or an arg-max that is not the class axis of [B, C] scores:
    0 where ``subject`` (and every value its name is bound to in ``scope``) is as a model or a
    batch gives it, with no squeeze, reshape or index on the way (``torch.squeeze(model(img))``
    is one image's [C], whose axis 0 is the classes); any literal but 1 and -1 below that."""
    value = int_constant(axis) if axis is not None else None
    if value is None or value in (1, -1):
        return False
    if value != 0:
        return True
    if subject is None or RESHAPED.search(ast.unparse(subject)):
        return False
    if isinstance(subject, ast.Name):
        if scope is None or _iterated(subject.id, scope):
            return False
        return not any(
            isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign))
            and any(isinstance(t, ast.Name) and t.id == subject.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
            and (node.value is None or RESHAPED.search(ast.unparse(node.value)))
            for node in ast.walk(scope)
        )
    return True


def _iterated(name: str, scope: ast.AST) -> bool:
    """``for output in outputs`` or ``[F.softmax(output, dim=0) for output in outputs]``: ``name`` is
    one sample's [C] row of a batch, whose axis 0 is the classes."""
    return any(
        isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension))
        and any(isinstance(t, ast.Name) and t.id == name for t in ast.walk(node.target))
        for node in ast.walk(scope)
    )


@dataclass
class Scope:
    function: str
    class_name: str
    line: int = 0
    """The line of the ``def`` or ``class`` statement."""
    values: dict[str, object] = field(default_factory=dict)
    origins: dict[str, int] = field(default_factory=dict)
    """The line a tracked name got its value on."""


class ValueTracker(ast.NodeVisitor):
    """Walks a module in statement order, one scope per function, tracking what names hold."""

    def __init__(self, tree: ast.Module, seeds: dict[str, dict[int | str, tuple[str, int]]] | None = None) -> None:
        self.tree = tree
        self.seeds = seeds or {}
        """Function name -> {parameter position or keyword: (value, line of the call)}: parameters
        that some call in this file passes a thresholded prediction or an arg-max to (found by an
        earlier walk)."""
        self.parents = parent_links(tree)
        self.imports = imported_names(nodes_of(tree, ast.Import, ast.ImportFrom))
        """Local name -> what it was imported as (``nn`` -> ``torch.nn``), every import of the file."""
        self.defined = {node.name for node in nodes_of(tree, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)}
        """Functions and classes the file defines itself."""
        self.scopes: list[Scope] = [Scope(function="", class_name="")]
        self.ranked_lines: set[int] = set()
        """Lines of a top-k (k other than 1) or a sort over the classes: their indices rank every
        class of a sample, so a comparison with the label is top-k accuracy, not one prediction."""

    # -- names

    def qualified(self, node: ast.AST) -> str:
        return qualified_name(node, self.imports)

    def scope(self) -> Scope:
        return self.scopes[-1]

    def lookup(self, name: str) -> tuple[object, int]:
        for scope in reversed(self.scopes):
            if name in scope.values:
                return scope.values[name], scope.origins.get(name, 0)
        return None, 0

    def bind(self, target: ast.AST, value: object, line: int) -> None:
        if isinstance(target, ast.Name):
            scope = self.scope()
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
            elif value == MODEL_OUTPUT:
                items = (MODEL_OUTPUT,)  # logits, attn = model(x): the logits come first
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
            if inner == PAIR and int_constant(index) in (1, -1):
                return CLASS_INDEX, line
            position = int_constant(index)
            if isinstance(inner, tuple) and position is not None:
                try:
                    return inner[position], line
                except IndexError:
                    return None, 0
            if inner in (CLASS_INDEX, MULTI_HOT):
                return inner, line
            # ``z[0]``: the first image of a batch of one (ODIN scores images one at a time), or the
            # logits first in a model's output tuple; other constant positions are auxiliary outputs.
            if inner == MODEL_OUTPUT and (not isinstance(index, ast.Constant) or position == 0):
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
            if self.is_thresholded(node):
                return MULTI_HOT, node.lineno
            if len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
                sides = [self.value_of(side) for side in (node.left, node.comparators[0])]
                lines = [line for value, line in sides if value == MULTI_HOT]
                if lines:
                    return MATCHES, lines[0]
            return None, 0
        if isinstance(node, ast.Call):
            return self.call_value(node)
        if isinstance(node, ast.IfExp):
            return self._either_value(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            # ``logits_a + logits_b``: outputs summed over test-time augmentations or an ensemble.
            left, right = self.value_of(node.left), self.value_of(node.right)
            return left if left[0] == right[0] == MODEL_OUTPUT else (None, 0)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant):
            left, line = self.value_of(node.left)  # ``total / n_tta``: the averaged outputs
            return (left, line) if left == MODEL_OUTPUT else (None, 0)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and _is_max_shift(node.right):
            # ``z - np.max(z)``: logits shifted for a numerically stable softmax are still logits.
            left, line = self.value_of(node.left)
            return (left, line) if left == MODEL_OUTPUT else (None, 0)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.BitAnd, ast.BitOr)):
            left, line = self.value_of(node.left)
            return (left, line) if left == MULTI_HOT else (None, 0)
        return None, 0

    def _either_value(self, node: ast.IfExp) -> tuple[object, int]:
        """What both branches hold; or the model output of a running sum started by one branch
        (``out if total is None else total + out``: test-time augmentation summed step by step)."""
        body, orelse = self.value_of(node.body), self.value_of(node.orelse)
        if body[0] == orelse[0]:
            return body
        for value, other in ((body, node.orelse), (orelse, node.body)):
            if (
                value[0] == MODEL_OUTPUT
                and isinstance(other, ast.BinOp)
                and isinstance(other.op, ast.Add)
                and MODEL_OUTPUT in (self.value_of(other.left)[0], self.value_of(other.right)[0])
            ):
                return value
        return None, 0

    def call_value(self, node: ast.Call) -> tuple[object, int]:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        receiver = func.value if isinstance(func, ast.Attribute) else None
        subject = self.index_subject(node)
        if subject is None and name == "sort":
            subject = self.sorted_subject(node)
        if subject is not None and self.predicts_a_class(subject):
            if name == "sort" or name == "topk" and self.k_of_topk(node) != 1:
                self.ranked_lines.add(node.lineno)
            return (CLASS_INDEX if name in ARGMAX_FUNCTIONS else PAIR), node.lineno
        if name == "round":
            subject = receiver if receiver is not None and not self.is_module(receiver) else (node.args[0] if node.args else None)
            if subject is not None and self.is_sigmoid(subject):
                return MULTI_HOT, node.lineno
        if name in ("gt", "ge") and receiver is not None and self.is_sigmoid(receiver):
            return MULTI_HOT, node.lineno
        if name in PASS_THROUGH_METHODS and receiver is not None and not self.is_module(receiver):
            return self.value_of(receiver)
        if name == "item" and receiver is not None and not node.args:
            # the arg-max of one image as a Python int (``pred.argmax(dim=1).item()``) is still its class
            inner, line = self.value_of(receiver)
            return (inner, line) if inner == CLASS_INDEX else (None, 0)
        if (name in PASS_THROUGH_FUNCTIONS or _GATHERING_HELPER.search(name)) and node.args:
            joined = node.args[0]
            if name in _JOINING_FUNCTIONS and isinstance(joined, (ast.Tuple, ast.List)) and len(joined.elts) > 1:
                # ``torch.cat((preds, outputs.data.cpu()))``: the batches of model outputs gathered so far
                values = [self.value_of(element) for element in joined.elts]
                if {value for value, _ in values} <= {MODEL_OUTPUT, None} and any(value == MODEL_OUTPUT for value, _ in values):
                    return MODEL_OUTPUT, max(line for value, line in values if value == MODEL_OUTPUT)
            return self.value_of(node.args[0])
        if self.is_model_call(node):
            return MODEL_OUTPUT, node.lineno
        return None, 0

    def index_subject(self, node: ast.Call) -> ast.AST | None:
        """What an arg-max (``z.argmax(1)``, ``np.argmax(z, axis=1)``) or an index pair
        (``torch.max(z, 1)``, ``z.topk(k)``) is taken over; None for other calls, for
        ``max`` without a dimension (a value) and for the builtin ``max`` or a file's own
        ``argmax``."""
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        receiver = func.value if isinstance(func, ast.Attribute) else None
        if name not in ARGMAX_FUNCTIONS and name not in INDEX_PAIR_FUNCTIONS:
            return None
        if receiver is None and name not in self.imports:
            return None
        on_module = receiver is None or self.is_module(receiver)
        # ``np.argmax(a=p, axis=1)``, ``torch.argmax(input=z, dim=1)``: the scores given by keyword
        given = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg in ("a", "input")), None)
        subject = given if on_module else receiver
        if name in INDEX_PAIR_FUNCTIONS and name != "topk":
            dims = node.args[1:] if on_module else node.args
            if not dims and not any(k.arg in ("dim", "axis") for k in node.keywords):
                return None
        return subject

    def sorted_subject(self, node: ast.Call) -> ast.AST | None:
        """What ``torch.sort(z, descending=True)`` or ``z.sort(1, True)`` sorts along the class axis
        (the last, by default): its (values, indices) rank the classes of each row. NumPy's sort
        returns the values alone, and a list's ``sort()`` returns nothing."""
        func = node.func
        if not isinstance(func, ast.Attribute):
            return None
        on_module = self.is_module(func.value)
        if on_module and self.qualified(func) != "torch.sort":
            return None
        dims = node.args[1:2] if on_module else node.args[:1]
        dim = dims[0] if dims else next((k.value for k in node.keywords if k.arg == "dim"), None)
        if dim is not None and int_constant(dim) not in (1, -1):
            return None
        return (node.args[0] if node.args else None) if on_module else func.value

    def k_of_topk(self, node: ast.Call) -> int | None:
        """The literal k of ``z.topk(k)``/``torch.topk(z, k)`` (None when it is computed)."""
        on_module = not isinstance(node.func, ast.Attribute) or self.is_module(node.func.value)
        positional = node.args[1:2] if on_module else node.args[:1]
        k = positional[0] if positional else next((keyword.value for keyword in node.keywords if keyword.arg == "k"), None)
        return int_constant(k) if k is not None else None

    def is_module(self, node: ast.AST) -> bool:
        qualified = self.qualified(node)
        return qualified.split(".")[0] in ("torch", "numpy", "np", "F", "jnp", "tf")

    def root_name(self, node: ast.AST) -> str:
        while True:
            if isinstance(node, ast.Attribute):
                if node.attr not in PASS_THROUGH_METHODS and node.attr not in ("logits",):
                    return node.attr
                node = node.value
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr in PASS_THROUGH_METHODS | {"softmax", "sigmoid", "log_softmax"}:
                    node = func.value
                elif node.args and self.qualified(func).split(".")[-1] in {"softmax", "log_softmax", "sigmoid", *PASS_THROUGH_FUNCTIONS}:
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

    def predicts_a_class(self, subject: ast.AST) -> bool:
        """An arg-max over this selects a class: not a list of accuracies, not the labels."""
        root = self.root_name(subject)
        if LABEL_NAME.match(root):
            return False
        return not (root and NOT_MODEL_OUTPUT.search(root))

    def is_sigmoid(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("sigmoid", "expit"):
                return True
            if name in PASS_THROUGH_METHODS and isinstance(func, ast.Attribute):
                return self.is_sigmoid(func.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return _is_logistic(node)
        if isinstance(node, ast.Name):
            return bool(re.search(r"prob|sigm|score", node.id, re.IGNORECASE)) and self.lookup(node.id)[0] != CLASS_INDEX
        return False

    def is_thresholded(self, node: ast.Compare) -> bool:
        if len(node.ops) != 1 or not isinstance(node.ops[0], (ast.Gt, ast.GtE)):
            return False
        right = node.comparators[0]
        threshold = (isinstance(right, ast.Name) and THRESHOLD_NAME.search(right.id)) or (
            isinstance(right, ast.Attribute) and THRESHOLD_NAME.search(right.attr)
        )
        # ``logits > 0`` is ``sigmoid(logits) > 0.5``.
        at_zero = isinstance(right, ast.Constant) and right.value == 0 and not isinstance(right.value, bool)
        return bool(threshold) or self.is_sigmoid(node.left) or (at_zero and self.is_logits(node.left))

    def is_logits(self, node: ast.AST) -> bool:
        if self.value_of(node)[0] == MODEL_OUTPUT:
            return True
        return isinstance(node, (ast.Name, ast.Attribute)) and bool(
            re.search(r"logit", node.id if isinstance(node, ast.Name) else node.attr, re.IGNORECASE))

    def is_model_call(self, node: ast.Call) -> bool:
        func = node.func
        if isinstance(func, ast.Name):
            return bool(MODEL_CALLEE.search(func.id)) and not SEGMENTATION_MODEL.search(func.id) and func.id not in self.defined
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            return bool(MODEL_CALLEE.search(func.attr)) and not SEGMENTATION_MODEL.search(func.attr)
        if isinstance(func, ast.Attribute) and func.attr == "predict_proba" and isinstance(func.value, ast.Name):
            return self.is_model_call(ast.Call(func.value, [], []))  # model.predict_proba(x): the model's class scores
        return False

    def model_output_like(self, node: ast.AST) -> bool:
        # Logits scaled by a temperature (``z / T``, ``z / self.T``, distillation) are still logits.
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(
            node.right, (ast.Name, ast.Attribute, ast.Constant)
        ):
            node = node.left
        value, _ = self.value_of(node)
        if value == MODEL_OUTPUT:
            return True
        if isinstance(node, ast.Call) and self.is_model_call(node):
            return True
        root = self.root_name(node)
        return bool(OUTPUT_NAME.match(root)) and value is None and not ATTENTION.search(root)

    # -- scopes and statements

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for child in node.bases + node.keywords + node.decorator_list:
            self.visit(child)
        self.scopes.append(Scope(function=self.scope().function, class_name=node.name, line=node.lineno))
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in node.decorator_list:
            self.visit(child)
        self.visit(node.args)
        self.scopes.append(Scope(function=node.name, class_name=self.scope().class_name, line=node.lineno))
        positional = [*node.args.posonlyargs, *node.args.args]
        names = {argument.arg for argument in (*positional, *node.args.kwonlyargs)}
        for position, (value, line) in self.seeds.get(node.name, {}).items():
            if isinstance(position, str) and position in names:
                self.bind(ast.Name(id=position, ctx=ast.Store()), value, line)
            elif isinstance(position, int) and position < len(positional):
                self.bind(ast.Name(id=positional[position].arg, ctx=ast.Store()), value, line)
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

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

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        value, line = self.value_of(node.value)
        for target in node.targets:
            self.visit(target)
            self.bind(target, value, line or node.lineno)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            value, line = self.value_of(node.value)
            self.bind(node.target, value, line or node.lineno)


def _is_max_shift(node: ast.AST) -> bool:
    """``np.max(z)``, ``z.max()``, ``torch.logsumexp(z, 1)``: what a stable softmax subtracts."""
    return isinstance(node, ast.Call) and _called_name(node) in ("max", "amax", "logsumexp")


def _called_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_logistic(node: ast.BinOp) -> bool:
    """``1 / (1 + exp(-z))``, the logistic function written out (NumPy metric code)."""
    denominator = node.right
    if not (isinstance(node.left, ast.Constant) and node.left.value == 1 and isinstance(denominator, ast.BinOp)
            and isinstance(denominator.op, ast.Add)):
        return False
    return any(
        isinstance(side, ast.Call)
        and (side.func.attr if isinstance(side.func, ast.Attribute) else getattr(side.func, "id", "")) == "exp"
        for side in (denominator.left, denominator.right)
    )
