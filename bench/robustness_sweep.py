"""Robustness sweep: ``migrate-ml rewrite --diff`` over every ``.py`` file of torch, torchvision
and timm (not part of CI).

The packages' ``.py`` files are copied into a scratch git repository (site-packages is never
touched). For each package the installed ``migrate-ml`` runs ``rewrite --diff -jN`` on the copy
and the sweep checks that

* the command did not crash (exit 0, 1 or 2, no traceback, no ``internal error`` line);
* the patch applies with ``git apply``, and every file it changes still parses with LibCST and,
  when the original compiled, with CPython;
* a second ``--diff`` on the patched copy is empty (idempotency).

Files the command could not process (input LibCST cannot parse, say) are counted separately.

The pseudo-package ``adversarial`` is a generated folder of inputs built to break a rewriter:
brackets nested 5,000 deep (LibCST's native parser overflows its stack), a FIFO and
``/dev/zero`` among the inputs, ``\\r``-only and CRLF+BOM line endings, notebooks whose cells
quote the internal markers or keep CRLF, a BOM, ``\\uXXXX`` escapes and ``1.10``, and odd
notebooks (a number or a list holding a number as a cell's source, no cells, invalid JSON, a
cell that is not an object, no metadata, a lone surrogate, nbformat 3); since issue 21 also a
form feed LibCST does not print back, blank lines before trailing spaces and after the last
``\\r`` at the end of a file (LibCST drops them; set aside and put back), a tab and a line
break in file names (the ``--diff`` patch must still apply), a 0444 file (root must not
replace it), a symbolic link out of the tree (its target must not change), a symbolic-link loop, two hard links to one file, a
1 MB module of data literals and 700 KB of code (refused in one line, not parsed for minutes).
Besides the checks above, each command must finish within a time limit (nothing hangs), every
error must be one line naming its file, and no byte may be lost: after an in-place
``rewrite``, a file not reported as rewritten is byte-identical, a rewritten file is exactly
what its ``--diff`` patch gives, and a rewritten notebook changed no line outside its cells'
``source`` values; each rewritten input must hold exactly the two expected edits.

``adversarial`` then attacks the runtime side (``reference``, ``sample-data``, ``verify``; see
``robustness_runtime.py``), one case per attack with its expected exit status and message, and
prints a summary table to stderr: cases, held, lost bytes, tracebacks and hangs per section.
Usage::

    .venv/bin/python bench/robustness_sweep.py [-j 2] [adversarial torch torchvision timm]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import libcst
from migrate_ml.engine.source import shown_path
from robustness_runtime import CROSS_ENTROPY, DEEP, Outcome, as_json, migrate_ml_command, runtime_sweep

TOTALS = re.compile(
    r"(?P<changed>\d+) files? would be rewritten, (?P<unchanged>\d+) left unchanged, "
    r"(?P<findings>\d+) findings? needs? review(?:, (?P<errors>\d+) files? could not be processed)?"
)


def copy_sources(package: str, into: Path) -> tuple[Path, int]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{package} is not installed")
    source = Path(list(spec.submodule_search_locations)[0])
    target = into / package
    count = 0
    for path in source.rglob("*.py"):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)
        count += 1
    return target, count


def compiles(data: bytes) -> bool:
    try:
        compile(data, "<sweep>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def sweep(package: str, scratch: Path, jobs: int) -> dict:
    tree, total = copy_sources(package, scratch)
    tool = migrate_ml_command()
    start = time.perf_counter()
    done = subprocess.run([*tool, "rewrite", "--diff", f"-j{jobs}", package], cwd=scratch, capture_output=True)
    elapsed = time.perf_counter() - start
    stderr = done.stderr.decode("utf-8", "replace")
    totals = TOTALS.search(stderr)
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    result = {
        "package": package,
        "py_files": total,
        "exit_code": done.returncode,
        "seconds": round(elapsed, 1),
        "processed": None,
        "changed": int(totals["changed"]) if totals else None,
        "findings": int(totals["findings"]) if totals else None,
        "errors": len(errors),
        "internal_errors": [line for line in errors if "internal error" in line],
        "crashed": done.returncode not in (0, 1, 2) or "Traceback" in stderr or totals is None,
        "error_lines": errors[:20],
    }
    if totals:
        result["processed"] = int(totals["changed"]) + int(totals["unchanged"]) + int(totals["errors"] or 0)
    patch = scratch / f"{package}.patch"
    patch.write_bytes(done.stdout)
    changed_files = sorted(set(re.findall(rb"^\+\+\+ b/(.+)$", done.stdout, re.MULTILINE)))
    originals = {name: (scratch / name.decode()).read_bytes() for name in changed_files}
    applied = subprocess.run(["git", "apply", patch.name], cwd=scratch, capture_output=True, text=True)
    result["patch_applies"] = applied.returncode == 0
    if not result["patch_applies"]:
        result["git_apply_error"] = applied.stderr[-2000:]
    not_parsing = []
    for name, before in originals.items():
        after = (scratch / name.decode()).read_bytes()
        try:
            libcst.parse_module(after)
        except Exception as error:  # the sweep records every failure, whatever its type
            not_parsing.append(f"{name.decode()}: LibCST: {error}"[:300])
            continue
        if compiles(before) and not compiles(after):
            not_parsing.append(f"{name.decode()}: CPython rejects the rewritten file")
    result["changed_outputs_checked"] = len(originals)
    result["changed_outputs_not_parsing"] = not_parsing
    again = subprocess.run([*tool, "rewrite", "--diff", f"-j{jobs}", package], cwd=scratch, capture_output=True)
    result["second_run_patch_bytes"] = len(again.stdout)
    return result


def _notebook(cells: list, **top) -> dict:
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5, **top}


def _code_cell(source, **fields) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source, **fields}


def adversarial_inputs() -> dict[str, bytes | None]:
    """{relative path: bytes}; None makes a FIFO."""
    styled_output = {"name": "stdout", "output_type": "stream", "text": ["caf\u00e9 \u2713 loss 2.3\n"]}
    styled = json.dumps(_notebook([
        _code_cell(["import torch.nn as nn\n", "criterion = nn.CrossEntropyLoss()\n", "x = 1"], outputs=[styled_output]),
        _code_cell(["print('untouched')"], metadata={"scale": 1.5}),
    ]), indent=3).replace("1.5", "1.10").replace("\n", "\r\n") + "\r\n"
    quoted = ["pass  # migrate-ml-magic:0\n", "# migrate-ml-cell:1\n", "pass  # migrate-ml-cell-0:2\n",
              "import migrate_ml_magic_0_0\n"]
    collisions = json.dumps(_notebook([
        _code_cell(["%matplotlib inline\n", "import torch.nn as nn"]),
        _code_cell([*quoted, "criterion = nn.CrossEntropyLoss()\n", "x = 2"]),
        _code_cell(["!ls\n", *quoted, "y = 3"]),
    ]), indent=1) + "\n"
    return {
        "deep/nested_with_trigger.py": (CROSS_ENTROPY + f"x = {DEEP}\n").encode(),
        "deep/nested_without_trigger.py": f"x = {DEEP}\n".encode(),
        "deep/nested_calls.py": (CROSS_ENTROPY + "y = " + "f(" * 3000 + ")" * 3000 + "\n").encode(),
        "special/fifo.py": None,
        "endings/cr_only.py": CROSS_ENTROPY.replace("\n", "\r").encode(),
        "endings/crlf_bom.py": b"\xef\xbb\xbf" + CROSS_ENTROPY.replace("\n", "\r\n").encode(),
        "endings/no_final_newline.py": CROSS_ENTROPY.rstrip("\n").encode(),
        "endings/latin1_cookie.py": b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + CROSS_ENTROPY.encode(),
        "bad/undecodable.py": b"x = '\xff'\n" + CROSS_ENTROPY.encode(),
        "bad/null_byte.py": CROSS_ENTROPY.encode() + b"\x00\n",
        "bad/syntax_error.py": CROSS_ENTROPY.encode() + b"def (:\n",
        "bad/empty.py": b"",
        "notebooks/styled.ipynb": b"\xef\xbb\xbf" + styled.encode(),
        "notebooks/marker_collisions.ipynb": collisions.encode(),
        "notebooks/number_source.ipynb": json.dumps(_notebook([_code_cell(CROSS_ENTROPY), _code_cell(5)])).encode(),
        "notebooks/list_with_number.ipynb": json.dumps(_notebook([_code_cell(["x = 1\n", 7])])).encode(),
        "notebooks/null_source.ipynb": json.dumps(_notebook([_code_cell(None)])).encode(),
        "notebooks/no_cells.ipynb": json.dumps({"metadata": {}, "nbformat": 4}).encode(),
        "notebooks/cells_not_a_list.ipynb": json.dumps(_notebook({"a": 1})).encode(),
        "notebooks/invalid_json.ipynb": b'{"cells": [\n  CrossEntropyLoss\n',
        "notebooks/empty.ipynb": b"",
        "notebooks/cell_magic_only.ipynb": json.dumps(_notebook([_code_cell("%%bash\necho CrossEntropyLoss\n")])).encode(),
        # Round two (issue 21).
        "notebooks/non_dict_cell.ipynb": json.dumps(_notebook([_code_cell(CROSS_ENTROPY), 5])).encode(),
        "notebooks/no_metadata.ipynb": json.dumps({"cells": [_code_cell(CROSS_ENTROPY)], "nbformat": 4, "nbformat_minor": 5}).encode(),
        "notebooks/lone_surrogate.ipynb": json.dumps(_notebook([_code_cell(CROSS_ENTROPY + "s = 'X'\n")])).replace("X", "\\ud800").encode(),
        "notebooks/nbformat3.ipynb": json.dumps({"worksheets": [{"cells": [{"cell_type": "code", "input": CROSS_ENTROPY}]}],
                                                 "metadata": {}, "nbformat": 3, "nbformat_minor": 0}).encode(),
        "endings/form_feed_before_def.py": b"import torch.nn as nn\n\n\x0cdef f(out, labels):\n    criterion = nn.CrossEntropyLoss()\n"
                                           b"    loss = criterion(out, labels)\n",
        # Round 21: whitespace LibCST changes at an end without "\n", set aside and put back.
        "endings/blank_lines_before_spaces.py": CROSS_ENTROPY.encode() + b"  \n\n\t    ",
        "endings/cr_blank_lines.py": CROSS_ENTROPY.replace("\n", "\r").encode() + b"\r\r",
        "names/tab\there.py": CROSS_ENTROPY.encode(),
        "names/new\nline.py": CROSS_ENTROPY.encode(),
        "modes/read_only.py": CROSS_ENTROPY.encode(),
        "links/a.py": CROSS_ENTROPY.encode(),
        "big/data.py": (CROSS_ENTROPY + "DATA = [\n" + "".join(
            f"    [{', '.join(str((row * 7 + i) % 1000) for i in range(20))}],\n" for row in range(12000)
        ) + "]\n").encode(),
        "big/code.py": (CROSS_ENTROPY + "".join(f"value_{i} = compute({i}, scale=2.5)  # step {i}\n" for i in range(14000))).encode(),
    }


READ_ONLY = ("modes/read_only.py",)
"""Inputs given mode 0444: not to be written, even by root."""
LINKS = {
    "links/escape.py": ("symlink", "../../outside/victim.py"),
    "links/loop.py": ("symlink", "loop.py"),
    "links/b.py": ("hardlink", "links/a.py"),
}
"""Links made beside the inputs: a symbolic link out of the tree (its target must not change),
a symbolic-link loop, and a second hard link to an input (one file for two workers)."""


def expected_rewrite(before: bytes) -> bytes:
    """What the rules must make of an input built around ``CROSS_ENTROPY``: two edits, nothing else."""
    return before.replace(b"nn.CrossEntropyLoss()", b"nn.BCEWithLogitsLoss()").replace(
        b"criterion(out, labels)", b"criterion(out, labels.float())"
    )


def _source_spellings(notebook_text: str) -> set[str]:
    """Every way a line of a cell's source can appear in the JSON, as a patch line would show it."""
    spellings = set()
    for cell in json.loads(notebook_text).get("cells", []):
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        lines = source if isinstance(source, list) else [source]
        for line in lines:
            if isinstance(line, str):
                spellings.update({json.dumps(line), json.dumps(line, ensure_ascii=False)})
    return spellings


