"""Run migrate-ml over a split of the corpus and list what it leaves unreported.

    python bench/corpus/harness.py --split tune --report corpus_tune_report.md
    python bench/corpus/harness.py --split tune --dump-hunks hunks/     # the patches, for precision review

For each repository of the split, its files are copied into a scratch folder and rewritten in
place by ``migrate-ml rewrite --output-format json`` in one run (so facts that cross files of
a project are seen, as a user's run would see them). The independent detector (``detector.py``)
lists the single-label constructs of each original file; a construct is **covered** when an
edited line, a change's reported line or a finding lies within ``--near`` lines of it (same
notebook cell), and **missed** otherwise. Changes and findings with no construct near them are
listed for precision review, which is done by reading the hunks (``--dump-hunks`` writes
``migrate-ml rewrite --diff`` per repository, each hunk naming its rule codes).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import repeat
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import detector  # noqa: E402  (a script folder, not a package)
import manifest  # noqa: E402

MIGRATE_ML = [sys.executable, "-m", "migrate_ml"]


@dataclass(frozen=True)
class Mark:
    """A change or a finding of migrate-ml, positioned in the original text."""

    what: str  # "change" or "finding"
    code: str
    cell: int | None
    line: int
    end_line: int
    message: str


@dataclass
class FileResult:
    repo: str
    path: str
    kind: str
    constructs: list[detector.Construct] = field(default_factory=list)
    covered: list[detector.Construct] = field(default_factory=list)
    missed: list[detector.Construct] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    unmatched: list[Mark] = field(default_factory=list)
    error: str = ""
    """migrate-ml's one-line error for the file, if it could not process it."""
    detector_errors: list[str] = field(default_factory=list)
    excerpts: dict[str, str] = field(default_factory=dict)
    """``"cell:line"`` of each missed construct -> 1-3 lines of the original around it."""


# Positions ---------------------------------------------------------------------------------


def _units(path: str, text: str) -> dict[int | None, list[str]]:
    """The text as lines per unit: the whole file (key None), or each notebook cell."""
    if not path.endswith(".ipynb"):
        return {None: text.splitlines()}
    try:
        return {number: source.splitlines() for number, source in detector.notebook_cells(text)}
    except ValueError:
        return {}


def edits(path: str, old: str, new: str) -> tuple[set[tuple[int | None, int]], dict[tuple[int | None, int], int]]:
    """Original lines a rewrite touched, as ``(cell, line)``, and the map of new lines onto
    original lines (for findings, which a written file reports in its new text)."""
    old_units, new_units = _units(path, old), _units(path, new)
    touched: set[tuple[int | None, int]] = set()
    new_to_old: dict[tuple[int | None, int], int] = {}
    for unit, old_lines in old_units.items():
        new_lines = new_units.get(unit, old_lines)
        matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            for offset, j in enumerate(range(j1, j2)):
                new_to_old[(unit, j + 1)] = i1 + 1 + (offset if tag == "equal" else 0)
            if tag == "equal":
                continue
            # An insertion touches the lines it sits between; a replacement, the lines it replaces.
            lines = range(i1 + 1, i2 + 1) if i2 > i1 else (i1, i1 + 1)
            touched.update((unit, line) for line in lines if line >= 1)
    return touched, new_to_old


def marks_from_report(entry: dict, new_to_old: dict[tuple[int | None, int], int], written: bool) -> list[Mark]:
    """Changes (positioned in the original) and findings (in the written text when the file was
    rewritten, mapped back onto the original) of one file of migrate-ml's JSON report."""
    marks = [
        Mark("change", c["code"], c.get("cell"), c["line"], c.get("end_line") or c["line"], c["message"])
        for c in entry.get("changes", [])
    ]
    for f in entry.get("findings", []):
        cell = f.get("cell")
        line = new_to_old.get((cell, f["line"]), f["line"]) if written else f["line"]
        message = f["message"]
        if written:  # "(see ML020 at line 53)" names a line of the written text too
            message = _LINE_MENTION.sub(lambda m: f"line {new_to_old.get((cell, int(m.group(1))), int(m.group(1)))}", message)
        marks.append(Mark("finding", f["code"], cell, line, line, message))
    return marks


_LINE_MENTION = re.compile(r"\bline (\d+)\b")


