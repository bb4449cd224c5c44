"""ML106: predict scripts that print one class name per image (REVIEW).

The loops and comprehensions that walk every class or a batch's labels are in ``_class_names_loops``,
what a lookup's key is when it is no predicted index (the label map being built, a reference label, a
configured class, a folder's annotation) in ``_class_names_keys``, and lists built of strings looked up
by an arg-max the meaning analysis proves in ``_class_names_by_meaning``. This module keeps the rule and
its dispatch.
"""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._class_names_by_meaning import ByMeaningLookups
from migrate_ml.rules._class_names_keys import LookupKeys, _calls_in, _root
from migrate_ml.rules._class_names_loops import ClassLoops, _bound_names, _code, _names_in
from migrate_ml.rules._prefilter import text_facts
from migrate_ml.rules.semantics.sources import CLASS_NAME_MAP


_CLASS_NAME_CALLS = frozenset({"GetClassDesc", "GetClassLabel", "GetClassSynset"})
"""jetson-inference's ``imageNet`` methods that name one class index (``net.GetClassDesc(class_idx)``)."""
_ONE_CLASS_CALLS = frozenset({"Classify"})
"""jetson-inference's ``imageNet.Classify(img)``: the one top class index of an image and its confidence."""
_PREDICTION_WORDS = ("argmax", "max(", "topk", "sigmoid", "pred", *_CLASS_NAME_CALLS)
"""One of these must be in the file: a predicted index (``self.classnames[pred]`` of a metric
callback's stored predictions), a thresholded prediction still looked up as one index, a library's call."""
_LITERALS = (cst.Integer, cst.SimpleString)
_NEAR_TOP_K = 8
"""Lines within which a lookup of a top-k's indices is read with the top-k's own finding; one printed
further down (a display section of its own) is a construct of its own and reported there."""
_TRUE_LABEL = re.compile(r"^(?:labels?|targets?|y|ys|y_true|true_\w+|gt_?\w*|ground_truth\w*)$")
"""Where the true label lives: ``classes[labels[idx]]`` names the image's annotation, not a prediction."""


