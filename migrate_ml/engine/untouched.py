"""Proof, before anything is written, that a rewrite changed no byte outside its edits.

LibCST promises a byte-exact round trip, but some inputs break it: a form feed at the start of
a ``def`` line is dropped when the function is regenerated, so a fix elsewhere in the function
would silently edit a line no rule touched. Two checks refuse such a file (one line, exit 2)
instead of writing it:

* the parsed original must print back to exactly its bytes (``round_trip``);
* comparing each fix pass's text with the one before, every line that changed or went away
  must lie within a line a fix edits, or in an import statement, which the fixes' import
  edits may rewrite (``outside_edits``). Added lines are the fixes' own (a threshold constant,
  an import).

Form feeds that start a statement's line (a page break, which Python ignores in the indent) are
handled too: LibCST drops them from every statement it prints. ``set_form_feeds_aside`` takes them off
before parsing and ``put_form_feeds_back`` puts them back on the same statements' lines of the
rewritten text (a line a fix rewrote gets them back on the first line of what replaced it), with
proof that the result means what the rewrite does.

Two inputs that break it at the end of a file are handled exactly instead: LibCST drops the
last ``"\\r"`` of a file that ends in one, and the blank lines before a last line of whitespace
without a line break. ``split_blank_tail`` takes the whitespace after the last code character of
such a file off before parsing (the code before it round-trips); the engine puts it back, byte
for byte, after the rewrite.
"""

from __future__ import annotations

import ast
import difflib
import re
import tokenize
from typing import Iterable

import dataclasses

import libcst as cst

from migrate_ml.engine.source import SourceError, SourceFile

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
"""Lines as Python and LibCST count them (``str.splitlines`` also splits at form feeds)."""
_FORM_FEED_REFUSED = ("a form feed starts this line, and the rewrite leaves no line it can go back to without "
                      "changing the code; file left unchanged")
_REFUSED = "rewriting would change this line, which no fix edits (LibCST does not reproduce it byte for byte); file left unchanged"


def split_blank_tail(source: SourceFile) -> tuple[SourceFile, bytes]:
    """``source`` without the whitespace after its last code character when it does not end in
    ``"\\n"``, and that whitespace's bytes (empty when nothing is split off).

    LibCST prints ``"x\\r"`` as ``"x"`` and ``"x\\n\\n  "`` as ``"x\\n  "``; code without a
    line break after its last line round-trips.
    """
    text = source.text
    code_end = len(text.rstrip(" \t\f\r\n"))
    if text.endswith("\n") or code_end == len(text):
        return source, b""
    tail = text[code_end:].encode("ascii")
    if not source.data.endswith(tail):
        return source, b""  # the codec spells whitespace with other bytes: parsed as it is
    head = dataclasses.replace(source, data=source.data[: -len(tail)], text=text[:code_end], stamp=None)
    return head, tail


_FORM_FEEDS = re.compile(r"\x0c+(?=[ \t]*[^ \t\x0c])")
"""The form feeds that start a line, before its indent: the place Python documents for them."""
_NOT_STATEMENTS = (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)


@dataclasses.dataclass(frozen=True)
class FormFeeds:
    """The form feeds set aside: {line number: the form feeds that started it}, and the text without them."""

    lines: dict[int, str]
    text: str


def set_form_feeds_aside(source: SourceFile) -> tuple[SourceFile, FormFeeds | None]:
    """``source`` without the form feeds that start its statements' lines, and those form feeds (None when it
    has none, or when they cannot be set aside exactly: a text that does not encode back to its bytes, or one
    the tokenizer rejects, which is then parsed as it is)."""
    if "\x0c" not in source.text or source.text.encode(source.encoding) != source.data:
        return source, None
    lines = _LINE.findall(source.text)
    starts: dict[int, str] = {}
    try:
        statement_starts = True
        for token in tokenize.generate_tokens(iter(lines).__next__):
            if token.type in _NOT_STATEMENTS:
                statement_starts = statement_starts or token.type == tokenize.NEWLINE
                continue
            if statement_starts and (feeds := _FORM_FEEDS.match(lines[token.start[0] - 1])):
                starts[token.start[0]] = feeds.group()
            statement_starts = False
    except (tokenize.TokenError, SyntaxError):
        return source, None
    if not starts:
        return source, None
    for number, feeds in starts.items():
        lines[number - 1] = lines[number - 1][len(feeds):]
    text = "".join(lines)
    cleared = dataclasses.replace(source, data=text.encode(source.encoding), text=text, stamp=None)
    return cleared, FormFeeds(starts, text)


