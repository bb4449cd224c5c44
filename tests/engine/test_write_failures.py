"""Failed writes leave the user's original bytes, proven by reading them back (issue 21, item 1 and 3)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from migrate_ml.engine import source
from migrate_ml.engine.source import SourceError, read_source, write_atomic

ORIGINAL = b"import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\nloss = criterion(out, labels)\n" + b"# pad\n" * 400


def _linked(tmp_path):
    """A file with a second hard link: written in place, the risky path."""
    path = tmp_path / "f.py"
    path.write_bytes(ORIGINAL)
    os.link(path, tmp_path / "g.py")
    return path


@pytest.mark.parametrize("linked", [True, False], ids=["in-place", "rename"])
def test_a_write_past_the_file_size_limit_leaves_the_original(tmp_path, linked):
    """`ulimit -f 2` used to leave 2,048 bytes of new text cut mid-line."""
    resource = pytest.importorskip("resource")
    path = _linked(tmp_path) if linked else tmp_path / "f.py"
    path.write_bytes(ORIGINAL)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    done = subprocess.run([sys.executable, "-m", "migrate_ml", "rewrite", "f.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, preexec_fn=limit)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "f.py:1:1: error: cannot write: File too large; file left unchanged" in done.stdout
    assert "0 files rewritten" in done.stdout
    assert path.read_bytes() == ORIGINAL
    assert sorted(os.listdir(tmp_path)) == (["f.py", "g.py"] if linked else ["f.py"])


@pytest.mark.parametrize("code", [errno.EIO, errno.EFBIG, errno.EDQUOT])
def test_any_fallocate_error_stops_before_a_byte_changes(tmp_path, monkeypatch, code):
    path = _linked(tmp_path)

    def fail(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(source.os, "posix_fallocate", fail)
    with pytest.raises(SourceError, match=f"cannot write: {os.strerror(code)}; file left unchanged"):
        write_atomic(str(path), ORIGINAL + b"# longer\n", read_source(str(path)).stamp)
    assert path.read_bytes() == ORIGINAL


def _failing_pwrite(monkeypatch, fail_from: int, fail_until: int):
    """``os.pwrite`` that writes half of its first call, then fails calls fail_from..fail_until."""
    real = os.pwrite
    calls = []

    def pwrite(descriptor, data, offset):
        calls.append(offset)
        if len(calls) == 1:
            return real(descriptor, bytes(data[: len(data) // 2]), offset)
        if fail_from <= len(calls) <= fail_until:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(descriptor, data, offset)

    monkeypatch.setattr(source.os, "pwrite", pwrite)


def test_a_write_that_fails_half_way_is_undone_and_verified(tmp_path, monkeypatch):
    path = _linked(tmp_path)
    _failing_pwrite(monkeypatch, fail_from=2, fail_until=2)
    with pytest.raises(SourceError, match="cannot write: Input/output error; file left unchanged"):
        write_atomic(str(path), b"x" * 100, read_source(str(path)).stamp)
    assert path.read_bytes() == ORIGINAL


def test_an_original_that_cannot_be_put_back_is_saved_and_named(tmp_path, monkeypatch):
    """The error must never claim "left unchanged" for a file it could not restore."""
    path = _linked(tmp_path)
    _failing_pwrite(monkeypatch, fail_from=2, fail_until=10**6)
    monkeypatch.setattr(source.tempfile, "tempdir", str(tmp_path / "saved"))
    (tmp_path / "saved").mkdir()
    with pytest.raises(SourceError) as raised:
        write_atomic(str(path), b"x" * 100, read_source(str(path)).stamp)
    message = str(raised.value)
    assert "left unchanged" not in message
    assert "the original could not be put back (Input/output error); its bytes are saved in" in message
    [saved] = os.listdir(tmp_path / "saved")
    assert (tmp_path / "saved" / saved).read_bytes() == ORIGINAL


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o000])
def test_a_file_without_write_bits_is_not_replaced_even_by_root(tmp_path, mode):
    """os.access says yes to root: the mode bits decide, as editors do."""
    path = tmp_path / "train.py"
    path.write_bytes(b"old\n")
    stamp = read_source(str(path)).stamp if mode else None
    path.chmod(mode)
    with pytest.raises(SourceError, match="cannot write: Permission denied; file left unchanged"):
        write_atomic(str(path), b"new\n", stamp)
    path.chmod(0o644)
    assert path.read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["train.py"]
