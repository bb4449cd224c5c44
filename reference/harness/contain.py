"""Containment of the files' runs: no network, a process group and a deadline per file, nothing left
running when the harness or ``migrate-ml`` ends, and a row for a file whose run was lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Callable

from . import budget
from .core import row

KILL_GRACE_S = 5.0


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000


def block_network() -> None:
    """Cut this process (and all it starts) off the network.

    Where the kernel allows it, a new network namespace: no interface but a loopback that is
    down, so no connection of any kind can be made, whatever library makes it. As root that
    is ``unshare(CLONE_NEWNET)``; otherwise inside a user namespace mapping our own uid/gid.
    Where neither is permitted (macOS, containers without namespace rights), socket
    connections made through the ``socket`` module are refused, which code calling ``_socket``
    or the C library directly can bypass (see docs/verify.md).
    """
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "WANDB_MODE"):
        os.environ[name] = "offline" if name == "WANDB_MODE" else "1"
    if _unshare_network():
        return

    def refuse(*_args, **_kwargs):
        raise OSError("network access is disabled while migrate-ml verify runs user code")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]


def _unshare_network() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        unshare = libc.unshare
    except (OSError, AttributeError):
        return False
    if unshare(CLONE_NEWNET) == 0:
        return True
    uid, gid = os.getuid(), os.getgid()
    if unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return False
    try:  # keep our own uid/gid inside the user namespace, so file access is unchanged
        with open("/proc/self/setgroups", "w") as handle:
            handle.write("deny")
        with open("/proc/self/uid_map", "w") as handle:
            handle.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as handle:
            handle.write(f"{gid} {gid} 1")
    except OSError:
        pass  # unmapped ids read as nobody; the network is cut off all the same
    return True


_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_RUNNING_GROUPS: list[int] = []
"""The process group of the file running now (killed if the harness must stop at once)."""


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Linux: get ``signum`` when the parent dies, so a killed ``migrate-ml`` leaves nothing behind."""
    _prctl(PR_SET_PDEATHSIG, signum)


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value) == 0
    except (OSError, AttributeError):
        return False


def supervise(scratch: str) -> None:
    """Make every process user code starts die with this run, however ``migrate-ml`` ends.

    Where the kernel allows it (Linux, in the user namespace :func:`block_network` entered),
    the harness moves into a PID namespace of its own: this process forks the namespace's first
    process, which runs the harness, and stays outside as its supervisor. When that first
    process ends, the kernel kills everything left in the namespace, a ``setsid`` double-forked
    daemon included. The supervisor gets SIGTERM when ``migrate-ml`` dies (even by SIGKILL,
    through ``PR_SET_PDEATHSIG``): it kills the namespace and removes the scratch folder that
    ``migrate-ml`` could not. Elsewhere the harness becomes a child subreaper, so orphans of
    user code stay its descendants, and ``migrate-ml`` sweeps what carries the run's marker.
    """
    def scratch_gone(_signum, _frame):
        for group in _RUNNING_GROUPS:
            _kill_group(group)
        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(128 + signal.SIGTERM)

    for number in _STOP_SIGNALS:
        signal.signal(number, scratch_gone)
    die_with_parent(signal.SIGTERM)
    if not _unshare(CLONE_NEWPID):
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # PID 1 of the namespace: the harness itself
        for number in _STOP_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        die_with_parent(signal.SIGKILL)
        return

    def namespace_gone(_signum, _frame):
        os.kill(pid, signal.SIGKILL)
        scratch_gone(_signum, _frame)

    for number in _STOP_SIGNALS:
        signal.signal(number, namespace_gone)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _unshare(flags: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).unshare(flags) == 0
    except (OSError, AttributeError):
        return False


def write_json(path: str, value: Any) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle)
    os.replace(temporary, path)


def unit_paths(spec: dict, index: int) -> tuple[str, str, str]:
    folder = os.path.join(spec["scratch"], f"unit{index}")
    os.makedirs(folder, exist_ok=True)
    return folder, os.path.join(folder, "rows.json"), os.path.join(folder, "stack.txt")


