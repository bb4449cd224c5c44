"""Running the verify harness so that nothing it starts outlives it, and its output stays small.

The harness runs user code, which may start processes of its own (a ``Popen(['sleep', ...])``,
a forked data-loading loop) or print without end. Three guarantees:

* the harness starts a session of its own (``start_new_session``), and every process left in
  that session is killed when the harness finishes, times out, or when this process is
  interrupted (Ctrl-C), terminated (SIGTERM) or loses its terminal (SIGHUP); the harness itself
  runs user code in a PID namespace where it can (see ``migrate_ml_reference.harness.contain``), and
  :func:`kill_marked` sweeps what carries the run's marker elsewhere;
* its stdout and stderr are read as they come and only the last ``TAIL_BYTES`` are kept, so a
  run that prints gigabytes costs a fixed amount of memory;
* a run that passes its deadline is reported as timed out, never waited for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

TAIL_BYTES = 64 * 1024
READ_CHUNK = 64 * 1024
REAP_WAIT_S = 5.0
KILL_PASSES = 20
KILL_PASS_PAUSE_S = 0.05
MARKER_VARIABLE = "MIGRATE_ML_VERIFY_RUN"


@dataclass(frozen=True)
class Contained:
    returncode: int | None
    """None when the run was killed at its deadline."""
    tail: str
    """The last ``TAIL_BYTES`` of stdout and stderr together."""
    timed_out: bool


class _Tail:
    """Reads a pipe to its end on a thread, keeping only the last ``limit`` bytes."""

    def __init__(self, pipe, limit: int) -> None:
        self._pipe = pipe
        self._limit = limit
        self._kept = bytearray()
        self._thread = threading.Thread(target=self._read, name="verify-output", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self._pipe.read1(READ_CHUNK), b""):
            self._kept += chunk
            if len(self._kept) > 2 * self._limit:
                del self._kept[: len(self._kept) - self._limit]

    def text(self, wait: float) -> str:
        self._thread.join(wait)
        kept = bytes(self._kept[-self._limit:])
        return kept.decode("utf-8", errors="replace")


def run_contained(argv: list[str], *, cwd: str, env: dict[str, str], timeout: float,
                  tail_bytes: int = TAIL_BYTES) -> Contained:
    """Run ``argv`` in a new session; kill the session when it ends, times out or we are stopped."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    tail = _Tail(process.stdout, tail_bytes)
    timed_out = False
    previous = _terminate_as_interrupt()
    try:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
    finally:
        kill_session(process.pid)
        process.wait()
        _restore(previous)
    # The pipe closes once every process holding it is gone; a process that left the session
    # (setsid) and kept the pipe open must not hold the report back.
    text = tail.text(REAP_WAIT_S)
    return Contained(returncode=None if timed_out else process.returncode, tail=text, timed_out=timed_out)


def _kill_all(pids) -> None:
    """SIGKILL each process; one already gone (or not ours to kill) is skipped."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kill_session(session: int) -> None:
    """SIGKILL every process of the session led by ``session`` (its process groups included).

    A process that forks while a pass runs can leave a child the pass did not see, so passes repeat
    until one finds no live member (a few at most).
    """
    for _ in range(KILL_PASSES):
        members = _session_members(session)
        _kill_all(members)
        try:
            os.killpg(session, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if not members:
            return
        time.sleep(KILL_PASS_PAUSE_S)


def _session_members(session: int) -> list[int]:
    """Processes whose session id is ``session`` (Linux ``/proc``; elsewhere only its group is killed)."""
    members = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2:].split()
        # A zombie is already dead: it only waits for its parent to reap it.
        if len(fields) > 3 and int(fields[3]) == session and fields[0] != b"Z":
            members.append(int(entry))
    return members


def kill_marked(marker: str, variable: str = MARKER_VARIABLE) -> None:
    """SIGKILL this user's processes whose environment holds ``marker`` (``variable=marker``).

    Everything the harness starts inherits the run's marker, also a process that left the
    harness's session (``setsid``): this sweep finds it where no PID namespace killed it.
    """
    for _ in range(KILL_PASSES):
        found = marked_processes(f"{variable}={marker}")
        _kill_all(found)
        if not found:
            return
        time.sleep(KILL_PASS_PAUSE_S)


def marked_processes(assignment: str) -> list[int]:
    """This user's processes, other than this one, whose environment holds ``assignment`` (``NAME=value``)."""
    needle = assignment.encode()
    return [pid for pid in _own_processes() if pid != os.getpid() and needle in _environment(pid)]


def _own_processes() -> list[int]:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    uid = os.getuid()
    pids = []
    for entry in entries:
        try:
            if entry.isdigit() and os.stat(f"/proc/{entry}").st_uid == uid:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def _environment(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return handle.read().split(b"\0")
    except OSError:
        return []


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
"""Signals that unwind like Ctrl-C while the harness runs: SIGHUP is a closed terminal."""


def _terminate_as_interrupt():
    """While the harness runs, SIGTERM and SIGHUP unwind like Ctrl-C so that the session is killed first."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(_signum, _frame):
        raise KeyboardInterrupt

    return [(number, signal.signal(number, interrupt)) for number in STOP_SIGNALS]


def _restore(previous) -> None:
    for number, handler in previous or ():
        signal.signal(number, handler)
