"""What the other files of a run say about this one: criteria built in one module, called in another.

Real projects build the criterion in ``main.py`` and call it in ``engine.py``
(``train_one_epoch(model, criterion, data_loader, ...)``). When ``rewrite`` is given several
files, the engine's project pass (``migrate_ml.engine.project``) collects these facts for
every file of the run before any file is rewritten, so that each worker can rewrite its file
alone. The flow provider reads the facts of the file being rewritten from
:func:`current_facts`; rules read them from the ``LossFlow`` it computes.

This module holds plain data only (it is pickled to worker processes) and never imports the
engine.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import libcst as cst


@dataclass(frozen=True)
class CriterionSource:
    """A criterion built in some file of the run and passed to a function of another."""

    path: str
    line: int
    class_name: str
    becomes_bce: bool
    """Already ``BCEWithLogitsLoss``, or a construction this run rewrites to it (so its targets
    must be float at every call)."""

    def describe(self) -> str:
        return f"{self.class_name} built at {self.path}:{self.line}"


@dataclass(frozen=True)
class ParameterFact:
    """What the run's other files pass to ``function(parameter)`` of this file."""

    function: str
    parameter: str
    sources: tuple[CriterionSource, ...]
    unknown: tuple[str, ...] = ()
    """``path:line`` of call sites that pass something not proven to be a criterion."""

    @property
    def proven_bce(self) -> bool:
        return bool(self.sources) and not self.unknown and all(s.becomes_bce for s in self.sources)

    @property
    def converted_by_run(self) -> bool:
        """Some criterion passed here is single-label code that this run makes BCE: the code
        that calls it is not already multi-label, so its targets are loader labels."""
        return any(s.becomes_bce and s.class_name != "BCEWithLogitsLoss" for s in self.sources)

    def describe(self) -> str:
        described = [source.describe() for source in self.sources]
        described += [f"an unknown value passed at {place}" for place in self.unknown]
        return ", ".join(described)


@dataclass(frozen=True)
class HandOver:
    """A call in this file that passes a criterion to a function defined in another file of the run."""

    callee: str
    """The callee as written here, as a dotted name: ``engine.train_one_epoch``."""
    argument: str
    """The parameter's keyword, or the argument's position (``"1"``)."""
    path: str
    function: str
    parameter: str
    cast: bool
    """The run casts the targets at every call this criterion reaches in ``path``."""


