"""``migrate-ml rules``: list the rules."""

from __future__ import annotations

import argparse
import json

from migrate_ml.commands._common import EXIT_OK, console
from migrate_ml.rules import load_rules

NAME = "rules"
HELP = "List the migration rules: code, name, fix safety, summary."
ORDER = 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    rules = load_rules()
    if args.output_format == "json":
        print(json.dumps(
            [{"code": c, "name": r.name, "safety": r.applicability.value, "summary": r.summary}
             for c, r in sorted(rules.items())],
            indent=2,
        ))
        return EXIT_OK
    from rich.table import Table

    table = Table(title="migrate-ml rules", title_justify="left")
    for column in ("Code", "Name", "Safety", "Summary"):
        # Codes, names and safety are looked up and copied: only the summary may wrap.
        table.add_column(column, overflow="fold", no_wrap=column != "Summary")
    for code, rule in sorted(rules.items()):
        table.add_row(code, rule.name, rule.applicability.value, rule.summary)
    console().print(table)
    return EXIT_OK
