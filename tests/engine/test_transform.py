"""One file through the engine: fixes, safety levels, suppressions, threshold, refusals."""

from __future__ import annotations

import libcst as cst
import pytest

from migrate_ml.engine.source import SourceError, decode_source
from migrate_ml.engine.transform import (
    FileTransformer,
    Settings,
    choose_threshold_name,
    parse_suppressions,
    select_rules,
)
from migrate_ml.rules import Applicability, load_rules


def rename(call: cst.Call) -> cst.Call:
    return call.with_changes(func=cst.Name("modern_call"))


def thresholded(call: cst.Call) -> cst.BaseExpression:
    """``legacy_call(z)`` -> ``modern_call(z) > THRESHOLD`` (the engine inserts the constant)."""
    return cst.Comparison(
        left=rename(call),
        comparisons=[cst.ComparisonTarget(operator=cst.GreaterThan(), comparator=cst.Name("THRESHOLD"))],
    )


def run(rule, text: str, **settings):
    transformer = FileTransformer([rule], Settings(**settings))
    return transformer.transform(decode_source("t.py", text.encode()))


def test_safe_fix_is_applied_once(make_rule):
    rule = make_rule("ML901", rename)
    result = run(rule, "x = legacy_call(1)  # keep me\n")
    assert result.new_text == "x = modern_call(1)  # keep me\n"
    assert [(c.code, c.line, c.column) for c in result.changes] == [("ML901", 1, 5)]
    again = run(rule, result.new_text)
    assert not again.changed and not again.changes


def test_unsafe_fix_is_reported_unless_enabled(make_rule):
    rule = make_rule("ML902", rename, applicability=Applicability.UNSAFE)
    reported = run(rule, "x = legacy_call(1)\n")
    assert not reported.changed
    assert [(f.code, f.applicability) for f in reported.findings_before] == [("ML902", "unsafe")]
    fixed = run(rule, "x = legacy_call(1)\n", unsafe_fixes=True)
    assert fixed.new_text == "x = modern_call(1)\n"
    assert [c.applicability for c in fixed.changes] == ["unsafe"]


def test_rule_without_fix_is_a_finding_with_its_suggestion(make_rule):
    rule = make_rule("ML903", None)
    result = run(rule, "a = 1\nx = legacy_call(1)\n")
    assert not result.changed
    (finding,) = result.findings_before
    assert (finding.line, finding.column, finding.applicability) == (2, 5, "display-only")
    assert finding.suggestion == "call modern_call instead"


@pytest.mark.parametrize(
    "comment, silenced",
    [
        ("# migrate-ml: ignore", True),
        ("# migrate-ml: ignore[ML904]", True),
        ("# migrate-ml: ignore[ml904]", True),
        ("# migrate-ml: ignore[ML9]", True),
        ("# migrate-ml: ignore[ML001, ML904]", True),
        ("# migrate-ml:ignore[]", True),
        ("# migrate-ml: ignore[ML001]", False),
        ("# unrelated comment", False),
    ],
)
def test_suppression_comment(make_rule, comment, silenced):
    rule = make_rule("ML904", rename)
    result = run(rule, f"x = legacy_call(1)  {comment}\ny = legacy_call(2)\n")
    first_line = result.new_text.splitlines()[0]
    assert ("legacy_call" in first_line) is silenced
    assert "modern_call(2)" in result.new_text  # other lines are still fixed
    assert not any(f.line == 1 for f in result.findings_before)  # silenced means not reported


def test_suppression_on_last_line_of_a_multiline_call(make_rule):
    rule = make_rule("ML905", rename)
    text = "x = legacy_call(\n    1,\n)  # migrate-ml: ignore[ML905]\n"
    assert not run(rule, text).changed


def test_suppression_lines_are_counted_like_python_after_a_form_feed(make_rule):
    # str.splitlines() treats \x0c as a line break; Python and LibCST do not.
    rule = make_rule("ML906", rename)
    text = "a = 1\n\x0c\nx = legacy_call(1)  # migrate-ml: ignore\ny = legacy_call(2)\n"
    result = run(rule, text)
    assert "legacy_call(1)" in result.new_text and "modern_call(2)" in result.new_text
    assert parse_suppressions(text) == {3: frozenset({"*"})}


def test_threshold_constant_is_inserted_after_docstring_and_imports(make_rule):
    rule = make_rule("ML907", thresholded, needs_threshold=True)
    text = '"""Doc."""\nimport torch\n\n\ndef f(z):\n    return legacy_call(z)\n'
    result = run(rule, text, threshold=0.3)
    lines = result.new_text.splitlines()
    assert lines[:3] == ['"""Doc."""', "import torch", ""]
    assert lines[3].startswith("THRESHOLD = 0.3  # ")
    assert "return modern_call(z) > THRESHOLD" in result.new_text
    compile(result.new_text, "t.py", "exec")
    assert not run(rule, result.new_text).changed


def test_threshold_constant_keeps_crlf(make_rule):
    rule = make_rule("ML908", thresholded, needs_threshold=True)
    result = run(rule, "import torch\r\np = legacy_call(z)\r\n")
    assert result.new_data.count(b"\r\n") == result.new_data.count(b"\n")
    assert b"THRESHOLD = 0.5" in result.new_data


def test_threshold_name_avoids_an_existing_meaning(make_rule):
    rule = make_rule("ML909", lambda call: thresholded(call).with_changes(
        comparisons=[cst.ComparisonTarget(operator=cst.GreaterThan(), comparator=cst.Name("MULTILABEL_THRESHOLD"))]
    ), needs_threshold=True)
    result = run(rule, "THRESHOLD = 5  # patience epochs\np = legacy_call(z)\n")
    assert "MULTILABEL_THRESHOLD = 0.5" in result.new_text
    assert "THRESHOLD = 5  # patience epochs" in result.new_text


