"""Reading and writing source files without losing anything the user had.

LibCST keeps the encoding (coding cookie or BOM) and the newline style of a module it parsed
from bytes, so the engine parses bytes and writes ``module.bytes`` back. This module adds what
LibCST does not do: precise errors for unreadable input, and writes that are as careful with
the user's only copy of a file as git is:

* only regular files are read (a FIFO or ``/dev/zero`` among the inputs would hang or never end);
* a file that changed after it was read (an editor saved it, ``git checkout`` ran) is left alone;
* a file without write permission bits (mode 0444) is not replaced, even by root and even
  though its folder would allow a rename;
* a write that fails leaves the original bytes, and a failed write in place proves that by
  reading them back;
* the new file keeps the old one's mode, owner, group and extended attributes; a file with
  several hard links is written in place, so that every link sees the new text.
"""

from __future__ import annotations

import codecs
import errno
import io
import os
import stat
import tempfile
import tokenize
from dataclasses import dataclass, field

CHANGED_WHILE_RUNNING = "changed while migrate-ml was running; run again"


_CONTROL_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r"}


def shown_path(path: str) -> str:
    """``path`` as the text reports print it: a control character (a line break or a tab in a
    file name) is written as its C escape, ``\\n``, so that every report line stays one line
    and its fields stay in place; any other name is printed as it is."""
    if not any(ord(c) < 0x20 or c == "\x7f" for c in path):
        return path
    return "".join(
        _CONTROL_ESCAPES.get(c) or (f"\\{ord(c):03o}" if ord(c) < 0x20 or c == "\x7f" else c) for c in path
    )


class SourceError(Exception):
    """A file that cannot be processed. ``str()`` is the one-line ``path:line:col: error: …``.

    An error about the whole file rather than a place in it (``line=None``) reads
    ``path: error: …``; ``line`` and ``column`` are then 1 for reports that need a position.
    """

    def __init__(self, path: str, message: str, line: int | None = 1, column: int = 1) -> None:
        self.path = path
        self.positioned = line is not None
        self.line = line if line is not None else 1
        self.column = column
        self.message = message
        where = f"{shown_path(path)}:{self.line}:{column}" if self.positioned else shown_path(path)
        super().__init__(f"{where}: error: {message}")

    def __reduce__(self):
        # Rebuild from the fields: the default reduction would call __init__ with one argument.
        return (SourceError, (self.path, self.message, self.line if self.positioned else None, self.column))


@dataclass(frozen=True)
class FileStamp:
    """What a file was when it was read; a write goes ahead only while it still matches.

    The content is kept and compared byte for byte rather than through a hash: it is the
    ``data`` the source holds anyway, and no collision can fool an equality test.
    """

    size: int
    mtime_ns: int
    inode: int
    device: int
    content: bytes = field(repr=False)

    @classmethod
    def of(cls, status: os.stat_result, data: bytes) -> "FileStamp":
        return cls(status.st_size, status.st_mtime_ns, status.st_ino, status.st_dev, data)


@dataclass(frozen=True)
class SourceFile:
    path: str
    data: bytes
    text: str
    encoding: str = "utf-8"
    """The codec ``data`` was decoded with; ``utf-8-sig`` when it starts with a BOM."""
    stamp: FileStamp | None = None
    """The file as read from disk (None for stdin and derived texts)."""


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str:
    kind = next((f" ({name})" for is_kind, name in _KINDS if is_kind(mode)), "")
    return f"not a regular file{kind}; only regular files are read"


