"""Finding files and processing them; parsing happens in worker processes that may crash."""

from __future__ import annotations

import contextlib
import faulthandler
import fnmatch
import gc
import os
import pickle
import signal
import struct
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from migrate_ml.engine.notebook import NOTEBOOK_SUFFIX, is_notebook, transform_notebook
from migrate_ml.engine.project import build_project_facts
from migrate_ml.engine.source import SourceError, decode_source, read_source, write_atomic
from migrate_ml.engine.transform import (
    Change,
    FileTransformer,
    Finding,
    InternalError,
    Settings,
    internal_error,
    select_rules,
)
from migrate_ml.rules import load_rules
from migrate_ml.rules._project import FileFacts, facts_in_effect

STDIN = "-"

SKIPPED_FOLDERS = frozenset({"__pycache__", "build", "dist", "site-packages", "node_modules", "venv"})
"""Folder names skipped inside a folder argument; hidden folders (``.git``, ``.venv``, …) are too."""


@dataclass
class FileOutcome:
    """What happened to one file. Plain data: it crosses process boundaries."""

    path: str
    changes: list[Change] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    error: SourceError | None = None
    old_text: str = ""
    new_text: str = ""
    new_data: bytes = b""
    written: bool = False
    encoding: str = "utf-8"
    """The file's codec, so that a patch can be written in the bytes the file has."""
    skipped: str = ""
    """Why the pre-filter left the file unparsed (empty when it was parsed): for ``--verbose``."""
    seconds: float = 0.0
    """Time spent on the file, reading and writing included."""
    traceback: str = ""
    """The traceback of an internal error (a bug in migrate-ml), for ``--verbose``."""

    @property
    def changed(self) -> bool:
        return self.error is None and self.old_text != self.new_text


SkipCallback = Callable[[str, str], None]
"""``on_skip(path, reason)``: told about each file or folder that discovery leaves out."""


def discover(
    paths: Sequence[str],
    exclude: Sequence[str] = (),
    *,
    respect_gitignore: bool = True,
    force_exclude: bool = False,
    on_skip: SkipCallback | None = None,
) -> Iterator[str]:
    """Expand folders into their ``*.py`` and ``*.ipynb`` files, in a stable order.

    Files named explicitly are kept (as black and ruff do) unless ``force_exclude`` is set and
    an ``exclude`` glob or a skipped folder name matches them; inside folders, hidden folders,
    virtual environments and build output are skipped, and so is anything matching an
    ``exclude`` glob (matched against the relative path and against the base name) and, with
    ``respect_gitignore``, anything git ignores in a work tree. A file reached twice (named and
    inside a named folder, or under two hard links) is yielded once: two workers writing the
    same file would race.

    Inside a folder, symbolic links are not followed out of it: a link to a file outside the
    named folder is left out (and reported to ``on_skip``), as is a link to a folder; a link
    named on the command line is followed, as the user asked. A folder that cannot be listed
    is yielded as if it were a file, so that reading it reports the error (``read_source``)
    instead of its files being skipped in silence.
    """
    seen: set[object] = set()
    report = on_skip or (lambda path, reason: None)
    for raw in paths:
        for found in _expand(raw, exclude, respect_gitignore, force_exclude, report):
            key = _identity(found)
            if key not in seen:
                seen.add(key)
                yield found
            elif found != STDIN:
                report(found, "the same file as one found before (a hard or symbolic link)")


def _identity(path: str) -> object:
    """What makes two names one file: device and inode (hard links share them)."""
    if path == STDIN:
        return path
    try:
        status = os.stat(path)
    except OSError:
        return os.path.realpath(path)  # reported when the file is processed
    return status.st_dev, status.st_ino


