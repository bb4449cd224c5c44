"""docs/rules.md is generated from the rules; a stale copy fails here."""

import subprocess
import sys
from pathlib import Path

import pytest

from migrate_ml.rules import load_rules

REPO = Path(__file__).resolve().parent.parent


def test_rules_doc_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_rules_doc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("code", sorted(load_rules()))
def test_every_rule_has_a_fixture_pair(code: str) -> None:
    folder = REPO / "tests" / "fixtures" / "rules" / code
    assert list(folder.glob("*.in.py")), f"{code} has no fixtures in {folder}"
