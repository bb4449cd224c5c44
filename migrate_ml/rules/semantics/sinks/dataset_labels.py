"""Sinks on the labels of datasets and class folders: the class indices a class-index dataset keeps
(``dataset.targets``, ``dataset.samples``) read as the labels or counted as the classes, and a class
folder's one index collected for each of its files.
"""

from __future__ import annotations

import ast
import copy
import re

from migrate_ml.rules.semantics import sources
from migrate_ml.rules.semantics.meanings import CLASS_INDEX
from migrate_ml.rules.semantics.sinks.common import LABEL_LIKE, _column_name


class DatasetLabelChecks:
    """The checks of :class:`~migrate_ml.rules.semantics.sinks.core.Sinks` on the labels a dataset
    or a folder of a class gives each image."""

    def _class_index_dataset_of(self, labels: ast.AST) -> str:
        """The class-index dataset whose labels ``labels`` reads (``ds.targets``, ``ds.samples``); ""
        when it reads none."""
        if not (isinstance(labels, ast.Attribute) and labels.attr in sources.DATASET_LABELS):
            return ""
        return self.analysis.index_dataset(self.analysis.value(labels.value))

    def _dataset_labels_read(self, node: ast.AST, labels: ast.AST) -> None:
        """``[s[-1] for s in dataset.samples]``, ``dataset.targets[idx]``: the class indices a
        class-index dataset keeps, read one per image (k-NN labels, per-sample weights)."""
        dataset = self._class_index_dataset_of(labels)
        if not dataset:
            return
        self.report(
            node, "class-index-source",
            f"{ast.unparse(labels)} of {dataset} holds one class index per image, read here as the labels",
            "read the float multi-hot [C] labels of a multi-label dataset "
            "(migrate_ml_reference.MultiLabelCsvDataset keeps them per image)",
        )

    def _classes_from_dataset_labels(self, node: ast.Call, labels: ast.AST) -> None:
        """``n_classes = len(set(test_set.targets))``: the classes kept as the distinct class indices of
        a class-index dataset's labels (a multi-hot row per image is no hashable class)."""
        dataset = self._class_index_dataset_of(labels)
        if not dataset:
            return
        self.report(
            node, "class-index-source",
            f"the classes are taken as the distinct values of {ast.unparse(labels)}, one class index per image "
            f"of {dataset}",
            "with float multi-hot [N, C] labels the classes are their columns: num_classes = labels.shape[1] "
            "(or len(classes) of the multi-label dataset)",
        )

    def _folder_class_collected(self, statement: ast.Expr) -> None:
        """``for name in class_names: label_id = label2id[name]`` then, for each file of that class's
        folder, ``labels.append(label_id)`` (or a counter, ``label = 0`` before the loop over the class
        folders and ``label += 1`` after each, or the folder's position, ``for idx, person in
        enumerate(sorted(os.listdir(root)))``): every image gets the one class of the folder it sits
        in. The label is fixed before the loop over the folder's files, so one image can never have two."""
        call = statement.value
        if not (
            isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "append"
            and len(call.args) == 1 and not call.keywords and isinstance(call.args[0], (ast.Name, ast.Subscript, ast.Call))
            and LABEL_LIKE.search(_column_name(call.func.value))
        ):
            return
        scope = self.analysis.function or self.analysis.tree
        loops = _loops_around(scope, statement)
        if len(loops) < 2:
            return
        appended = call.args[0]
        numbered = self._class_looked_up(appended, loops)
        if numbered is None and isinstance(appended, ast.Name):
            numbered = _folder_counter(scope, appended.id, loops)
        if numbered is None and isinstance(appended, ast.Name):
            numbered = _folder_enumerated(appended.id, loops)
        if numbered is None:
            return
        self.report(
            statement, "class-index-source",
            f"{ast.unparse(call)} gives every image of a class folder that folder's one class index (numbered at "
            f"line {numbered}): one label per image",
            "a multi-label dataset lists each image's labels (a CSV of image and label names): collect a float "
            "multi-hot [C] row per image instead, row[[label2id[name] for name in names]] = 1.0",
            numbered,
        )

    def _samples_bucketed_by_label(self, statement: ast.Expr) -> None:
        """``for idx, label in enumerate(labels): by_class.setdefault(label, []).append(idx)`` (or
        ``by_class[label].append(idx)``): the samples grouped under their one label, used as a dict key.
        A multi-label sample belongs to several classes, and its multi-hot row is no dict key."""
        call = statement.value
        bucket = call.func.value
        if isinstance(bucket, ast.Call) and isinstance(bucket.func, ast.Attribute) and bucket.func.attr == "setdefault" and bucket.args:
            key = bucket.args[0]
        elif isinstance(bucket, ast.Subscript):
            key = bucket.slice
        else:
            return
        if not (len(call.args) == 1 and isinstance(call.args[0], ast.Name) and isinstance(key, ast.Name)):
            return
        scope = self.analysis.function or self.analysis.tree
        for loop in _loops_around(scope, statement):
            target, iterated = loop.target, loop.iter
            if not (
                isinstance(target, ast.Tuple) and len(target.elts) == 2 and all(isinstance(t, ast.Name) for t in target.elts)
                and (target.elts[0].id, target.elts[1].id) == (call.args[0].id, key.id)
                and isinstance(iterated, ast.Call) and isinstance(iterated.func, ast.Name) and iterated.func.id == "enumerate"
                and len(iterated.args) == 1
            ):
                continue
            if not (LABEL_LIKE.search(key.id) and LABEL_LIKE.search(_column_name(iterated.args[0]))):
                return
            if any(key.id in (t.id for t in _bound_names(node)) for node in ast.walk(loop) if node is not loop):
                return  # rebound in the loop: not the label enumerate gives
            self.report(
                statement, "class-index-source",
                f"{ast.unparse(call)} groups the samples by their one label ({key.id} of {ast.unparse(iterated.args[0])}, "
                "a dict key): a multi-label sample belongs to several classes, and its multi-hot row is no dict key",
                f"put each sample under every class of its multi-hot row: for c in np.flatnonzero({key.id}): "
                f"{ast.unparse(call).replace(ast.unparse(bucket), _keyed_by_class(bucket), 1)}",
                loop.lineno,
            )
            return

    def _class_looked_up(self, appended: ast.AST, loops: list[ast.For]) -> int | None:
        """The line where ``appended`` (or the one binding of its name in the loops) looks up the class
        index of a loop's class name (``label2id[class_name]``, ``classes.index(c)``), that loop being an
        outer one of the append: the same class for every file of the inner loop."""
        lookup = appended
        if isinstance(appended, ast.Name):
            bindings = [
                node for node in ast.walk(loops[0]) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For))
                and any(t.id == appended.id for t in _bound_names(node))
            ]
            if len(bindings) != 1 or not isinstance(bindings[0], ast.Assign) or len(bindings[0].targets) != 1:
                return None
            lookup = bindings[0].value
        if isinstance(lookup, ast.Subscript):
            key = lookup.slice
            if self.analysis.value(lookup).meaning != CLASS_INDEX:
                return None
        elif isinstance(lookup, ast.Call) and isinstance(lookup.func, ast.Attribute) and lookup.func.attr == "index" and len(lookup.args) == 1:
            key = lookup.args[0]
            if not sources.CLASS_LIST.match(ast.unparse(lookup.func.value)):
                return None
        else:
            return None
        if not isinstance(key, ast.Name):
            return None
        for loop in loops[:-1]:
            if isinstance(loop.target, ast.Name) and loop.target.id == key.id:
                rebound = sum(any(t.id == key.id for t in _bound_names(node)) for node in ast.walk(loop))
                # the key changes only between class folders, not between the files of one
                return lookup.lineno if rebound == 1 and _names_folders(loop) else None
        return None

