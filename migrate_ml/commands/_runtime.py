"""Commands served by the reference runtime (the ``runtime`` install extra).

They are thin: the runtime parses its own arguments. Importing it here, only when one of these
commands runs, keeps torch out of every other command.
"""

from __future__ import annotations

import argparse
import sys

from migrate_ml.commands._common import EXIT_ERROR

INSTALL_HINT = "the reference runtime is not installed: pip install 'migrate-ml[runtime]'"


def forward(argv: list[str]) -> int:
    try:
        from migrate_ml_reference.cli import main as runtime_main
    except ImportError as error:
        print(f"migrate-ml: error: {INSTALL_HINT} ({error})", file=sys.stderr)
        return EXIT_ERROR
    return runtime_main(argv)


def configure_passthrough(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
