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
    with pytest.raises(SourceError, match="cannot write: Permission denied; file left unchanged"):
        write_atomic(str(path), b"rewritten\n")
    assert path.read_bytes() == b"original\n"
    assert os.listdir(tmp_path) == ["keep.py"]


def test_fifo_and_devices_are_refused_without_reading(tmp_path):
    """A FIFO without a writer would block ``open``/``read`` forever, /dev/zero never ends."""
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    with pytest.raises(SourceError) as caught:
        read_source(str(fifo))
    assert str(caught.value) == f"{fifo}: error: not a regular file (a FIFO); only regular files are read"
    with pytest.raises(SourceError, match=r"^/dev/zero: error: not a regular file \(a character device\)"):
        read_source("/dev/zero")


def test_read_records_what_the_file_was(tmp_path):
    path = tmp_path / "train.py"
    path.write_bytes(b"x = 1\n")
    status = path.stat()
    stamp = read_source(str(path)).stamp
    assert (stamp.size, stamp.mtime_ns, stamp.inode) == (6, status.st_mtime_ns, status.st_ino)


@pytest.mark.parametrize("same_size_and_time", [False, True])
def test_a_file_changed_since_it_was_read_is_left_alone(tmp_path, same_size_and_time):
    path = tmp_path / "train.py"
    path.write_bytes(b"x = 1\n")
    stamp = read_source(str(path)).stamp
    status = path.stat()
    if same_size_and_time:
        # An edit that keeps size and modification time: only the content tells.
        path.write_bytes(b"x = 2\n")
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    else:
        path.write_bytes(b"x = 1  # edited in the editor\n")
    edited = path.read_bytes()
    with pytest.raises(SourceError) as caught:
        write_atomic(str(path), b"rewritten\n", stamp)
    assert str(caught.value) == f"{path}: error: changed while migrate-ml was running; run again"
    assert path.read_bytes() == edited
    assert os.listdir(tmp_path) == ["train.py"]


def test_a_file_replaced_or_deleted_since_it_was_read_is_not_written(tmp_path):
    path = tmp_path / "train.py"
    path.write_bytes(b"x = 1\n")
    stamp = read_source(str(path)).stamp
    path.unlink()
    with pytest.raises(SourceError, match="changed while migrate-ml was running"):
        write_atomic(str(path), b"rewritten\n", stamp)
    assert not path.exists()


def test_an_unchanged_file_is_written(tmp_path):
    path = tmp_path / "train.py"
    path.write_bytes(b"x = 1\n")
    write_atomic(str(path), b"rewritten\n", read_source(str(path)).stamp)
    assert path.read_bytes() == b"rewritten\n"


@pytest.mark.skipif(not hasattr(os, "chown") or os.geteuid() != 0, reason="giving a file to another user needs root")
def test_owner_and_group_are_kept(tmp_path):
    """Run as root (CI containers), a rewrite must not turn nobody:nogroup into root:root."""
    path = tmp_path / "train.py"
    path.write_bytes(b"old\n")
    os.chown(path, 65534, 65534)
    path.chmod(0o640)
    write_atomic(str(path), b"new\n", read_source(str(path)).stamp)
    status = path.stat()
    assert (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode)) == (65534, 65534, 0o640)
    assert path.read_bytes() == b"new\n"


def test_hard_links_are_not_split(tmp_path):
    path = tmp_path / "train.py"
    path.write_bytes(b"old text\n")
    other = tmp_path / "copy_of_train.py"
    os.link(path, other)
    inode = path.stat().st_ino
    write_atomic(str(path), b"new\n", read_source(str(path)).stamp)
    assert other.read_bytes() == path.read_bytes() == b"new\n"
    assert path.stat().st_ino == other.stat().st_ino == inode
    assert path.stat().st_nlink == 2
    assert sorted(os.listdir(tmp_path)) == ["copy_of_train.py", "train.py"]


def test_a_changed_multi_link_file_is_left_alone(tmp_path):
    path = tmp_path / "train.py"
    path.write_bytes(b"old\n")
    os.link(path, tmp_path / "link.py")
    stamp = read_source(str(path)).stamp
    path.write_bytes(b"edited meanwhile\n")
    with pytest.raises(SourceError, match="changed while migrate-ml was running"):
        write_atomic(str(path), b"new\n", stamp)
    assert path.read_bytes() == b"edited meanwhile\n"


