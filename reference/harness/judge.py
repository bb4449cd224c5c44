"""The harness's judgement: what a loss call's record says is wrong, which numbers a function returned,
the reference metrics on the outputs the model produced, and whether a metric equals its reference."""

from __future__ import annotations

import math
import re

from . import checks_outputs, checks_threshold

TOLERANCE = 1e-3
METRIC_NAME = re.compile(r"acc|correct|exact|match|f1|(?<![a-z])map(?![a-z])|m_ap|precision|recall|score|metric|hamming|jaccard|"
                         r"(?<![a-z])m?iou(?![a-z])|(?-i:IoU)", re.I)
LOSS_NAME = re.compile(r"loss", re.I)
MEASURE_NAMES = (
    ("jaccard", re.compile(r"jaccard|(?<![a-z])m?iou(?![a-z])|(?-i:IoU)", re.I)),
    ("hamming", re.compile(r"hamming", re.I)),
    ("mAP", re.compile(r"\bmap\b|(?<![a-z])m_?ap(?![a-z])|average_?precision", re.I)),
    ("F1", re.compile(r"f1|(?<![a-z])f_?(score|measure)", re.I)),
    ("precision", re.compile(r"precision|(?<![a-z])prec(?![a-z])", re.I)),
    ("recall", re.compile(r"recall|(?<![a-z])rec(?![a-z])", re.I)),
    ("exact match", re.compile(r"acc|correct|exact|match|subset", re.I)),
)
"""What a metric's name says it measures, searched in order, each match blanked before the next search:
"jaccard" holds "acc" and "average_precision" holds "precision", but neither is that measure."""
AVERAGE_NAMES = (
    ("samples", re.compile(r"sample|example", re.I)),
    ("weighted", re.compile(r"weight", re.I)),
    ("micro", re.compile(r"micro|overall|(?<![a-z])o(?=f1)", re.I)),
    ("macro", re.compile(r"macro|per_?class|classwise|(?<![a-z])c(?=f1)", re.I)),
)
"""The ``average`` a metric's name states (``f1_samples``, ``macro_f1``, ML-GCN's OF1 and CF1)."""
AVERAGED_MEASURES = ("F1", "precision", "recall", "jaccard")
ZERO_DIVISION_1 = "(zero_division=1)"
"""Suffix of a reference computed with 0/0 counted as 1 (scikit-learn's ``zero_division=1``) instead of 0."""
BATCH_MEAN = " (mean over batches)"
"""Suffix of a reference computed per batch and averaged, as a loop summing per-batch F1 does and as
Lightning aggregates a value logged in every step."""
REFERENCE_KINDS = {"CF1": ("F1", "macro"), "mAP": ("mAP", "macro"), "mAP_micro": ("mAP", "micro"),
                   "hamming_loss": ("hamming", ""), "1-hamming_loss": ("hamming", "")}
"""(measure, average) of the references not named ``<measure>_<average>``."""


def averaged_references(preds, targets) -> dict[str, float]:
    """Precision, recall, F1 and Jaccard at every ``average`` scikit-learn takes for multi-label input.

    Keys are ``<measure>_<average>``; a ratio whose denominator is 0 counts as 0, and where
    counting it as 1 (scikit-learn's ``zero_division=1``) changes the value, that one is added too.
    torchmetrics has no ``samples`` average (one ratio per sample, averaged), so it is computed here.
    """
    import torch
    from torchmetrics.functional.classification import (
        multilabel_f1_score,
        multilabel_jaccard_index,
        multilabel_precision,
        multilabel_recall,
    )

    functions = dict(zip(AVERAGED_MEASURES, (multilabel_f1_score, multilabel_precision, multilabel_recall,
                                             multilabel_jaccard_index)))
    predicted, true = preds.bool(), targets.bool()
    tp = (predicted & true).sum(1).double()
    fp = (predicted & ~true).sum(1).double()
    fn = (~predicted & true).sum(1).double()
    per_sample = dict(zip(AVERAGED_MEASURES,  # (numerator, denominator) of each sample's ratio
                          ((2 * tp, 2 * tp + fp + fn), (tp, tp + fp), (tp, tp + fn), (tp, tp + fp + fn))))

    def averages(zero_division: int) -> dict[str, float]:
        values = {}
        for measure in AVERAGED_MEASURES:
            for average in ("micro", "macro", "weighted"):
                values[f"{measure}_{average}"] = float(functions[measure](
                    preds, targets, num_labels=preds.shape[1], average=average, zero_division=zero_division,
                    validate_args=False))
            numerator, denominator = per_sample[measure]
            ratios = torch.where(denominator > 0, numerator / denominator.clamp(min=1), float(zero_division))
            values[f"{measure}_samples"] = float(ratios.mean())
        return values

    references = averages(0)
    references.update({key + ZERO_DIVISION_1: value for key, value in averages(1).items()
                       if not close(value, references[key])})
    return references


