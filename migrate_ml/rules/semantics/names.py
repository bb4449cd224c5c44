"""Names as a file's imports bind them, on CPython's ``ast``: the one local-name -> import map.

The safety net, the meaning analysis, the project pre-pass and ``verify``'s ``Trainer`` reader
each resolve ``nn.CrossEntropyLoss`` to ``torch.nn.CrossEntropyLoss`` through the file's
imports; they differ only in which import statements they read (module level, every one) and in
what order, so each passes its own statements and the binding is decided here once.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable


def import_bindings(node: ast.AST) -> dict[str, str]:
    """Local name -> what it was imported as, for one absolute import statement (``import torch.nn
    as nn``: ``nn`` -> ``torch.nn``; ``import os.path``: ``os`` -> ``os``; ``from torch import nn``:
    ``nn`` -> ``torch.nn``); empty for any other node, relative imports included."""
    if isinstance(node, ast.Import):
        bindings = {}
        for alias in node.names:
            top = alias.name.partition(".")[0]
            bindings[alias.asname or top] = alias.name if alias.asname else top
        return bindings
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return {alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names}
    return {}


def imported_names(statements: Iterable[ast.AST]) -> dict[str, str]:
    """Local name -> what it was imported as, over ``statements`` in order (a later import of a
    name wins)."""
    imported: dict[str, str] = {}
    for node in statements:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported.update(import_bindings(node))
    return imported


def qualified_name(node: ast.AST, imports: dict[str, str]) -> str:
    """``torch.nn.CrossEntropyLoss`` for ``nn.CrossEntropyLoss`` after ``import torch.nn as nn``
    (``imports``: local name -> what it was imported as); empty for anything but a dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([imports.get(node.id, node.id), *reversed(parts)])
