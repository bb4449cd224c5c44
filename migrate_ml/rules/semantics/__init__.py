"""One analysis of what values mean, on CPython's ``ast``: meaning, not spelling.

``meanings`` is the lattice, ``tables`` the transfer functions of library calls (one row each),
``sources`` where meanings come from (models, datasets, Hugging Face predictions),
``summaries`` follows them through functions, methods and ``self.`` attributes, and ``sinks``
reports where a single-label meaning does harm. The safety net (ML100) adds what
:func:`find_sinks` proves to its own findings.
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
