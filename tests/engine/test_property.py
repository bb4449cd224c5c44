"""Property tests on generated programs (hypothesmith): never crash, output parses, run twice = once.

The example counts are modest so CI stays fast; raise ``MIGRATE_ML_PROPERTY_EXAMPLES`` for a
longer local search.
"""

from __future__ import annotations

import os

import hypothesmith
import libcst as cst
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from migrate_ml.engine.source import SourceError, decode_source
from migrate_ml.engine.transform import FileTransformer, Settings, select_rules
from migrate_ml.rules import load_rules

EXAMPLES = int(os.environ.get("MIGRATE_ML_PROPERTY_EXAMPLES", "30"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

TRIGGERS = (
    "import torch.nn as nn\n"
    "import torch.nn.functional as F\n"
    "criterion = nn.CrossEntropyLoss()\n"
    "loss = criterion(z, y)\n"
    "other = F.cross_entropy(z, y)\n"
    "pred = z.argmax(dim=1)\n"
    "p = z.softmax(dim=-1)\n"
)


def _transformer(unsafe: bool) -> FileTransformer:
    return FileTransformer(select_rules(load_rules(), (), ()), Settings(unsafe_fixes=unsafe))


def _compiles(text: str) -> bool:
    try:
        compile(text, "<generated>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _check(source_text: str, unsafe: bool) -> None:
    transformer = _transformer(unsafe)
    try:
        result = transformer.transform(decode_source("generated.py", source_text.encode("utf-8")))
    except SourceError as error:
        # Only input LibCST itself cannot parse, or cannot print back byte for byte (a rewrite
        # would lose bytes no fix touches), may be refused; the rules must cope with the rest.
        try:
            printed = cst.parse_module(source_text.encode("utf-8")).bytes
        except Exception:
            return
        if "LibCST does not reproduce it byte for byte" in error.message and printed != source_text.encode("utf-8"):
            return
        pytest.fail(f"refused a program LibCST parses: {error}")
    if result.new_data != source_text.encode("utf-8"):
        # What is written must parse. An unchanged file may be one the pre-filters settled
        # without LibCST, which cannot parse everything CPython compiles ('#\\\n\\\r\n').
        cst.parse_module(result.new_data)
    if _compiles(source_text):
        assert _compiles(result.new_text)
    again = transformer.transform(decode_source("generated.py", result.new_data))
    assert again.new_data == result.new_data, "a second run changed the output"


@PROPERTY
@given(hypothesmith.from_grammar(), st.booleans())
@example("#\\\n\\\r\n", False)
def test_generated_programs(source_text, unsafe):
    _check(source_text, unsafe)


@PROPERTY
@given(hypothesmith.from_grammar(), st.booleans(), st.booleans())
def test_generated_programs_with_trigger_snippets(source_text, before, unsafe):
    """Splices loss and prediction code in so that the rules actually fire on odd surroundings."""
    if before and "__future__" not in source_text:
        spliced = TRIGGERS + source_text
    else:
        spliced = source_text.rstrip("\\\n ") + "\n" + TRIGGERS
    _check(spliced, unsafe)


@settings(PROPERTY, max_examples=max(1, EXAMPLES // 2))  # from_node is the slow generator
@given(hypothesmith.from_node(), st.booleans())
def test_generated_syntax_trees_with_trigger_snippets(source_text, unsafe):
    _check(source_text + "\n" + TRIGGERS, unsafe)
