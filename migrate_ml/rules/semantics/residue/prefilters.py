"""The safety net's cheap text tests, run before a file is parsed: the words a still-single-label
construct needs, model code without training code, and a softmax that may be returned.
"""

from __future__ import annotations

import re

from migrate_ml.rules._prefilter import has_loss_marker, has_training_marker, text_facts
from migrate_ml.rules.semantics.metrics import TRIGGER_WORDS as METRIC_WORDS

API_WORDS = (
    "CrossEntropy", "cross_entropy", "nll_loss", "NLLLoss", "ccuracy", "ulticlass", "ignite", "_score(",
    "evaluate.load", "classification_report", "confusion_matrix",
)
"""Loss and metric names specific enough to look at a file for, even outside training code."""
MEANING_WORDS = (
    "__getitem__", "scatter_(", "one_hot", "onitor", "metric_for_best_model", "ReduceLROnPlateau", "caption",
    "add_data(", "ith_logits", "ithLogits", "logits", ".predictions", ".float()", "gather(", "LabelEncoder",
    "get_dummies", "bincount(", "return_counts", "] +=", "gamma(", "kl_div", "exp(-", "tratif", "with_transform",
    "set_transform", "setdefault(",
)
"""Words of what the meaning analysis looks at: datasets, hand-written one-hot targets, model
selection, per-image logging, half-migrated logits code, a cast target next to uncast ones (`.float()`),
label encodings (``LabelEncoder``, ``get_dummies``), splits stratified on the label (``stratify=``,
``StratifiedKFold``), batch transforms of Hugging Face datasets (``with_transform``), class counts (``bincount``, ``counts[label] += 1``), samples grouped by their label (``setdefault(``)
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


_LOSS_MODULE_WORDS = ("kl_div(", "focal_loss(")
"""A loss module's words that name no single-label API: distillation's ``kl_div``, a focal loss."""


_LOSS_CLASS = re.compile(r"^[ \t]*class[ \t]+\w*Loss\w*[ \t]*\(", re.MULTILINE)


def defines_loss_class(text: str) -> bool:
    """A class named as a loss (``class FocalLoss(nn.Module)``): its ``forward`` computes a loss."""
    return text_facts(text).has("Loss") and _LOSS_CLASS.search(text) is not None


def is_model_code_only(text: str) -> bool:
    """Model code without training, evaluation or loss code (a ``models.py``): an arg-max or a
    comparison there routes tokens or experts; only a model ending in softmax is reported. A
    ``kl_div`` or a ``sigmoid_focal_loss`` call, or a class named as a loss, is loss code: a loss
    module's ``forward`` computes a loss, not a model."""
    facts = text_facts(text)
    return facts.has("def forward") and not facts.has_any(_LOSS_MODULE_WORDS) and not defines_loss_class(text) and not (
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