_FOLDER_WORDS = re.compile(r"class|dir|folder|categor|^cats?$|^cls|label", re.IGNORECASE)


def _names_folders(loop: ast.For) -> bool:
    """``for class_name in class_names``, ``for sub_dir in os.listdir(root)``: a loop over the classes
    or their folders."""
    return isinstance(loop.target, ast.Name) and bool(_FOLDER_WORDS.search(loop.target.id) or _FOLDER_WORDS.search(ast.unparse(loop.iter)))


def _bound_names(node: ast.AST) -> list[ast.Name]:
    """The names ``node`` binds (not those it reads in a target, ``table[label] = name``)."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
        targets = [node.target]
    else:
        return []
    return [leaf for target in targets for leaf in ast.walk(target) if isinstance(leaf, ast.Name) and isinstance(leaf.ctx, ast.Store)]


def _loops_around(scope: ast.AST, statement: ast.stmt) -> list[ast.For]:
    """The ``for`` loops of ``scope`` that hold ``statement``, outermost first (not those of nested functions)."""
    path: list[ast.For] = []

    def find(node: ast.AST) -> bool:
        for child in ast.iter_child_nodes(node):
            if child is statement:
                return True
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(child, ast.stmt) or isinstance(child, ast.excepthandler):
                if isinstance(child, ast.For):
                    path.append(child)
                if find(child):
                    return True
                if isinstance(child, ast.For):
                    path.pop()
        return False

    return path if find(scope) else []


def _keyed_by_class(bucket: ast.Call | ast.Subscript) -> str:
    """``by_class.setdefault(label, [])`` keyed by a class ``c`` instead: ``by_class.setdefault(c, [])``."""
    keyed = copy.deepcopy(bucket)
    if isinstance(keyed, ast.Call):
        keyed.args[0] = ast.Name("c")
    else:
        keyed.slice = ast.Name("c")
    return ast.unparse(keyed)


def _folder_enumerated(name: str, loops: list[ast.For]) -> int | None:
    """``for idx, person in enumerate(sorted(os.listdir(root)))`` around the loop over each folder's
    files, ``idx`` never rebound in it: the folder's position, one class number per folder. The line
    of the loop."""
    for loop in loops[:-1]:
        target, iterated = loop.target, loop.iter
        if not (
            isinstance(target, ast.Tuple) and len(target.elts) == 2 and all(isinstance(t, ast.Name) for t in target.elts)
            and target.elts[0].id == name and isinstance(iterated, ast.Call) and isinstance(iterated.func, ast.Name)
            and iterated.func.id == "enumerate" and len(iterated.args) == 1
        ):
            continue
        folders = _FOLDER_WORDS.search(target.elts[1].id) or _FOLDER_WORDS.search(ast.unparse(iterated.args[0]))
        rebound = sum(any(t.id == name for t in _bound_names(node)) for node in ast.walk(loop))
        return loop.lineno if folders and rebound == 1 else None
    return None


def _folder_counter(scope: ast.AST, name: str, loops: list[ast.For]) -> int | None:
    """``label = 0`` before a loop over class folders and ``label += 1`` once in its body, outside the
    loop over each folder's files that collects it: a class number per folder. The line of the count."""
    for depth, loop in enumerate(loops[:-1]):
        if not _names_folders(loop):
            continue
        inner = loops[depth + 1]
        bindings = [
            node for node in ast.walk(scope) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For))
            and any(t.id == name for t in _bound_names(node))
        ]
        starts = [
            node for node in bindings if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and node.value.value == 0 and type(node.value.value) is int and node.lineno < loop.lineno
        ]
        steps = [
            node for node in bindings if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add)
            and isinstance(node.value, ast.Constant) and node.value.value == 1 and type(node.value.value) is int
        ]
        if len(starts) != 1 or len(steps) != 1 or len(bindings) != 2:
            return None
        step = steps[0]
        in_loop, in_inner = list(ast.walk(loop)), list(ast.walk(inner))
        if step in in_loop and step not in in_inner:
            return step.lineno
        return None
    return None