def _expand(raw: str, exclude: Sequence[str], respect_gitignore: bool, force_exclude: bool, report: SkipCallback) -> Iterator[str]:
    if raw == STDIN or not Path(raw).is_dir():
        reason = force_excluded(raw, exclude) if force_exclude and raw != STDIN else ""
        if reason:
            report(raw, reason)
        else:
            yield raw
        return
    ignored = _GitIgnored(raw) if respect_gitignore else None
    root = os.path.realpath(raw)
    unreadable: list[OSError] = []
    for folder, subfolders, files in os.walk(raw, onerror=unreadable.append):
        yield from _unreadable_folders(unreadable)
        kept = []
        for name in sorted(subfolders):
            full = os.path.join(folder, name)
            if name.startswith(".") or name in SKIPPED_FOLDERS or _is_virtualenv(full):
                continue
            reason = _exclusion(full, exclude) or (ignored.reason(full) if ignored else "")
            if not reason and os.path.islink(full):
                reason = f"a symbolic link to a folder ({os.path.realpath(full)}); not followed"
            if reason:
                report(os.path.normpath(full) + os.sep, reason)
                continue
            if ignored is not None and os.path.exists(os.path.join(full, ".git")):
                ignored.add_repository(full)  # a nested repository has its own ignore files
            kept.append(name)
        subfolders[:] = kept
        for name in sorted(files):
            if name.endswith((".py", NOTEBOOK_SUFFIX)):
                full = os.path.normpath(os.path.join(folder, name))
                reason = _exclusion(full, exclude) or (ignored.reason(full) if ignored else "")
                if not reason and os.path.islink(full):
                    reason = _link_out_of(root, full)
                if reason:
                    report(full, reason)
                else:
                    yield full
    yield from _unreadable_folders(unreadable)


def _unreadable_folders(errors: list[OSError]) -> Iterator[str]:
    """The folders ``os.walk`` could not list: reading one reports why."""
    while errors:
        error = errors.pop(0)
        if error.filename is not None:
            yield os.path.normpath(os.fsdecode(error.filename))


def _link_out_of(root: str, link: str) -> str:
    """Why a symbolic link found in the folder ``root`` is not followed, or empty if it stays inside."""
    target = os.path.realpath(link)
    if os.path.commonpath([root, target]) == root:
        return ""
    return f"a symbolic link to {target}, outside {root}; not followed (name it on the command line to include it)"


def force_excluded(path: str, exclude: Sequence[str]) -> str:
    """Why ``--force-exclude`` drops a named file: an exclude glob, or a folder a walk skips."""
    reason = _exclusion(path, exclude)
    if reason:
        return f"{reason} (--force-exclude)"
    relative = os.path.relpath(path)
    if relative.startswith(os.pardir):
        return ""  # outside the working folder: only the globs apply
    for part in Path(relative).parent.parts:
        if part in SKIPPED_FOLDERS or part.startswith("."):
            return f"inside {part!r}, a folder that is never searched (--force-exclude)"
    return ""