def _lost_bytes(name: str, before: bytes, after: bytes, patched: bytes | None, rewritten: bool) -> str | None:
    if not rewritten:
        return None if after == before else f"{name}: changed although not reported as rewritten"
    if patched is not None and after != patched:
        return f"{name}: the rewritten file differs from what its --diff patch gives"
    if name.endswith(".ipynb"):
        import difflib

        old_lines = before.decode("utf-8-sig").splitlines()
        spellings = _source_spellings(before.decode("utf-8-sig"))
        new_lines = after.decode("utf-8-sig").splitlines()
        for tag, first, last, _, _ in difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes():
            for line in old_lines[first:last] if tag != "equal" else ():
                if line.strip().rstrip(",") not in spellings and not line.strip().startswith('"source":'):
                    return f"{name}: a line outside the cells' sources changed: {line.strip()[:80]}"
        if before.startswith(b"\xef\xbb\xbf") != after.startswith(b"\xef\xbb\xbf"):
            return f"{name}: BOM lost"
    return None


def adversarial_sweep(scratch: Path, jobs: int, limit: float = 120) -> dict:
    root = scratch / "adversarial"
    inputs = adversarial_inputs()
    for name, data in inputs.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is None:
            os.mkfifo(path)
        else:
            path.write_bytes(data)
    for name in READ_ONLY:
        (root / name).chmod(0o444)
    victim = scratch / "outside" / "victim.py"
    victim.parent.mkdir(exist_ok=True)
    victim.write_bytes(CROSS_ENTROPY.encode())
    for name, (kind, target) in LINKS.items():
        if kind == "symlink":
            (root / name).symlink_to(target)
        else:
            os.link(root / target, root / name)
    tool = migrate_ml_command()
    arguments = ["adversarial", "/dev/zero"]
    result: dict = {"package": "adversarial", "inputs": len(inputs) + len(LINKS) + 1, "hung": []}

    def run(*extra: str):
        try:
            return subprocess.run([*tool, "rewrite", *extra, f"-j{jobs}", *arguments], cwd=scratch,
                                  capture_output=True, timeout=limit)
        except subprocess.TimeoutExpired:
            result["hung"].append(" ".join(extra) or "rewrite")
            return None

    start = time.perf_counter()
    diff = run("--diff")
    originals = {name: (root / name).read_bytes() for name, data in inputs.items() if data is not None}
    rewrite = run()
    result["seconds"] = round(time.perf_counter() - start, 1)
    if diff is None or rewrite is None:
        return result
    output = (diff.stderr + rewrite.stdout + rewrite.stderr).decode("utf-8", "replace")
    errors = sorted({line for line in output.splitlines() if ": error: " in line})
    result.update({
        "exit_codes": [diff.returncode, rewrite.returncode],
        "tracebacks": output.count("Traceback"),
        "internal_errors": [line for line in errors if "internal error" in line],
        "errors_not_naming_a_file": [line for line in errors if not line.startswith(("adversarial/", "/dev/zero"))],
        "error_lines": errors,
    })
    report = rewrite.stdout.decode("utf-8", "replace")
    # Names may hold a tab or a line break, which the report prints as C escapes: looked up one
    # by one, as the report spells them, rather than parsed out.
    rewritten = {
        f"adversarial/{name}" for name in [*inputs, *LINKS] if f"Rewrote {shown_path(f'adversarial/{name}')}: " in report
    }
    for name, (kind, target) in LINKS.items():
        if kind == "hardlink" and f"adversarial/{target}" in rewritten:
            rewritten.add(f"adversarial/{name}")  # one file under two names, reported under the first
    # The --diff patch, applied to a copy of the originals, is what the in-place rewrite must give.
    patched_root = scratch / "adversarial-patched"
    shutil.rmtree(patched_root, ignore_errors=True)
    for name, data in originals.items():
        (patched_root / name).parent.mkdir(parents=True, exist_ok=True)
        (patched_root / name).write_bytes(data)
    patch = diff.stdout
    for side in (b"a", b"b"):  # names git quotes (a tab, a line break) start with a quote
        for opening in (b" ", b' "'):
            patch = patch.replace(opening + side + b"/adversarial/", opening + side + b"/adversarial-patched/")
    applied = subprocess.run(["git", "apply", "--unsafe-paths", "-"], cwd=scratch, input=patch, capture_output=True)
    result["patch_applies"] = applied.returncode == 0
    lost = []
    lost_count = 0
    for name, before in originals.items():
        after = (root / name).read_bytes()
        patched = (patched_root / name).read_bytes() if result["patch_applies"] else None
        problem = _lost_bytes(name, before, after, patched, f"adversarial/{name}" in rewritten)
        if problem:
            lost.append(problem)
            lost_count += len(before)
    if victim.read_bytes() != CROSS_ENTROPY.encode():
        lost.append("outside/victim.py: written through a symbolic link out of the tree")
        lost_count += len(CROSS_ENTROPY)
    for name in READ_ONLY:
        if f"adversarial/{name}" in rewritten:
            lost.append(f"{name}: a 0444 file was replaced")
    result["rewritten"] = sorted(rewritten)
    result["lost_bytes"] = lost
    result["lost_byte_count"] = lost_count
    # Each rewritable input holds the same two edits: anything else is a corrupted cell or line.
    result["unexpected_rewrites"] = [
        name for name, before in originals.items()
        if f"adversarial/{name}" in rewritten and (root / name).read_bytes() != expected_rewrite(before)
    ]
    result["crashed"] = bool(result["tracebacks"] or result["internal_errors"] or result["hung"]
                             or result["lost_bytes"] or result["unexpected_rewrites"]
                             or any(code not in (0, 1, 2) for code in result["exit_codes"]))
    return result


