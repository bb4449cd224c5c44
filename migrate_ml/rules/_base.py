"""The contract every rule implements.

A rule is a LibCST ``BatchableCSTVisitor``: the engine runs all selected rules over a file in
one traversal. Detection and fixing are separate: while visiting, a rule *reports* a
:class:`Violation`; the fix it may carry is a description of node edits and import edits that
the engine applies afterwards, only if the fix's applicability is enabled.

Subclassing :class:`Rule` with a ``code`` registers the rule; no central list is edited.
"""

from __future__ import annotations

import ast
import enum
import re
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterable

import libcst as cst
from libcst.metadata import ParentNodeProvider, PositionProvider

from migrate_ml.rules._prefilter import text_facts


def enclosing(owner, node: cst.CSTNode, kind) -> cst.CSTNode | None:
    """The innermost ancestor of ``node`` of type ``kind`` (None when there is none); ``owner`` is a rule
    or metadata provider that depends on ParentNodeProvider."""
    current = owner.get_metadata(ParentNodeProvider, node, None)
    while current is not None and not isinstance(current, kind):
        current = owner.get_metadata(ParentNodeProvider, current, None)
    return current


def in_source_order(owner, items: Iterable) -> list:
    """LibCST scope accesses or assignments in the order their nodes occur in the file.

    LibCST keeps them in sets, whose order changes from run to run (hashes of ids and
    strings): anything built from them that reaches a message or an ordering must be sorted.
    ``owner`` is a rule or metadata provider that depends on PositionProvider."""

    def start(item) -> tuple[int, int]:
        node = getattr(item, "node", None)
        span = owner.get_metadata(PositionProvider, node, None) if node is not None else None
        return (span.start.line, span.start.column) if span is not None else (0, 0)

    return sorted(items, key=start)


class Applicability(str, enum.Enum):
    """How much a fix can be trusted, modelled on ruff's fix applicability."""

    SAFE = "safe"
    """Applied by default: the rewrite is correct whenever the rule matched."""
    UNSAFE = "unsafe"
    """Applied only with ``--unsafe-fixes``: correct under an assumption the tool cannot prove."""
    DISPLAY_ONLY = "display-only"
    """Never applied: a human decides. Reported with a suggestion."""


@dataclass(frozen=True)
class ImportEdit:
    """An import to add or drop: ``from module import obj as asname`` or ``import module``."""

    module: str
    obj: str | None = None
    asname: str | None = None


@dataclass(frozen=True)
class NodeEdit:
    """Replace ``node`` (a node of the original tree) by ``apply(updated_node)``.

    ``apply`` receives the node after edits to its children were made, so edits nested inside
    one another compose instead of overwriting each other.
    """

    node: cst.CSTNode
    apply: Callable[[cst.CSTNode], cst.CSTNode]


@dataclass(frozen=True)
class Fix:
    """Everything one violation changes. Its parts are accepted or rejected together."""

    edits: tuple[NodeEdit, ...]
    applicability: Applicability = Applicability.SAFE
    add_imports: tuple[ImportEdit, ...] = ()
    remove_imports: tuple[ImportEdit, ...] = ()
    needs_threshold: bool = False
    """True when the edits refer to the module-level threshold constant."""
    notes: tuple[cst.CSTNode, ...] = ()
    """Where the same rule reports what this fix leaves to the user (a target it did not cast):
    those findings are kept once the fix is applied, although the rewritten text no longer
    holds what the rule detects them by."""


@dataclass
class Violation:
    """One thing a rule found. ``node`` locates it; ``fix`` is optional."""

    code: str
    node: cst.CSTNode
    message: str
    suggestion: str = ""
    fix: Fix | None = None
    extra_nodes: tuple[cst.CSTNode, ...] = ()
    """Further places the fix touches; a suppression comment on any of them also applies."""
    judged_on_original: bool = False
    """Found on the code as the user wrote it (a loss the rewrite then makes BCE): kept once other
    rules' fixes have changed what it was judged by."""