class _GitIgnored:
    """What git ignores below a folder: ``.gitignore`` files, ``.git/info/exclude`` and the
    global excludes file, as ``git ls-files --others --ignored --exclude-standard`` lists them.

    Tracked files are never ignored (git's own rule). Outside a work tree, or without git,
    nothing is ignored. A folder that git ignores as a whole is searched anyway when it is
    named: the user asked for it.
    """

    def __init__(self, folder: str) -> None:
        self._paths: set[str] = set()
        self.add_repository(folder)

    def add_repository(self, folder: str) -> None:
        try:
            listed = subprocess.run(
                ["git", "-C", folder, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
                stdin=subprocess.DEVNULL,  # review reads its answers from stdin
                capture_output=True,
                timeout=120,
            )
        except (OSError, subprocess.SubprocessError):
            return
        if listed.returncode != 0:
            return
        entries = [os.fsdecode(entry) for entry in listed.stdout.split(b"\0") if entry]
        if "./" in entries:
            return
        self._paths.update(os.path.normpath(os.path.join(folder, entry)) for entry in entries)

    def reason(self, path: str) -> str:
        if os.path.normpath(path) in self._paths:
            return "ignored by git (.gitignore, .git/info/exclude or the global excludes file)"
        return ""


def _is_virtualenv(folder: str) -> bool:
    """venv/virtualenv environments have ``pyvenv.cfg``; conda environments ``conda-meta``."""
    return os.path.exists(os.path.join(folder, "pyvenv.cfg")) or os.path.isdir(os.path.join(folder, "conda-meta"))


def _exclusion(path: str, patterns: Iterable[str]) -> str:
    """``matches exclude pattern 'glob'`` for the first glob that matches, else empty."""
    normalized = os.path.normpath(path)
    base = os.path.basename(normalized)
    for pattern in patterns:
        if fnmatch.fnmatch(normalized, pattern) or fnmatch.fnmatch(base, pattern) or fnmatch.fnmatch(normalized, f"*/{pattern}"):
            return f"matches exclude pattern {pattern!r}"
    return ""


_worker_transformers: dict[Settings, FileTransformer] = {}
"""One transformer per distinct settings (per-file ignores make a few) in this process."""


def _transformer_for(settings: Settings) -> FileTransformer:
    transformer = _worker_transformers.get(settings)
    if transformer is None:
        rules = select_rules(load_rules(), settings.select, settings.ignore)
        transformer = _worker_transformers[settings] = FileTransformer(rules, settings)
    return transformer


@contextlib.contextmanager
def contain_errors(outcome: FileOutcome) -> Iterator[None]:
    """Turn whatever goes wrong with one file into that file's one-line error: the run goes on.

    On error the outcome shows the file unchanged; nothing is written.
    """
    try:
        yield
    except SourceError as error:
        outcome.error = error
    except OSError as error:
        outcome.error = SourceError(outcome.path, f"cannot write: {error.strerror or error}")
    except RecursionError:
        outcome.error = SourceError(outcome.path, "too deeply nested to process")
    except Exception as error:  # a bug in one rule must not stop the other files
        bug = error if isinstance(error, InternalError) else internal_error(error, dict)
        outcome.error = SourceError(outcome.path, str(bug), bug.line)
        outcome.traceback = bug.details
    if outcome.error is not None:
        outcome.new_text = outcome.old_text
        outcome.written = False


def process_file(
    path: str, settings: Settings, write: bool, data: bytes | None = None, project: FileFacts | None = None
) -> FileOutcome:
    """Rewrite one file. Errors are captured in the outcome; nothing is written on error.

    ``write`` means the rewritten text is what the user gets (written in place, or printed when
    ``data`` was read from stdin), so findings are positioned in it; otherwise they are
    positioned in the original. Given ``data``, ``path`` only names the code (``-`` or
    ``--stdin-filename``): nothing is written to it. ``project`` is what the run's other files
    say about this one (``engine/project.py``).
    """
    outcome = FileOutcome(path=path)
    started = time.perf_counter()
    with contain_errors(outcome):
        source = decode_source(path, data) if data is not None else read_source(path)
        outcome.old_text, outcome.encoding = source.text, source.encoding
        transformer = _transformer_for(settings.for_file(path))
        if is_notebook(path):
            result = transform_notebook(transformer, source)
        else:
            result = transformer.transform(source, project=project)
        outcome.new_text, outcome.new_data = result.new_text, result.new_data
        outcome.changes, outcome.skipped = result.changes, result.skipped
        outcome.findings = result.findings_after if write else result.findings_before
        if write and result.changed and data is None:
            write_atomic(path, result.new_data, source.stamp)
            outcome.written = True
    outcome.seconds = time.perf_counter() - started
    return outcome


def _without_texts(outcome: FileOutcome) -> FileOutcome:
    if not outcome.changed and not (outcome.findings and is_notebook(outcome.path)):
        # The texts of an unchanged file are never shown: do not keep or pickle them. A
        # notebook's are needed to map its findings' cells onto the lines of the .ipynb.
        outcome.old_text = outcome.new_text = ""
        outcome.new_data = b""
    return outcome


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, not every CPU of the machine)."""
    process_cpu_count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if process_cpu_count is not None:
        return process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _settled_without_parsing(path: str, settings: Settings, project: FileFacts | None) -> FileOutcome | None:
    """The outcome of a file that cannot be read or that no rule could change; None otherwise.

    This is the text pre-filter the transformer starts with, run before any parse: most files
    stop here, in this process with one worker (or in a worker, with several), and only the rest
    go on to the parser in a worker process.
    """
    if path == STDIN or is_notebook(path):
        return None
    outcome = FileOutcome(path=path)
    try:
        source = read_source(path)
    except SourceError as error:
        outcome.error = error
        return outcome
    with facts_in_effect(project):  # a criterion passed in from another file makes ML010 apply
        if _transformer_for(settings.for_file(path)).needs_parse(source.text):
            return None
    outcome.encoding = source.encoding
    outcome.skipped = "no trigger word of the selected rules occurs"
    return outcome


def process_files(paths: Sequence[str], settings: Settings, write: bool, jobs: int | None = None) -> list[FileOutcome]:
    """Process files in up to ``jobs`` worker processes (default: one per usable CPU); results
    keep the input order.

    Files are parsed only in workers, because LibCST's native parser can crash the process on
    some inputs (a stack overflow on thousands of nested brackets): a worker that dies is
    replaced, its file is reported as ``the parser crashed on this file`` and the other files
    finish. Workers live for the whole run and take one file at a time, largest first, so that
    a crash names its file and one big file picked up last does not leave the others idle.
    Where processes cannot fork (Windows), files are parsed in this process, one by one.
    """
    workers = min(usable_cpus() if jobs is None else jobs, len(paths))
    facts = build_project_facts(paths, settings, parallel=workers > 1)  # criteria passed between the run's files
    outcomes: list[FileOutcome | None] = [None] * len(paths)
    settle_in_workers = workers > 1 and hasattr(os, "fork")
    if not settle_in_workers:
        outcomes = [_settled_without_parsing(path, settings, facts.get(path)) for path in paths]
    pending = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if pending and not hasattr(os, "fork"):
        # No fork (Windows): parse here, without the crash containment.
        for index in pending:
            outcomes[index] = process_file(paths[index], settings, write, project=facts.get(paths[index]))
    elif pending:
        _transformer_for(settings)  # built once here, inherited by the forked workers
        pending.sort(key=lambda index: -_size(paths[index]))
        # With several workers they also run the text pre-filter, which was most of what this
        # process did alone while they waited; one worker gains nothing from it but messages.
        pool = _WorkerPool(min(workers, len(pending)))
        work = [(index, paths[index], settings, write, facts.get(paths[index]), None, settle_in_workers) for index in pending]
        for index, outcome in pool.run(work):
            outcomes[index] = outcome
    return outcomes  # type: ignore[return-value]  # the pool answers every task, if only with a crash


def process_data(name: str, settings: Settings, write: bool, data: bytes) -> FileOutcome:
    """``process_file`` for code read from stdin, parsed in a worker so that a parser crash is
    one error line. The outcome of unchanged code carries no texts (the caller holds ``data``)."""
    if not hasattr(os, "fork"):
        return process_file(name, settings, write, data=data)
    _transformer_for(settings)  # built once here, inherited by the forked worker
    [(_, outcome)] = _WorkerPool(1).run([(0, name, settings, write, None, data, False)])
    return outcome


def parser_crash(path: str, data: bytes) -> SourceError | None:
    """Parse ``data`` once in a forked child: the error to report if LibCST's parser crashes on it.

    For code parsed in this process afterwards (``review``, which prompts on this terminal):
    a file that would kill the parser is reported instead of ending the session.
    """
    if not hasattr(os, "fork"):
        return None
    pid = os.fork()
    if pid == 0:
        try:
            faulthandler.disable()
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            import libcst

            libcst.parse_module(data)
        except BaseException:
            pass  # errors other than a crash are reported by the real parse
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return None
    try:
        reason = signal.Signals(-code).name
    except ValueError:
        reason = f"signal {-code}"
    return SourceError(path, f"the parser crashed on this file ({reason}); file left unchanged", line=None)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # reported when the file is processed


class _Terminated(BaseException):
    """SIGTERM arrived while workers were running (raised in the main process)."""


def _terminate(signum, frame):
    raise _Terminated


def _serve(tasks: int, results: int) -> None:
    """A worker's loop: read ``process_file`` argument tuples (and whether to try the text
    pre-filter first), write back their outcomes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the workers
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    faulthandler.disable()  # a parser crash is reported in one line, not with a thread dump
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a parser crash must not drop a core file
    except (ImportError, ValueError, OSError):
        pass
    while True:
        task = _receive(tasks)
        if task is None:
            return  # the parent closed the pipe: the run is over, or the parent died
        path, settings, write, data, project, settle = task
        outcome = _settled_without_parsing(path, settings, project) if settle else None
        if outcome is None:
            outcome = _without_texts(process_file(path, settings, write, data, project))
        try:
            _send(results, outcome)
        except OSError:
            return


