"""What every subcommand shares: exit codes, the usage error, consoles."""

from __future__ import annotations

import argparse
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


def console(stderr: bool = False):
    """A rich console: colour on a terminal, plain text when piped."""
    from rich.console import Console

    return Console(file=sys.stderr if stderr else sys.stdout, highlight=False, soft_wrap=True)


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
