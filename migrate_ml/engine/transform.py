"""One file's rewrite: parse once, run every selected rule in one traversal, apply the fixes.

The flow for a file is:

1. a text pre-filter drops the rules whose triggers do not occur (most files stop here,
   unparsed);
2. the module is parsed once and all remaining rules visit it together
   (``MetadataWrapper.visit_batched``), each reporting violations;
3. violations silenced by a ``# migrate-ml: ignore[...]`` comment are dropped;
4. enabled fixes are applied by one transformer, then the import edits they queued run
   through LibCST's ``AddImportsVisitor``/``RemoveImportsVisitor``;
5. the new text is parsed again (it must parse, or nothing is written) and detection runs on
   it until no enabled fix remains, so that a second run is a no-op;
6. the safety net (ML100) looks over the final text once and reports every construct that
   still assumes one label per image and that no rule reported at that line.
"""

from __future__ import annotations

import ast
import dataclasses
import itertools
import re
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from migrate_ml import __version__
from migrate_ml.engine import bulk, metadata, untouched
from migrate_ml.engine.source import SourceError, SourceFile
from migrate_ml.rules import Applicability, Rule, RuleContext, Violation
from migrate_ml.rules._prefilter import nodes_of, parse_once
from migrate_ml.rules._project import FileFacts, facts_in_effect, original_text_in_effect
from migrate_ml.rules.semantics.residue import find_single_label
from migrate_ml.rules.ml100_still_single_label import StillSingleLabelRule
from migrate_ml.rules.semantics.sequences import is_token_model
from migrate_ml.rules.semantics.tasks import (
    already_multi_label,
    is_dense_prediction,
    is_one_output_binary,
    is_variational_autoencoder,
)

MAX_PASSES = 4
"""Fix passes per file. One is the norm; more only when a fix uncovers another."""

_SUPPRESSION = re.compile(r"#\s*migrate-ml:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""Line breaks as Python and LibCST count them (``str.splitlines`` also splits on form feeds)."""
_THRESHOLD_VALUE = r"(?:0?\.[0-9_]*|0|1\.?0*|[0-9.]+[eE]-[0-9]+)"
"""A float literal the engine could have written for a threshold in (0, 1)."""
_ALL_CODES = frozenset({"*"})
_RULE_MODULE = re.compile(r"[/\\]rules[/\\]ml(\d{3})_\w+\.py$")
_SAFETY_NET_MODULE = re.compile(r"[/\\]rules[/\\]semantics[/\\](?:residue[/\\]\w+|single_label_values)\.py$")


class InternalError(Exception):
    """A bug in migrate-ml met on one file: the rule it happened in, the line, the traceback.

    ``str()`` is the one-line message (the file's path and line are put before it by
    ``SourceError``); ``details`` is the traceback that ``-v`` prints.
    """

    def __init__(self, error: BaseException, rule: str | None, line: int | None) -> None:
        self.rule, self.line = rule, line
        self.details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        where = f" in {rule}" if rule else ""
        super().__init__(
            f"internal error{where}: {type(error).__name__}: {error}; file left unchanged. This is a bug in "
            f"migrate-ml {__version__}: please report it with the command you ran, this file and this "
            "message (-v prints the traceback)"
        )


def internal_error(
    error: Exception, positions: Callable[[], dict], rule: str | None = None, node: cst.CSTNode | None = None
) -> InternalError:
    """Name the rule whose code raised ``error`` and the line of the node it was looking at.

    The innermost frame that belongs to a rule (its module is ``rules/mlNNN_*.py``, or its
    ``self`` is a rule) names the rule; the innermost syntax node held in a local variable of
    the failing frames gives the line (a LibCST node through ``positions``, an ``ast`` node
    directly).
    """
    frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)]
    line = None
    for frame in reversed(frames if rule is None else ()):
        owner = frame.f_locals.get("self")
        module = _RULE_MODULE.search(frame.f_code.co_filename)
        if isinstance(owner, Rule):
            rule = owner.code
        elif module:
            rule = f"ML{module.group(1)}"
        elif _SAFETY_NET_MODULE.search(frame.f_code.co_filename):
            rule = StillSingleLabelRule.code
        if rule:
            break
    try:
        located = positions()
    except Exception:  # the positions themselves may be what failed
        located = {}
    if node in located:
        return InternalError(error, rule, located[node].start.line)
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, cst.CSTNode) and value in located:
                line = located[value].start.line
            elif isinstance(value, ast.AST) and hasattr(value, "lineno"):
                line = value.lineno
            if line is not None:
                return InternalError(error, rule, line)
    return InternalError(error, rule, line)


