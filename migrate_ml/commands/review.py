"""``migrate-ml review``: walk through every proposed change, like ``git add -p``.

The unit of review is one fix: everything it edits (the constructor, the casts at each call,
the imports and the threshold constant it needs) is shown together and accepted or rejected
together, because its parts depend on each other. Violations of several rules resolved by one
fix (ML020's prediction and ML021's accuracy comparison of it) are one question, their codes
listed together. Keys are read one line at a time from standard input, so a script can drive
the review::

    printf 'y\\nn\\nq\\n' | migrate-ml review train.py

``y`` accepts, ``n`` rejects, ``a`` accepts this fix and every later one of the same rules,
``q`` quits, ``?`` prints the keys. Quitting (or the end of input) rejects every change not
accepted yet; the changes already accepted, in this file and in earlier ones, are written.
Only accepted fixes are applied, and the result is parsed again before anything is written.
Findings that need a human (no automatic fix) are listed after each file, with their
suggestions, positioned in the file as written. A file that cannot be read, parsed or
written gets its one-line error, as in ``rewrite``, and the review goes on with the next.
"""

from __future__ import annotations

import argparse
import difflib
import sys

from migrate_ml.commands._common import EXIT_ERROR, EXIT_OK, UsageError
from migrate_ml.commands.rewrite import configure_discovery, configure_settings, settings_from
from migrate_ml.engine.notebook import is_notebook, transform_notebook
from migrate_ml.engine.report import finding_lines, location, rule_name
from migrate_ml.engine.runner import STDIN, FileOutcome, contain_errors, discover, parser_crash
from migrate_ml.engine.source import read_source, shown_path, write_atomic
from migrate_ml.engine.transform import FileTransformer, Proposal, select_rules
from migrate_ml.rules import RULES, load_rules

NAME = "review"
HELP = "Review the proposed changes one by one (y/n/a/q) and write only the accepted ones."
ORDER = 11

