"""Multi-label metrics to the conventions papers report, and an exact per-class F1 threshold tuner.

Threshold convention, used everywhere in migrate-ml (metrics, tuner, codemod output): a label is
predicted positive when its probability is **strictly greater** than its threshold,
``probs > threshold``. This is also how torchmetrics binarises multi-label scores.

Definitions (``TP_c``, ``FP_c``, ``FN_c`` are class ``c``'s counts at the given thresholds):

* ``CP = mean_c TP_c / (TP_c + FP_c)``, ``CR = mean_c TP_c / (TP_c + FN_c)`` (per-class
  precision/recall averaged; 0 when a denominator is 0), ``CF1 = 2 CP CR / (CP + CR)``. CF1 is the
  harmonic mean of the averages, which is *not* macro-F1 (the average of per-class F1s).
* ``OP = sum TP / sum (TP + FP)``, ``OR = sum TP / sum (TP + FN)``, ``OF1 = 2 OP OR / (OP + OR)``
  (counts pooled over classes; OF1 equals micro-F1).
* ``mAP``: average precision per class (torchmetrics, exact, step-wise like scikit-learn), averaged
  over the classes that have at least one positive; ``mAP_micro`` pools all (sample, class) pairs.
* ``hamming_loss``: fraction of wrong (sample, class) decisions; ``exact_match``: fraction of
  samples whose whole predicted label set equals the true one.

A target of ``-1`` marks an unknown (sample, class) cell (``--uncertain ignore``): it is left out
of every metric and of threshold tuning, as torchmetrics' ``ignore_index`` does.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import torch

METRIC_KEYS = (
    "mAP",
    "mAP_micro",
    "CP",
    "CR",
    "CF1",
    "OP",
    "OR",
    "OF1",
    "F1_macro",
    "F1_micro",
    "hamming_loss",
    "exact_match",
)
PER_CLASS_KEYS = ("class", "AP", "precision", "recall", "F1", "support", "threshold")


def _check(probs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.as_tensor(probs)
    targets = torch.as_tensor(targets)
    if probs.ndim != 2 or probs.shape != targets.shape:
        raise ValueError(f"probs and targets must both be [N, C]; got {tuple(probs.shape)} and {tuple(targets.shape)}")
    if not probs.is_floating_point():
        raise ValueError("probs must be a floating-point tensor of probabilities in [0, 1]")
    return probs.detach().cpu(), targets.detach().cpu().long()


def _thresholds(thresholds: float | Sequence[float] | torch.Tensor, num_classes: int) -> torch.Tensor:
    t = torch.as_tensor(thresholds, dtype=torch.float64).flatten()
    if t.numel() == 1:
        t = t.expand(num_classes)
    if t.numel() != num_classes:
        raise ValueError(f"expected 1 or {num_classes} thresholds, got {t.numel()}")
    return t


def binarize(probs: torch.Tensor, thresholds: float | Sequence[float] | torch.Tensor = 0.5) -> torch.Tensor:
    """Bool predictions ``probs > thresholds`` (strict), thresholds scalar or one per class."""
    probs = torch.as_tensor(probs)
    t = _thresholds(thresholds, probs.shape[-1]).to(probs.device)
    return probs.double() > t


def exact_match(preds: torch.Tensor, targets: torch.Tensor, ignore_index: int | None = None) -> float:
    """Fraction of rows whose predicted label set equals the true one (subset accuracy).

    Args:
        preds: bool/int ``[N, C]`` predictions (already thresholded).
        targets: ``[N, C]`` multi-hot ground truth.
        ignore_index: a target value whose cells are not compared (e.g. ``-1`` for unknown).
    """
    from torchmetrics.functional.classification import multilabel_exact_match

    preds = torch.as_tensor(preds).long().cpu()
    targets = torch.as_tensor(targets).long().cpu()
    return float(multilabel_exact_match(preds, targets, num_labels=targets.shape[1], ignore_index=ignore_index, validate_args=False))


def _harmonic(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def multilabel_metrics(
    probs: torch.Tensor,
    targets: torch.Tensor,
    thresholds: float | Sequence[float] | torch.Tensor = 0.5,
    class_names: Sequence[str] | None = None,
) -> dict:
    """The full multi-label metric set at the given thresholds.

    Args:
        probs: float ``[N, C]`` probabilities (apply ``torch.sigmoid`` to logits first).
        targets: ``[N, C]`` multi-hot ground truth (any numeric dtype, values 0/1, or -1 for a
            cell left out).
        thresholds: one threshold for all classes, or ``C`` of them; a label is positive when
            ``prob > threshold`` (strict).
        class_names: names for the per-class table; defaults to ``"0"``..``"C-1"``.

    Returns:
        A dict with the floats named in :data:`METRIC_KEYS` (see the module docstring for the
        formulas), ``num_samples``, ``num_classes``, and ``per_class``: a list of one dict per
        class with :data:`PER_CLASS_KEYS` (``AP`` is NaN for a class with no positives, and
        such classes are left out of ``mAP``).
    """
    from torchmetrics.functional.classification import (
        multilabel_average_precision,
        multilabel_f1_score,
        multilabel_hamming_distance,
        multilabel_precision,
        multilabel_recall,
    )

    probs, targets = _check(probs, targets)
    n, c = probs.shape
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for {c} classes")
    t = _thresholds(thresholds, c)
    # torchmetrics takes one scalar threshold; integer predictions bypass it, which lets the
    # per-class thresholds (and the strict '>' convention) be applied here, once.
    preds = binarize(probs, t).long()
    unknown = bool((targets < 0).any())
    kw = {"num_labels": c, "validate_args": False, "ignore_index": -1 if unknown else None}

    support = (targets == 1).sum(0)
    # torchmetrics squeezes per-class results to a scalar when C == 1. Its warning about
    # classes without positives is moot: their AP is set to NaN and left out of mAP below.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No positive samples found in target")
        ap = multilabel_average_precision(probs, targets, average=None, **kw).reshape(c)
    ap = torch.where(support > 0, ap, torch.full_like(ap, math.nan))
    has_pos = support > 0
    precision = multilabel_precision(preds, targets, average=None, **kw).reshape(c)
    recall = multilabel_recall(preds, targets, average=None, **kw).reshape(c)
    f1 = multilabel_f1_score(preds, targets, average=None, **kw).reshape(c)
    cp, cr = float(precision.mean()), float(recall.mean())
    op = float(multilabel_precision(preds, targets, average="micro", **kw))
    orr = float(multilabel_recall(preds, targets, average="micro", **kw))

    result = {
        "num_samples": n,
        "num_classes": c,
        "mAP": float(ap[has_pos].mean()) if bool(has_pos.any()) else math.nan,
        "mAP_micro": float(multilabel_average_precision(probs, targets, average="micro", **kw)),
        "CP": cp,
        "CR": cr,
        "CF1": _harmonic(cp, cr),
        "OP": op,
        "OR": orr,
        "OF1": _harmonic(op, orr),
        "F1_macro": float(f1.mean()),
        "F1_micro": float(multilabel_f1_score(preds, targets, average="micro", **kw)),
        "hamming_loss": float(multilabel_hamming_distance(preds, targets, average="micro", **kw)),
        "exact_match": exact_match(preds, targets, kw["ignore_index"]),
        "per_class": [
            {
                "class": names[i],
                "AP": float(ap[i]),
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "F1": float(f1[i]),
                "support": int(support[i]),
                "threshold": float(t[i]),
            }
            for i in range(c)
        ],
    }
    return result


def tune_thresholds(probs: torch.Tensor, targets: torch.Tensor, default: float = 0.5) -> torch.Tensor:
    """Per-class thresholds that maximise F1 exactly on ``(probs, targets)``.

    For each class the scores are sorted once (descending) and true positives accumulated, so
    predicting the top ``k`` scores positive gives ``F1(k) = 2 TP(k) / (k + P)``. Only cuts
    between two *distinct* scores (or below the lowest) are realisable by a threshold, so ties
    are handled exactly. That is O(N log N) per class, exact, and needs no grid.

    The threshold returned for the best cut is the midpoint between the lowest score kept and
    the highest score dropped (so unseen scores between them fall on the nearer side), rounded
    to ``probs.dtype`` such that ``probs > threshold`` reproduces the cut exactly. When several
    cuts reach the best F1, the highest threshold wins. A class with no positive example keeps
    ``default``, since every cut would score F1 = 0 there.

    Args:
        probs: float ``[N, C]`` probabilities on the tuning split (not the split you report on).
        targets: ``[N, C]`` multi-hot ground truth.
        default: threshold for classes without positives.

    Returns:
        Tensor ``[C]`` of thresholds in ``probs.dtype``; use with ``probs > thresholds``.
    """
    probs, targets = _check(probs, targets)
    n, c = probs.shape
    if n == 0:
        return torch.full((c,), default, dtype=probs.dtype)
    if bool((targets < 0).any()):
        # Unknown cells (-1) are left out: each class is tuned on its known rows.
        return torch.cat([tune_thresholds(probs[targets[:, j] >= 0, j : j + 1], targets[targets[:, j] >= 0, j : j + 1], default)
                          for j in range(c)])
    sorted_probs, order = torch.sort(probs, dim=0, descending=True)
    tp = torch.cumsum(torch.gather(targets, 0, order), dim=0).double()
    positives = tp[-1]
    k = torch.arange(1, n + 1, dtype=torch.float64)[:, None]
    f1 = 2.0 * tp / (k + positives)
    # A cut after row k-1 is realisable only if the next score is strictly lower.
    realisable = torch.ones_like(f1, dtype=torch.bool)
    realisable[:-1] = sorted_probs[:-1] > sorted_probs[1:]
    f1 = torch.where(realisable, f1, torch.full_like(f1, -1.0))
    best = torch.argmax(f1, dim=0)  # first maximum = smallest k = highest threshold

    cols = torch.arange(c)
    kept = sorted_probs[best, cols]
    below_all = best == n - 1
    dropped = sorted_probs[torch.clamp(best + 1, max=n - 1), cols]
    mid = ((kept.double() + dropped.double()) / 2).to(probs.dtype)
    # Rounding the midpoint to probs.dtype can land on `kept`; the dropped score itself then
    # still separates the two sides under the strict '>' rule.
    thr = torch.where(mid < kept, mid, dropped)
    lowest = torch.nextafter(kept, torch.full_like(kept, -math.inf))
    thr = torch.where(below_all, lowest, thr)
    return torch.where(positives > 0, thr, torch.full_like(thr, default))


class MultilabelEvaluator:
    """Accumulates predictions batch by batch, then computes :func:`multilabel_metrics`.

    Under ``torch.distributed`` (e.g. ``torchrun``), :meth:`gather` collects every rank's
    predictions; passing each sample's dataset ``index`` to :meth:`update` lets it drop the
    duplicates that ``DistributedSampler`` pads the last batch with and restore dataset order,
    so the metrics equal a single-process evaluation exactly.
    """

    def __init__(self, class_names: Sequence[str]):
        self.class_names = list(class_names)
        self.reset()

    def reset(self) -> None:
        self._probs: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._index: list[torch.Tensor] = []

    def update(self, probs: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None) -> None:
        """Add a batch: ``probs`` float ``[B, C]``, ``targets`` ``[B, C]``, optional ``index`` ``[B]``."""
        self._probs.append(probs.detach().float().cpu())
        self._targets.append(targets.detach().float().cpu())
        if index is not None:
            self._index.append(torch.as_tensor(index).long().cpu())

    def gather(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All ranks' ``(probs, targets)``, deduplicated and in index order when indices were given."""
        c = len(self.class_names)
        probs = torch.cat(self._probs) if self._probs else torch.zeros(0, c)
        targets = torch.cat(self._targets) if self._targets else torch.zeros(0, c)
        index = torch.cat(self._index) if self._index else None
        if index is not None and len(index) != len(probs):
            raise ValueError("pass index with every update() or with none")
        return gather_rows(index, probs, targets)

    def compute(self, thresholds: float | Sequence[float] | torch.Tensor = 0.5) -> dict:
        """:func:`multilabel_metrics` over everything seen (on every rank)."""
        probs, targets = self.gather()
        return multilabel_metrics(probs, targets, thresholds, self.class_names)


def gather_rows(index: torch.Tensor | None, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Concatenate row-aligned tensors from every rank (a no-op without torch.distributed).

    With ``index`` (each row's dataset index), rows are returned in index order with repeats
    dropped, which undoes ``DistributedSampler``'s sharding and padding exactly.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        tensors = tuple(_all_gather_rows(t) for t in tensors)
        index = _all_gather_rows(index[:, None])[:, 0] if index is not None else None
    if index is None:
        return tensors
    order = torch.argsort(index, stable=True)
    index = index[order]
    first = torch.ones_like(index, dtype=torch.bool)
    first[1:] = index[1:] != index[:-1]
    return tuple(t[order][first] for t in tensors)


def _all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate a ``[n_r, D]`` tensor from every rank; ranks may hold different ``n_r``."""
    import torch.distributed as dist

    world = dist.get_world_size()
    sizes = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([x.shape[0]]))
    most = int(max(s.item() for s in sizes))
    padded = torch.zeros((most,) + tuple(x.shape[1:]), dtype=x.dtype)
    padded[: x.shape[0]] = x
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])
