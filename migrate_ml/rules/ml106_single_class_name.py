"""ML106: predict scripts that print one class name per image (REVIEW)."""

from __future__ import annotations

import re

import libcst as cst

from migrate_ml.rules._base import Applicability, Rule

_NAME_MAPS = re.compile(r"^(class_indict|class_indices|idx_to_class|idx2label|id2label|class_names|classes|labels_map|categories|imagenet_classes|class_dict|label_names)$")
_LITERALS = (cst.Integer, cst.SimpleString)


class SingleClassNameRule(Rule):
    code = "ML106"
    name = "single-class-name"
    summary = "Reports predict code that looks up one class name per image (class_indict[str(idx)], probs.topk(k))."
    rationale = (
        "A single-label predict script turns the arg-max index into one name "
        "(`class_indict[str(predict_cla)]`, `classes[predicted[j]]`, "
        "`model.config.id2label[idx]`) or prints the top-k names of a softmax. A multi-label "
        "prediction is a set: every label whose sigmoid is above the threshold, possibly none. "
        "The index-to-name map stays; the lookup becomes a list, "
        "`[class_indict[str(i)] for i in (probs > THRESHOLD).nonzero().flatten().tolist()]`, "
        "and top-k printing becomes 'every label above the threshold, with its probability'. "
        "The output format changes, so migrate-ml reports these lines instead of rewriting them."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "print(class_indict[str(predict_cla)], predict[predict_cla].numpy())\n"
    example_after = (
        "for i in (predict > THRESHOLD).nonzero().flatten().tolist():\n"
        "    print(class_indict[str(i)], predict[i].item())\n"
    )
    triggers = ("class_indict", "class_indices", "idx_to_class", "idx2label", "id2label", "class_names", "classes[", "labels_map", "categories[", "topk")

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return super().could_apply(source) and ("argmax" in source or "max(" in source or "topk" in source)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        owner = node.value
        name = owner.attr.value if isinstance(owner, cst.Attribute) else getattr(owner, "value", None)
        if not (isinstance(name, str) and _NAME_MAPS.match(name)) or len(node.slice) != 1:
            return
        index = node.slice[0].slice
        if not isinstance(index, cst.Index) or isinstance(index.value, _LITERALS):
            return
        self.report(
            node,
            f"one class name per image: `{name}[...]` looks up a single predicted index",
            suggestion=f"list every label above the threshold: [{name}[str(i)] for i in (probs > THRESHOLD).nonzero().flatten().tolist()]",
        )

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "topk"):
            return
        receiver = func.value
        if isinstance(receiver, cst.Name) and receiver.value in ("torch", "th"):
            receiver = node.args[0].value if node.args else receiver
        text = cst.Module(body=[]).code_for_node(receiver)
        if "prob" in text or "softmax" in text or "sigmoid" in text:
            self.report(
                node,
                "top-k of the probabilities names k labels whatever their scores; a multi-label prediction is every label above the threshold",
                suggestion="use (probs > THRESHOLD).nonzero() to list the predicted labels, with probs = torch.sigmoid(logits)",
            )
