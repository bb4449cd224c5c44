"""``migrate-ml rewrite``: the codemod."""

from __future__ import annotations

import argparse
import sys
import time

from migrate_ml.commands._common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PENDING,
    UsageError,
    color_enabled,
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
    verbose_lines,
)
from migrate_ml.engine.runner import (
    STDIN,
    FileOutcome,
    discover,
    force_excluded,
    process_data,
    process_files,
    usable_cpus,
)
from migrate_ml.engine.source import shown_path
from migrate_ml.engine.transform import Settings, select_rules
from migrate_ml.rules import load_rules

NAME = "rewrite"
HELP = "Rewrite single-label training code to multi-label, in place (or show the diff)."
ORDER = 10


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to rewrite; - reads stdin and writes stdout")
    parser.add_argument("--diff", action="store_true", help="print a unified diff and write nothing (exit 1 if changes are pending)")
    parser.add_argument("--check", action="store_true", help="write nothing, report what would change and what needs review (exit 1 if anything does); with --diff, also print the diff")
    configure_settings(parser)
    configure_discovery(parser)
    parser.add_argument("--stdin-filename", metavar="NAME", help="read the code from stdin and treat it as NAME: for configuration, exclusion, messages and notebook detection")
    parser.add_argument("--output-format", choices=("text", "json", "github", "sarif"), default="text", help="report format: text, json, github (workflow annotations) or sarif 2.1.0 (default text)")
    parser.add_argument("-j", "--jobs", type=positive_int, default=None, metavar="N", help=f"process files in N worker processes (default: one per usable CPU, {usable_cpus()} here; -j1 runs in this process)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only findings and errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print, on stderr, each file left out and why (exclusion, .gitignore, the pre-filter) and timings")


def configure_settings(parser: argparse.ArgumentParser) -> None:
    """The options that choose and tune the rules; they override ``[tool.migrate-ml]``."""
    parser.add_argument("--select", action="append", metavar="CODES", help="only these rule codes or prefixes (comma-separated)")
    parser.add_argument("--ignore", action="append", metavar="CODES", help="skip these rule codes or prefixes (comma-separated)")
    parser.add_argument("--unsafe-fixes", action=argparse.BooleanOptionalAction, default=None, help="also apply fixes whose correctness migrate-ml cannot prove")
    parser.add_argument("--threshold", type=threshold_value, default=None, metavar="FLOAT", help="decision threshold for sigmoid outputs in rewritten code (default 0.5)")
    parser.add_argument("--exclude", action="append", default=None, metavar="GLOB", help="skip paths matching GLOB inside folders (named files too, with --force-exclude)")


def configure_discovery(parser: argparse.ArgumentParser) -> None:
    """The options that choose which files a folder argument stands for."""
    parser.add_argument("--force-exclude", action=argparse.BooleanOptionalAction, default=None, help="apply the exclude globs to files named on the command line too (pre-commit and editors name files)")
    parser.add_argument("--respect-gitignore", action=argparse.BooleanOptionalAction, default=None, help="inside a git work tree, skip what git ignores (.gitignore, .git/info/exclude, global excludes) in folders (default on)")


def settings_from(args: argparse.Namespace, targets: list[str] | None = None) -> Settings:
    """Settings from the command line over the project's ``[tool.migrate-ml]``.

    The configuration is looked up from ``targets`` (default: the paths). Also sets
    ``args.exclude``, ``args.force_exclude`` and ``args.respect_gitignore`` to the values in
    force.
    """
    from migrate_ml.engine.config import ConfigError, resolve_settings

    rules = load_rules()
    try:
        settings, discovery = resolve_settings(
            targets or args.paths,
            list(rules),
            select=split_codes(args.select),
            ignore=split_codes(args.ignore),
            unsafe_fixes=args.unsafe_fixes,
            threshold=args.threshold,
            exclude=args.exclude,
            force_exclude=args.force_exclude,
            respect_gitignore=args.respect_gitignore,
        )
        select_rules(rules, settings.select, settings.ignore)
    except (ConfigError, ValueError) as error:
        raise UsageError(str(error)) from None
    args.exclude, args.force_exclude, args.respect_gitignore = discovery
    return settings


