"""``migrate-ml verify``: check migrated code statically and by running it on sample data."""

from __future__ import annotations

import argparse
import ast
import math
import re

from migrate_ml.commands._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PENDING,
    UsageError,
    console,
    positive_float,
    positive_int,
    threshold_value,
)

NAME = "verify"
HELP = "Check migrated code: re-scan it, then run its train/eval functions on sample multi-label data."
ORDER = 30


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="migrated files or folders")
    parser.add_argument("--bind", action="append", default=[], metavar="NAME=VALUE",
                        help="give a parameter (or args.ATTR) a value: a Python literal, or @ROLE "
                             "(model, loader, optimizer, device, epoch, criterion, args, …); or build a class "
                             "with a function of the file: CLASS='FUNCTION()'")
    parser.add_argument("--timeout", type=timeout_seconds, default=60.0, metavar="S",
                        help="seconds allowed per file for running its code (default 60)")
    parser.add_argument("--memory", type=memory_size, default=DEFAULT_MEMORY, metavar="SIZE",
                        help="memory allowed to the process running each file, e.g. 2G or 512M "
                             "(default 8G; the runtime's own ~1G included)")
    parser.add_argument("--threshold", type=threshold_value, default=None, metavar="F",
                        help="decision threshold for the reference metrics (default: the file's THRESHOLD, else 0.5)")
    parser.add_argument("--epochs", type=positive_int, default=3, metavar="N",
                        help="epochs to run training functions for (default 3)")
    parser.add_argument("--static-only", action="store_true", help="skip the dynamic pass (no torch needed)")
    parser.add_argument("--output-format", choices=("text", "json"), default="text", help="report format (default text)")


def timeout_seconds(value: str) -> float:
    """argparse type: a positive, finite number of seconds (``nan`` and ``inf`` are no deadline)."""
    seconds = positive_float(value)
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, not {value!r}")
    return seconds


DEFAULT_MEMORY = 8 * 1024**3
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmgt]?)i?b?\s*$", re.I)


def memory_size(value: str) -> int:
    """argparse type: bytes, or a number with a K/M/G/T suffix (powers of 1024)."""
    match = _MEMORY.match(value)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size such as 2G or 512M, not {value!r}")
    size = int(float(match.group(1)) * 1024 ** " KMGT".index((match.group(2) or " ").upper()))
    if size < 256 * 1024**2:
        raise argparse.ArgumentTypeError(f"{value!r} is too small: the runtime alone needs about 1G")
    return size


_FACTORY_CALL = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(\)$")
"""``--bind LitModel='make_model()'``: build a class by calling a function without arguments."""


def parse_bind(text: str):
    from migrate_ml.verify import Bind
    from migrate_ml.verify.locate import ROLES

    name, separator, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not separator or not name:
        raise UsageError(f"--bind {text!r}: expected NAME=VALUE")
    factory = _FACTORY_CALL.match(value)
    if factory:
        return Bind(name=name, factory=factory.group(1))
    if value.startswith("@"):
        role = value[1:]
        if role not in ROLES:
            raise UsageError(f"--bind {text!r}: unknown role {role!r}; known roles: {', '.join(sorted(ROLES))}")
        return Bind(name=name, role=role)
    try:
        literal = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise UsageError(f"--bind {text!r}: the value must be a Python literal (1e-3, 'cpu', None, [1, 2]) or @ROLE") from None
    return Bind(name=name, value=literal)


def run(args: argparse.Namespace) -> int:
    from migrate_ml.verify import VerifyOptions, verify
    from migrate_ml.verify.report import json_report, print_text

    if "-" in args.paths:
        raise UsageError("verify runs files, not stdin: pass file or folder paths")
    options = VerifyOptions(
        binds=tuple(parse_bind(b) for b in args.bind),
        threshold=args.threshold,
        timeout=args.timeout,
        memory=args.memory,
        epochs=args.epochs,
        dynamic=not args.static_only,
    )
    report = verify(args.paths, options)
    if not report.files:
        raise UsageError("no Python files found in the given paths")
    if args.output_format == "json":
        print(json_report(report, args.threshold))
    else:
        print_text(report, console())
    if any(c.check in ("read", "static: parse") for c in report.checks):
        return EXIT_ERROR
    return EXIT_OK if report.ok else EXIT_PENDING
