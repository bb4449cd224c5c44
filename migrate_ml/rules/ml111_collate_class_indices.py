"""ML111: a collate function that stacks class indices into a label tensor."""

from __future__ import annotations

import re

import ast

import libcst as cst
from libcst.metadata import CodePosition, ParentNodeProvider, PositionProvider, QualifiedNameProvider

from migrate_ml.rules._base import Applicability, Rule, enclosing
from migrate_ml.rules._exprs import is_flattened, is_float_cast, is_float_dtype, is_integer_cast, keyword_arguments
from migrate_ml.rules._prefilter import text_facts, walk

_TENSOR_BUILDERS = frozenset({"torch.tensor", "torch.as_tensor", "torch.LongTensor", "torch.from_numpy"})
_BATCHING = frozenset({"torch.stack", "torch.cat", "torch.concat", "torch.concatenate"})
"""Calls that join per-sample tensors (``torch.stack([torch.as_tensor(ex["labels"]) ...])``) into
the batch: a cast on their result is a cast on the label tensor the collate builds."""
_LABEL_WORD = re.compile(r"label|target|class|^ys?$", re.IGNORECASE)
"""How a collate function names what it batches: the label tensor is told from image ids,
lengths or masks by its name (``labels``, ``targets``, ``example["label"]``, ``y``)."""
_COLLATE_KEYWORDS = frozenset({"collate_fn", "data_collator"})
"""Where a collate function is handed over: a ``DataLoader``'s ``collate_fn=``, a Hugging Face
``Trainer``'s ``data_collator=``."""
_COLLATOR_CLASS = re.compile(r"collat", re.IGNORECASE)
"""A class whose ``__call__`` batches samples (``VisionDataCollator``, ``CollateFn``)."""
_LABEL_TENSOR_TEXT = re.compile(
    r"(?:label|target|class|\by)\w*[\"']?\s*[:=][^\n]*(?:tensor|LongTensor|from_numpy)\("
    r"|(?:tensor|LongTensor|from_numpy)\([^\n]*(?:label|target|class)",
    re.IGNORECASE,
)
"""Pre-filter text: a label-named value built with one of the tensor builders."""
_FLATTENED_LABEL_TEXT = re.compile(
    r"(?:label|target|class)\w*\b[^\n]*\.(?:flatten\(\)|view\(-1\)|reshape\(-1\))", re.IGNORECASE
)
"""Pre-filter text: a label-named value flattened to a vector (``targets = targets.flatten()``)."""
_BATCHES_INDICES = (
    "batches one class index per sample into the label tensor; multi-label training needs "
    "float multi-hot rows [B, C]"
)
_FLATTENS_LABELS = (
    "flattens the label batch into a vector, one class index per sample; multi-label training "
    "needs float multi-hot rows [B, C], which flattening would mix across samples"
)

SUGGESTION = (
    "have the Dataset return float multi-hot [C] rows and stack them: "
    "labels = torch.stack(multi_hot).float() (or use migrate_ml_reference.MultiLabelCsvDataset, "
    "whose items already are (image, float multi-hot [C]) and need no custom collate)"
)