def read_source(path: str) -> SourceFile:
    """Read and decode ``path``; raise :class:`SourceError` naming the position of any problem.

    The file is opened without blocking and checked to be a regular file before a byte is read,
    so a FIFO without a writer or an endless device is refused instead of hanging the run.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SourceError(path, "no such file") from None
    except IsADirectoryError:
        raise SourceError(path, "is a directory") from None
    except PermissionError:
        if os.path.isdir(path):  # a folder a walk could not list (runner.discover yields it)
            raise SourceError(path, "cannot read folder: permission denied; no file in it was checked", line=None) from None
        raise SourceError(path, "permission denied") from None
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            os.close(descriptor)
            if stat.S_ISDIR(mode):
                raise SourceError(path, "is a directory")
            raise SourceError(path, _not_regular(mode), line=None)
        with open(descriptor, "rb") as handle:
            data = handle.read()
            status = os.fstat(descriptor)
    except OSError as exc:
        raise SourceError(path, f"cannot read: {exc.strerror or exc}") from None
    source = decode_source(path, data)
    return SourceFile(source.path, source.data, source.text, source.encoding, FileStamp.of(status, data))


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


def write_atomic(path: str, data: bytes, expected: FileStamp | None = None) -> None:
    """Replace ``path`` by ``data``, keeping what the file had; raise before touching it otherwise.

    With ``expected`` (the stamp of the read the new text was computed from), the file must be
    unchanged (size, modification time, inode and content) right before it is replaced;
    if not, :class:`SourceError` ``changed while migrate-ml was running`` is raised and the
    file is left alone. A file without any write permission bit (``chmod a-w``) is not replaced,
    even by root and even where the folder would allow the rename, as editors refuse it; nor is
    one this user may not write.

    The new text goes to a temporary file in the same folder, which gets the old file's mode,
    owner, group and extended attributes, so the final ``os.replace`` is a rename on one file
    system: a reader sees the old file or the new one, never half of either. A symbolic link is
    followed, so the link stays a link. Where the rename would lose something (a file with
    several hard links would be split from its other names; an owner, group or attribute that
    this user may not set on a new file; a folder this user may not create the temporary file
    in), the file is written in place instead (see :func:`_write_in_place`).

    Any failure raises :class:`SourceError` ``cannot write: …; file left unchanged`` once the
    file is known to hold its original bytes (see :func:`_write_in_place` for the one case
    where they could not be put back).
    """
    try:
        _write(path, data, expected)
    except OSError as error:
        raise SourceError(path, f"cannot write: {error.strerror or error}; file left unchanged") from None


def _write(path: str, data: bytes, expected: FileStamp | None) -> None:
    target = os.path.realpath(path)
    try:
        status = os.stat(target)
    except FileNotFoundError:
        if expected is None:
            raise
        raise SourceError(path, CHANGED_WHILE_RUNNING, line=None) from None  # deleted or moved meanwhile
    if not stat.S_ISREG(status.st_mode):
        raise SourceError(path, _not_regular(status.st_mode), line=None)
    # The mode bits first: os.access says yes to root for every file.
    if not status.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(target, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    if status.st_nlink > 1:
        _write_in_place(path, target, data, expected)
        return
    folder = os.path.dirname(target) or "."
    try:
        descriptor, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".migrate-ml.tmp", dir=folder
        )
    except PermissionError:  # a writable file in a folder this user may not add files to
        _write_in_place(path, target, data, expected)
        return
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, stat.S_IMODE(status.st_mode))
        if not _copy_owner_and_attributes(target, temporary, status):
            os.unlink(temporary)
            _write_in_place(path, target, data, expected)
            return
        _check_unchanged(path, target, expected)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _copy_owner_and_attributes(source: str, destination: str, status: os.stat_result) -> bool:
    """Give ``destination`` the owner, group and extended attributes of ``source``.

    False when this user may not (a non-root user replacing a file owned by someone else): the
    caller then writes in place rather than change who owns the file.
    """
    created = os.stat(destination)
    if (created.st_uid, created.st_gid) != (status.st_uid, status.st_gid):
        try:
            os.chown(destination, status.st_uid, status.st_gid)
        except PermissionError:
            return False
        # chown clears set-user/group-ID bits: put the mode back.
        os.chmod(destination, stat.S_IMODE(status.st_mode))
    try:
        names = os.listxattr(source)
    except (AttributeError, OSError):
        return True  # no extended attributes on this platform or file system
    for name in names:
        try:
            os.setxattr(destination, name, os.getxattr(source, name))
        except OSError:
            return False
    return True


def _check_unchanged(path: str, target: str, expected: FileStamp | None) -> None:
    if expected is None:
        return
    try:
        status = os.stat(target)
        same = (status.st_size, status.st_mtime_ns, status.st_ino, status.st_dev) == (
            expected.size, expected.mtime_ns, expected.inode, expected.device
        )
        if same:
            with open(target, "rb") as handle:
                same = handle.read() == expected.content
    except FileNotFoundError:
        same = False
    if not same:
        raise SourceError(path, CHANGED_WHILE_RUNNING, line=None)


def _write_in_place(path: str, target: str, data: bytes, expected: FileStamp | None) -> None:
    """Overwrite ``target``'s bytes through its own inode: links, owner and attributes stay.

    Not atomic, so the risky part comes first and touches no byte the file has: it grows to the
    new length (space reserved with ``posix_fallocate``, then the new tail appended), which is
    where a full disk or a file-size limit (``ulimit -f``) shows. Only then are the old bytes
    overwritten. If anything fails, the old bytes are put back and read again to prove it; if
    even that fails (the disk died), they are saved to a file in the temporary folder and the
    error names it.
    """
    descriptor = os.open(target, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_unchanged(path, target, expected)
        original = _read_all(descriptor)
        _check_size_limit(max(len(data), len(original)))
        try:
            if len(data) > len(original):
                _reserve(descriptor, len(original), len(data))
                _write_all(descriptor, data[len(original):], len(original))
            _write_all(descriptor, data[: len(original)], 0)
            os.ftruncate(descriptor, len(data))
            os.fsync(descriptor)
        except BaseException as error:
            _restore(path, descriptor, original, error)
            raise
    finally:
        os.close(descriptor)


def _check_size_limit(size: int) -> None:
    """Refuse up front a write past the file-size limit (``ulimit -f``): writes stop at it."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        return
    if limit != resource.RLIM_INFINITY and size > limit:
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))


