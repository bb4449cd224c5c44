"""ML107's accuracy names: which identifiers and metric keys read as an accuracy, a best accuracy so
far or a lowest top-1 error (split into words, snake_case and camelCase), and the expression helpers that
read them off the code.
"""

from __future__ import annotations

import re

import libcst as cst


# A best-accuracy name, split into lower-case words (snake_case and camelCase): a "best" word
# first, then at least one accuracy word, and otherwise only words that say which model or split it
# was measured on. ``best_acc_epoch`` (an epoch number) or ``best_f1`` are other things.
_BEST_WORDS = frozenset({"best", "max", "highest"})
_ACCURACY_WORDS = frozenset({"acc", "accuracy", "acc1", "top1", "prec1"})
_QUALIFIER_WORDS = frozenset(
    {"val", "valid", "validation", "test", "eval", "ema", "1", "model", "so", "far", "global", "balanced"}
)
_ERROR_WORDS = frozenset({"error", "err", "err1", "top1err"})
"""Top-1 error, ``1 - accuracy``: selected by its minimum."""
_LOWEST_WORDS = frozenset({"min", "best", "lowest"})
"""The first word of a name that keeps the lowest top-1 error so far (``min_top1_err``, ``best_err``)."""
_RANKING_WORDS = frozenset({"map", "ap", "f1", "auroc", "auc", "average", "precision"})
_TOP_K = re.compile(r"(?:top|acc|prec)_?([1-9]\d*)", re.IGNORECASE)
"""Words of a multi-label ranking or F1 score (``val_map``, ``val_f1``: already the advice), and of
a top-5 score: SimCLR's ``val_acc_top5`` ranks the positive pair among the batch, no labels, and a
classifier's top-5 is ML102's where it is computed."""
_WORD = re.compile(r"[A-Z]?[a-z]+\d*|[A-Z]+(?![a-z])\d*|\d+")
_CANDIDATE_NAME = re.compile(r"\b\w*(?:best|max|highest)\w*", re.IGNORECASE)
"""Identifiers with a "best" word somewhere: the only names ``_is_best_accuracy`` can accept."""
_LOWEST_ERROR_CANDIDATE = re.compile(r"\b(?:min|best|lowest)_?\w*err\w*", re.IGNORECASE)
"""Identifiers ``_is_lowest_error`` may accept (``min_top1_err``, ``best_error``)."""
_ACCURACY_CANDIDATE = re.compile(r"\b\w*(?:acc|top1|prec1|err)\w*", re.IGNORECASE)
"""Identifiers and keys ``_is_accuracy_variable`` may accept (``val_acc``, ``valid_error``, ``"acc1"``)."""


def _words(name: str) -> list[str]:
    """``max_accuracy_ema`` -> [max, accuracy, ema]; ``bestValAcc1`` -> [best, val, acc1]."""
    return [word.lower() for word in _WORD.findall(name)]


def _is_best_accuracy(name: str) -> bool:
    words = _words(name)
    if len(words) < 2 or words[0] not in _BEST_WORDS:
        return False
    rest = words[1:]
    return any(word in _ACCURACY_WORDS for word in rest) and all(
        word in _ACCURACY_WORDS or word in _QUALIFIER_WORDS for word in rest
    )


def _is_lowest_error(name: str, errors: bool) -> bool:
    """``min_top1_err``, ``best_error``: the lowest top-1 error so far. A bare error counts only where
    the file's errors are top-1 errors (``errors``); ``min_top5_err`` is a top-5 score."""
    words = _words(name)
    if len(words) < 2 or words[0] not in _LOWEST_WORDS:
        return False
    rest = words[1:]
    return any(word in _ERROR_WORDS for word in rest) and ("top1" in rest or errors) and all(
        word in _ERROR_WORDS or word in _QUALIFIER_WORDS or word == "top1" for word in rest
    )


def _is_stopper(callee: str) -> bool:
    """An early-stopping or checkpointing object called with a metric (``early_stopping(val_acc,
    model)``, ``model_checkpoint(acc, model, optimizer)``, ``self.stopper(acc)``), not a function that
    saves, loads or resumes one (``save_checkpoint``, ``resume_checkpoint``) or recomputes activations
    (``checkpoint(fn, x)``)."""
    words = _words(callee)
    return words[-2:] in (["early", "stopping"], ["model", "checkpoint"], ["best", "checkpoint"]) or words[-1:] in (
        ["stopper"], ["earlystopping"], ["checkpointer"]
    )


def _names_accuracy(metric: str) -> bool:
    """A metric's name (``val_acc``, ``valid_accuracy``, ``acc1``, ``Accuracy``)."""
    words = _words(metric)
    if any(word in _RANKING_WORDS for word in words):
        return False
    top_k = _TOP_K.search(metric)
    if top_k is not None:
        return top_k.group(1) == "1"
    return any(word in _ACCURACY_WORDS for word in words)


def _is_accuracy_variable(name: str, errors: bool) -> bool:
    """A variable holding one epoch's accuracy (``val_acc``, ``acc1``) or, where the file's error
    is a classification error, its top-1 error (``valid_error``)."""
    words = _words(name)
    measures = _ACCURACY_WORDS | (_ERROR_WORDS if errors else frozenset())
    return any(word in measures for word in words) and all(
        word in measures or word in _QUALIFIER_WORDS or word in ("train", "top", "avg", "mean", "epoch") for word in words
    )


def _may_name_accuracy(name: str) -> bool:
    """The pre-filter's reading of ``_is_accuracy_variable``: an error counts only qualified
    (``valid_error``), since a bare ``error`` is in most files (``logger.error``)."""
    return _is_accuracy_variable(name, False) or (len(_words(name)) > 1 and _is_accuracy_variable(name, True))


def _accuracy_name(expression: cst.BaseExpression) -> str | None:
    if isinstance(expression, cst.Attribute):
        expression = expression.attr
    if isinstance(expression, cst.Name) and _is_best_accuracy(expression.value):
        return expression.value
    return None


def _leaf(expression: cst.BaseExpression) -> str:
    """``self.val_acc`` -> ``val_acc``; ``nn.ReduceLROnPlateau`` -> ``ReduceLROnPlateau``."""
    if isinstance(expression, cst.Attribute):
        return expression.attr.value
    return expression.value if isinstance(expression, cst.Name) else ""


def _integer_index(expression: cst.Subscript) -> bool:
    """``x[0]``: one position of a sequence, not a key."""
    return len(expression.slice) == 1 and isinstance(expression.slice[0].slice, cst.Index) and isinstance(
        expression.slice[0].slice.value, cst.Integer
    )


def _string(expression: cst.BaseExpression) -> str | None:
    if isinstance(expression, cst.SimpleString):
        value = expression.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    return next((arg.value for arg in call.args if arg.keyword and arg.keyword.value == name), None)


def _subscripted_strings(node: cst.CSTNode) -> list[str]:
    """The string keys ``node`` reads: ``engine.state.metrics["accuracy"]`` -> [accuracy]."""
    found: list[str] = []

    class _Keys(cst.CSTVisitor):
        def visit_SubscriptElement(self, element: cst.SubscriptElement) -> None:
            if isinstance(element.slice, cst.Index):
                key = _string(element.slice.value)
                if key is not None:
                    found.append(key)

    node.visit(_Keys())
    return found
