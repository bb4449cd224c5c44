"""Jupyter notebooks: rewrite the code cells, leave everything else byte for byte.

The code cells are joined into one module so that the rules see the whole notebook (a
criterion built in one cell and called in another is followed like in a ``.py`` file). Each
cell after the first starts with a marker statement, ``pass  # migrate-ml-cell-T:N``, which no
rule edits, so the rewritten module splits back into the same cells. IPython syntax that is
not Python (``%magic``, ``!shell``, ``x = !cmd``, ``obj?``, ``?obj``, automagic such as ``pip install x``) is masked line by line with a
placeholder import, ``import migrate_ml_magic_T_N``, at the same indentation and restored
unchanged afterwards; being an import, it keeps the threshold constant and added imports below
the magics (``!pip install``, ``%matplotlib``) of the cell they land in. Cells that start with a
``%%`` cell magic are left out entirely. ``T`` is a tag chosen so that no cell contains either
marker: a cell that quotes them cannot be mistaken for one.

The file is written back as it was read, with only the edited cells' ``source`` values replaced
in the JSON text: line endings, BOM, indentation, escapes, number spellings, outputs and key
order are kept, and a list-form source keeps the spelling of every line that did not change.
Positions are reported per cell: ``line`` counts from 1 inside the cell, and ``cell`` is the
cell's 1-based position among all cells (markdown included), as a reader counts them in the
notebook.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import re
import warnings
from typing import Callable

from migrate_ml.engine.source import SourceError, SourceFile
from migrate_ml.engine.transform import FileTransformer, Proposal, TransformResult, with_line_mentions

NOTEBOOK_SUFFIX = ".ipynb"
NOTEBOOKS_EXTRA_HINT = "pip install 'migrate-ml[notebooks]'"

_IPYTHON_LINE = re.compile(r"^\s*(?:[%!]|[\w.]+\s*=\s*[%!]|\?{1,2}\s*[\w.])|^[^#'\"]*[\w)\]]\?{1,2}\s*$")
_AUTOMAGIC_LINE = re.compile(
    r"^\s*(?:pip|conda|cd|ls|ll|pwd|mkdir|rmdir|rm|cp|mv|cat|env|set_env|matplotlib|load_ext|reload_ext"
    r"|autoreload|run|time|timeit|pushd|popd|who|whos|history|reset|xmode|config)"
    r"(?:\s*$|\s+(?!(?:and|or|if|else|in|is|not|for|as)\b)[\w\-.~/$'\"])"
)
"""A line magic or shell alias typed without ``%``, which IPython's automagic runs (``pip install
-q timm``, ``cd data``, ``ls``): masked like a magic, but only in a cell that is not Python as a
whole, and only when what follows the name cannot continue a Python expression (``time = 3``,
``ls(...)`` and ``cd + x`` stay code)."""
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_JSON_LINE = re.compile(r"[^\n]*\n|[^\n]+$")
"""Lines of a list-form source as nbformat stores them: split after each ``\\n`` only."""


def is_notebook(path: str) -> bool:
    return path.endswith(NOTEBOOK_SUFFIX)


@dataclasses.dataclass
class _Cell:
    index: int
    """0-based position in the notebook's ``cells`` list."""
    source: str
    masked: str
    indent: str = ""
    """The leading indent IPython strips from every line of the cell before running it."""


