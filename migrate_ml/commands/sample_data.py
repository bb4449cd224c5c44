"""``migrate-ml sample-data DIR``: offline multi-label sample data (reference runtime)."""

from __future__ import annotations

import argparse

from migrate_ml.commands._runtime import configure_passthrough, forward

NAME = "sample-data"
HELP = "Write offline, deterministic multi-label sample data (digits or shapes) to DIR."
ORDER = 40
PARSER_OPTIONS = {"add_help": False}
configure = configure_passthrough


def run(args: argparse.Namespace) -> int:
    return forward([NAME, *args.arguments])
