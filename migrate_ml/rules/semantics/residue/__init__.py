"""The safety net: find what still means "one label per image" in (already rewritten) code.

The rules fix what they can prove and report what they recognise; this detector is the last
look over a file, independent of them, so that no file ends silently single-label. The engine
runs it once over the text it is about to write (as ML100, for constructs no rule reported at
that line) and ``verify``'s static pass runs it over the code it checks.

It reads CPython's ``ast``, not LibCST: it runs over every candidate file's final text, and
``ast.parse`` plus one walk costs a small fraction of LibCST's parse and metadata resolution.
Names are resolved through the file's own imports (``from torch.nn import CrossEntropyLoss as
CE``, ``import torch.nn.functional as F``), so aliases are followed and a class the file defines
itself is not mistaken for the library's. Values are followed through one function at a time,
in statement order (a name bound to an arg-max, then rebound to a thresholded sigmoid, is a
multi-hot prediction from then on).

It is deliberately conservative about code that is already multi-label: an arg-max only
counts when it is taken over a model's output, compared with something or handed to a metric
(never ``np.argmax(val_accuracy)``), softmax only over a model's output (temperature-scaled logits
too) or into a metric outside ``forward``, or as what ``forward`` returns, directly or through a
name, or the last ``nn.Softmax`` layer of an ``nn.Sequential`` (never attention, pooling or
routing weights), and a comparison of a thresholded prediction only when it is averaged over
every element instead of per sample (``!=`` averaged that way is the Hamming loss, a multi-label
metric). A single-label loss counts however it is named: called, referenced (``partial``, a dict
of classes) or looked up with ``getattr(nn, ...)``. In model code without training code (a
``models.py``) only a model that ends in softmax is reported.

The package: ``prefilters`` (the cheap text tests), ``construct`` (what is reported), ``tables``
(what the detector knows, as data), ``detector`` (the walk) and its checks by concern beside it:
``losses``, ``softmax``, ``metrics`` and ``predictions``.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from migrate_ml.rules._prefilter import model_may_end_in, nodes_of, parse_once
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics import find_sinks
from migrate_ml.rules.semantics.helpers import reads_a_parameter, single_label_helper_calls
from migrate_ml.rules.semantics.metrics import takes_predictions
from migrate_ml.rules.semantics.names import import_bindings, qualified_name
from migrate_ml.rules.semantics.residue.construct import KINDS, SingleLabelConstruct
from migrate_ml.rules.semantics.residue.detector import _Detector
from migrate_ml.rules.semantics.residue.prefilters import (
    API_WORDS,
    COMMON_WORDS,
    compares_a_ranking,
    could_contain_single_label,
    defines_loss_class,
    is_model_code_only,
    may_return_softmax,
    names_a_single_label_api,
)
from migrate_ml.rules.semantics.sequences import in_spans, is_token_model, sequence_spans
from migrate_ml.rules.semantics.tasks import (
    is_dense_prediction,
    is_one_output_binary,
    is_variational_autoencoder,
    untrained_pretrained_model,
)

if TYPE_CHECKING:
    import libcst

__all__ = [
    "API_WORDS",
    "COMMON_WORDS",
    "KINDS",
    "SingleLabelConstruct",
    "compares_a_ranking",
    "could_contain_single_label",
    "defines_loss_class",
    "find_single_label",
    "may_return_softmax",
    "names_a_single_label_api",
    "reported_helpers",
]


def find_single_label(module: libcst.Module | str) -> list[SingleLabelConstruct]:
    """Every still-single-label construct in ``module`` (a ``libcst.Module`` or source text).

    Text that does not parse yields nothing: the engine and ``verify`` report syntax errors
    themselves.
    """
    text = module if isinstance(module, str) else module.code
    if not could_contain_single_label(text):
        return []
    try:
        tree = parse_once(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    if is_model_code_only(text) and not model_may_end_in(tree, "softmax", "Softmax"):
        return []  # the one construct model code can hold cannot be there: skip the full walk
    if is_dense_prediction(tree) or is_token_model(tree) or is_one_output_binary(tree) or is_variational_autoencoder(tree):
        return []  # one class per pixel or per token, one [B, 1] decision or a reconstruction is the task itself
    detector = _Detector(text, tree)
    found = detector.run()
    if detector.helper_inputs:
        # A helper of this file is given thresholded predictions (simple_accuracy(preds, labels))
        # or an arg-max (get_score(labels, preds.argmax(1))): walk again with its parameters
        # known, so that its body is checked too.
        found = _Detector(text, tree, detector.helper_inputs).run()
    found = _with_meanings(found, tree, text)
    found = _with_helper_calls(found, tree, text)
    found = _with_run_helper_calls(found, tree, text)
    if found and (model := untrained_pretrained_model(tree)) is not None:
        return [_pretrained_untrained(model)]
    spans = sequence_spans(tree) if found else ()
    return [construct for construct in found if not in_spans(construct.line, spans)]


def _pretrained_untrained(model: ast.Call) -> SingleLabelConstruct:
    """The one finding of a file whose single-label constructs all read a library's pretrained
    head that the file never trains: migrating them would misread that head."""
    return SingleLabelConstruct(
        model.lineno,
        model.col_offset + 1,
        "pretrained-untrained",
        "this model keeps the library's pretrained single-label head (softmax over its classes) and nothing in "
        "this file trains it: its loss, arg-max and accuracy read that head, so they stay single-label",
        "nothing to migrate until the model is fine-tuned for multi-label: give it a new head "
        "(num_classes=...) and train it with BCEWithLogitsLoss",
    )


_SOURCE_REPORTS_IT = frozenset({"class-index-target", "one-hot-target"})
"""Meanings whose related line is where the value comes from (the dataset, the one-hot encoding):
the fix there fixes them."""


def _with_meanings(found: list[SingleLabelConstruct], tree: ast.Module, text: str) -> list[SingleLabelConstruct]:
    """Add what the meaning analysis (``rules/semantics``) proves and this walk did not find, one
    construct per line; one built on a line found here is that construct."""
    lines = {construct.line for construct in found}
    walked = frozenset(lines)
    text_lines = text.splitlines()
    added = []
    for sink in find_sinks(tree, text):
        line = sink.node.lineno  # type: ignore[attr-defined]
        # a target made from a reported source is fixed there; any other sink related to a line
        # this analysis reported (the labels it collected) is a construct of its own
        if line in lines or (lines if sink.kind in _SOURCE_REPORTS_IT else walked).intersection(sink.related):
            continue
        lines.add(line)
        source_line = text_lines[line - 1] if line <= len(text_lines) else ""
        column = len(source_line.encode("utf-8")[: sink.node.col_offset].decode("utf-8", errors="replace")) + 1  # type: ignore[attr-defined]
        related = tuple(sorted(set(sink.related) - {line}))
        covering = sink.related if sink.kind in _SOURCE_REPORTS_IT else sink.enclosing
        added.append(SingleLabelConstruct(line, column, sink.kind, sink.message, sink.suggestion, related, covering))
    return sorted([*found, *added], key=lambda c: (c.line, c.column, c.kind))


def _with_helper_calls(found: list[SingleLabelConstruct], tree: ast.Module, text: str) -> list[SingleLabelConstruct]:
    """Add the first call of each helper of this file whose body reads what it is given as one
    class per image (``calculate_accuracy(y_pred, y)``): the call is where the wrong accuracy comes
    from. One finding per helper and function, naming the lines of its other calls there: each of
    them repeats it."""
    lines = {construct.line for construct in found}
    helper_lines = {construct.line for construct in found if construct.kind == "single-label-helper"}
    functions = sorted(
        ((node.lineno, node.end_lineno or node.lineno, id(node)) for node in nodes_of(tree, ast.FunctionDef, ast.AsyncFunctionDef)),
        reverse=True,
    )
    by_helper: dict[tuple[str, int], list] = {}
    for helper_call in single_label_helper_calls(tree, [(c.line, c.kind, c.related_lines) for c in found]):
        line = helper_call.call.lineno
        # repeated in one function, a call repeats the finding; module-level calls (script steps,
        # notebook cells) each compute an accuracy of their own
        scope = next((key for start, end, key in functions if start <= line <= end), -line)
        by_helper.setdefault((helper_call.helper, scope), []).append(helper_call)
    text_lines = text.splitlines()
    added = []
    for calls in by_helper.values():
        if helper_lines.intersection(c.call.lineno for c in calls):
            continue  # the meaning analysis reports this helper at one of its calls already
        calls = [c for c in calls if c.call.lineno not in lines]
        if not calls:
            continue
        helper_call = min(calls, key=lambda c: (c.call.lineno, c.call.col_offset))
        line = helper_call.call.lineno
        if line in lines:
            continue  # two helpers called on one line: the first one's finding stands for the line
        lines.add(line)
        others = sorted({c.call.lineno for c in calls} - {line})
        also = f" (called the same way at line{'s' if len(others) > 1 else ''} {', '.join(map(str, others))})" if others else ""
        source_line = text_lines[line - 1] if line <= len(text_lines) else ""
        column = len(source_line.encode("utf-8")[: helper_call.call.col_offset].decode("utf-8", errors="replace")) + 1
        added.append(
            SingleLabelConstruct(
                line,
                column,
                "single-label-helper",
                f"{helper_call.helper}() is single-label in its body (an arg-max, top-k or class-index comparison of "
                f"what it is given), and so is what it returns here{also}",
                f"make {helper_call.helper}() take multi-hot [B, C] rows: predict with torch.sigmoid(logits) > THRESHOLD "
                "and compare whole rows, (preds == labels.bool()).all(dim=1) for exact match",
                helper_call.built_on,
            )
        )
    return sorted([*found, *added], key=lambda c: (c.line, c.column, c.kind)) if added else found


_KEPT_BY_THE_RULES = frozenset({"topk-accuracy", "argmax-metric", "class-index-metric", "single-label-helper"})
"""What a helper's body is reported for that no rule rewrites (an arg-max compared with the labels
may be, by ML021): its callers in other files stay single-label after the run."""
_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)


def reported_helpers(text: str) -> list[tuple[str, tuple[str, ...], int]]:
    """(name, methods, line) of each module-level function and class of ``text`` handed predictions
    or labels (``semantics.metrics.takes_predictions``) whose body this detector reports single-label
    over what it is given (``cal_acc(output, target)`` comparing its
    top-k with ``target``; ``AccuracyMeter`` whose ``update`` hands its parameters to such a helper):
    the methods that hold it (none for a function) and the line of the first construct. Another
    file of the run calling one computes that metric (``FileFacts.reported_helpers``)."""
    constructs = [(c.line, c.related_lines) for c in find_single_label(text) if c.kind in _KEPT_BY_THE_RULES]
    if not constructs:
        return []
    tree = parse_once(text)

    def reported_in(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
        if not takes_predictions(function):
            return 0  # an epoch loop given the model and a loader: its own metric is reported in its body
        return next((
            line for line, related in constructs
            if function.lineno < line <= (function.end_lineno or 0) and reads_a_parameter(function, {line, *related})
        ), 0)

    found = []
    for statement in tree.body:
        if isinstance(statement, _FUNCTION_NODES) and (line := reported_in(statement)):
            found.append((statement.name, (), line))
        elif isinstance(statement, ast.ClassDef):
            methods = [
                (item.name, line) for item in statement.body
                if isinstance(item, _FUNCTION_NODES) and (item.name == "__call__" or not item.name.startswith("_"))
                and (line := reported_in(item))
            ]
            if methods:
                found.append((statement.name, tuple(name for name, _ in methods), min(line for _, line in methods)))
    return found


def _with_run_helper_calls(found: list[SingleLabelConstruct], tree: ast.Module, text: str) -> list[SingleLabelConstruct]:
    """Add each call of a function, or of a method of an object built from a class, that another
    file of the run defines and reports single-label in its body (``prec1 = cal_acc(output, target)[0]``,
    ``running_accuracy.update(y_pred=..., y_true=...)``): the call is where this file computes that
    metric, and the finding names where the helper is reported."""
    facts = current_facts()
    if facts is None or not facts.reported_helpers:
        return found
    imports: dict[str, str] = {}
    for node in nodes_of(tree, ast.Import, ast.ImportFrom):
        if isinstance(node, ast.ImportFrom) and node.level:
            # ``from .utils import AccuracyMeter``: the run's modules are looked up by their last names
            imports.update({alias.asname or alias.name: ".".join(filter(None, (node.module, alias.name))) for alias in node.names})
        else:
            imports.update(import_bindings(node))

    def helper(func: ast.AST) -> tuple[tuple[str, ...], str] | None:
        root = func
        while isinstance(root, ast.Attribute):
            root = root.value
        if not (isinstance(root, ast.Name) and root.id in imports):
            return None  # a name of this file, not the other file's helper
        return facts.reported_helper(qualified_name(func, imports))

    objects: dict[str, tuple[str, tuple[str, ...], str]] = {}
    """``running_accuracy``/``self.acc`` -> (its class, the reported methods, where)."""
    for node in nodes_of(tree, ast.Assign):
        if isinstance(node.value, ast.Call) and (entry := helper(node.value.func)) is not None and entry[0]:
            for target in node.targets:
                key = target.id if isinstance(target, ast.Name) else _self_attribute(target)
                if key:
                    objects[key] = (ast.unparse(node.value.func), *entry)
    lines = {construct.line for construct in found}
    text_lines = text.splitlines()
    added = []
    for call in sorted(nodes_of(tree, ast.Call), key=lambda node: (node.lineno, node.col_offset)):
        func = call.func
        entry = helper(func)
        if entry is not None and not entry[0]:
            name, where = ast.unparse(func), entry[1]
            message = f"{name}() is single-label in its body (reported at {where}), and so is the metric it computes here"
        else:
            if _self_attribute(func) in objects or isinstance(func, ast.Name):
                key, method = func.id if isinstance(func, ast.Name) else _self_attribute(func), "__call__"
            elif isinstance(func, ast.Attribute):
                owner, method = func.value, func.attr
                key = owner.id if isinstance(owner, ast.Name) else _self_attribute(owner)
            else:
                continue
            built = objects.get(key) if key else None
            if built is None or method not in built[1]:
                continue
            name, where = f"{built[0]}.{method}", built[2]
            message = (f"{ast.unparse(func)}() scores with {name}(), single-label in its body (reported at {where}), "
                       "and so is the metric it computes here")
        if call.lineno in lines:
            continue
        lines.add(call.lineno)
        source_line = text_lines[call.lineno - 1] if call.lineno <= len(text_lines) else ""
        column = len(source_line.encode("utf-8")[: call.col_offset].decode("utf-8", errors="replace")) + 1
        added.append(SingleLabelConstruct(
            call.lineno, column, "single-label-helper", message,
            f"migrate {name}() as the finding at {where} says; then give it sigmoid outputs and multi-hot [B, C] labels here",
        ))
    return sorted([*found, *added], key=lambda c: (c.line, c.column, c.kind)) if added else found


def _self_attribute(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return f"self.{node.attr}"
    return ""