@dataclasses.dataclass(frozen=True)
class _Markers:
    """The cell marker and magic placeholder, tagged so that no cell's text contains them."""

    tag: int

    @classmethod
    def avoiding(cls, texts: list[str]) -> "_Markers":
        for tag in itertools.count():
            markers = cls(tag)
            if not any(markers.cell_prefix in text or markers.magic_prefix in text for text in texts):
                return markers
        raise AssertionError("unreachable: finite texts cannot hold every tag")

    @property
    def cell_prefix(self) -> str:
        return f"migrate-ml-cell-{self.tag}:"

    @property
    def magic_prefix(self) -> str:
        return f"migrate_ml_magic_{self.tag}_"

    def cell_line(self, index: int) -> str:
        return f"pass  # {self.cell_prefix}{index + 1}\n"

    def cell_number(self, line: str) -> int | None:
        """The 1-based cell a marker line starts, or None for any other line."""
        match = re.fullmatch(rf"pass  # {re.escape(self.cell_prefix)}(\d+)", line.rstrip("\r\n"))
        return int(match.group(1)) if match else None

    def magic_line(self, indent: str, number: int) -> str:
        return f"{indent}import {self.magic_prefix}{number}"

    def magic_number(self, line: str) -> int | None:
        match = re.fullmatch(rf"\s*import {re.escape(self.magic_prefix)}(\d+)", line.rstrip("\r\n"))
        return int(match.group(1)) if match else None


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _mask(source: str, markers: _Markers, magic_lines: list[str]) -> str:
    """Replace IPython-only lines by placeholders, unless the cell is plain Python already."""
    try:
        compile(source, "<cell>", "exec", dont_inherit=True)
        return source
    except (SyntaxError, ValueError):
        pass
    lines = source.splitlines(keepends=True)
    continuing = False
    for number, line in enumerate(lines):
        if continuing or _IPYTHON_LINE.match(line) or (_AUTOMAGIC_LINE.match(line) and not _compiles(line.strip())):
            body = line.rstrip("\r\n")
            ending = line[len(body):]
            indent = body[: len(body) - len(body.lstrip())]
            lines[number] = markers.magic_line(indent, len(magic_lines)) + ending
            magic_lines.append(body)
            continuing = body.endswith("\\")
    return "".join(lines)