def put_form_feeds_back(path: str, feeds: FormFeeds, new_text: str) -> tuple[str, dict[int, int]]:
    """``new_text`` (rewritten from ``feeds.text``) with the form feeds back at the start of the lines that hold
    the statements they started, and {its line number: how many characters went back there}.

    Raises :class:`SourceError` where that is not proven to leave the rewrite's meaning alone (the rewritten
    code parses to the same tree with the form feeds as without them)."""
    old, new = _LINE.findall(feeds.text), _LINE.findall(new_text)
    put: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        for number in range(old_start + 1, old_end + 1):
            if number not in feeds.lines:
                continue
            offset = number - 1 - old_start
            # an edited line's form feeds go to the line that replaced it, or to the first one of a block that
            # replaced it with another number of lines; a line gone takes them to the line after it
            target = new_start + (offset if tag == "equal" or offset < new_end - new_start else 0)
            if target >= len(new):
                raise SourceError(path, _FORM_FEED_REFUSED, number)
            new[target] = feeds.lines[number] + new[target]
            put[target + 1] = put.get(target + 1, 0) + len(feeds.lines[number])
    restored = "".join(new)
    try:
        same = ast.dump(ast.parse(restored)) == ast.dump(ast.parse(new_text))
    except (SyntaxError, ValueError):
        same = False
    if not same:
        raise SourceError(path, _FORM_FEED_REFUSED, min(feeds.lines))
    return restored, put


def round_trip(path: str, module: cst.Module, data: bytes) -> None:
    """Raise :class:`SourceError` at the first line that ``module`` does not print back as ``data`` has it."""
    printed = module.bytes
    if printed == data:
        return
    old, new = data.splitlines(keepends=True), printed.splitlines(keepends=True)
    line = next((number for number, (a, b) in enumerate(zip(old, new), start=1) if a != b), min(len(old), len(new)) + 1)
    raise SourceError(path, _REFUSED, line)


def outside_edits(path: str, old_text: str, new_text: str, edited: Iterable[tuple[int, int]]) -> None:
    """Raise :class:`SourceError` at the first line of ``old_text`` outside the ``edited``
    (first, last) line spans that ``new_text`` does not keep."""
    allowed = set()
    for first, last in edited:
        allowed.update(range(first, last + 1))
    old, new = _LINE.findall(old_text), _LINE.findall(new_text)
    # The lines before the first change and after the last one are equal: compared in linear
    # time, so that only the edited middle goes to difflib (which is quadratic in the worst case).
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    old_middle, new_middle = old[head : len(old) - tail], new[head : len(new) - tail]
    matcher = difflib.SequenceMatcher(None, old_middle, new_middle, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if tag in ("equal", "insert"):
            continue
        kept = iter(new_middle[new_start:new_end])
        for number in range(head + old_start + 1, head + old_end + 1):
            # A line outside the edits may still be in the replaced block unchanged (the block
            # then only gained lines around it): it must come back, in order.
            if number not in allowed and not any(line == old[number - 1] for line in kept):
                raise SourceError(path, _REFUSED, number)


def import_lines(positions) -> list[tuple[int, int]]:
    """The (first, last) lines of every import statement: the import edits of fixes rewrite them."""
    return [
        (span.start.line, span.end.line)
        for node, span in positions.items()
        if isinstance(node, (cst.Import, cst.ImportFrom))
    ]