def _reserve(descriptor: int, start: int, end: int) -> None:
    """Allocate the bytes from ``start`` to ``end`` so that writing them cannot run out of space."""
    try:
        os.posix_fallocate(descriptor, start, end - start)
    except AttributeError:
        return  # not on this platform: writing the tail shows the same errors, later
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise  # out of space, over the file-size limit, an I/O error: nothing was overwritten yet


def _read_all(descriptor: int) -> bytes:
    chunks = []
    offset = 0
    while chunk := os.pread(descriptor, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _write_all(descriptor: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(descriptor, view, offset)
        view, offset = view[written:], offset + written


def _restore(path: str, descriptor: int, original: bytes, cause: BaseException) -> None:
    """Put ``original`` back through ``descriptor`` and prove it by reading it again.

    Raises :class:`SourceError` when the bytes cannot be proven back, after saving them
    elsewhere: the caller's own error would otherwise claim a file is unchanged that is not.
    """
    try:
        current = _read_all(descriptor)
        if current[: len(original)] != original:
            # Only the bytes that differ: under a file-size limit, rewriting the whole file
            # would fail past the limit although nothing there changed.
            start = len(os.path.commonprefix([current, original]))
            end = len(original) - len(os.path.commonprefix([current[: len(original)][::-1], original[::-1]]))
            _write_all(descriptor, original[start:max(start, end)], start)
        os.ftruncate(descriptor, len(original))
        os.fsync(descriptor)
        if _read_all(descriptor) == original:
            return
        failure = "the bytes read back differ"
    except OSError as error:
        failure = error.strerror or str(error)
    reason = getattr(cause, "strerror", None) or type(cause).__name__
    try:
        with tempfile.NamedTemporaryFile(prefix="migrate-ml-original-", suffix=os.path.splitext(path)[1], delete=False) as saved:
            saved.write(original)
        kept = f"its bytes are saved in {saved.name}"
    except OSError as error:
        kept = f"nor saved elsewhere ({error.strerror or error})"
    raise SourceError(
        path, f"cannot write: {reason}, and the original could not be put back ({failure}); {kept}", line=None
    ) from None
