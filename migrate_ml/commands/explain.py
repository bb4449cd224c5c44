"""``migrate-ml explain CODE``: what a rule does and why."""

from __future__ import annotations

import argparse
import sys

from migrate_ml.commands._common import EXIT_OK, UsageError, color_enabled, console
from migrate_ml.rules import load_rules

NAME = "explain"
HELP = "Explain a rule: what it changes, why, a before/after example and its fix safety."
ORDER = 21


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("code", metavar="CODE", help="a rule code (ML001) or name (cross-entropy-loss)")


def run(args: argparse.Namespace) -> int:
    rules = load_rules()
    wanted = args.code.strip()
    rule = rules.get(wanted.upper()) or next((r for r in rules.values() if r.name == wanted), None)
    if rule is None:
        raise UsageError(f"unknown rule {wanted!r}; `migrate-ml rules` lists them")
    from rich.markdown import Markdown

    text = (
        f"# {rule.code} {rule.name}\n\n"
        f"**Fix safety:** {rule.applicability.value}\n\n"
        f"{rule.summary}\n\n"
        f"## Why\n\n{rule.rationale}\n\n"
        f"## Before\n\n```python\n{rule.example_before.rstrip()}\n```\n\n"
        f"## After\n\n```python\n{rule.example_after.rstrip()}\n```\n"
    )
    if color_enabled(sys.stdout):
        console().print(Markdown(text))
    else:
        print(text, end="")
    return EXIT_OK
