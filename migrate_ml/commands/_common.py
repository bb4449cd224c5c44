"""What every subcommand shares: exit codes, the usage error, consoles."""

from __future__ import annotations

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
