"""Sequence models are not image classification, by what their values do.

A character or word language model trains with cross-entropy over a vocabulary and predicts
the next token with an arg-max, which reads like single-label classification, but the choice
of one token per step is the task itself. Such code is known by its data flow, not its names:

* a **recurrent state** is threaded through the model: ``(Y, state) = rnn(X, state, params)``
  rebinds a name it passes in beside a new output (``model, opt = fabric.setup(model, opt)``
  only passes them through; ``_, preds = torch.max(preds, 1)`` is an arg-max), and that name
  is never called and is read nowhere else but in such calls, its own methods
  (``state.detach()``), its items (``state[0]``), ``isinstance``/``len`` and ``is None``
  tests: it is never compared with a value (``preds == targets`` reads a result), its weights
  are never read (``model.parameters()``, ``model.state_dict()``: a model trained by a helper,
  ``model, acc = train_model(model, criterion)``), and a
  mixup's ``inputs, targets = mix(inputs, targets)`` passes ``inputs`` on to the model;
* or **the arg-max is fed back**: it is appended to a list that the model reads for the
  next step, whole or its last element (greedy decoding);
* a helper that only **encodes those inputs** (``to_onehot(X, vocab_size)``) is called only
  from such functions, from a model's ``forward``, or from other such helpers.

Nothing in these functions is reported or rewritten.

A whole file is a **token model** (:func:`is_token_model`) when its class axis is provably a
vocabulary, whatever its loops look like (a captioning decoder, a translation Transformer):

* the file builds a model or output layer sized by a vocabulary and by no class count, outside
  a class body (``DecoderWithAttention(vocab_size=len(word_map))``, ``Transformer(opt.src_vocab_size,
  opt.trg_vocab_size)``, ``nn.Linear(hidden, n_vocab)``): a class that only defines such a layer
  may sit in a helper module beside image-classification code (the functions that run it are
  found by their loops, above), and an ``nn.Embedding(vocab_size, d)`` alone is not one: a text
  classifier embeds tokens too;
* the targets of a call are packed word sequences (``targets, _ =
  pack_padded_sequence(targets, lengths)`` then ``criterion(scores, targets)``);
* a loss ignores a padding token (``ignore_index=trg_pad_idx``, ``ignore_index=word_map['<pad>']``):
  images have no padding class;
* an accuracy is taken over a padding mask: the targets compared with a padding token
  (``mask = tgt_out_ids != pad_id``, ``gold.ne(trg_pad_idx)``) are the ones a prediction is
  compared with in the same function (``((preds == tgt_out_ids) & mask).sum()``), as in a
  translation trainer whose model and loss are built in other modules. An attention mask of a
  text classifier's inputs (``input_ids != pad_token_id``) compares inputs, never a prediction.

Its cross-entropy, arg-max and token accuracy are the task itself: nothing in it is reported or
rewritten.
"""

from __future__ import annotations

import ast
import functools
import re

from migrate_ml.rules._prefilter import nodes_of, parent_links, walk
from migrate_ml.rules.semantics.single_label_values import equality_operands

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_STATE_READERS = frozenset({"isinstance", "len", "type"})
_MODULE_METHODS = frozenset({"parameters", "named_parameters", "state_dict", "load_state_dict", "train", "eval", "modules"})
"""Methods of an ``nn.Module`` that no tensor or tuple has: a name threaded through a call
(``model, loss = train_model(model, criterion)``) whose weights are read is a model, not a state."""
_REDUCTIONS = frozenset({"max", "min", "topk", "sort", "kthvalue", "mode", "median"})
"""Calls whose tuple result holds values and indices of their input: ``_, predictions =
torch.max(predictions, dim=1)`` rebinds its argument beside a new output, like a recurrent step,
but it is an arg-max, not a model threading its state."""
_SPLITS = frozenset({"train_test_split", "random_split"})
"""Calls that split a data set: ``_, train = train_test_split(train, stratify=train["label"])``
keeps one part under the name it split, which is data, not a state."""


