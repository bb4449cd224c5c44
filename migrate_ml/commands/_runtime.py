"""Commands served by the reference runtime (the ``runtime`` install extra).

They are thin: the runtime parses its own arguments (options in any order, ``--help`` included).
Importing it here, only when one of these commands runs, keeps torch out of every other command.
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
    """Hand every argument after the command name to the runtime's own parser, unparsed.

    A ``REMAINDER`` positional alone would reject a leading option (``sample-data --help``,
    ``sample-data --n 5 DIR``), so this subparser's parsing is replaced outright.
    """
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def take_everything(args=None, namespace=None):
        namespace = namespace if namespace is not None else argparse.Namespace()
        for action in parser._actions:  # options the main CLI adds to every command (--color)
            if action.dest != argparse.SUPPRESS and action.default is not argparse.SUPPRESS:
                setattr(namespace, action.dest, action.default)
        for key, value in parser._defaults.items():  # the handler set by set_defaults()
            setattr(namespace, key, value)
        namespace.arguments = list(sys.argv[1:] if args is None else args)
        return namespace, []

    parser.parse_known_args = take_everything
