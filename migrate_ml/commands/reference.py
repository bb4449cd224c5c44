"""``migrate-ml reference train|eval``: the reference multi-label training run."""

from __future__ import annotations

import argparse

from migrate_ml.commands._runtime import configure_passthrough, forward

NAME = "reference"
HELP = "Train or evaluate the reference multi-label ViT on sample or local data."
ORDER = 41
PARSER_OPTIONS = {"add_help": False}
configure = configure_passthrough


def run(args: argparse.Namespace) -> int:
    return forward([NAME, *args.arguments])
