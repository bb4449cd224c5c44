"""The layout of ``migrate_ml/rules``: rule modules beside one analysis package, imported one way.

Rules import ``rules/semantics``; a semantics module that imported a rule (or the engine,
``verify`` or the CLI) would make the analysis depend on what it serves, and an import cycle
the first time that rule imported it back. The engine still finds the safety net by its
module's path when it names the rule of an internal error.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import migrate_ml.rules.semantics
from migrate_ml.engine.runner import process_file
from migrate_ml.engine.transform import Settings
from migrate_ml.rules.semantics import residue

SEMANTICS = Path(migrate_ml.rules.semantics.__file__).parent
_FORBIDDEN = re.compile(r"^migrate_ml\.(?:rules\.ml\d{3}_\w+|engine|verify|commands|cli)(?:\.|$)")


def _imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.relative_to(SEMANTICS)}: relative import"
            modules.add(node.module or "")
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def test_semantics_never_imports_a_rule_or_what_uses_the_rules() -> None:
    offending = {
        f"{path.relative_to(SEMANTICS)}: {module}"
        for path in sorted(SEMANTICS.rglob("*.py"))
        for module in _imports(path)
        if _FORBIDDEN.match(module)
    }
    assert not offending


def test_the_old_helper_modules_are_gone_not_shimmed() -> None:
    """One place per concern: an import of a pre-``semantics`` path fails instead of re-exporting."""
    old = ("predictions", "flow", "single_label_values", "still_single_label")
    assert [name for name in old if importlib.util.find_spec(f"migrate_ml.rules._{name}") is not None] == []


def test_a_crash_in_the_safety_net_is_blamed_on_ml100_at_its_new_path(tmp_path, monkeypatch) -> None:
    """The engine names the rule of an internal error by the module it happened in."""

    def crash(text: str) -> bool:
        raise KeyError("boom")

    monkeypatch.setattr(residue, "could_contain_single_label", crash)
    path = tmp_path / "train.py"
    path.write_text("import torch\n\npreds = torch.softmax(model(x), dim=1)\n")
    outcome = process_file(str(path), Settings(), write=False)
    assert str(outcome.error).startswith(f"{path}: error: internal error in ML100: KeyError: 'boom'")
