"""Jupyter notebooks: rewrite the code cells, leave everything else byte for byte.

The code cells are joined into one module so that the rules see the whole notebook (a
criterion built in one cell and called in another is followed like in a ``.py`` file). Each
cell after the first starts with a marker statement, ``pass  # migrate-ml-cell:N``, which no
rule edits, so the rewritten module splits back into the same cells. IPython syntax that is
not Python (``%magic``, ``!shell``, ``x = !cmd``, ``obj?``) is masked line by line with
``pass  # migrate-ml-magic:N`` at the same indentation and restored unchanged afterwards;
cells that start with a ``%%`` cell magic are left out entirely.

Only the cells' ``source`` changes: outputs, metadata, ids, ``nbformat``/``nbformat_minor`` and
key order are kept, and the JSON is written back with the indentation the file had, so the
diff shows only the edited source lines. Positions are reported per cell: ``line`` counts from
1 inside the cell, and ``cell`` is the cell's 1-based position among all cells (markdown
included), as a reader counts them in the notebook.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Callable

from migrate_ml.engine.source import SourceError, SourceFile
from migrate_ml.engine.transform import FileTransformer, Proposal, TransformResult

NOTEBOOK_SUFFIX = ".ipynb"

_CELL_MARKER = re.compile(r"^pass  # migrate-ml-cell:(\d+)$")
_MAGIC_PLACEHOLDER = re.compile(r"^(\s*)pass  # migrate-ml-magic:(\d+)$")
_IPYTHON_LINE = re.compile(r"^\s*(?:[%!]|[\w.]+\s*=\s*[%!])|^[^#'\"]*[\w)\]]\?{1,2}\s*$")


def is_notebook(path: str) -> bool:
    return path.endswith(NOTEBOOK_SUFFIX)


@dataclasses.dataclass
class _Cell:
    index: int
    """0-based position in the notebook's ``cells`` list."""
    source: str
    masked: str
    magic_lines: list[str]


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _mask(source: str, magic_lines: list[str]) -> str:
    """Replace IPython-only lines by placeholders, unless the cell is plain Python already."""
    try:
        compile(source, "<cell>", "exec", dont_inherit=True)
        return source
    except (SyntaxError, ValueError):
        pass
    lines = source.splitlines(keepends=True)
    continuing = False
    for number, line in enumerate(lines):
        if continuing or _IPYTHON_LINE.match(line):
            body = line.rstrip("\r\n")
            ending = line[len(body):]
            indent = body[: len(body) - len(body.lstrip())]
            lines[number] = f"{indent}pass  # migrate-ml-magic:{len(magic_lines)}{ending}"
            magic_lines.append(body)
            continuing = body.endswith("\\")
    return "".join(lines)


def _unmask(text: str, magic_lines: list[str]) -> str:
    def restore(line: str) -> str:
        body = line.rstrip("\r\n")
        match = _MAGIC_PLACEHOLDER.match(body)
        if match is None:
            return line
        return magic_lines[int(match.group(2))] + line[len(body):]

    return "".join(restore(line) for line in text.splitlines(keepends=True))


def _load(source: SourceFile) -> dict:
    try:
        notebook = json.loads(source.text)
    except json.JSONDecodeError as error:
        raise SourceError(source.path, f"not a notebook: invalid JSON ({error.msg})", error.lineno, error.colno) from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SourceError(source.path, "not a notebook: no list of cells")
    return notebook


class _Joined:
    """The code cells as one module, and the way back."""

    def __init__(self, notebook: dict) -> None:
        self.magic_lines: list[str] = []
        self.cells: list[_Cell] = []
        for index, cell in enumerate(notebook["cells"]):
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            source = _cell_text(cell)
            if source.lstrip().startswith("%%"):
                continue  # a cell magic: its body may not be Python at all
            self.cells.append(_Cell(index, source, _mask(source, self.magic_lines), self.magic_lines))
        parts = []
        for position, cell in enumerate(self.cells):
            if position:
                parts.append(f"pass  # migrate-ml-cell:{cell.index + 1}\n")
            parts.append(cell.masked)
            if cell.masked and not cell.masked.endswith("\n"):
                parts.append("\n")
        self.text = "".join(parts)

    def split(self, text: str) -> dict[int, str]:
        """Module text -> {0-based cell index: unmasked cell source}."""
        chunks: dict[int, list[str]] = {}
        current = self.cells[0].index if self.cells else 0
        for line in text.splitlines(keepends=True):
            match = _CELL_MARKER.match(line.rstrip("\r\n"))
            if match:
                current = int(match.group(1)) - 1
                continue
            chunks.setdefault(current, []).append(line)
        sources = {}
        for cell in self.cells:
            new = _unmask("".join(chunks.get(cell.index, [])), self.magic_lines)
            if not cell.source.endswith("\n") and new.endswith("\n"):
                new = new[:-1]
            sources[cell.index] = new
        return sources

    def locate(self, text: str, line: int) -> tuple[int, int]:
        """A 1-based module line -> (1-based cell number, 1-based line in that cell)."""
        cell = (self.cells[0].index if self.cells else 0) + 1
        in_cell = 0
        for number, content in enumerate(text.splitlines(), start=1):
            match = _CELL_MARKER.match(content)
            if match:
                cell, in_cell = int(match.group(1)), 0
            else:
                in_cell += 1
            if number == line:
                return cell, max(in_cell, 1)
        return cell, max(in_cell, 1)

    def render(self, text: str) -> str:
        """Module text as a readable document: each cell under a ``# %% [cell N]`` header."""
        sources = self.split(text)
        blocks = []
        for cell in self.cells:
            body = sources[cell.index]
            blocks.append(f"# %% [cell {cell.index + 1}]\n{body}{'' if body.endswith(chr(10)) or not body else chr(10)}")
        return "".join(blocks)


