"""Whole-project facts: criteria built in one file of a run and called in another.

Real projects build the criterion in ``main.py`` and call it in ``engine.py``
(``train_one_epoch(model, criterion, data_loader, ...)``). Rewriting each file alone, the call
in ``engine.py`` cannot be proven to be a loss. When ``rewrite`` is given several files, this
pass runs once before any file is rewritten and records, for each file, what the others pass
to its functions, so each file can still be rewritten alone (and in a worker process):

* a file whose text names a loss class is parsed with CPython's ``ast`` (a small fraction of
  LibCST's cost; every other file is only read); its imports of the run's own modules
  (``import engine``, ``from engine import train_one_epoch``, ``from . import engine``) and the
  criteria bound to names in each function are resolved;
* each call of a function (or class) of another file of the run that passes such a name
  records, for that parameter, where the criterion is built and whether this run makes it a
  ``BCEWithLogitsLoss`` (the facts the callee's file gets), and, for the caller, whether every
  use of the parameter in the callee is a loss call that the run casts (the fact the caller's
  file gets, so that it does not report the criterion as not followed);
* a parameter that every call site passes a model's output (``accuracy(outputs, labels)``
  with ``outputs = model(images)``) is recorded as classifier scores, so that the prediction
  rules can rewrite the helper's arg-max; a file not parsed here that calls a function of the
  same name leaves it unproven.

The facts are :mod:`migrate_ml.rules._project` data; the flow provider reads them.
"""

from __future__ import annotations

import ast
import gc
import os
import pickle
import re
import signal
import stat
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, Sequence

import libcst as cst

from migrate_ml.engine.transform import Settings, select_rules
from migrate_ml.rules import load_rules
from migrate_ml.rules._prefilter import forget_kept_trees, keep_tree, module_functions
from migrate_ml.rules._selection_monitors import SELECTOR_KEYWORDS, accuracy_constants, selection_parameters
from migrate_ml.rules.semantics import argmax_hand_offs, hand_losses, metrics
from migrate_ml.rules.semantics.flow import LOSS_CLASS_WORDS, LOSS_CLASSES
from migrate_ml.rules.semantics.meanings import ONE_HOT
from migrate_ml.rules.semantics.names import imported_names
from migrate_ml.rules.semantics.predictions import is_model_callee
from migrate_ml.rules.semantics.residue import reported_helpers
from migrate_ml.rules.semantics.sequences import is_token_model
from migrate_ml.rules.semantics.summaries import Analysis
from migrate_ml.rules.semantics.tasks import is_dense_prediction, is_one_output_binary, is_variational_autoencoder
from migrate_ml.rules._project import CriterionSource, FileFacts, HandOver, ParameterFact, facts_in_effect
from migrate_ml.rules.semantics.tables import CLASS_INDEX_DATASETS, INDEX_DATASET_CALLS

_LOSS_WORDS = re.compile(b"|".join(sorted(re.escape(word.encode()) for word in LOSS_CLASS_WORDS)))
_BINARY_LOSS = (b"BCELoss", b"BCEWithLogitsLoss", b"binary_cross_entropy")
_CLASS_AXIS = re.compile(rb"CrossEntropy|(?<!binary_)cross_entropy|NLLLoss|nll_loss|softmax|Softmax|argmax|one_hot")
_CLASS_AXIS_WORDS = (b"CrossEntropy", b"cross_entropy", b"NLLLoss", b"nll_loss", b"softmax", b"Softmax", b"argmax", b"one_hot")
"""A run whose text names a binary loss and nothing of a class axis trains one 0/1 target per
output (``FileFacts.binary_run``): a one-output binary classifier, or multi-label already."""
_DEVICE_METHODS = frozenset({"to", "cuda", "cpu"})
_MAX_FORWARDING = 3
"""How many functions of the callee's file a parameter may be passed through."""


def build_project_facts(paths: Sequence[str], settings: Settings, parallel: bool = False) -> dict[str, FileFacts]:
    """Facts for the files of one run, keyed by path; empty for a run of fewer than two files.
    Every file gets the run's functions that return a one-hot of class indices (they may be
    imported anywhere) and the names of the run's modules.

    ``parallel``: the run has several workers, so the arg-max hand-offs (most of the pass on a
    model library: they parse every file taking an arg-max) and the loss classes are found in a
    forked child while this process finds the other facts; the facts are the same either way."""
    forget_kept_trees()
    python = [path for path in paths if path.endswith(".py")]
    if len(python) < 2:
        return {}
    data = {path: _read(path) for path in python}
    forked = _Forked(lambda: _forked_facts(_RunTrees(data), python)) if parallel and hasattr(os, "fork") else None
    trees = _RunTrees(data)
    callers = [path for path in python if _LOSS_WORDS.search(data[path]) is not None]
    facts: dict[str, FileFacts] = {}
    if callers:
        project = _Project(python, settings, trees)
        for path in callers:
            project.scan_caller(path)
        scanned = set(callers)
        facts = project.facts([data[path] for path in python if path not in scanned])
    if any(_holds_any(text, _BINARY_LOSS) for text in data.values()) and not any(
        _found(_CLASS_AXIS, _CLASS_AXIS_WORDS, text) for text in data.values()
    ):
        facts = {path: replace(facts.get(path, FileFacts()), binary_run=True) for path in python}
    one_hot = _one_hot_functions(trees)
    stems = tuple(sorted({os.path.splitext(os.path.basename(path))[0] for path in python}))
    run_metrics = _single_label_metrics(trees)
    meters = _metric_classes(trees)
    helpers = _reported_helpers(data, trees)
    float_rows = _float_row_run(trees, data.values())
    casting = any(b"criterion(" in text or b"loss_fn(" in text for text in data.values()) and _criteria_cast_targets(trees)
    monitored = any(_found(_MONITORED_NAME, _MONITORED_WORDS, text) for text in data.values())
    accuracy_names = _accuracy_constants(trees) if monitored else ()
    monitors = _selection_parameters(trees)
    found = forked.result() if forked is not None else None
    (given, returned), losses = found if found is not None else _forked_facts(trees, python)
    return {
        path: replace(
            facts.get(path, FileFacts()),
            one_hot_functions=one_hot,
            loss_classes=losses,
            run_modules=stems,
            single_label_metrics=run_metrics,
            metric_classes=meters,
            reported_helpers=tuple(
                (name, methods, f"{os.path.relpath(where, os.path.dirname(path) or os.curdir)}:{line}")
                for name, methods, where, line in helpers if where != path
            ),
            float_row_run=float_rows,
            criteria_cast_targets=casting,
            accuracy_constants=accuracy_names,
            selection_parameters=monitors,
            argmax_arguments=given.get(os.path.splitext(os.path.basename(path))[0], ()),
            argmax_returns=returned,
        )
        for path in python
    }


