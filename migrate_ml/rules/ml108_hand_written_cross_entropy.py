"""ML108: a hand-written (label-smoothing) cross-entropy ``nn.Module`` is single-label by design."""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import (
    ParentNodeProvider,
    QualifiedNameProvider,
    QualifiedNameSource,
    ScopeProvider,
)

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._exprs import chain_root, keyword_arguments, positional_arguments
from migrate_ml.rules.semantics.bindings import assignment_of, sole_binding
from migrate_ml.rules.semantics.flow import LOSS_CLASSES
from migrate_ml.rules._prefilter import has_loss_marker, text_facts

_MODULE_BASES = frozenset(
    {
        "torch.nn.Module",
        "torch.nn.modules.module.Module",
        "torch.nn.modules.loss._Loss",
        "torch.nn.modules.loss._WeightedLoss",
        # a loss written with its own backward: ``forward(ctx, logits, label)`` is the loss
        "torch.autograd.Function",
        "torch.autograd.function.Function",
    }
)
_LOG_SOFTMAX_FUNCTIONS = frozenset({"torch.nn.functional.log_softmax", "torch.log_softmax"})
_LOG_SOFTMAX_MODULES = frozenset({"torch.nn.LogSoftmax", "torch.nn.modules.activation.LogSoftmax"})
_INDEX_METHODS = frozenset({"scatter_", "scatter", "gather", "scatter_add_", "scatter_add"})
_INDEX_FUNCTIONS = frozenset({"torch.gather", "torch.scatter", "torch.scatter_add"})
_ONE_HOT_FUNCTIONS = frozenset({"torch.nn.functional.one_hot"})
"""``F.one_hot(target, n)``: a one-hot row built from one class index per image (its first argument)."""
_NON_TORCH_ROOTS = frozenset({"scipy", "numpy", "jax", "tensorflow"})
_BI_TEMPERED = frozenset({"bi_tempered_logistic_loss", "BiTemperedLogisticLoss"})
"""The bi-tempered logistic loss (Amid et al. 2019; the ``bi-tempered-loss-pytorch`` package or a
copy of it), called as a function or built as a module, by name wherever it comes from."""
_IMPORTED_SMOOTHING_CLASS = re.compile(r"^(?!\w*(?:Binary|BCE|Sigmoid|MultiLabel|Multilabel))\w*LabelSmooth\w*$")
"""An imported class named like this (from the user's own modules: ``LabelSmoothingLoss``,
``CrossEntropyLossWithLabelSmoothing``) is the same hand-written loss defined in another file;
a per-label name (``BCEWithLabelSmoothing``) is not; timm's own class resolves to ``timm.*`` and
is ML004's."""


def bce_suggestion(epsilon: str | None) -> str:
    if epsilon is None:
        return (
            "delete the class and use nn.BCEWithLogitsLoss() on the raw logits with float "
            "multi-hot targets [B, C]: criterion(logits, targets.float())"
        )
    return (
        f"delete the class and use nn.BCEWithLogitsLoss() on smoothed float multi-hot targets: "
        f"criterion(logits, targets.float() * (1 - {epsilon}) + {epsilon} / 2)"
    )


