"""ML020: arg-max predictions over the classifier's scores become thresholded sigmoids."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider

from migrate_ml.rules._base import Applicability, Rule, enclosing
from migrate_ml.rules.semantics.prediction_provider import PredictionFlowProvider
from migrate_ml.rules.semantics.predictions import PredictionFlow
from migrate_ml.rules._prefilter import has_training_marker
from migrate_ml.rules.semantics.tasks import ReadsTheTrainedHead


class ArgmaxPredictionRule(ReadsTheTrainedHead, Rule):
    code = "ML020"
    name = "argmax-prediction"
    summary = "argmax/max predictions over the classifier's logits become torch.sigmoid(z) > THRESHOLD."
    rationale = (
        "`argmax` picks exactly one class per image, so a multi-label model evaluated with it can "
        "never predict two labels, nor none. The multi-label decision is one independent yes/no "
        "per label: `torch.sigmoid(z) > THRESHOLD`, a boolean [B, C] tensor (the constant is "
        "inserted at the top of the module from `--threshold`; strict `>` as in torchmetrics). "
        "Every spelling is handled: `torch.max(z, 1)[1]`, `_, p = torch.max(z.data, 1)` (the "
        "unpacking is removed), `z.max(1)[1]`, `z.max(-1)[-1]`, `z.max(1).indices`, "
        "`z.argmax(dim=-1, keepdim=True)`, `torch.argmax(z, 1)`, `torch.argmax(z, axis=1)` "
        "(torch accepts NumPy's name), `z.topk(1)[1]`, arg-max over `softmax(z)` (the softmax "
        "goes: sigmoid replaces it) and over `log_softmax(z)` (same arg-max as `z`). The rewrite is GUARDED: `z` must be proven to be the classifier's output, i.e. bound "
        "from a call of the model object (`model(x)`, `net(x)`, `self.model(x)`, `self(x)`, "
        "`model(x).logits`) or the logits argument of a loss call. Arg-max over anything else "
        "(attention maps, patch indices, top tokens, a distillation teacher's targets, "
        "`np.argmax(val_scores)` for model selection) is left alone. A model whose outputs the file "
        "exponentiates (`ps = torch.exp(logps)`, `out.exp()`) returns log-probabilities (a LogSoftmax "
        "head), whose sigmoid is no per-label probability: its arg-max is reported, naming that line, "
        "and left until the head returns logits. A model whose outputs the file gives `BCELoss` or "
        "`F.binary_cross_entropy` ends in a sigmoid: they are probabilities already, and its arg-max "
        "becomes `p > THRESHOLD` with no second sigmoid. Arg-max over a segmentation model's output "
        "(`seg_model(x)`, `unet(x)`: a per-pixel mask) is left alone. The accuracy comparisons "
        "of the prediction with the labels are rewritten in the same fix (see ML021), because a "
        "[B, C] prediction compared with `==` and summed would count labels, not samples, and "
        "push `correct / total` above 1. The comparisons are found where the prediction goes: "
        "through `.cpu()`/`.detach()`/`.numpy()`, `accelerator.gather_for_metrics((preds, "
        "labels))` and other gathers with tuple unpacking, batches appended to a list then "
        "joined with `torch.cat`/`np.concatenate` (also one by one, `torch.cat((seen, rows[i]))`), and rows extended into a list then stacked "
        "with `np.array`/`torch.stack` (NumPy comparisons become "
        "`(p == y.astype(bool)).all(axis=1)`). A flatten on the way (`.flatten()`, `.view(-1)`, "
        "`.reshape(-1)`, `.ravel()`: a no-op on class indices [B], a mix of every sample's labels "
        "on [B, C] rows) is dropped, on the labels' side of a comparison too. A prediction read "
        "per sample (`pred[i].item()`, or iterated: `for t, p in zip(targets, pred.tolist())`, "
        "`enumerate(pred)`, `[classes[p] for p in pred]`), stored into a range of a buffer "
        "of one index per sample (`predictions[i:i + n] = pred.numpy()` into `np.zeros(size)`), "
        "compared with targets collapsed by an arg-max (`target.argmax(1)`, reported at their "
        "line), or fed to a single-label Hugging Face `evaluate` metric is reported instead, "
        "naming the line of that use when it is elsewhere; "
        "one passed to a function nothing here follows, or returned in a dict whose key another function of "
        "the file reads back (a Lightning step's `{\"val_preds\": preds}` read in `validation_epoch_end`; a "
        "Lightning step's dict is read only by its own stage's `_step_end`, `_epoch_end` or `on_..._batch_end`), "
        "is rewritten with a note naming it; a torchmetrics metric object the file builds multilabel, or that "
        "ML022 rewrites to take [B, C] rows (`self.metric = MulticlassAccuracy(...)`), is not such a function. "
        "Comments are kept as written: one on an edited line that explains the old arg-max or "
        "softmax (`# softmax over the logits dimension`) now describes code that is gone, and is "
        "the author's to update (migrate-ml cannot tell what a comment refers to)."
    )
    applicability = Applicability.SAFE
    example_before = (
        "outputs = model(images)\n"
        "_, predicted = torch.max(outputs.data, 1)\n"
        "correct += (predicted == labels).sum().item()\n"
    )
    example_after = (
        "THRESHOLD = 0.5\n"
        "outputs = model(images)\n"
        "predicted = torch.sigmoid(outputs.data) > THRESHOLD\n"
        "correct += (predicted == labels.bool()).all(dim=1).sum().item()\n"
    )
    triggers = ("argmax", ".max(")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, PredictionFlowProvider, ParentNodeProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return super().could_apply(source) and has_training_marker(source)

    def visit_Module(self, node: cst.Module) -> None:
        flow: PredictionFlow = self.get_metadata(PredictionFlowProvider, node)
        for collapsed in flow.collapsed_targets:
            self.report(
                collapsed,
                "the targets are collapsed to one class index per sample (arg-max over one-hot or multi-hot rows)",
                suggestion="keep the [B, C] multi-hot targets and compare per sample: (pred == targets.bool()).all(dim=1)",
            )
        for prediction in flow.predictions:
            if not prediction.proven:
                self.report(
                    prediction.node,
                    "this arg-max is compared like a class prediction, but migrate-ml cannot prove it is taken over the classifier's logits",
                    suggestion=(
                        f"if it is, use torch.sigmoid(logits) > {self.context.threshold_name} and compare per sample: "
                        "(pred == labels.bool()).all(dim=1)"
                    ),
                )
            elif prediction.blocked:
                self.report(
                    prediction.node,
                    f"arg-max prediction left as is: {prediction.blocked}{self._where(prediction.blocked_at, prediction.node)}",
                    suggestion=f"predict every label above the threshold: pred = torch.sigmoid(logits) > {self.context.threshold_name}",
                )
            else:
                self.report(
                    prediction.node,
                    "arg-max predicts exactly one label per sample; predict every label whose sigmoid is above the threshold",
                    fix=flow.fix_for(prediction, self.context.threshold_name),
                    extra_nodes=[c.node for c in prediction.comparisons],
                )
                for key, reader in prediction.returned_under:
                    # The reader is named by its function, not its line: the note is positioned in
                    # the rewritten file, whose lines the fix shifts.
                    function = enclosing(self, reader, cst.FunctionDef)
                    self.report(
                        prediction.node,
                        f"the prediction is returned under {key!r}, which {function.name.value}() reads back "
                        f"({cst.Module([]).code_for_node(reader)}): after the rewrite it holds multi-hot boolean rows "
                        "[B, C], not class indices",
                        suggestion=(
                            "make what reads it take [B, C] rows: exact match is (pred == labels.bool()).all(dim=1); "
                            "per-label counts are sums over dim 0"
                        ),
                    )
                for call in prediction.escapes:
                    # Reported on the rewritten prediction (a line the fix edits) so that the note
                    # survives the rewrite: the call itself no longer looks single-label.
                    callee = cst.Module([]).code_for_node(call.func)
                    if id(call) in flow.loss_calls:
                        self.report(
                            prediction.node,
                            f"the prediction is later given to the loss {callee}(), whose input must be the "
                            "logits, not a prediction (after the rewrite, multi-hot boolean rows [B, C])",
                            suggestion=f"feed the logits to {callee}() and take the prediction from the same logits",
                        )
                        continue
                    self.report(
                        prediction.node,
                        f"the prediction is later passed to {callee}(), which migrate-ml cannot follow: "
                        "after the rewrite it receives multi-hot boolean rows [B, C], not class indices",
                        suggestion=(
                            f"make {callee}() take [B, C] rows: exact match is (pred == labels.bool()).all(dim=1); "
                            "per-label counts are sums over dim 0"
                        ),
                    )

    def _where(self, use: cst.CSTNode | None, prediction: cst.CSTNode) -> str:
        """`` (line 23: names = [classes[p] for p in rows])``: the statement whose use of the
        prediction blocks it, when that is not the prediction's own line."""
        if use is None:
            return ""
        statement: cst.CSTNode | None = use
        while statement is not None and not isinstance(statement, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            statement = self.get_metadata(ParentNodeProvider, statement, None)
        shown = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) and statement.body else use
        code = " ".join(cst.Module([]).code_for_node(shown).split())
        line = self.get_metadata(PositionProvider, use).start.line
        if line == self.get_metadata(PositionProvider, prediction).start.line:
            return ""
        return f" (line {line}: {code if len(code) <= 60 else code[:57] + '...'})"