@dataclass(frozen=True)
class FileFacts:
    parameters: tuple[ParameterFact, ...] = ()
    hand_overs: tuple[HandOver, ...] = ()
    score_parameters: tuple[tuple[str, str], ...] = ()
    """(function, parameter) of this file's metric helpers that every caller in the run passes a
    model's output (``accuracy(outputs, labels)`` with ``outputs = model(images)``)."""
    label_sources: tuple[tuple[str, str], ...] = ()
    """(name, dataset) of functions this file imports from another file of the run whose body
    builds and returns a class-index dataset (a loader factory building ``CIFAR100``)."""

    one_hot_functions: tuple[str, ...] = ()
    """``module.function`` of the run's functions that return a one-hot of class indices
    (``helpers.one_hot_embedding`` returning ``torch.eye(C)[labels]``), module by file stem: a
    call of one in any file of the run is a one-hot target (see :meth:`returns_one_hot`)."""

    loss_classes: tuple[tuple[str, str, str], ...] = ()
    """(``module.Class``, what it computes, what to use instead) of the run's classes whose
    ``forward`` computes a single-label loss (``smoothing.SoftTargetCrossEntropy``), module by file
    stem: building one in any file of the run is reported there (see :meth:`loss_class`)."""

    run_modules: tuple[str, ...] = ()
    """The stems of the run's Python files (``modeling`` for ``models/modeling.py``)."""

    single_label_metrics: tuple[str, ...] = ()
    """``module.name`` of the run's metric helpers (functions, or classes with such a method) that
    count matches of one predicted class per sample with its label (``metrics.Accuracy`` whose
    ``update`` compares ``prediction.view(-1) == target.view(-1)`` under a ``"multiclass"``
    default): a call of one in any file of the run feeds a single-label metric."""

    metric_classes: tuple[str, ...] = ()
    """``module.Class`` of the run's metric classes whose ``update`` scores predictions against
    labels (``meter.AccuracyMeter`` calling ``accuracy_score(y_true, y_pred)``): an object built
    from one in any file of the run is a metric, and an arg-max given to it is scored one class per
    sample (see :meth:`is_metric_class`)."""

    reported_helpers: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    """(``module.name``, the methods, ``path:line``) of the run's functions and classes whose body the
    safety net reports single-label over what they are given (``meter.cal_acc`` comparing its top-k
    with the labels, ``utils.AccuracyMeter`` whose ``update`` calls such a helper), module by file
    stem, methods empty for a function, the path relative to this file's folder: each call of one in
    this file computes that single-label metric (see :meth:`reported_helper`)."""

    argmax_arguments: tuple[tuple[str, str, str], ...] = ()
    """(function or ``Class.method`` of this file, parameter keyword or position with ``self`` not
    counted, ``path:line`` of the call) where another file of the run hands it arg-max predictions
    (``metrics.get_f1(y, preds.argmax(1))``, ``meter.update(y_true, y_preds)``)."""

    argmax_returns: tuple[tuple[str, int, tuple[int, ...]], ...] = ()
    """(``module.function`` or ``module.Class.method``, module by file stem; how many items the tuple
    it returns has, 0 for a value that is not a tuple; the positions holding arg-max predictions, none
    when the value itself is one) of the run's functions and methods whose return value holds arg-max
    predictions (``Training.evaluate_f1_score`` returning ``val_target, val_preds, ...``): what a call of
    one in another file of the run gives (see :meth:`argmax_return`)."""

    binary_run: bool = False
    """The run's losses are all binary (``nn.BCELoss`` on a model of another package) and nothing
    in it has a class axis (cross-entropy, softmax, arg-max): a dataset of the run returning one
    0/1 number per image gives the label of a one-output binary classifier."""

    float_row_run: bool = False
    """Every dataset of the run returns its label as a float row built from table columns
    (``torch.tensor(row.values[1:].tolist(), dtype=torch.float32)``) and every loss the run calls
    or builds is BCE: a criterion handed in from another file is trained on float multi-hot rows
    already, and two BCE losses weighted by lambda on two such rows are one BCE on the mixed rows."""

    criteria_cast_targets: bool = False
    """The run defines loss classes, and the ``forward`` of every one casts its target itself: it
    takes it only through ``F.cross_entropy`` (which the loss rules make BCE with ``target.float()``)
    or as ``target.float()`` (the ssssssshy ``FocalLoss``). A criterion a trainer of the run is handed
    from outside is then taken to be one of them, and its calls need no cast of their own."""

    accuracy_constants: tuple[tuple[str, str], ...] = ()
    """(``module.NAME``, value) of the run's module-level string constants that name a metric their
    module measures as an accuracy (``VALIDATION_METRIC_NAME = "val_af"`` logged with ``acc_fine``),
    module by file stem: a monitor given one in another file of the run selects on accuracy."""

    selection_parameters: tuple[tuple[str, str], ...] = ()
    """(``module.Callable``, parameter) of the run's classes and functions that give a parameter to a
    selector as the monitored metric's name (``Training(eval_metric=...)`` storing it for
    ``TrainingArguments(metric_for_best_model=self.eval_metric)``), module by file stem: a call in
    another file of the run passing an accuracy's name there selects on accuracy."""

    def returns_one_hot(self, qualified: str) -> bool:
        """Whether ``qualified`` (``helpers.one_hot_embedding``, ``pkg.helpers.one_hot_embedding``)
        names one of the run's functions that return a one-hot of class indices."""
        return ".".join(qualified.split(".")[-2:]) in self.one_hot_functions

    def argmax_return(self, qualified: str) -> tuple[int, tuple[int, ...]] | None:
        """(items, arg-max positions) of the entry of :attr:`argmax_returns` that ``qualified``
        (``Training.Training.evaluate_f1_score``, ``utils.predict``) names, if any."""
        parts = qualified.split(".")
        for size in (3, 2):
            key = ".".join(parts[-size:]) if len(parts) >= size else ""
            found = next((entry[1:] for entry in self.argmax_returns if entry[0] == key), None)
            if found is not None:
                return found
        return None

    def returns_argmax_class(self, qualified: str) -> bool:
        """Whether ``qualified`` (``Training.Training``) names a class of the run with a method in
        :attr:`argmax_returns`."""
        prefix = ".".join(qualified.split(".")[-2:]) + "."
        return any(entry[0].startswith(prefix) and entry[0].count(".") == 2 for entry in self.argmax_returns)

    def is_single_label_metric(self, qualified: str) -> bool:
        return ".".join(qualified.split(".")[-2:]) in self.single_label_metrics

    def reported_helper(self, qualified: str) -> tuple[tuple[str, ...], str] | None:
        """(methods, ``path:line``) of the entry of :attr:`reported_helpers` that ``qualified``
        (``utils.meter.cal_acc``, ``.utils.AccuracyMeter``) names, if any."""
        key = ".".join(qualified.split(".")[-2:])
        return next(((methods, where) for name, methods, where in self.reported_helpers if name == key), None)

    def is_metric_class(self, qualified: str) -> bool:
        return ".".join(qualified.split(".")[-2:]) in self.metric_classes

    def loss_class(self, qualified: str) -> tuple[str, str, str] | None:
        """The entry of :attr:`loss_classes` that ``qualified`` (``smoothing.SoftTargetCrossEntropy``,
        ``pkg.smoothing.SoftTargetCrossEntropy``) names, if any."""
        key = ".".join(qualified.split(".")[-2:])
        return next((entry for entry in self.loss_classes if entry[0] == key), None)

    def receives_scores(self, function: str, parameter: str) -> bool:
        return (function, parameter) in self.score_parameters

    def parameter(self, function: str, parameter: str) -> ParameterFact | None:
        return next((f for f in self.parameters if (f.function, f.parameter) == (function, parameter)), None)

    def hand_over(self, callee: str, argument: str) -> HandOver | None:
        return next((h for h in self.hand_overs if (h.callee, h.argument) == (callee, argument)), None)


_CURRENT: ContextVar[FileFacts | None] = ContextVar("migrate_ml_project_facts", default=None)


_ORIGINAL: ContextVar[str | None] = ContextVar("migrate_ml_original_text", default=None)


def original_text() -> str | None:
    """The text of the file being rewritten as it was before this run's fixes; None outside a
    rewrite (``verify`` re-scanning migrated code): what the file trained before its loss was migrated."""
    return _ORIGINAL.get()


@contextlib.contextmanager
def original_text_in_effect(text: str) -> Iterator[None]:
    token = _ORIGINAL.set(text)
    try:
        yield
    finally:
        _ORIGINAL.reset(token)


def current_facts() -> FileFacts | None:
    """The project facts of the file being rewritten; None outside a multi-file run."""
    return _CURRENT.get()


@contextlib.contextmanager
def facts_in_effect(facts: FileFacts | None) -> Iterator[None]:
    token = _CURRENT.set(facts)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def dotted_name(node: cst.CSTNode) -> str | None:
    """``a.b.c`` for a ``Name``/``Attribute`` chain; None for anything else."""
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if not isinstance(node, cst.Name):
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))