class HandWrittenCrossEntropyRule(Rule):
    code = "ML108"
    name = "hand-written-cross-entropy"
    summary = (
        "A hand-written (label-smoothing) cross-entropy nn.Module (log_softmax + scatter_/gather/"
        "F.one_hot on the class index) and its constructions, and bi-tempered logistic losses, are "
        "reported: replace them with BCEWithLogitsLoss."
    )
    rationale = (
        "Label-smoothing cross-entropy is often written by hand (omihub ViT-CIFAR's "
        "`LabelSmoothingCrossEntropyLoss`, copies of timm's `LabelSmoothingCrossEntropy`): a "
        "`forward` that takes `log_softmax` over the classes and then reads the one true class "
        "with `gather`, or builds a smoothed one-hot target with `scatter_(1, target.unsqueeze(1), "
        "confidence)` or `F.one_hot(target, n)`. Both steps assume one class index per image: the softmax makes the labels "
        "compete, and `target.unsqueeze(1)` as an index cannot hold two labels (multi-hot float "
        "targets make `gather`/`scatter_` fail, or worse, index with 0s and 1s). No edit inside the "
        "class turns it into a multi-label loss, so the whole class is replaced: "
        "`BCEWithLogitsLoss` on float multi-hot targets, with the smoothing moved onto the targets "
        "as `y*(1-e)+e/2` (each label pulled towards 0.5, which is label smoothing for independent "
        "binary labels). migrate-ml reports the class (a subclass of `nn.Module`/`_Loss`, or a "
        "`torch.autograd.Function` with its own backward, whose `forward` both takes a log-softmax and "
        "indexes with one of its own arguments, or a local name read from one (`target = "
        "batch[\"targets\"]`), through `scatter_`/`gather`/`F.one_hot`) and every construction of it in the same file, quoting the "
        "`smoothing` passed there, plus constructions of an imported `LabelSmoothing...` class "
        "from the user's own modules; nothing is rewritten, since the class may be used elsewhere. "
        "The bi-tempered logistic loss (`bi_tempered_logistic_loss(logits, labels, t1, t2)` and "
        "`BiTemperedLogisticLoss` modules, often chosen from a config beside cross-entropy) is a "
        "tempered softmax over competing classes: each of its calls and constructions is reported the same way, "
        "except a call given each score stacked beside a zero (`torch.stack([x, torch.zeros_like(x)], dim=-1)`, "
        "the package's `bi_tempered_binary_logistic_loss`), a two-way softmax per label that is its sigmoid. "
        "An imported `LabelSmoothing...` object called only on the labels (`labels = self.label_smoothing(labels)`) "
        "is a target transform, not a loss, and is left alone."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = (
        "class LabelSmoothingCrossEntropyLoss(nn.Module):\n"
        "    def forward(self, pred, target):\n"
        "        pred = pred.log_softmax(dim=-1)\n"
        "        true_dist = torch.full_like(pred, self.smoothing / (self.cls - 1))\n"
        "        true_dist.scatter_(1, target.unsqueeze(1), self.confidence)\n"
        "        return torch.mean(torch.sum(-true_dist * pred, dim=-1))\n"
        "\n"
        "criterion = LabelSmoothingCrossEntropyLoss(classes, smoothing=0.1)\n"
        "loss = criterion(out, y)\n"
    )
    example_after = (
        "criterion = nn.BCEWithLogitsLoss()\n"
        "loss = criterion(out, y.float() * (1 - 0.1) + 0.1 / 2)\n"
    )
    triggers = ("scatter", "gather", "one_hot", "LabelSmoothing", *sorted(_BI_TEMPERED))
    METADATA_DEPENDENCIES = (
        *Rule.METADATA_DEPENDENCIES,
        ParentNodeProvider,
        QualifiedNameProvider,
        ScopeProvider,
    )

    @classmethod
    def could_apply(cls, source: str) -> bool:
        facts = text_facts(source)
        defines = (
            facts.has_any(("log_softmax", "LogSoftmax"))
            and facts.has_any(("scatter", "gather", "one_hot"))
            and facts.has("def forward")
        )
        return defines or facts.has_any(_BI_TEMPERED) or (facts.has("LabelSmoothing") and has_loss_marker(source))

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if not any(self._qualified(base.value) & _MODULE_BASES for base in node.bases):
            return
        forward = next(
            (
                statement
                for statement in node.body.body
                if isinstance(statement, cst.FunctionDef) and statement.name.value in ("forward", "__call__")
            ),
            None,
        )
        if forward is None or not self._single_label_forward(node, forward):
            return
        smoothing = "smooth" in cst.Module([]).code_for_node(node).lower()
        kind = "label-smoothing cross-entropy" if smoothing else "cross-entropy"
        self.report(
            node.name,
            f"{node.name.value} is a hand-written {kind}: log_softmax makes the classes compete and "
            "scatter_/gather/one_hot index one class per image, so it cannot train multi-label targets",
            suggestion=bce_suggestion("smoothing" if smoothing else None),
        )
        self._report_constructions(node, kind, smoothing)

    def visit_Call(self, node: cst.Call) -> None:
        """Constructions of a ``LabelSmoothing...`` class imported from the user's own modules, and
        bi-tempered logistic losses."""
        if not isinstance(node.func, (cst.Name, cst.Attribute)):
            return
        callee = node.func.value if isinstance(node.func, cst.Name) else node.func.attr.value
        if callee in _BI_TEMPERED:
            if self._binary_pairs(node):
                return  # bi_tempered_binary_logistic_loss: one tempered sigmoid per label, already multi-label
            self.report(
                node,
                f"{callee} is a bi-tempered logistic loss: a tempered softmax over competing classes, "
                "one label per image",
                suggestion=bce_suggestion(_smoothing_text(node)),
            )
            return
        # Sorted: a name several `from M import *` may bind has one qualified name per module, in
        # no fixed order, and the message names them all.
        imported = sorted(
            qualified.name for qualified in self.get_metadata(QualifiedNameProvider, node.func, set())
            if qualified.source is QualifiedNameSource.IMPORT
        )
        if any(name in LOSS_CLASSES or name.lstrip(".").partition(".")[0] in ("timm", "torch") for name in imported):
            return
        smoothing = [name for name in imported if _IMPORTED_SMOOTHING_CLASS.match(name.rpartition(".")[2])]
        if not smoothing or self._smooths_targets_only(node):
            return  # `labels = self.label_smoothing(labels)`: a target transform, not a loss
        modules = " or ".join(dict.fromkeys(name.rpartition(".")[0] or "another module" for name in smoothing))
        self.report(
            node,
            f"{smoothing[0].rpartition('.')[2]} (imported from {modules}) "
            "is a label-smoothing cross-entropy: it trains one label per image",
            suggestion=bce_suggestion(_smoothing_text(node) or "smoothing"),
        )

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node

    def _binary_pairs(self, call: cst.Call) -> bool:
        """The loss is given ``torch.stack([x, torch.zeros_like(x)], dim=-1)`` as its activations
        (directly or through the name it is bound to): each score beside a zero, a two-way softmax
        per label, which is the sigmoid of that score. The package's binary variant does this, and
        scores every label on its own."""
        given = next(iter(positional_arguments(call)), None) or keyword_arguments(call).get("activations")
        activations = given.value if given is not None else None
        if isinstance(activations, cst.Name):
            binding = sole_binding(self, activations)
            statement = assignment_of(self, binding)
            activations = statement.value if statement is not None else None
        if not (isinstance(activations, cst.Call) and self._qualified(activations.func) & {"torch.stack"} and activations.args):
            return False
        pair = activations.args[0].value
        if not (isinstance(pair, (cst.List, cst.Tuple)) and len(pair.elements) == 2):
            return False
        score, zero = (element.value for element in pair.elements)
        return (
            isinstance(zero, cst.Call) and self._qualified(zero.func) & {"torch.zeros_like"} and len(zero.args) == 1
            and zero.args[0].value.deep_equals(score)
        )

    def _smooths_targets_only(self, construction: cst.Call) -> bool:
        """The object built is bound to a name or attribute and every call of it in the file takes
        one argument (``labels = self.label_smoothing(labels)``): it transforms the targets; a
        loss takes the scores as well."""
        statement = self.get_metadata(ParentNodeProvider, construction, None)
        if isinstance(statement, cst.Assign) and len(statement.targets) == 1:
            bound = statement.targets[0].target
        elif isinstance(statement, cst.AnnAssign):
            bound = statement.target
        else:
            return False
        code = self._module.code_for_node(bound)
        calls = _Calls()
        self._module.visit(calls)
        uses = [call for call in calls.found if self._module.code_for_node(call.func) == code]
        return bool(uses) and all(len(call.args) == 1 and not call.args[0].star for call in uses)

    def _single_label_forward(self, class_def: cst.ClassDef, forward: cst.FunctionDef) -> bool:
        calls = _Calls()
        forward.visit(calls)
        log_softmax = any(self._is_log_softmax(call) for call in calls.found) or self._has_log_softmax_layer(class_def)
        if not log_softmax:
            return False
        # the index must be a target argument: not `self`, not the scores (the first argument)
        targets = {param.name.value for param in (*forward.params.posonly_params, *forward.params.params)[2:]}
        return any(self._indexes_with(call, _with_local_names(forward, targets)) for call in calls.found)

    def _is_log_softmax(self, call: cst.Call) -> bool:
        qualified = self._qualified(call.func)
        if qualified & _LOG_SOFTMAX_FUNCTIONS:
            return True
        if isinstance(call.func, cst.Attribute) and call.func.attr.value == "log_softmax":
            # `x.log_softmax(dim)` on a tensor; `scipy.special.log_softmax(...)` is not torch
            return not any(name.partition(".")[0] in _NON_TORCH_ROOTS for name in qualified)
        return False

    def _has_log_softmax_layer(self, class_def: cst.ClassDef) -> bool:
        calls = _Calls()
        class_def.visit(calls)
        return any(self._qualified(call.func) & _LOG_SOFTMAX_MODULES for call in calls.found)

    def _indexes_with(self, call: cst.Call, arguments: set[str]) -> bool:
        """``x.scatter_(1, target.unsqueeze(1), v)`` / ``x.gather(1, target...)`` / ``torch.gather(x, 1, target)``
        / ``F.one_hot(target, n)`` with the index derived from one of ``arguments``."""
        keyword = "index"
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in _INDEX_METHODS:
            index_position = 1
        elif self._qualified(call.func) & _INDEX_FUNCTIONS:
            index_position = 2
        elif self._qualified(call.func) & _ONE_HOT_FUNCTIONS:
            index_position, keyword = 0, "tensor"
        else:
            return False
        positional = positional_arguments(call)
        index = keyword_arguments(call).get(keyword)
        if index is None and len(positional) > index_position:
            index = positional[index_position]
        if index is None:
            return False
        root = chain_root(index.value)
        return isinstance(root, cst.Name) and root.value in arguments

    def _report_constructions(self, class_def: cst.ClassDef, kind: str, smoothing: bool) -> None:
        scope = self.get_metadata(ScopeProvider, class_def, None)
        if scope is None:
            return
        for assignment in scope.assignments[class_def.name.value]:
            if getattr(assignment, "node", None) is not class_def:
                continue
            for access in assignment.references:
                call = self.get_metadata(ParentNodeProvider, access.node, None)
                if not (isinstance(call, cst.Call) and call.func is access.node):
                    continue
                epsilon = _smoothing_text(call) if smoothing else None
                self.report(
                    call,
                    f"constructs {class_def.name.value}, a hand-written {kind} (single-label)",
                    suggestion=bce_suggestion(epsilon or ("smoothing" if smoothing else None)),
                )

    def _qualified(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}


def _with_local_names(forward: cst.FunctionDef, arguments: set[str]) -> set[str]:
    """``arguments`` and the local names read from them: ``target = batch["targets"]`` in
    ``forward(self, outputs, batch)`` holds the labels of the ``batch`` argument."""
    names = set(arguments)
    assignments = _Assignments()
    forward.visit(assignments)
    for target, value in assignments.found:
        root = chain_root(value)
        if isinstance(root, cst.Name) and root.value in names:
            names.add(target)
    return names


class _Assignments(cst.CSTVisitor):
    """``name = value`` statements, in order."""

    def __init__(self) -> None:
        self.found: list[tuple[str, cst.BaseExpression]] = []

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            self.found.append((node.targets[0].target.value, node.value))


def _smoothing_text(call: cst.Call) -> str | None:
    """The source of the ``smoothing``/``label_smoothing``/``eps`` argument, if passed by keyword."""
    for keyword in ("smoothing", "label_smoothing", "eps", "epsilon"):
        argument = keyword_arguments(call).get(keyword)
        if argument is not None:
            return cst.Module([]).code_for_node(argument.value)
    return None


class _Calls(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[cst.Call] = []

    def visit_Call(self, node: cst.Call) -> None:
        self.found.append(node)
