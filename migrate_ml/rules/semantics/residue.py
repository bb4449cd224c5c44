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
counts when it is taken over a model's output, compared with something or handed to a metric
(never ``np.argmax(val_accuracy)``), softmax only over a model's output (temperature-scaled logits
too) or into a metric outside ``forward``, or as what ``forward`` returns, directly or through a
name, or the last ``nn.Softmax`` layer of an ``nn.Sequential`` (never attention, pooling or
routing weights), and a comparison of a thresholded prediction only when it is averaged over
every element instead of per sample (``!=`` averaged that way is the Hamming loss, a multi-label
metric). A single-label loss counts however it is named: called, referenced (``partial``, a dict
of classes) or looked up with ``getattr(nn, ...)``. In model code without training code (a
``models.py``) only a model that ends in softmax is reported.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from migrate_ml.rules._exact_match import exact_match_helpers
from migrate_ml.rules._project import current_facts
from migrate_ml.rules._prefilter import has_loss_marker, has_training_marker, model_may_end_in, nodes_of, parse_once, text_facts
from migrate_ml.rules.semantics.single_label_values import (
    ATTENTION,
    CLASS_INDEX,
    LABEL_NAME,
    MATCHES,
    MODEL_OUTPUT,
    MULTI_HOT,
    PASS_THROUGH_METHODS,
    ValueTracker,
    int_constant,
)
from migrate_ml.rules.semantics import KINDS as MEANING_KINDS
from migrate_ml.rules.semantics import find_sinks
from migrate_ml.rules.semantics.metrics import TRIGGER_WORDS as METRIC_WORDS
from migrate_ml.rules.semantics.helpers import single_label_helper_calls
from migrate_ml.rules.semantics.sequences import in_spans, is_token_model, sequence_spans
from migrate_ml.rules.semantics.tasks import is_dense_prediction, is_one_output_binary, untrained_pretrained_model

if TYPE_CHECKING:
    import libcst

__all__ = [
    "API_WORDS",
    "COMMON_WORDS",
    "KINDS",
    "SingleLabelConstruct",
    "compares_a_ranking",
    "could_contain_single_label",
    "find_single_label",
    "names_a_single_label_api",
]