class SingleClassNameRule(ClassLoops, LookupKeys, ByMeaningLookups, Rule):
    code = "ML106"
    name = "single-class-name"
    summary = "Reports predict code that looks up one class name per image (class_indict[str(idx)], probs.topk(k))."
    rationale = (
        "A single-label predict script turns the arg-max index into one name "
        "(`class_indict[str(predict_cla)]`, `classes[predicted[j]]`, "
        "`model.config.id2label[idx]`) or prints the top-k names of a softmax. A multi-label "
        "prediction is a set: every label whose sigmoid is above the threshold, possibly none. "
        "The index-to-name map stays; the lookup becomes a list, "
        "`[class_indict[str(i)] for i in (probs > THRESHOLD).nonzero().flatten().tolist()]` "
        "(`[classes[i] for i in ...]` for a list or an int-keyed map), "
        "and top-k printing becomes 'every label above the threshold, with its probability'. "
        "The output format changes, so migrate-ml reports these lines instead of rewriting them. "
        "Building a label map (`id2label[str(i)] = label`), loops and comprehensions over every "
        "class (`for i in range(len(probs))`, `{names[i]: p[i] for i in range(C)}`, the map's own keys "
        "`[classes[i] for i in classes]`, a set of class indices `[names[i] for i in sorted(rare_cls)]`) and the name "
        "of the true label (`classes[labels[idx]]`) are left alone, and so is a configured class (an index "
        "bound only to a parameter's default or a value with no call, `minority_idx = num_classes - 1`, a "
        "module constant): the same class for every image, named in a log, not a prediction. A lookup of each label of a batch "
        "(`inputs, classes = next(iter(loader))`, `[class_names[x] for x in classes]`) is reported "
        "as what it is: multi-hot labels are a row per image, named with `row.nonzero()`. "
        "A stored prediction named by its index (`self.classnames[pred]` in an error-case callback, the items of "
        "`enumerate(zip(self.preds, ...))` being predictions, not indices over every class) is reported too, and so is "
        "jetson-inference's `imageNet`: `class_idx, confidence = net.Classify(img)` is the one top class of an image, "
        "and `net.GetClassDesc(class_idx)` names it. A class name looked up for its index while walking the "
        "list the map was enumerated from (`class_indices[cla]` for `cla in flower_class`) is reported as the "
        "folder's single-label annotation; a key compared with a prediction (`ans == pred`) is the reference "
        "label and left alone. A list named otherwise but built of strings (`labels = [s.strip() for s in "
        "text.split(',')]`, `[\"cat\", \"dog\"]`) is reported where the meaning analysis proves its index an "
        "arg-max there (followed through `torch.flatten`, the arrays predictions are collected in and loops over them). "
        "The names of a top-k are read with the top-k's own finding within a few lines of it; a lookup of its "
        "indices further down (a display section of its own) is reported where it is."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "print(class_indict[str(predict_cla)], predict[predict_cla].numpy())\n"
    example_after = (
        "for i in (predict > THRESHOLD).nonzero().flatten().tolist():\n"
        "    print(class_indict[str(i)], predict[i].item())\n"
    )
    triggers = (
        "class_indict", "class_indices", "idx_to_class", "idx2label", "id2label", "class_names", "classnames",
        "classes[", "labels_map", "categories[", "topk", *sorted(_CLASS_NAME_CALLS),
    )

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return super().could_apply(source) and text_facts(source).has_any(_PREDICTION_WORDS)

    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, ParentNodeProvider, ScopeProvider)

    def __init__(self, context) -> None:
        super().__init__(context)
        self._every_class: list[dict[str, str | None]] = []
        """Names bound by the enclosing ``for`` loops over ``range(...)``/``enumerate(...)`` or a set
        of class indices: indices that walk every class (or distinct classes), not one predicted
        class; mapped to the code of the one map whose own keys they walk (``for i in classes``),
        None where they may index any map."""
        self._top_k: dict[str, int] = {}
        """Names bound to a reported top-k (``values, indices = probs.topk(5)``) or to a loop over it,
        with the line of that top-k's finding."""
        self._label_items: list[set[str]] = []
        """Names bound by the enclosing loops over a batch's labels (``for x in classes`` after
        ``inputs, classes = next(iter(loader))``): one true label each, not a prediction."""
        self._by_meaning: list[tuple[cst.Subscript, str, str]] = []
        """Lookups ``names[index]`` of a list not named as a class-name map but built of strings in
        its scope, with the names of the list and the index: reported at the end of the module
        where the meaning analysis proves the index an arg-max and the list those strings there."""
        self._reported: set[tuple[int, str]] = set()
        """One finding per line and message: ``print(names[str(i)], names[str(i)])`` is one construct."""

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _report_once(self, node: cst.CSTNode, message: str, suggestion: str) -> None:
        key = (self._line(node), message)
        if key not in self._reported:
            self._reported.add(key)
            self.report(node, message, suggestion=suggestion)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        owner = node.value
        name = owner.attr.value if isinstance(owner, cst.Attribute) else getattr(owner, "value", None)
        by_name = isinstance(name, str) and bool(CLASS_NAME_MAP.match(name))
        if not (by_name or isinstance(owner, cst.Name)) or len(node.slice) != 1:
            return
        index = node.slice[0].slice
        if not isinstance(index, cst.Index) or isinstance(index.value, _LITERALS):
            return
        if self._is_assigned(node):
            return  # building the label map: id2label[str(i)] = label
        key = index.value
        as_text = isinstance(key, cst.Call) and isinstance(key.func, cst.Name) and key.func.value in ("str", "int") and len(key.args) == 1
        looked_up = key.args[0].value if as_text else key
        if not by_name and not (isinstance(looked_up, cst.Name) and self._built_of_strings(owner)):
            return
        if isinstance(looked_up, cst.Name) and any(
            looked_up.value in names and names[looked_up.value] in (None, _code(owner)) for names in self._every_class
        ):
            # a loop over every class (print each label's probability) is already multi-label, and
            # so is one over the map's own keys (`[classes[i] for i in classes]`, heatmap axes)
            return
        top_k = _names_in(looked_up) & self._top_k.keys()
        if top_k and self._line(node) - min(self._top_k[name] for name in top_k) <= _NEAR_TOP_K:
            return  # the names of a top-k reported where it is taken: one finding per construct
        if top_k and by_name:
            self._report_once(
                node,
                f"one class name per top-k index: `{name}[...]` names the top-k of line "
                f"{min(self._top_k[n] for n in top_k)}, k labels whatever their scores; a multi-label "
                "prediction is every label above the threshold",
                f"list every label above the threshold: [{name}[{_index_text(key)}] for i in (probs > THRESHOLD).nonzero().flatten().tolist()]",
            )
            return
        if not by_name:
            # named by what it holds: the meaning analysis, not the spelling, tells a prediction
            # from a true label
            self._by_meaning.append((node, name, looked_up.value))
            return
        root = _root(looked_up)
        if isinstance(root, cst.Name) and _TRUE_LABEL.match(root.value):
            return  # the image's true label (`classes[labels[idx]]`), shown beside the prediction
        if isinstance(looked_up, cst.Name) and self._tested_against_prediction(looked_up):
            return  # the reference answer (`is_correct = ans == pred`), shown beside the prediction
        if isinstance(looked_up, cst.Name) and self._configured(looked_up):
            return  # a class chosen by the caller or the code (`class_names[minority_idx]`), not predicted
        if isinstance(looked_up, cst.Name) and isinstance(owner, cst.Name) and self._names_its_index(owner, looked_up):
            self._report_once(
                node,
                f"one label per image: `{name}[{looked_up.value}]` maps a class name to its one class "
                "index, and each image is given that single index as its label",
                f"give each image a multi-hot row: a 1 in column {name}[c] for every class name c it is "
                "annotated with (read from an annotation file, not from one folder per class)",
            )
            return
        if isinstance(looked_up, cst.Name) and any(looked_up.value in names for names in self._label_items):
            self._report_once(
                node,
                f"one class name per image: `{name}[...]` looks up one class index of a batch's labels; "
                "multi-hot labels are a row per image, with any number of labels",
                f"name every label of a row: [{name}[{_index_text(key)}] for i in row.nonzero().flatten().tolist()]",
            )
            return
        self._report_predicted(node, name, key, looked_up)

    def _report_predicted(self, node: cst.Subscript, name: str, key: cst.BaseExpression, looked_up: cst.BaseExpression) -> None:
        self._report_once(
            node,
            f"one class name per image: `{name}[...]` looks up a single predicted index",
            f"list every label above the threshold: [{name}[{_index_text(key)}] for i in ({_scores_of(looked_up)} > THRESHOLD).nonzero().flatten().tolist()]",
        )

    def _unpacked_in_two(self, node: cst.Call) -> bool:
        """``class_idx, confidence = net.Classify(img)``."""
        statement = self.get_metadata(ParentNodeProvider, node, None)
        return isinstance(statement, cst.Assign) and any(
            isinstance(target.target, cst.Tuple) and len(target.target.elements) == 2 for target in statement.targets
        )

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _CLASS_NAME_CALLS and len(node.args) == 1:
            self._report_once(
                node,
                f"one class name per image: `{func.attr.value}(...)` names a single class index (the top class "
                "the network's Classify returns)",
                "name every label above the threshold: the sigmoid of the network's raw outputs, "
                "[labels[i] for i in (probs > THRESHOLD).nonzero().flatten().tolist()]",
            )
            return
        if isinstance(func, cst.Attribute) and func.attr.value in _ONE_CLASS_CALLS and self._unpacked_in_two(node):
            self._report_once(
                node,
                f"`{func.attr.value}(img)` returns one class index and its confidence: the single top class of a "
                "softmax, one label per image",
                "run the network for its raw outputs and keep every label with torch.sigmoid(logits) > THRESHOLD",
            )
            return
        if not (isinstance(func, cst.Attribute) and func.attr.value == "topk"):
            return
        receiver = func.value
        if isinstance(receiver, cst.Name) and receiver.value in ("torch", "th"):
            receiver = node.args[0].value if node.args else receiver
        text = cst.Module(body=[]).code_for_node(receiver)
        if "prob" in text or "softmax" in text or "sigmoid" in text:
            statement = self.get_metadata(ParentNodeProvider, node, None)
            if isinstance(statement, cst.Assign):
                for target in statement.targets:
                    self._top_k |= dict.fromkeys(_bound_names(target.target), self._line(node))
            self._report_once(
                node,
                "top-k of the probabilities names k labels whatever their scores; a multi-label prediction is every label above the threshold",
                "use (probs > THRESHOLD).nonzero() to list the predicted labels, with probs = torch.sigmoid(logits)",
            )


def _index_text(key: cst.BaseExpression) -> str:
    """``i``, or ``str(i)`` where the map is keyed by the index as text."""
    if isinstance(key, cst.Call) and isinstance(key.func, cst.Name) and key.func.value in ("str", "int") and len(key.args) == 1:
        return f"{key.func.value}(i)"
    return "i"


def _scores_of(index: cst.BaseExpression) -> str:
    """What the predicted index is the arg-max of (``pred_softmax`` in ``torch.argmax(pred_softmax)``),
    so the suggestion thresholds a name the code has; ``probs`` where no arg-max is written there."""
    for call in _calls_in(index):
        if isinstance(call.func, cst.Attribute) and call.func.attr.value == "argmax":
            if isinstance(call.func.value, cst.Name) and call.func.value.value in ("torch", "np", "numpy") and call.args:
                return cst.Module([]).code_for_node(call.args[0].value)
            if not (isinstance(call.func.value, cst.Name) and call.func.value.value in ("torch", "np", "numpy")):
                return cst.Module([]).code_for_node(call.func.value)
        if isinstance(call.func, cst.Name) and call.func.value == "argmax" and call.args:
            return cst.Module([]).code_for_node(call.args[0].value)
    return "probs"
