"""ML110: ``F.one_hot(y, num_classes)`` turns one class index into a target with one label."""

from __future__ import annotations

import ast

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules.semantics.flow import LossFlow, LossFlowProvider
from migrate_ml.rules._prefilter import has_loss_marker
from migrate_ml.rules._exprs import chain_root

_ONE_HOT = frozenset({"torch.nn.functional.one_hot"})
_DATA_FUNCTIONS = ("__getitem__", "collate")
"""Functions (by name, or name part) that build the targets of a batch."""

SUGGESTION = (
    "replace it with the real multi-hot target: a float [B, C] tensor with a 1 for every label "
    "of the image (build it in the Dataset, e.g. migrate_ml_reference.MultiLabelCsvDataset, "
    "not from a class index)"
)



class OneHotTargetRule(Rule):
    code = "ML110"
    name = "one-hot-target"
    summary = (
        "F.one_hot(y, num_classes) feeding a loss, built from the labels a loss receives, or built "
        "in a Dataset/collate function is reported: use the real multi-hot target."
    )
    rationale = (
        "`F.one_hot(y, num_classes)` has the shape of a multi-label target ([B, C], one column per "
        "label), which makes it look like the migration is done, but it encodes exactly one "
        "label per image: the class index it was built from. BCE trained on it learns a "
        "single-label problem with sigmoid outputs, and metrics computed against it never see "
        "a second label. The labels of a multi-label dataset cannot be recovered from one index, "
        "so nothing is rewritten: the one-hot has to be replaced by the real multi-hot rows, "
        "which the Dataset produces (for example the reference runtime's `MultiLabelCsvDataset`, "
        "whose items are float multi-hot [C] vectors). migrate-ml reports `one_hot` (resolved "
        "through imports and aliases) where it is a training target: inside a loss call's "
        "target, bound to a name that a loss call in the same function takes as its target, "
        "taken of the labels a loss call in the same function receives, or built in a "
        "`__getitem__` or collate function. A `one_hot` used as a mask inside a model is left "
        "alone."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = (
        "targets = F.one_hot(labels, num_classes).float()\n"
        "loss = criterion(outputs, targets)\n"
    )
    example_after = (
        "# labels: float multi-hot [B, C] from the multi-label dataset\n"
        "loss = criterion(outputs, labels.float())\n"
    )
    triggers = ("one_hot",)
    METADATA_DEPENDENCIES = (
        *Rule.METADATA_DEPENDENCIES,
        LossFlowProvider,
        ParentNodeProvider,
        QualifiedNameProvider,
        ScopeProvider,
    )

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return "one_hot(" in source and (
            has_loss_marker(source) or any(name in source for name in _DATA_FUNCTIONS)
        )

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A ``one_hot`` call that is not inside a function defining one-hot encoding itself."""
        return _one_hot_call_outside(tree, inside_one_hot_helper=False)

    def visit_Module(self, node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, node)
        self._loss_targets = {id(call.target): call for call in flow.calls if call.target is not None}
        self._target_roots: list[tuple[object, str]] = []
        """(scope, name) of every loss target's root name."""
        for call in flow.calls:
            if call.target is None:
                continue
            root = chain_root(call.target.value)
            if isinstance(root, cst.Name):
                self._target_roots.append((self.get_metadata(ScopeProvider, root, None), root.value))

    def visit_Call(self, node: cst.Call) -> None:
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        if not qualified & _ONE_HOT:
            return
        why = self._why_a_target(node)
        if why is not None:
            self.report(
                node,
                f"one_hot {why}: it encodes exactly one label per image, so the model still "
                "learns a single-label problem",
                suggestion=SUGGESTION,
            )

    def _why_a_target(self, call: cst.Call) -> str | None:
        scope = self.get_metadata(ScopeProvider, call, None)
        current: cst.CSTNode = call
        while True:
            parent = self.get_metadata(ParentNodeProvider, current, None)
            if parent is None or isinstance(parent, (cst.BaseStatement, cst.BaseSmallStatement)):
                break
            if id(parent) in self._loss_targets:
                return "is the target of a loss"
            current = parent
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            bound = parent.targets[0].target
            if isinstance(bound, cst.Name) and (scope, bound.value) in self._target_roots:
                return f"is bound to {bound.value}, which a loss takes as its target"
        source = call.args[0].value if call.args else None
        root = chain_root(source) if source is not None else None
        if isinstance(root, cst.Name) and (scope, root.value) in self._target_roots:
            return f"is built from {root.value}, the class indices a loss receives"
        function = self._enclosing_function(call)
        if function is not None and any(name in function.name.value for name in _DATA_FUNCTIONS):
            return f"builds the targets in {function.name.value}()"
        return None

    def _enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        current = self.get_metadata(ParentNodeProvider, node, None)
        while current is not None and not isinstance(current, cst.FunctionDef):
            current = self.get_metadata(ParentNodeProvider, current, None)
        return current


def _one_hot_call_outside(node: ast.AST, inside_one_hot_helper: bool) -> bool:
    for child in ast.iter_child_nodes(node):
        helper = inside_one_hot_helper or (
            isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and "one_hot" in child.name
        )
        if isinstance(child, ast.Call) and not helper:
            func = child.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name == "one_hot":
                return True
        if _one_hot_call_outside(child, helper):
            return True
    return False