def run_isolated(spec: dict, index: int, unit: dict, child: Callable[[dict, int], None]) -> list[dict]:
    """The rows of ``spec["units"][index]``, which ``child(spec, index)`` writes from a forked child (a fresh
    subprocess where ``fork`` is missing) in a process group of its own, under the file's deadline."""
    folder, rows_path, stack_path = unit_paths(spec, index)
    timeout = float(spec["timeout"])
    if hasattr(os, "fork"):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                for number in _STOP_SIGNALS:  # the supervisor's handlers are not the user's
                    signal.signal(number, signal.SIG_DFL)
                os.setpgid(0, 0)  # the file's own process group: whatever it starts dies with it
                die_with_parent()
                limit_memory(spec.get("memory"))
                child(spec, index)
            finally:
                os._exit(0)
        _RUNNING_GROUPS[:] = [pid]
        started_wall, started = time.time(), time.monotonic()
        while True:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > budget.parent_deadline(folder, started_wall, started, timeout, KILL_GRACE_S):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.05)
        _kill_group(pid)
    else:
        process = subprocess.Popen([sys.executable, "-m", "migrate_ml_reference.harness", sys.argv[1], "--unit",
                                    str(index)], cwd=folder, start_new_session=True)
        try:
            process.wait(timeout + KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(process.pid)
        process.wait()
    if os.path.exists(rows_path):
        with open(rows_path, encoding="utf-8") as handle:
            return json.load(handle)
    return [_lost_child(unit, stack_path, timeout, budget.read_progress(folder))]


def limit_memory(limit: int | None) -> None:
    """``--memory``: the data segment (heap and private mappings, the runtime's own included).

    RLIMIT_DATA rather than RLIMIT_AS: address space reserved but never written (CUDA's, torch's
    allocator arenas) does not count, so the limit measures memory the file's code can fill.
    Past it an allocation fails: a ``MemoryError`` or torch's "can't allocate memory" in the call.
    """
    if not limit:
        return
    import resource

    kind = getattr(resource, "RLIMIT_DATA", None) or getattr(resource, "RLIMIT_AS", None)
    if kind is None:
        return
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(kind, (limit, hard if hard != resource.RLIM_INFINITY else limit))
    except (ValueError, OSError):
        pass  # a limit below what the process already holds: the run reports its own failure


def _kill_group(group: int) -> None:
    """Kill what the file's code left running (a Popen, a forked loop) once its run is over."""
    if not hasattr(os, "killpg"):
        return
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _lost_child(unit: dict, stack_path: str, timeout: float, progress: dict) -> dict:
    stack = ""
    if os.path.exists(stack_path):
        with open(stack_path, encoding="utf-8", errors="replace") as handle:
            stack = handle.read()
    path = unit["path"]
    line = None
    where = ""
    for match in re.finditer(r'File "([^"]+)", line (\d+) in (\S+)', stack):
        if os.path.abspath(match.group(1)) in unit["user_files"]:
            line = int(match.group(2)) if os.path.abspath(match.group(1)) == path else None
            where = f" in {match.group(3)} ({os.path.basename(match.group(1))}:{match.group(2)})"
            break  # faulthandler lists the most recent call first
    running = budget.where(progress, path)
    if running:
        where = f"{where}, while running {running}" if where else f" in {running}"
        line = line or progress.get("line")
    timeout = progress.get("limit_s", timeout)
    if stack.strip():
        if line is not None:  # keep the user's frames: torch's internals say nothing about the hang
            kept = [text for text in stack.splitlines()
                    if not text.startswith("  File ") or f'"{path}"' in text or any(f'"{p}"' in text for p in unit["user_files"])]
            stack = "\n".join(kept) + "\n"
        return row("FAIL", "run", f"timed out after {timeout:g} s{where}", file=path, line=line,
                    function=progress.get("entry") or None,
                    hint="make the function finish on 128 samples, or raise --timeout (it bounds the first step of each "
                    "entry point)", trace=stack)
    return row("FAIL", "run", "the process running this file died without a result (killed, out of memory, or crashed in native code)",
                file=path, hint="run the file on `migrate-ml sample-data` output to see the crash")