def rewrite_row(result: dict) -> dict:
    """The rewrite section as a row of the summary: an input held when nothing of it was lost,
    mis-rewritten or reported without its name; a hang, a traceback or a patch git rejects fails them all."""
    row = {"section": "rewrite", "cases": result["inputs"], "held": 0, "lost_bytes": result.get("lost_byte_count", 0),
           "tracebacks": result.get("tracebacks", 0), "hangs": len(result["hung"])}
    if result["hung"]:
        return row
    failed = {line.split(": ")[0] for line in result["lost_bytes"] + result["internal_errors"]}
    failed |= {f"adversarial/{name}" for name in result["unexpected_rewrites"]}
    whole_run = (result["tracebacks"] or not result["patch_applies"]
                 or any(code not in (0, 1, 2) for code in result["exit_codes"]))
    if not whole_run:
        row["held"] = max(0, row["cases"] - len(failed) - len(result["errors_not_naming_a_file"]))
    return row


def summary_rows(rewrite: dict, runtime: dict[str, list[Outcome]]) -> list[dict]:
    rows = [rewrite_row(rewrite)] + [
        {"section": section, "cases": len(outcomes), "held": sum(o.held for o in outcomes),
         "lost_bytes": sum(o.lost_bytes for o in outcomes), "tracebacks": sum(o.tracebacks for o in outcomes),
         "hangs": sum(o.hung for o in outcomes)}
        for section, outcomes in runtime.items()
    ]
    rows.append({"section": "all", **{key: sum(row[key] for row in rows) for key in SUMMARY_COLUMNS}})
    return rows


