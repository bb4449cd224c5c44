"""ML101's labels never read: a file that trains on the images alone (a GAN, a VAE), and a dataset whose
every use drops its labels (the out-of-distribution images of an OOD-detection notebook), are no
label source.
"""

from __future__ import annotations

import ast
import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._datasets_library import _last_name
from migrate_ml.rules._exprs import cst_any
from migrate_ml.rules._prefilter import walk


_LABEL_USE = re.compile(r"(?i).*(?:label|target|criterion|loss_fn|nll|argmax|accura|correct).*|cross_entropy|CrossEntropyLoss|acc\w*")
"""Names of a file that reads labels or learns or predicts classes (matched whole; not a GAN's
``binary_cross_entropy`` against its real/fake ``y``)."""
_CLASS_LOSSES = frozenset({"CrossEntropyLoss", "cross_entropy", "NLLLoss", "nll_loss", "log_softmax", "argmax"})
"""What a file that learns or predicts one class per image calls somewhere."""


class UnreadLabels:
    """Mixin for ML101: does every use of a dataset drop its labels?"""

    def _labels_never_read(self, built: cst.Call) -> bool:
        """Every use of the dataset ``built`` makes (through a ``DataLoader`` over it and the file's
        functions it is passed to) drops its labels: ``for x, _ in loader``, a label name the loop
        never reads, ``next(iter(loader))[0]``. Its class indices reach nothing (the
        out-of-distribution images of an OOD-detection notebook), so it is no label source."""
        holder = self.get_metadata(ParentNodeProvider, built, None)
        if isinstance(holder, cst.Expr):  # CIFAR100(root, download=True) as a statement: downloaded, then discarded
            return True
        if isinstance(holder, cst.Arg) and self._wrapped_without_labels(holder):
            return True
        if self._downloaded_for_a_wrapper(built, holder):
            return True
        if not (isinstance(holder, cst.Assign) and len(holder.targets) == 1 and isinstance(holder.targets[0].target, cst.Name)):
            return False
        return self._drops_labels(holder.targets[0].target, set())

    def _wrapped_without_labels(self, argument: cst.Arg) -> bool:
        """The dataset is passed to a ``Dataset`` class of this file (``TripletDataset(CIFAR10(...))``)
        whose ``__getitem__`` returns only the wrapped images (``self.dataset[i][0]``): its class
        index at most picks the samples (a triplet's positive and negative), it is never a label."""
        call = self.get_metadata(ParentNodeProvider, argument, None)
        if argument.star or not isinstance(call, cst.Call) or not isinstance(call.func, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, call.func, None)
        defined = [getattr(a, "node", None) for a in scope[call.func.value]] if scope is not None else []
        return len(defined) == 1 and isinstance(defined[0], cst.ClassDef) and _getitem_returns_images_only(defined[0])

    def _downloaded_for_a_wrapper(self, built: cst.Call, holder: cst.CSTNode | None) -> bool:
        """A LightningDataModule's ``prepare_data`` binds ``self.train_dataset = CIFAR10(...,
        download=True)`` and its ``setup``, which Lightning runs before any loader, binds the same
        attribute to a dataset wrapped without its labels: the loaders never see these labels."""
        if not (isinstance(holder, cst.Assign) and len(holder.targets) == 1 and isinstance(holder.targets[0].target, cst.Attribute)):
            return False
        attribute = holder.targets[0].target
        if not (isinstance(attribute.value, cst.Name) and attribute.value.value == "self"):
            return False
        method = _enclosing(self, holder, cst.FunctionDef)
        owner = _enclosing(self, method, cst.ClassDef) if method is not None else None
        if owner is None or method.name.value != "prepare_data":
            return False
        setup = [m for m in owner.body.body if isinstance(m, cst.FunctionDef) and m.name.value == "setup"]
        if len(setup) != 1:
            return False
        rebound = [
            statement.value
            for line in setup[0].body.body if isinstance(line, cst.SimpleStatementLine)
            for statement in line.body
            if isinstance(statement, cst.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0].target, cst.Attribute)
            and statement.targets[0].target.deep_equals(attribute)
        ]
        return len(rebound) == 1 and isinstance(rebound[0], cst.Call) and any(
            self._wrapped_without_labels(arg) for arg in rebound[0].args
        )

    def _drops_labels(self, bound: cst.Name, seen: set[int]) -> bool:
        """``bound`` (a dataset or a loader over one, bound once) is used at least once, and only in ways that drop the labels."""
        if id(bound) in seen:
            return True
        seen.add(id(bound))
        scope = self.get_metadata(ScopeProvider, bound, None)
        assignments = list(scope.assignments[bound.value]) if scope is not None else []
        if len(assignments) != 1 or not assignments[0].references:
            return False
        return all(self._use_drops_labels(access.node, seen) for access in assignments[0].references)

    def _use_drops_labels(self, use: cst.CSTNode, seen: set[int]) -> bool:
        parent = self.get_metadata(ParentNodeProvider, use, None)
        if isinstance(parent, cst.For) and parent.iter is use:
            return _loop_drops_labels(parent)
        if isinstance(parent, cst.Subscript) and parent.value is use:  # ds[i][0]: one sample's image (a mean/std helper)
            return _first_item(parent, self.get_metadata(ParentNodeProvider, parent, None))
        if not isinstance(parent, cst.Arg) or parent.star:
            return False
        call = self.get_metadata(ParentNodeProvider, parent, None)
        if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Name):
            return False
        callee, position = call.func.value, call.args.index(parent)
        if callee == "len":
            return True
        outer = self.get_metadata(ParentNodeProvider, call, None)
        if callee == "enumerate" and position == 0 and isinstance(outer, cst.For) and outer.iter is call:
            return _loop_drops_labels(outer)
        if callee == "iter" and isinstance(outer, cst.Arg):  # next(iter(loader)): one batch
            batch_call = self.get_metadata(ParentNodeProvider, outer, None)
            if isinstance(batch_call, cst.Call) and isinstance(batch_call.func, cst.Name) and batch_call.func.value == "next":
                return self._batch_drops_labels(batch_call)
            return False
        if callee == "DataLoader" and (position == 0 if parent.keyword is None else parent.keyword.value == "dataset"):
            if not isinstance(outer, cst.Assign):  # next(iter(DataLoader(ds))): the loader is used where it is built
                return self._use_drops_labels(call, seen)
            target = outer.targets[0].target if len(outer.targets) == 1 else None
            return isinstance(target, cst.Name) and self._drops_labels(target, seen)
        parameter = self._parameter(call, parent)
        return parameter is not None and self._drops_labels(parameter, seen)

    def _batch_drops_labels(self, batch_call: cst.Call) -> bool:
        """``images, _ = next(iter(loader))``, or ``batch = next(iter(loader))`` read only as ``batch[0]``."""
        holder = self.get_metadata(ParentNodeProvider, batch_call, None)
        if not (isinstance(holder, cst.Assign) and len(holder.targets) == 1):
            return False
        target = holder.targets[0].target
        if isinstance(target, cst.Tuple):
            return _pair_drops_label(target, lambda name: self._never_read(name))
        if not isinstance(target, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, target, None)
        assignments = list(scope.assignments[target.value]) if scope is not None else []
        if len(assignments) != 1:
            return False
        for access in assignments[0].references:
            read = self.get_metadata(ParentNodeProvider, access.node, None)
            if not (
                isinstance(read, cst.Subscript) and read.value is access.node and len(read.slice) == 1
                and isinstance(read.slice[0].slice, cst.Index) and isinstance(read.slice[0].slice.value, cst.Integer)
                and read.slice[0].slice.value.evaluated_value == 0
            ):
                return False
        return True

    def _never_read(self, name: cst.Name) -> bool:
        scope = self.get_metadata(ScopeProvider, name, None)
        assignments = list(scope.assignments[name.value]) if scope is not None else []
        return len(assignments) == 1 and not assignments[0].references

    def _parameter(self, call: cst.Call, argument: cst.Arg) -> cst.Name | None:
        """The parameter of the file's own function ``call`` calls that ``argument`` binds."""
        assert isinstance(call.func, cst.Name)
        scope = self.get_metadata(ScopeProvider, call.func, None)
        defined = [getattr(a, "node", None) for a in scope[call.func.value]] if scope is not None else []  # a builtin has none
        if len(defined) != 1 or not isinstance(defined[0], cst.FunctionDef):
            return None
        params = defined[0].params
        if argument.keyword is not None:
            named = [p for p in (*params.params, *params.kwonly_params) if p.name.value == argument.keyword.value]
            return named[0].name if named else None
        position = call.args.index(argument)
        if any(a.keyword is not None or a.star for a in call.args[:position]) or position >= len(params.params):
            return None
        return params.params[position].name


