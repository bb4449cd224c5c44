"""The ``migrate-ml`` command line.

Each subcommand is a module in :mod:`migrate_ml.commands` exposing ``NAME``, ``HELP``,
``configure(parser)`` and ``run(args) -> int``; this module discovers them, so adding a command
does not edit this file. Commands backed by the reference runtime import it lazily: rewriting
code never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from typing import Sequence

from migrate_ml import __version__, commands
from migrate_ml.commands._common import COLOR_CHOICES, EXIT_ERROR, UsageError, set_color


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, like the rest of our errors
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="migrate-ml",
        description="Migrate single-label image-classification training code to multi-label.",
    )
    parser.add_argument("--version", action="version", version=f"migrate-ml {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for module in sorted(_command_modules(), key=lambda m: getattr(m, "ORDER", 50)):
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.HELP, **getattr(module, "PARSER_OPTIONS", {}))
        module.configure(sub)
        sub.add_argument(
            "--color",
            choices=COLOR_CHOICES,
            default="auto",
            help="style output: auto (on a terminal, unless NO_COLOR is set; FORCE_COLOR forces it), always or never (default auto)",
        )
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(arguments)
    set_color(args.color)
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        # POSIX file names are bytes: print one that is not UTF-8 as its own bytes, as ls does.
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"migrate-ml: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("migrate-ml: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `migrate-ml rewrite --diff . | head`: the reader left; stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
