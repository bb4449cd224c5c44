"""Text tests that rules combine with their triggers before a file is parsed.

Words such as ``argmax``, ``softmax``, ``.long()`` or ``lam`` occur all over model and library
code (attention, patch selection, dtype plumbing), where no migration applies. Parsing and
resolving metadata for such a file costs about ten times its parse, so rules keyed on common
words also require one of these markers of training, evaluation or loss code.
"""

from __future__ import annotations

import ast
import re
import warnings

# Each pattern starts with a lookahead on the first characters its alternatives can start
# with: Python's ``re`` tries every alternative at every position otherwise, and these run
# over every file with a common word (3-4x faster on the timm tree). Keep the set in step
# with the alternatives.
_TRAINING_MARKER = re.compile(
    r"(?=[mnsclap_t])(?:\b(?:model|net|self|model_ft)\(|\b(?:model|net|model_ft)\.eval\(\)|\bcriterion\b|\bloss_fn\(|accuracy\("
    r"|\bacc\d?\s*\+?=|\bcorrect(?:s|_\w+)?\s*\+=|\bpredict\b|_step\(self|compute_metrics|torchmetrics)"
)

_LOSS_MARKER = re.compile(
    r"(?=[CcBbnNl.])(?:CrossEntropy|cross_entropy|BCEWithLogits|binary_cross_entropy|nll_loss|NLLLoss|\bcriterion\b|\bloss_fn\b|\.backward\()"
)


_last: dict[re.Pattern, tuple[str, bool]] = {}
"""The last text each marker was searched in, and the answer: every rule asks about the same text."""


def _search(marker: re.Pattern, source: str) -> bool:
    last = _last.get(marker)
    if last is not None and last[0] is source:
        return last[1]
    found = marker.search(source) is not None
    _last[marker] = (source, found)
    return found


def has_training_marker(source: str) -> bool:
    """Training, evaluation or inference code: a model call, a criterion, an accuracy counter…"""
    return _search(_TRAINING_MARKER, source)


def has_loss_marker(source: str) -> bool:
    """A loss is built, called or back-propagated somewhere in the file."""
    return _search(_LOSS_MARKER, source)


_last_tree: tuple[str, ast.Module] | None = None


def parse_once(text: str) -> ast.Module:
    """``ast.parse(text)``, once per text: the rules' syntax-tree pre-check and the safety net
    read the same file, and neither changes the tree. Raises what ``ast.parse`` raises."""
    global _last_tree
    if _last_tree is not None and _last_tree[0] is text:
        return _last_tree[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarnings about the user's code are not this run's to print
        tree = ast.parse(text)
    _last_tree = (text, tree)
    return tree
