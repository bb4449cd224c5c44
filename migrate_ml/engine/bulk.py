r"""Files whose bulk is data: large literals are set aside before LibCST parses the file.

LibCST builds a node, and metadata for it, per token: a 2 MB module of list literals holding
one ``CrossEntropyLoss`` took 10 minutes and 4.7 GB. No rule reads a large literal made only
of constants (numbers, strings, ``None``, and lists, tuples, sets and dicts of them), so in a
large file each such literal is replaced, for the rewrite, by a placeholder string that spans
the same lines (continued with backslashes: one token, however many lines) and ends at the same
column, ``'migrate_ml_data_T_N\ ... '``; the literals are put back, byte for byte, into the
rewritten text. Positions of findings are therefore those of the file itself.

What is left is parsed only up to :data:`MAX_CODE_BYTES`; a larger file is refused with one
line rather than run for minutes and gigabytes.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import re

from migrate_ml.engine.source import SourceError, SourceFile
from migrate_ml.rules._prefilter import parse_once

SET_ASIDE_FROM_BYTES = 128 * 1024
"""Smaller files parse quickly as they are: their literals are left in place."""
MIN_LITERAL_CHARS = 2048
"""Smaller literals stay (a class-weight list, a label map): rules may read them."""
MAX_CODE_BYTES = 512 * 1024
"""The most code LibCST is given from one file (about a minute and a gigabyte)."""

_LINE_START = re.compile(r"\r\n|\r|\n")
_CONTAINERS = (ast.List, ast.Tuple, ast.Set, ast.Dict)


def check_size(path: str, data: bytes) -> None:
    """Refuse code too large to parse within bounds (after data literals were set aside)."""
    if len(data) > MAX_CODE_BYTES:
        raise SourceError(
            path,
            f"too large to rewrite: {len(data) // 1024:,} KiB of code besides large data literals "
            f"(the limit is {MAX_CODE_BYTES // 1024:,} KiB); file left unchanged",
            line=None,
        )


@dataclasses.dataclass(frozen=True)
class SetAside:
    source: SourceFile
    """The file with its large literals replaced by placeholders."""
    pieces: tuple[tuple[str, str], ...]
    """(placeholder, literal) pairs."""


def set_aside(source: SourceFile) -> SetAside | None:
    """``source`` with its large constant literals replaced, or None when there are none."""
    if len(source.data) < SET_ASIDE_FROM_BYTES or source.text.encode(source.encoding) != source.data:
        return None  # small, or a text that does not encode back to its bytes: parsed as it is
    text = source.text
    starts = [0] + [match.end() for match in _LINE_START.finditer(text)]
    try:
        tree = parse_once(text)
        spans = _large_literals(tree, starts)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the parse reports the problem, or the parser worker contains it
    if not spans:
        return None
    ascii_only = text.isascii()
    prefix = _free_prefix(text)
    parts, pieces, position = [], [], 0
    for number, (start_line, start_column, end_line, end_column) in enumerate(spans):
        start = _offset(text, starts, start_line, start_column, ascii_only)
        end = _offset(text, starts, end_line, end_column, ascii_only)
        literal = text[start:end]
        breaks = _LINE_START.findall(literal)
        name = f"{prefix}{number}"
        if breaks:
            last_line = len(literal) - (literal.rfind(breaks[-1][-1]) + 1)
            lines = "\\".join(breaks)
            placeholder = f"'{name}\\{lines}{' ' * (last_line - 1)}'"
        else:
            placeholder = f"'{name}{' ' * (len(literal) - len(name) - 2)}'"
        parts += [text[position:start], placeholder]
        pieces.append((placeholder, literal))
        position = end
    parts.append(text[position:])
    masked = "".join(parts)
    return SetAside(
        dataclasses.replace(source, data=masked.encode(source.encoding), text=masked, stamp=None), tuple(pieces)
    )


def put_back(aside: SetAside, original: SourceFile, new_text: str, path: str) -> tuple[str, bytes]:
    """The rewritten text and bytes with every literal back in place of its placeholder."""
    if new_text == aside.source.text:
        return original.text, original.data
    for placeholder, literal in aside.pieces:
        if new_text.count(placeholder) != 1:
            raise SourceError(path, "a fix reached into a large data literal; file left unchanged", line=None)
        new_text = new_text.replace(placeholder, literal)
    return new_text, new_text.encode(original.encoding)


def _large_literals(tree: ast.AST, starts: list[int]) -> list[tuple[int, int, int, int]]:
    """(line, UTF-8 column, end line, end UTF-8 column) of each outermost large constant literal, in order."""
    stack = [tree]
    found = []
    while stack:
        node = stack.pop()
        if isinstance(node, _CONTAINERS):
            # Columns count UTF-8 bytes: as a size to compare with the threshold, close enough.
            size = starts[node.end_lineno - 1] + node.end_col_offset - starts[node.lineno - 1] - node.col_offset
            if size >= MIN_LITERAL_CHARS and _constant(node):
                found.append((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset))
                continue
        stack.extend(ast.iter_child_nodes(node))
    return sorted(found)


def _constant(node: ast.expr) -> bool:
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Constant):
            continue
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) and isinstance(node.operand, ast.Constant):
            continue
        if isinstance(node, ast.Dict):
            if None in node.keys:  # {**other}
                return False
            stack.extend(node.keys)
            stack.extend(node.values)
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            stack.extend(node.elts)
        else:
            return False
    return True


def _offset(text: str, starts: list[int], line: int, utf8_column: int, ascii_only: bool) -> int:
    start = starts[line - 1]
    if ascii_only:
        return start + utf8_column
    end = starts[line] if line < len(starts) else len(text)
    return start + len(text[start:end].encode("utf-8")[:utf8_column].decode("utf-8", errors="ignore"))


def _free_prefix(text: str) -> str:
    for tag in itertools.count():
        prefix = f"migrate_ml_data_{tag}_"
        if prefix not in text:
            return prefix
    raise AssertionError("unreachable: a finite text cannot hold every tag")