def _compiles(line: str) -> bool:
    try:
        compile(line, "<line>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


_PYTHON_BODY_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug"})
"""Cell magics that run their body as Python (``%%time`` around a training loop is common in notebooks)."""


def _python_cell_magic(source: str, markers: _Markers) -> bool:
    """A ``%%time``-like cell (or ``%%writefile x.py``) whose body parses as Python once line magics are masked."""
    first = source.lstrip().split("\n", 1)[0].split()
    name = first[0][2:] if first else ""
    writes_python = name == "writefile" and len(first) > 1 and first[-1].endswith(".py")
    if name not in _PYTHON_BODY_CELL_MAGICS and not writes_python:
        return False
    try:
        compile(_mask(source, markers, []), "<cell>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _common_indent(source: str) -> str:
    """The indent of a cell whose first line is indented (`` x = 1\n y = 2``, `` def f():\n    return
    1\nf()``): IPython strips the first line's indent from each line that starts with it, leaves
    the others as they are, and runs the rest, where Python would stop at an unexpected indent.
    "" for anything else, including a cell that compiles as it is."""
    lines = [line for line in source.splitlines() if line.strip()]
    if not lines:
        return ""
    indent = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
    if not indent:
        return ""
    try:
        compile(source, "<cell>", "exec", dont_inherit=True)
        return ""
    except (SyntaxError, ValueError):
        return indent


def _strip_indent(source: str, indent: str) -> str:
    if not indent:
        return source
    return "".join(line[len(indent):] if line.startswith(indent) else line for line in source.splitlines(keepends=True))


def _restore_indent(original: str, indent: str, new: str) -> str:
    """``new`` (an edit of the stripped cell) with ``indent`` given back where ``original`` had it.
    A line kept from the original is the original line, so one that lacked the indent (``f()``
    after `` def f():``) stays as it was; a line rewritten in place gets the indent if its
    original had it, and a line an edit added gets it (IPython strips it again)."""
    original_lines = original.splitlines(keepends=True)
    stripped = _strip_indent(original, indent).splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    restored = [indent + line if line.strip() else line for line in new_lines]
    matcher = difflib.SequenceMatcher(None, stripped, new_lines, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        for offset in range(new_end - new_start):
            if tag == "equal":
                restored[new_start + offset] = original_lines[old_start + offset]
            elif tag == "replace" and old_end - old_start == new_end - new_start:
                if not original_lines[old_start + offset].startswith(indent):
                    restored[new_start + offset] = new_lines[new_start + offset]
    return "".join(restored)


def _unmask(text: str, markers: _Markers, magic_lines: list[str]) -> str:
    def restore(line: str) -> str:
        number = markers.magic_number(line)
        if number is None:
            return line
        return magic_lines[number] + line[len(line.rstrip("\r\n")):]

    return "".join(restore(line) for line in text.splitlines(keepends=True))


def _load(source: SourceFile) -> dict:
    try:
        notebook = json.loads(source.text)
    except json.JSONDecodeError as error:
        raise SourceError(source.path, f"not a notebook: invalid JSON ({error.msg})", error.lineno, error.colno) from None
    if isinstance(notebook, dict) and (isinstance(notebook.get("worksheets"), list) or _major(notebook) in (1, 2, 3)):
        raise SourceError(
            source.path,
            f"nbformat {_major(notebook) or 3} notebook: migrate-ml reads nbformat 4; convert it first "
            "(jupyter nbconvert --to notebook --nbformat 4)",
            line=None,
        )
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SourceError(source.path, "not a notebook: no list of cells")
    return notebook


def _major(notebook: dict) -> int | None:
    version = notebook.get("nbformat")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _check_code_sources(source: SourceFile, notebook: dict) -> None:
    """Each cell must be an object, and a code cell's ``source`` a string or a list of strings
    without lone surrogates (nbformat's schema, and text that can be written)."""
    for index, cell in enumerate(notebook["cells"]):
        if not isinstance(cell, dict):
            raise SourceError(
                source.path, f"malformed notebook: cell {index + 1} is {_with_article(_json_type(cell))}, not an object", line=None
            )
        if cell.get("cell_type") != "code":
            continue
        value = cell.get("source", "")
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            try:
                _cell_text(cell).encode("utf-8")
                continue
            except UnicodeEncodeError as error:  # a "\ud800" escape decodes to a lone surrogate
                problem = f"holds U+{ord(error.object[error.start]):04X}, a lone surrogate that no text file can hold"
        else:
            kind = "a list holding a non-string" if isinstance(value, list) else _with_article(_json_type(value))
            problem = f"is {kind}, not text"
        start = _JsonText(source.text).source_spans().get(index, (0, 0))[0]
        line = source.text.count("\n", 0, start) + 1
        column = start - source.text.rfind("\n", 0, start)
        raise SourceError(source.path, f"malformed notebook: the source of cell {index + 1} {problem}", line, column)


def _json_type(value) -> str:
    if isinstance(value, bool) or value is None:
        return "boolean" if isinstance(value, bool) else "null"
    return {int: "number", float: "number", dict: "object"}.get(type(value), type(value).__name__)


def _with_article(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


class _Joined:
    """The code cells as one module, and the way back."""

    def __init__(self, notebook: dict) -> None:
        self.magic_lines: list[str] = []
        self.cells: list[_Cell] = []
        code_cells = [
            (index, _cell_text(cell))
            for index, cell in enumerate(notebook["cells"])
            if isinstance(cell, dict) and cell.get("cell_type") == "code"
        ]
        self.markers = _Markers.avoiding([text for _, text in code_cells])
        for index, source in code_cells:
            if source.lstrip().startswith("%%") and not _python_cell_magic(source, self.markers):
                continue  # a cell magic whose body is not Python (%%bash, %%html, %%writefile data.csv, …)
            indent = _common_indent(source)
            body = _strip_indent(source, indent)
            self.cells.append(_Cell(index, source, _mask(body, self.markers, self.magic_lines), indent))
        parts = []
        for position, cell in enumerate(self.cells):
            if position:
                parts.append(self.markers.cell_line(cell.index))
            parts.append(cell.masked)
            if cell.masked and not cell.masked.endswith("\n"):
                parts.append("\n")
        self.text = "".join(parts)

    def split(self, text: str) -> dict[int, str]:
        """Module text -> {0-based cell index: unmasked cell source}."""
        chunks: dict[int, list[str]] = {}
        current = self.cells[0].index if self.cells else 0
        for line in text.splitlines(keepends=True):
            number = self.markers.cell_number(line)
            if number is not None:
                current = number - 1
                continue
            chunks.setdefault(current, []).append(line)
        sources = {}
        for cell in self.cells:
            new = _unmask("".join(chunks.get(cell.index, [])), self.markers, self.magic_lines)
            if cell.indent:
                new = _restore_indent(cell.source, cell.indent, new)
            if not cell.source.endswith(("\n", "\r")):
                # The cell ended without a line break: so does its new text, even where a
                # fix added lines at its end (the threshold constant, with a blank line after).
                new = new.rstrip("\r\n")
            sources[cell.index] = new
        return sources

    def locate(self, text: str, line: int) -> tuple[int, int]:
        """A 1-based module line -> (1-based cell number, 1-based line in that cell)."""
        cell = (self.cells[0].index if self.cells else 0) + 1
        in_cell = 0
        for number, content in enumerate(text.splitlines(), start=1):
            marker = self.markers.cell_number(content)
            if marker is not None:
                cell, in_cell = marker, 0
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


class _JsonText:
    """Where values sit in the notebook's JSON text, so that edits replace only their bytes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._decoder = json.JSONDecoder()

    def _skip(self, position: int) -> int:
        return _WHITESPACE.match(self.text, position).end()

    def members(self, position: int) -> dict[str, tuple[int, int]]:
        """{key: (start, end) of its value} of the object at ``position`` (the last of a repeated key)."""
        found: dict[str, tuple[int, int]] = {}
        position = self._skip(position + 1)
        while self.text[position] != "}":
            key, position = self._decoder.raw_decode(self.text, position)
            position = self._skip(self._skip(position) + 1)  # past the colon
            _, end = self._decoder.raw_decode(self.text, position)
            found[key] = (position, end)
            position = self._skip(end)
            if self.text[position] == ",":
                position = self._skip(position + 1)
        return found

    def items(self, position: int) -> list[tuple[int, int]]:
        """(start, end) of each item of the array at ``position``."""
        found = []
        position = self._skip(position + 1)
        while self.text[position] != "]":
            _, end = self._decoder.raw_decode(self.text, position)
            found.append((position, end))
            position = self._skip(end)
            if self.text[position] == ",":
                position = self._skip(position + 1)
        return found

    def source_spans(self) -> dict[int, tuple[int, int]]:
        """{0-based cell index: (start, end) of its ``"source"`` value}."""
        cells = self.members(self._skip(0)).get("cells")
        spans = {}
        for index, (start, _) in enumerate(self.items(cells[0]) if cells else []):
            if self.text[start] == "{":
                source = self.members(start).get("source")
                if source is not None:
                    spans[index] = source
        return spans


def _spell(value: str, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


def _source_json(json_text: _JsonText, span: tuple[int, int], new_source: str, ascii_only: bool) -> str:
    """The JSON for a cell's new source, laid out like its old one.

    A string stays a string. A list keeps its brackets, separators and the exact spelling of
    each line that is still there; only new or edited lines are spelled afresh.
    """
    text = json_text.text
    start, end = span
    if text[start] != "[":
        return _spell(new_source, ascii_only)
    lines = _JSON_LINE.findall(new_source)
    if not lines:
        return "[]"
    items = json_text.items(start)
    spelled = {json.loads(text[a:b]): text[a:b] for a, b in reversed(items)}  # the first spelling wins
    if items:
        opening, closing = text[start + 1 : items[0][0]], text[items[-1][1] : end - 1]
        separator = text[items[0][1] : items[1][0]] if len(items) > 1 else "," + opening
    else:
        opening, closing, separator = _fresh_list_layout(text, start)
    body = separator.join(spelled.get(line) or _spell(line, ascii_only) for line in lines)
    return f"[{opening}{body}{closing}]"


def _fresh_list_layout(text: str, start: int) -> tuple[str, str, str]:
    """Opening, closing and separator for lines put into an empty ``[]``, as nbformat lays them out."""
    step = _indent_of(text)
    if step is None:
        return "", "", ", "
    newline = "\r\n" if "\r\n" in text else "\n"
    line_start = text.rfind("\n", 0, start) + 1
    key_line = text[line_start:start]
    indent = key_line[: len(key_line) - len(key_line.lstrip(" "))]
    return newline + indent + " " * step, newline + indent, "," + newline + indent + " " * step


def _validate(path: str, text: str, rewritten: bool = True) -> None:
    """nbformat's schema check of the notebook as read (``rewritten=False``: the user's file is
    invalid, before any question is asked) or as rewritten (then invalid means a bug here)."""
    try:
        import nbformat  # the `notebooks` extra; imported only when a notebook may change
    except ImportError:
        if not rewritten:
            return  # refused with the install hint only if the notebook does change
        raise SourceError(
            path, f"rewriting notebooks needs the nbformat package: {NOTEBOOKS_EXTRA_HINT}", line=None
        ) from None

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat's advice (e.g. "missing id") concerns the user's file
            nbformat.validate(nbformat.reads(text, as_version=nbformat.NO_CONVERT))
    except nbformat.ValidationError as error:
        if rewritten:
            raise SourceError(path, f"internal error: rewritten notebook is not valid ({error.message}); file left unchanged") from None
        raise SourceError(path, f"not a valid notebook ({error.message}); file left unchanged", line=None) from None


def transform_notebook(
    transformer: FileTransformer, source: SourceFile, accept: Callable[[Proposal], bool] | None = None
) -> TransformResult:
    """Rewrite the code cells of a notebook; positions in the result are per cell."""
    notebook = _load(source)
    _check_code_sources(source, notebook)
    joined = _Joined(notebook)
    if transformer.needs_parse(joined.text):
        # The notebook may change: an invalid one is the user's to fix, said before any
        # question of `review`, not blamed on the rewrite afterwards.
        _validate(source.path, source.text, rewritten=False)
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
    # Located only now: a notebook with large outputs costs a few JSON scans more to map.
    json_text = _JsonText(source.text)
    spans = json_text.source_spans()
    ascii_only = source.text.isascii()
    new_text = source.text
    # From the last cell to the first, so that earlier spans stay where they are.
    for index, new_source in sorted(joined.split(inner.new_text).items(), reverse=True):
        if new_source == _cell_text(notebook["cells"][index]):
            continue
        if index not in spans:
            raise SourceError(source.path, f"malformed notebook: cell {index + 1} has no source", line=None)
        start, end = spans[index]
        new_text = new_text[:start] + _source_json(json_text, spans[index], new_source, ascii_only) + new_text[end:]
    if new_text == source.text:
        return result
    _validate(source.path, new_text)
    result.new_text, result.new_data = new_text, new_text.encode(source.encoding)
    return result


def _in_cell(joined: _Joined, text: str, item):
    cell, line = joined.locate(text, item.line)
    changes = {"cell": cell, "line": line}
    if hasattr(item, "end_line"):
        end_cell, end_line = joined.locate(text, item.end_line)
        changes.update(end_line=end_line, end_cell=end_cell)
    if getattr(item, "first_line", None):
        first_cell, first_line = joined.locate(text, item.first_line)
        changes["first_line"] = first_line if first_cell == cell else None  # a span is counted within one cell
    if "line " in item.message:
        changes["message"] = with_line_mentions(item.message, lambda other: "cell {}:{}".format(*joined.locate(text, other)))
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
