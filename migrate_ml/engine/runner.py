"""Finding files and processing them, serially or in worker processes."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from migrate_ml.engine.notebook import NOTEBOOK_SUFFIX, is_notebook, transform_notebook
from migrate_ml.engine.project import build_project_facts
from migrate_ml.engine.source import SourceError, decode_source, read_source, write_atomic
from migrate_ml.engine.transform import Change, FileTransformer, Finding, Settings, select_rules
from migrate_ml.rules import load_rules
from migrate_ml.rules._project import FileFacts

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

    @property
    def changed(self) -> bool:
        return self.error is None and self.old_text != self.new_text


def discover(paths: Sequence[str], exclude: Sequence[str] = ()) -> Iterator[str]:
    """Expand folders into their ``*.py`` and ``*.ipynb`` files, in a stable order.

    Files named explicitly are always kept (as black and ruff do); inside folders, hidden
    folders, virtual environments and build output are skipped, and so is anything matching an
    ``--exclude`` glob (matched against the relative path and against the base name). A file
    reached twice (named and inside a named folder) is yielded once: two workers writing the
    same file would race.
    """
    seen: set[str] = set()
    for raw in paths:
        for found in _expand(raw, exclude):
            key = os.path.realpath(found) if found != STDIN else found
            if key not in seen:
                seen.add(key)
                yield found


def _expand(raw: str, exclude: Sequence[str]) -> Iterator[str]:
    if raw == STDIN or not Path(raw).is_dir():
        yield raw
        return
    for folder, subfolders, files in os.walk(raw):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".")
            and name not in SKIPPED_FOLDERS
            and not _is_virtualenv(os.path.join(folder, name))
            and not _excluded(os.path.join(folder, name), exclude)
        )
        for name in sorted(files):
            if name.endswith((".py", NOTEBOOK_SUFFIX)):
                full = os.path.normpath(os.path.join(folder, name))
                if not _excluded(full, exclude):
                    yield full


def _is_virtualenv(folder: str) -> bool:
    """venv/virtualenv environments have ``pyvenv.cfg``; conda environments ``conda-meta``."""
    return os.path.exists(os.path.join(folder, "pyvenv.cfg")) or os.path.isdir(os.path.join(folder, "conda-meta"))


def _excluded(path: str, patterns: Iterable[str]) -> bool:
    normalized = os.path.normpath(path)
    base = os.path.basename(normalized)
    return any(
        fnmatch.fnmatch(normalized, pattern) or fnmatch.fnmatch(base, pattern)
        or fnmatch.fnmatch(normalized, f"*/{pattern}")
        for pattern in patterns
    )


_worker_transformers: dict[Settings, FileTransformer] = {}
"""One transformer per distinct settings (per-file ignores make a few) in this process."""


def _transformer_for(settings: Settings) -> FileTransformer:
    transformer = _worker_transformers.get(settings)
    if transformer is None:
        rules = select_rules(load_rules(), settings.select, settings.ignore)
        transformer = _worker_transformers[settings] = FileTransformer(rules, settings)
    return transformer


def process_file(
    path: str, settings: Settings, write: bool, data: bytes | None = None, project: FileFacts | None = None
) -> FileOutcome:
    """Rewrite one file. Errors are captured in the outcome; nothing is written on error.

    ``write`` means the rewritten text is what the user gets (written in place, or printed for
    stdin), so findings are positioned in it; otherwise they are positioned in the original.
    ``project`` is what the run's other files say about this one (``engine/project.py``).
    """
    outcome = FileOutcome(path=path)
    try:
        source = decode_source(path, data) if data is not None else read_source(path)
        outcome.old_text, outcome.encoding = source.text, source.encoding
        transformer = _transformer_for(settings.for_file(path))
        if is_notebook(path):
            result = transform_notebook(transformer, source)
        else:
            result = transformer.transform(source, project=project)
        outcome.new_text, outcome.new_data = result.new_text, result.new_data
        outcome.changes = result.changes
        written = write and result.changed and path != STDIN
        outcome.findings = result.findings_after if write else result.findings_before
        if written:
            write_atomic(path, result.new_data)
            outcome.written = True
    except SourceError as error:
        outcome.error = error
        outcome.new_text = outcome.old_text
    except OSError as error:
        outcome.error = SourceError(path, f"cannot write: {error.strerror or error}")
        outcome.new_text = outcome.old_text
    except RecursionError:
        outcome.error = SourceError(path, "too deeply nested to process")
        outcome.new_text = outcome.old_text
    except Exception as error:  # a bug in one rule must not stop the other files
        outcome.error = SourceError(path, f"internal error: {type(error).__name__}: {error}; file left unchanged")
        outcome.new_text = outcome.old_text
    return outcome


def _process_star(arguments: tuple) -> FileOutcome:
    return process_file(*arguments)


def _process_in_worker(arguments: tuple) -> FileOutcome:
    outcome = process_file(*arguments)
    if not outcome.changed:
        # The texts of an unchanged file are never shown: do not pickle them back.
        outcome.old_text = outcome.new_text = ""
        outcome.new_data = b""
    return outcome


def process_files(paths: Sequence[str], settings: Settings, write: bool, jobs: int = 1) -> list[FileOutcome]:
    """Process files, in parallel when ``jobs > 1``; results keep the input order.

    Workers take the largest files first, in small chunks, so that one big file picked up last
    does not leave the other workers idle at the end.
    """
    facts = build_project_facts(paths, settings)  # criteria passed between the run's files
    work = [(path, settings, write, None, facts.get(path)) for path in paths]
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