SUMMARY_COLUMNS = ("cases", "held", "lost_bytes", "tracebacks", "hangs")


def format_summary(rows: list[dict], runtime: dict[str, list[Outcome]]) -> str:
    lines = [f"{'adversarial sweep':<18}" + "".join(f"{column.replace('_', ' '):>12}" for column in SUMMARY_COLUMNS)]
    lines += [f"{row['section']:<18}" + "".join(f"{row[column]:>12}" for column in SUMMARY_COLUMNS) for row in rows]
    for outcome in (o for outcomes in runtime.values() for o in outcomes if not o.held):
        lines.append(f"not held: {outcome.case.name}: {'; '.join(outcome.problems)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=["adversarial", "torch", "torchvision", "timm"])
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args()
    from migrate_ml.rules import load_rules

    results = []
    with tempfile.TemporaryDirectory(prefix="migrate-ml-sweep-") as folder:
        scratch = Path(folder)
        subprocess.run(["git", "init", "-q"], cwd=scratch, check=True)
        for package in args.packages:
            if package == "adversarial":
                results.append(adversarial_sweep(scratch, args.jobs))
                print(json.dumps(results[-1]), file=sys.stderr)
                runtime = runtime_sweep(scratch, args.jobs)
                rows = summary_rows(results[-1], runtime)
                results.append({"package": "adversarial-runtime", "summary": rows,
                                "cases": {section: [as_json(o) for o in outcomes] for section, outcomes in runtime.items()}})
                print(format_summary(rows, runtime), file=sys.stderr)
            else:
                results.append(sweep(package, scratch, args.jobs))
                print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"rules": sorted(load_rules()), "results": results}, indent=2))


if __name__ == "__main__":
    main()
