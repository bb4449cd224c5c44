"""Reading with positioned errors, and atomic writes that keep what the file had."""

from __future__ import annotations

import os
import stat

import pytest

from migrate_ml.engine import source
from migrate_ml.engine.source import SourceError, decode_source, read_source, write_atomic


@pytest.mark.parametrize(
    "data, line, column, message",
    [
        (b"x = 1\ny = '\xff'\n", 2, 6, "cannot decode byte 0xff as utf-8"),
        (b"\xef\xbb\xbfx = 1\nab\xff\n", 2, 3, "cannot decode byte 0xff as utf-8-sig"),
        (b"x = '\xc3\xa9\xff'\n", 1, 7, "cannot decode byte 0xff as utf-8"),
        (b"# coding: klingon\nx = 1\n", 1, 1, "unknown encoding: klingon"),
        (b"#!/usr/bin/env python\n# coding: klingon\n", 2, 1, "unknown encoding: klingon"),
    ],
)
def test_decode_errors_name_the_position(data, line, column, message):
    with pytest.raises(SourceError) as caught:
        decode_source("bad.py", data)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert str(caught.value) == f"bad.py:{line}:{column}: error: {message}"


def test_cookie_and_bom_are_honoured():
    latin = decode_source("l.py", b"# -*- coding: latin-1 -*-\ns = '\xe9'\n")
    assert latin.text.endswith("s = '\u00e9'\n") and latin.encoding == "iso-8859-1"
    bom = decode_source("b.py", b"\xef\xbb\xbfs = 1\n")
    assert bom.text == "s = 1\n" and bom.encoding == "utf-8-sig"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(SourceError, match=r":1:1: error: no such file$"):
        read_source(str(tmp_path / "missing.py"))
    with pytest.raises(SourceError, match="is a directory"):
        read_source(str(tmp_path))


def test_permission_denied_on_read(tmp_path, monkeypatch):
    """Tests run as root, for whom chmod 000 does not stop a read; ``os.open`` is made to refuse."""
    path = tmp_path / "locked.py"
    path.write_text("x = 1\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(source.os, "open", refuse)
    with pytest.raises(SourceError, match=r"locked.py:1:1: error: permission denied"):
        read_source(str(path))


def test_write_keeps_mode_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "script.py"
    path.write_bytes(b"old\n")
    path.chmod(0o751)
    write_atomic(str(path), b"new\r\n")
    assert path.read_bytes() == b"new\r\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o751
    assert os.listdir(tmp_path) == ["script.py"]


def test_write_follows_a_symlink_and_keeps_it(tmp_path):
    target = tmp_path / "real.py"
    target.write_bytes(b"old\n")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    write_atomic(str(link), b"new\n")
    assert link.is_symlink() and target.read_bytes() == b"new\n"


def test_failed_write_keeps_the_original(tmp_path, monkeypatch):
    """A failing rename (disk full, permission denied) leaves the old file and no debris."""
    path = tmp_path / "keep.py"
    path.write_bytes(b"original\n")

    def refuse(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(source.os, "replace", refuse)
    with pytest.raises(PermissionError):
        write_atomic(str(path), b"rewritten\n")
    assert path.read_bytes() == b"original\n"
    assert os.listdir(tmp_path) == ["keep.py"]