@dataclass(frozen=True)
class Settings:
    """What the user asked for. Plain data, so it can be sent to worker processes."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    unsafe_fixes: bool = False
    threshold: float = 0.5
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(glob, codes) pairs: the codes are ignored in files matching the glob (project config)."""

    def enabled(self, applicability: Applicability) -> bool:
        if applicability is Applicability.SAFE:
            return True
        return applicability is Applicability.UNSAFE and self.unsafe_fixes

    def for_file(self, path: str) -> "Settings":
        """These settings with the per-file ignores that match ``path`` folded into ``ignore``."""
        if not self.per_file_ignores:
            return self
        import fnmatch
        import os

        full = os.path.abspath(path)
        extra = tuple(
            code
            for pattern, codes in self.per_file_ignores
            # An absolute pattern matches the whole path, a bare one (no folder) the base name.
            if fnmatch.fnmatch(full if os.path.isabs(pattern) else os.path.basename(full), pattern)
            for code in codes
        )
        return Settings(self.select, self.ignore + extra, self.unsafe_fixes, self.threshold)


@dataclass(frozen=True)
class Finding:
    """A violation that was not fixed: it needs a human or ``--unsafe-fixes``."""

    code: str
    line: int
    column: int
    message: str
    suggestion: str
    applicability: str
    """The fix's applicability, or ``"display-only"`` when the rule offers no fix."""
    cell: int | None = None
    """In a notebook, the 1-based cell that ``line`` (then counted inside the cell) is in."""


@dataclass(frozen=True)
class Change:
    """A fix that was applied.

    Positions refer to the text the fix was applied to: the original text for the first pass,
    which is nearly always the only one (a later pass runs only when a fix uncovers another).
    """

    code: str
    line: int
    column: int
    end_line: int
    message: str
    applicability: str
    touches_header: bool = False
    """The fix also adds or removes imports or the threshold constant near the top."""
    first_line: int | None = None
    """The first line the fix edits, when that is above ``line`` (a diff hunk there names the rule too)."""
    cell: int | None = None
    """In a notebook, the 1-based cell that ``line`` (counted in the cell) is in."""
    end_cell: int | None = None
    """In a notebook, the cell of ``end_line``: a fix may reach into later cells."""


@dataclass
class Proposal:
    """An enabled fix offered to ``FileTransformer.transform``'s ``accept`` callback.

    Violations whose fixes share an edit are one proposal (ML020's prediction and ML021's
    accuracy comparison of it, say): one cannot be applied without the other.
    """

    changes: tuple[Change, ...]
    """One per violation the fix resolves, in file order."""
    violations: tuple[Violation, ...]
    text: str
    """The text the fix applies to."""
    preview: Callable[[], str]
    """The text with only this fix applied (computed on demand: it costs a transform)."""


@dataclass
class TransformResult:
    source: SourceFile
    new_data: bytes
    new_text: str
    changes: list[Change] = field(default_factory=list)
    findings_before: list[Finding] = field(default_factory=list)
    """Unfixed findings, positioned in the original text (what ``--check``/``--diff`` show)."""
    findings_after: list[Finding] = field(default_factory=list)
    """Unfixed findings, positioned in the rewritten text (what a written file shows)."""
    skipped: str = ""
    """Why the pre-filter left the file unparsed; empty when it was parsed."""

    @property
    def changed(self) -> bool:
        return self.new_data != self.source.data


def select_rules(
    rules: dict[str, type[Rule]], select: Sequence[str], ignore: Sequence[str]
) -> list[type[Rule]]:
    """Rules whose code starts with a selected prefix and with no ignored prefix.

    Raises ``ValueError`` for a prefix that matches no rule, so typos do not pass silently.
    """
    for prefix in (*select, *ignore):
        if not any(code.startswith(prefix) for code in rules):
            raise ValueError(f"unknown rule code or prefix: {prefix}")
    chosen = []
    for code in sorted(rules):
        if select and not any(code.startswith(prefix) for prefix in select):
            continue
        if any(code.startswith(prefix) for prefix in ignore):
            continue
        chosen.append(rules[code])
    return chosen


def parse_suppressions(text: str) -> dict[int, frozenset[str]]:
    """Map 1-based line numbers to the codes (or prefixes) a comment on that line silences."""
    silenced: dict[int, frozenset[str]] = {}
    if "migrate-ml" not in text:
        return silenced
    for match in _SUPPRESSION.finditer(text):
        number = len(_LINE_BREAK.findall(text, 0, match.start())) + 1
        codes = match.group("codes")
        if codes is None or not codes.strip():
            silenced[number] = _ALL_CODES
        else:
            silenced[number] = frozenset(c.strip().upper() for c in codes.split(",") if c.strip())
    return silenced


def choose_threshold_name(text: str) -> str:
    """``THRESHOLD`` unless the file already uses that name for something else.

    A module-level ``NAME = <float in (0, 1)>`` is taken to be the constant an earlier run
    inserted (or the user's own threshold), so a second run picks the same name.
    """
    numbered = (f"MULTILABEL_THRESHOLD_{n}" for n in itertools.count(2))
    for candidate in itertools.chain(("THRESHOLD", "MULTILABEL_THRESHOLD"), numbered):
        if not re.search(rf"\b{candidate}\b", text) or re.search(
            rf"^{candidate}[ \t]*=[ \t]*{_THRESHOLD_VALUE}[ \t]*(#.*)?$", text, re.MULTILINE
        ):
            return candidate
    raise AssertionError("unreachable: a finite text cannot use every numbered name")