@dataclass
class RuleContext:
    """Per-file settings and services shared by all rules of one pass."""

    path: str
    threshold: float = 0.5
    threshold_name: str = "THRESHOLD"
    """Name of the module-level decision-threshold constant, chosen by the engine per file."""
    violations: list[Violation] = field(default_factory=list)


_CODE_PATTERN = re.compile(r"^ML\d{3}$")

RULES: dict[str, type["Rule"]] = {}
"""Every registered rule class, keyed by code. Filled by ``Rule.__init_subclass__``."""


_VISITOR_NAMES: dict[type, tuple[str, ...]] = {}
"""The ``visit_*``/``leave_*`` methods of each rule class, found once (see ``Rule.get_visitors``)."""


class Rule(cst.BatchableCSTVisitor):
    """Base class of all rules.

    Subclasses set the class attributes below and implement ``visit_*``/``leave_*`` methods
    that call :meth:`report`. They must not mutate the tree.
    """

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    """One line: what the rule changes."""
    rationale: ClassVar[str] = ""
    """One paragraph: why the change is needed for multi-label training."""
    applicability: ClassVar[Applicability] = Applicability.SAFE
    """The rule's usual fix safety; individual violations may carry another."""
    example_before: ClassVar[str] = ""
    example_after: ClassVar[str] = ""
    triggers: ClassVar[tuple[str, ...]] = ()
    """Substrings of which at least one must occur in a file for the rule to run on it.

    This is the cheap pre-filter that lets the engine skip parsing files that cannot need
    this rule. Keep the strings as specific as the rule allows.
    """

    METADATA_DEPENDENCIES: ClassVar[tuple] = (PositionProvider,)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.code:
            return  # an abstract helper base, not a rule
        if not _CODE_PATTERN.match(cls.code):
            raise ValueError(f"rule code {cls.code!r} must look like ML123")
        if cls.code in RULES and RULES[cls.code] is not cls:
            raise ValueError(f"rule code {cls.code} is used by {RULES[cls.code].__name__} too")
        for attr in ("name", "summary", "rationale", "example_before", "example_after"):
            if not getattr(cls, attr):
                raise ValueError(f"rule {cls.code} must set {attr}")
        if not cls.triggers:
            raise ValueError(f"rule {cls.code} must set triggers for the pre-filter")
        RULES[cls.code] = cls

    def __init__(self, context: RuleContext) -> None:
        super().__init__()
        self.context = context

    def get_visitors(self):  # type: ignore[override]
        """LibCST's own version runs ``inspect.getmembers`` on every instance, and rules are
        instantiated for every pass over every file: the method names are a fact of the class."""
        names = _VISITOR_NAMES.get(type(self))
        if names is None:
            names = _VISITOR_NAMES[type(self)] = tuple(super().get_visitors())
        return {name: getattr(self, name) for name in names}

    @classmethod
    def could_apply(cls, source: str) -> bool:
        """Cheap text test run before parsing; override for a sharper filter (asking
        ``text_facts(source)``, never scanning ``source`` itself: see ``rules/_prefilter.py``)."""
        return text_facts(source).has_any(cls.triggers)

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        """Second pre-filter, on CPython's own syntax tree, for files that passed the text test.

        ``ast.parse`` costs a small fraction of LibCST's parse plus metadata, so a rule whose
        words also occur where it can never fire (``softmax`` inside attention, say) overrides
        this to skip those files. The default keeps every file.
        """
        return True

    @classmethod
    def checks_tree(cls) -> bool:
        return cls.could_apply_tree.__func__ is not Rule.could_apply_tree.__func__

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        suggestion: str = "",
        fix: Fix | None = None,
        extra_nodes: Iterable[cst.CSTNode] = (),
        judged_on_original: bool = False,
    ) -> None:
        self.context.violations.append(
            Violation(
                code=self.code,
                node=node,
                message=message,
                suggestion=suggestion,
                fix=fix,
                extra_nodes=tuple(extra_nodes),
                judged_on_original=judged_on_original,
            )
        )
