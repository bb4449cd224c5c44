"""Reading and writing source files without losing anything the user had.

LibCST keeps the encoding (coding cookie or BOM) and the newline style of a module it parsed
from bytes, so the engine parses bytes and writes ``module.bytes`` back. This module adds what
LibCST does not do: precise errors for unreadable input and atomic, mode-preserving writes.
"""

from __future__ import annotations

import codecs
import io
import os
import tempfile
import tokenize
from dataclasses import dataclass


class SourceError(Exception):
    """A file that cannot be processed. ``str()`` is the one-line ``path:line:col: error: …``."""

    def __init__(self, path: str, message: str, line: int = 1, column: int = 1) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{path}:{line}:{column}: error: {message}")

    def __reduce__(self):
        # Rebuild from the fields: the default reduction would call __init__ with one argument.
        return (SourceError, (self.path, self.message, self.line, self.column))


@dataclass(frozen=True)
class SourceFile:
    path: str
    data: bytes
    text: str
    encoding: str = "utf-8"
    """The codec ``data`` was decoded with; ``utf-8-sig`` when it starts with a BOM."""


def read_source(path: str) -> SourceFile:
    """Read and decode ``path``; raise :class:`SourceError` naming the position of any problem."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise SourceError(path, "no such file") from None
    except IsADirectoryError:
        raise SourceError(path, "is a directory") from None
    except PermissionError:
        raise SourceError(path, "permission denied") from None
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror or exc}") from None
    return decode_source(path, data)


def decode_source(path: str, data: bytes) -> SourceFile:
    """Decode bytes the way Python would (PEP 263 cookie, BOM), with positioned errors."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        message = str(getattr(exc, "msg", exc))
        if not message.startswith("invalid or missing encoding declaration"):
            raise SourceError(path, message, _cookie_line(data)) from None
        # No cookie and undecodable UTF-8 in the first lines: decoding names the exact byte.
        encoding = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, data, encoding, exc) from None
    except LookupError:
        raise SourceError(path, f"unknown encoding {encoding!r}", _cookie_line(data)) from None
    return SourceFile(path=path, data=data, text=text, encoding=encoding)


def _decode_error(path: str, data: bytes, encoding: str, exc: UnicodeDecodeError) -> SourceError:
    # utf-8-sig reports offsets after the BOM it stripped.
    start = exc.start + (len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0)
    line_start = data.rfind(b"\n", 0, start) + 1
    column = len(data[line_start:start].decode(encoding, errors="replace").lstrip("\ufeff")) + 1
    line = data.count(b"\n", 0, start) + 1
    return SourceError(path, f"cannot decode byte 0x{data[start]:02x} as {encoding}", line, column)


def _cookie_line(data: bytes) -> int:
    """The line of the coding cookie that tokenize rejected (1 or 2)."""
    first_line_end = data.find(b"\n")
    if first_line_end != -1 and b"coding" not in data[:first_line_end] and b"coding" in data[first_line_end:]:
        return 2
    return 1


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically, keeping its permission bits.

    The temporary file lives in the same folder so the final ``os.replace`` is a rename on one
    file system: a reader sees the old file or the new one, never half of either. A symbolic
    link is followed, so the link stays a link.
    """
    target = os.path.realpath(path)
    folder = os.path.dirname(target) or "."
    mode = os.stat(target).st_mode & 0o7777
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(target)}.", suffix=".migrate-ml.tmp", dir=folder
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