def _exit_on_sigterm(signum, frame):
    # SystemExit unwinds the file being written, so no temporary file is left behind.
    raise SystemExit(128 + signum)


_LENGTH = struct.Struct("<Q")


def _send(descriptor: int, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(descriptor, view):]


def _receive(descriptor: int):
    """One message, or None at the end of the pipe (also when the writer died mid-message)."""
    header = _read_exactly(descriptor, _LENGTH.size)
    if header is None:
        return None
    data = _read_exactly(descriptor, _LENGTH.unpack(header)[0])
    return None if data is None else pickle.loads(data)


def _read_exactly(descriptor: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(descriptor, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


class _Worker:
    """A forked process with a task pipe and a result pipe.

    Plain ``os.fork`` and pipes rather than ``multiprocessing``: importing that costs more than
    rewriting a small file, and a crash needs nothing but the end of the result pipe.
    """

    def __init__(self, others: list["_Worker"]) -> None:
        task_read, self.tasks = os.pipe()
        self.results, result_write = os.pipe()
        # Objects the garbage collector would walk in the child are copied page by page on
        # first touch: frozen, they stay shared, and a worker starts in a millisecond or two.
        gc.freeze()
        self.pid = os.fork()
        if self.pid:
            gc.unfreeze()
        else:
            code = 0
            try:
                # The parent's pipe ends: holding them would keep pipes open after it died.
                for descriptor in (self.tasks, self.results, *(d for w in others for d in (w.tasks, w.results))):
                    os.close(descriptor)
                _serve(task_read, result_write)
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
            except BaseException:
                code = 1
            finally:
                os._exit(code)  # never run the parent's exit handlers or flush its buffers twice
        os.close(task_read)
        os.close(result_write)
        self.task: tuple[int, str] | None = None
        self.status: int | None = None

    def death(self) -> str:
        """Why the worker ended, once its result pipe closed."""
        self._reap(block=True)
        code = os.waitstatus_to_exitcode(self.status) if self.status is not None else None
        if code is not None and code < 0:
            try:
                return signal.Signals(-code).name
            except ValueError:
                return f"signal {-code}"
        return f"exit status {code}"

    def _reap(self, block: bool) -> bool:
        if self.status is None:
            try:
                pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, 0
            if pid == self.pid:
                self.status = status
        return self.status is not None

    def close(self) -> None:
        for descriptor in (self.tasks, self.results):
            try:
                os.close(descriptor)
            except OSError:
                pass

    def stop(self, wait: float) -> None:
        """Close the pipes (an idle worker exits), stop a busy one, and reap it."""
        self.close()
        if self._reap(block=False):
            return
        if self.task is not None:
            self._signal(signal.SIGTERM)
        deadline = time.monotonic() + wait
        while not self._reap(block=False):
            if time.monotonic() > deadline:
                self._signal(signal.SIGKILL)
                self._reap(block=True)
                return
            time.sleep(0.005)

    def _signal(self, number: int) -> None:
        try:
            os.kill(self.pid, number)
        except ProcessLookupError:
            pass


class _WorkerPool:
    """Long-lived forked workers, one file each at a time; a dead worker costs only its file."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.workers: list[_Worker] = []

    def run(
        self, work: list[tuple[int, str, Settings, bool, FileFacts | None, bytes | None, bool]]
    ) -> list[tuple[int, FileOutcome]]:
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
        try:
            return list(self._dispatch(deque(work)))
        except _Terminated:
            self._stop()
            # Die of the signal, as the process would have without the handler.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            raise
        finally:
            self._stop()
            if main_thread:
                signal.signal(signal.SIGTERM, previous)

    def _dispatch(self, queue: deque) -> Iterator[tuple[int, FileOutcome]]:
        import select

        busy: dict[int, _Worker] = {}
        while queue or busy:
            while queue and len(busy) < self.size:
                worker = next((w for w in self.workers if w.task is None), None) or self._spawn()
                index, path, settings, write, project, data, settle = queue.popleft()
                worker.task = (index, path)
                try:
                    _send(worker.tasks, (path, settings, write, data, project, settle))
                except OSError:  # died while idle: not this file's fault, so it is tried again
                    queue.appendleft((index, path, settings, write, project, data, settle))
                    self._retire(worker)
                    continue
                busy[worker.results] = worker
            poller = select.poll()  # not select.select: it fails on descriptors above 1023
            for descriptor in busy:
                poller.register(descriptor, select.POLLIN)
            for descriptor, _ in poller.poll():
                worker = busy.pop(descriptor)
                index, path = worker.task
                outcome = _receive(descriptor)
                if outcome is None:
                    reason = worker.death()
                    outcome = FileOutcome(path=path, error=SourceError(
                        path, f"the parser crashed on this file ({reason}); file left unchanged", line=None
                    ))
                    self._retire(worker)
                else:
                    worker.task = None
                yield index, outcome

    def _spawn(self) -> _Worker:
        worker = _Worker(self.workers)
        self.workers.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.stop(wait=5)
        self.workers.remove(worker)

    def _stop(self) -> None:
        for worker in self.workers:
            worker.close()
        for worker in self.workers:
            worker.stop(wait=5)
        self.workers = []