def _enclosing(owner, node: cst.CSTNode, kind: type) -> cst.CSTNode | None:
    current = owner.get_metadata(ParentNodeProvider, node, None)
    while current is not None and not isinstance(current, kind):
        current = owner.get_metadata(ParentNodeProvider, current, None)
    return current


def _getitem_returns_images_only(class_def: cst.ClassDef) -> bool:
    """``__getitem__`` returns, in every ``return``, only first items of the wrapped dataset's
    samples: ``return self.dataset[i][0], self.dataset[j][0], self.dataset[k][0]``."""
    methods = {m.name.value: m for m in class_def.body.body if isinstance(m, cst.FunctionDef)}
    getitem = methods.get("__getitem__")
    if getitem is None:
        return False
    returns = [node for node in _walk(getitem.body) if isinstance(node, cst.Return)]
    if not returns:
        return False
    for returned in returns:
        value = returned.value
        items = [e.value for e in value.elements] if isinstance(value, (cst.Tuple, cst.List)) else [value]
        if not items or not all(_first_item_of_self_sample(item) for item in items):
            return False
    return True


def _first_item(sample: cst.Subscript, read: cst.CSTNode | None) -> bool:
    """``read`` is ``sample[0]``: the image of an (image, label) sample, its label left unread."""
    return (
        isinstance(read, cst.Subscript) and read.value is sample and len(read.slice) == 1
        and isinstance(read.slice[0].slice, cst.Index) and isinstance(read.slice[0].slice.value, cst.Integer)
        and read.slice[0].slice.value.evaluated_value == 0
    )


