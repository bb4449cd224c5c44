"""Text tests that rules combine with their triggers before a file is parsed.

Words such as ``argmax``, ``softmax``, ``.long()`` or ``lam`` occur all over model and library
code (attention, patch selection, dtype plumbing), where no migration applies. Parsing and
resolving metadata for such a file costs about ten times its parse, so rules keyed on common
words also require one of these markers of training, evaluation or loss code.
"""

from __future__ import annotations

import re

_TRAINING_MARKER = re.compile(
    r"\b(?:model|net|self|model_ft)\(|\b(?:model|net|model_ft)\.eval\(\)|\bcriterion\b|\bloss_fn\(|accuracy\("
    r"|\bacc\d?\s*\+?=|\bcorrect(?:s|_\w+)?\s*\+=|\bpredict\b|_step\(self|compute_metrics|torchmetrics"
)

_LOSS_MARKER = re.compile(
    r"CrossEntropy|cross_entropy|BCEWithLogits|binary_cross_entropy|nll_loss|NLLLoss|\bcriterion\b|\bloss_fn\b|\.backward\("
)


def has_training_marker(source: str) -> bool:
    """Training, evaluation or inference code: a model call, a criterion, an accuracy counter…"""
    return _TRAINING_MARKER.search(source) is not None


def has_loss_marker(source: str) -> bool:
    """A loss is built, called or back-propagated somewhere in the file."""
    return _LOSS_MARKER.search(source) is not None
