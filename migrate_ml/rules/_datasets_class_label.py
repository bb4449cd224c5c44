"""ML101's Hugging Face ``datasets`` ``ClassLabel`` columns: a ``ClassLabel`` feature built, the class
names of a ``ClassLabel`` column read (``ds["train"].features["labels"].names``), and that column copied
into the model's labels.
"""

from __future__ import annotations

import libcst as cst


HF_CLASS_LABELS = frozenset({"datasets.ClassLabel", "datasets.features.ClassLabel", "datasets.features.features.ClassLabel"})


class ClassLabelColumns:
    """Mixin for ML101: a ``datasets`` column that holds one class index per example."""

    def _class_label_built(self, node: cst.Call, qualified: set[str]) -> bool:
        """``ClassLabel(names=...)``: a feature of one class index per example (reported; True)."""
        if not qualified & HF_CLASS_LABELS:
            return False
        self.report(
            node,
            "blocking: a datasets ClassLabel feature holds one class index per example",
            suggestion="use a Sequence(ClassLabel(names=...)) column of label ids and turn it into "
            "a float multi-hot [C] row per example before it reaches the model's labels",
        )
        return True

    def _class_label_names(self, node: cst.Attribute) -> None:
        """``ds["train"].features["labels"].names``: the class names of a datasets ClassLabel column."""
        if not (node.attr.value == "names" and isinstance(node.value, cst.Subscript) and len(node.value.slice) == 1):
            return
        column = node.value
        index = column.slice[0].slice
        if not (isinstance(column.value, cst.Attribute) and column.value.attr.value == "features" and isinstance(index, cst.Index)):
            return
        key = index.value.evaluated_value if isinstance(index.value, cst.SimpleString) else None
        if isinstance(key, str):
            self._class_label_keys.add(key)
        self.report(
            node,
            f"blocking: the datasets column {cst.Module([]).code_for_node(index.value)} is a ClassLabel: one "
            "class index per example, which cannot express multi-label targets",
            suggestion="use a Sequence(ClassLabel(names=...)) column of label ids and turn it into a float "
            "multi-hot [C] row per example where it becomes the model's labels",
        )

    def _class_label_copied(self, original_node: cst.Assign) -> None:
        """``inputs["labels"] = batch["labels"]``: the ClassLabel column copied into the model's labels."""
        value = original_node.value
        if not (self._class_label_keys and isinstance(value, cst.Subscript) and len(value.slice) == 1):
            return
        index = value.slice[0].slice
        key = index.value.evaluated_value if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString) else None
        if key in self._class_label_keys and any(isinstance(t.target, cst.Subscript) for t in original_node.targets):
            self.report(
                value,
                f"the ClassLabel column {key!r} (one class index per example) becomes the model's labels",
                suggestion="build a float multi-hot [C] row per example here: "
                "torch.zeros(num_classes).index_fill_(0, torch.tensor(label_ids), 1.0)",
            )