_ArgmaxHandOffs = tuple[dict[str, tuple[tuple[str, str, str], ...]], tuple[tuple[str, int, tuple[int, ...]], ...]]
"""What :func:`_argmax_hand_offs` finds: the arg-maxes given to each module's functions, and those returned."""


def _forked_facts(trees: _RunTrees, paths: Sequence[str]) -> tuple[_ArgmaxHandOffs, tuple[tuple[str, str, str], ...]]:
    """The facts a run with several workers finds in a forked child: about half of the pass on timm,
    most of it on torchvision."""
    return _argmax_hand_offs(trees, paths), _loss_classes(trees)


class _Forked:
    """``compute()`` run in a forked child, its pickled result read back through a pipe."""

    def __init__(self, compute: Callable[[], object]) -> None:
        self._reader, writer = os.pipe()
        gc.freeze()  # as for the run's workers: the child does not copy pages the collector would touch
        self._pid = os.fork()
        if self._pid:
            gc.unfreeze()
            os.close(writer)
            return
        code = 1
        try:
            os.close(self._reader)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which reads no result
            view = memoryview(pickle.dumps(compute(), protocol=pickle.HIGHEST_PROTOCOL))
            while view:
                view = view[os.write(writer, view):]
            code = 0
        finally:
            os._exit(code)  # never run the parent's exit handlers or flush its buffers twice

    def result(self) -> object | None:
        """The child's result; None when it failed (the caller computes it itself)."""
        chunks = []
        with os.fdopen(self._reader, "rb") as reader:
            while chunk := reader.read(1 << 20):
                chunks.append(chunk)
        _, status = os.waitpid(self._pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            return None
        return pickle.loads(b"".join(chunks))


class _RunTrees:
    """The run's files parsed on demand, once each, for the facts of the run; each tree is kept
    for the rules' own pre-check of the file (``_prefilter.keep_tree``)."""

    def __init__(self, data: dict[str, bytes]) -> None:
        self._data = data
        self._trees: dict[str, ast.Module | None] = {}

    def tree(self, path: str) -> ast.Module | None:
        """One file of the run, parsed once; None when it does not parse."""
        if path not in self._trees:
            try:
                self._trees[path] = ast.parse(self._data[path])
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                self._trees[path] = None
            else:
                keep_tree(self._data[path], self._trees[path])
        return self._trees[path]

    def texts(self) -> Iterable[bytes]:
        return self._data.values()

    def texts_by_stem(self) -> Iterator[tuple[str, bytes]]:
        for path, text in self._data.items():
            yield os.path.splitext(os.path.basename(path))[0], text

    def holding(self, holds: Callable[[bytes], bool]) -> Iterator[tuple[str, ast.Module]]:
        """``(stem, tree)`` of each file whose text ``holds`` what a fact needs; a file that does
        not parse is skipped (it is reported when the file itself is processed)."""
        for path, text in self._data.items():
            if not holds(text):
                continue
            tree = self.tree(path)
            if tree is not None:
                yield os.path.splitext(os.path.basename(path))[0], tree


def _single_label_metrics(trees: _RunTrees) -> tuple[str, ...]:
    """``stem.name`` of each metric helper of the run that counts one predicted class per sample
    against its label (``semantics.metrics``), for the files that import and call it."""
    words = metrics.RUN_TRIGGER_WORDS
    found = []
    for stem, tree in trees.holding(lambda text: any(word in text for word in words)):
        found.extend(f"{stem}.{name}" for name in metrics.exported_metrics(tree))
    return tuple(sorted(found))


def _metric_classes(trees: _RunTrees) -> tuple[str, ...]:
    """``stem.Class`` of each metric class of the run whose ``update`` scores predictions against
    labels (``semantics.metrics.metric_classes``), for the files that build one and feed it."""
    methods, scores = metrics.METER_WORDS
    found = []
    for stem, tree in trees.holding(lambda text: any(w in text for w in methods) and any(w in text for w in scores)):
        found.extend(f"{stem}.{name}" for name in metrics.metric_classes(tree))
    return tuple(sorted(found))


_RANKING_WORDS = (b"argmax", b"topk", b".max(")
_SCORING_WORDS = (b"==", b".eq(", b"_score(", b"ccuracy")
_RANKINGS = frozenset({"argmax", "topk", "max"})
_ACCURACY_TEXT = re.compile(rb"ccuracy|correct|\bacc(?:_\w+)?\b|_acc\b|prec@?1")
"""An accuracy named (``get_accuracy``, ``n_correct``, ``acc``, ``cal_acc``, ``acc_top1``, ``prec1``),
not ``accumulate`` or ``access``."""
_DEF_PARAMETERS = re.compile(rb"def[ \t]+\w+[ \t]*\(([^)]*)\)")
_SCORED_PARAMETERS = re.compile(
    rb"(?:pred|output|\bout\b|logit|y_?hat|score)\w*[ \t]*(?:=[^,]*)?,.*?(?:label|target|\by\b|\bgt)", re.IGNORECASE | re.DOTALL
)
"""Parameters given predictions and then labels (``cal_acc(output, target)``, ``update(self,
y_pred, y_true)``): what a metric helper takes (``semantics.metrics`` reads them the same way)."""


def _takes_scores(text: bytes) -> bool:
    return any(_SCORED_PARAMETERS.search(parameters) for parameters in _DEF_PARAMETERS.findall(text))


def _reported_helpers(data: dict[str, bytes], trees: _RunTrees) -> list[tuple[str, tuple[str, ...], str, int]]:
    """(``stem.name``, its reported methods, path, line) of each function and class of the run that
    the safety net reports single-label in its body (``semantics.residue.reported_helpers``) and
    that another file of the run imports and calls by name: each such call computes that metric.
    Only a file naming an accuracy or a correct count, with a ranking, a comparison or score and a
    function given predictions and labels in its text, that another file imports from (``meter
    import``, ``import meter``), is parsed, and only one with such a function that ranks and scores
    called there (or a class whose method given predictions does or calls one, called on an object
    of it) is analysed."""
    found = []
    for path, text in data.items():
        if not (any(w in text for w in _SCORING_WORDS) and (b"acc" in text or b"correct" in text)
                and any(w in text for w in _RANKING_WORDS) and _takes_scores(text) and _ACCURACY_TEXT.search(text)):
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        importers = [
            other for other_path, other in data.items()
            if other_path != path and (stem.encode() + b" import" in other or b"import " + stem.encode() in other)
        ]
        tree = trees.tree(path) if importers else None
        if tree is None:
            continue
        functions = {s.name: s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
        scorers = {name for name, function in functions.items() if metrics.takes_predictions(function) and _ranks_and_scores(function)}
        called = {name for name in scorers if any(name.encode() + b"(" in other for other in importers)}
        for statement in tree.body:
            # a class counts where its method given predictions is called on an object of it
            given = [item for item in statement.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and metrics.takes_predictions(item)] if isinstance(statement, ast.ClassDef) else []
            if given and any(_builds_and_calls(other, statement.name, given) for other in importers) and any(_ranks_and_scores(m) or any(
                isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in scorers for n in ast.walk(m)
            ) for m in given):
                called.add(statement.name)
        if not called:
            continue
        try:
            source = text.decode("utf-8")
        except UnicodeDecodeError:
            continue
        found.extend(
            (f"{stem}.{name}", methods, path, line) for name, methods, line in reported_helpers(source) if name in called
        )
    return found


def _builds_and_calls(text: bytes, name: str, methods: list[ast.FunctionDef | ast.AsyncFunctionDef]) -> bool:
    """``meter = AccuracyMeter()`` (or ``self.meter = ...``) and then ``meter.update(`` in ``text``:
    an object of the class built and one of ``methods`` called on it."""
    if name.encode() + b"(" not in text:
        return False
    for match in re.finditer(rb"([\w.]+)[ \t]*=[ \t]*(?:\w+\.)*" + name.encode() + rb"\(", text):
        holder = match.group(1)
        if any(holder + (b"(" if m.name == "__call__" else b"." + m.name.encode() + b"(") in text for m in methods):
            return True
    return False


def _ranks_and_scores(node: ast.AST) -> bool:
    """A ranking of the classes (``argmax``, ``topk``, ``max``) and a comparison or a score in ``node``."""
    ranks = scores = False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Compare):
            scores = scores or any(isinstance(op, (ast.Eq, ast.NotEq)) for op in sub.ops)
            continue
        name = sub.attr if isinstance(sub, ast.Attribute) else sub.id if isinstance(sub, ast.Name) else ""
        ranks = ranks or name in _RANKINGS
        scores = scores or name == "eq" or name.endswith("_score") or "ccuracy" in name
    return ranks and scores


_MONITORED_NAME = re.compile(rb"""\b(?:monitor|metric_for_best_model|watch_metric|score_name)['"]?\s*[=:]\s*[A-Za-z_]""")
_MONITORED_WORDS = (b"monitor", b"metric_for_best_model", b"watch_metric", b"score_name")
"""A selector given a name rather than a string (``monitor=VALIDATION_METRIC_NAME``): only then are
the run's string constants worth collecting."""
_STRING_CONSTANT = re.compile(rb"""^[A-Za-z_]\w*[ \t]*=[ \t]*[rbuRBU]?['"]""", re.MULTILINE)


def _accuracy_constants(trees: _RunTrees) -> tuple[tuple[str, str], ...]:
    """``stem.NAME`` and value of each module-level string constant of the run that its module
    measures as an accuracy (``best_accuracy_checkpoint.accuracy_constants``), for the files that
    import it and monitor it."""
    found = []
    for stem, tree in trees.holding(lambda text: _STRING_CONSTANT.search(text) is not None):
        found.extend((f"{stem}.{name}", value) for name, value in accuracy_constants(tree).items())
    return tuple(sorted(found))


_SELECTOR_KEYWORDS = tuple(keyword.encode() for keyword in SELECTOR_KEYWORDS)


def _selection_parameters(trees: _RunTrees) -> tuple[tuple[str, str], ...]:
    """``stem.Callable`` and parameter of each class or function of the run that hands the parameter
    to a selector as the monitored metric's name, for the files that call it with an accuracy's name."""
    found = []
    for stem, tree in trees.holding(lambda text: any(keyword in text for keyword in _SELECTOR_KEYWORDS)):
        found.extend((f"{stem}.{name}", parameter) for name, parameter in selection_parameters(tree))
    return tuple(sorted(found))


_INDEXED_MAX = re.compile(rb"max\([^\n]*\)\s*(?:\[\s*1\s*\]|\.indices)")
_UNPACKED_MAX = re.compile(rb",[ \t]*\w+[ \t]*\)?[ \t]*=[ \t]*[\w.]*\bmax\(")
_TARGETS_BEFORE = re.compile(rb"[ \t]*\(?[ \t]*[\w.*\[\]]+(?:[ \t]*,[ \t]*[\w.*\[\]]+)*[ \t]*")
"""What precedes the last name of ``_, pred = torch.max(x, 1)`` on its line: the other targets."""


def _takes_an_argmax(text: bytes) -> bool:
    """``argmax``, ``topk(``, ``x.max(1)[1]``, ``.max(dim=1).indices`` or ``_, pred = torch.max(x, 1)``:
    a file without one hands no arg-max to another file (``max(`` alone is in most files of a
    library). Substring tests first: one regex alternating these scanned every file for a tenth
    of a second on timm."""
    if b"argmax" in text or b"topk(" in text:
        return True
    return b"max(" in text and (_indexed_max(text) or _unpacks_a_max(text))


def _indexed_max(text: bytes) -> bool:
    """``max(`` starting a word, then ``)[1]`` or ``).indices`` on its line. The word start is
    tested here, not by the regex: a pattern opening with ``\\b`` is not searched by its literal."""
    start = 0
    while (match := _INDEXED_MAX.search(text, start)) is not None:
        before = text[match.start() - 1 : match.start()]
        if not (before.isalnum() or before == b"_"):
            return True
        start = match.start() + 1
    return False


def _unpacks_a_max(text: bytes) -> bool:
    """``_, pred = torch.max(x, 1)``, an unpacking that starts its line: a keyword argument after a
    comma (``norm_layer=norm_layer, reduction=max(...)`` in timm's Swin and EfficientNet builders)
    ends the same way, and had the pass parse and analyse the largest model files of timm."""
    for match in _UNPACKED_MAX.finditer(text):
        line = text.rfind(b"\n", 0, match.start()) + 1
        if _TARGETS_BEFORE.fullmatch(text, line, match.start()) is not None:
            return True
    return False


def _argmax_hand_offs(trees: _RunTrees, paths: Sequence[str]) -> _ArgmaxHandOffs:
    """By module (a file's stem): the functions and methods of that file that another file of the
    run hands arg-max predictions (``FileFacts.argmax_arguments``); and the run's functions and
    methods that return arg-max predictions to another file (``FileFacts.argmax_returns``). Only
    the modules a file taking an arg-max, or calling a function that returns one, imports are parsed
    for their functions; each file is analysed once, and again only where it calls such a function
    of another file (with what it returns known)."""
    names = {os.path.splitext(os.path.basename(path))[0]: os.path.basename(path) for path in paths}
    takers = list(trees.holding(_takes_an_argmax))
    importers: dict[str, set[str]] = defaultdict(set)
    if takers and any(b"metrics" in text and _METRIC_LIBRARIES.search(text) for text in trees.texts()):
        for stem, text in trees.texts_by_stem():
            for module in _imported_modules(text):
                importers[module].add(stem)
    callees = _callee_functions(trees, paths, takers, names)
    found: dict[str, dict[str, list[tuple[str, str, str]]]] = {}
    """caller stem -> callee module -> its hand-offs."""
    returns: list[tuple[str, int, tuple[int, ...]]] = []
    for stem, tree in takers:
        others = {module: functions for module, functions in callees.items() if module != stem}
        returned = bool(importers.get(stem, set()) - {stem})
        if not (others or returned):
            continue
        arguments, own_returns = argmax_hand_offs(tree, others)
        found[stem] = _by_module(arguments, names.get(stem, stem))
        if returned:
            returns.extend((f"{stem}.{name}", items, positions) for name, items, positions in own_returns)
    returns.sort()
    if returns:
        returning = {entry[0].partition(".")[0] for entry in returns}
        callers = list(trees.holding(lambda text: not returning.isdisjoint(_imported_modules(text))))
        callees = _callee_functions(trees, paths, takers + callers, names)
        with facts_in_effect(FileFacts(argmax_returns=tuple(returns))):
            for stem, tree in callers:
                others = {module: functions for module, functions in callees.items() if module != stem}
                found[stem] = _by_module(argmax_hand_offs(tree, others)[0], names.get(stem, stem))
    given: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for by_module in found.values():
        for module, calls in by_module.items():
            given[module].extend(calls)
    return {module: tuple(calls) for module, calls in given.items()}, tuple(returns)


def _by_module(arguments: list[tuple[str, str, str, int]], caller: str) -> dict[str, list[tuple[str, str, str]]]:
    by_module: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for module, function, argument, line in arguments:
        by_module[module].append((function, argument, f"{caller}:{line}"))
    return by_module


def _callee_functions(
    trees: _RunTrees, paths: Sequence[str], callers: list[tuple[str, ast.Module]], names: dict[str, str]
) -> dict[str, set[str]]:
    """The functions, classes and methods (``Class.method``) of each module of the run that one of
    ``callers`` imports."""
    imported = set()
    for _, tree in callers:
        for node in tree.body:
            # The module a call is matched by is the last part of its qualified name's module
            # (``utils.metrics.accuracy`` -> ``metrics``): the packages above it hold no callee.
            if isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").rpartition(".")[2])
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                imported.update(alias.name.rpartition(".")[2] for alias in node.names)
    wanted = imported & names.keys()
    callees: dict[str, set[str]] = {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem not in wanted:
            continue
        tree = trees.tree(path)
        if tree is not None:
            functions = callees.setdefault(stem, set())
            functions.update(node.name for node in tree.body if isinstance(node, ast.ClassDef))
            functions.update(f"{owner}.{function.name}" if owner else function.name for owner, function in module_functions(tree))
    return callees


_METRIC_LIBRARIES = re.compile(rb"\b(?:sklearn|imblearn)\b")
"""With ``metrics`` in the same text: a file importing scikit-learn's or imbalanced-learn's metrics. A
run with none has nothing that a returned arg-max could reach across files, and the return facts
are not computed (library trees)."""


_IMPORT_LINE = re.compile(rb"^[ \t]*(?:from[ \t]+([.\w]+)[ \t]+import[ \t]+([^\n#;]+)|import[ \t]+([^\n#;]+))", re.MULTILINE)


def _imported_modules(text: bytes) -> set[str]:
    """The last component of every module ``text`` imports, and the names it imports from one (``from
    . import metrics``, ``from Training import Training``, ``import utils.metrics as m``): what a
    file of the run could be imported as, read from the text before anything is parsed."""
    found = set()
    for module, names, modules in _IMPORT_LINE.findall(text):
        if module:
            found.add(module.rpartition(b".")[2].decode("ascii", "replace"))
            found.update(name.split()[0].decode("ascii", "replace") for name in names.strip(b"() \\").split(b",") if name.split())
        else:
            found.update(
                name.split()[0].rpartition(b".")[2].decode("ascii", "replace") for name in modules.split(b",") if name.split()
            )
    return found


def _loss_classes(trees: _RunTrees) -> tuple[tuple[str, str, str], ...]:
    """``stem.Class`` of each class of the run whose ``forward`` computes a single-label loss, with
    what it computes and what to use instead, for the files that import and build it."""
    found = []
    for stem, tree in trees.holding(_may_define_a_loss_class):
        qualified = Analysis(tree).qualified
        for name, loss in hand_losses.find_loss_classes(tree, qualified).items():
            if loss.node in tree.body:  # a class of a ``__main__`` block or a function is not importable
                found.append((f"{stem}.{name}", loss.computes, hand_losses.class_advice(loss)))
    return tuple(sorted(found))


def _criteria_cast_targets(trees: _RunTrees) -> bool:
    """Whether the run defines a loss class (a class whose ``forward`` takes ``(inputs, targets)``
    and computes a loss of them) and every such ``forward`` casts its target itself: it passes it to
    a loss only through ``cross_entropy``, which the loss rules make BCE with ``target.float()``,
    or as ``target.float()``."""
    found = False
    for _stem, tree in trees.holding(_may_define_a_criterion):
        for node in tree.body:
            forward = next(
                (f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "forward"), None
            ) if isinstance(node, ast.ClassDef) else None
            if forward is None or len(forward.args.args) != 3:
                continue
            target = forward.args.args[2].arg
            given = [
                call for call in ast.walk(forward)
                if isinstance(call, ast.Call) and _LOSS_CALLS.search(_callee(call))
                and any(_reads(argument, target) for argument in (*call.args[1:2], *(k.value for k in call.keywords if k.arg == "target")))
            ]
            if not given:
                continue
            if not all(_callee(call) == "cross_entropy" or _cast(call, target) for call in given):
                return False
            found = True
    return found


def _may_define_a_criterion(text: bytes) -> bool:
    return b"def forward" in text and (b"cross_entropy" in text or b"_loss(" in text)


_LOSS_CALLS = re.compile(r"cross_entropy|nll_loss|(^|_)loss$|criterion")
"""A call that computes a loss of its target: ``F.cross_entropy``, ``F.binary_cross_entropy_with_logits``, ``self.criterion``."""


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _reads(argument: ast.expr, name: str) -> bool:
    return any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(argument))


def _cast(call: ast.Call, target: str) -> bool:
    """The loss call takes ``target.float()``."""
    given = (*call.args[1:2], *(k.value for k in call.keywords if k.arg == "target"))
    return all(
        isinstance(argument, ast.Call) and isinstance(argument.func, ast.Attribute) and argument.func.attr == "float"
        and isinstance(argument.func.value, ast.Name) and argument.func.value.id == target
        for argument in given
    )


def _may_define_a_loss_class(text: bytes) -> bool:
    """A log-softmax, or a softmax and a tensor's log (``p = x.softmax(dim=1); p.log()``): a softmax
    alone is in every attention layer of a model library."""
    return b"log_softmax" in text or b"LogSoftmax" in text or (b"softmax" in text and _found(_LOG_CALL, (b".log(",), text))


_LOG_CALL = re.compile(rb"(?<!math)\.log\(")
"""``p.log()``, ``torch.log(p)``; not ``math.log(...)`` of a constant (position embeddings, schedules)."""


def _float_row_run(trees: _RunTrees, data: Iterable[bytes]) -> bool:
    """``FileFacts.float_row_run``: proven, never assumed. The run calls at least one loss, every one
    of them BCE, builds no dataset of class indices, and defines a dataset, every class of it with a
    ``__getitem__`` returning a float row of table columns as its label."""
    calls_a_loss = False
    for text in data:  # stops at the first loss that is not BCE (most runs: at their first file)
        for match in _LOSS_CALL.finditer(text) if _LOSS_CALL_HINT.search(text) is not None else ():
            if match[1].rpartition(b".")[2] not in _BCE_CALLS:
                return False
            calls_a_loss = True
    if not calls_a_loss:
        return False
    if any(_found(_INDEX_DATASET_CALL, _INDEX_DATASET_WORDS, text) for text in data):
        return False
    datasets = 0
    for _, tree in trees.holding(lambda text: b"__getitem__" in text):
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            getitem = [s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__getitem__"]
            if getitem and not _returns_float_rows(getitem[0]):
                return False
            datasets += bool(getitem)
    return datasets > 0


_LOSS_CALL = re.compile(rb"(?<!class )(?<!def )\b([\w.]*(?:Loss|loss|cross_entropy|CrossEntropy))\s*\(")
"""A loss called or built (``nn.BCEWithLogitsLoss(``, ``F.cross_entropy(``, ``self.loss(``), not defined."""
_LOSS_CALL_HINT = re.compile(rb"(?:Loss|loss|cross_entropy|CrossEntropy)\s*\(")
"""What every match of ``_LOSS_CALL`` holds, found from its first letters: that regex, which cannot, is
run only on the few files with one."""
_BCE_CALLS = frozenset({b"BCEWithLogitsLoss", b"BCELoss", b"binary_cross_entropy_with_logits", b"binary_cross_entropy"})
_INDEX_DATASET_WORDS = tuple(sorted({name.rpartition(".")[2].encode() for name in INDEX_DATASET_CALLS}))
_INDEX_DATASET_CALL = re.compile(rb"\b(?:" + b"|".join(re.escape(word) for word in _INDEX_DATASET_WORDS) + rb")\s*\(")
_FLOAT_DTYPES = frozenset({"float32", "float"})


def _returns_float_rows(getitem: ast.FunctionDef) -> bool:
    """Every ``return image, label`` of the method gives a label built as a float tensor of a row
    of table columns, directly or through the one name it is assigned to."""
    assigned: dict[str, list[ast.expr]] = defaultdict(list)
    returns = []
    for node in _scope_nodes(getitem.body):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in _assigned_names(target):
                    assigned[name].append(node.value if isinstance(target, ast.Name) else None)
        elif isinstance(node, ast.Return):
            returns.append(node.value)
    if not returns:
        return False
    for value in returns:
        if not (isinstance(value, ast.Tuple) and len(value.elts) >= 2):
            return False
        label = value.elts[-1]
        if isinstance(label, ast.Name):
            values = assigned.get(label.id, [])
            label = values[0] if len(values) == 1 else None
        if label is None or not _float_row_tensor(label):
            return False
    return True


def _float_row_tensor(value: ast.expr) -> bool:
    """``torch.tensor(row, dtype=torch.float32)`` (or ``as_tensor``) of a row of table columns."""
    if not (isinstance(value, ast.Call) and (_dotted(value.func) or "") in ("torch.tensor", "torch.as_tensor") and value.args):
        return False
    dtype = next((k.value for k in value.keywords if k.arg == "dtype"), None)
    if not (isinstance(dtype, ast.Attribute) and dtype.attr in _FLOAT_DTYPES and _dotted(dtype.value) == "torch"):
        return False
    row = value.args[0]
    while isinstance(row, ast.Call) and isinstance(row.func, ast.Attribute) and row.func.attr in ("tolist", "astype") and not row.keywords:
        row = row.func.value
    return _table_row(row)


def _table_row(row: ast.expr) -> bool:
    """A slice of the values of a table row (``obj.values[1:]``), or the values of columns picked
    from one row (``df.loc[index, columns].values``, ``df.iloc[index, 1:].values``)."""
    if isinstance(row, ast.Subscript) and isinstance(row.slice, ast.Slice):
        return isinstance(row.value, ast.Attribute) and row.value.attr == "values"
    if isinstance(row, ast.Attribute) and row.attr == "values" and isinstance(row.value, ast.Subscript):
        index = row.value.slice
        return (
            isinstance(row.value.value, ast.Attribute) and row.value.value.attr in ("loc", "iloc")
            and isinstance(index, ast.Tuple) and len(index.elts) == 2 and isinstance(index.elts[1], (ast.Slice, ast.List))
        )
    return False


def _one_hot_functions(trees: _RunTrees) -> tuple[str, ...]:
    """``stem.function`` of each module-level function of the run that returns a one-hot of class
    indices (``return torch.eye(num_classes)[labels]``), for the files that import it."""
    found = []
    for stem, tree in trees.holding(_module_function_encodes):
        # only the module-level functions that build one, with the imports: a fraction of a
        # model file (timm's mixup.py, layers with ``torch.eye``) to walk
        helpers = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _encodes(node)]
        if not helpers:
            continue
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        analysis = Analysis(ast.Module(body=[*imports, *helpers], type_ignores=[]))
        analysis.run(lambda statement: None)
        one_hot = {function for (owner, function), value in analysis.returns.items() if not owner and value.meaning == ONE_HOT}
        one_hot.update(helper.name for helper in helpers if _returns_encoded_labels(helper))
        found.extend(f"{stem}.{function}" for function in one_hot)
    return tuple(sorted(found))


def _returns_encoded_labels(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The function calls ``eye`` or ``one_hot`` and returns an expression of a label-named parameter:
    what the analysis does not follow (``np.eye(n)[labels]``, ``torch.eye(n).index_select(0, labels)``)."""
    labels = {a.arg for a in function.args.args if _LABEL_PARAMETER.search(a.arg)}
    if not labels or not any(
        isinstance(node, ast.Call) and (_dotted(node.func) or "").rpartition(".")[2] in ("eye", "one_hot")
        for node in ast.walk(function)
    ):
        return False
    return any(
        isinstance(node, ast.Return) and node.value is not None
        and any(isinstance(name, ast.Name) and name.id in labels for name in ast.walk(node.value))
        for node in ast.walk(function)
    )


_LABEL_PARAMETER = re.compile(r"label|target|^y(_|$)|^gt", re.IGNORECASE)


def _encodes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The function calls ``one_hot``, ``eye`` or ``scatter_``."""
    return any(
        isinstance(node, ast.Call)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")) in _ENCODERS
        for node in ast.walk(function)
    )


_ENCODERS = frozenset({"one_hot", "eye", "scatter_"})
_ENCODER_WORDS = (b"one_hot", b"eye(", b"scatter_(")


def _module_function_encodes(text: bytes) -> bool:
    """Text test before parsing: an encoder word on a line of a module-level ``def`` (most hits in
    model code are in methods, whose classes start at column 0 too)."""
    if not any(word in text for word in _ENCODER_WORDS):
        return False
    in_function = False
    for line in text.splitlines():
        if line[:1] not in (b" ", b"\t", b"#", b""):
            in_function = line.startswith((b"def ", b"async def "))
        # the def line too: a one-line ``def one_hot(labels, n): return np.eye(n)[labels]``
        if in_function and any(word in line for word in _ENCODER_WORDS):
            return True
    return False


def _holds_any(text: bytes, words: tuple[bytes, ...]) -> bool:
    return any(word in text for word in words)


def _found(pattern: re.Pattern[bytes], words: tuple[bytes, ...], text: bytes) -> bool:
    """``pattern.search(text)``, run only where one of ``words``, one of which every match holds, is
    in the text: substring tests skip most files far quicker than a regex that opens with a
    look-behind or ``\\b``, which is tried at every position."""
    return _holds_any(text, words) and pattern.search(text) is not None


def _read(path: str) -> bytes:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b""  # a FIFO or device would block the read; refused when the file is processed
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""  # reported when the file itself is processed


_MODEL_OUTPUT = object()
"""A binding to what a model call returns (``outputs = model(images)``): classifier scores."""


@dataclass
class _Passed:
    """What one call site passes to a parameter."""

    sources: list[CriterionSource] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


class _Project:
    def __init__(self, paths: Sequence[str], settings: Settings, trees: _RunTrees) -> None:
        self._settings = settings
        self._run_trees = trees
        self._paths = {os.path.normpath(os.path.abspath(path)): path for path in paths}
        self._by_dotted: dict[str, list[str]] = defaultdict(list)
        for full in self._paths:
            parts = full[: -len(".py")].split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            for start in range(len(parts) - 1, 0, -1):
                self._by_dotted[".".join(parts[start:])].append(full)
        self._passed: dict[tuple[str, str, str], list[_Passed]] = defaultdict(list)
        self._scores: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
        """Per parameter of a run function: whether each call site passes classifier scores."""
        self._hand_overs: dict[str, list[tuple[str, str, str, str, str]]] = defaultdict(list)
        self._label_sources: dict[str, list[tuple[str, str]]] = defaultdict(list)

    # -- resolving the run's own modules --------------------------------------------------

    def _module(self, dotted: str, importer: str, level: int = 0) -> str | None:
        """The run's file for ``dotted`` imported from ``importer`` (absolute path), or None."""
        if level:
            folder = os.path.dirname(importer)
            for _ in range(level - 1):
                folder = os.path.dirname(folder)
            base = os.path.join(folder, *dotted.split(".")) if dotted else folder
            for candidate in (base + ".py", os.path.join(base, "__init__.py")):
                if candidate in self._paths:
                    return candidate
            return None
        candidates = self._by_dotted.get(dotted, [])
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        # Several files end in this dotted name: the one nearest the importer (a script's own
        # folder comes first on sys.path), if that is unambiguous.
        def shared(candidate: str) -> int:
            return len(os.path.commonpath([candidate, importer]))

        best = max(shared(c) for c in candidates)
        nearest = [c for c in candidates if shared(c) == best]
        return nearest[0] if len(nearest) == 1 else None

    def _tree(self, full: str) -> ast.Module | None:
        # None when the file does not parse: that is reported when the file itself is processed
        return self._run_trees.tree(self._paths[full])

    def _function(self, full: str, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The module-level function ``name``, or the ``__init__`` of the module-level class ``name``."""
        tree = self._tree(full)
        if tree is None:
            return None
        found = [s for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and s.name == name]
        if len(found) != 1:
            return None
        if not isinstance(found[0], ast.ClassDef):
            return found[0]
        inits = [s for s in found[0].body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
        return inits[0] if len(inits) == 1 and inits[0].args.args else None

    @staticmethod
    def _positional(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
        every = [*function.args.posonlyargs, *function.args.args]
        return every[1:] if function.name == "__init__" else every  # a constructor's self

    # -- the caller side -------------------------------------------------------------------

    def scan_caller(self, path: str) -> None:
        full = os.path.normpath(os.path.abspath(path))
        tree = self._tree(full)
        if tree is None:
            return
        if is_dense_prediction(tree) or is_token_model(tree) or is_one_output_binary(tree) or is_variational_autoencoder(tree):
            return  # no rule converts its criteria: it hands the run no BCE to cast for
        names = _ImportedNames(self, full, tree)
        if not names.modules and not names.functions:
            return  # imports nothing of the run
        for local, (owner, name) in names.functions.items():
            what = self._label_source(owner, name)
            if what is not None:
                self._label_sources[path].append((local, what))
        calls = [
            (call, scope)
            for call, scope in _calls_by_scope(tree)
            if isinstance(call.func, (ast.Name, ast.Attribute)) and names.run_function(call.func) is not None
        ]
        if not calls:
            return
        converting = self._converting_rules(path)
        module_bindings = _bindings(tree.body, names, path, converting)
        by_scope: dict[ast.AST, dict] = {tree: module_bindings}
        for call, scope in calls:
            if scope not in by_scope:
                by_scope[scope] = _bindings(scope.body, names, path, converting)
            parameters = set() if scope is tree else {
                a.arg for a in (*scope.args.posonlyargs, *scope.args.args, *scope.args.kwonlyargs)
            }
            self._record_call(call, names, path, full, by_scope[scope], module_bindings, parameters)

    def _converting_rules(self, path: str) -> frozenset[str]:
        settings = self._settings.for_file(path)
        try:
            return frozenset(rule.code for rule in select_rules(load_rules(), settings.select, settings.ignore))
        except ValueError:
            return frozenset()

    def _record_call(self, call: ast.Call, names, path, full, bindings, module_bindings, parameters) -> None:
        target = names.run_function(call.func)
        if target is None:
            return
        callee_path, function_name = target
        function = self._function(callee_path, function_name)
        if function is None:
            return
        callee = _dotted(call.func)
        positional = self._positional(function)
        keywords = {a.arg for a in (*positional, *function.args.kwonlyargs)}
        for index, argument in enumerate(call.args):
            if isinstance(argument, ast.Starred):
                return  # positions after a *args are unknown
            if index < len(positional):
                self._record_argument(argument, str(index), positional[index].arg, callee, callee_path,
                                      function_name, path, bindings, module_bindings, parameters)
        for keyword in call.keywords:
            if keyword.arg is not None and keyword.arg in keywords:
                self._record_argument(keyword.value, keyword.arg, keyword.arg, callee, callee_path,
                                      function_name, path, bindings, module_bindings, parameters)

    def _record_argument(self, value, argument, parameter, callee, callee_path, function_name, path,
                         bindings, module_bindings, parameters) -> None:
        passed = _Passed()
        place = f"{path}:{value.lineno}"
        if isinstance(value, ast.Name):
            found = bindings.get(value.id) if value.id in bindings or value.id in parameters else module_bindings.get(value.id)
            if found is None:
                passed.unknown.append(place)
            else:
                passed.sources.extend(s for s in found if isinstance(s, CriterionSource))
                passed.unknown.extend(place for s in found if not isinstance(s, CriterionSource))
        else:
            passed.unknown.append(place)
            found = None
        key = (callee_path, function_name, parameter)
        self._passed[key].append(passed)
        self._scores[key].append(bool(found) and all(s is _MODEL_OUTPUT for s in found))
        if passed.sources and callee is not None:
            self._hand_overs[path].append((callee, argument, callee_path, function_name, parameter))

    def _label_source(self, full: str, name: str) -> str | None:
        """The class-index dataset that the run's function ``name`` of ``full`` builds and returns.
        (A one-hot helper is not looked for here: every file gets those in ``one_hot_functions``.)"""
        tree = self._tree(full)
        function = next((s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == name), None) if tree else None
        if function is None:
            return None
        if not any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(function)):
            return None
        calls = [n for n in ast.walk(function) if isinstance(n, ast.Call)]
        imported = imported_names(_module_level(tree))
        for call in calls:
            dotted = _dotted(call.func)
            if dotted is None:
                continue
            head, _, rest = dotted.partition(".")
            qualified = imported.get(head, head) + (f".{rest}" if rest else "")
            dataset = CLASS_INDEX_DATASETS.get(qualified)
            if dataset is not None and dataset[0].isupper():
                return dataset
        return None

    # -- the facts -------------------------------------------------------------------------

    def facts(self, unscanned: Sequence[bytes]) -> dict[str, FileFacts]:
        """``unscanned``: the text of the run's files not scanned as callers; a function whose
        name they call is not proven to receive scores, whatever the scanned callers pass."""
        parameters: dict[str, list[ParameterFact]] = defaultdict(list)
        for (callee_path, function, parameter), passes in self._passed.items():
            sources = tuple(dict.fromkeys(s for p in passes for s in p.sources))
            if not sources:
                continue  # no criterion passed here: not a criterion parameter
            unknown = tuple(dict.fromkeys(u for p in passes for u in p.unknown))
            fact = ParameterFact(function, parameter, sources, unknown)
            parameters[self._paths[callee_path]].append(fact)
        hand_overs: dict[str, list[HandOver]] = defaultdict(list)
        for path, entries in self._hand_overs.items():
            for callee, argument, callee_path, function, parameter in entries:
                fact = next(f for f in parameters[self._paths[callee_path]] if (f.function, f.parameter) == (function, parameter))
                cast = fact.proven_bce and self._only_loss_calls(callee_path, function, parameter, 0)
                hand_overs[path].append(
                    HandOver(callee, argument, self._paths[callee_path], function, parameter, cast)
                )
        scores: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for (callee_path, function, parameter), passes in self._scores.items():
            called_elsewhere = re.compile(rb"(?<!def )\b" + re.escape(function.encode()) + rb"\s*\(")
            if all(passes) and not any(called_elsewhere.search(text) for text in unscanned):
                scores[self._paths[callee_path]].append((function, parameter))
        return {
            path: FileFacts(
                tuple(parameters.get(path, ())), tuple(hand_overs.get(path, ())), tuple(scores.get(path, ())),
                tuple(self._label_sources.get(path, ())),
            )
            for path in {*parameters, *hand_overs, *scores, *self._label_sources}
        }

    def _only_loss_calls(self, full: str, function_name: str, parameter: str, depth: int) -> bool:
        """Every use of ``parameter`` in the function is a two-argument call (a loss call the
        callee's rewrite casts) or passes it on to another function of that file; in a class's
        ``__init__``, it is stored once as ``self.attr`` and every ``self.attr`` is such a call."""
        function = self._function(full, function_name)
        if function is None or depth > _MAX_FORWARDING:
            return False
        parents = _parents(function)
        uses = [n for n in ast.walk(function) if isinstance(n, ast.Name) and n.id == parameter]
        if not uses:
            return False
        for use in uses:
            parent = parents.get(use)
            if not isinstance(use.ctx, ast.Load):
                return False
            if _two_argument_call(parent, use):
                continue
            if function.name == "__init__" and len(uses) == 1 and _stored_on_self(parent, use):
                return self._attribute_only_called(full, function_name, parent.targets[0].attr)
            forwarded = _forwarded_to(parent, use, parents)
            if forwarded is None or self._function(full, forwarded[0]) is None:
                return False
            inner = self._function(full, forwarded[0])
            name = _parameter_name(inner, forwarded[1])
            if name is None or not self._only_loss_calls(full, forwarded[0], name, depth + 1):
                return False
        return True

    def _attribute_only_called(self, full: str, class_name: str, attribute: str) -> bool:
        tree = self._tree(full)
        owner = next((s for s in tree.body if isinstance(s, ast.ClassDef) and s.name == class_name), None) if tree else None
        if owner is None:
            return False
        parents = _parents(owner)
        uses = [
            n for n in ast.walk(owner)
            if isinstance(n, ast.Attribute) and n.attr == attribute and isinstance(n.value, ast.Name) and n.value.id == "self"
        ]
        loads = [use for use in uses if isinstance(use.ctx, ast.Load)]
        return len(uses) == len(loads) + 1 and bool(loads) and all(_two_argument_call(parents.get(u), u) for u in loads)


class _ImportedNames:
    """The names a file binds to the run's own modules and their functions, and to loss classes."""

    def __init__(self, project: _Project, full: str, tree: ast.Module) -> None:
        self.qualified = imported_names(_module_level(tree))
        self.modules: dict[str, str] = {}
        self.functions: dict[str, tuple[str, str]] = {}
        self._project = project
        for node in _module_level(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    module = project._module(alias.name, full)
                    if module is not None and alias.asname:
                        self.modules[alias.asname] = module
                    elif module is not None and "." not in alias.name:
                        self.modules[alias.name] = module
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    local = alias.asname or alias.name
                    dotted = f"{node.module}.{alias.name}" if node.module else alias.name
                    module = project._module(dotted, full, node.level)
                    if module is not None:
                        self.modules[local] = module
                        continue
                    owner = project._module(node.module or "", full, node.level) if (node.module or node.level) else None
                    if owner is not None:
                        self.functions[local] = (owner, alias.name)

    def run_function(self, func: ast.expr) -> tuple[str, str] | None:
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        if isinstance(func, ast.Attribute):
            owner = _dotted(func.value)
            if owner in self.modules:
                return self.modules[owner], func.attr
        return None

    def loss_class(self, func: ast.expr) -> str | None:
        dotted = _dotted(func)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        qualified = self.qualified.get(head, head) + (f".{rest}" if rest else "")
        return qualified if qualified in LOSS_CLASSES else None


def _bindings(body: list[ast.stmt], names: _ImportedNames, path: str, converting: frozenset[str]):
    """Each name assigned in a scope -> what it may hold: criterion sources, ``_MODEL_OUTPUT``,
    None for anything else."""
    bound: dict[str, list[object]] = defaultdict(list)
    for node in _scope_nodes(body):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.NamedExpr)):
            targets = [getattr(node, "target", None)] + [i.optional_vars for i in getattr(node, "items", ())]
            value = None
        else:
            continue
        for target in targets:
            for name in _assigned_names(target):
                simple = len(targets) == 1 and isinstance(target, ast.Name)
                bound[name].append(_source(value, names, path, converting) if simple and value is not None else None)
    return bound


def _source(value: ast.expr, names: _ImportedNames, path: str, converting: frozenset[str]) -> object:
    while (  # nn.CrossEntropyLoss().to(device) / .cuda()
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in _DEVICE_METHODS
        and isinstance(value.func.value, ast.Call)
    ):
        value = value.func.value
    if not isinstance(value, ast.Call):
        return None
    qualified = names.loss_class(value.func)
    if qualified is None:
        return _MODEL_OUTPUT if _is_model_call(value) else None
    return CriterionSource(path, value.lineno, qualified.rpartition(".")[2], _becomes_bce(qualified, value, converting))


def _becomes_bce(qualified: str, call: ast.Call, converting: frozenset[str]) -> bool:
    """Already BCE-with-logits in torch, or a construction that ML001/ML004 rewrite to it in
    every case (the cases they only report, such as ``ignore_index`` or label smoothing that
    cannot move onto the targets, stay what they are)."""
    kind = LOSS_CLASSES[qualified]
    if qualified.startswith("torch.") and kind == "bce":
        return True
    if qualified.endswith(".CrossEntropyLoss"):
        keywords = {k.arg for k in call.keywords}
        return (
            "ML001" in converting
            and len(call.args) <= 1
            and not any(isinstance(a, ast.Starred) for a in call.args)
            and None not in keywords
            and not keywords & {"ignore_index", "label_smoothing"}
        )
    return kind == "timm-soft-target-ce" and "ML004" in converting


def _module_level(tree: ast.Module) -> Iterable[ast.stmt]:
    """Module-level statements, including those inside module-level if/try blocks."""
    stack: list[ast.stmt] = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try, getattr(ast, "TryStar", ast.Try))):
            for block in (node.body, node.orelse, getattr(node, "finalbody", []), *[h.body for h in getattr(node, "handlers", [])]):
                stack.extend(reversed(block))


def _is_model_call(call: ast.Call) -> bool:
    """``model(images)``, ``self.model(x)``: the prediction rules' own test, on the callee."""
    dotted = _dotted(call.func)
    return dotted is not None and is_model_callee(cst.parse_expression(dotted))


def _scope_nodes(body: list[ast.stmt]) -> Iterable[ast.AST]:
    """The nodes of a scope, without descending into nested functions, classes or lambdas."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        for child in reversed(list(ast.iter_child_nodes(node))):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(child)


def _calls_by_scope(tree: ast.Module) -> Iterable[tuple[ast.Call, ast.AST]]:
    """Every call with the function (or the module) whose scope it is in, in one traversal."""
    stack: list[tuple[ast.AST, ast.AST]] = [(tree, tree)]
    while stack:
        node, scope = stack.pop()
        if isinstance(node, ast.Call):
            yield node, scope
        inner = node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else scope
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def _assigned_names(target: ast.expr | None) -> Iterable[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _assigned_names(element)
    elif isinstance(target, ast.Starred):
        yield from _assigned_names(target.value)


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _parents(node: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(node) for child in ast.iter_child_nodes(parent)}


def _two_argument_call(parent: ast.AST | None, use: ast.expr) -> bool:
    return (
        isinstance(parent, ast.Call)
        and parent.func is use
        and len(parent.args) == 2
        and not parent.keywords
        and not any(isinstance(a, ast.Starred) for a in parent.args)
    )


def _stored_on_self(parent: ast.AST | None, use: ast.Name) -> bool:
    """``self.attr = use``."""
    return (
        isinstance(parent, ast.Assign)
        and parent.value is use
        and len(parent.targets) == 1
        and isinstance(parent.targets[0], ast.Attribute)
        and isinstance(parent.targets[0].value, ast.Name)
        and parent.targets[0].value.id == "self"
    )


def _forwarded_to(parent, use: ast.Name, parents) -> tuple[str, int | str] | None:
    """``f(..., use, ...)`` / ``f(..., p=use)`` with ``f`` a plain name: (f, position or keyword)."""
    if isinstance(parent, ast.keyword):
        call = parents.get(parent)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and parent.arg is not None:
            return call.func.id, parent.arg
        return None
    if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and use in parent.args:
        index = parent.args.index(use)
        if not any(isinstance(a, ast.Starred) for a in parent.args[: index + 1]):
            return parent.func.id, index
    return None


def _parameter_name(function: ast.FunctionDef | ast.AsyncFunctionDef, position: int | str) -> str | None:
    every = [*function.args.posonlyargs, *function.args.args]
    if isinstance(position, int):
        return every[position].arg if position < len(every) else None
    names = {a.arg for a in (*every, *function.args.kwonlyargs)}
    return position if position in names else None
