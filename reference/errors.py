"""The runtime's input errors: each one is a single line naming the file (and line) at fault.

The command line prints ``error: <message>`` and exits 2 for any of them; nothing here is an
internal error. They subclass ``ValueError`` so callers that caught ``ValueError`` keep working.
"""

from __future__ import annotations

import os


class InputError(ValueError):
    """Bad user input (a file, an option, a device); ``str(err)`` is one line."""


class DatasetFormatError(InputError):
    """A labels file, classes file or image referenced by one is malformed or missing.

    ``str(err)`` is ``"<path>:<line>: <message>"`` (``line`` is 1-based; 0 means the file as a
    whole), ready to print as a one-line error. The parts are ``err.path``, ``err.line``,
    ``err.detail``.
    """

    def __init__(self, path: str | os.PathLike, line: int, detail: str):
        self.path = str(path)
        self.line = line
        self.detail = detail
        super().__init__(f"{self.path}:{line}: {detail}" if line else f"{self.path}: {detail}")


class ImageReadError(InputError):
    """An image that cannot be decoded (empty, truncated, not an image, a decompression bomb).

    Raised inside DataLoader workers too: torch re-raises it in the main process as
    ``ImageReadError(<worker traceback text>)``, so the constructor keeps only the last line.
    """

    def __init__(self, message: str):
        lines = [line for line in str(message).strip().splitlines() if line.strip()]
        last = lines[-1] if lines else str(message)
        prefix = f"{type(self).__module__}.{type(self).__name__}: "
        super().__init__(last[len(prefix):] if last.startswith(prefix) else last)

    def __reduce__(self):  # picklable across worker processes with its one-line message
        return type(self), (str(self),)


class CheckpointError(InputError):
    """A checkpoint or thresholds file that is missing, corrupt, or not one of ours."""
