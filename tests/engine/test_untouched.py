"""Every byte outside an edit is proven unchanged before a file is written (issue 21, item 4)."""

from __future__ import annotations

import pytest

from migrate_ml.engine import untouched
from migrate_ml.engine.source import SourceError, SourceFile

FORM_FEED_AFTER_A_SPACE = (
    b"import torch.nn as nn\n\n \x0cdef f(out, labels):\n    criterion = nn.CrossEntropyLoss()\n"
    b"    loss = criterion(out, labels)\n    return loss\n"
)
"""A form feed after the indent (Python resets the indent count there): LibCST drops it when it prints the def."""


@pytest.mark.parametrize("mode", [(), ("--check",), ("--diff",)])
def test_a_form_feed_libcst_would_drop_refuses_the_file(tmp_path, monkeypatch, run_cli, mode):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ff.py").write_bytes(FORM_FEED_AFTER_A_SPACE)
    (tmp_path / "ok.py").write_bytes(b"import torch.nn as nn\n\x0c\ncriterion = nn.CrossEntropyLoss()\n")
    code, out, err = run_cli("rewrite", *mode, "ff.py", "ok.py")
    assert code == 2
    assert (
        "ff.py:3:1: error: rewriting would change this line, which no fix edits "
        "(LibCST does not reproduce it byte for byte); file left unchanged"
    ) in out + err
    assert [line for line in (out + err).splitlines() if ": error: " in line] == [
        line for line in (out + err).splitlines() if line.startswith("ff.py:3:1: error: ")
    ]
    assert (tmp_path / "ff.py").read_bytes() == FORM_FEED_AFTER_A_SPACE
    if not mode:  # the other file, whose form feed LibCST keeps, is still rewritten
        assert b"BCEWithLogitsLoss" in (tmp_path / "ok.py").read_bytes()


FORM_FEEDS_STARTING_STATEMENTS = (
    b'"""A page break in a docstring\n\x0cstays in the string."""\n\x0cimport torch.nn as nn\n\n\n'
    b"\x0c\x0cdef f(out, labels):\n\x0c    criterion = nn.CrossEntropyLoss()\n    loss = criterion(out, labels)\n"
    b'    text = """\n\x0c    kept"""\n\x0c    return loss, criterion\n'
)


def test_form_feeds_that_start_statement_lines_are_kept(tmp_path, monkeypatch, run_cli):
    """Python ignores form feeds at the start of a line; LibCST drops them from the statements it prints.
    They are set aside before parsing and put back on the same statements, an edited one included, and
    a finding on such a line counts them in its column."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ff.py").write_bytes(FORM_FEEDS_STARTING_STATEMENTS)
    code, out, err = run_cli("rewrite", "--check", "ff.py")
    assert code == 1 and "ff.py:7:18: ML001 not every use of this criterion could be followed" in out + err
    code, out, err = run_cli("rewrite", "ff.py")
    assert code == 0 and "ff.py:7:18: ML001" in out + err
    assert (tmp_path / "ff.py").read_bytes() == FORM_FEEDS_STARTING_STATEMENTS.replace(
        b"nn.CrossEntropyLoss()", b"nn.BCEWithLogitsLoss()").replace(b"criterion(out, labels)", b"criterion(out, labels.float())")


def test_form_feeds_put_back_where_the_rewrite_means_something_else_are_refused():
    aside, feeds = untouched.set_form_feeds_aside(SourceFile("x.py", b"a = 1\n\x0cb = 2\n", "a = 1\n\x0cb = 2\n"))
    assert aside.text == "a = 1\nb = 2\n" and feeds.lines == {2: "\x0c"}
    assert untouched.put_form_feeds_back("x.py", feeds, "a = 1\nb = 3\n") == ("a = 1\n\x0cb = 3\n", {2: 1})
    with pytest.raises(SourceError, match="a form feed starts this line") as raised:
        untouched.put_form_feeds_back("x.py", feeds, "a = 1\n")  # the statement and every line after it gone
    assert raised.value.line == 2
    with pytest.raises(SourceError, match="a form feed starts this line"):
        untouched.put_form_feeds_back("x.py", feeds, 'a = """\nb = 2"""\n')  # its line is now inside a string


def test_a_changed_line_outside_the_edits_is_refused():
    old = "a = 1\nb = f(x)\n\x0cc = 3\n"
    new = "a = 1\nb = f(x.float())\nc = 3\n"
    with pytest.raises(SourceError, match="rewriting would change this line") as raised:
        untouched.outside_edits("x.py", old, new, [(2, 2)])
    assert raised.value.line == 3
    untouched.outside_edits("x.py", old, new, [(2, 3)])


def test_inserted_lines_and_edits_inside_the_spans_pass():
    old = "import a\n\nb = f(x)\nc = 3\n"
    new = "import a\nimport b\n\nT = 0.5\n\nb = f(x.float())\nc = 3\n"
    untouched.outside_edits("x.py", old, new, [(3, 3)])


def test_an_import_line_may_be_rewritten_by_an_import_edit():
    untouched.outside_edits("x.py", "from a import b\nx = 1\n", "from a import b, c\nx = 1\n", [(1, 1)])
    with pytest.raises(SourceError):
        untouched.outside_edits("x.py", "from a import b\nx = 1\n", "from a import b, c\nx = 1\n", [])


@pytest.mark.parametrize(
    "tail",
    [b"\n\n    ", b"\n  \n\n\t", b"\r\n\r\n   ", b"\r\r  ", b"\r", b"\r\r\r", b"\n\x0c\n  ", b"\n    "],
    ids=["blank-lines", "tabs", "crlf", "cr", "cr-end", "cr-blank-lines", "form-feed", "one-line"],
)
def test_the_whitespace_at_an_end_without_a_newline_is_kept_byte_for_byte(tmp_path, monkeypatch, run_cli, tail):
    """LibCST prints ``"x\\n\\n    "`` as ``"x\\n    "`` and ``"x\\r\\r"`` as ``"x\\r"``: the tail is taken
    off before the parse and put back."""
    monkeypatch.chdir(tmp_path)
    line_break = tail[: 2 if tail.startswith(b"\r\n") else 1]
    body = b"import torch.nn as nn\n\ncriterion = nn.CrossEntropyLoss()".replace(b"\n", line_break)
    (tmp_path / "t.py").write_bytes(body + tail)
    code, out, err = run_cli("rewrite", "t.py")
    assert code == 0, out + err
    rewritten = (tmp_path / "t.py").read_bytes()
    assert rewritten == body.replace(b"CrossEntropyLoss", b"BCEWithLogitsLoss") + tail
    code, out, err = run_cli("rewrite", "t.py")
    assert code == 0 and (tmp_path / "t.py").read_bytes() == rewritten


def test_the_tail_is_split_off_only_when_the_file_does_not_end_in_a_newline():
    head, tail = untouched.split_blank_tail(SourceFile("t.py", b"x = 1\n\n  \n  ", "x = 1\n\n  \n  "))
    assert (head.data, head.text, tail) == (b"x = 1", "x = 1", b"\n\n  \n  ")
    head, tail = untouched.split_blank_tail(SourceFile("t.py", b"\xef\xbb\xbfx\r\r", "x\r\r", "utf-8-sig"))
    assert (head.data, head.text, tail) == (b"\xef\xbb\xbfx", "x", b"\r\r")
    for text in ("x = 1\n\n  \n", "x = 1\r\n", "x = 1"):
        source = SourceFile("t.py", text.encode(), text)
        assert untouched.split_blank_tail(source) == (source, b"")