def sequence_spans(tree: ast.Module) -> tuple[tuple[int, int], ...]:
    """The line spans of the functions that run a sequence model, and of the helpers that only
    encode such a model's inputs."""
    functions = [node for node in walk(tree) if isinstance(node, _FUNCTIONS)]
    sequence = [function for function in functions if is_sequence_function(function)]
    if not sequence:
        return ()
    module_level = {node.name: node for node in tree.body if isinstance(node, _FUNCTIONS)}
    allowed = {id(function) for function in sequence}
    allowed.update(id(function) for function in functions if function.name.startswith("forward"))
    callers: dict[str, list[int]] = {name: [] for name in module_level}
    for function in functions:
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in callers:
                callers[node.func.id].append(id(function))
    encoders = {name for name, sites in callers.items() if sites}
    changed = True
    while changed:  # the helpers whose every call site is a sequence function or another such helper
        changed = False
        inside = allowed | {id(module_level[name]) for name in encoders}
        for name in list(encoders):
            if any(site not in inside for site in callers[name]) or _called_at_module_level(tree, name):
                encoders.discard(name)
                changed = True
    spans = [*sequence, *(module_level[name] for name in encoders)]
    return tuple(sorted({(function.lineno, function.end_lineno or function.lineno) for function in spans}))


def in_spans(line: int, spans: tuple[tuple[int, int], ...]) -> bool:
    return any(first <= line <= last for first, last in spans)


def is_sequence_function(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return _threads_state(function) or _feeds_back_argmax(function)


def _threads_state(function: ast.AST) -> bool:
    recurrent: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _callee(node.value) not in _REDUCTIONS and _callee(node.value) not in _SPLITS:
            passed = {a.id for a in node.value.args if isinstance(a, ast.Name)}
            for target in node.targets:
                elements = target.elts if isinstance(target, (ast.Tuple, ast.List)) else []
                threaded = {e.id for e in elements if isinstance(e, ast.Name) and e.id in passed}
                # a step gives a new output beside the state; `model, opt = setup(model, opt)` only passes through
                if threaded and len(threaded) < len(elements):
                    recurrent.update(threaded)
    return any(_only_a_state(function, name) for name in recurrent)


def _only_a_state(function: ast.AST, name: str) -> bool:
    """Every read of ``name`` is an argument of a call that rebinds it (the model's step,
    ``hidden = repackage_hidden(hidden)``), or the state's own method, item, or an
    ``isinstance``/``len`` check."""
    rebinding = [
        node.value for node in ast.walk(function)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and any(
            isinstance(bound, ast.Name) and bound.id == name for target in node.targets for bound in ast.walk(target)
        )
    ]
    allowed = {id(argument) for call in rebinding for argument in call.args}
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == name:
                return False  # called: a model, not a state
            is_reader = isinstance(func, ast.Name) and func.id in _STATE_READERS
            for argument in node.args:
                if isinstance(argument, ast.Name) and argument.id == name and id(argument) not in allowed and not is_reader:
                    return False
        elif isinstance(node, ast.keyword) and isinstance(node.value, ast.Name) and node.value.id == name:
            return False
        elif isinstance(node, (ast.Return, ast.Yield)) and isinstance(node.value, ast.Name) and node.value.id == name:
            return False
        elif isinstance(node, ast.Compare) and _compared_with_a_value(node, name):
            return False  # `predictions == targets`: a result, not a state
        elif (
            isinstance(node, ast.Attribute) and node.attr in _MODULE_METHODS
            and isinstance(node.value, ast.Name) and node.value.id == name
        ):
            return False
    return True


def _compared_with_a_value(node: ast.Compare, name: str) -> bool:
    """``name == targets``; not ``state is None`` nor ``hidden == None`` (a state not yet made)."""
    operands = (node.left, *node.comparators)
    return any(isinstance(operand, ast.Name) and operand.id == name for operand in operands) and not any(
        isinstance(operand, ast.Constant) and operand.value is None for operand in operands
    ) and not all(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops)


def _feeds_back_argmax(function: ast.AST) -> bool:
    """A loop appends an arg-max to a list and reads that list again, other than to print it:
    ``output.append(int(Y.argmax(dim=1).item()))`` with ``rnn(torch.tensor([[output[-1]]]))``,
    the next step's input (greedy decoding)."""
    for loop in ast.walk(function):
        if not isinstance(loop, (ast.For, ast.While)):
            continue
        appends = [
            node for node in ast.walk(loop)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append"
            and isinstance(node.func.value, ast.Name) and node.args and _has_argmax(node.args[0])
        ]
        if not appends:
            continue
        appended = {node.func.value.id for node in appends}
        skipped = {id(node.func.value) for node in appends}
        skipped.update(
            id(inner) for node in ast.walk(loop)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
            for inner in ast.walk(node)
        )
        if any(
            isinstance(node, ast.Name) and node.id in appended and isinstance(node.ctx, ast.Load) and id(node) not in skipped
            for node in ast.walk(loop)
        ):
            return True
    return False


def _has_argmax(expression: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "argmax"
        for node in ast.walk(expression)
    )


def _called_at_module_level(tree: ast.Module, name: str) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
        for statement in tree.body if not isinstance(statement, (*_FUNCTIONS, ast.ClassDef))
        for node in ast.walk(statement)
    )


