"""``migrate-ml rewrite``: the codemod."""

from __future__ import annotations

import argparse
import os
import sys

from migrate_ml.commands._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PENDING,
    UsageError,
    console,
    positive_int,
    split_codes,
    threshold_value,
)
from migrate_ml.engine.report import (
    change_summary,
    finding_lines,
    json_report,
    patch_bytes,
    totals_line,
    unified_diff,
)
from migrate_ml.engine.runner import STDIN, FileOutcome, discover, process_file, process_files
from migrate_ml.engine.transform import Settings, select_rules
from migrate_ml.rules import load_rules

NAME = "rewrite"
HELP = "Rewrite single-label training code to multi-label, in place (or show the diff)."
ORDER = 10


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to rewrite; - reads stdin and writes stdout")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--diff", action="store_true", help="print a unified diff and write nothing (exit 1 if changes are pending)")
    mode.add_argument("--check", action="store_true", help="write nothing, report what would change and what needs review (exit 1 if anything does)")
    configure_settings(parser)
    parser.add_argument("--output-format", choices=("text", "json", "github", "sarif"), default="text", help="report format: text, json, github (workflow annotations) or sarif 2.1.0 (default text)")
    parser.add_argument("-j", "--jobs", type=positive_int, default=1, metavar="N", help="process files in N worker processes")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only findings and errors")






def configure_settings(parser: argparse.ArgumentParser) -> None:
    """The options that choose and tune the rules; they override ``[tool.migrate-ml]``."""
    parser.add_argument("--select", action="append", metavar="CODES", help="only these rule codes or prefixes (comma-separated)")
    parser.add_argument("--ignore", action="append", metavar="CODES", help="skip these rule codes or prefixes (comma-separated)")
    parser.add_argument("--unsafe-fixes", action=argparse.BooleanOptionalAction, default=None, help="also apply fixes whose correctness migrate-ml cannot prove")
    parser.add_argument("--threshold", type=threshold_value, default=None, metavar="FLOAT", help="decision threshold for sigmoid outputs in rewritten code (default 0.5)")
    parser.add_argument("--exclude", action="append", default=None, metavar="GLOB", help="skip paths matching GLOB inside folders")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the command line over the project's ``[tool.migrate-ml]``.

    Also sets ``args.exclude`` to the globs in force.
    """
    from migrate_ml.engine.config import ConfigError, resolve_settings

    rules = load_rules()
    try:
        settings, args.exclude = resolve_settings(
            args.paths,
            list(rules),
            select=split_codes(args.select),
            ignore=split_codes(args.ignore),
            unsafe_fixes=args.unsafe_fixes,
            threshold=args.threshold,
            exclude=args.exclude,
        )
        select_rules(rules, settings.select, settings.ignore)
    except (ConfigError, ValueError) as error:
        raise UsageError(str(error)) from None
    return settings


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    mode = "diff" if args.diff else "check" if args.check else "rewrite"
    write = mode == "rewrite"
    stdin = STDIN in args.paths
    if stdin:
        if len(args.paths) > 1:
            raise UsageError("- (stdin) cannot be combined with other paths")
        outcomes = [process_file(STDIN, settings, write=write, data=sys.stdin.buffer.read())]
        if write and outcomes[0].error is None:
            sys.stdout.buffer.write(outcomes[0].new_data)
            sys.stdout.buffer.flush()
    else:
        outcomes = process_files(list(discover(args.paths, args.exclude)), settings, write, args.jobs)
    _print(outcomes, mode, args, stdin=stdin)
    if any(o.error is not None for o in outcomes):
        return EXIT_ERROR
    if mode == "diff" and any(o.changed for o in outcomes):
        return EXIT_PENDING
    if mode == "check" and any(o.changed or o.findings for o in outcomes):
        return EXIT_PENDING
    return EXIT_OK


def _print(outcomes: list[FileOutcome], mode: str, args: argparse.Namespace, stdin: bool) -> None:
    # Reports go to stderr whenever stdout carries the code (stdin rewrite) or the patch (--diff);
    # a JSON report replaces the patch, so it goes to stdout unless stdout carries code.
    code_on_stdout = stdin and mode == "rewrite"
    if args.output_format != "text":
        from migrate_ml.engine import formats

        render = {"json": json_report, "github": formats.github_annotations, "sarif": formats.sarif_log}
        _Output(sys.stderr if code_on_stdout else sys.stdout).write(render[args.output_format](outcomes, mode).rstrip("\n"))
        return
    report = _Output(sys.stderr if code_on_stdout or mode == "diff" else sys.stdout)
    if mode == "diff":
        patch = _Output(sys.stdout)
        for outcome in outcomes:
            patch.write_patch(unified_diff(outcome), outcome.encoding)
    if not args.quiet:
        verb = "Rewrote" if mode == "rewrite" else "Would rewrite"
        for outcome in outcomes:
            if outcome.changed:
                report.write(f"{verb} {change_summary(outcome)}", style="bold")
    for outcome in outcomes:
        for line in finding_lines(outcome):
            style = "red" if outcome.error else ("dim" if line.startswith("  help:") else "yellow")
            report.write(line, style=style)
    if not args.quiet:
        report.write(totals_line(outcomes, mode))


_PATCH_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


class _Output:
    """One output stream: rich colour on a terminal, plain text (and no rich import) when piped."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self._console = console(stderr=stream is sys.stderr) if _is_terminal(stream) else None

    def write(self, text: str, style: str = "") -> None:
        if self._console is None:
            self.stream.write(text + "\n")
            self.stream.flush()
            return
        # Paths and messages are data, not markup: `data[1].py` or `:smile:` stay as written.
        self._console.print(text, style=style or None, markup=False, emoji=False, highlight=False)

    def write_patch(self, diff: str, encoding: str) -> None:
        if not diff:
            return
        if self._console is None:
            # Bytes in the file's own encoding, so that `git apply` matches non-UTF-8 files.
            self.stream.flush()
            self.stream.buffer.write(patch_bytes(diff, encoding))
            self.stream.buffer.flush()
            return
        from rich.text import Text

        for line in diff.splitlines():
            style = next((style for prefix, style in _PATCH_STYLES if line.startswith(prefix)), "")
            self._console.print(Text(line, style=style))


def _is_terminal(stream) -> bool:
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
