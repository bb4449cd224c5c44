"""An independent detector of single-label constructs, by line and kind.

It shares nothing with ``migrate_ml.rules``: a small CPython ``ast`` scan that knows what
single-label training, evaluation and prediction code looks like (losses, predictions,
probabilities, metrics, model selection, label sources) and lists each occurrence. The corpus
harness compares its list with what migrate-ml edits or reports, so a construct that migrate-ml
neither fixes nor reports shows up as a miss, whatever rule was supposed to see it.

Notebooks are read cell by cell: positions are ``(cell, line)`` with cells counted from 1,
markdown included (migrate-ml's convention), and ``cell`` is ``None`` in a ``.py`` file.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import dataclass

KINDS = {
    "loss-ce": "cross-entropy loss (CrossEntropyLoss, F.cross_entropy, any spelling)",
    "loss-ce-label-smoothing": "cross-entropy with label_smoothing",
    "loss-nll": "NLLLoss / F.nll_loss on log-probabilities",
    "loss-timm-ce": "timm LabelSmoothing/SoftTarget/Jsd cross-entropy",
    "loss-soft-target": "hand-written cross-entropy: a target times log_softmax",
    "log-softmax": "log_softmax / nn.LogSoftmax over the classes",
    "pred-argmax": "argmax prediction",
    "pred-max": "max(dim) prediction (.max(1), torch.max(x, 1))",
    "pred-topk": "topk prediction",
    "softmax": "softmax over the classes (competing probabilities)",
    "accuracy-compare": "prediction compared with labels (==, eq)",
    "accuracy-call": "accuracy(...) call (helper, timm, torchmetrics functional)",
    "metric-torchmetrics": "torchmetrics/ignite/Lightning metric object without a multi-label task",
    "metric-sklearn": "sklearn single-label metric (accuracy_score, f1_score, ...)",
    "metric-hf": "Hugging Face evaluate/load_metric single-label metric",
    "confusion-matrix": "confusion matrix",
    "per-class-accuracy": "per-class accuracy counts indexed by the one label",
    "best-accuracy": "best-accuracy model selection (best_acc comparisons, max(acc, best))",
    "monitor-accuracy": "a monitor / metric_for_best_model on accuracy",
    "dataset-class-index": "class-index dataset (ImageFolder, CIFAR, MNIST, timm create_dataset, ClassLabel)",
    "dataset-getitem-label": "Dataset.__getitem__ returning one class label",
    "collate-class-index": "labels turned into an integer tensor (collate, LongTensor, .long())",
    "one-hot": "one_hot of class indices",
    "mixup": "mixup / cutmix on class indices",
    "hf-num-labels": "Hugging Face num_labels / id2label without problem_type",
    "class-name-lookup": "one class name looked up from a predicted index",
}

CE_NAMES = {"CrossEntropyLoss", "cross_entropy"}
NLL_NAMES = {"NLLLoss", "nll_loss"}
TIMM_CE_NAMES = {"LabelSmoothingCrossEntropy", "SoftTargetCrossEntropy", "JsdCrossEntropy"}
METRIC_CLASSES = {
    "Accuracy", "MulticlassAccuracy", "F1Score", "F1", "FBeta", "FBetaScore", "MulticlassF1Score", "Precision",
    "Recall", "MulticlassPrecision", "MulticlassRecall", "AUROC", "MulticlassAUROC", "AveragePrecision",
    "MulticlassAveragePrecision", "TopKCategoricalAccuracy", "CohenKappa", "MatthewsCorrCoef", "Specificity",
}
CONFUSION_NAMES = {"confusion_matrix", "ConfusionMatrix", "MulticlassConfusionMatrix", "plot_confusion_matrix", "ConfusionMatrixDisplay"}
SKLEARN_METRICS = {
    "accuracy_score", "balanced_accuracy_score", "f1_score", "precision_score", "recall_score", "fbeta_score",
    "classification_report", "top_k_accuracy_score", "precision_recall_fscore_support", "cohen_kappa_score",
    "matthews_corrcoef",
}
CLASS_INDEX_DATASETS = {
    "ImageFolder", "DatasetFolder", "CIFAR10", "CIFAR100", "MNIST", "FashionMNIST", "KMNIST", "EMNIST", "QMNIST", "SVHN",
    "STL10", "ImageNet", "Food101", "Flowers102", "OxfordIIITPet", "StanfordCars", "Caltech101", "Caltech256",
    "EuroSAT", "GTSRB", "FGVCAircraft", "DTD", "Country211", "PCAM", "create_dataset", "ClassLabel",
}
MIXUP_NAMES = {"Mixup", "FastCollateMixup", "mixup_target", "mixup_criterion", "mixup_data", "cutmix_data", "cutmix", "mixup", "mixup_fn", "cutmix_fn"}
MULTI_LABEL_TASK = re.compile(r"multi_?label|binary", re.IGNORECASE)
PREDICTION_NAMES = re.compile(r"pred|y_hat|yhat|top_?class|max_?index|class_?id", re.IGNORECASE)
LABEL_NAMES = re.compile(r"(label|target|^y$|^y_true$|^ys$|^gt$|^classes$|^cls$|^t$)", re.IGNORECASE)
CLASS_CONTAINER = re.compile(r"(class|categor|idx_?to|idx2|id2|int2|synset|breed|names?$|label_?(map|names?|dict)|labels_?map)", re.IGNORECASE)
BEST_NAME = re.compile(r"best.*(acc|prec|top1|score)|(acc|prec|top1).*best|max_acc", re.IGNORECASE)
ATTENTION = re.compile(r"attn|attention|score|dots|qk|sim", re.IGNORECASE)
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}
IPYTHON_LINE = re.compile(r"^([!%]|[\w.]+\s*=\s*[!%]|[\w.]+\?{1,2}$|(pip|conda) install\b)")


@dataclass(frozen=True)
class Construct:
    cell: int | None
    line: int
    kind: str
    text: str
    """The source line, stripped, for reports."""


def _final_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _source(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # ast.unparse fails only on malformed trees, which parse() never builds
        return ""


def _names_in(node: ast.AST) -> set[str]:
    return {_final_name(sub) for sub in ast.walk(node) if isinstance(sub, (ast.Name, ast.Attribute))}


def _is_predictionish(node: ast.AST) -> bool:
    """An arg-max/max/top-k result or a variable named like a prediction."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _final_name(sub.func) in {"argmax", "max", "topk"}:
            return True
        if isinstance(sub, ast.Name) and PREDICTION_NAMES.search(sub.id):
            return True
        if isinstance(sub, ast.Attribute) and PREDICTION_NAMES.search(sub.attr):
            return True
    return False