def run(args: argparse.Namespace) -> int:
    name = _stdin_name(args)
    settings = settings_from(args, targets=[name] if name else None)
    mode = "diff" if args.diff else "check" if args.check else "rewrite"
    write = mode == "rewrite"
    log = _Output(sys.stderr) if args.verbose else None
    started = time.perf_counter()
    if name:
        jobs = 1
        outcomes = _rewrite_stdin(name, settings, write, args, log)
        if outcomes is None:
            return EXIT_OK
    else:
        jobs = args.jobs or usable_cpus()
        outcomes = process_files(_discover(args, log), settings, write, jobs)
    if log:
        for line in verbose_lines(outcomes, time.perf_counter() - started, jobs):
            log.write(line, style="dim")
    _print(outcomes, mode, args, stdin=bool(name))
    if any(o.error is not None for o in outcomes):
        return EXIT_ERROR
    pending = any(o.changed for o in outcomes)
    if args.check and (pending or any(o.findings for o in outcomes)):
        return EXIT_PENDING
    if args.diff and pending:
        return EXIT_PENDING
    return EXIT_OK


def _discover(args: argparse.Namespace, log: _Output | None) -> list[str]:
    started = time.perf_counter()
    skipped: list[tuple[str, str]] = []
    paths = list(
        discover(
            args.paths,
            args.exclude,
            respect_gitignore=args.respect_gitignore,
            force_exclude=args.force_exclude,
            on_skip=lambda path, reason: skipped.append((path, reason)),
        )
    )
    if log:
        for path, reason in skipped:
            log.write(f"migrate-ml: skipped {shown_path(path)}: {reason}", style="dim")
        log.write(f"migrate-ml: found {len(paths)} file{'s' if len(paths) != 1 else ''} in {time.perf_counter() - started:.2f} s", style="dim")
    return paths


def _rewrite_stdin(name: str, settings: Settings, write: bool, args: argparse.Namespace, log: _Output | None) -> list[FileOutcome] | None:
    """Process stdin's code as ``name``; None when ``--force-exclude`` excludes that name."""
    data = _read_stdin()
    excluded = force_excluded(name, args.exclude) if args.force_exclude and name != STDIN else ""
    if excluded:
        # As ruff does: the editor or hook gets its code back untouched.
        if log:
            log.write(f"migrate-ml: skipped {name}: {excluded}", style="dim")
        if write:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        return None
    outcome = process_data(name, settings, write=write, data=data)
    if write and outcome.error is None:
        sys.stdout.buffer.write(outcome.new_data if outcome.changed else data)
        sys.stdout.buffer.flush()
    return [outcome]


def _stdin_name(args: argparse.Namespace) -> str:
    """The name stdin's code goes by (``-`` or ``--stdin-filename``), or empty when paths are read."""
    if args.stdin_filename is not None:
        if not args.stdin_filename or args.stdin_filename == STDIN:
            raise UsageError("--stdin-filename needs a file name, like src/train.py")
        if any(path != STDIN for path in args.paths):
            raise UsageError("--stdin-filename reads stdin: pass no PATH (or -)")
        return args.stdin_filename
    if not args.paths:
        raise UsageError("no PATH given: name files or folders, or - to read stdin")
    if STDIN in args.paths:
        if len(args.paths) > 1:
            raise UsageError("- (stdin) cannot be combined with other paths")
        return STDIN
    return ""


def _read_stdin() -> bytes:
    stream = sys.stdin
    if stream is None:  # Python's stdin when file descriptor 0 was closed
        raise UsageError("cannot read stdin: it is closed")
    try:
        return stream.buffer.read()
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read stdin: {getattr(error, 'strerror', None) or error}") from None


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
    """One output stream: rich styles when ``--color``/``NO_COLOR``/a terminal allow them, else
    plain text (and no rich import)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self._console = console(stderr=stream is sys.stderr) if color_enabled(stream) else None

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
