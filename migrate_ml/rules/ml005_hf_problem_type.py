"""ML005: Hugging Face models sized by ``num_labels`` get ``problem_type="multi_label_classification"``."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Fix, NodeEdit, Rule
from migrate_ml.rules._exprs import insert_argument, keyword_arguments

PROBLEM_TYPE = "multi_label_classification"
SIZING_KEYWORDS = ("num_labels", "id2label", "label2id")
"""Keywords that size a classification head, in the order the new argument prefers to follow
them: transformers derives ``num_labels`` from ``id2label`` when only the maps are given."""


def _is_hf_sizing_call(rule: Rule, call: cst.Call) -> bool:
    """``X.from_pretrained(...)`` or a transformers ``...Config(...)`` constructor."""
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value == "from_pretrained":
        return True
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    if not name.endswith("Config"):
        return False
    qualified = {q.name for q in rule.get_metadata(QualifiedNameProvider, func, set())}
    return any(q.startswith("transformers.") for q in qualified)


class HuggingFaceProblemTypeRule(Rule):
    code = "ML005"
    name = "hf-problem-type"
    summary = (
        'from_pretrained(..., num_labels=n or id2label=...) and transformers configs get '
        'problem_type="multi_label_classification".'
    )
    rationale = (
        "Hugging Face classification heads compute the loss themselves (`outputs.loss`) and, "
        "when `config.problem_type` is unset, guess it from the labels on every batch: integer "
        "labels with `num_labels > 1` select CrossEntropyLoss, the single-label loss. Integer "
        "multi-hot labels (the usual int64 output of a dataset) would therefore be sent to the "
        "wrong loss. Setting `problem_type=\"multi_label_classification\"` fixes the choice "
        "to BCEWithLogitsLoss, so the rewrite adds it next to `num_labels` (or, when the head "
        "is sized by its label maps alone, next to `id2label`/`label2id`, from which "
        "transformers takes `num_labels`) in "
        "`from_pretrained(...)`, `AutoConfig.from_pretrained(...)` and transformers "
        "`XxxConfig(...)` calls, unless a `problem_type` is already given. The labels must "
        "still reach the model as float multi-hot rows [B, num_labels] (BCEWithLogitsLoss "
        "needs float targets); the dataset or collate function that builds them is for a "
        "human to change. A model the file only calls on its images (`self.net(pixel_values=x)"
        ".logits`, no `labels`, never handed to a `Trainer` or anything else) never computes "
        "that loss, and is left alone."
    )
    applicability = Applicability.SAFE
    example_before = 'model = AutoModelForImageClassification.from_pretrained(name, num_labels=len(labels))\n'
    example_after = (
        "model = AutoModelForImageClassification.from_pretrained(\n"
        '    name, num_labels=len(labels), problem_type="multi_label_classification"\n'
        ")\n"
    )
    triggers = ("num_labels", "id2label", "label2id")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, QualifiedNameProvider, ParentNodeProvider)

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node

    def visit_Call(self, node: cst.Call) -> None:
        keywords = keyword_arguments(node)
        sizing = next((keywords[name] for name in SIZING_KEYWORDS if name in keywords), None)
        if sizing is None or "problem_type" in keywords:
            return
        if any(arg.star == "**" for arg in node.args) or not _is_hf_sizing_call(self, node):
            return
        if self._never_given_labels(node):
            return  # the head's own loss is never computed: its problem_type chooses nothing
        index = node.args.index(sizing)
        self.report(
            node,
            f"{sizing.keyword.value} alone gives a single-label (softmax cross-entropy) head; set "
            f'problem_type="{PROBLEM_TYPE}" and feed float multi-hot labels [B, num_labels]',
            fix=Fix(edits=(NodeEdit(node, lambda call, i=index: _insert_after(call, i)),)),
        )


    def _never_given_labels(self, call: cst.Call) -> bool:
        """The model ``call`` loads is bound (``self.net = AutoModelFor...from_pretrained(...)``) and,
        in this file, is called at least once and only with one input and no ``labels``
        (``self.net(pixel_values=x).logits``), and otherwise only used through its attributes or
        rewrapped into itself (``self.net = get_peft_model(self.net, config)``): it never computes
        ``outputs.loss``, so ``problem_type`` selects no loss. A model handed to anything else (a
        ``Trainer``, ``accelerator.prepare``) or called with ``**batch`` may be given labels there."""
        func = call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == "from_pretrained" and "For" in _leaf(func.value)):
            return False
        statement = self.get_metadata(ParentNodeProvider, call, None)
        if not (isinstance(statement, cst.Assign) and len(statement.targets) == 1):
            return False
        bound = self._module.code_for_node(statement.targets[0].target)
        called = False
        for use in _walk(self._module):
            if not isinstance(use, (cst.Name, cst.Attribute)) or self._module.code_for_node(use) != bound:
                continue
            parent = self.get_metadata(ParentNodeProvider, use, None)
            if isinstance(parent, cst.Call) and parent.func is use:
                positional = [a for a in parent.args if a.keyword is None]
                if any(a.star for a in parent.args) or len(positional) > 1 or "labels" in keyword_arguments(parent):
                    return False
                called = True
            elif isinstance(parent, cst.Attribute) and parent.value is use:
                if parent.attr.value in ("forward", "__call__"):
                    return False
            elif isinstance(parent, cst.AssignTarget):
                continue
            elif isinstance(parent, cst.Arg):
                wrapper = self.get_metadata(ParentNodeProvider, parent, None)
                holder = self.get_metadata(ParentNodeProvider, wrapper, None)
                if not (
                    isinstance(holder, cst.Assign) and holder.value is wrapper and len(holder.targets) == 1
                    and self._module.code_for_node(holder.targets[0].target) == bound
                ):
                    return False
            else:
                return False
        return called


def _leaf(expression: cst.BaseExpression) -> str:
    return expression.attr.value if isinstance(expression, cst.Attribute) else getattr(expression, "value", "")


def _walk(node: cst.CSTNode):
    yield node
    for child in node.children:
        yield from _walk(child)


def _insert_after(call: cst.Call, index: int) -> cst.Call:
    """Insert ``problem_type=...`` after ``args[index]``, in the layout of the call."""
    new = cst.Arg(
        keyword=cst.Name("problem_type"), value=cst.SimpleString(f'"{PROBLEM_TYPE}"'), equal=call.args[index].equal
    )
    return call.with_changes(args=insert_argument(list(call.args), index, new, call.whitespace_before_args))