_VOCABULARY = re.compile(r"(?:^|_)(?:n_?)?(?:vocab|vocabulary|ntokens?|word_?map|word2idx)(?:_?size|_?len)?(?:$|_)", re.I)
"""A name that holds a vocabulary or its size: ``vocab_size``, ``n_vocab``, ``trg_vocab_size``,
``ntoken``, ``word_map`` (whose ``len`` is the vocabulary size)."""
_CLASS_COUNT = re.compile(r"(?:^|_)(?:n_?|num_?|nb_?)?(?:class(?:es)?|labels?|categories)(?:$|_)", re.I)
_PACKERS = frozenset({"pack_padded_sequence", "pack_sequence"})
_PAD = re.compile(r"pad", re.I)


@functools.lru_cache(maxsize=8)
def is_token_model(tree: ast.Module) -> bool:
    """Whether the file's class axis is a vocabulary (see the module docstring)."""
    packed: set[str] = set()
    calls = nodes_of(tree, ast.Call)
    parents = parent_links(tree)
    for node in calls:
        name = _callee(node)
        if _sized_by_vocabulary(node, name) and not _inside_class(node, parents):
            return True  # built to be trained here; a class that only defines a layer may sit beside image code
        if any(keyword.arg == "ignore_index" and _names_padding(keyword.value) for keyword in node.keywords):
            return True
        if name in _PACKERS:
            packed.update(_bound_names(tree, node))
    if _masks_padded_accuracy(tree):
        return True
    return bool(packed) and any(
        len(node.args) >= 2 and isinstance(node.args[1], ast.Name) and node.args[1].id in packed
        and _callee(node) not in _PACKERS
        for node in calls
    )


def _masks_padded_accuracy(tree: ast.Module) -> bool:
    """Whether a function compares some targets with a padding token and compares the same
    targets for equality (token accuracy over the non-padding positions)."""
    parents = parent_links(tree)
    padded: dict[ast.AST, set[str]] = {}
    for node in nodes_of(tree, ast.Compare, ast.Call):
        target = _padding_compared(node)
        if target is not None:
            padded.setdefault(_enclosing_function(node, parents), set()).add(ast.dump(target))
    for function, targets in padded.items():
        if function is None:
            continue
        for node in ast.walk(function):
            operands = equality_operands(node)
            if operands is not None and any(ast.dump(operand) in targets for operand in operands):
                return True
    return False


def _padding_compared(node: ast.AST) -> ast.expr | None:
    """``gold`` in ``gold != pad_id`` or ``gold.ne(trg_pad_idx)``."""
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.NotEq):
        pairs = ((node.left, node.comparators[0]), (node.comparators[0], node.left))
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "ne" and len(node.args) == 1:
        pairs = ((node.func.value, node.args[0]),)
    else:
        return None
    return next(
        (target for target, pad in pairs if _is_padding_token(pad) and isinstance(target, (ast.Name, ast.Attribute, ast.Subscript))),
        None,
    )


