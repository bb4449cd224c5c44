"""The static work on one file (read, locate, re-scan) in a forked child, as ``rewrite`` parses.

LibCST's native parser can crash the process on some inputs (a stack overflow on thousands of
nested brackets), and the metadata passes can exhaust Python's recursion limit on very deep
expressions. Either must cost only its own file: the crash is one ``static: parse`` row and the
other files of the run are still checked.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
from typing import Any, Callable


class ChildCrashed(Exception):
    """The forked child died from a signal (``reason`` names it) before it answered."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def in_child(work: Callable[[], Any]) -> Any:
    """``work()``'s result, computed in a forked child; ``ChildCrashed`` when the child dies.

    Where processes cannot fork (Windows) ``work`` runs here, without the crash containment.
    """
    if not hasattr(os, "fork"):
        return work()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(reader)
            faulthandler.disable()
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            try:
                data = pickle.dumps((True, work()))
            except BaseException as error:  # re-raised in the parent, as if the work ran there
                try:
                    data = pickle.dumps((False, error))
                except Exception:  # an exception that does not pickle: its type and text do
                    data = pickle.dumps((False, RuntimeError(f"{type(error).__name__}: {error}")))
            with os.fdopen(writer, "wb") as pipe:
                pipe.write(data)
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if not data:
        try:
            reason = signal.Signals(-code).name if code < 0 else f"exit status {code}"
        except ValueError:
            reason = f"signal {-code}"
        raise ChildCrashed(reason)
    finished, value = pickle.loads(data)
    if not finished:
        raise value
    return value
