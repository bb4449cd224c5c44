"""ML110: ``F.one_hot(y, num_classes)`` turns one class index into a target with one label."""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from migrate_ml.rules._base import Applicability, Rule, enclosing
from migrate_ml.rules.semantics.flow import MULTI_LABEL_KINDS, LossFlow, LossFlowProvider
from migrate_ml.rules.semantics.shapes import tests_one_dimensional
from migrate_ml.rules._prefilter import has_loss_marker, nodes_of, text_facts
from migrate_ml.rules._exprs import chain_root

_ONE_HOT = frozenset({"torch.nn.functional.one_hot"})
_EYE = frozenset({"torch.eye", "numpy.eye"})
"""``torch.eye(C)[y]`` selects row y of the identity: the one-hot of y, spelled as an index."""
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
        "through imports and aliases), and its spelling as an index, `torch.eye(C)[targets]`, "
        "where it is a training target: inside a loss call's "
        "target, bound to a name that a loss call in the same function takes as its target, "
        "taken of the labels a loss call in the same function receives, or built in a "
        "`__getitem__` or collate function; `eye(C)[targets]` also in the user's own loss (a "
        "function or class named as a loss, `SymmetricCrossEntropy`, `soft_cross_entropy_loss`). "
        "A `one_hot` used as a mask inside a model is left alone, and so is one taken only for 1-D "
        "targets (`if teacher.ndim == 1: teacher = torch.eye(C)[teacher]`) of a name only BCE losses "
        "take: multi-hot [B, C] rows skip it."
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
    triggers = ("one_hot", "eye(")
    METADATA_DEPENDENCIES = (
        *Rule.METADATA_DEPENDENCIES,
        LossFlowProvider,
        ParentNodeProvider,
        QualifiedNameProvider,
        ScopeProvider,
    )

    @classmethod
    def could_apply(cls, source: str) -> bool:
        facts = text_facts(source)
        return facts.has_any(("one_hot(", "eye(")) and (has_loss_marker(source) or facts.has_any(_DATA_FUNCTIONS))

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A ``one_hot`` call (or ``eye(C)[y]``) that is not inside a function defining one-hot
        encoding itself, nor the file's own ``one_hot`` (timm's ``mixup.py``: not torch's)."""
        return _one_hot_call_outside(tree, inside_one_hot_helper=False, own_one_hot=_defines_own_one_hot(tree))

    def visit_Module(self, node: cst.Module) -> None:
        flow: LossFlow = self.get_metadata(LossFlowProvider, node)
        self._loss_targets = {id(call.target): call for call in flow.calls if call.target is not None}
        self._target_roots: list[tuple[object, str]] = []
        """(scope, name) of every loss target's root name."""
        self._root_kinds: dict[tuple[object, str], set[str]] = {}
        """The kinds of the losses each root name is the target of."""
        for call in flow.calls:
            if call.target is None:
                continue
            root = chain_root(call.target.value)
            if isinstance(root, cst.Name):
                key = (self.get_metadata(ScopeProvider, root, None), root.value)
                self._target_roots.append(key)
                self._root_kinds.setdefault(key, set()).update(call.kinds)

    def visit_Call(self, node: cst.Call) -> None:
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        if not qualified & _ONE_HOT:
            return
        self._report_if_target(node, "one_hot", node.args[0].value if node.args else None, in_loss=False)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        eye = node.value
        if not (isinstance(eye, cst.Call) and {q.name for q in self.get_metadata(QualifiedNameProvider, eye.func, set())} & _EYE):
            return
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            self._report_if_target(node, "eye(C)[...]", node.slice[0].slice.value, in_loss=True)

    def _report_if_target(
        self, node: cst.BaseExpression, spelled: str, source: cst.BaseExpression | None, in_loss: bool
    ) -> None:
        """``in_loss``: a one-hot built inside the user's own loss counts too. Only for the index
        spelling: a loss that calls ``one_hot`` is ML108's, which reports it as a whole."""
        why = self._why_a_target(node, source, in_loss)
        if why is not None and not self._only_for_indices(node, source):
            self.report(
                node,
                f"{spelled} {why}: it encodes exactly one label per image, so the model still "
                "learns a single-label problem",
                suggestion=SUGGESTION,
            )

    def _only_for_indices(self, node: cst.BaseExpression, source: cst.BaseExpression | None) -> bool:
        """The encoding runs only where its source is 1-D (``if teacher.ndim == 1: teacher =
        torch.eye(C)[teacher]``, or ``... if y.dim() == 1 else y``) and the name is the target of
        BCE losses only: [B, C] multi-hot rows skip it and reach a loss that is already
        multi-label as they are. Under a softmax loss the encoding stays reported."""
        root = chain_root(source) if source is not None else None
        if not isinstance(root, cst.Name):
            return False
        kinds = self._root_kinds.get((self.get_metadata(ScopeProvider, root, None), root.value))
        if not kinds or not kinds <= MULTI_LABEL_KINDS:
            return False
        current: cst.CSTNode = node
        while (parent := self.get_metadata(ParentNodeProvider, current, None)) is not None:
            if isinstance(parent, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                return False
            if isinstance(parent, (cst.If, cst.IfExp)) and current is parent.body and tests_one_dimensional(parent.test, root.value):
                return True
            current = parent
        return False

    def _why_a_target(self, call: cst.BaseExpression, source: cst.BaseExpression | None, in_loss: bool) -> str | None:
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
        root = chain_root(source) if source is not None else None
        if isinstance(root, cst.Name) and (scope, root.value) in self._target_roots:
            return f"is built from {root.value}, the class indices a loss receives"
        function = enclosing(self, call, cst.FunctionDef)
        if function is not None and any(name in function.name.value for name in _DATA_FUNCTIONS):
            return f"builds the targets in {function.name.value}()"
        loss = self._enclosing_loss(call) if in_loss else None
        if loss is not None:
            return f"builds the targets of the hand-written loss {loss}"
        return None

    def _enclosing_loss(self, node: cst.CSTNode) -> str | None:
        """The function or class around ``node`` named as a loss (``soft_cross_entropy_loss``,
        ``SymmetricCrossEntropy``): what it one-hot encodes are the targets it scores."""
        current = self.get_metadata(ParentNodeProvider, node, None)
        while current is not None:
            if isinstance(current, (cst.FunctionDef, cst.ClassDef)) and _LOSS_NAME.search(current.name.value):
                return f"{current.name.value}()" if isinstance(current, cst.FunctionDef) else current.name.value
            current = self.get_metadata(ParentNodeProvider, current, None)
        return None


_LOSS_NAME = re.compile(r"loss|cross_?entropy", re.IGNORECASE)


def _defines_own_one_hot(tree: ast.Module) -> bool:
    """A top-level ``def one_hot`` and no import that could bind the name: a bare ``one_hot(...)``
    then calls the file's function, whose qualified name is not ``torch.nn.functional.one_hot``."""
    defines = any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "one_hot" for node in tree.body)
    return defines and not any(
        (alias.asname or alias.name).split(".")[0] in ("one_hot", "*")
        for node in nodes_of(tree, ast.Import, ast.ImportFrom)
        for alias in node.names
    )


def _one_hot_call_outside(node: ast.AST, inside_one_hot_helper: bool, own_one_hot: bool) -> bool:
    for child in ast.iter_child_nodes(node):
        helper = inside_one_hot_helper or (
            isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and "one_hot" in child.name
        )
        if isinstance(child, ast.Call) and not helper:
            func = child.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name == "one_hot" and not (own_one_hot and isinstance(func, ast.Name)):
                return True
        if isinstance(child, ast.Subscript) and not helper and isinstance(child.value, ast.Call):
            func = child.value.func
            if isinstance(func, ast.Attribute) and func.attr == "eye":
                return True
        if _one_hot_call_outside(child, helper, own_one_hot):
            return True
    return False
