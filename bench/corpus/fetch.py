"""Materialise the corpus manifest's files into a git-ignored folder.

    python bench/corpus/fetch.py --mirror /work/.mirror            # from local git mirrors
    python bench/corpus/fetch.py --network                         # from raw.githubusercontent.com
    python bench/corpus/fetch.py --verify                          # only check every file is there

A mirror root holds one git directory per repository, named ``owner+name`` (bare, or with a
``repo`` folder inside that is bare or has a ``.git``). Each file is read at the manifest's exact
commit (``git cat-file blob COMMIT:PATH``); with ``--network`` a file no mirror holds is
downloaded from raw.githubusercontent.com at that commit. Files already present are kept. The
exit status is 1 when any file is missing afterwards, each named on stderr.
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
    parser.add_argument("--dest", type=Path, default=manifest.FILES, help="where the files go (default: %(default)s)")
    parser.add_argument("--mirror", type=Path, help="root of local git mirrors, one owner+name folder per repository")
    parser.add_argument("--network", action="store_true", help="download what no mirror holds from raw.githubusercontent.com")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per download (default: %(default)s)")
    parser.add_argument("--split", choices=("all", *manifest.SPLITS), default="all")
    parser.add_argument("--verify", action="store_true", help="fetch nothing; only check that every file is present")
    args = parser.parse_args(argv)
    try:
        entries = manifest.select(manifest.load(args.manifest), args.split)
    except (OSError, manifest.ManifestError) as error:
        print(f"fetch.py: {error}", file=sys.stderr)
        return 2
    fetched = missing = 0
    for entry in entries:
        target = args.dest / entry.local
        if not (target.is_file() and target.stat().st_size) and not args.verify:
            data = from_mirror(args.mirror, entry) if args.mirror else None
            if data is None and args.network:
                data = from_network(entry, args.timeout)
            if data:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                fetched += 1
        if not (target.is_file() and target.stat().st_size):
            print(f"missing: {entry.repo}@{entry.commit[:12]}:{entry.path}", file=sys.stderr)
            missing += 1
    print(f"{len(entries)} files: {len(entries) - missing} present ({fetched} fetched now), {missing} missing, in {args.dest}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
