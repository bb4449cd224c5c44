"""Golden fixture pairs for every rule: ``<case>.in.py`` -> ``<case>.out.py``.

A case without ``.out.py`` must be left alone. Each case is also checked for idempotency and
for compiling, and its expected findings (``# expect: CODE@LINE`` comments, lines counted in
the rewritten text) must match exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from migrate_ml.engine.source import decode_source
from migrate_ml.engine.transform import FileTransformer, Settings, select_rules
from migrate_ml.rules import load_rules

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rules"
CASES = sorted(FIXTURES.glob("*/*.in.py"))
EXPECT = re.compile(r"#\s*expect(?:-note)?:\s*(.+)$", re.MULTILINE)
"""``# expect:`` findings stay open in the rewritten file (a re-scan finds them again);
``# expect-note:`` ones are notes the rewrite makes about code its own fix changed, which only
the rewrite itself can report."""
OPTIONS = re.compile(r"#\s*options:\s*(.+)$", re.MULTILINE)


def _transformer(text: str) -> FileTransformer:
    unsafe = False
    threshold = 0.5
    for match in OPTIONS.finditer(text):
        for option in match.group(1).split():
            if option == "--unsafe-fixes":
                unsafe = True
            elif option.startswith("--threshold="):
                threshold = float(option.split("=", 1)[1])
    settings = Settings(unsafe_fixes=unsafe, threshold=threshold)
    return FileTransformer(select_rules(load_rules(), (), ()), settings)


def _expected_findings(text: str) -> list[str]:
    found = []
    for match in EXPECT.finditer(text):
        found.extend(part.strip() for part in match.group(1).split(","))
    return sorted(found)


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name[:-6]}")
def test_fixture(case: Path) -> None:
    before = case.read_bytes()
    expected_path = case.with_name(case.name[: -len(".in.py")] + ".out.py")
    expected = expected_path.read_bytes() if expected_path.exists() else before
    transformer = _transformer(before.decode())

    result = transformer.transform(decode_source(str(case), before))
    assert result.new_text == expected.decode(), "golden output differs"
    compile(result.new_text, str(case), "exec")

    again = transformer.transform(decode_source(str(case), result.new_data))
    assert again.new_text == result.new_text, "second run changed the file"

    findings = sorted(f"{f.code}@{f.line}" for f in result.findings_after)
    assert findings == _expected_findings(expected.decode())