class CollateClassIndicesRule(Rule):
    code = "ML111"
    name = "collate-class-indices"
    summary = (
        "A collate function building the label tensor from per-sample class indices "
        "(torch.as_tensor(labels), torch.tensor([ex['labels'] ...])) is reported: stack multi-hot rows instead."
    )
    rationale = (
        "Custom collate functions (WZ's `my_dataset.collate_fn`, Hugging Face image-classification "
        "examples) batch the labels with `torch.as_tensor(labels)` or "
        "`torch.tensor([example[\"labels\"] for example in examples])`: one integer per sample, a "
        "[B] tensor of class indices, which is what a single-label dataset yields. Multi-label "
        "training needs a float [B, C] multi-hot batch, so the collate has to stack per-sample "
        "multi-hot rows (`torch.stack(multi_hot).float()`), and the Dataset feeding it has to "
        "produce those rows in the first place. This is tied to the dataset format, which "
        "migrate-ml cannot see, so it is reported, not rewritten. A collate function is a "
        "function whose name contains `collate` (including a `@staticmethod def collate_fn`), "
        "a function or lambda passed as `collate_fn=` or as a Trainer's `data_collator=` in the same "
        "file, or the `__call__` of a collator class (`VisionDataCollator`); inside it, `torch.tensor`, "
        "`torch.as_tensor`, `torch.LongTensor` and `torch.from_numpy` calls (names resolved, so "
        "aliases count) are reported when the value or the name it is stored in is a label "
        "(`label`, `target`, `class`, `y`), unless the label tensor is made float: a float "
        "`dtype=` on the call, or a float cast (`.float()`, `.to(torch.float32)`, "
        "`.type(torch.FloatTensor)`, `.double()`, `.half()`) applied to it, per sample, to the "
        "`torch.stack`/`torch.cat` that joins the per-sample tensors (or the list they were "
        "collected in), or at every later use of "
        "the name it is stored in (`return images, labels.float()`). A later integer cast "
        "(`.long()`) makes it class indices again. Flattening the label batch "
        "(`targets = torch.cat(targets, 0).flatten()`, `.view(-1)`, `.reshape(-1)`) is reported "
        "too: it makes one class index per sample, and would mix multi-hot rows across samples."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = (
        "@staticmethod\n"
        "def collate_fn(batch):\n"
        "    images, labels = tuple(zip(*batch))\n"
        "    images = torch.stack(images, dim=0)\n"
        "    labels = torch.as_tensor(labels)\n"
        "    return images, labels\n"
    )
    example_after = (
        "@staticmethod\n"
        "def collate_fn(batch):\n"
        "    images, labels = tuple(zip(*batch))  # labels: float multi-hot [C] rows\n"
        "    images = torch.stack(images, dim=0)\n"
        "    labels = torch.stack(labels).float()\n"
        "    return images, labels\n"
    )
    triggers = ("collat", "Collat")
    METADATA_DEPENDENCIES = (*Rule.METADATA_DEPENDENCIES, ParentNodeProvider, QualifiedNameProvider)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        return text_facts(source).has_any(cls.triggers) and (
            _LABEL_TENSOR_TEXT.search(source) is not None or _FLATTENED_LABEL_TEXT.search(source) is not None
        )

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """A collate function (by name or passed as ``collate_fn=``) or a collator class."""
        return any(
            (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "collate" in node.name)
            or (isinstance(node, ast.keyword) and node.arg in _COLLATE_KEYWORDS)
            or (isinstance(node, ast.ClassDef) and _COLLATOR_CLASS.search(node.name) is not None)
            for node in walk(tree)
        )

    def visit_Module(self, node: cst.Module) -> None:
        self._passed_as_collate: set[str] = set()
        self._candidates: list[tuple[str, cst.Call, str]] = []
        """(enclosing function name, label tensor call, what it does)"""

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None and node.keyword.value in _COLLATE_KEYWORDS and isinstance(node.value, cst.Name):
            self._passed_as_collate.add(node.value.value)

    def visit_Call(self, node: cst.Call) -> None:
        if is_flattened(node):
            self._check_flattened(node)
            return
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, node.func, set())}
        if not qualified & _TENSOR_BUILDERS or not node.args:
            return
        methods, batch = self._path_to_batch(node)
        lambda_collate = self._lambda_collate(node)
        if lambda_collate:
            if not self._made_float(node, methods) and self._names_a_label(node, batch):
                self._candidates.append((lambda_collate, node, _BATCHES_INDICES))
            return
        function = enclosing(self, node, cst.FunctionDef)
        if function is None or self._made_float(node, methods):
            return
        if self._names_a_label(node, batch) and not self._cast_where_used(batch, function):
            self._candidates.append((self._collate_name(function), node, _BATCHES_INDICES))

    def _lambda_collate(self, call: cst.Call) -> str:
        """``the data_collator lambda`` when ``call`` is in the body of a lambda passed as
        ``data_collator=`` or ``collate_fn=`` (``Trainer(data_collator=lambda x: {"labels":
        torch.tensor([item["label"] for item in x])})``); "" otherwise."""
        function = enclosing(self, call, (cst.Lambda, cst.FunctionDef))
        if not isinstance(function, cst.Lambda):
            return ""
        argument = self.get_metadata(ParentNodeProvider, function, None)
        if isinstance(argument, cst.Arg) and argument.keyword is not None and argument.keyword.value in _COLLATE_KEYWORDS:
            return f"the {argument.keyword.value} lambda"
        return ""

    def _collate_name(self, function: cst.FunctionDef) -> str:
        """The function's name; a collator class's ``__call__`` (``DataCollator()(features)``,
        passed as ``collate_fn=`` or to a Hugging Face ``Trainer``) is named ``Class.__call__``,
        which counts as a collate function."""
        name = function.name.value
        if name == "__call__":
            owner = enclosing(self, function, cst.ClassDef)
            if owner is not None and _COLLATOR_CLASS.search(owner.name.value) is not None:
                return f"{owner.name.value}.{name}"
        return name

    def _check_flattened(self, call: cst.Call) -> None:
        """``targets.flatten()``, ``torch.cat(targets, 0).view(-1)``: a label batch made a vector."""
        function = enclosing(self, call, cst.FunctionDef)
        assert isinstance(call.func, cst.Attribute)
        words = Words()
        call.func.value.visit(words)
        parent = self.get_metadata(ParentNodeProvider, call, None)
        if isinstance(parent, cst.Assign):
            for target in parent.targets:
                target.target.visit(words)
        if function is not None and any(_LABEL_WORD.search(word) for word in words.found):
            self._candidates.append((self._collate_name(function), call, _FLATTENS_LABELS))

    def leave_Module(self, original_node: cst.Module) -> None:
        for function, call, message in self._candidates:
            if function.endswith(" lambda"):
                self.report(call, f"{function} {message}", suggestion=SUGGESTION)
            elif "collate" in function or function.endswith(".__call__") or function in self._passed_as_collate:
                self.report(call, f"{function}() {message}", suggestion=SUGGESTION)

    def _path_to_batch(self, tensor: cst.BaseExpression) -> tuple[list[cst.Call], cst.BaseExpression]:
        """The method calls applied on the way from ``tensor`` (a builder call, or a name holding
        its result) to the label batch, in order, and the batch expression itself:
        ``torch.tensor(ys).to(device).float()``, or
        ``torch.stack([torch.as_tensor(ex["labels"])[None] for ex in batch]).float()`` whose
        per-sample tensors a ``torch.stack``/``torch.cat`` joins."""
        methods: list[cst.Call] = []
        node: cst.CSTNode = tensor
        while True:
            parent = self.get_metadata(ParentNodeProvider, node, None)
            if isinstance(parent, cst.Attribute) and parent.value is node:
                method_call = self.get_metadata(ParentNodeProvider, parent, None)
                if not (isinstance(method_call, cst.Call) and method_call.func is parent):
                    return methods, node
                methods.append(method_call)
                node = method_call
            elif isinstance(parent, cst.Subscript) and parent.value is node:
                node = parent
            else:
                joined = self._joining_call(node, parent)
                if joined is None:
                    # ``labels = [torch.tensor(f[1]) for f in features]``: the list is the batch
                    # until it is joined, and its name is followed from there.
                    if isinstance(parent, cst.ListComp) and parent.elt is node:
                        return methods, parent
                    return methods, node
                node = joined

    def _joining_call(self, element: cst.CSTNode, parent: cst.CSTNode | None) -> cst.Call | None:
        """The ``torch.stack``/``torch.cat`` call whose sequence of tensors ``element`` is in, or
        that is passed the list ``element`` names (``torch.stack(labels)``)."""
        if isinstance(parent, cst.Arg) and isinstance(element, cst.Name):
            argument: cst.CSTNode | None = parent
            sequence = element
        elif isinstance(parent, cst.Element):
            sequence = self.get_metadata(ParentNodeProvider, parent, None)
            if not isinstance(sequence, (cst.List, cst.Tuple)):
                return None
        elif isinstance(parent, cst.ListComp) and parent.elt is element:
            sequence = parent
        else:
            return None
        if not isinstance(parent, cst.Arg):
            argument = self.get_metadata(ParentNodeProvider, sequence, None)
        joining = self.get_metadata(ParentNodeProvider, argument, None) if isinstance(argument, cst.Arg) else None
        if not (isinstance(joining, cst.Call) and joining.args[0] is argument):
            return None
        qualified = {q.name for q in self.get_metadata(QualifiedNameProvider, joining.func, set())}
        return joining if qualified & _BATCHING else None

    @staticmethod
    def _made_float(call: cst.Call | None, methods: list[cst.Call]) -> bool:
        """A float ``dtype=`` on the builder ``call``, or a float cast among the method calls
        applied on the way to the batch (per sample or to the whole batch); the last cast wins."""
        dtype = keyword_arguments(call).get("dtype") if call is not None else None
        made_float = dtype is not None and is_float_dtype(dtype.value)
        for method_call in methods:
            if is_float_cast(method_call):
                made_float = True
            elif is_integer_cast(method_call):
                made_float = False
        return made_float

    def _cast_where_used(self, batch: cst.BaseExpression, function: cst.FunctionDef) -> bool:
        """``labels = torch.tensor(...)`` whose every later use casts it to float
        (``return images, labels.float()``, ``labels = labels.float()``), up to the next
        assignment of ``labels`` in the same block. Uses are taken in source order, which is
        the order they run in a collate function's straight-line body."""
        assign = self.get_metadata(ParentNodeProvider, batch, None)
        if not (
            isinstance(assign, cst.Assign)
            and len(assign.targets) == 1
            and isinstance(assign.targets[0].target, cst.Name)
        ):
            return False
        name = assign.targets[0].target.value
        block = self._block(assign)
        start = self.get_metadata(PositionProvider, assign).end
        occurrences = _Occurrences(name)
        function.body.visit(occurrences)
        end = None
        for occurrence in occurrences.found:
            holder = self.get_metadata(ParentNodeProvider, occurrence, None)
            statement = self.get_metadata(ParentNodeProvider, holder, None)
            if (
                isinstance(holder, cst.AssignTarget)
                and isinstance(statement, cst.Assign)
                and self._block(statement) is block
                and _after(self.get_metadata(PositionProvider, statement).start, start)
            ):
                end = self.get_metadata(PositionProvider, statement).end
                break
        uses = [
            occurrence
            for occurrence in occurrences.found
            if _after(self.get_metadata(PositionProvider, occurrence).start, start)
            and (end is None or not _after(self.get_metadata(PositionProvider, occurrence).start, end))
            and self._is_load(occurrence)
        ]
        return bool(uses) and all(self._made_float(None, self._path_to_batch(use)[0]) for use in uses)

    def _is_load(self, name: cst.Name) -> bool:
        """``labels`` read as a value: not an attribute name, a keyword or an assignment target."""
        parent = self.get_metadata(ParentNodeProvider, name, None)
        return not (
            (isinstance(parent, cst.Attribute) and parent.attr is name)
            or (isinstance(parent, cst.Arg) and parent.keyword is name)
            or isinstance(parent, (cst.AssignTarget, cst.Param, cst.FunctionDef, cst.ClassDef))
        )

    def _block(self, statement: cst.CSTNode) -> cst.CSTNode | None:
        """The block holding a small statement (its line's parent)."""
        line = self.get_metadata(ParentNodeProvider, statement, None)
        return self.get_metadata(ParentNodeProvider, line, None) if line is not None else None

    def _names_a_label(self, call: cst.Call, batch: cst.BaseExpression) -> bool:
        """The builder's data, or the name the whole batch expression ``batch`` is stored under."""
        words = Words()
        call.args[0].value.visit(words)
        parent = self.get_metadata(ParentNodeProvider, batch, None)
        if isinstance(parent, cst.Assign):
            for target in parent.targets:
                target.target.visit(words)
        elif isinstance(parent, cst.DictElement):
            parent.key.visit(words)
        return any(_LABEL_WORD.search(word) for word in words.found)


def _after(position: CodePosition, other: CodePosition) -> bool:
    return (position.line, position.column) > (other.line, other.column)


class _Occurrences(cst.CSTVisitor):
    """Every ``Name`` node spelling ``name``, in source order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.found: list[cst.Name] = []

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name:
            self.found.append(node)


class Words(cst.CSTVisitor):
    """Identifiers and string keys: ``labels``, ``example["label"]``."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def visit_Name(self, node: cst.Name) -> None:
        self.found.append(node.value)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        self.found.append(node.evaluated_value if isinstance(node.evaluated_value, str) else "")
