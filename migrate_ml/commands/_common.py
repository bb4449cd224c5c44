"""What every subcommand shares: exit codes, the usage error, consoles."""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_PENDING, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """A problem with how the command was called; reported in one line, exit 2."""


def split_codes(values: list[str] | None) -> tuple[str, ...]:
    """``--select ML001,ML01 --select ML1`` -> ``("ML001", "ML01", "ML1")``."""
    codes: list[str] = []
    for value in values or ():
        codes.extend(part.strip().upper() for part in value.split(",") if part.strip())
    return tuple(codes)


COLOR_CHOICES = ("auto", "always", "never")
_color_choice = "auto"


def set_color(choice: str) -> None:
    """Record ``--color``; :func:`color_enabled` consults it for every stream."""
    global _color_choice
    if choice not in COLOR_CHOICES:
        raise ValueError(f"--color must be one of {', '.join(COLOR_CHOICES)}")
    _color_choice = choice


def color_enabled(stream) -> bool:
    """Whether to style ``stream``: ``--color always|never`` decides; under ``auto`` a non-empty
    ``NO_COLOR`` turns styling off (bold and italic too, not only colour), then a non-empty
    ``FORCE_COLOR`` turns it on, else only a terminal gets it."""
    if _color_choice != "auto":
        return _color_choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def console(stderr: bool = False):
    """A rich console that styles only when :func:`color_enabled` says so.

    Without styling rich gets no colour system at all, which drops every escape sequence
    (rich's own ``no_color`` keeps bold, italic and underline).
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    styled = color_enabled(stream)
    return Console(
        file=stream,
        highlight=False,
        soft_wrap=True,
        force_terminal=True if styled else None,
        no_color=False,
        color_system="auto" if styled else None,
    )


def positive_float(value: str) -> float:
    """argparse type: a number above 0."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def threshold_value(value: str) -> float:
    """argparse type: a decision threshold strictly between 0 and 1."""
    number = positive_float(value)
    if not number < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return number


def positive_int(value: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number