@pytest.mark.parametrize(
    "text, name",
    [
        ("x = 1\n", "THRESHOLD"),
        ("THRESHOLD = 0.25  # mine\n", "THRESHOLD"),
        ("THRESHOLD = 1e-05\n", "THRESHOLD"),
        ("THRESHOLD = 5\n", "MULTILABEL_THRESHOLD"),
        ("def f(THRESHOLD): pass\n", "MULTILABEL_THRESHOLD"),
        ("THRESHOLD = 5\nMULTILABEL_THRESHOLD = 'x'\nMULTILABEL_THRESHOLD_2 = 0.5\n", "MULTILABEL_THRESHOLD_2"),
        ("THRESHOLD = 5\nMULTILABEL_THRESHOLD = 'x'\n", "MULTILABEL_THRESHOLD_2"),
    ],
)
def test_choose_threshold_name(text, name):
    assert choose_threshold_name(text) == name


def test_findings_are_positioned_in_original_and_in_rewritten_text(make_rule):
    fixing = make_rule("ML910", thresholded, needs_threshold=True)
    reporting = make_rule("ML911", None)
    transformer = FileTransformer([fixing, reporting], Settings())
    source = b"import torch\np = legacy_call(z)\nq = legacy_call(w)  # migrate-ml: ignore[ML910]\n"
    result = transformer.transform(decode_source("t.py", source))
    # The call on line 2 is rewritten away, so its finding is not shown even in the original
    # text (--diff/--check): it describes code the user never gets. Line 3 stays open.
    assert [f.line for f in result.findings_before] == [3]
    after_line = next(i for i, line in enumerate(result.new_text.splitlines(), 1) if line.startswith("q = "))
    assert after_line > 3
    assert [f.line for f in result.findings_after] == [after_line]


def test_rewritten_code_that_does_not_parse_is_refused(make_rule):
    rule = make_rule("ML912", lambda call: call.with_changes(func=cst.Name("def")))
    with pytest.raises(SourceError, match="does not parse"):
        run(rule, "x = legacy_call(1)\n")


def test_fixes_that_never_settle_are_refused(make_rule):
    # Wrapping the call in another legacy_call gives the rule new work on every pass.
    rule = make_rule("ML913", lambda call: cst.Call(func=cst.Name("legacy_call"), args=[cst.Arg(call)]))
    with pytest.raises(SourceError, match="still apply after"):
        run(rule, "x = legacy_call(1)\n")


def test_syntax_error_is_positioned(make_rule):
    rule = make_rule("ML914", rename)
    with pytest.raises(SourceError) as caught:
        run(rule, "x = legacy_call(1)\ny = (\n")
    assert caught.value.line >= 2
    assert str(caught.value).startswith("t.py:")
    assert ": error: syntax error" in str(caught.value)


def test_files_without_triggers_are_not_parsed(make_rule):
    # The pre-filter is what keeps the tool fast; the price is that a syntax error in a file
    # no rule could change is not reported (documented in docs/cli.md).
    rule = make_rule("ML915", rename)
    result = run(rule, "y = (\n")
    assert not result.changed and not result.findings_before


def test_a_rules_note_on_code_its_fix_rewrote_survives_the_rewrite():
    """ML001 converts the criterion and notes that some uses were not followed; once written,
    the criterion is BCE and ML001 no longer fires, but the note must still reach the user,
    positioned in the rewritten text."""
    source = b"import torch.nn as nn\n\ncriterion = nn.CrossEntropyLoss()\n\n\ndef make():\n    return criterion\n"
    transformer = FileTransformer(select_rules(load_rules(), ("ML001",), ()), Settings())
    result = transformer.transform(decode_source("t.py", source))
    assert "nn.BCEWithLogitsLoss()" in result.new_text
    assert [(f.code, f.line) for f in result.findings_after] == [("ML001", 3)]
    assert "not every use" in result.findings_after[0].message


def test_lines_a_finding_names_move_with_it():
    # THRESHOLD is inserted above the criterion: the use ML001 could not follow and the arg-max
    # an ML100 comparison is built on are named where they are in each text (the original for
    # --check, the written file after a rewrite)
    text = (
        "import torch\nimport torch.nn as nn\n\ncriterion = nn.CrossEntropyLoss()\nfit(model, criterion)\n\n\n"
        "def step(model, x, y):\n    logits = model(x)\n    loss = criterion(logits, y)\n"
        "    pred = logits.argmax(1)\n    return loss, (pred == y).float().mean()\n\n\n"
        "def score(model, x, y):\n    y_pred, _ = model(x)\n    top = y_pred.argmax(1, keepdim=True)\n"
        "    return top.eq(y.view_as(top)).sum()\n"
    )
    transformer = FileTransformer(select_rules(load_rules(), (), ()), Settings())
    result = transformer.transform(decode_source("t.py", text.encode()))
    old, new = text.splitlines(), result.new_text.splitlines()
    [before] = [f for f in result.findings_before if f.code == "ML001"]
    [after] = [f for f in result.findings_after if f.code == "ML001"]
    assert "(line 5: fit(model, criterion))" in before.message and old[4] == "fit(model, criterion)"
    assert "(line 7: fit(model, criterion))" in after.message and new[6] == "fit(model, criterion)"
    [before] = [f for f in result.findings_before if f.code == "ML100"]
    [after] = [f for f in result.findings_after if f.code == "ML100"]
    assert before.message.endswith("(see ML020 at line 17)") and "argmax" in old[16] and before.line == 18
    assert after.message.endswith("(see ML020 at line 19)") and "argmax" in new[18] and after.line == 20
