"""``migrate-ml reference train|eval|predict|convert``: the reference multi-label runtime."""

from __future__ import annotations

import argparse

from migrate_ml.commands._runtime import configure_passthrough, forward

NAME = "reference"
HELP = "Train, evaluate or predict with the reference multi-label model on sample data or your own; convert ImageFolder data."
ORDER = 41
PARSER_OPTIONS = {"add_help": False}
configure = configure_passthrough


def run(args: argparse.Namespace) -> int:
    return forward([NAME, *args.arguments])
