"""The corpus manifest: which public files, at which commit, on which side of the split.

``manifest.tsv`` has one row per file: ``repo`` (owner/name), ``commit`` (40 hex digits),
``path`` (inside the repository), ``kind`` (what style of code it is) and ``split``
(``tune``, ``heldout``, ``fresh``, ``fresh2``, ``fresh3``, ``fresh4``, ``fresh5``, ``fresh6``, ``fresh7``, ``fresh8``, ``fresh9``, ``fresh10`` or ``fresh11``). Materialised files live under ``<files>/<owner>+<name>/<path>``.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.tsv"
FILES = HERE / "files"
"""Where ``fetch.py`` materialises the files (git-ignored)."""
LOCK = HERE / "manifest.lock.tsv"
"""Each file's git blob id at its commit (``repo``, ``path``, ``blob``): what ``fetch.py --verify``
compares the materialised files with."""
LOCK_COLUMNS = ("repo", "path", "blob")

COLUMNS = ("repo", "commit", "path", "kind", "split")
FRESH = "fresh"
"""Files collected after ``tune`` and ``heldout`` had both been read: the untouched side, judged once
against a hand-written answer key. Its rows are marked by hand, never by ``split_rule``."""
FRESH2 = "fresh2"
"""A second untouched side, collected after ``fresh`` had been judged and then read, on the same terms."""
FRESH3 = "fresh3"
"""A third untouched side, collected after ``fresh2`` had been judged and then read, on the same terms."""
FRESH4 = "fresh4"
"""A fourth untouched side, collected after ``fresh3`` had been judged and then read, on the same terms."""
FRESH5 = "fresh5"
"""A fifth untouched side, collected after ``fresh4`` had been judged and then read, on the same terms."""
FRESH6 = "fresh6"
"""A sixth untouched side, collected after ``fresh5`` had been judged and then read, on the same terms."""
FRESH7 = "fresh7"
"""A seventh untouched side, collected after ``fresh6`` had been judged and then read, on the same terms."""
FRESH8 = "fresh8"
"""An eighth untouched side, collected after ``fresh7`` had been judged and then read, on the same terms."""
FRESH9 = "fresh9"
"""A ninth untouched side, collected after ``fresh8`` had been judged and then read, on the same terms."""
FRESH10 = "fresh10"
"""A tenth untouched side, collected after ``fresh9`` had been judged and then read, on the same terms."""
FRESH11 = "fresh11"
"""An eleventh untouched side, collected after ``fresh10`` had been judged and then read, on the same terms."""
HAND_WRITTEN = (FRESH, FRESH2, FRESH3, FRESH4, FRESH5, FRESH6, FRESH7, FRESH8, FRESH9, FRESH10, FRESH11)
"""Splits whose rows are marked by hand: ``split_rule`` ignores them, and a repository on one of them
has all its rows there."""
SPLITS = ("tune", "heldout", *HAND_WRITTEN)
NEGATIVE = "negative"
"""The kind of a file that is already multi-label or not classification: nothing to report."""


@dataclass(frozen=True)
class Entry:
    repo: str
    commit: str
    path: str
    kind: str
    split: str

    @property
    def folder(self) -> str:
        """The repository's folder name, in the mirror and under ``FILES``: ``owner+name``."""
        return self.repo.replace("/", "+")

    @property
    def local(self) -> str:
        """The file's path relative to ``FILES``."""
        return f"{self.folder}/{self.path}"


class ManifestError(ValueError):
    pass


def load(path: Path = MANIFEST) -> list[Entry]:
    """Read and check the manifest: columns, commit form, split values, no duplicate rows, no repository
    both on a hand-written split (``fresh`` to ``fresh11``) and on another split."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if tuple(header or ()) != COLUMNS:
            raise ManifestError(f"{path}:1: expected the columns {', '.join(COLUMNS)}")
        entries, seen, sides = [], set(), {}
        for number, row in enumerate(reader, start=2):
            if len(row) != len(COLUMNS):
                raise ManifestError(f"{path}:{number}: expected {len(COLUMNS)} tab-separated columns, got {len(row)}")
            entry = Entry(*row)
            if not re.fullmatch(r"[\w.-]+/[\w.-]+", entry.repo):
                raise ManifestError(f"{path}:{number}: repo {entry.repo!r} is not owner/name")
            if not re.fullmatch(r"[0-9a-f]{40}", entry.commit):
                raise ManifestError(f"{path}:{number}: commit {entry.commit!r} is not 40 hex digits")
            if entry.split not in SPLITS:
                raise ManifestError(f"{path}:{number}: split {entry.split!r} is not one of {', '.join(SPLITS)}")
            if (entry.repo, entry.path) in seen:
                raise ManifestError(f"{path}:{number}: {entry.repo} {entry.path} is listed twice")
            side = entry.split if entry.split in HAND_WRITTEN else None
            first = sides.setdefault(entry.repo, side)
            if first != side:
                raise ManifestError(f"{path}:{number}: {entry.repo} has rows on the {first or side} split and on another")
            seen.add((entry.repo, entry.path))
            entries.append(entry)
    return entries


def split_rule(entries: list[Entry]) -> dict[str, str]:
    """The split each repository outside the hand-written splits (``fresh`` to ``fresh11``) must have.

    Repositories are ordered by the SHA-256 of ``owner/name`` (hex digest, as spelled in the
    manifest) and taken into ``heldout`` in that order until it holds at least a third of the
    files (rounded up); the rest are ``tune``. All files of a repository are on one side, so
    nothing learnt from a tuning file leaks through a sibling file of the same project.
    """
    counts = Counter(entry.repo for entry in entries if entry.split not in HAND_WRITTEN)
    target = -(-sum(counts.values()) // 3)
    splits, held = {}, 0
    for repo in sorted(counts, key=lambda name: hashlib.sha256(name.encode()).hexdigest()):
        splits[repo] = "heldout" if held < target else "tune"
        if splits[repo] == "heldout":
            held += counts[repo]
    return splits


def blob_id(data: bytes) -> str:
    """The id git gives ``data`` as a blob (``git hash-object``): the lock's key to a file's content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def load_lock(path: Path = LOCK) -> dict[tuple[str, str], str]:
    """``(repo, path) -> blob id``; empty when there is no lock yet."""
    try:
        handle = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        return {}
    with handle:
        reader = csv.reader(handle, delimiter="\t")
        if tuple(next(reader, None) or ()) != LOCK_COLUMNS:
            raise ManifestError(f"{path}:1: expected the columns {', '.join(LOCK_COLUMNS)}")
        lock = {}
        for number, row in enumerate(reader, start=2):
            if len(row) != len(LOCK_COLUMNS) or not re.fullmatch(r"[0-9a-f]{40}", row[2]):
                raise ManifestError(f"{path}:{number}: expected repo, path and a 40-hex-digit blob id")
            lock[row[0], row[1]] = row[2]
    return lock


def write_lock(lock: dict[tuple[str, str], str], entries: list[Entry], path: Path = LOCK) -> None:
    """Write ``lock`` in the manifest's order (rows for files no longer in ``entries`` are dropped)."""
    rows = [(e.repo, e.path, lock[e.repo, e.path]) for e in entries if (e.repo, e.path) in lock]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(LOCK_COLUMNS)
        writer.writerows(rows)


def select(entries: list[Entry], split: str) -> list[Entry]:
    return entries if split == "all" else [entry for entry in entries if entry.split == split]