def loss_failure(record: dict, labels: str) -> tuple[str, str | None, str] | None:
    label = record["label"]
    kind = record["kind"]
    shape = record.get("target_shape")
    multi_hot = record.get("target_float") and shape is not None and shape == record.get("logits_shape")
    if kind == "ce":
        code = "ML002" if label.startswith("F.") else "ML001"
        if multi_hot:
            return (f"{label} received float multi-hot targets: it trains a softmax over labels (wrong objective)",
                    code, f"use BCEWithLogitsLoss / binary_cross_entropy_with_logits (rule {code})")
        return (f"{label} is a single-label loss (target {record.get('target_dtype')} {shape})", code,
                f"use BCEWithLogitsLoss with float multi-hot targets (rule {code})")
    if kind == "nll":
        return (f"{label} expects log-softmax scores and class indices: a single-label loss", "ML003",
                "drop log_softmax and use binary_cross_entropy_with_logits on raw logits (rule ML003)")
    form = record.get("logits_form")
    if kind == "bce" and form == "log_softmax":
        return (f"{label} received log-probabilities (log_softmax over classes: each row's exp sums to 1), not raw logits",
                "ML103", "remove log_softmax from the model's forward (rule ML103)")
    if form == "softmax":
        return (f"{label} received softmax probabilities (each row sums to 1): the labels compete", "ML024",
                "pass raw logits to BCEWithLogitsLoss; use torch.sigmoid for probabilities (rule ML024)")
    failure = checks_outputs.loss_input_failure(record)
    if failure:
        return failure
    if "target_float" in record and not record["target_float"]:
        if labels.startswith("float32"):
            return (f"{label} received {record['target_dtype']} targets although the loader yields float32 labels: "
                    "a .long() cast is left on the labels", "ML011", "replace .long() with .float() (rule ML011)")
        return (f"{label} received {record['target_dtype']} targets {shape}: BCE needs floating-point targets",
                "ML010", "add .float() to the target at the loss call (rule ML010)")
    if shape is not None and shape != record.get("logits_shape"):
        return (f"{label} target shape {shape} differs from logits {record.get('logits_shape')}: labels are not "
                "multi-hot [B, C]", "ML101", "the dataset/collate must yield float multi-hot [B, C] targets (rule ML101)")
    low, high = record.get("target_min"), record.get("target_max")
    if low is not None and (low < 0 or high > 1):
        return (f"{label} target values span [{low:g}, {high:g}], outside [0, 1]", None,
                "targets must be multi-hot 0/1 (or soft labels in [0, 1])")
    if record.get("error"):
        return (f"{label} raised {record['error']}", None, "see the call's traceback")
    loss = record.get("loss")
    if loss is None or not math.isfinite(loss):
        return (f"{label} returned a non-finite loss ({loss})", None, "pass raw logits and float multi-hot targets")
    return None