def match(
    constructs: list[detector.Construct],
    touched: set[tuple[int | None, int]],
    marks: list[Mark],
    near: int,
    scopes: dict[tuple[int | None, int], int] | None = None,
) -> tuple[list[detector.Construct], list[detector.Construct], list[Mark]]:
    """``(covered, missed, unmatched marks)``: a construct is covered by an edited line or a
    mark's line within ``near`` lines in the same cell; a mark is unmatched when no construct
    lies within ``near`` lines of its span.

    A mark on the first line of a function or class (``scopes``: start -> last line) reports
    that definition as a whole ("this helper is top-k accuracy"), so it spans the body."""
    scopes = scopes or {}
    marks = [
        Mark(m.what, m.code, m.cell, m.line, max(m.end_line, scopes[(m.cell, m.line)]), m.message)
        if (m.cell, m.line) in scopes else m
        for m in marks
    ]
    spots = set(touched) | {(m.cell, m.line) for m in marks}
    spots |= {(m.cell, line) for m in marks if (m.cell, m.line) in scopes for line in range(m.line, m.end_line + 1)}
    covered, missed = [], []
    for construct in constructs:
        around = ((construct.cell, line) for line in range(construct.line - near, construct.line + near + 1))
        (covered if any(spot in spots for spot in around) else missed).append(construct)
    unmatched = [
        mark
        for mark in marks
        if not any(
            c.cell == mark.cell and mark.line - near <= c.line <= max(mark.line, mark.end_line) + near for c in constructs
        )
    ]
    return covered, missed, unmatched


def _excerpt(lines: list[str], line: int) -> str:
    """The construct's line, with the lines before and after when they belong to the same
    statement or give it context; blank lines dropped."""
    chosen = [lines[i - 1].rstrip() for i in range(max(1, line - 1), min(len(lines), line + 1) + 1) if lines[i - 1].strip()]
    return "\n".join(chosen[:3])


# One repository -----------------------------------------------------------------------------


def run_group(entries: list[manifest.Entry], files: Path, near: int, dump: Path | None, command: list[str]) -> list[FileResult]:
    """Rewrite one repository's files in a scratch copy and compare with the detector."""
    results = []
    with tempfile.TemporaryDirectory(prefix="corpus-") as scratch:
        root = Path(scratch)
        for entry in entries:
            target = root / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files / entry.local, target)
        paths = [entry.path for entry in entries]
        if dump is not None:
            diff = subprocess.run([*command, "rewrite", "--diff", "--color", "never", "-j1", *paths], cwd=root, capture_output=True, text=True)
            (dump / f"{entries[0].folder}.diff").write_text(diff.stdout + (f"\n# stderr\n{diff.stderr}" if diff.stderr.strip() else ""))
        run = subprocess.run([*command, "rewrite", "--output-format", "json", "-j1", *paths], cwd=root, capture_output=True, text=True)
        try:
            report = {item["path"]: item for item in json.loads(run.stdout)["files"]}
        except (ValueError, KeyError):
            report = {}
        for entry in entries:
            old = (files / entry.local).read_text(encoding="utf-8", errors="replace")
            new = (root / entry.path).read_text(encoding="utf-8", errors="replace")
            item = report.get(entry.path)
            result = FileResult(entry.repo, entry.path, entry.kind)
            scan = detector.scan(entry.path, old)
            result.constructs, result.detector_errors = scan.constructs, scan.errors
            if item is None:
                last = run.stderr.strip().splitlines()[-1:] or [""]
                result.error = f"no report (exit {run.returncode}): {last[0]}"
            elif item.get("error"):
                result.error = f"{item['error']['line']}:{item['error']['column']}: {item['error']['message']}"
            touched, new_to_old = edits(entry.path, old, new)
            result.marks = marks_from_report(item or {}, new_to_old, bool(item and item.get("written")))
            result.covered, result.missed, result.unmatched = match(result.constructs, touched, result.marks, near, scan.scopes)
            units = _units(entry.path, old)
            result.excerpts = {f"{c.cell}:{c.line}": _excerpt(units.get(c.cell, []), c.line) for c in result.missed}
            results.append(result)
    return results


# The report ---------------------------------------------------------------------------------


def _where(result: FileResult, cell: int | None, line: int) -> str:
    return f"{result.repo}/{result.path}:{f'cell {cell}:' if cell is not None else ''}{line}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