_PAD_TOKEN = re.compile(r"^(?:[a-z]+_)*pad(?:ding)?(?:_?(?:id|idx|index|token(?:_id|_idx)?|value|symbol))?$", re.I)
"""``pad_id``, ``trg_pad_idx``, ``pad_token_id``, ``PAD``, ``padding_idx``; not ``padded_len``."""


def _is_padding_token(value: ast.expr) -> bool:
    """``pad_id``, ``self.pad_idx``, ``tokenizer.pad_token_id``, ``word_map['<pad>']``."""
    if isinstance(value, ast.Name):
        return bool(_PAD_TOKEN.match(value.id))
    if isinstance(value, ast.Attribute):
        return bool(_PAD_TOKEN.match(value.attr))
    return isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant) and isinstance(value.slice.value, str) and bool(
        _PAD.search(value.slice.value)
    )


def _enclosing_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> ast.AST | None:
    parent = parents.get(node)
    while parent is not None and not isinstance(parent, _FUNCTIONS):
        parent = parents.get(parent)
    return parent


def _inside_class(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Whether a ``class`` statement holds ``node`` (its body, bases or decorators)."""
    parent = parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.ClassDef):
            return True
        parent = parents.get(parent)
    return False


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _words(expression: ast.AST) -> list[str]:
    """The names an argument is spelled with: ``opt.trg_vocab_size`` gives ``opt`` and
    ``trg_vocab_size``, ``len(word_map)`` gives ``len`` and ``word_map``."""
    return [
        node.id if isinstance(node, ast.Name) else node.attr
        for node in ast.walk(expression) if isinstance(node, (ast.Name, ast.Attribute))
    ]


def _sized_by_vocabulary(call: ast.Call, name: str) -> bool:
    """A model class or an output ``Linear`` given a vocabulary size and no class count."""
    if name == "Embedding" or not name[:1].isupper():
        return False
    arguments = [*((None, a) for a in call.args), *((k.arg, k.value) for k in call.keywords)]
    if name in ("Linear", "LazyLinear"):
        out = next((value for key, value in arguments if key == "out_features"), None)
        if out is None:
            positional = [value for key, value in arguments if key is None]
            out = positional[1 if name == "Linear" else 0] if len(positional) > (1 if name == "Linear" else 0) else None
        return out is not None and any(_VOCABULARY.search(word) for word in _words(out))
    vocabulary = any(
        (key is not None and _VOCABULARY.search(key)) or any(_VOCABULARY.search(word) for word in _words(value))
        for key, value in arguments
    )
    counted = any(
        (key is not None and _CLASS_COUNT.search(key)) or any(_CLASS_COUNT.search(word) for word in _words(value))
        for key, value in arguments
    )
    return vocabulary and not counted


def _names_padding(value: ast.expr) -> bool:
    """``trg_pad_idx``, ``opt.pad_token_id``, ``word_map['<pad>']``, ``PAD``."""
    if any(_PAD.search(word) for word in _words(value)):
        return True
    return any(isinstance(node, ast.Constant) and isinstance(node.value, str) and _PAD.search(node.value) for node in ast.walk(value))


def _bound_names(tree: ast.Module, packer: ast.Call) -> set[str]:
    """The names a packing call's result is bound to: ``targets`` in ``targets, _ = pack(...)``,
    ``packed = pack(...)`` and ``packed = pack(...).data``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        value = node.value.value if isinstance(node.value, ast.Attribute) and node.value.attr == "data" else node.value
        if value is not packer:
            continue
        for target in node.targets:
            if isinstance(target, ast.Name):
                names.add(target.id)
            elif isinstance(target, (ast.Tuple, ast.List)) and target.elts and isinstance(target.elts[0], ast.Name):
                names.add(target.elts[0].id)
    return names