def returned_numbers(value, names: list[str]) -> list[tuple[str, float]]:
    import torch

    def number(x):
        if isinstance(x, bool):
            return None
        if isinstance(x, (int, float)):
            return float(x)
        if isinstance(x, torch.Tensor) and x.numel() == 1:
            return float(x.detach().float())
        try:
            import numpy as np

            if isinstance(x, np.generic) and x.size == 1:
                return float(x)
        except ImportError:
            pass
        return None

    found = []
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (tuple, list)):
        items = [(names[i] if len(names) == len(value) else f"return[{i}]", v) for i, v in enumerate(value)]
    else:
        items = [(names[0] if len(names) == 1 else "return value", value)]
    for label, item in items:
        n = number(item)
        if n is not None:
            found.append((label, n))
    return found


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE


def _percent_of(value: float, fraction: float) -> bool:
    """``value`` is ``fraction`` in percent, possibly floored or rounded to a whole number."""
    if value == int(value):
        return abs(value - 100 * fraction) < 1
    return abs(value - 100 * fraction) <= 100 * TOLERANCE


def is_metric_name(name: str) -> bool:
    """A returned number judged as a metric: a metric name, not a loss (a Hamming loss is a metric)."""
    return bool(METRIC_NAME.search(name)) and (not LOSS_NAME.search(name) or "hamming" in name.lower())


def _named_measures(name: str) -> list[str]:
    """The measures (keys of :data:`MEASURE_NAMES`) that ``name`` states, e.g. ``["F1"]`` for ``val_f1_samples``.

    Accuracy qualified by another measure ("hamming accuracy", "jaccard accuracy") is that measure.
    """
    found, rest = [], name
    for measure, pattern in MEASURE_NAMES:
        if pattern.search(rest):
            found.append(measure)
            rest = pattern.sub(" ", rest)
    return [m for m in found if m != "exact match"] or found


def _named_average(name: str) -> str:
    return next((average for average, pattern in AVERAGE_NAMES if pattern.search(name)), "")


def _reference_kind(key: str) -> tuple[str, str]:
    """(measure, average) of the reference metric ``key``."""
    if key in REFERENCE_KINDS:
        return REFERENCE_KINDS[key]
    measure, _, average = key.removesuffix(BATCH_MEAN).removesuffix(ZERO_DIVISION_1).partition("_")
    return measure, average


def _named_references(ref: dict, measures: list[str]) -> list[tuple[str, float]]:
    """The reference metrics of the named measures.

    A "hamming score" written after a well-known Stack Overflow answer is the sample-averaged Jaccard
    index (1 for a sample with no true and no predicted label), so a Hamming name accepts it too.
    """
    def wanted(key: str) -> bool:
        kind = _reference_kind(key)
        return kind[0] in measures or ("hamming" in measures and kind == ("jaccard", "samples"))

    return [(k, v) for k, v in ref["others"].items() if wanted(k) and isinstance(v, float) and math.isfinite(v)]


def _distance(scaled: list[float], other: float) -> float:
    return min(abs(v - other) for v in scaled)


def _nearest_equal(scaled: list[float], references: list[tuple[str, float]]) -> tuple[str, float] | None:
    """The reference nearest to the value (or its percent), among those within TOLERANCE of it."""
    distances = [(min(abs(v - other) for v in scaled), key, other) for key, other in references if math.isfinite(other)]
    near = min((d for d in distances if d[0] <= TOLERANCE), default=None, key=lambda d: d[0])
    return None if near is None else (near[1], near[2])


