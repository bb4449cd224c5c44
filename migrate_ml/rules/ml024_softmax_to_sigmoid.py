"""ML024: softmax over the classifier's logits becomes torch.sigmoid."""

from __future__ import annotations

import libcst as cst

from migrate_ml.rules._base import Applicability, Fix, Rule
from migrate_ml.rules._predictions import PredictionFlow, PredictionFlowProvider
from migrate_ml.rules._prefilter import has_training_marker


class SoftmaxToSigmoidRule(Rule):
    code = "ML024"
    name = "softmax-to-sigmoid"
    summary = "softmax over the classifier's logits becomes torch.sigmoid(z): one probability per label."
    rationale = (
        "Softmax normalises the scores so that they sum to one across classes: raising one label's "
        "probability lowers all the others, which is right when exactly one label is true and wrong "
        "when several can be. A multi-label model trained with BCEWithLogitsLoss gives each label "
        "its own probability, `torch.sigmoid(z)`, and those are what thresholds, mAP and "
        "calibration expect. `F.softmax(z, dim=1)`, `torch.softmax(z, -1)`, `z.softmax(-1)` and "
        "`nn.Softmax(dim=1)(z)` are rewritten only when `z` is proven to be the classifier's "
        "output (bound from `model(x)`, `net(x)`, `self.model(x)`, `model(x).logits`, or the "
        "logits of a loss call). Softmax inside a model (attention weights, `nn.Softmax` in "
        "`__init__`/`forward`) normalises something else and is never touched; a softmax taken "
        "directly under an arg-max is replaced by that prediction's rewrite (ML020)."
    )
    applicability = Applicability.SAFE
    example_before = (
        "output = model(images)\n"
        "probs = F.softmax(output, dim=1)\n"
    )
    example_after = (
        "output = model(images)\n"
        "probs = torch.sigmoid(output)\n"
    )
    triggers = ("softmax", "Softmax")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, PredictionFlowProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return super().could_apply(source) and has_training_marker(source)

    def visit_Module(self, node: cst.Module) -> None:
        flow: PredictionFlow = self.get_metadata(PredictionFlowProvider, node)
        for softmax in flow.softmaxes:
            if softmax.consumed:
                continue
            self.report(
                softmax.call,
                "softmax makes the labels compete for one unit of probability; each label needs its own sigmoid",
                fix=Fix(edits=(flow.softmax_edit(softmax),), add_imports=flow.torch_imports),
            )
