"""Sample logits that tell a threshold on raw logits from one on probabilities, and the check that uses them.

``logits > t`` and ``sigmoid(logits) > t`` agree everywhere except between ``t`` and ``logit(t)``
(``(0, 0.5]`` at ``t = 0.5``). Logits at ±3 never fall there, so a metric thresholding raw logits
would equal the reference by chance. :func:`band_mask` picks one true label on a share of the
samples, and :func:`hint` puts its logit in the middle of that band: the two thresholds then give
different predictions on those samples, and metrics computed either way differ measurably.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

BAND_FRACTION = 0.3
"""Share of the samples with one true label's logit in the band: exact match moves by about a third of it."""
THRESHOLD_NAME = re.compile(r"thresh|thr$|cutoff", re.I)
ON_LOGITS = "threshold applied to logits"
ON_LOGITS_FIX = ("threshold probabilities: torch.sigmoid(logits) > THRESHOLD (for NumPy predictions, "
                 "1 / (1 + np.exp(-logits)) > THRESHOLD); logits > 0 is sigmoid(logits) > 0.5")
PROBABILITY_TEXT = re.compile(r"sigmoid|expit|exp\(|prob|softmax|score", re.I)
"""A compared value whose text says it is already a probability (``torch.sigmoid(x)``, ``probs``)."""


def band_value(threshold: float) -> float:
    """The logit half-way between ``threshold`` and ``logit(threshold)``, where the two thresholds disagree."""
    threshold = min(max(threshold, 1e-6), 1 - 1e-6)
    return (threshold + math.log(threshold / (1 - threshold))) / 2


def band_mask(targets, generator):
    """``[N, C]`` bool: one true label on :data:`BAND_FRACTION` of the samples (those with a true label)."""
    import torch

    chosen = (torch.rand(len(targets), generator=generator) < BAND_FRACTION) & (targets > 0).any(1)
    # a random true label per sample: the arg-max of random scores over its true labels
    column = torch.where(targets > 0, torch.rand(targets.shape, generator=generator), torch.full(targets.shape, -1.0)).argmax(1)
    mask = torch.zeros(targets.shape, dtype=torch.bool)
    rows = torch.nonzero(chosen).flatten()
    mask[rows, column[rows]] = True
    return mask


def hint(sample, out, rows):
    """``out`` with the sample's hints: hint logits added, and the band entries set to the band value."""
    import torch

    found = rows >= 0
    addition = torch.zeros_like(out)
    addition[found] = sample.hint_logits[rows[found]].to(out.dtype)
    band = torch.zeros(out.shape, dtype=torch.bool, device=out.device)
    if out.shape[1:] == sample.band.shape[1:]:
        band[found] = sample.band[rows[found]].to(out.device)
    return torch.where(band, torch.full_like(out, sample.band_value), out + addition)


def logits_references(z, y, threshold: float, averaged) -> dict[str, Any]:
    """The reference metrics of predictions made by thresholding the raw logits ``z`` (the bug)."""
    from ..api import exact_match

    preds = (z > threshold).long()
    return {"exact_match": exact_match(preds, y), "per_element": float((preds == y.long()).float().mean()),
            "others": averaged(preds, y.long())}


def on_logits(value: float, ref: dict, measures: list[str], average: str, close) -> str | None:
    """The reference of raw-logit predictions ``value`` equals (and the correct one does not), as text; else None."""
    wrong = ref.get("logits_threshold")
    if not wrong:
        return None
    scaled = [value] + ([value / 100] if value > 1 else [])
    if not measures or measures == ["exact match"]:
        pairs = [("exact match", wrong["exact_match"], ref["exact_match"])]
    else:
        pairs = [(key, other, ref["others"].get(key, ref["others"].get(key.partition("(")[0], math.nan))) for key, other in wrong["others"].items()
                 if key.partition("_")[0] in measures and (not average or key.partition("_")[2].startswith(average))]
    for key, other, right in pairs:
        if any(close(v, other) for v in scaled) and not close(other, right):
            return (f"{value:.4g} equals the {key} {other:.4f} of the predictions logits > threshold; the reference on "
                    f"sigmoid(logits) > threshold is {right:.4f}")
    return None


def threshold_site(path: str, line: int | None) -> tuple[int, str] | None:
    """The comparison that thresholds a value not shown to be a probability, in the function (or class) at ``line``
    of ``path``, else anywhere in the file: ``(line, source text)``."""
    try:
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        tree = ast.parse(source)
    except (OSError, SyntaxError, ValueError):
        return None
    scopes = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
              and node.lineno <= (line or 0) <= (node.end_lineno or node.lineno)]
    for scope in sorted(scopes, key=lambda node: node.lineno, reverse=True) + [tree]:
        for node in ast.walk(scope):
            if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Gt, ast.GtE)) \
                    and _is_threshold(node.comparators[0]) and not PROBABILITY_TEXT.search(ast.unparse(node.left)):
                return node.lineno, ast.unparse(node)
    return None


def _is_threshold(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, float) and 0 < node.value < 1
    text = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return bool(THRESHOLD_NAME.search(text))


def blamed_line(reason: str, path: str, def_line: int | None, line: int | None) -> tuple[int | None, str]:
    """The line a metric row names, and its reason: the comparison that thresholds the logits when that is the
    failure, else ``line`` and ``reason`` unchanged."""
    if not reason.startswith(ON_LOGITS):
        return line, reason
    site = threshold_site(path, def_line)
    if not site:
        return line, reason
    return site[0], f"{ON_LOGITS} (`{site[1]}`, line {site[0]}){reason.removeprefix(ON_LOGITS)}"