def _is_labelish(node: ast.AST) -> bool:
    """Names like labels/target/y, or a ``["label"]`` subscript (dict batches, HF examples)."""
    return any(LABEL_NAMES.search(name) for name in _names_in(node) if name) or any(
        LABEL_NAMES.search(text) for text in _constant_strings(node)
    )


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _constant_strings(node: ast.AST) -> list[str]:
    return [sub.value for sub in ast.walk(node) if isinstance(sub, ast.Constant) and isinstance(sub.value, str)]


def _has_dim(call: ast.Call, receiver_form: bool) -> bool:
    """``x.max(1)``, ``x.max(dim=1)``, ``torch.max(x, 1)``: a reduction that returns indices."""
    if _keyword(call, "dim") is not None or _keyword(call, "axis") is not None:
        return True
    needed = 1 if receiver_form else 2
    return len(call.args) >= needed


class _Scanner(ast.NodeVisitor):
    def __init__(self, lines: list[str], cell: int | None) -> None:
        self.lines = lines
        self.cell = cell
        self.found: list[Construct] = []
        self.functions: list[str] = []
        self.classes: list[str] = []
        self.callees: set[int] = set()
        self.defined: set[str] = set()
        """Functions and classes the file defines itself: ``create_dataset`` there is not timm's."""
        self.assigned: set[str] = set()
        """Names the file assigns or takes as parameters."""
        self.scopes: dict[tuple[int | None, int], int] = {}

    def add(self, node: ast.AST, kind: str) -> None:
        line = getattr(node, "lineno", 1)
        text = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        self.found.append(Construct(self.cell, line, kind, text[:160]))

    # scopes -------------------------------------------------------------------------------
    def _scope(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        end = node.end_lineno or node.lineno
        for line in {node.lineno, *(d.lineno for d in node.decorator_list)}:
            self.scopes[(self.cell, line)] = end

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scope(node)
        self.functions.append(node.name)
        if node.name == "__getitem__" and self.classes:
            self._getitem(node)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scope(node)
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def _in_attention(self) -> bool:
        return any(ATTENTION.search(name) for name in self.functions + self.classes)

    def _getitem(self, node: ast.FunctionDef) -> None:
        for sub in ast.walk(node):
            if not isinstance(sub, ast.Return) or sub.value is None:
                continue
            value = sub.value
            if isinstance(value, ast.Tuple) and len(value.elts) >= 2 and _is_labelish(value.elts[-1]):
                self.add(sub, "dataset-getitem-label")
            elif isinstance(value, ast.Dict) and any(
                isinstance(key, ast.Constant) and key.value in ("label", "labels", "target", "targets") for key in value.keys
            ):
                self.add(sub, "dataset-getitem-label")

    # expressions --------------------------------------------------------------------------
    def _reference(self, node: ast.Name | ast.Attribute) -> None:
        """A loss class or function handed on uncalled (``loss_fn=nn.CrossEntropyLoss``)."""
        if isinstance(node, ast.Name) and (node.id in self.defined or node.id in self.assigned):
            return  # the file's own variable (nll_loss = ...) or class, not the library's loss
        if id(node) not in self.callees and _final_name(node) in CE_NAMES | NLL_NAMES | TIMM_CE_NAMES:
            self.add(node, "loss-nll" if _final_name(node) in NLL_NAMES else "loss-timm-ce" if _final_name(node) in TIMM_CE_NAMES else "loss-ce")

    def visit_Name(self, node: ast.Name) -> None:
        self._reference(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self._reference(node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        self.callees.add(id(node.func))
        name = _final_name(node.func)
        # self.accuracy(...) / self.f1_score(...) update a metric object built elsewhere, where
        # it is listed; counting every update again would count one metric many times.
        on_self = isinstance(node.func, ast.Attribute) and _final_name(node.func.value) == "self"
        receiver = isinstance(node.func, ast.Attribute) and _final_name(node.func.value) not in {"torch", "np", "numpy", "F", "functional", "jnp", "tf"}
        if name in CE_NAMES:
            self.add(node, "loss-ce-label-smoothing" if _keyword(node, "label_smoothing") is not None else "loss-ce")
        elif name in NLL_NAMES:
            self.add(node, "loss-nll")
        elif name in TIMM_CE_NAMES:
            self.add(node, "loss-timm-ce")
        elif name in {"log_softmax", "LogSoftmax"}:
            self.add(node, "log-softmax")
        elif name == "argmax":
            self.add(node, "pred-argmax")
        elif name == "max" and not isinstance(node.func, ast.Name) and _has_dim(node, receiver):
            self.add(node, "pred-max")
        elif name == "topk":
            self.add(node, "pred-topk")
        elif name in {"softmax", "Softmax"} and not self._in_attention() and not any(
            ATTENTION.search(n) for operand in [*node.args, node.func] for n in _names_in(operand)
        ):
            self.add(node, "softmax")
        elif name == "eq" and isinstance(node.func, ast.Attribute) and node.args and not isinstance(node.args[0], ast.Constant):
            self.add(node, "accuracy-compare")
        elif name in {"accuracy", "accuracy_fn", "calculate_accuracy", "compute_accuracy", "get_accuracy", "multi_acc"} and not on_self:
            self.add(node, "accuracy-call")
        elif name in METRIC_CLASSES:
            task = _keyword(node, "task")
            positional = node.args[0] if node.args and isinstance(node.args[0], ast.Constant) else None
            multi = _keyword(node, "is_multilabel") or _keyword(node, "multilabel")
            text = " ".join(_constant_strings(task) if task is not None else []) + " " + (
                str(positional.value) if positional is not None else "")
            if not MULTI_LABEL_TASK.search(text) and not (isinstance(multi, ast.Constant) and multi.value is True):
                self.add(node, "metric-torchmetrics")
        elif name in CONFUSION_NAMES:
            self.add(node, "confusion-matrix")
        elif name in SKLEARN_METRICS and not on_self:
            self.add(node, "metric-sklearn")
        elif name in {"load", "load_metric"} and any(
            s in {"accuracy", "f1", "precision", "recall", "glue"} for s in _constant_strings(node)
        ) and _final_name(getattr(node.func, "value", node.func)) in {"evaluate", "datasets", "load_metric", "load"}:
            self.add(node, "metric-hf")
        elif name in CLASS_INDEX_DATASETS and name not in self.defined and not (
            isinstance(node.func, ast.Attribute) and _final_name(node.func.value) == "self"
        ):
            self.add(node, "dataset-class-index")
        elif name == "one_hot":
            self.add(node, "one-hot")
        elif name in MIXUP_NAMES:
            self.add(node, "mixup")
        elif name in {"LongTensor", "tensor", "as_tensor"} and node.args and _is_labelish(node.args[0]) and (
            name == "LongTensor" or _source(_keyword(node, "dtype") or ast.Constant(None)).endswith(("long", "int64"))
            or (self.functions and "collate" in self.functions[-1])
        ):
            self.add(node, "collate-class-index")
        elif name == "long" and isinstance(node.func, ast.Attribute) and _is_labelish(node.func.value):
            self.add(node, "collate-class-index")
        elif name == "max" and isinstance(node.func, ast.Name) and any(BEST_NAME.search(n) for n in _names_in(node)):
            self.add(node, "best-accuracy")
        hugging_face = name == "from_pretrained" or name.endswith("Config") or "For" in name
        if hugging_face and any(_keyword(node, k) is not None for k in ("num_labels", "id2label", "label2id")) and _keyword(node, "problem_type") is None:
            self.add(node, "hf-num-labels")
        for keyword in ("monitor", "metric_for_best_model"):
            value = _keyword(node, keyword)
            if value is not None and any("acc" in s.lower() for s in _constant_strings(value)):
                self.add(node, "monitor-accuracy")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        sides = [node.left, *node.comparators]
        if any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops) and not any(
            isinstance(side, ast.Constant) for side in sides
        ):
            if any(_is_predictionish(side) for side in sides) and any(_is_labelish(side) for side in sides):
                self.add(node, "accuracy-compare")
        elif any(isinstance(op, (ast.Gt, ast.GtE, ast.Lt, ast.LtE)) for op in node.ops) and any(
            BEST_NAME.search(n) for side in sides for n in _names_in(side)
        ):
            self.add(node, "best-accuracy")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Mult):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                inner = side.operand if isinstance(side, ast.UnaryOp) else side
                if isinstance(inner, ast.Call) and _final_name(inner.func) == "log_softmax" and not isinstance(other, ast.Constant):
                    self.add(node, "loss-soft-target")
                    break
        if isinstance(node.op, ast.Add) and all(isinstance(side, ast.BinOp) and isinstance(side.op, ast.Mult) for side in (node.left, node.right)):
            if "lam" in _source(node) and all(any(isinstance(s, ast.Call) for s in ast.walk(side)) for side in (node.left, node.right)):
                self.add(node, "mixup")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        target = node.target
        if isinstance(target, ast.Subscript) and re.search(r"class_(correct|total)|correct_pred|total_pred", _source(target.value)):
            self.add(node, "per-class-accuracy")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        container = _final_name(node.value)
        if (
            container
            and CLASS_CONTAINER.search(container)
            and isinstance(node.ctx, ast.Load)
            and not isinstance(node.slice, (ast.Constant, ast.Slice))
            and _is_predictionish(node.slice)
        ):
            self.add(node, "class-name-lookup")
        self.generic_visit(node)


def _dedupe(found: list[Construct]) -> list[Construct]:
    """One construct per (cell, line, kind): a line that spells one idea twice is one construct."""
    seen, result = set(), []
    for item in found:
        key = (item.cell, item.line, item.kind)
        if key not in seen:
            seen.add(key)
            result.append(item)
    return sorted(result, key=lambda c: (c.cell or 0, c.line, c.kind))


def scan_python(text: str, cell: int | None = None) -> tuple[list[Construct], dict[tuple[int | None, int], int]]:
    """Constructs in Python source, and the span of each function and class (its first line or
    a decorator's -> its last line); a syntax error raises ``SyntaxError``."""
    tree = ast.parse(text)
    scanner = _Scanner(text.splitlines(), cell)
    nodes = list(ast.walk(tree))
    scanner.defined = {node.name for node in nodes if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    scanner.assigned = {node.id for node in nodes if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    scanner.assigned |= {node.arg for node in nodes if isinstance(node, ast.arg)}
    scanner.visit(tree)
    return _dedupe(scanner.found), scanner.scopes


def _mask_ipython(source: str) -> str | None:
    """The cell as Python with IPython lines blanked (same line count), or None for a cell under
    a cell magic that does not run Python."""
    lines = source.split("\n")
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        words = first[2:].split()
        magic = words[0] if words else ""
        python_file = magic == "writefile" and words[-1].endswith(".py")
        if magic not in PYTHON_CELL_MAGICS and not python_file:
            return None
        lines[0] = ""
    masked, depth = [], 0
    for line in lines:
        stripped = line.strip()
        # Inside open brackets a leading % is string formatting, not a magic.
        if depth == 0 and (IPYTHON_LINE.match(stripped)):
            indent = line[: len(line) - len(line.lstrip())]
            masked.append(f"{indent}pass" if indent else "")
            continue
        masked.append(line)
        code = re.sub(r"#.*$", "", re.sub(r"(\"[^\"]*\"|'[^']*')", "", line))
        depth = max(0, depth + sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}"))
    return textwrap.dedent("\n".join(masked))


def notebook_cells(text: str) -> list[tuple[int, str]]:
    """``(cell number, source)`` of each code cell; cells are counted from 1, markdown included."""
    cells = json.loads(text).get("cells", [])
    result = []
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        result.append((number, "".join(source) if isinstance(source, list) else str(source)))
    return result


@dataclass
class Scan:
    constructs: list[Construct]
    errors: list[str]
    """Cells (or the file) the detector could not parse: their constructs are unknown."""
    scopes: dict[tuple[int | None, int], int]
    """``(cell, first line of a def/class or of a decorator)`` -> its last line."""


def scan(path: str, text: str) -> Scan:
    if not path.endswith(".ipynb"):
        try:
            found, scopes = scan_python(text)
        except SyntaxError as error:
            return Scan([], [f"line {error.lineno}: {error.msg}"], {})
        return Scan(found, [], scopes)
    result = Scan([], [], {})
    for number, source in notebook_cells(text):
        masked = _mask_ipython(source)
        if masked is None:
            continue
        try:
            found, scopes = scan_python(masked, number)
        except SyntaxError as error:
            result.errors.append(f"cell {number} line {error.lineno}: {error.msg}")
            continue
        result.constructs.extend(found)
        result.scopes.update(scopes)
    return result
