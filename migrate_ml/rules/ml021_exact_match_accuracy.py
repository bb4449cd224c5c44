"""ML021: accuracy comparisons of arg-max predictions become per-sample exact match."""

from __future__ import annotations

import libcst as cst

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules.semantics.prediction_provider import PredictionFlowProvider
from migrate_ml.rules.semantics.predictions import PredictionFlow
from migrate_ml.rules._prefilter import has_training_marker, text_facts
from migrate_ml.rules.semantics.tasks import ReadsTheTrainedHead


class ExactMatchAccuracyRule(ReadsTheTrainedHead, Rule):
    code = "ML021"
    name = "exact-match-accuracy"
    summary = "pred == labels becomes (pred == labels.bool()).all(dim=1): one hit or miss per sample."
    rationale = (
        "After ML020 a prediction is a boolean [B, C] tensor and the labels are multi-hot [B, C]. "
        "Comparing them element-wise and summing would count matching *labels*, so "
        "`correct / total` (with `total += labels.size(0)`) would exceed 1. Exact match (subset "
        "accuracy) keeps one value per sample: `(pred == labels.bool()).all(dim=1)`, so every "
        "existing counter and denominator (`correct / total`, `accu_num / sample_num`, "
        "`100. * correct / len(loader.dataset)`, `.float().mean()`) stays correct unchanged; a "
        "denominator counted with `labels.numel()`/`labels.nelement()`/`torch.numel(labels)` "
        "(B entries of class indices, B x C of multi-hot labels) becomes `labels.size(0)` in "
        "the same fix. The "
        "labels are compared as booleans, so int64 and float32 multi-hot targets both work and "
        "metric code never needs `.float()`. Handled spellings: `==` either way round, "
        "`pred.eq(y)`, `pred.eq(target.view_as(pred))`, `torch.eq(pred, y)`, "
        "`torch.sum(preds == labels.data)`; an error count (`pred != y`, `pred.ne(y)`, `torch.ne`) "
        "becomes `(pred != y.bool()).any(dim=1)`, the complement of exact match; on a named "
        "prediction or inline, and on the names "
        "the prediction reaches (gathered, moved to the CPU, joined across batches); where it "
        "has become a NumPy array the comparison is `(p == y.astype(bool)).all(axis=1)`. This rewrite is "
        "part of the same fix as the prediction it compares (ML020): selecting or accepting "
        "either code applies both, because one without the other computes a wrong accuracy. "
        "Exact match is strict; for a softer view also report sample-F1 or mAP "
        "(`migrate-ml reference` has both)."
    )
    applicability = Applicability.SAFE
    example_before = (
        "pred_classes = torch.max(pred, dim=1)[1]\n"
        "accu_num += torch.eq(pred_classes, labels.to(device)).sum()\n"
    )
    example_after = (
        "pred_classes = torch.sigmoid(pred) > THRESHOLD\n"
        "accu_num += torch.eq(pred_classes, labels.to(device).bool()).all(dim=1).sum()\n"
    )
    triggers = ("argmax", ".max(")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, PredictionFlowProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return super().could_apply(source) and text_facts(source).has_any(("==", "eq(")) and has_training_marker(source)

    def visit_Module(self, node: cst.Module) -> None:
        flow: PredictionFlow = self.get_metadata(PredictionFlowProvider, node)
        reported: set[int] = set()  # a comparison of a name bound by two predictions is one finding
        for prediction in flow.predictions:
            if not prediction.proven or prediction.blocked:
                continue
            fix = flow.fix_for(prediction, self.context.threshold_name)
            for comparison in prediction.comparisons:
                if id(comparison.node) in reported:
                    continue
                reported.add(id(comparison.node))
                message = (
                    "element-wise != on multi-hot predictions counts wrong labels, not wrong samples; "
                    "a sample is a miss when any of its labels differs"
                    if comparison.negated
                    else "element-wise == on multi-hot predictions counts labels, not samples; compare per sample (exact match)"
                )
                self.report(
                    comparison.node,
                    message,
                    fix=fix,
                    extra_nodes=[prediction.node, *comparison.denominators],
                )