KEYS_HELP = (
    "y - apply this change\n"
    "n - do not apply this change\n"
    "a - apply this change and all later changes of the same rules\n"
    "q - quit; only changes accepted so far are written\n"
    "? - print this help"
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to review")
    configure_settings(parser)
    configure_discovery(parser)


def first_sentence(text: str) -> str:
    sentence, dot, _ = text.partition(". ")
    return sentence + "." if dot else text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


class Reviewer:
    """Asks about each fix on ``out``, reading one key per line from ``keys``.

    The counts are of fixes, each asked at most once: ``accepted`` and ``rejected`` by an
    answer, ``accepted_unasked`` by an earlier ``a``, ``not_asked`` after quitting.
    """

    def __init__(self, keys, out) -> None:
        self.keys = keys
        self.out = out
        self.quitting = False
        self.accept_all: set[str] = set()
        self.accepted = 0
        self.accepted_unasked = 0
        self.rejected = 0
        self.not_asked = 0
        self.accepted_in_file = 0

    def for_file(self, path: str):
        """The ``accept`` callback for one file."""
        self.accepted_in_file = 0
        return lambda proposal: self.decide(path, proposal)

    def decide(self, path: str, proposal: Proposal) -> bool:
        codes = {change.code for change in proposal.changes}
        if self.quitting:
            self.not_asked += 1
            return False
        if codes <= self.accept_all:
            self.accepted_unasked += 1
            self.accepted_in_file += 1
            return True
        self._show(path, proposal)
        while True:
            self.out.write("Apply this change [y,n,a,q,?]? ")
            self.out.flush()
            try:
                answer = self.keys.readline()
            except (OSError, ValueError):  # stdin unreadable (a directory, closed meanwhile): no more answers
                answer = ""
            if not answer:  # end of input: like quitting
                self.out.write("\n")
                answer = "q"
            key = answer.strip().lower()[:1]
            if key in ("y", "a"):
                if key == "a":
                    self.accept_all |= codes
                self.accepted += 1
                self.accepted_in_file += 1
                return True
            if key in ("n", "q"):
                self.quitting = key == "q"
                self.rejected += 1
                return False
            self.out.write(KEYS_HELP + "\n")

    def _show(self, path: str, proposal: Proposal) -> None:
        for change in proposal.changes:
            rule = RULES.get(change.code)
            rationale = first_sentence(rule.rationale) if rule else ""
            self.out.write(
                f"\n{location(path, change)}: {change.code} {rule_name(change.code)}"
                f" [{change.applicability}]\n  {change.message}\n"
            )
            if rationale:
                self.out.write(f"  why: {rationale}\n")
        if len(proposal.changes) > 1:
            codes = ", ".join(sorted({change.code for change in proposal.changes}))
            self.out.write(f"One fix resolves all of these ({codes}): accept or reject it as a whole.\n")
        before = proposal.text.splitlines(keepends=True)
        after = proposal.preview().splitlines(keepends=True)
        for line in list(difflib.unified_diff(before, after, n=2))[2:]:
            self.out.write(line if line.endswith("\n") else line + "\n")

    def summary(self, written: int) -> str:
        accepted = self.accepted + self.accepted_unasked
        parts = [_plural(accepted, "change") + " accepted"]
        if self.accepted_unasked:
            parts[0] += f" ({self.accepted_unasked} by an earlier 'a')"
        parts.append(f"{self.rejected} rejected")
        if self.not_asked:
            parts.append(f"{self.not_asked} not asked after quitting")
        parts.append(_plural(written, "file") + " written")
        return ", ".join(parts)


def review_file(path: str, transformer: FileTransformer, reviewer: Reviewer) -> FileOutcome:
    """Ask about each fix of one file, write the accepted ones; errors leave the file alone."""
    outcome = FileOutcome(path=path)
    ask = reviewer.for_file(path)
    with contain_errors(outcome):
        source = read_source(path)
        outcome.old_text = outcome.new_text = source.text
        if is_notebook(path):
            result = transform_notebook(transformer, source, accept=ask)
        else:
            crash = parser_crash(path, source.data) if transformer.needs_parse(source.text) else None
            if crash is not None:
                raise crash
            result = transformer.transform(source, accept=ask)
        outcome.changes = result.changes
        outcome.findings = result.findings_after if result.changed else result.findings_before
        if result.changed:
            write_atomic(path, result.new_data, source.stamp)
            outcome.new_text, outcome.new_data, outcome.written = result.new_text, result.new_data, True
    return outcome


def run(args: argparse.Namespace) -> int:
    if STDIN in args.paths:
        raise UsageError("review reads its answers from stdin, so it cannot read code from it")
    if sys.stdin is None:  # file descriptor 0 closed
        raise UsageError("review reads its answers from stdin, which is closed (give them on stdin, like printf 'y\\nn\\n' | migrate-ml review ...)")
    settings = settings_from(args)
    rules = select_rules(load_rules(), settings.select, settings.ignore)
    reviewer = Reviewer(sys.stdin, sys.stdout)
    outcomes = []
    for path in discover(args.paths, args.exclude, respect_gitignore=args.respect_gitignore, force_exclude=args.force_exclude):
        file_settings = settings.for_file(path)
        if file_settings == settings:
            transformer = FileTransformer(rules, settings)
        else:
            transformer = FileTransformer(select_rules(load_rules(), file_settings.select, file_settings.ignore), file_settings)
        outcome = review_file(path, transformer, reviewer)
        outcomes.append(outcome)
        if outcome.written:
            sys.stdout.write(f"Wrote {shown_path(path)}: {_plural(reviewer.accepted_in_file, 'accepted change')}\n")
        lines = finding_lines(outcome)
        if lines and outcome.error is None:
            sys.stdout.write("Needs review (no automatic fix):\n")
        for line in lines:
            (sys.stderr if outcome.error else sys.stdout).write(line + "\n")
    written = sum(1 for o in outcomes if o.written)
    sys.stdout.write(reviewer.summary(written) + "\n")
    return EXIT_ERROR if any(o.error is not None for o in outcomes) else EXIT_OK
