"""The settings of a file's Lightning ``Trainer(...)`` call, read statically, for verify's real ``Trainer``.

Only what can be applied on one CPU process to the sample data is passed on, each value a literal (or a module-level
constant holding one); every other keyword is named with the reason it is not applied. The harness decides the rest
(which callback classes resolve, precision on the CPU) and reports what it applied.
"""

from __future__ import annotations

import ast

from migrate_ml.rules._prefilter import nodes_of
from migrate_ml.rules.semantics.names import imported_names, qualified_name

LIGHTNING_ROOTS = ("lightning", "pytorch_lightning")
APPLIED = frozenset({"accumulate_grad_batches", "gradient_clip_val", "gradient_clip_algorithm", "precision",
                     "max_epochs", "callbacks"})
OUT_OF_SCOPE = frozenset({"devices", "strategy", "accelerator", "num_nodes", "gpus", "tpu_cores", "ipus",
                          "auto_select_gpus", "sync_batchnorm", "plugins"})
"""Settings that would leave one CPU process: ignored."""
FILES = frozenset({"logger", "default_root_dir", "enable_checkpointing", "profiler"})
"""Settings that write files: verify keeps its own (a logger that keeps nothing, the scratch folder)."""
_MISSING = object()


def trainer_settings(text: str) -> dict | None:
    """``{"line", "settings": {name: value}, "callbacks": [...], "skipped": [[name, why]]}`` of the file's first
    Lightning ``Trainer(...)`` call, or None when it has none (or does not parse)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    aliases = imported_names(nodes_of(tree, ast.Import, ast.ImportFrom))
    constants = _constants(tree)
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    calls = [node for node in nodes_of(tree, ast.Call)
             if qualified_name(node.func, aliases).split(".")[0] in LIGHTNING_ROOTS
             and qualified_name(node.func, aliases).rsplit(".", 1)[-1] == "Trainer"]
    if not calls:
        return None
    call = min(calls, key=lambda node: (node.lineno, node.col_offset))
    settings: dict = {}
    callbacks: list[dict] = []
    skipped: list[list[str]] = []
    if call.args:
        skipped.append(["positional arguments", "not applied by verify"])
    for keyword in call.keywords:
        name = keyword.arg
        if name is None:
            skipped.append([f"**{ast.unparse(keyword.value)}", "not read: its keys are not known statically"])
        elif name in OUT_OF_SCOPE:
            skipped.append([f"{name}={ast.unparse(keyword.value)}", "ignored: verify runs one CPU process"])
        elif name in FILES:
            skipped.append([f"{name}={ast.unparse(keyword.value)}",
                            "ignored: verify logs nowhere and writes only in its scratch folder"])
        elif name not in APPLIED:
            skipped.append([f"{name}={ast.unparse(keyword.value)}", "not applied by verify"])
        elif name == "callbacks":
            callbacks, dropped = _callbacks(keyword.value, aliases, constants, classes)
            skipped.extend(dropped)
        else:
            value = _literal(keyword.value, constants)
            if value is _MISSING:
                skipped.append([f"{name}={ast.unparse(keyword.value)}", "not applied: not a literal value"])
            else:
                settings[name] = value
    return {"line": call.lineno, "settings": settings, "callbacks": callbacks, "skipped": skipped}


def _callbacks(value: ast.expr, aliases: dict, constants: dict, classes: set) -> tuple[list[dict], list[list[str]]]:
    """Each element that constructs a Lightning callback class (or a class of the file) from literal arguments."""
    if not isinstance(value, (ast.List, ast.Tuple)):
        return [], [[f"callbacks={ast.unparse(value)}", "not applied: not a list of constructor calls"]]
    found, dropped = [], []
    for element in value.elts:
        text = ast.unparse(element)
        qualified = qualified_name(element.func, aliases) if isinstance(element, ast.Call) else ""
        if not qualified:
            dropped.append([f"callback {text}", "not applied: not a constructor call"])
            continue
        if qualified.split(".")[0] in LIGHTNING_ROOTS:
            where = {"qualified_name": qualified}
        elif isinstance(element.func, ast.Name) and element.func.id in classes:
            where = {"file_class": element.func.id}
        else:
            dropped.append([f"callback {text}", "not applied: neither a Lightning callback nor a class of the file"])
            continue
        args = [_literal(arg, constants) for arg in element.args]
        kwargs = {k.arg: _literal(k.value, constants) for k in element.keywords}
        if _MISSING in args or _MISSING in kwargs.values() or None in kwargs:
            dropped.append([f"callback {text}", "not applied: its arguments are not literal values"])
            continue
        found.append({**where, "name": qualified.rsplit(".", 1)[-1], "args": args, "kwargs": kwargs,
                      "line": element.lineno})
    return found, dropped


def _constants(tree: ast.Module) -> dict[str, object]:
    """Module-level ``NAME = literal`` assignments (``EPOCHS = 10``)."""
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            value = _literal(node.value, {})
            if value is not _MISSING:
                constants[node.targets[0].id] = value
    return constants


def _literal(node: ast.expr, constants: dict[str, object]):
    """The value of a literal (or of a module-level constant), when the spec's JSON can carry it."""
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _MISSING
    return value if _plain(value) else _MISSING


def _plain(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return value is None or isinstance(value, (bool, int, float, str))
