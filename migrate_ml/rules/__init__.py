"""Migration rules. Every public module in this package defines one rule.

Importing this package imports each rule module, and each ``Rule`` subclass registers itself
in :data:`RULES`. To add a rule, add a module here and a fixture pair under
``tests/fixtures/rules/``; nothing else needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil

from migrate_ml.rules._base import (
    RULES,
    Applicability,
    Fix,
    ImportEdit,
    NodeEdit,
    Rule,
    RuleContext,
    Violation,
)

__all__ = [
    "RULES",
    "Applicability",
    "Fix",
    "ImportEdit",
    "NodeEdit",
    "Rule",
    "RuleContext",
    "Violation",
    "load_rules",
]


def load_rules() -> dict[str, type[Rule]]:
    """Import every rule module (once) and return the registry."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return RULES