def _indent_of(text: str) -> int | None:
    lines = text.splitlines()
    if len(lines) < 2:
        return None
    second = lines[1]
    return len(second) - len(second.lstrip(" "))


def _dump(notebook: dict, original_text: str) -> str:
    text = json.dumps(notebook, indent=_indent_of(original_text), ensure_ascii=False)
    return text + "\n" if original_text.endswith("\n") else text


def _validate(path: str, text: str) -> None:
    import nbformat  # the `notebooks` extra; imported only when a notebook actually changes

    try:
        nbformat.validate(nbformat.reads(text, as_version=nbformat.NO_CONVERT))
    except nbformat.ValidationError as error:
        raise SourceError(path, f"internal error: rewritten notebook is not valid ({error.message}); file left unchanged") from None


def transform_notebook(
    transformer: FileTransformer, source: SourceFile, accept: Callable[[Proposal], bool] | None = None
) -> TransformResult:
    """Rewrite the code cells of a notebook; positions in the result are per cell."""
    notebook = _load(source)
    joined = _Joined(notebook)
    module_source = SourceFile(path=source.path, data=joined.text.encode("utf-8"), text=joined.text)
    if accept is not None:
        accept = _per_cell_proposals(joined, accept)
    try:
        inner = transformer.transform(module_source, accept)
    except SourceError as error:
        cell, line = joined.locate(joined.text, error.line)
        raise SourceError(f"{source.path}:cell {cell}", error.message, line, error.column) from None

    result = TransformResult(source=source, new_data=source.data, new_text=source.text, skipped=inner.skipped)
    result.changes = [_in_cell(joined, joined.text, change) for change in inner.changes]
    result.findings_before = [_in_cell(joined, joined.text, finding) for finding in inner.findings_before]
    result.findings_after = [_in_cell(joined, inner.new_text, finding) for finding in inner.findings_after]
    if inner.new_text == joined.text:
        return result
    new_sources = joined.split(inner.new_text)
    for index, new_source in new_sources.items():
        cell = notebook["cells"][index]
        if new_source == _cell_text(cell):
            continue
        cell["source"] = new_source.splitlines(keepends=True) if isinstance(cell.get("source"), list) else new_source
    new_text = _dump(notebook, source.text)
    _validate(source.path, new_text)
    result.new_text, result.new_data = new_text, new_text.encode("utf-8")
    return result


def _in_cell(joined: _Joined, text: str, item):
    cell, line = joined.locate(text, item.line)
    changes = {"cell": cell, "line": line}
    if hasattr(item, "end_line"):
        end_cell, end_line = joined.locate(text, item.end_line)
        changes.update(end_line=end_line, end_cell=end_cell)
    return dataclasses.replace(item, **changes)


def _per_cell_proposals(joined: _Joined, accept: Callable[[Proposal], bool]) -> Callable[[Proposal], bool]:
    """Show proposals as cell documents with magics restored, not as the joined module."""

    def ask(proposal: Proposal) -> bool:
        return accept(
            dataclasses.replace(
                proposal,
                changes=tuple(_in_cell(joined, proposal.text, change) for change in proposal.changes),
                text=joined.render(proposal.text),
                preview=lambda: joined.render(proposal.preview()),
            )
        )

    return ask


def source_json_lines(json_text: str) -> dict[int, int]:
    """{1-based cell number: JSON line of its ``"source"`` key}, for mapping cell lines onto a diff.

    A cell whose source is a list has source line ``n`` on JSON line ``key_line + n``.
    """
    starts: dict[int, int] = {}
    cell = 0
    depth_of_cells = None
    for number, line in enumerate(json_text.splitlines(), start=1):
        stripped = line.strip()
        if depth_of_cells is None:
            if stripped.startswith('"cells"'):
                depth_of_cells = len(line) - len(line.lstrip())
            continue
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("{") and indent == depth_of_cells + _step(json_text):
            cell += 1
        elif stripped.startswith('"source"') and indent == depth_of_cells + 2 * _step(json_text):
            starts[cell] = number
        elif indent <= depth_of_cells and stripped.startswith(("]", '"')):
            break
    return starts


def _step(json_text: str) -> int:
    return _indent_of(json_text) or 1