def judge_metric(value: float, ref: dict, threshold: float, name: str = "") -> tuple[str, str, str | None, str]:
    """PASS, or FAIL with a reason, a rule code and a fix, for the metric ``name`` returning ``value``.

    The name directs the comparison: a value named after F1, precision, recall, Jaccard/IoU, Hamming
    or mAP is compared with that measure's references only (the average it names first); one named
    after accuracy or exact match with the exact match, so it cannot pass by equalling an unrelated
    reference by chance. A name that states no measure ("score") may equal any reference.
    """
    em = ref["exact_match"]
    scaled = [value] + ([value / 100] if value > 1 else [])
    fix21 = "use exact match: (preds == targets).all(dim=1) per sample, divided by the sample count (rule ML021)"
    if not math.isfinite(value):
        return "FAIL", f"returned {value}", "ML021", fix21
    measures = _named_measures(name)
    on_logits = checks_threshold.on_logits(value, ref, measures, _named_average(name), close)
    logits_failure = ("FAIL", f"{checks_threshold.ON_LOGITS}: {on_logits}", None, checks_threshold.ON_LOGITS_FIX)
    if measures and measures != ["exact match"]:
        verdict = _judge_named_measure(value, scaled, ref, threshold, measures, _named_average(name))
        return logits_failure if verdict[0] == "FAIL" and on_logits else verdict
    if close(value, em) or (value > 1 and _percent_of(value, em)):
        return "PASS", f"{value:.4g} equals the reference exact match {em:.4f} at threshold {threshold:g}", None, ""
    last = ref.get("last_batch_exact_match", math.nan)
    if math.isfinite(last) and (close(value, last) or (value > 1 and _percent_of(value, last))):
        return ("PASS", f"{value:.4g} equals the reference exact match {last:.4f} of the last batch at threshold "
                f"{threshold:g}", None, "")
    samples = ref.get("samples", 0)
    if value > 1 and value == int(value) and abs(value - em * samples) < 0.5:  # a count: correct += ....sum().item()
        return ("PASS", f"{value:g} equals the reference exact-match count ({em:.4f} of {samples} samples) at threshold "
                f"{threshold:g}", None, "")
    if on_logits:
        return logits_failure
    if any(close(v, ref["per_element"]) for v in scaled) and not close(ref["per_element"], em):
        return ("FAIL", f"accuracy {value:.4g} equals per-element (label-wise) accuracy, inflated by negatives; "
                f"reference exact match is {em:.4f}", "ML021", fix21)
    if close(value, ref["per_element_over_samples"]) or (value > 1 and close(value / 100, ref["per_element_over_samples"])):
        return ("FAIL", f"accuracy {value:.4g} counts correct labels per element but divides by the sample count "
                f"(out of range); reference exact match is {em:.4f}", "ML021", fix21)
    if any(close(v, ref["softmax_exact_match"]) for v in scaled) and not close(ref["softmax_exact_match"], em):
        return ("FAIL", f"{value:.4g} matches predictions thresholded after a softmax (labels compete); with sigmoid "
                f"the reference exact match is {em:.4f}", "ML024",
                "replace softmax by torch.sigmoid before the threshold (rule ML024)")
    equal = _nearest_equal(scaled, [(k, o) for k, o in ref["others"].items() if isinstance(o, float)])
    if equal and not measures:
        return "PASS", f"{value:.4g} equals the reference {equal[0]} {equal[1]:.4f} at threshold {threshold:g}", None, ""
    if not 0 <= value <= 1 and not (value > 1 and value <= 100):
        return "FAIL", f"{value:.4g} is out of range for a metric; reference exact match is {em:.4f}", "ML021", fix21
    also = (f"; it equals the reference {equal[0]} {equal[1]:.4f}: if that is the metric meant, name it so"
            if equal else "")
    return ("FAIL", f"{value:.4g} differs from the reference exact match {em:.4f} at threshold {threshold:g} "
            f"(per-label accuracy would be {ref['per_element']:.4f}){also}", "ML021", fix21)