def _parse(path: str, data: bytes) -> cst.Module:
    bulk.check_size(path, data)
    try:
        return cst.parse_module(data)
    except cst.ParserSyntaxError as exc:
        raise _syntax_error(path, data, exc) from None
    except (SyntaxError, RecursionError) as exc:
        raise SourceError(path, f"cannot parse: {exc}") from None
    except Exception as exc:  # the native parser reports some inputs with other exception types
        raise SourceError(path, f"cannot parse: {type(exc).__name__}: {exc}") from None


_LIBCST_POSITION = re.compile(r"error at (\d+):(\d+): (.*)", re.DOTALL)


def _syntax_error(path: str, data: bytes, exc: cst.ParserSyntaxError) -> SourceError:
    """The error as CPython words and positions it; LibCST's own positions are coarse.

    Only on the error path: CPython's parser runs to get its message and position.
    """
    try:
        compile(data, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as python_error:
        return SourceError(
            path, f"syntax error: {python_error.msg}", python_error.lineno or 1, python_error.offset or 1
        )
    except ValueError:
        pass  # null bytes: fall back to LibCST's report
    message = exc.message.removeprefix("parser error: ")
    line, column = exc.raw_line, exc.raw_column + 1
    located = _LIBCST_POSITION.match(message)
    if located:
        line, column, message = int(located.group(1)), int(located.group(2)) + 1, located.group(3)
    return SourceError(path, f"syntax error (LibCST cannot parse this): {message}", line, column)


class _ApplyEdits(cst.CSTTransformer):
    def __init__(self, violations: Iterable[Violation]) -> None:
        super().__init__()
        self._edits: dict[cst.CSTNode, list] = {}
        seen: set[int] = set()
        for violation in violations:
            assert violation.fix is not None
            for edit in violation.fix.edits:
                if id(edit) in seen:
                    continue  # one edit shared by the fixes of several rules (ML020/ML021) runs once
                seen.add(id(edit))
                self._edits.setdefault(edit.node, []).append((violation.code, edit.apply))
        self.failed: tuple[str, cst.CSTNode] | None = None
        """The rule and node of the edit that raised: a fix is a closure, its frames name no rule."""

    def on_leave(self, original_node, updated_node):  # type: ignore[override]
        for code, apply in self._edits.get(original_node, ()):
            if not isinstance(updated_node, cst.CSTNode):
                break  # an earlier edit removed the node
            self.failed = (code, original_node)
            updated_node = apply(updated_node)
            self.failed = None
        return updated_node


_MAGIC_PLACEHOLDER = re.compile(r"migrate_ml_magic_\d+_\d+")
"""The import ``engine/notebook.py`` masks a line magic with: not an import of the notebook's own."""


def _insert_threshold(module: cst.Module, name: str, value: float, notebook: bool) -> cst.Module:
    """Add ``NAME = value`` after the docstring and the leading imports, once.

    In a notebook the leading imports are often a setup cell's (``!pip install``, then "restart
    the runtime") that is not run again: the constant goes after the last import that comes
    before its first use instead, in the cell of those imports.
    """
    for statement in module.body:
        if m_assigns_name(statement, name):
            return module
    position = 0
    for index, statement in enumerate(module.body):
        if _is_docstring_or_import(statement, index):
            position = index + 1
        else:
            break
    if notebook:
        # A word match (a comment naming the constant too) at worst places it earlier: still before its use.
        used = re.compile(rf"\b{re.escape(name)}\b")
        for index, statement in enumerate(module.body):
            if used.search(module.code_for_node(statement)):
                break
            if _is_own_import(statement):
                position = max(position, index + 1)
    constant = cst.parse_statement(
        f"{name} = {value!r}  # multi-label decision threshold on sigmoid outputs; tune per class on validation data\n",
        # Not module.config_for_parsing: it rejects indents LibCST itself parsed (e.g. "\x0c ").
        config=cst.PartialParserConfig(default_newline=module.default_newline),
    )
    constant = constant.with_changes(leading_lines=[cst.EmptyLine()] if position else [])
    body = list(module.body)
    if position < len(body):
        following = body[position]
        if not following.leading_lines:
            body[position] = following.with_changes(leading_lines=[cst.EmptyLine()])
    body.insert(position, constant)
    return module.with_changes(body=body)


def m_assigns_name(statement: cst.CSTNode, name: str) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    for small in statement.body:
        if isinstance(small, cst.Assign):
            for target in small.targets:
                if isinstance(target.target, cst.Name) and target.target.value == name:
                    return True
    return False


def _is_own_import(statement: cst.CSTNode) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    return any(
        isinstance(small, (cst.Import, cst.ImportFrom))
        and not _MAGIC_PLACEHOLDER.fullmatch(cst.Module([]).code_for_node(small).removeprefix("import "))
        for small in statement.body
    )


def _is_docstring_or_import(statement: cst.CSTNode, index: int) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    first = statement.body[0]
    if isinstance(first, (cst.Import, cst.ImportFrom)):
        return True
    return index == 0 and isinstance(first, cst.Expr) and isinstance(first.value, cst.SimpleString)


def _put_form_feeds_back(result: TransformResult, feeds: untouched.FormFeeds, source: SourceFile) -> None:
    """The form feeds ``untouched.set_form_feeds_aside`` took off ``source``, back in the rewritten text, and
    in the columns of the changes and findings on their lines."""
    before = {line: len(text) for line, text in feeds.lines.items()}
    if result.new_text == feeds.text:
        result.new_text, result.new_data, after = source.text, source.data, before
    else:
        result.new_text, after = untouched.put_form_feeds_back(source.path, feeds, result.new_text)
        result.new_data = result.new_text.encode(source.encoding)

    def shifted(items: list, by: dict[int, int]) -> list:
        return [dataclasses.replace(item, column=item.column + by[item.line]) if item.line in by else item
                for item in items]

    result.changes = shifted(result.changes, before)
    result.findings_before = shifted(result.findings_before, before)
    result.findings_after = shifted(result.findings_after, after)


class FileTransformer:
    """Runs the selected rules on files. Build one per process and reuse it."""

    def __init__(self, rules: Sequence[type[Rule]], settings: Settings) -> None:
        # ML100 does not visit the tree: it scans the final text (see ``_safety_net``).
        self.rules = [rule for rule in rules if rule is not StillSingleLabelRule]
        self.safety_net = StillSingleLabelRule in rules
        self.settings = settings

    def needs_parse(self, text: str) -> bool:
        """Whether any selected rule, or the safety net, could have something to say about ``text``."""
        return any(rule.could_apply(text) for rule in self.rules) or (
            self.safety_net and StillSingleLabelRule.could_apply(text)
        )

    def transform(
        self,
        source: SourceFile,
        accept: Callable[[Proposal], bool] | None = None,
        project: FileFacts | None = None,
    ) -> TransformResult:
        """Rewrite one file; with ``accept``, apply only the fixes it returns True for.

        A fix declined once is not offered again in later passes of the same file. ``project``
        holds what the other files of a multi-file run say about this one (``engine/project.py``).
        """
        head, tail = untouched.split_blank_tail(source)
        with_feeds = head
        head, feeds = untouched.set_form_feeds_aside(head)
        with facts_in_effect(project), original_text_in_effect(head.text):
            # Setting literals aside costs a parse of its own: only for a file LibCST will parse.
            aside = bulk.set_aside(head) if self._will_parse(head) else None
            if aside is None:
                result = self._transform(head, accept)
            else:
                result = self._transform(aside.source, accept)
                result.new_text, result.new_data = bulk.put_back(aside, head, result.new_text, source.path)
        if feeds is not None:
            _put_form_feeds_back(result, feeds, with_feeds)
        if tail:
            result.new_text += tail.decode("ascii")
            result.new_data += tail
        result.source = source
        return result

    def _will_parse(self, source: SourceFile) -> bool:
        if len(source.data) < bulk.SET_ASIDE_FROM_BYTES:
            return False  # small files are parsed as they are: no need to know
        return bool(_tree_filter([rule for rule in self.rules if rule.could_apply(source.text)], source.text))

    def _transform(self, source: SourceFile, accept: Callable[[Proposal], bool] | None) -> TransformResult:
        declined: Counter = Counter()
        result = TransformResult(source=source, new_data=source.data, new_text=source.text)
        text_candidates = [rule for rule in self.rules if rule.could_apply(source.text)]
        candidates = _tree_filter(text_candidates, source.text)
        if not text_candidates:
            result.skipped = "no trigger word of the selected rules occurs"
        elif not candidates:
            rules = ", ".join(rule.code for rule in text_candidates)
            result.skipped = f"trigger words of {rules} occur, but not in code those rules handle (syntax-tree pre-check)"
        if not candidates:
            result.findings_before = result.findings_after = self._safety_net(source.text, [], set())
            return result
        module = _parse(source.path, source.data)
        threshold_name = choose_threshold_name(source.text)
        text = source.text
        original_compiles: bool | None = None  # compiling costs time: only checked once a fix applies
        carried: list[Finding] = []
        reported_lines: set[int] = set()
        # One detection more than there are fix passes: the last one proves the result is stable.
        for pass_number in range(MAX_PASSES + 1):
            violations, positions, reported_lines = self._detect(module, candidates, source.path, threshold_name, text)
            fixes = [v for v in violations if v.fix and self.settings.enabled(v.fix.applicability)]
            findings = [self._finding(v, positions) for v in violations if v not in fixes]
            if pass_number == 0:
                result.findings_before = findings
            # a carried note that another rule now makes in the same words (ML010 on the target
            # ML001 left uncast, which names its code) is the same finding
            fresh = {(f.code, f.message) for f in findings} | {f.message for f in findings}
            result.findings_after = sorted(
                findings + [f for f in carried if (f.code, f.message) not in fresh and f.message not in fresh],
                key=lambda f: (f.line, f.column, f.code),
            )
            if accept is not None:
                fixes = self._ask(accept, module, fixes, positions, text, source.path, threshold_name, declined)
            if not fixes:
                break
            if pass_number == MAX_PASSES:
                # Writing now would leave work for the next run: refuse instead of breaking idempotency.
                pending = ", ".join(sorted({v.code for v in fixes}))
                raise SourceError(
                    source.path,
                    f"internal error: fixes ({pending}) still apply after {MAX_PASSES} passes; file left unchanged",
                )
            result.changes.extend(self._change(v, positions) for v in fixes)
            # A rule's own notes about code that its fix rewrites cannot be detected again in the
            # new text, yet still need a human (e.g. "not every use of this criterion was followed").
            inside_fixes = [f for f in findings if _within_fixes(f, fixes, positions)]
            if pass_number == 0:
                # judged on the code as written, before the fixes change what it was judged by
                inside_fixes += [self._finding(v, positions) for v in violations if v.judged_on_original and v not in fixes]
                untouched.round_trip(source.path, module, source.data)
            edited = [(change.first_line or change.line, change.end_line) for change in result.changes[-len(fixes):]]
            module = self._apply(module, fixes, source.path, threshold_name, positions)
            new_data = module.bytes
            if original_compiles is None:
                original_compiles = _compiles(source.text, source.path)
            module, new_text = _reparse(source.path, new_data, original_compiles)
            untouched.outside_edits(source.path, text, new_text, edited + untouched.import_lines(positions))
            carried = _moved(carried, text, new_text) + _moved(inside_fixes, text, new_text)
            text = new_text
            result.new_data, result.new_text = new_data, text
            candidates = _tree_filter([rule for rule in self.rules if rule.could_apply(text)], text, whole_file=False)
        net = self._safety_net(text, result.findings_after, reported_lines)
        if net:
            result.findings_after = sorted(result.findings_after + net, key=lambda f: (f.line, f.column, f.code))
        if result.changes:
            result.findings_before = _in_original(result.findings_before, result.findings_after, source.text, text)
        else:
            result.findings_before = result.findings_after  # one pass, on the original text
        return result

    def _safety_net(self, text: str, findings: Sequence[Finding], reported_lines: set[int]) -> list[Finding]:
        """ML100: what still assumes one label per image in ``text`` and is reported nowhere.

        A construct counts as reported when any rule's finding, or a violation a suppression
        comment silenced, sits on its line or on a line that reports it as a whole (the
        ``def``/``class`` around it, the dataset its labels come from). One built on
        a line that has a finding (the comparison of an arg-max that ML020 reports, the call of
        a helper whose body is reported) gets a short finding of its own that points there:
        each single-label construct is reported at its line.
        """
        if not self.safety_net or not StillSingleLabelRule.could_apply(text):
            return []
        covered = reported_lines | {f.line for f in findings}
        silenced = parse_suppressions(text)
        try:
            constructs = find_single_label(text)
        except (SyntaxError, RecursionError):
            raise
        except Exception as error:
            raise internal_error(error, dict) from error
        net: list[Finding] = []
        built_on = []
        for construct in constructs:
            if covered.intersection((construct.line, *construct.covering_lines)):
                continue
            codes = silenced.get(construct.line)
            if codes and (codes is _ALL_CODES or any(StillSingleLabelRule.code.startswith(c) for c in codes)):
                continue
            if construct.related_lines:
                built_on.append(construct)
            else:
                net.append(self._net_finding(construct, construct.message))
        # Then what is built on other lines, once those lines' own constructs are settled (the
        # call of a helper waits for the comparison in its body): it points to their finding.
        shown = {f.line: f.code for f in (*findings, *net)}
        while built_on:
            pending = {construct.line for construct in built_on}
            ready = [c for c in built_on if not pending.intersection(c.related_lines)] or built_on
            built_on = [c for c in built_on if c not in ready]
            for construct in ready:
                there = next((line for line in construct.related_lines if line in shown), None)
                if construct.line in shown or (there is None and covered.intersection(construct.related_lines)):
                    continue  # this line has its finding now; or it is built on a violation a comment silenced
                shown[construct.line] = StillSingleLabelRule.code
                message = construct.message if there is None else f"{construct.message} (see {shown[there]} at line {there})"
                net.append(self._net_finding(construct, message))
        return sorted(net, key=lambda f: (f.line, f.column, f.code))

    @staticmethod
    def _net_finding(construct, message: str) -> Finding:
        return Finding(
            code=StillSingleLabelRule.code,
            line=construct.line,
            column=construct.column,
            message=f"still single-label ({construct.kind}): {message}",
            suggestion=construct.suggestion,
            applicability=Applicability.DISPLAY_ONLY.value,
        )

    def _ask(self, accept, module, fixes, positions, text, path, threshold_name, declined) -> list[Violation]:
        still_declined = Counter(declined)
        chosen = []
        for group in _shared_fixes(fixes):
            keys = [(violation.code, module.code_for_node(violation.node)) for violation in group]
            if any(still_declined[key] > 0 for key in keys):  # declined in an earlier pass
                still_declined.subtract(key for key in keys if still_declined[key] > 0)
                continue
            proposal = Proposal(
                changes=tuple(self._change(violation, positions) for violation in group),
                violations=tuple(group),
                text=text,
                preview=lambda g=group: self._apply(module, g, path, threshold_name, positions).code,
            )
            if accept(proposal):
                chosen.extend(group)
            else:
                declined.update(keys)
        return chosen

    def _detect(
        self,
        module: cst.Module,
        rules: Sequence[type[Rule]],
        path: str,
        threshold_name: str,
        text: str,
    ) -> tuple[list[Violation], dict, set[int]]:
        """The violations no comment silences, node positions, and the lines of every violation."""
        context = RuleContext(path=path, threshold=self.settings.threshold, threshold_name=threshold_name)
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        try:
            visitors = [rule(context) for rule in rules]
            metadata.prepare(wrapper, visitors)
            wrapper.visit_batched(visitors)
        except RecursionError:
            raise  # deeply nested input, not a bug: the runner says so in one line
        except Exception as error:
            raise internal_error(error, lambda: wrapper.resolve(PositionProvider)) from error
        positions = wrapper.resolve(PositionProvider)
        silenced = parse_suppressions(text)
        kept = [v for v in _without_repeats(context.violations, positions) if not self._is_silenced(v, positions, silenced)]
        kept.sort(key=lambda v: (positions[v.node].start.line, positions[v.node].start.column, v.code))
        return kept, positions, {positions[v.node].start.line for v in context.violations}

    @staticmethod
    def _is_silenced(violation: Violation, positions, silenced: dict[int, frozenset[str]]) -> bool:
        """Whether a suppression comment sits on a line the violation reports or its fix edits.

        Only the first and last line of each node count, as a comment can only trail those of a
        multi-line call; a comment inside a function body must not silence a violation reported
        on the whole function.
        """
        if not silenced:
            return False
        edited = violation.fix.edits if violation.fix else ()
        for node in (violation.node, *violation.extra_nodes, *(edit.node for edit in edited)):
            span = positions.get(node)
            if span is None:
                continue
            for line in {span.start.line, span.end.line}:
                codes = silenced.get(line)
                if codes and (codes is _ALL_CODES or any(violation.code.startswith(c) for c in codes)):
                    return True
        return False

    @staticmethod
    def _finding(violation: Violation, positions) -> Finding:
        start = positions[violation.node].start
        applicability = violation.fix.applicability.value if violation.fix else Applicability.DISPLAY_ONLY.value
        return Finding(
            code=violation.code,
            line=start.line,
            column=start.column + 1,
            message=violation.message,
            suggestion=violation.suggestion,
            applicability=applicability,
        )

    @staticmethod
    def _change(violation: Violation, positions) -> Change:
        span = positions[violation.node]
        assert violation.fix is not None
        # The edits may lie before the reported node (a target cast in a helper above the criterion).
        touched = [positions[n] for n in (*violation.extra_nodes, *(e.node for e in violation.fix.edits)) if n in positions]
        return Change(
            code=violation.code,
            line=span.start.line,
            column=span.start.column + 1,
            end_line=max([span.end.line] + [t.end.line for t in touched]),
            first_line=min([span.start.line] + [t.start.line for t in touched]),
            message=violation.message,
            applicability=violation.fix.applicability.value,
            touches_header=bool(
                violation.fix.add_imports or violation.fix.remove_imports or violation.fix.needs_threshold
            ),
        )

    def _apply(
        self, module: cst.Module, violations: Sequence[Violation], path: str, threshold_name: str, positions: dict
    ) -> cst.Module:
        applier = _ApplyEdits(violations)
        try:
            module = module.visit(applier)
        except RecursionError:
            raise
        except Exception as error:
            rule, node = applier.failed or (None, None)
            raise internal_error(error, lambda: positions, rule, node) from error
        fixes = [violation.fix for violation in violations]
        if any(fix.needs_threshold for fix in fixes):
            module = _insert_threshold(module, threshold_name, self.settings.threshold, path.endswith(".ipynb"))
        adds = [imp for fix in fixes for imp in fix.add_imports]
        removes = [imp for fix in fixes for imp in fix.remove_imports]
        if adds or removes:
            # libcst.codemod imports libcst.matchers (~0.3 s): pay for it only when imports change.
            from libcst.codemod import CodemodContext
            from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

            context = CodemodContext(filename=path)
            for imp in adds:
                AddImportsVisitor.add_needed_import(context, imp.module, imp.obj, imp.asname)
            for imp in removes:
                RemoveImportsVisitor.remove_unused_import(context, imp.module, imp.obj, imp.asname)
            # The import visitors re-parse with module.config_for_parsing, which rejects an indent
            # LibCST parsed itself when it holds a form feed. Imports are not indented, so a plain
            # indent is lent while they run and the file's own is put back.
            indent = module.default_indent
            module = module.with_changes(default_indent=indent.replace("\x0c", "") or "    ")
            if adds:
                module = AddImportsVisitor(context).transform_module(module)
            if removes:
                module = RemoveImportsVisitor(context).transform_module(module)
            module = module.with_changes(default_indent=indent)
        return module


def _shared_fixes(fixes: list[Violation]) -> list[list[Violation]]:
    """Group violations whose fixes share an edit (transitively), in order of first appearance."""
    groups: list[list[Violation]] = []
    group_of_edit: dict[int, int] = {}
    for violation in fixes:
        assert violation.fix is not None
        edits = {id(edit) for edit in violation.fix.edits}
        joined = sorted({group_of_edit[edit] for edit in edits if edit in group_of_edit})
        if not joined:
            groups.append([])
            joined = [len(groups) - 1]
        target = joined[0]
        for other in joined[1:]:
            groups[target].extend(groups[other])
            groups[other] = []
            group_of_edit.update({edit: target for edit, group in group_of_edit.items() if group == other})
        groups[target].append(violation)
        group_of_edit.update(dict.fromkeys(edits, target))
    return [group for group in groups if group]


def _compiles(text: str, path: str) -> bool:
    try:
        compile(text, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _reparse(path: str, data: bytes, must_compile: bool) -> tuple[cst.Module, str]:
    """The rewritten text must parse, and compile if the original did, or nothing is written.

    Returns the parsed module and its code: ``Module.code`` prints the whole tree again on every
    read (a third of a parse), and the caller reads it several times."""
    try:
        reparsed = cst.parse_module(data)
    except Exception as exc:  # a rule produced invalid code: refuse the whole file
        raise SourceError(
            path, f"internal error: rewritten code does not parse ({exc}); file left unchanged"
        ) from None
    code = reparsed.code
    if must_compile and not _compiles(code, path):
        raise SourceError(path, "internal error: rewritten code does not compile; file left unchanged")
    return reparsed, code


def _within_fixes(finding: Finding, fixes: Sequence[Violation], positions) -> bool:
    """Whether a finding sits on a line that an applied fix of the same rule edits or names
    among its notes."""
    for violation in fixes:
        assert violation.fix is not None
        if violation.code != finding.code:
            continue
        for node in (violation.node, *(edit.node for edit in violation.fix.edits), *violation.fix.notes):
            span = positions.get(node)
            if span is not None and span.start.line <= finding.line <= span.end.line:
                return True
    return False


def _in_original(before: list[Finding], after: list[Finding], old_text: str, new_text: str) -> list[Finding]:
    """The findings of the written text, positioned in the original: what ``--check``/``--diff``
    show, finding for finding what the written file shows.

    A written finding takes the position of the original's finding it matches: one of the same
    code on the line the construct moved to, else one of the same code and message (a fix moved
    the construct further than a line), else one with the same message from another rule (ML001
    leaves a literal target uncast, ML010 reports it on the rewritten text). A finding of the
    original with no match is about code the fixes rewrote away, and is dropped. A written
    finding with no match (a later pass saw it once a fix applied, or the safety net on the final
    text) is moved back onto the original's lines.
    """
    moved = _moved(before, old_text, new_text)
    unmatched = list(range(len(after)))
    shown: list[Finding] = []
    pending = list(range(len(before)))
    for same in (
        lambda b, m, a: (m.code, m.line) == (a.code, a.line),
        lambda b, m, a: (b.code, b.message) == (a.code, a.message),
        lambda b, m, a: b.message == a.message,
    ):
        for index in list(pending):
            match = next((j for j in unmatched if same(before[index], moved[index], after[j])), None)
            if match is not None:
                unmatched.remove(match)
                pending.remove(index)
                [written] = _moved([after[match]], new_text, old_text)
                shown.append(dataclasses.replace(written, line=before[index].line, column=before[index].column))
    shown.extend(_moved([after[j] for j in unmatched], new_text, old_text))
    return sorted(shown, key=lambda f: (f.line, f.column, f.code))


def _moved(findings: list[Finding], old_text: str, new_text: str) -> list[Finding]:
    """The findings with their lines mapped from ``old_text`` to ``new_text``."""
    if not findings:
        return []
    import difflib  # only paid for by files whose fixes left notes behind

    opcodes = difflib.SequenceMatcher(None, old_text.splitlines(), new_text.splitlines(), autojunk=False).get_opcodes()

    def move(old: int) -> int:
        for tag, old_start, old_end, new_start, _ in opcodes:
            if old_start < old <= old_end or (old_start == old_end == old - 1):
                return new_start + (old - 1 - old_start if tag == "equal" else 0) + 1
        return old

    return [
        dataclasses.replace(
            finding,
            line=move(finding.line),
            message=with_line_mentions(finding.message, lambda line: f"line {move(line)}"),
        )
        for finding in findings
    ]


_LINE_MENTION = re.compile(r"\bline (\d+)\b")


def with_line_mentions(message: str, place: Callable[[int], str]) -> str:
    """``message`` with each ``line N`` it names written as ``place(N)``: a finding names other
    lines of the text it is positioned in (the uses ML001 could not follow, the finding a safety-net
    construct is built on), so they move with it (and become ``cell C:L`` in a notebook)."""
    return _LINE_MENTION.sub(lambda match: place(int(match.group(1))), message)


def _without_repeats(violations: list[Violation], positions) -> list[Violation]:
    """The violations less a finding said twice: the same rule, place, message and help, no fix
    (ML020 follows a prediction into both branches of ``np.squeeze(a) if gpu else np.squeeze(b)``
    and meets the same call it cannot follow in each)."""
    seen: set[tuple] = set()
    kept = []
    for violation in violations:
        if violation.fix is None:
            start = positions[violation.node].start
            key = (violation.code, start.line, start.column, violation.message, violation.suggestion)
            if key in seen:
                continue
            seen.add(key)
        kept.append(violation)
    return kept


def _tree_filter(rules: list[type[Rule]], text: str, whole_file: bool = True) -> list[type[Rule]]:
    """Drop the rules whose trigger words occur only in documentation (string statements, such as
    docstrings, and comment lines: library code shows its usage there, ``criterion=
    nn.CrossEntropyLoss()`` in an example, ``# the best accuracy`` in a note) or whose
    ``could_apply_tree`` rejects the file; with ``whole_file``, all of them for a segmentation
    file, a token model (a captioning decoder, a translation model: dense prediction and a
    vocabulary axis are not image classification), a one-output binary classifier or a file that
    is multi-label already (nothing single-label to migrate). The last is asked of the original
    only: the rules' own rewrite makes a single-label file read like one.

    Once fixes applied, the file's kind was settled on the original (the rewrite makes a softmax
    classifier's loss BCE, which must not turn it into a binary one), so later passes ask without
    ``whole_file``; but the rewritten text is pre-checked per rule as the original was: a rule the
    pre-check left out must not report in a later pass only, since ``--check``/``--diff`` and the
    written file then differ."""
    if not rules:
        return rules
    try:
        tree = parse_once(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return rules  # LibCST will report the problem with its position
    if whole_file and (
        is_dense_prediction(tree)
        or is_token_model(tree)
        or is_one_output_binary(tree)
        or is_variational_autoencoder(tree)
        or already_multi_label(tree)
    ):
        return []
    code = _without_documentation(text, tree)
    if code is not text:
        rules = [rule for rule in rules if rule.could_apply(code)]
    return [rule for rule in rules if not rule.checks_tree() or rule.could_apply_tree(tree)]


def _without_documentation(text: str, tree: ast.Module) -> str:
    """``text`` without the lines that hold only a string statement (a docstring, or the string
    documenting an attribute) or only a comment (``text`` itself when there are none).

    No rule reads a comment or a string statement: they do nothing when the code runs. Only
    for the trigger-word tests: the result need not be valid Python.
    """
    lines = text.splitlines(keepends=True)
    dropped: set[int] = set()
    inside_strings: set[int] = set()
    """Lines that continue a string literal begun on an earlier line: a ``#`` there is text."""
    for node in nodes_of(tree, ast.Constant, ast.JoinedStr):
        if isinstance(node, ast.JoinedStr) or isinstance(node.value, (str, bytes)):
            inside_strings.update(range(node.lineno, node.end_lineno or node.lineno))
    for node in nodes_of(tree, ast.Expr):
        if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            continue
        start, end = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        if end >= len(lines):
            continue
        opening, closing = lines[start].encode("utf-8"), lines[end].encode("utf-8")
        # Only lines holding nothing but the string: `def f(): """doc"""; x = 1` keeps its line.
        if opening[: node.col_offset].strip() or closing[node.end_col_offset or 0 :].strip():
            continue
        dropped.update(range(start, end + 1))
    if "#" in text:
        dropped.update(
            number for number, line in enumerate(lines)
            if line.lstrip().startswith("#") and number not in inside_strings
        )
    if not dropped:
        return text
    return "".join(line for number, line in enumerate(lines) if number not in dropped)