def _first_item_of_self_sample(item: cst.BaseExpression | None) -> bool:
    """``self.dataset[i][0]``: the image of one of the wrapped dataset's (image, label) samples."""
    if not (isinstance(item, cst.Subscript) and len(item.slice) == 1 and isinstance(item.slice[0].slice, cst.Index)):
        return False
    index = item.slice[0].slice.value
    sample = item.value
    return (
        isinstance(index, cst.Integer) and index.evaluated_value == 0
        and isinstance(sample, cst.Subscript) and isinstance(sample.value, cst.Attribute)
        and isinstance(sample.value.value, cst.Name) and sample.value.value.value == "self"
    )


def _walk(node: cst.CSTNode):
    yield node
    for child in node.children:
        if not isinstance(child, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            yield from _walk(child)


def _pair_drops_label(pair: cst.BaseExpression, never_read) -> bool:
    """``images, _`` or ``images, labels`` whose ``labels`` ``never_read`` says is not read."""
    if not (isinstance(pair, (cst.Tuple, cst.List)) and len(pair.elements) == 2):
        return False
    label = pair.elements[1].value
    return isinstance(label, cst.Name) and (label.value == "_" or never_read(label))


def _loop_drops_labels(loop: cst.For) -> bool:
    """``for x, _ in loader`` or ``for i, (x, y) in enumerate(loader)`` whose body never reads the label."""
    pair = loop.target
    if isinstance(loop.iter, cst.Call) and isinstance(pair, cst.Tuple) and len(pair.elements) == 2:
        pair = pair.elements[1].value  # enumerate(loader): i, (images, labels)
    return _pair_drops_label(
        pair, lambda label: not cst_any(loop.body, cst.Name, lambda name: name.value == label.value)
    )


def labels_discarded(tree: ast.Module) -> bool:
    """The file trains on the images alone (a GAN, a VAE, an autoencoder): every loop over
    (image, label) pairs drops the label (``for imgs, _ in loader``, or a name never read), and
    so does every unpacking of a batch handed to a step (``def training_step(self, batch):
    imgs, _ = batch``), at least one of them exists, and nothing learns or predicts a class.
    The dataset's class indices then reach no loss, metric or prediction."""
    unpacked = _batch_unpackings(tree)
    if unpacked is None:
        return False
    loops = unpacked
    for node in walk(tree):
        if isinstance(node, ast.Call) and _last_name(node.func) in _CLASS_LOSSES:
            return False
        if not isinstance(node, (ast.For, ast.AsyncFor)):
            continue
        pair = node.target
        if isinstance(pair, ast.Tuple) and len(pair.elts) == 2 and isinstance(pair.elts[1], ast.Tuple):
            pair = pair.elts[1]  # enumerate(loader): i, (images, labels)
        if not (isinstance(pair, ast.Tuple) and len(pair.elts) == 2 and all(isinstance(e, ast.Name) for e in pair.elts)):
            continue
        label = pair.elts[1].id
        if label != "_" and any(
            isinstance(inner, ast.Name) and inner.id == label and isinstance(inner.ctx, ast.Load)
            for statement in node.body for inner in ast.walk(statement)
        ):
            return False
        loops += 1
    return loops > 0


def _batch_unpackings(tree: ast.Module) -> int | None:
    """How many ``(images, labels)`` pairs unpacked from a parameter (``imgs, _ = batch`` in a
    Lightning ``training_step``) drop the label; None when one of them reads it."""
    count = 0
    for function in walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        params = {arg.arg for arg in (*function.args.posonlyargs, *function.args.args)}
        for node in ast.walk(function):
            if not (
                isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.Name)
                and node.value.id in params and isinstance(node.targets[0], ast.Tuple) and len(node.targets[0].elts) == 2
                and all(isinstance(e, ast.Name) for e in node.targets[0].elts)
            ):
                continue
            label = node.targets[0].elts[1].id
            if label != "_" and any(
                isinstance(inner, ast.Name) and inner.id == label and isinstance(inner.ctx, ast.Load)
                for inner in ast.walk(function)
            ):
                return None
            count += 1
    return count
