"""The harness package's imports go one way: the framework modules use the core, never the entry module or
each other, and the core uses no framework module (reading the sources, nothing is imported)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "reference" / "harness"
ENTRY = {"run", "__main__"}
FRAMEWORKS = {"loops", "lightning", "hugging_face", "accelerate"}


def _package_imports(module: str) -> set[str]:
    """The modules of the package (``from .x import``, ``from . import x``) that ``module`` imports."""
    found = set()
    for node in ast.walk(ast.parse((HARNESS / f"{module}.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module] if node.module else [alias.name for alias in node.names])
    return found


def test_every_module_is_entry_framework_or_core():
    modules = {path.stem for path in HARNESS.glob("*.py")} - {"__init__"}
    assert ENTRY | FRAMEWORKS <= modules


@pytest.mark.parametrize("module", sorted(FRAMEWORKS))
def test_a_framework_module_imports_only_the_core(module):
    assert not _package_imports(module) & (ENTRY | FRAMEWORKS)


@pytest.mark.parametrize("module", sorted(p.stem for p in HARNESS.glob("*.py")
                                          if p.stem not in ENTRY | FRAMEWORKS | {"__init__"}))
def test_the_core_imports_no_framework_module_and_not_the_entry(module):
    assert not _package_imports(module) & (ENTRY | FRAMEWORKS)
