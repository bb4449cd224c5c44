"""Every byte outside an edit is proven unchanged before a file is written (issue 21, item 4)."""

from __future__ import annotations

import pytest

from migrate_ml.engine import untouched
from migrate_ml.engine.source import SourceError, SourceFile

FORM_FEED_BEFORE_DEF = (
    b"import torch.nn as nn\n\n\x0cdef f(out, labels):\n    criterion = nn.CrossEntropyLoss()\n"
    b"    loss = criterion(out, labels)\n    return loss\n"
)


@pytest.mark.parametrize("mode", [(), ("--check",), ("--diff",)])
def test_a_form_feed_libcst_would_drop_refuses_the_file(tmp_path, monkeypatch, run_cli, mode):
    """LibCST drops a form feed before ``def`` when the function is regenerated."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ff.py").write_bytes(FORM_FEED_BEFORE_DEF)
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
    assert (tmp_path / "ff.py").read_bytes() == FORM_FEED_BEFORE_DEF
    if not mode:  # the other file, whose form feed LibCST keeps, is still rewritten
        assert b"BCEWithLogitsLoss" in (tmp_path / "ok.py").read_bytes()


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