def _judge_named_measure(value: float, scaled: list[float], ref: dict, threshold: float, measures: list[str],
                         average: str) -> tuple[str, str, str | None, str]:
    candidates = _named_references(ref, measures)
    named = [(k, v) for k, v in candidates if _reference_kind(k)[1] == average] if average else []
    equal = _nearest_equal(scaled, named) or _nearest_equal(scaled, candidates)
    nearest = _nearest_equal(scaled, candidates)
    if equal and nearest and _distance(scaled, nearest[1]) < _distance(scaled, equal[1]):
        equal = nearest  # another average matches more closely than the one the name states
    if equal and named and _reference_kind(equal[0])[1] != average:
        return ("FAIL", f"{value:.4g} equals the reference {equal[0]} {equal[1]:.4f}, not the {average} average its name "
                f"states: the reference {named[0][0]} is {named[0][1]:.4f} at threshold {threshold:g}", None,
                f"compute it with average='{average}', or name it after the average it computes")
    if equal:
        return "PASS", f"{value:.4g} equals the reference {equal[0]} {equal[1]:.4f} at threshold {threshold:g}", None, ""
    listed = ", ".join(f"{k} {v:.4f}" for k, v in (named or candidates) if not k.endswith((ZERO_DIVISION_1, BATCH_MEAN)))
    return ("FAIL", f"{value:.4g} differs from every reference {' or '.join(measures)} at threshold {threshold:g}"
            f"{': ' + listed if listed else ''}", None,
            "compute it from torch.sigmoid(logits) > THRESHOLD (not a softmax or an arg-max) against the multi-hot "
            "labels, with a multi-label average: micro, macro, weighted or samples (rules ML020, ML023, ML024)")


def reference(outputs: list, targets, threshold: float) -> dict | None:
    """The reference metrics on ``outputs`` (``(logits, sample rows)`` per model call) against the sample's
    ``targets``; None when no output row is a sample image."""
    import torch

    from ..api import exact_match, multilabel_metrics

    logits = [out[rows >= 0] for out, rows in outputs if out.ndim == 2]
    indices = [rows[rows >= 0] for out, rows in outputs if out.ndim == 2]
    if not logits or sum(len(i) for i in indices) == 0:
        return None
    z = torch.cat(logits)
    y = targets[torch.cat(indices)]
    probs = torch.sigmoid(z)
    preds = (probs > threshold).long()
    correct = (preds == y.long()).float()
    softmax_preds = (torch.softmax(z, dim=1) > threshold).long()
    metrics = multilabel_metrics(probs, y, threshold)
    last_out, last_rows = next((out, rows) for out, rows in reversed(outputs) if out.ndim == 2)
    last_found = last_rows >= 0
    last_preds = (torch.sigmoid(last_out[last_found]) > threshold).long()
    return {
        "last_batch_exact_match": exact_match(last_preds, targets[last_rows[last_found]])
        if bool(last_found.any()) else math.nan,
        "exact_match": exact_match(preds, y),
        "per_element": float(correct.mean()),
        "per_element_over_samples": float(correct.sum() / len(y)),
        "softmax_exact_match": exact_match(softmax_preds, y),
        "logits_threshold": checks_threshold.logits_references(z, y, threshold, averaged_references),
        "others": {**averaged_references(preds, y.long()), "CF1": metrics["CF1"], "mAP": metrics["mAP"],
                   "mAP_micro": metrics["mAP_micro"], "hamming_loss": metrics["hamming_loss"],
                   "1-hamming_loss": 1 - metrics["hamming_loss"], **_batch_means(logits, indices, targets, threshold)},
        "samples": len(y),
    }


def _batch_means(logits: list, indices: list, targets, threshold: float) -> dict[str, float]:
    """The averaged references of each model call, averaged over the calls (only where that differs)."""
    import torch

    per_batch = [averaged_references((torch.sigmoid(z) > threshold).long(), targets[i].long())
                 for z, i in zip(logits, indices) if len(i)]
    if len(per_batch) < 2:
        return {}
    whole = averaged_references((torch.sigmoid(torch.cat(logits)) > threshold).long(), targets[torch.cat(indices)].long())
    means = {key: sum(batch.get(key, whole[key]) for batch in per_batch) / len(per_batch) for key in whole}
    return {key + BATCH_MEAN: value for key, value in means.items() if abs(value - whole[key]) > 1e-9}
