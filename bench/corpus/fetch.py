"""Materialise the corpus manifest's files into a git-ignored folder, and check them against the lock.

    python bench/corpus/fetch.py --mirror /work/.mirror            # from local git mirrors
    python bench/corpus/fetch.py --network                         # from raw.githubusercontent.com
    python bench/corpus/fetch.py --verify                          # fetch nothing; compare every file with the lock

A mirror root holds one git directory per repository, named ``owner+name`` (bare, or with a
``repo`` folder inside that is bare or has a ``.git``). Each file is read at the manifest's exact
commit (``git cat-file blob COMMIT:PATH``); with ``--network`` a file no mirror holds is
downloaded from raw.githubusercontent.com at that commit.

``manifest.lock.tsv`` holds each file's git blob id at its commit. Files already present with
that content are kept; a missing or changed one is fetched again, and fetched content whose blob
id is not the lock's is refused (not written). A row the lock lacks is recorded from what was
fetched at the pinned commit. The exit status is 1 when any file is missing, changed or not in
the lock afterwards, each named on stderr.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import manifest  # noqa: E402  (a script folder, not a package)

RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def git_dir(mirror: Path, folder: str) -> Path | None:
    for candidate in (mirror / folder / "repo" / ".git", mirror / folder / "repo", mirror / folder / ".git", mirror / folder):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    return None


def from_mirror(mirror: Path, entry: manifest.Entry) -> bytes | None:
    directory = git_dir(mirror, entry.folder)
    if directory is None:
        return None
    result = subprocess.run(
        ["git", f"--git-dir={directory}", "cat-file", "blob", f"{entry.commit}:{entry.path}"],
        capture_output=True,
    )
    return result.stdout if result.returncode == 0 else None


def from_network(entry: manifest.Entry, timeout: float) -> bytes | None:
    url = RAW.format(repo=entry.repo, commit=entry.commit, path=quote(entry.path))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=manifest.MANIFEST)
    parser.add_argument("--lock", type=Path, default=manifest.LOCK, help="blob ids of the files (default: %(default)s)")
    parser.add_argument("--dest", type=Path, default=manifest.FILES, help="where the files go (default: %(default)s)")
    parser.add_argument("--mirror", type=Path, help="root of local git mirrors, one owner+name folder per repository")
    parser.add_argument("--network", action="store_true", help="download what no mirror holds from raw.githubusercontent.com")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per download (default: %(default)s)")
    parser.add_argument("--split", choices=("all", *manifest.SPLITS), default="all")
    parser.add_argument("--verify", action="store_true", help="fetch nothing; only compare every file with the lock")
    args = parser.parse_args(argv)
    try:
        every = manifest.load(args.manifest)
        lock = manifest.load_lock(args.lock)
    except (OSError, manifest.ManifestError) as error:
        print(f"fetch.py: {error}", file=sys.stderr)
        return 2
    entries = manifest.select(every, args.split)
    fetched = recorded = 0
    problems = {"missing": 0, "changed": 0, "unlocked": 0, "refused": 0}
    for entry in entries:
        target = args.dest / entry.local
        name = f"{entry.repo}@{entry.commit[:12]}:{entry.path}"
        locked = lock.get((entry.repo, entry.path))
        present = _blob_of(target)
        if not args.verify and (present is None or locked is None or present != locked):
            data = from_mirror(args.mirror, entry) if args.mirror else None
            if data is None and args.network:
                data = from_network(entry, args.timeout)
            if data:
                blob = manifest.blob_id(data)
                if locked is not None and blob != locked:
                    print(f"refused: {name}: fetched content is blob {blob}, the lock has {locked}", file=sys.stderr)
                    problems["refused"] += 1
                else:
                    if locked is None:
                        lock[entry.repo, entry.path] = locked = blob
                        recorded += 1
                    if present != blob:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(data)
                        present = blob
                        fetched += 1
        if present is None:
            print(f"missing: {name}", file=sys.stderr)
            problems["missing"] += 1
        elif locked is None:
            print(f"unlocked: {name}: the lock has no blob id for it (fetch it from a mirror to record one)", file=sys.stderr)
            problems["unlocked"] += 1
        elif present != locked:
            print(f"changed: {target}: its content is blob {present}, the lock has {locked} ({name})", file=sys.stderr)
            problems["changed"] += 1
    if recorded:
        manifest.write_lock(lock, every, args.lock)
    good = len(entries) - problems["missing"] - problems["changed"] - problems["unlocked"]
    print(
        f"{len(entries)} files: {good} as locked ({fetched} fetched now, {recorded} recorded in the lock), "
        + ", ".join(f"{count} {what}" for what, count in problems.items())
        + f", in {args.dest}"
    )
    return 1 if any(problems.values()) else 0


def _blob_of(path: Path) -> str | None:
    """The blob id of the file at ``path``; None when it is absent or empty."""
    try:
        data = path.read_bytes() if path.is_file() else b""
    except OSError:
        return None
    return manifest.blob_id(data) if data else None


if __name__ == "__main__":
    sys.exit(main())