KINDS = (
    "single-label-loss",
    "argmax-prediction",
    "argmax-compared",
    "argmax-metric",
    "softmax-class-dim",
    "class-index-metric",
    "per-element-accuracy",
    "prediction-item",
    "target-argmax",
    "topk-accuracy",
    "pretrained-untrained",
    "single-label-helper",
    *MEANING_KINDS,
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
    """Other lines the construct is built from (the arg-max a comparison uses) and the lines of
    the ``def``/``class`` statements around it."""
    covering_lines: tuple[int, ...] = field(default=(), compare=False)
    """The related lines where a finding reports this construct as a whole: the ``def``/``class``
    around it (a hand-written loss, a top-k helper), and the source of class-index labels that
    reach a loss (a new dataset fixes both). A finding on another related line reports only the
    part the construct is built on, so the construct still gets a finding at its own line."""


API_WORDS = (
    "CrossEntropy", "cross_entropy", "nll_loss", "NLLLoss", "ccuracy", "ulticlass", "ignite", "_score(",
    "evaluate.load", "classification_report", "confusion_matrix",
)
"""Loss and metric names specific enough to look at a file for, even outside training code."""
MEANING_WORDS = (
    "__getitem__", "scatter_(", "one_hot", "onitor", "metric_for_best_model", "ReduceLROnPlateau", "caption",
    "add_data(", "ith_logits", "ithLogits", "logits", ".predictions", ".float()", "gather(", "LabelEncoder",
    "get_dummies", "bincount(", "return_counts", "] +=", "gamma(", "kl_div", "exp(-",
)
"""Words of what the meaning analysis looks at: datasets, hand-written one-hot targets, model
selection, per-image logging, half-migrated logits code, a cast target next to uncast ones (`.float()`),
label encodings (``LabelEncoder``, ``get_dummies``), class counts (``bincount``, ``counts[label] += 1``)
and hand-written losses (a Dirichlet's `lgamma(`/`digamma(`, distillation's `kl_div`, a focal term's `exp(-`)."""
COMMON_WORDS = ("argmax", "max(", "topk", "softmax", "sigmoid", "expit", "hresh", "HRESH", "].item(")
"""Words every other construct needs (an arg-max, a softmax, a thresholded sigmoid, a per-sample
``.item()``); they also occur all over model code. Plain substring tests: far cheaper than a regex."""


def could_contain_single_label(text: str) -> bool:
    """Cheap text test: whether the file has any word the detector looks for."""
    return (
        names_a_single_label_api(text)
        or text_facts(text).has_any((*COMMON_WORDS, *MEANING_WORDS, *METRIC_WORDS))
        or compares_a_ranking(text)
    )


def compares_a_ranking(text: str) -> bool:
    """Cheap text test: a ranking of the classes (``topk``, ``sort``) and an ``.eq(`` comparison,
    as in a top-k error helper or a k-NN classifier: evaluation code with no training in it."""
    facts = text_facts(text)
    return facts.has(".eq(") and facts.has_any((".topk(", ".sort("))


def names_a_single_label_api(text: str) -> bool:
    """A loss or metric name the detector knows (not a common word such as ``argmax``)."""
    return text_facts(text).has_any(API_WORDS)


def find_single_label(module: libcst.Module | str) -> list[SingleLabelConstruct]:
    """Every still-single-label construct in ``module`` (a ``libcst.Module`` or source text).

    Text that does not parse yields nothing: the engine and ``verify`` report syntax errors
    themselves.
    """
    text = module if isinstance(module, str) else module.code
    if not could_contain_single_label(text):
        return []
    try:
        tree = parse_once(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    if is_model_code_only(text) and not model_may_end_in(tree, "softmax", "Softmax"):
        return []  # the one construct model code can hold cannot be there: skip the full walk
    if is_dense_prediction(tree) or is_token_model(tree) or is_one_output_binary(tree):
        return []  # one class per pixel or per token, or one [B, 1] decision, is the task itself
    detector = _Detector(text, tree)
    found = detector.run()
    if detector.helper_inputs:
        # A helper of this file is given thresholded predictions (simple_accuracy(preds, labels))
        # or an arg-max (get_score(labels, preds.argmax(1))): walk again with its parameters
        # known, so that its body is checked too.
        found = _Detector(text, tree, detector.helper_inputs).run()
    found = _with_meanings(found, tree, text)
    found = _with_helper_calls(found, tree, text)
    if found and (model := untrained_pretrained_model(tree)) is not None:
        return [_pretrained_untrained(model)]
    spans = sequence_spans(tree) if found else ()
    return [construct for construct in found if not in_spans(construct.line, spans)]


def _pretrained_untrained(model: ast.Call) -> SingleLabelConstruct:
    """The one finding of a file whose single-label constructs all read a library's pretrained
    head that the file never trains: migrating them would misread that head."""
    return SingleLabelConstruct(
        model.lineno,
        model.col_offset + 1,
        "pretrained-untrained",
        "this model keeps the library's pretrained single-label head (softmax over its classes) and nothing in "
        "this file trains it: its loss, arg-max and accuracy read that head, so they stay single-label",
        "nothing to migrate until the model is fine-tuned for multi-label: give it a new head "
        "(num_classes=...) and train it with BCEWithLogitsLoss",
    )


_SOURCE_REPORTS_IT = frozenset({"class-index-target", "one-hot-target"})
"""Meanings whose related line is where the value comes from (the dataset, the one-hot encoding):
the fix there fixes them."""


def _with_meanings(found: list[SingleLabelConstruct], tree: ast.Module, text: str) -> list[SingleLabelConstruct]:
    """Add what the meaning analysis (``rules/semantics``) proves and this walk did not find, one
    construct per line; one built on a line found here is that construct."""
    lines = {construct.line for construct in found}
    text_lines = text.splitlines()
    added = []
    for sink in find_sinks(tree, text):
        line = sink.node.lineno  # type: ignore[attr-defined]
        if line in lines or lines.intersection(sink.related):
            continue
        lines.add(line)
        source_line = text_lines[line - 1] if line <= len(text_lines) else ""
        column = len(source_line.encode("utf-8")[: sink.node.col_offset].decode("utf-8", errors="replace")) + 1  # type: ignore[attr-defined]
        related = tuple(sorted(set(sink.related) - {line}))
        covering = sink.related if sink.kind in _SOURCE_REPORTS_IT else sink.enclosing
        added.append(SingleLabelConstruct(line, column, sink.kind, sink.message, sink.suggestion, related, covering))
    return sorted([*found, *added], key=lambda c: (c.line, c.column, c.kind))


def _with_helper_calls(found: list[SingleLabelConstruct], tree: ast.Module, text: str) -> list[SingleLabelConstruct]:
    """Add each call of a helper of this file whose body reads what it is given as one class per
    image (``calculate_accuracy(y_pred, y)``): the call is where the wrong accuracy comes from."""
    calls = single_label_helper_calls(tree, [(c.line, c.kind, c.related_lines) for c in found])
    lines = {construct.line for construct in found}
    text_lines = text.splitlines()
    added = []
    for helper_call in calls:
        line = helper_call.call.lineno
        if line in lines:
            continue
        lines.add(line)
        source_line = text_lines[line - 1] if line <= len(text_lines) else ""
        column = len(source_line.encode("utf-8")[: helper_call.call.col_offset].decode("utf-8", errors="replace")) + 1
        added.append(
            SingleLabelConstruct(
                line,
                column,
                "single-label-helper",
                f"{helper_call.helper}() is single-label in its body (an arg-max, top-k or class-index comparison of "
                "what it is given), and so is what it returns here",
                f"make {helper_call.helper}() take multi-hot [B, C] rows: predict with torch.sigmoid(logits) > THRESHOLD "
                "and compare whole rows, (preds == labels.bool()).all(dim=1) for exact match",
                helper_call.built_on,
            )
        )
    return sorted([*found, *added], key=lambda c: (c.line, c.column, c.kind)) if added else found


_LOSS_MODULE_WORDS = ("kl_div(", "focal_loss(")
"""A loss module's words that name no single-label API: distillation's ``kl_div``, a focal loss."""


def is_model_code_only(text: str) -> bool:
    """Model code without training, evaluation or loss code (a ``models.py``): an arg-max or a
    comparison there routes tokens or experts; only a model ending in softmax is reported. A
    ``kl_div`` or a ``sigmoid_focal_loss`` call is loss code: a loss module's ``forward`` computes a
    loss, not a model."""
    facts = text_facts(text)
    return facts.has("def forward") and not facts.has_any(_LOSS_MODULE_WORDS) and not (
        names_a_single_label_api(text) or has_training_marker(text) or has_loss_marker(text)
    )


_RETURNS_SOFTMAX = re.compile(r"^[ \t]*return\b[^\n]*softmax\(", re.MULTILINE)
_SOFTMAX_ASSIGNED = re.compile(r"^[ \t]*(\w+)[ \t]*=[^=\n][^\n]*softmax\(", re.MULTILINE)


def may_return_softmax(text: str) -> bool:
    """Text test before parsing: a ``return`` line holds a softmax call, or returns a name a
    softmax was assigned to. Attention code (``attn = attn.softmax(-1)``, ``return x``) fails it."""
    if _RETURNS_SOFTMAX.search(text):
        return True
    names = set(_SOFTMAX_ASSIGNED.findall(text))
    return bool(names) and re.search(
        r"^[ \t]*return\b[^\n]*\b(?:" + "|".join(map(re.escape, sorted(names))) + r")\b", text, re.MULTILINE
    ) is not None


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
_LOSS_MODULES = frozenset({"torch.nn", "torch.nn.functional", "torch.nn.modules.loss", "nn", "F", "timm.loss"})
"""Modules a loss is looked up in by name: ``getattr(nn, "CrossEntropyLoss")``."""
_LOSS_ROOTS = ("torch", "timm")
"""Packages whose losses these are; a name the file defines or imports elsewhere is someone else's."""

_SOFTMAX_LAYERS = frozenset({"torch.nn.Softmax", "torch.nn.modules.activation.Softmax", "nn.Softmax"})
_SEQUENTIAL = frozenset({"torch.nn.Sequential", "torch.nn.modules.container.Sequential", "nn.Sequential"})

_NOT_CLASS_SCORES = re.compile(r"weight|score|pool|gate|alpha|mask|att(e)?n|router|expert|routing", re.IGNORECASE)
"""Names of a softmax's result, its input or its module that say it weighs positions or experts."""

_METRIC_FUNCTION = re.compile(
    r"(^|_)(accuracy|acc|f1|fbeta|precision|recall|jaccard|kappa|matthews|confusion|classification_report"
    r"|score|metric|metrics|auroc|auc)(_|$|\d)",
    re.IGNORECASE,
)
_TOP_K_METRIC = re.compile(r"^top_?k_(errors?|err|acc|accuracy|accuracies|correct)$", re.IGNORECASE)
"""A top-k metric by name (``topk_errors``, ``topk_accuracy``): scikit-learn's ``top_k_accuracy_score`` is ML102's."""
_METRIC_UPDATE_METHODS = frozenset({"update", "add_batch", "add", "compute", "forward"})
_METRIC_PREDICTION_KEYWORDS = frozenset({"predictions", "preds", "y_pred", "pred", "input", "output"})

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
_SUGGEST_TORCHMETRICS = (
    'use the multilabel task: task="multilabel", num_labels=C, threshold=THRESHOLD '
    "(or MultilabelAccuracy / MultilabelF1Score / MultilabelAveragePrecision)"
)
_SUGGEST_EXACT_MATCH = (
    "compare whole rows: (preds == labels.bool()).all(dim=1) for exact match, or use per-label metrics "
    "(F1 micro/macro, mAP, Hamming loss)"
)


_PROBABILITIES = re.compile(r"^(probs?|probabilities|probas?|scores|softmax\w*|pred_probs?|y_probs?)$", re.IGNORECASE)


def _is_column_key(key: ast.AST) -> bool:
    """A table's column: ``["label"]``, ``[CFG.target_col]``, ``[LABEL]`` (not a position)."""
    if isinstance(key, ast.Constant):
        return isinstance(key.value, str)
    return isinstance(key, (ast.Name, ast.Attribute))


def _over_the_class_axis(call: ast.Call, on_module: bool) -> bool:
    """``z.argmax(1)``, ``z.argmax(axis=-1)``, ``np.argmax(z, 1)``: the last axis of [N, C] scores."""
    axes = call.args[1:] if on_module else call.args
    axis = axes[0] if axes else next((k.value for k in call.keywords if k.arg in ("dim", "axis")), None)
    return int_constant(axis) in (1, -1) if axis is not None else False


def _binding_key(target: ast.AST) -> str:
    """``name`` or ``self.name``: the targets whose later uses can be followed."""
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        return f"self.{target.attr}"
    return ""


def _argument_defaults(tree: ast.Module) -> dict[str, tuple[str, str, int]]:
    """``parser.add_argument("--loss", default="CrossEntropyLoss")``: dest -> (default, option, line),
    for string defaults that name a single-label loss."""
    defaults = {}
    for node in nodes_of(tree, ast.Call):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"):
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        default = keywords.get("default")
        if not (isinstance(default, ast.Constant) and default.value in _LOSSES):
            continue
        options = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        if not options:
            continue
        option = next((o for o in options if o.startswith("--")), options[0])
        dest = keywords.get("dest")
        key = dest.value if isinstance(dest, ast.Constant) and isinstance(dest.value, str) else option.lstrip("-").replace("-", "_")
        defaults[key] = (default.value, option, default.lineno)
    return defaults


# --- the detector -----------------------------------------------------------------------------

_LOSS_CALLEE = re.compile(r"criterion|loss", re.IGNORECASE)
_TARGET_WRAPPERS = frozenset({"Variable", "LongTensor", "IntTensor", "tensor", "as_tensor", "from_numpy", "array"})
"""Calls that wrap a class index into a target tensor without changing it."""
_TARGET_TENSORS = frozenset({"LongTensor", "IntTensor", "tensor", "as_tensor"})


def _name_of(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _exp_argument(node: ast.AST) -> ast.AST | None:
    """``z`` of ``np.exp(z)``, ``torch.exp(z)`` or ``z.exp()``."""
    if not (isinstance(node, ast.Call) and _name_of(node) == "exp"):
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and not node.args:
        return func.value
    return node.args[0] if node.args else None


@dataclass
class _Record:
    """A construct while the walk goes on: its uses further down add related lines."""

    line: int
    column: int
    kind: str
    message: str
    suggestion: str
    related: set[int]
    scopes: frozenset[int] = frozenset()
    """The enclosing ``def``/``class`` lines (also in ``related``)."""
    bound_to: str = ""
    used: bool = False
    followed: bool = True
    """Whether the name it is assigned to is followed (a layer built into a model is not)."""
    model_output: bool = False
    """A model that ends in softmax: the one construct model code alone can hold."""


_CTC_LOSSES = frozenset({"CTCLoss", "ctc_loss"})

_FOLLOWED_KINDS = frozenset({"single-label-loss", "softmax-class-dim", "class-index-metric"})
"""Constructs whose value is used where it is bound (a criterion, probabilities, a metric object):
a finding where that name is used covers them, and so does the line that uses them."""


class _Detector(ValueTracker):
    def __init__(
        self, text: str, tree: ast.Module, seeds: dict[str, dict[int | str, tuple[str, int]]] | None = None
    ) -> None:
        super().__init__(tree, seeds)
        self.lines = text.splitlines()
        self.model_code_only = is_model_code_only(text)
        self.helper_inputs: dict[str, dict[int | str, tuple[str, int]]] = {}
        """The file's own functions called with thresholded predictions or an arg-max:
        name -> {position or keyword: (value, line of the call)}."""
        self.found: dict[int, _Record] = {}
        self.bound_constructs: dict[str, _Record] = {}
        """Names bound to a loss, a softmax or a metric object that was reported, by name."""
        self.metric_objects: set[str] = set()
        self.argmax_columns: set[str] = set()
        """Columns the file stores an arg-max over the classes in (``val_df["preds"]``), by name."""
        self.argument_defaults = _argument_defaults(tree)
        self.exact_match_helpers = exact_match_helpers(tree)
        self.ctc = any(
            (node.attr if isinstance(node, ast.Attribute) else node.id) in _CTC_LOSSES
            for node in nodes_of(tree, ast.Attribute, ast.Name)
        )
        """The file computes a CTC loss, which takes per-time-step log-probabilities (a sequence loss)."""
        """The file's helpers named like top-k accuracy whose body is exact match: their calls are multi-label."""

    def run(self) -> list[SingleLabelConstruct]:
        self.visit(self.tree)
        return self._finish()

    # -- reporting

    def _report(
        self, node: ast.AST, kind: str, message: str, suggestion: str, related: tuple[int, ...] = ()
    ) -> _Record | None:
        line = node.lineno  # type: ignore[attr-defined]
        if line in self.found:
            return None  # one construct per line: a second one there adds nothing for a reader
        text = self.lines[line - 1] if line <= len(self.lines) else ""
        # ast counts columns in UTF-8 bytes; findings count characters.
        column = len(text.encode("utf-8")[: node.col_offset].decode("utf-8", errors="replace")) + 1  # type: ignore[attr-defined]
        # A finding on the enclosing def or class (a whole top-k helper, a hand-written loss)
        # covers what is inside it.
        enclosing = {scope.line for scope in self.scopes if scope.line}
        record = self.found[line] = _Record(
            line, column, kind, message, suggestion, set(related) | enclosing, frozenset(enclosing)
        )
        return record

    def _finish(self) -> list[SingleLabelConstruct]:
        constructs = []
        built_on = {line for record in self.found.values() for line in record.related}
        for record in self.found.values():
            if self.model_code_only and not record.model_output:
                continue
            if record.kind == "softmax-class-dim" and record.bound_to and not record.used:
                continue  # a softmax whose result is never read (left behind by a loss rewrite) changes nothing
            if record.kind == "argmax-prediction" and record.line in built_on:
                continue  # the comparison or metric that uses it is the construct to report
            related = tuple(sorted(record.related - {record.line}))
            covering = tuple(sorted(record.scopes - {record.line}))
            constructs.append(
                SingleLabelConstruct(
                    record.line, record.column, record.kind, record.message, record.suggestion, related, covering
                )
            )
        return sorted(constructs, key=lambda c: (c.line, c.column, c.kind))

    def visit_Assign(self, node: ast.Assign) -> None:
        before = set(self.found)
        super().visit_Assign(node)
        self._note_metric_object(node.targets, node.value)
        self._check_stored_prediction(node)
        self._read_argmax_column(node)
        self._check_most_confident_class(node)
        self._follow(node.targets, [self.found[line] for line in set(self.found) - before])

    def _follow(self, targets, records: list[_Record]) -> None:
        """Bind the names a reported criterion, softmax or metric object is assigned to."""
        for target in targets:
            key = _binding_key(target)
            if not key:
                continue
            self.bound_constructs.pop(key, None)
            for record in records:
                if record.kind in _FOLLOWED_KINDS and record.followed:
                    record.bound_to = key
                    self.bound_constructs[key] = record

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._used(node.id, node.lineno)
            self._check_loss_reference(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            key = _binding_key(node)
            if key:
                self._used(key, node.lineno)
            self._check_loss_reference(node)

    def _used(self, key: str, line: int) -> None:
        record = self.bound_constructs.get(key)
        if record is not None and line != record.line:
            record.used = True
            record.related.add(line)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            before = set(self.found)
            super().visit_AnnAssign(node)
            self._note_metric_object([node.target], node.value)
            self._follow([node.target], [self.found[line] for line in set(self.found) - before])

    def _note_metric_object(self, targets, value: ast.AST) -> None:
        """Remember names bound to metric objects, so that ``acc(preds, y)`` is a metric call."""
        if isinstance(value, ast.Call) and (
            self.qualified(value.func).startswith(_METRIC_PACKAGES) or self._run_metric_class(value.func)
        ):
            for target in targets:
                if isinstance(target, ast.Name):
                    self.metric_objects.add(target.id)
                elif isinstance(target, ast.Attribute):
                    self.metric_objects.add(target.attr)

    def _run_metric_class(self, func: ast.AST) -> bool:
        """``AccuracyMeter`` imported from a file of the run whose ``update`` scores its inputs."""
        facts = current_facts()
        return facts is not None and bool(facts.metric_classes) and facts.is_metric_class(self.qualified(func))

    # -- constructs

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        self._check_loss(node)
        self._check_getattr_loss(node)
        self._check_argmax_on_labels(node)
        self._check_pseudo_label(node)
        self._check_softmax(node)
        self._check_softmax_layer(node)
        self._check_class_metric(node)
        self._check_metric_inputs(node)
        self._check_eq_method(node)
        self._check_item(node)
        self._check_element_count(node)
        self._check_prediction(node)
        self._check_prediction_table(node)
        self._note_helper_inputs(node)

    def _note_helper_inputs(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in self.defined and node.func.id not in self.imports:
            arguments = [*enumerate(node.args), *((k.arg, k.value) for k in node.keywords if k.arg)]
            for position, argument in arguments:
                value, _ = self.value_of(argument)
                if value in (MULTI_HOT, CLASS_INDEX):
                    self.helper_inputs.setdefault(node.func.id, {})[position] = (value, node.lineno)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self.generic_visit(node)
        self._check_written_softmax(node)

    def _check_written_softmax(self, node: ast.BinOp) -> None:
        """``np.exp(z) / np.sum(np.exp(z))``: a softmax written out over a model's class scores."""
        if not isinstance(node.op, ast.Div):
            return
        numerator = _exp_argument(node.left)
        denominator = node.right
        if not (isinstance(denominator, ast.Call) and _name_of(denominator) == "sum"):
            return
        func = denominator.func
        if isinstance(func, ast.Attribute) and not self.is_module(func.value):
            summed: ast.AST | None = func.value  # ``np.exp(z).sum(axis=1)``
        else:
            summed = denominator.args[0] if denominator.args else None
        inner = _exp_argument(summed) if summed is not None else None
        if numerator is None or inner is None or ast.dump(inner) != ast.dump(numerator):
            return
        if not self.model_output_like(numerator):
            return
        self._report(
            node,
            "softmax-class-dim",
            "a softmax written out (exp divided by the sum of exp) makes the labels compete for one unit of probability",
            "use the sigmoid of each score, 1 / (1 + np.exp(-z)) or torch.sigmoid(z): one independent probability per label",
        )

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
            self._check_class_branches(node, values)
            return
        index_lines = [line for value, line in values if value == CLASS_INDEX]
        if index_lines and self.ranked_lines.intersection(index_lines):
            self._report(
                node,
                "topk-accuracy",
                "the top-ranked class indices of each image (top-k or a sort over the classes) are compared with "
                "its one true class: top-k accuracy, which has no multi-label meaning",
                "replace it with thresholded metrics: exact match (preds == labels.bool()).all(dim=1), F1 (micro/macro), mAP",
                tuple(index_lines),
            )
            return
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
        if multi_hot_lines and equal and self._per_class_count(operands):
            self._report(
                node,
                "per-element-accuracy",
                "a per-class count of correct predictions selects the images of one class (y == c) and compares "
                "their prediction with that class index: with multi-hot labels an image belongs to several classes "
                "and its prediction is a row of C decisions, not one class",
                "count per label on [B, C] rows: true positives ((preds == 1) & (labels == 1)).sum(0) against "
                "labels.sum(0) (per-class recall), or torchmetrics MultilabelRecall(num_labels=C, average=None)",
                tuple(multi_hot_lines),
            )
            return
        if multi_hot_lines and equal and self._averaged_over_every_element(node):
            self._report(
                node,
                "per-element-accuracy",
                "a thresholded multi-label prediction is compared element by element and averaged over all "
                "B x C entries (label-wise accuracy, dominated by negatives; a count over B images exceeds 100 %)",
                "reduce per image first: (preds == labels.bool()).all(dim=1) for exact match, or report F1/mAP/Hamming loss",
                tuple(multi_hot_lines),
            )

    def _check_class_branches(self, node: ast.AST, values: list[tuple[object, int]]) -> None:
        """``if pred_idx[0] == 0: ... elif pred_idx[0] == 4: ...``: the predicted class index is
        matched against class numbers, one branch (one class shown) per image. Reported once, at
        the ``if`` that starts the chain."""
        statement = self.parents.get(node)
        index_lines = [line for value, line in values if value == CLASS_INDEX]
        if not (index_lines and isinstance(statement, ast.If) and statement.test is node):
            return
        if not (len(statement.orelse) == 1 and isinstance(statement.orelse[0], ast.If)):
            return  # one test is a decision about one class, not a display of the predicted one
        above = self.parents.get(statement)
        if isinstance(above, ast.If) and above.orelse == [statement]:
            return  # an elif of a chain reported at its first test
        self._report(
            node,
            "argmax-prediction",
            "the predicted class index is matched against class numbers (if pred == 0 ... elif pred == 1): each "
            "image shows exactly one class",
            "show every label above the threshold: for i in (probs > THRESHOLD).nonzero(): ... with sigmoid "
            "probabilities",
            tuple(index_lines),
        )

    @staticmethod
    def _per_class_count(operands: list[ast.AST]) -> bool:
        """``predicted[y == c] == c``: the predictions of the images whose label is ``c``, compared
        with ``c`` itself (a per-class table of correct counts)."""
        for selected, other in ((operands[0], operands[-1]), (operands[-1], operands[0])):
            mask = selected.slice if isinstance(selected, ast.Subscript) else None
            if not (isinstance(mask, ast.Compare) and len(mask.ops) == 1 and isinstance(mask.ops[0], ast.Eq)):
                continue
            sides = [mask.left, mask.comparators[0]]
            if isinstance(other, ast.Name) and any(isinstance(side, ast.Name) and side.id == other.id for side in sides):
                return True
        return False

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
                if method in PASS_THROUGH_METHODS or method in ("squeeze", "item"):
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
            if self.is_module(func.value):
                if len(node.args) >= 2:
                    self._check_equality(node, list(node.args[:2]), func.attr != "ne")
            else:
                self._check_equality(node, [func.value, node.args[0]], func.attr != "ne")

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
        if name:
            self._report(
                node,
                "single-label-loss",
                f"{name} is a single-label loss: softmax over classes, one class index per image",
                f"use {_LOSSES[name]}",
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
        """``getattr(nn, "CrossEntropyLoss")``, or ``getattr(nn, args.loss)`` where ``--loss``
        defaults to one."""
        if not (isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2):
            return
        if "getattr" in self.defined or self.qualified(node.args[0]) not in _LOSS_MODULES:
            return
        attribute = node.args[1]
        if isinstance(attribute, ast.Constant) and isinstance(attribute.value, str):
            name, origin, change, related = attribute.value, "", "", ()
        else:
            key = attribute.attr if isinstance(attribute, ast.Attribute) else attribute.id if isinstance(attribute, ast.Name) else ""
            if key not in self.argument_defaults:
                return
            name, option, line = self.argument_defaults[key]
            origin, change, related = f" (the default of {option}, line {line})", f"; change the default of {option}", (line,)
        if name not in _LOSSES:
            return
        self._report(
            node,
            "single-label-loss",
            f"getattr builds {name}{origin}, a single-label loss: softmax over classes, one class index per image",
            f"use {_LOSSES[name]}{change}",
            related,
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
        if not LABEL_NAME.match(root):
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

    def _takes_indices(self, node: ast.Call) -> bool:
        parent = self.parents.get(node)
        if isinstance(parent, ast.Subscript) and int_constant(parent.slice) in (1, -1):
            return True
        if isinstance(parent, ast.Attribute) and parent.attr == "indices":
            return True
        if isinstance(parent, ast.Assign) and isinstance(parent.targets[0], ast.Tuple):
            elements = parent.targets[0].elts
            return len(elements) == 2 and not (isinstance(elements[1], ast.Name) and elements[1].id == "_")
        return False

    def _check_softmax(self, node: ast.Call) -> None:
        func = node.func
        # ``self.fc(x).softmax(dim=1)`` has no qualified name: the attribute still names the call.
        name = func.attr if isinstance(func, ast.Attribute) else self.qualified(func).split(".")[-1]
        if name not in ("softmax", "log_softmax"):
            return
        scope = self.scope()
        if scope.function == "__init__" or ATTENTION.search(scope.function) or ATTENTION.search(scope.class_name):
            return
        # ``self.softmax(x)`` calls an ``nn.Softmax`` layer on ``x``; ``x.softmax(dim=1)`` is a method of ``x``.
        layer = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"
        method = isinstance(func, ast.Attribute) and not self.is_module(func.value) and not layer
        subject = func.value if method else (node.args[0] if node.args else None)
        if subject is None or any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.MatMult) for n in ast.walk(subject)):
            return
        if name == "log_softmax" and self.ctc:
            return  # CTC's input: a distribution over the alphabet at each time step, not image labels
        parent = self.parents.get(node)
        if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.MatMult):
            return  # weights for a matrix product (attention, an expectation over bins)
        if scope.function.startswith("forward") or scope.function == "__call__":
            # Model code: only a softmax the model returns is over its classes.
            if not isinstance(parent, ast.Return) and not self._returned_through_name(node, subject):
                return
            if name == "softmax":
                self._model_output(self._report(
                    node,
                    "softmax-class-dim",
                    "forward returns softmax probabilities: the labels compete for one unit of probability, "
                    "and a BCE-with-logits loss or a sigmoid applied to them is wrong",
                    "return the raw logits from forward; apply torch.sigmoid(logits) where probabilities are needed",
                ))
            return  # a log_softmax returned from forward is ML103's
        fed_to_metric = isinstance(parent, ast.Call) and node in parent.args and self._is_metric_call(parent)
        if not fed_to_metric and not self.model_output_like(subject):
            return
        distilled = isinstance(parent, ast.Call) and self.qualified(parent.func).split(".")[-1] == "kl_div"
        if distilled:
            message = "distillation by KL divergence between softmax distributions treats the classes as exclusive"
            suggestion = (
                "distil per label: F.binary_cross_entropy_with_logits(student_logits / T, "
                "torch.sigmoid(teacher_logits / T))"
            )
        elif name == "softmax":
            message = "softmax over the classes makes the labels compete for one unit of probability"
            suggestion = "use torch.sigmoid(logits): one independent probability per label"
        else:
            message = "log_softmax over the classes normalises the labels against each other (a single-label log-likelihood)"
            suggestion = "keep the raw logits and use BCEWithLogitsLoss / torch.sigmoid(logits)"
        self._report(node, "softmax-class-dim", message, suggestion)

    def _returned_through_name(self, node: ast.Call, subject: ast.AST) -> bool:
        """``out = F.softmax(z, dim=1); return out``: the assignment is the binding of ``out`` that a
        ``return out`` (or ``return out, features``) of the same function reads."""
        statement = self.parents.get(node)
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name)):
            return False
        name = statement.targets[0].id
        if any(_NOT_CLASS_SCORES.search(word) for word in (name, self.root_name(subject), self.scope().class_name)):
            return False  # pooling, gating or routing weights, returned as such
        dims = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "dim")]
        if any(int_constant(dim) not in (1, -1) for dim in dims):
            return False  # over a dimension chosen at run time, or not the class dimension
        function = statement
        while function is not None and not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = self.parents.get(function)
        if function is None:
            return False
        bindings = sorted(
            (child.lineno, child)
            for child in ast.walk(function)
            if isinstance(child, ast.Name) and child.id == name and isinstance(child.ctx, ast.Store)
        )
        for returned in ast.walk(function):
            if not isinstance(returned, ast.Return) or returned.value is None:
                continue
            value = returned.value.elts[0] if isinstance(returned.value, ast.Tuple) and returned.value.elts else returned.value
            if not (isinstance(value, ast.Name) and value.id == name):
                continue
            before = [bound for line, bound in bindings if line <= returned.lineno]
            if before and self.parents.get(before[-1]) is statement:
                return True
        return False

    def _check_softmax_layer(self, node: ast.Call) -> None:
        """``nn.Sequential(nn.Linear(d, C), nn.Softmax(dim=1))``: the model ends in probabilities.

        Only the last layer of a ``Sequential`` counts, over the class dimension, and not where
        the names say attention or the layer before it scores one unit (attention pooling)."""
        if self.qualified(node.func) not in _SOFTMAX_LAYERS:
            return
        dim = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "dim"), None)
        if dim is not None and int_constant(dim) not in (1, -1):
            return
        sequential = self.parents.get(node)
        if isinstance(sequential, ast.Call) and isinstance(sequential.func, ast.Attribute) and sequential.func.attr == "append":
            sequential = self._sequential_of_last_layer(sequential)
        elif not (
            isinstance(sequential, ast.Call)
            and self.qualified(sequential.func) in _SEQUENTIAL
            and sequential.args
            and sequential.args[-1] is node
        ):
            return
        if sequential is None:
            return
        scope = self.scope()
        holder = self.parents.get(sequential)
        bound = " ".join(_binding_key(target) for target in getattr(holder, "targets", ()))
        if any(ATTENTION.search(name) for name in (scope.function, scope.class_name, bound)):
            return
        previous = sequential.args[-2] if len(sequential.args) > 1 else None
        if isinstance(previous, ast.Call) and len(previous.args) >= 2 and int_constant(previous.args[1]) == 1:
            return  # nn.Linear(d, 1) then Softmax: weights over positions, not classes
        record = self._report(
            node,
            "softmax-class-dim",
            "an nn.Softmax layer ends the model: it outputs probabilities over competing classes, and a "
            "BCE-with-logits loss or a sigmoid applied to them is wrong",
            "remove the nn.Softmax layer so the model returns raw logits; apply torch.sigmoid(logits) where "
            "probabilities are needed",
        )
        if record is not None:
            record.followed = False  # the layer is reported where it is built, whatever uses the model
        self._model_output(record)

    def _sequential_of_last_layer(self, append: ast.Call) -> ast.Call | None:
        """``layers.append(nn.Softmax(dim=1))`` as the last layer appended before
        ``nn.Sequential(*layers)`` in the same block of code: that Sequential ends in it."""
        layers = append.func.value  # type: ignore[attr-defined]
        if not isinstance(layers, ast.Name):
            return None
        scope: ast.AST | None = append
        while scope is not None and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
            scope = self.parents.get(scope)
        if scope is None:
            return None
        appends, built = [], None
        for inner in ast.walk(scope):
            if not isinstance(inner, ast.Call):
                continue
            if isinstance(inner.func, ast.Attribute) and inner.func.attr in ("append", "extend") and \
                    isinstance(inner.func.value, ast.Name) and inner.func.value.id == layers.id:
                appends.append(inner)
            elif self.qualified(inner.func) in _SEQUENTIAL and len(inner.args) == 1 and isinstance(inner.args[0], ast.Starred) \
                    and isinstance(inner.args[0].value, ast.Name) and inner.args[0].value.id == layers.id:
                built = inner
        if built is None:
            return None
        before = [call for call in appends if (call.lineno, call.col_offset) < (built.lineno, built.col_offset)]
        last = max(before, key=lambda call: (call.lineno, call.col_offset), default=None)
        return built if last is append else None

    def _model_output(self, record: _Record | None) -> None:
        if record is not None:
            record.model_output = True

    def _metric_kind(self, node: ast.Call) -> tuple[str, str] | None:
        """(why, what to use) for a metric construction that counts class indices; None when it is multi-label."""
        qualified = self.qualified(node.func)
        parts = qualified.split(".")
        name = parts[-1]
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        # The task may be positional: Accuracy("multiclass", num_classes=10), accuracy(p, y, "multiclass").
        task = keywords.get("task") or next(
            (a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)), None
        )
        task_value = task.value if isinstance(task, ast.Constant) else None
        if qualified.startswith(_TORCHMETRICS_ROOTS):
            if name.startswith("Multiclass") or name.startswith("multiclass_"):
                return f"torchmetrics {name} scores one class index per image", _SUGGEST_TORCHMETRICS
            if name in _TORCHMETRICS_TASK_METRICS:
                if task_value == "multiclass":
                    return f'torchmetrics {name}(task="multiclass") scores one class index per image', _SUGGEST_TORCHMETRICS
                if task is None and "num_labels" not in keywords and parts[-2:-1] != ["functional"] and name[0].isupper():
                    return f"torchmetrics {name}() without task= scores class indices", _SUGGEST_TORCHMETRICS
            return None
        if qualified.startswith("ignite.metrics"):
            if name in _IGNITE_SINGLE_LABEL_ONLY:
                return f"ignite {name} ranks one true class per image", "drop it; report thresholded metrics (exact match, F1, mAP)"
            if name in _IGNITE_MULTILABEL_METRICS:
                flag = keywords.get("is_multilabel")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    return (
                        f"ignite {name}() without is_multilabel=True expects one class index per image",
                        f"{name}(output_transform=..., is_multilabel=True) on thresholded (sigmoid > THRESHOLD) outputs",
                    )
            return None
        if qualified in ("evaluate.load", "datasets.load_metric") and node.args:
            first = node.args[0]
            config = node.args[1] if len(node.args) > 1 else keywords.get("config_name")
            if (
                isinstance(first, ast.Constant)
                and first.value in _HF_CLASS_METRICS
                and not (isinstance(config, ast.Constant) and config.value == "multilabel")
            ):
                return (
                    f'evaluate.load("{first.value}") without the "multilabel" configuration expects one class per example',
                    f'evaluate.load("{first.value}", "multilabel") fed thresholded multi-hot predictions',
                )
        return None

    def _check_class_metric(self, node: ast.Call) -> None:
        kind = self._metric_kind(node)
        if kind is not None:
            self._report(node, "class-index-metric", *kind)
            return
        keywords = {k.arg for k in node.keywords}
        name = self.qualified(node.func).split(".")[-1]
        if _TOP_K_METRIC.match(name) and len(node.args) >= 2 and name not in self.defined:
            # pycls's ``meters.topk_errors(preds, labels, [1, 5])``, defined in another module
            self._report(
                node,
                "topk-accuracy",
                f"{name} ranks the classes of each image against its one true class (top-k accuracy or error); "
                "it has no multi-label meaning",
                "replace it with thresholded metrics: exact match, F1 (micro/macro), mAP",
            )
            return
        if "topk" in keywords and _METRIC_FUNCTION.search(name) and not (
                isinstance(node.func, ast.Name) and node.func.id in self.exact_match_helpers):
            self._report(
                node,
                "topk-accuracy",
                "top-k accuracy ranks one true class per image; it has no multi-label meaning",
                "replace it with thresholded metrics: exact match, F1 (micro/macro), mAP",
            )

    def _is_metric_call(self, node: ast.Call) -> bool:
        """``accuracy_score(...)``, ``acc(...)`` on a metric object, ``metric.update(...)``/``add_batch``."""
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        receiver_name = ""
        if isinstance(func, ast.Attribute):
            receiver = func.value
            receiver_name = receiver.attr if isinstance(receiver, ast.Attribute) else receiver.id if isinstance(receiver, ast.Name) else ""
        return (
            bool(_METRIC_FUNCTION.search(name))
            or name in self.metric_objects
            or (name in _METRIC_UPDATE_METHODS and (receiver_name in self.metric_objects or bool(_METRIC_FUNCTION.search(receiver_name))))
        )

    def _check_metric_inputs(self, node: ast.Call) -> None:
        if not self._is_metric_call(node):
            return
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        arguments = [*node.args, *(k.value for k in node.keywords if k.arg in _METRIC_PREDICTION_KEYWORDS)]
        flattened = [line for line in map(self._flattened_multi_hot, arguments) if line]
        if flattened and "acc" in name.lower():
            self._report(
                node,
                "per-element-accuracy",
                f"{name} of flattened multi-hot rows scores each of the B x C labels separately (label-wise "
                "accuracy, dominated by negatives)",
                "pass the [B, C] rows unflattened (accuracy_score then gives exact match), or report F1/mAP/Hamming loss",
                tuple(flattened),
            )
            return
        lines = [line for value, line in (self.value_of(argument) for argument in arguments) if value == CLASS_INDEX]
        if lines:
            self._report(
                node,
                "argmax-metric",
                f"{name} is given arg-max class indices (one label per image)",
                f"{_SUGGEST_THRESHOLD}, and pass those multi-hot rows (with multi-hot labels) to a multi-label metric",
                tuple(lines),
            )

    def _flattened_multi_hot(self, node: ast.AST) -> int:
        """The line of the prediction when ``node`` flattens thresholded rows (``preds.ravel()``,
        ``preds.reshape(-1)``, ``np.ravel(preds)``); 0 otherwise."""
        if not isinstance(node, ast.Call):
            return 0
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("ravel", "flatten") and not node.args:
            subject = func.value
        elif isinstance(func, ast.Attribute) and func.attr in ("reshape", "view") and len(node.args) == 1 \
                and int_constant(node.args[0]) == -1:
            subject = func.value
        elif self.qualified(func).split(".")[-1] in ("ravel", "flatten") and len(node.args) == 1:
            subject = node.args[0]
        else:
            return 0
        value, line = self.value_of(subject)
        return line if value == MULTI_HOT else 0

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

    def _check_element_count(self, node: ast.Call) -> None:
        """``matches.long().sum()`` where ``matches = preds == labels`` on thresholded predictions."""
        func = node.func
        if node.args or node.keywords:
            subject = node.args[0] if len(node.args) == 1 and not node.keywords else None
            if subject is None or self.qualified(func).split(".")[-1] not in ("sum", "mean", "count_nonzero"):
                return
            if not (isinstance(func, ast.Attribute) and self.is_module(func.value)):
                return
        elif isinstance(func, ast.Attribute) and func.attr in ("sum", "mean", "count_nonzero"):
            subject = func.value
        else:
            return
        while isinstance(subject, ast.Call) and isinstance(subject.func, ast.Attribute) and subject.func.attr in PASS_THROUGH_METHODS:
            subject = subject.func.value
        if isinstance(subject, ast.Compare):
            return  # the comparison itself is checked where it is written
        value, line = self.value_of(subject)
        if value == MATCHES:
            self._report(
                node,
                "per-element-accuracy",
                "element-wise matches of a thresholded multi-label prediction are counted over all B x C entries "
                "(label-wise accuracy; divided by the number of images it exceeds 100 %)",
                "reduce per image first: (preds == labels.bool()).all(dim=1) for exact match, or report F1/mAP/Hamming loss",
                (line,),
            )

    def _check_stored_prediction(self, node: ast.Assign) -> None:
        """``test["label"] = predictions.argmax(1)``, ``oof["preds"] = ckpt["preds"].argmax(1)``: an
        arg-max over the class axis written as a table's column is the predicted class of each
        image (a submission, out-of-fold predictions), whatever the scores were called; so is a
        name bound to one before (``pred = pred.argmax(axis=1)`` and, cells later,
        ``sample_sub["label"] = pred``)."""
        target = node.targets[0] if len(node.targets) == 1 else None
        if isinstance(target, ast.Subscript) and _is_column_key(target.slice):
            key = target.slice.value if isinstance(target.slice, ast.Constant) else ""
            self._report_stored_argmax(node.value, node, ast.unparse(target), key)

    def _read_argmax_column(self, node: ast.Assign) -> None:
        """``preds = result_df["preds"].values``: a column this file stores an arg-max in, read back
        from whichever table holds it now (out-of-fold frames joined across folds): class indices."""
        value = node.value
        while isinstance(value, ast.Attribute) and value.attr == "values" or (
            isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in ("to_numpy", "tolist")
        ):
            value = value.value if isinstance(value, ast.Attribute) else value.func.value
        if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant) and value.slice.value in self.argmax_columns:
            for target in node.targets:
                # the read's own line: the stored arg-max stays reported where it is taken
                self.bind(target, CLASS_INDEX, node.lineno)

    def _check_prediction_table(self, node: ast.Call) -> None:
        """``pd.DataFrame({"image_id": ids, "label": preds})`` with ``preds`` an arg-max over the classes."""
        if not (self.qualified(node.func) == "pandas.DataFrame" and node.args and isinstance(node.args[0], ast.Dict)):
            return
        statement = self.parents.get(node)
        while statement is not None and not isinstance(statement, ast.stmt):
            statement = self.parents.get(statement)
        for key, value in zip(node.args[0].keys, node.args[0].values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str) and statement is not None:
                self._report_stored_argmax(value, statement, f"{key.value!r}", key.value)

    def _report_stored_argmax(self, value: ast.AST, statement: ast.stmt, column: str, key: str) -> None:
        stored = ""
        if isinstance(value, ast.Name):
            stored, value = value.id, self._last_bound(value.id, statement)
        if not (isinstance(value, ast.Call) and self._argmax_over_classes(value)):
            return
        if key:
            self.argmax_columns.add(key)
        where = f" (stored as the column {column} at line {statement.lineno})" if stored else ""
        self._report(
            value,
            "argmax-prediction",
            f"an arg-max over the classes is stored as each image's predicted label (a submission or out-of-fold "
            f"column){where}: exactly one class per image",
            "store every label above the threshold instead: one 0/1 column per label, (probs > THRESHOLD).astype(int), "
            "or the names of the labels above it joined by spaces",
            (statement.lineno,) if stored else (),
        )

    def _argmax_over_classes(self, value: ast.Call) -> bool:
        subject = self.index_subject(value)
        func = value.func
        if subject is None or not (isinstance(func, ast.Attribute) and func.attr == "argmax" or self._takes_indices(value)):
            return False
        if LABEL_NAME.match(self.root_name(subject)):
            return False
        return _over_the_class_axis(value, self.is_module(func.value) if isinstance(func, ast.Attribute) else True)

    def _last_bound(self, name: str, before: ast.stmt) -> ast.AST | None:
        """What the last plain ``name = ...`` of the scope of ``before`` (its function, or the module)
        above it assigns."""
        def scope_of(node: ast.AST) -> ast.AST | None:
            scope = self.parents.get(node)
            while scope is not None and not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                scope = self.parents.get(scope)
            return scope

        scope = scope_of(before)
        bindings = [
            statement for statement in ast.walk(scope or self.tree) if isinstance(statement, ast.Assign)
            and statement.lineno < before.lineno and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == name
            and scope_of(statement) is scope
        ]
        return max(bindings, key=lambda statement: statement.lineno).value if bindings else None

    def _check_most_confident_class(self, node: ast.Assign) -> None:
        """``incorrect_prob, incorrect_label = torch.max(probs, dim=0)``: the most probable class of
        one image's probabilities, shown as its predicted label."""
        target = node.targets[0] if len(node.targets) == 1 else None
        value = node.value
        if not (isinstance(target, ast.Tuple) and len(target.elts) == 2 and isinstance(value, ast.Call)):
            return
        subject = self.index_subject(value)
        if subject is None or not _PROBABILITIES.search(self.root_name(subject)):
            return
        self._report(
            value,
            "argmax-prediction",
            "the most probable class of an image's probabilities is taken as its one predicted label",
            "show every label above the threshold: (probs > THRESHOLD).nonzero() with sigmoid probabilities",
        )

    def _check_prediction(self, node: ast.Call) -> None:
        """An arg-max over a model's output: one class per image, even when nothing here compares it."""
        subject = self.index_subject(node)
        if subject is None:
            return
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name != "argmax" and not self._takes_indices(node):
            return
        value = self.value_of(subject)[0]
        if value == MODEL_OUTPUT or isinstance(subject, ast.Call) and self.is_model_call(subject):
            message = "an arg-max over the model's output predicts exactly one class per image"
        elif value is None and self._own_logits(subject) and self._over_classes(node) and self._whole_value(node):
            # ``logits = sbs.predict(x); np.argmax(logits, 1)``: whatever returned them, logits
            # are scores over the classes, and their arg-max along the class axis is one class.
            message = "an arg-max over the logits' class axis predicts exactly one class per image"
        elif value is None and self._reported_softmax(subject) and self._over_classes(node) and self._whole_value(node):
            # ``proba = F.softmax(logits, dim=-1); labels = torch.argmax(proba, dim=-1)`` in a
            # prediction helper: the softmax is reported, and its arg-max is the helper's answer,
            # reported as built on it (not as a use that the softmax's finding covers).
            softmax = self._reported_softmax(subject)
            softmax.related.discard(node.lineno)
            self._report(
                node, "argmax-prediction", "an arg-max over the softmax probabilities predicts exactly one class per image",
                _SUGGEST_THRESHOLD, (softmax.line,),
            )
            return
        elif value is None and self._returned_by_predict_step(node) and self.predicts_a_class(subject) and self._over_classes(node):
            message = (
                "predict_step returns an arg-max over the classes: trainer.predict hands exactly one class per image "
                "to whatever writes the predictions"
            )
        else:
            return
        self._report(node, "argmax-prediction", message, _SUGGEST_THRESHOLD)

    def _reported_softmax(self, subject: ast.AST) -> _Record | None:
        """The softmax over a model's output reported here that the name ``subject`` is bound to."""
        record = self.bound_constructs.get(_binding_key(subject))
        return record if record is not None and record.kind == "softmax-class-dim" else None

    def _whole_value(self, node: ast.Call) -> bool:
        """The arg-max is what a statement binds, returns or shows (``predicted = np.argmax(z, 1)``):
        one inside a comparison or a metric call is reported as that comparison or metric."""
        return isinstance(self.parents.get(node), (ast.Assign, ast.AnnAssign, ast.Return, ast.Expr))

    def _own_logits(self, subject: ast.AST) -> bool:
        """Logits by name that are this model's: a teacher's arg-max is a distillation target,
        reported at the loss it is given to."""
        return self.is_logits(subject) and self.predicts_a_class(subject) and "teacher" not in self.root_name(subject).lower()

    def _over_classes(self, node: ast.Call) -> bool:
        """An arg-max or index pair along axis 1 or -1 (``max``/``topk`` are checked by their own
        dims) that picks one class: ``topk(2)`` ranks two (the most confused pair of a callback)."""
        func = node.func
        if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) == "topk":
            return self.k_of_topk(node) == 1
        if isinstance(func, ast.Attribute) and func.attr == "argmax":
            return _over_the_class_axis(node, self.is_module(func.value))
        if isinstance(func, ast.Name) and func.id == "argmax":
            return _over_the_class_axis(node, True)
        return True

    def _returned_by_predict_step(self, node: ast.Call) -> bool:
        """``return preds.argmax(1)`` in a Lightning ``predict_step``: its result is what
        ``trainer.predict`` collects as the predictions (the other steps train and score)."""
        if self.scope().function != "predict_step" or not self.scope().class_name:
            return False
        current: ast.AST = node
        parent = self.parents.get(current)
        while isinstance(parent, ast.Attribute) and parent.attr in PASS_THROUGH_METHODS:
            call = self.parents.get(parent)
            if not isinstance(call, ast.Call):
                return False
            current, parent = call, self.parents.get(call)
        return isinstance(parent, ast.Return)
