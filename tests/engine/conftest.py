"""Throw-away rules for engine tests, registered for one test only."""

from __future__ import annotations

from typing import Callable

import libcst as cst
import pytest

from migrate_ml.engine import runner
from migrate_ml.rules import RULES, Applicability, Fix, NodeEdit, Rule


@pytest.fixture
def make_rule():
    """``make_rule(code, apply)`` registers a rule that fixes every ``legacy_call(...)`` call.

    ``apply`` maps the updated ``Call`` node to its replacement. The rule is unregistered after
    the test, and the per-process transformer cache is emptied around it so that neither a
    cached transformer without the rule nor one with it leaks between tests.
    """
    made: list[str] = []
    runner._worker_transformers.clear()

    def make(
        code: str,
        apply: Callable[[cst.Call], cst.BaseExpression] | None,
        *,
        applicability: Applicability = Applicability.SAFE,
        needs_threshold: bool = False,
        message: str = "legacy_call is deprecated",
    ) -> type[Rule]:
        class LegacyCallRule(Rule):
            name = f"test-{code.lower()}"
            summary = rationale = example_before = example_after = "test rule"
            triggers = ("legacy_call",)

            def visit_Call(self, node: cst.Call) -> None:
                if isinstance(node.func, cst.Name) and node.func.value == "legacy_call":
                    fix = None
                    if apply is not None:
                        fix = Fix(
                            edits=(NodeEdit(node, apply),),
                            applicability=applicability,
                            needs_threshold=needs_threshold,
                        )
                    self.report(node, message, suggestion="call modern_call instead", fix=fix)

        LegacyCallRule.code = code
        RULES[code] = LegacyCallRule
        made.append(code)
        return LegacyCallRule

    yield make
    for code in made:
        RULES.pop(code, None)
    runner._worker_transformers.clear()

