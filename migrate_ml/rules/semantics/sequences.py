"""Sequence models are not image classification, by what their values do.

A character or word language model trains with cross-entropy over a vocabulary and predicts
the next token with an arg-max, which reads like single-label classification, but the choice
of one token per step is the task itself. Such code is known by its data flow, not its names:

* a **recurrent state** is threaded through the model: ``(Y, state) = rnn(X, state, params)``
  rebinds a name it passes in beside a new output (``model, opt = fabric.setup(model, opt)``
  only passes them through), and that name is never called and is read nowhere else but in
  such calls, its own methods (``state.detach()``), its items (``state[0]``) and
  ``isinstance``/``len`` (a mixup's ``inputs, targets = mix(inputs, targets)`` passes
  ``inputs`` on to the model: not a state);
* or **the arg-max is fed back**: it is appended to a list that the model reads for the
  next step, whole or its last element (greedy decoding);
* a helper that only **encodes those inputs** (``to_onehot(X, vocab_size)``) is called only
  from such functions, from a model's ``forward``, or from other such helpers.

Nothing in these functions is reported or rewritten.
"""

from __future__ import annotations

import ast

from migrate_ml.rules._prefilter import walk

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_STATE_READERS = frozenset({"isinstance", "len", "type"})


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
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
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
    return True


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