def test_extended_attributes_are_kept(tmp_path):
    path = tmp_path / "train.py"
    path.write_bytes(b"old\n")
    try:
        os.setxattr(path, "user.origin", b"labelled by hand")
    except (AttributeError, OSError) as error:
        pytest.skip(f"no user extended attributes here: {error}")
    write_atomic(str(path), b"new\n", read_source(str(path)).stamp)
    assert os.getxattr(path, "user.origin") == b"labelled by hand"
    assert path.read_bytes() == b"new\n"


@pytest.mark.skipif(not hasattr(os, "chown") or os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_file_whose_owner_cannot_be_kept_is_written_in_place(tmp_path, monkeypatch):
    """Someone who may write a file but not give a new file its owner: the inode is reused."""
    path = tmp_path / "train.py"
    path.write_bytes(b"old\n")
    os.chown(path, 65534, 65534)
    inode = path.stat().st_ino

    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(source.os, "chown", refuse)
    write_atomic(str(path), b"a longer new text\n", read_source(str(path)).stamp)
    status = path.stat()
    assert path.read_bytes() == b"a longer new text\n"
    assert (status.st_ino, status.st_uid, status.st_gid) == (inode, 65534, 65534)
    assert os.listdir(tmp_path) == ["train.py"]


def test_a_read_only_file_is_not_replaced(tmp_path, monkeypatch):
    """Mode 0444 is respected like an editor would, although the folder allows a rename."""
    path = tmp_path / "train.py"
    path.write_bytes(b"old\n")
    path.chmod(0o444)
    monkeypatch.setattr(source.os, "access", lambda *args, **kwargs: False)  # what a non-root user is told
    with pytest.raises(SourceError, match="cannot write: Permission denied; file left unchanged"):
        write_atomic(str(path), b"new\n", read_source(str(path)).stamp)
    assert path.read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["train.py"]


NON_ROOT_REWRITE = """
import os, sys
import libcst
from migrate_ml.cli import build_parser, main
from migrate_ml.rules import load_rules

# Everything is imported before dropping privileges: the interpreter lives under /root.
build_parser()
load_rules()
libcst.parse_module("x = 1\\n")
os.setgid(65534)
os.setuid(65534)
sys.exit(main(["rewrite", sys.argv[1]]))
"""


@pytest.mark.skipif(not hasattr(os, "setuid") or os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_read_only_file_is_not_replaced_for_a_non_root_user():
    import shutil
    import subprocess
    import sys
    import tempfile

    folder = tempfile.mkdtemp(prefix="migrate-ml-readonly-")  # pytest's tmp_path is closed to other users
    try:
        os.chmod(folder, 0o777)  # the folder would let the user rename a new file over the old one
        path = os.path.join(folder, "train.py")
        original = b"import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n"
        with open(path, "wb") as handle:
            handle.write(original)
        os.chown(path, 65534, 65534)
        os.chmod(path, 0o444)
        done = subprocess.run([sys.executable, "-c", NON_ROOT_REWRITE, path], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"{path}:1:1: error: cannot write: Permission denied" in done.stdout
        with open(path, "rb") as handle:
            assert handle.read() == original
        assert os.listdir(folder) == ["train.py"]
    finally:
        shutil.rmtree(folder)


def test_a_writable_file_in_a_closed_folder_is_written_in_place(tmp_path, monkeypatch):
    path = tmp_path / "train.py"
    path.write_bytes(b"old\n")
    inode = path.stat().st_ino

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(source.tempfile, "mkstemp", refuse)
    write_atomic(str(path), b"new\n", read_source(str(path)).stamp)
    assert path.read_bytes() == b"new\n" and path.stat().st_ino == inode


def test_whole_file_errors_survive_pickling():
    """Outcomes cross from worker processes to the main one."""
    import pickle

    for error in (SourceError("a.py", "changed", line=None), SourceError("a.py", "bad", 3, 4)):
        copy = pickle.loads(pickle.dumps(error))
        assert (str(copy), copy.line, copy.column, copy.positioned) == (
            str(error), error.line, error.column, error.positioned
        )
