"""ML107: best-checkpoint selection on accuracy (REVIEW)."""

from __future__ import annotations

import re

import libcst as cst

from migrate_ml.rules._base import Applicability, Rule

# A best-accuracy name, split into lower-case words (snake_case and camelCase): a "best" word
# first, then at least one accuracy word, and otherwise only words that say which model or split it
# was measured on. ``best_acc_epoch`` (an epoch number) or ``best_f1`` are other things.
_BEST_WORDS = frozenset({"best", "max", "highest"})
_ACCURACY_WORDS = frozenset({"acc", "accuracy", "acc1", "top1", "prec1"})
_QUALIFIER_WORDS = frozenset(
    {"val", "valid", "validation", "test", "eval", "ema", "1", "model", "so", "far", "global"}
)
_WORD = re.compile(r"[A-Z]?[a-z]+\d*|[A-Z]+(?![a-z])\d*|\d+")
_CANDIDATE_NAME = re.compile(r"\b\w*(?:best|max|highest)\w*", re.IGNORECASE)
"""Identifiers with a "best" word somewhere: the only names ``_is_best_accuracy`` can accept."""


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


def _accuracy_name(expression: cst.BaseExpression) -> str | None:
    if isinstance(expression, cst.Attribute):
        expression = expression.attr
    if isinstance(expression, cst.Name) and _is_best_accuracy(expression.value):
        return expression.value
    return None


class BestAccuracyCheckpointRule(Rule):
    code = "ML107"
    name = "best-accuracy-checkpoint"
    summary = "Reports best-checkpoint selection on accuracy (best_acc, max_accuracy_ema, bestValAcc, best_acc1)."
    rationale = (
        "Training scripts keep the checkpoint with the best validation accuracy "
        "(`if acc > best_acc: torch.save(...)`, `max_accuracy = max(max_accuracy, acc1)`, "
        "`is_best = acc1 > best_acc1`). After the migration that accuracy is exact match, which "
        "is strict, noisy on rare label combinations and often flat for many epochs, so it picks "
        "checkpoints poorly; a threshold-free ranking metric (mAP, macro average precision) or "
        "sample-F1 is the usual choice for multi-label model selection. Which metric matters is "
        "a project decision, so migrate-ml reports each comparison or update of the best-accuracy "
        "variable and leaves it alone."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "if acc > best_acc:\n    best_acc = acc\n    torch.save(model.state_dict(), path)\n"
    example_after = "if mAP > best_map:\n    best_map = mAP\n    torch.save(model.state_dict(), path)\n"
    triggers = ("best", "Best", "BEST", "max", "Max", "highest")

    @classmethod
    def could_apply(cls, source: str) -> bool:
        # "best" and "acc" each occur in most files (``accumulate``, ``max(``): only a name that
        # reads as a best accuracy (the test the rule itself applies) is worth a parse.
        lowered = source.lower()
        if not (any(w in lowered for w in _BEST_WORDS) and any(w in lowered for w in ("acc", "top1", "prec1"))):
            return False  # a plain substring test first: the name scan below costs ten times more
        return any(_is_best_accuracy(match.group()) for match in _CANDIDATE_NAME.finditer(source))

    def visit_Comparison(self, node: cst.Comparison) -> None:
        names = [_accuracy_name(node.left)] + [_accuracy_name(t.comparator) for t in node.comparisons]
        name = next((n for n in names if n), None)
        if name and any(isinstance(t.operator, (cst.GreaterThan, cst.GreaterThanEqual, cst.LessThan, cst.LessThanEqual)) for t in node.comparisons):
            self._report(node, name)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "max":
            name = next((n for n in (_accuracy_name(a.value) for a in node.args) if n), None)
            if name:
                self._report(node, name)

    def _report(self, node: cst.CSTNode, name: str) -> None:
        self.report(
            node,
            f"the best checkpoint is chosen on accuracy (`{name}`); multi-label exact match is a poor selection metric",
            suggestion="select on validation mAP (torchmetrics MultilabelAveragePrecision) or sample-F1, and rename the variable accordingly",
        )
