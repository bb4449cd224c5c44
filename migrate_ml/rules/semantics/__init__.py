"""The label-semantics analysis under every rule: what values mean, not how they are spelled.

On CPython's ``ast``: ``meanings`` is the lattice, ``tables`` the library calls as data (one row
each), ``sources`` where meanings come from (models, datasets, Hugging Face predictions),
``summaries`` follows them through functions, methods and ``self.`` attributes, ``sinks``
reports where a single-label meaning does harm, and ``sequences``/``tasks`` hold the file facts
that switch the rules off. ``residue`` is the safety net (ML100, ``verify``'s static pass): it
tracks names with ``single_label_values`` and adds what :func:`find_sinks` proves.

As LibCST metadata for the rules that edit: ``flow`` (losses), ``predictions``,
``prediction_provider`` and ``prediction_uses`` (classifier outputs, arg-max predictions and where
they go), with ``rewrites``, ``log_softmax``, ``class_index`` and ``shapes`` beside them.

Rules import this package; nothing here imports a rule module.
"""

from __future__ import annotations

import ast

from migrate_ml.rules.semantics.sinks import KINDS, Sink, Sinks
from migrate_ml.rules.semantics.summaries import Analysis

__all__ = ["KINDS", "Sink", "find_sinks"]


def find_sinks(tree: ast.Module, text: str) -> list[Sink]:
    """Every single-label meaning ``tree`` lets reach a sink."""
    analysis = Analysis(tree, text)
    sinks = Sinks(analysis, text)

    def on_statement(statement: ast.stmt) -> None:
        sinks(statement)
        function = analysis.function
        if isinstance(statement, ast.Return) and function is not None and function.name == "forward":
            sinks.forward_return(statement)

    analysis.run(on_statement)
    return sinks.finish()
