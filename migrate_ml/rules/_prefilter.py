"""What the rules' pre-checks share: one text scan and one ``ast`` walk per file, and the markers.

Every rule's text pre-check asks :func:`text_facts` (the file's words and called names, found by
one scan) instead of scanning the text itself; every syntax-tree pre-check iterates :func:`walk`
or :func:`nodes_of` (one walk of CPython's tree). Words such as ``argmax``, ``softmax``,
``.long()`` or ``lam`` occur all over model and library code (attention, patch selection, dtype
plumbing), where no migration applies. Parsing and resolving metadata for such a file costs
about ten times its parse, so rules keyed on common words also require one of the markers of
training, evaluation or loss code below.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import Callable, Iterable

from migrate_ml.rules._project import current_facts

_WORD_OR_CALL = re.compile(r"\w+\(?")
"""A maximal run of word characters, with the ``(`` right after it when it is called."""
_WORD = re.compile(r"\w+")


class TextFacts:
    """What the rules' text pre-filters ask about one file, found by one scan of it.

    Every pre-filter asks the same few questions of the same text (is this word there, is this
    name called), and each answered them with its own scan of the whole file: one scan here
    collects the file's words and called names, and the tests run on their far shorter lists.
    ``has(trigger)`` answers ``trigger in text`` exactly: a trigger made of word characters
    (``argmax``, ``ccuracy``) is looked for in the words, one that ends a call (``max(``) in the
    called names, and any other (``.features[``, ``lam *``) scans the text only when its words
    are there (``features`` a whole word, ``lam`` ending one). Get one with :func:`text_facts`.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        tokens = set(_WORD_OR_CALL.findall(text))
        self.called = frozenset(token[:-1] for token in tokens if token[-1] == "(")
        """Names immediately followed by ``(``: ``max`` for ``x.max(1)``, ``loss_fn`` for ``loss_fn(y)``."""
        self.words = frozenset(token[:-1] if token[-1] == "(" else token for token in tokens)
        """Every maximal run of word characters: names, attributes, keywords, numbers, the words of strings and comments."""
        self.word_text = "\n" + "\n".join(self.words) + "\n"
        """The words, one a line (and a line break first and last): regexes over single words
        (``\\b\\w*best\\w*``) run over this rather than the whole text, and find each word once."""
        self._call_text = "\n" + "\n".join(name + "(" for name in self.called)
        self._lower_word_text: str | None = None
        self._found: dict[str, bool] = {}
        self._answers: dict[Callable[["TextFacts"], bool], bool] = {}

    @property
    def lower_word_text(self) -> str:
        """``word_text`` lower-cased: for case-insensitive word tests (``"best" in facts.lower_word_text``)."""
        if self._lower_word_text is None:
            self._lower_word_text = self.word_text.lower()
        return self._lower_word_text

    def has(self, trigger: str) -> bool:
        """``trigger in text``, from the words and called names where the trigger allows it."""
        found = self._found.get(trigger)
        if found is None:
            found = self._found[trigger] = self._has(trigger)
        return found

    def has_any(self, triggers: Iterable[str]) -> bool:
        return any(self.has(trigger) for trigger in triggers)

    def answer(self, question: Callable[["TextFacts"], bool]) -> bool:
        """``question(self)``, asked once per text: a test several rules share (a training
        marker) or one that combines several of these facts with a regex."""
        found = self._answers.get(question)
        if found is None:
            found = self._answers[question] = question(self)
        return found

    def _has(self, trigger: str) -> bool:
        kind, parts = _trigger_kind(trigger)
        if kind == "word":
            return trigger in self.word_text
        if kind == "call":
            return trigger in self._call_text
        # every word part must be there first: a whole word inside the trigger, the end of a word
        # at its start, the start of a word at its end
        return all(part in self.word_text for part in parts) and trigger in self.text


_TRIGGER_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {}


def _trigger_kind(trigger: str) -> tuple[str, tuple[str, ...]]:
    known = _TRIGGER_KINDS.get(trigger)
    if known is not None:
        return known
    if _WORD.fullmatch(trigger):
        known = ("word", ())
    elif trigger.endswith("(") and _WORD.fullmatch(trigger[:-1]):
        known = ("call", ())
    else:
        parts = []
        for match in _WORD.finditer(trigger):
            before = "\n" if match.start() > 0 else ""
            after = "\n" if match.end() < len(trigger) else ""
            parts.append(before + match.group() + after)
        known = ("text", tuple(parts))
    _TRIGGER_KINDS[trigger] = known
    return known


_facts: dict[int, TextFacts] = {}


def _of_recent(cache: dict, source, source_of, build):
    """What ``build(source)`` gives, kept for the last few sources by identity (``source_of`` of a
    kept entry must be the very object, since an id can be reused): every pre-check of one file
    asks about the same text and tree, and a run reads one file at a time."""
    found = cache.get(id(source))
    if found is None or source_of(found) is not source:
        if len(cache) >= 4:
            cache.clear()
        found = cache[id(source)] = build(source)
    return found


def text_facts(text: str) -> TextFacts:
    """The :class:`TextFacts` of ``text``, scanned once: every rule's pre-check asks about the
    same text (and the engine asks again about it without its docstrings and comments)."""
    return _of_recent(_facts, text, lambda facts: facts.text, TextFacts)


# The training markers: whole words and called names of the shared scan; a regex is searched
# only where its words occur.
_TRAINING_WORDS = ("criterion", "predict")
_TRAINING_CALLS = ("loss_fn", "model", "net", "self", "model_ft")
"""``loss_fn(y)``, ``model(x)``, ``net(x)``, ``self(x)``: called under that very name."""
_TRAINING_TRIGGERS = ("accuracy(", "_step(self", "compute_metrics", "torchmetrics")
_EVAL_CALL = re.compile(r"\b(?:model|net|model_ft)\.eval\(\)")
_CORRECT_UPDATE = re.compile(r"\bcorrect(?:s|_\w+)?\s*\+=")
_ACC_WORD = re.compile(r"\nacc\d?\n")
_ACC_UPDATE = re.compile(r"\bacc\d?\s*\+?=")


def _training_code(facts: TextFacts) -> bool:
    words, called = facts.words, facts.called
    return (
        any(word in words for word in _TRAINING_WORDS)
        or any(name in called for name in _TRAINING_CALLS)
        or facts.has_any(_TRAINING_TRIGGERS)
        or (facts.has(".eval()") and _EVAL_CALL.search(facts.text) is not None)
        or (facts.has("correct") and _CORRECT_UPDATE.search(facts.text) is not None)
        or (_ACC_WORD.search(facts.word_text) is not None and _ACC_UPDATE.search(facts.text) is not None)
    )


_LOSS_WORDS = ("CrossEntropy", "cross_entropy", "BCEWithLogits", "binary_cross_entropy", "nll_loss", "NLLLoss", ".backward(")
_LOSS_NAMES = ("criterion", "loss_fn")
"""Loss words as substrings, and names that count as whole words only."""


def _loss_code(facts: TextFacts) -> bool:
    return facts.has_any(_LOSS_WORDS) or any(name in facts.words for name in _LOSS_NAMES)


def has_training_marker(source: str) -> bool:
    """Training, evaluation or inference code: a model call, a criterion, an accuracy counter…,
    or a helper that every caller in the run's other files gives a model's output
    (``top1(output, target)`` in ``utils.py``, called from ``train.py``): its file names none."""
    if text_facts(source).answer(_training_code):
        return True
    facts = current_facts()
    return facts is not None and bool(facts.score_parameters)


def has_loss_marker(source: str) -> bool:
    """A loss is built, called or back-propagated somewhere in the file."""
    return text_facts(source).answer(_loss_code)


_last_tree: tuple[str, ast.Module] | None = None
_run_trees: dict[str, ast.Module] = {}
"""Trees the run-wide pass parsed (``engine/project.py``), by the file's text: the worker
processes are forked after that pass, so a file it read is not parsed again for its pre-check."""
_COOKIE_LINES = re.compile(rb"\A[^\n]*(?:\n[^\n]*)?")


def forget_kept_trees() -> None:
    """A new run's pass starts: the trees of an earlier one (tests, ``review``) are let go."""
    _run_trees.clear()


def keep_tree(data: bytes, tree: ast.Module) -> None:
    """Keep ``tree``, parsed from a file's bytes, for :func:`parse_once` of that file's text.
    Only a file Python reads as UTF-8 (no BOM, no coding cookie) is kept: its text is then its
    bytes decoded as UTF-8, and the tree the same as that text's."""
    if data.startswith(b"\xef\xbb\xbf") or b"coding" in _COOKIE_LINES.match(data).group():
        return
    try:
        _run_trees[data.decode("utf-8")] = tree
    except UnicodeDecodeError:
        pass


def parse_once(text: str) -> ast.Module:
    """``ast.parse(text)``, once per text: the rules' syntax-tree pre-check and the safety net
    read the same file, and neither changes the tree. Raises what ``ast.parse`` raises. Texts are
    compared, not only their objects: a rule that reads its module's code (ML023) gets a new
    string equal to the one the engine holds."""
    global _last_tree
    if _last_tree is not None and (_last_tree[0] is text or _last_tree[0] == text):
        return _last_tree[1]
    tree = _run_trees.get(text)
    if tree is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings about the user's code are not this run's to print
            tree = ast.parse(text)
    _last_tree = (text, tree)
    return tree


class _Walked:
    """One walk of a syntax tree, shared by every pre-check and the safety net that reads it."""

    def __init__(self, tree: ast.AST) -> None:
        self.tree = tree  # held, so that its id is not reused while this answer is cached
        self.nodes: list[ast.AST] = [tree]
        self.parents: dict[ast.AST, ast.AST] = {}
        # ast.walk's order (breadth first), with the parent links found on the way; the children
        # as ast.iter_child_nodes finds them, without its two generators per node
        append = self.nodes.append
        for node in self.nodes:
            for name in node._fields:
                try:
                    value = getattr(node, name)
                except AttributeError:
                    continue
                if isinstance(value, ast.AST):
                    self.parents[value] = node
                    append(value)
                elif isinstance(value, list):
                    for item in value:
                        if isinstance(item, ast.AST):
                            self.parents[item] = node
                            append(item)
        self.by_type: dict[tuple[type, ...], list[ast.AST]] = {}


_walked: dict[int, _Walked] = {}


def _walk_of(tree: ast.AST) -> _Walked:
    return _of_recent(_walked, tree, lambda walked: walked.tree, _Walked)


def walk(tree: ast.AST) -> list[ast.AST]:
    """``list(ast.walk(tree))``, computed once per tree: the rules' pre-checks, the dense-prediction
    test, the docstring filter and the safety net each walked the same module again (the walk,
    not the tests on its nodes, was most of their time). The tree must not be changed."""
    return _walk_of(tree).nodes


def nodes_of(tree: ast.AST, *types: type) -> list[ast.AST]:
    """The nodes of ``tree`` that are instances of ``types``, in :func:`walk` order."""
    walked = _walk_of(tree)
    found = walked.by_type.get(types)
    if found is None:
        found = walked.by_type[types] = [node for node in walked.nodes if isinstance(node, types)]
    return found


def module_functions(tree: ast.Module):
    """``(class or "", function)`` for the module's own functions and its classes' methods (nested
    functions left out)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield "", node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield node.name, item


def parent_links(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    """Each node's parent in ``tree`` (read only: it is shared)."""
    return _walk_of(tree).parents


def model_may_end_in(tree: ast.Module, function: str, layer: str) -> bool:
    """A cheap superset of "the model's output is ``function(...)``": a ``layer`` module is built
    (``nn.Softmax``), or a ``forward``/``__call__`` returns a ``function`` call, directly or
    through a name it was assigned to. Attention (``attn = q.softmax(-1)``, ``return attn @ v``)
    fails it."""
    for node in nodes_of(tree, ast.Call, ast.FunctionDef, ast.AsyncFunctionDef):
        if isinstance(node, ast.Call) and _called(node) == layer:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
            node.name.startswith("forward") or node.name == "__call__"
        ):
            returned: set[str] = set()
            bound: set[str] = set()
            for inner in ast.walk(node):
                if isinstance(inner, ast.Return) and inner.value is not None:
                    values = inner.value.elts if isinstance(inner.value, ast.Tuple) else [inner.value]
                    if any(isinstance(value, ast.Call) and _called(value) == function for value in values):
                        return True
                    returned.update(value.id for value in values if isinstance(value, ast.Name))
                elif isinstance(inner, ast.Assign) and isinstance(inner.value, ast.Call) and _called(inner.value) == function:
                    bound.update(target.id for target in inner.targets if isinstance(target, ast.Name))
            if returned & bound:
                return True
    return False


def _called(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
