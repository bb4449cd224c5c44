"""``migrate-ml rules`` and ``migrate-ml explain``."""

from __future__ import annotations

import json

from migrate_ml.rules import load_rules


def test_rules_lists_every_rule_with_its_safety(run_cli):
    code, out, _ = run_cli("rules")
    assert code == 0
    for rule_code, rule in load_rules().items():
        assert rule_code in out and rule.name in out


def test_rules_json(run_cli):
    code, out, _ = run_cli("rules", "--output-format", "json")
    listed = json.loads(out)
    assert code == 0
    assert {entry["code"] for entry in listed} == set(load_rules())
    assert all(set(entry) == {"code", "name", "safety", "summary"} for entry in listed)


def test_explain_prints_why_an_example_and_the_safety(run_cli):
    rule = load_rules()["ML001"]
    for query in ("ML001", "ml001", rule.name):
        code, out, _ = run_cli("explain", query)
        assert code == 0
        assert out.startswith("# ML001 cross-entropy-loss")
        assert f"**Fix safety:** {rule.applicability.value}" in out
        assert rule.example_before.splitlines()[0] in out and rule.example_after.splitlines()[0] in out


def test_explain_unknown_rule_is_a_usage_error(run_cli):
    code, _, err = run_cli("explain", "ML999")
    assert code == 2 and "unknown rule 'ML999'" in err