def markdown(results: list[FileResult], split: str, near: int, seconds: float, revision: str) -> str:
    positives = [r for r in results if r.kind != manifest.NEGATIVE]
    negatives = [r for r in results if r.kind == manifest.NEGATIVE]
    constructs = sum(len(r.constructs) for r in positives)
    covered = sum(len(r.covered) for r in positives)
    marks = sum(len(r.marks) for r in positives)
    unmatched = sum(len(r.unmatched) for r in positives)
    out = [
        f"# Corpus report: {split} split",
        "",
        f"migrate-ml {revision}; {len(results)} files from {len({r.repo for r in results})} repositories "
        f"({len(negatives)} negatives); near = {near} lines; {seconds:.0f} s.",
        "",
        "| | count |",
        "| --- | --- |",
        f"| single-label constructs (detector) | {constructs} |",
        f"| covered (edit or finding near) | {covered} |",
        f"| missed | {constructs - covered} |",
        f"| **recall** | **{_pct(covered, constructs)}** |",
        f"| edits + findings | {marks} |",
        f"| of them with no construct near (read the hunks) | {unmatched} |",
        f"| files migrate-ml could not process | {sum(1 for r in results if r.error)} |",
        "",
        "## Recall by kind",
        "",
        "| kind | constructs | covered | missed | recall |",
        "| --- | --- | --- | --- | --- |",
    ]
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in positives:
        for c in r.constructs:
            by_kind[c.kind][0] += 1
        for c in r.covered:
            by_kind[c.kind][1] += 1
    for kind, (total, hit) in sorted(by_kind.items(), key=lambda item: (item[1][1] - item[1][0], item[0])):
        out.append(f"| {kind} | {total} | {hit} | {total - hit} | {_pct(hit, total)} |")
    out += ["", "## Misses by kind", ""]
    missed_by_kind: dict[str, list[tuple[FileResult, detector.Construct]]] = defaultdict(list)
    for r in positives:
        for c in r.missed:
            missed_by_kind[c.kind].append((r, c))
    for kind in sorted(missed_by_kind, key=lambda k: -len(missed_by_kind[k])):
        items = missed_by_kind[kind]
        out += [f"### {kind} ({len(items)}): {detector.KINDS[kind]}", ""]
        for r, c in items:
            out.append(f"- `{_where(r, c.cell, c.line)}`" + (f" (migrate-ml error: {r.error})" if r.error else ""))
            out += ["  ```python", *("  " + line for line in r.excerpts.get(f"{c.cell}:{c.line}", c.text).splitlines()), "  ```"]
        out.append("")
    out += ["## Edits and findings with no construct near (precision review)", ""]
    for r in positives:
        for m in r.unmatched:
            out.append(f"- `{_where(r, m.cell, m.line)}` {m.what} {m.code}: {m.message[:200]}")
    out += ["", "## Negatives (already multi-label, or not classification)", ""]
    out += ["| file | edits | findings | error |", "| --- | --- | --- | --- |"]
    for r in negatives:
        count = Counter(m.what for m in r.marks)
        out.append(f"| {r.repo}/{r.path} | {count['change']} | {count['finding']} | {r.error} |")
    out += ["", "## Per file", "", "| file | kind | constructs | covered | missed | edits | findings | no construct near | note |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        count = Counter(m.what for m in r.marks)
        note = r.error or ("; ".join(f"detector: {e}" for e in r.detector_errors))
        out.append(
            f"| {r.repo}/{r.path} | {r.kind} | {len(r.constructs)} | {len(r.covered)} | {len(r.missed)} | "
            f"{count['change']} | {count['finding']} | {len(r.unmatched)} | {note.replace('|', '/')} |"
        )
    return "\n".join(out) + "\n"


def _revision() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    return result.stdout.strip() or "(unknown revision)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=(*manifest.SPLITS, "all"), default="tune")
    parser.add_argument("--manifest", type=Path, default=manifest.MANIFEST)
    parser.add_argument("--files", type=Path, default=manifest.FILES, help="materialised files (fetch.py --dest)")
    parser.add_argument("--near", type=int, default=2, help="lines between a construct and an edit or finding that covers it")
    parser.add_argument("--report", type=Path, help="write the markdown report here (default: stdout)")
    parser.add_argument("--json", type=Path, help="also write every file's constructs, marks and coverage as JSON")
    parser.add_argument("--dump-hunks", type=Path, metavar="DIR", help="write `migrate-ml rewrite --diff` per repository into DIR")
    parser.add_argument("--repo", action="append", help="only these repositories (owner/name; repeatable)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="repositories processed at once (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        entries = manifest.select(manifest.load(args.manifest), args.split)
    except (OSError, manifest.ManifestError) as error:
        print(f"harness.py: {error}", file=sys.stderr)
        return 2
    if args.repo:
        entries = [entry for entry in entries if entry.repo in set(args.repo)]
    absent = [entry.local for entry in entries if not (args.files / entry.local).is_file()]
    if absent:
        print(f"harness.py: {len(absent)} files are not materialised (first: {args.files / absent[0]}); run fetch.py", file=sys.stderr)
        return 2
    if args.dump_hunks:
        args.dump_hunks.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[manifest.Entry]] = defaultdict(list)
    for entry in entries:
        groups[entry.repo].append(entry)
    started = time.perf_counter()
    results: list[FileResult] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = pool.map(run_group, groups.values(), repeat(args.files), repeat(args.near), repeat(args.dump_hunks), repeat(MIGRATE_ML))
        for group_results in runs:
            results.extend(group_results)
    order = {(entry.repo, entry.path): index for index, entry in enumerate(entries)}
    results.sort(key=lambda r: order[(r.repo, r.path)])
    text = markdown(results, args.split, args.near, time.perf_counter() - started, _revision())
    if args.report:
        args.report.write_text(text)
    else:
        sys.stdout.write(text)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    positives = [r for r in results if r.kind != manifest.NEGATIVE]
    total, hit = sum(len(r.constructs) for r in positives), sum(len(r.covered) for r in positives)
    print(f"{args.split}: {len(results)} files, {total} constructs, {hit} covered ({_pct(hit, total)}), "
          f"{sum(len(r.unmatched) for r in positives)} edits/findings with no construct near", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
