"""ML109: timm's ``JsdCrossEntropy`` (AugMix) is a softmax loss with no multi-label counterpart."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._exprs import keyword_arguments, positional_arguments

_JSD = frozenset({"timm.loss.JsdCrossEntropy", "timm.loss.jsd.JsdCrossEntropy"})


class JsdCrossEntropyRule(Rule):
    code = "ML109"
    name = "jsd-cross-entropy"
    summary = (
        "timm JsdCrossEntropy (AugMix: cross-entropy on the clean split + Jensen-Shannon consistency "
        "of softmax outputs) is reported: BCE on the clean split, or a JSD on sigmoid outputs."
    )
    rationale = (
        "timm's `JsdCrossEntropy(num_splits, alpha, smoothing)` is the AugMix loss: the batch holds "
        "`num_splits` copies of each image (clean, then augmented), cross-entropy (label-smoothed "
        "by default) is computed on the clean split, and `alpha` times the Jensen-Shannon "
        "divergence between the splits' softmax distributions pulls the augmented predictions "
        "towards the clean ones. Both halves are single-label: the cross-entropy reads one class "
        "index per image, and the consistency term compares one distribution over competing "
        "classes. There is no multi-label JSD loss in timm or torch, so this is reported for a "
        "human and nothing is rewritten. The simplest migration keeps the AugMix batches and "
        "trains `BCEWithLogitsLoss` on the clean split only (`logits[:B // num_splits]` against the "
        "float multi-hot targets, smoothed as `y*(1-e)+e/2` if `smoothing` was set); to keep the "
        "consistency regulariser, compute a per-label JSD between the splits' sigmoid outputs "
        "(each label a Bernoulli distribution) and add it with the same `alpha`. Turning AugMix "
        "off (`--aug-splits 0`) is also valid; then the loss is plain BCE (ML001)."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = (
        "train_loss_fn = JsdCrossEntropy(num_splits=num_aug_splits, smoothing=args.smoothing)\n"
        "loss = train_loss_fn(output, target)\n"
    )
    example_after = (
        "bce = nn.BCEWithLogitsLoss()\n"
        "clean = output.shape[0] // num_aug_splits\n"
        "loss = bce(output[:clean], target[:clean].float())\n"
        "# optional: + alpha * per-label JSD of torch.sigmoid(output).split(clean)\n"
    )
    triggers = ("JsdCrossEntropy",)
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        if not qualified & _JSD:
            return
        splits = _argument_text(node, 0, "num_splits") or "3"
        smoothing = _argument_text(node, 2, "smoothing") or "0.1"
        self.report(
            node,
            "JsdCrossEntropy (AugMix) is a softmax cross-entropy plus a Jensen-Shannon consistency "
            "term over competing classes; it has no multi-label equivalent",
            suggestion=(
                f"use nn.BCEWithLogitsLoss() on the clean split: clean = output.shape[0] // {splits}; "
                f"loss = bce(output[:clean], target[:clean].float() * (1 - {smoothing}) + {smoothing} / 2); "
                "optionally add alpha * a per-label JSD between the splits' torch.sigmoid outputs, "
                "or turn AugMix splits off"
            ),
        )


def _argument_text(call: cst.Call, index: int, keyword: str) -> str | None:
    positional = positional_arguments(call)
    argument = positional[index] if len(positional) > index else keyword_arguments(call).get(keyword)
    return cst.Module([]).code_for_node(argument.value) if argument is not None else None
