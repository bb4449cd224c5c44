"""Finding files and processing them, serially or in worker processes."""

from __future__ import annotations

import contextlib
import fnmatch
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from migrate_ml.engine.notebook import NOTEBOOK_SUFFIX, is_notebook, transform_notebook
from migrate_ml.engine.source import SourceError, decode_source, read_source, write_atomic
from migrate_ml.engine.transform import Change, FileTransformer, Finding, Settings, select_rules
from migrate_ml.rules import load_rules

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
    inside a named folder) is yielded once: two workers writing the same file would race.
    """
    seen: set[str] = set()
    report = on_skip or (lambda path, reason: None)
    for raw in paths:
        for found in _expand(raw, exclude, respect_gitignore, force_exclude, report):
            key = os.path.realpath(found) if found != STDIN else found
            if key not in seen:
                seen.add(key)
                yield found


def _expand(raw: str, exclude: Sequence[str], respect_gitignore: bool, force_exclude: bool, report: SkipCallback) -> Iterator[str]:
    if raw == STDIN or not Path(raw).is_dir():
        reason = force_excluded(raw, exclude) if force_exclude and raw != STDIN else ""
        if reason:
            report(raw, reason)
        else:
            yield raw
        return
    ignored = _GitIgnored(raw) if respect_gitignore else None
    for folder, subfolders, files in os.walk(raw):
        kept = []
        for name in sorted(subfolders):
            full = os.path.join(folder, name)
            if name.startswith(".") or name in SKIPPED_FOLDERS or _is_virtualenv(full):
                continue
            reason = _exclusion(full, exclude) or (ignored.reason(full) if ignored else "")
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
                if reason:
                    report(full, reason)
                else:
                    yield full


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
        outcome.error = SourceError(outcome.path, f"internal error: {type(error).__name__}: {error}; file left unchanged")
    if outcome.error is not None:
        outcome.new_text = outcome.old_text
        outcome.written = False


def process_file(path: str, settings: Settings, write: bool, data: bytes | None = None) -> FileOutcome:
    """Rewrite one file. Errors are captured in the outcome; nothing is written on error.

    ``write`` means the rewritten text is what the user gets (written in place, or printed when
    ``data`` was read from stdin), so findings are positioned in it; otherwise they are
    positioned in the original. Given ``data``, ``path`` only names the code (``-`` or
    ``--stdin-filename``): nothing is written to it.
    """
    outcome = FileOutcome(path=path)
    started = time.perf_counter()
    with contain_errors(outcome):
        source = decode_source(path, data) if data is not None else read_source(path)
        outcome.old_text, outcome.encoding = source.text, source.encoding
        transformer = _transformer_for(settings.for_file(path))
        result = transform_notebook(transformer, source) if is_notebook(path) else transformer.transform(source)
        outcome.new_text, outcome.new_data = result.new_text, result.new_data
        outcome.changes, outcome.skipped = result.changes, result.skipped
        outcome.findings = result.findings_after if write else result.findings_before
        if write and result.changed and data is None:
            write_atomic(path, result.new_data)
            outcome.written = True
    outcome.seconds = time.perf_counter() - started
    return outcome


def _process_star(arguments: tuple[str, Settings, bool]) -> FileOutcome:
    return process_file(*arguments)


def _process_in_worker(arguments: tuple[str, Settings, bool]) -> FileOutcome:
    outcome = process_file(*arguments)
    if not outcome.changed:
        # The texts of an unchanged file are never shown: do not pickle them back.
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


def process_files(paths: Sequence[str], settings: Settings, write: bool, jobs: int | None = None) -> list[FileOutcome]:
    """Process files in ``jobs`` worker processes (default: one per usable CPU), serially for
    one file or ``jobs=1``; results keep the input order.

    Workers take the largest files first, in small chunks, so that one big file picked up last
    does not leave the other workers idle at the end.
    """
    work = [(path, settings, write) for path in paths]
    jobs = usable_cpus() if jobs is None else jobs
    if jobs <= 1 or len(work) < 2:
        return [_process_star(item) for item in work]
    from concurrent.futures import ProcessPoolExecutor  # only parallel runs pay for the import

    _transformer_for(settings)  # built once here, inherited by forked workers
    order = sorted(range(len(work)), key=lambda index: -_size(work[index][0]))
    chunk = max(1, len(work) // (jobs * 64))
    with ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
        results = pool.map(_process_in_worker, [work[index] for index in order], chunksize=chunk)
        by_index = dict(zip(order, results))
    return [by_index[index] for index in range(len(work))]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # reported when the file is processed
