"""ML107: model selection on accuracy: best checkpoints, monitors, early stopping (REVIEW)."""

from __future__ import annotations

import ast
import re

import libcst as cst

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._prefilter import text_facts
from migrate_ml.rules._project import current_facts

# A best-accuracy name, split into lower-case words (snake_case and camelCase): a "best" word
# first, then at least one accuracy word, and otherwise only words that say which model or split it
# was measured on. ``best_acc_epoch`` (an epoch number) or ``best_f1`` are other things.
_BEST_WORDS = frozenset({"best", "max", "highest"})
_ACCURACY_WORDS = frozenset({"acc", "accuracy", "acc1", "top1", "prec1"})
_QUALIFIER_WORDS = frozenset(
    {"val", "valid", "validation", "test", "eval", "ema", "1", "model", "so", "far", "global"}
)
_ERROR_WORDS = frozenset({"error", "err", "err1", "top1err"})
"""Top-1 error, ``1 - accuracy``: selected by its minimum."""
_LOWEST_WORDS = frozenset({"min", "best", "lowest"})
"""The first word of a name that keeps the lowest top-1 error so far (``min_top1_err``, ``best_err``)."""
_RANKING_WORDS = frozenset({"map", "ap", "f1", "auroc", "auc", "average", "precision"})
_TOP_K = re.compile(r"(?:top|acc|prec)_?([1-9]\d*)", re.IGNORECASE)
"""Words of a multi-label ranking or F1 score (``val_map``, ``val_f1``: already the advice), and of
a top-5 score: SimCLR's ``val_acc_top5`` ranks the positive pair among the batch, no labels, and a
classifier's top-5 is ML102's where it is computed."""
_WORD = re.compile(r"[A-Z]?[a-z]+\d*|[A-Z]+(?![a-z])\d*|\d+")
_CANDIDATE_NAME = re.compile(r"\b\w*(?:best|max|highest)\w*", re.IGNORECASE)
"""Identifiers with a "best" word somewhere: the only names ``_is_best_accuracy`` can accept."""
_LOWEST_ERROR_CANDIDATE = re.compile(r"\b(?:min|best|lowest)_?\w*err\w*", re.IGNORECASE)
"""Identifiers ``_is_lowest_error`` may accept (``min_top1_err``, ``best_error``)."""
_ACCURACY_CANDIDATE = re.compile(r"\b\w*(?:acc|top1|prec1|err)\w*", re.IGNORECASE)
"""Identifiers and keys ``_is_accuracy_variable`` may accept (``val_acc``, ``valid_error``, ``"acc1"``)."""

_SELECTORS = {
    "ModelCheckpoint": ("monitor", "score_name"),
    "EarlyStopping": ("monitor",),
    "Checkpoint": ("score_name",),
    "TrainingArguments": ("metric_for_best_model",),
    "Seq2SeqTrainingArguments": ("metric_for_best_model",),
    "SaveBestModelCallback": ("watch_metric",),
    "EarlyStoppingCallback": ("watch_metric",),
}
"""Callbacks and settings that keep the best model or stop training by a metric's name
(Lightning, Keras-style, ignite, Hugging Face, pytorch-accelerated): the keywords naming it."""
_SCORE_FUNCTION = "score_function"
"""ignite's ``Checkpoint``/``EarlyStopping`` rank by what this function returns."""
_SELECTION_WORDS = ("onitor", "metric_for_best_model", "score_function", "score_name", "watch_metric",
                    "save_checkpoint", "ReduceLROnPlateau")
_ACCURACY_FUNCTIONS = frozenset({"accuracy_score", "balanced_accuracy_score", "top_k_accuracy_score"})
"""scikit-learn's accuracies: a helper returning one (``get_score``) computes an accuracy."""
_RANKING_METRICS = re.compile(r"AveragePrecision|average_precision|F1|f1_score|AUROC|roc_auc|mAP|[Mm]ean_?[Aa][Pp]")
_LOG_METHODS = frozenset({"log", "log_metric", "add_scalar"})


def _words(name: str) -> list[str]:
    """``max_accuracy_ema`` -> [max, accuracy, ema]; ``bestValAcc1`` -> [best, val, acc1]."""
    return [word.lower() for word in _WORD.findall(name)]


def _is_best_accuracy(name: str) -> bool:
    words = _words(name)
    if len(words) < 2 or words[0] not in _BEST_WORDS:
        return False
    rest = words[1:]
    return any(word in _ACCURACY_WORDS for word in rest) and all(
        word in _ACCURACY_WORDS or word in _QUALIFIER_WORDS for word in rest
    )


def _is_lowest_error(name: str, errors: bool) -> bool:
    """``min_top1_err``, ``best_error``: the lowest top-1 error so far. A bare error counts only where
    the file's errors are top-1 errors (``errors``); ``min_top5_err`` is a top-5 score."""
    words = _words(name)
    if len(words) < 2 or words[0] not in _LOWEST_WORDS:
        return False
    rest = words[1:]
    return any(word in _ERROR_WORDS for word in rest) and ("top1" in rest or errors) and all(
        word in _ERROR_WORDS or word in _QUALIFIER_WORDS or word == "top1" for word in rest
    )


def _names_accuracy(metric: str) -> bool:
    """A metric's name (``val_acc``, ``valid_accuracy``, ``acc1``, ``Accuracy``)."""
    words = _words(metric)
    if any(word in _RANKING_WORDS for word in words):
        return False
    top_k = _TOP_K.search(metric)
    if top_k is not None:
        return top_k.group(1) == "1"
    return any(word in _ACCURACY_WORDS for word in words)


def _is_accuracy_variable(name: str, errors: bool) -> bool:
    """A variable holding one epoch's accuracy (``val_acc``, ``acc1``) or, where the file's error
    is a classification error, its top-1 error (``valid_error``)."""
    words = _words(name)
    measures = _ACCURACY_WORDS | (_ERROR_WORDS if errors else frozenset())
    return any(word in measures for word in words) and all(
        word in measures or word in _QUALIFIER_WORDS or word in ("train", "top", "avg", "mean", "epoch") for word in words
    )


def _may_name_accuracy(name: str) -> bool:
    """The pre-filter's reading of ``_is_accuracy_variable``: an error counts only qualified
    (``valid_error``), since a bare ``error`` is in most files (``logger.error``)."""
    return _is_accuracy_variable(name, False) or (len(_words(name)) > 1 and _is_accuracy_variable(name, True))


def _accuracy_name(expression: cst.BaseExpression) -> str | None:
    if isinstance(expression, cst.Attribute):
        expression = expression.attr
    if isinstance(expression, cst.Name) and _is_best_accuracy(expression.value):
        return expression.value
    return None


def _leaf(expression: cst.BaseExpression) -> str:
    """``self.val_acc`` -> ``val_acc``; ``nn.ReduceLROnPlateau`` -> ``ReduceLROnPlateau``."""
    if isinstance(expression, cst.Attribute):
        return expression.attr.value
    return expression.value if isinstance(expression, cst.Name) else ""


def _integer_index(expression: cst.Subscript) -> bool:
    """``x[0]``: one position of a sequence, not a key."""
    return len(expression.slice) == 1 and isinstance(expression.slice[0].slice, cst.Index) and isinstance(
        expression.slice[0].slice.value, cst.Integer
    )


def _string(expression: cst.BaseExpression) -> str | None:
    if isinstance(expression, cst.SimpleString):
        value = expression.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    return next((arg.value for arg in call.args if arg.keyword and arg.keyword.value == name), None)


def _subscripted_strings(node: cst.CSTNode) -> list[str]:
    """The string keys ``node`` reads: ``engine.state.metrics["accuracy"]`` -> [accuracy]."""
    found: list[str] = []

    class _Keys(cst.CSTVisitor):
        def visit_SubscriptElement(self, element: cst.SubscriptElement) -> None:
            if isinstance(element.slice, cst.Index):
                key = _string(element.slice.value)
                if key is not None:
                    found.append(key)

    node.visit(_Keys())
    return found


SELECTOR_KEYWORDS = frozenset(keyword for keywords in _SELECTORS.values() for keyword in keywords)


def selection_parameters(tree: ast.Module) -> list[tuple[str, str]]:
    """(callable, parameter) of the module's classes and functions that hand a parameter to a selector
    as the monitored metric's name: ``def __init__(self, eval_metric=...)`` stored on ``self`` and given
    to ``TrainingArguments(metric_for_best_model=self.eval_metric)``. A call in another module of the run
    that passes an accuracy's name there selects on accuracy (``FileFacts.selection_parameters``)."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            if init is None:
                continue
            parameters = {arg.arg for arg in (*init.args.args[1:], *init.args.kwonlyargs)}
            stored = {
                target.attr: statement.value.id
                for statement in ast.walk(node) if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Name)
                and statement.value.id in parameters
                for target in statement.targets
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
            }
            found.extend((node.name, parameter) for parameter in _monitored(node, parameters, stored))
        elif isinstance(node, ast.FunctionDef):
            parameters = {arg.arg for arg in (*node.args.args, *node.args.kwonlyargs)}
            found.extend((node.name, parameter) for parameter in _monitored(node, parameters, {}))
    return sorted(set(found))


def _monitored(scope: ast.AST, parameters: set[str], stored: dict[str, str]) -> set[str]:
    """The parameters (or the ``self`` attributes they are stored in) given to a selector keyword in ``scope``."""
    monitored = set()
    for call in ast.walk(scope):
        if not isinstance(call, ast.Call):
            continue
        for keyword in call.keywords:
            value = keyword.value
            if keyword.arg not in SELECTOR_KEYWORDS:
                continue
            if isinstance(value, ast.Name) and value.id in parameters:
                monitored.add(value.id)
            elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "self" and value.attr in stored:
                monitored.add(stored[value.attr])
    return monitored


def accuracy_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level string constants (``VALIDATION_METRIC_NAME = "val_af"``) naming a metric the module
    measures as an accuracy: an accuracy's name, or a name it logs an accuracy under
    (``self.log(VALIDATION_METRIC_NAME, acc_fine)``) and no ranking or F1 score. Another module of the
    run that imports one and monitors it selects on accuracy too (``FileFacts.accuracy_constants``)."""
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    }
    if not constants:
        return {}
    logged: dict[str, list[str]] = {}
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and len(call.args) >= 2):
            continue
        method = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        key = call.args[0]
        keys = [key.body, key.orelse] if isinstance(key, ast.IfExp) else [key]
        value = call.args[1]
        leaf = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", "")
        for name in (k.id for k in keys if isinstance(k, ast.Name) and k.id in constants):
            if method in _LOG_METHODS:
                logged.setdefault(name, []).append(leaf)
    return {
        name: value for name, value in constants.items()
        if (name in logged or _names_accuracy(value))
        and not any(_RANKING_METRICS.search(leaf) or not _names_accuracy(leaf) for leaf in logged.get(name, ()))
    }


class _Facts(cst.CSTVisitor):
    """What the file says about its metrics before the rule looks at a selection: the options
    with accuracy defaults (``--eval-metric`` default ``top1``), the functions that return an
    accuracy, and the names bound to a plateau scheduler, a checkpoint saver or an accuracy."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.option_defaults: dict[str, str] = {}
        self.accuracy_functions: set[str] = set()
        self.plateau_schedulers: set[str] = set()
        self.savers: set[str] = set()
        self.assignments: list[tuple[str, cst.BaseExpression]] = []
        self.logged: dict[str, list[cst.BaseExpression]] = {}
        self.logged_under: list[tuple[cst.BaseExpression, cst.BaseExpression]] = []
        """``self.log(NAME if stage == "val" else ..., acc)``: a key not written as a string, resolved
        once every constant is known."""
        self.parameter_defaults: dict[str, str] = {}
        """``def __init__(self, eval_metric="accuracy")``: string defaults of the file's parameters."""

    def visit_Call(self, node: cst.Call) -> None:
        method = _leaf(node.func)
        if method == "add_argument":
            default = _keyword(node, "default")
            flags = [_string(arg.value) for arg in node.args if not arg.keyword]
            if default is not None and _string(default) is not None and flags and flags[-1]:
                self.option_defaults[flags[-1].lstrip("-").replace("-", "_")] = _string(default)
        elif method in _LOG_METHODS and len(node.args) >= 2 and _string(node.args[0].value):
            self.logged.setdefault(_string(node.args[0].value), []).append(node.args[1].value)
        elif method in _LOG_METHODS and len(node.args) >= 2:
            self.logged_under.append((node.args[0].value, node.args[1].value))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        for param in (*node.params.params, *node.params.kwonly_params):
            default = _string(param.default) if param.default is not None else None
            if default is not None:
                self.parameter_defaults[param.name.value] = default
        returns_accuracy = False

        class _Returns(cst.CSTVisitor):
            def visit_Return(self, statement: cst.Return) -> None:
                nonlocal returns_accuracy
                value = statement.value
                if isinstance(value, cst.Call) and _leaf(value.func) in _ACCURACY_FUNCTIONS:
                    returns_accuracy = True
                elif value is not None and any(_names_accuracy(key) for key in _subscripted_strings(value)):
                    returns_accuracy = True

            def visit_FunctionDef(self, inner: cst.FunctionDef) -> bool:
                return False

        node.body.visit(_Returns())
        if returns_accuracy:
            self.accuracy_functions.add(node.name.value)

    def visit_If(self, node: cst.If) -> None:
        """``if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):`` a scheduler built from
        a config (``getattr(lr_scheduler, name)(...)``) that the branch steps as a plateau one."""
        test = node.test
        if (
            isinstance(test, cst.Call) and _leaf(test.func) == "isinstance" and len(test.args) == 2
            and _leaf(test.args[1].value) == "ReduceLROnPlateau"
        ):
            self.plateau_schedulers.add(self.module.code_for_node(test.args[0].value))

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            key = self.module.code_for_node(target.target)
            if isinstance(node.value, cst.Call):
                callee = _leaf(node.value.func)
                if callee == "ReduceLROnPlateau":
                    self.plateau_schedulers.add(key)
                elif callee == "CheckpointSaver":
                    self.savers.add(key)
            self.assignments.append((key, node.value))


def _run_imports(module: cst.Module, keys: set[str]) -> dict[str, str]:
    """The names this file writes for ``keys`` (``stem.name`` of another module of the run):
    ``VALIDATION_METRIC_NAME`` after ``from pkg.modulev2 import VALIDATION_METRIC_NAME``,
    ``modulev2.VALIDATION_METRIC_NAME`` after ``import pkg.modulev2 as modulev2``."""
    code = cst.Module([]).code_for_node
    found: dict[str, str] = {}
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.ImportFrom) and small.module is not None and not isinstance(small.names, cst.ImportStar):
                stem = code(small.module).rsplit(".", 1)[-1]
                for alias in small.names:
                    if f"{stem}.{code(alias.name)}" in keys:
                        found[alias.evaluated_alias or code(alias.name)] = f"{stem}.{code(alias.name)}"
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    stem = code(alias.name).rsplit(".", 1)[-1]
                    local = alias.evaluated_alias or code(alias.name)
                    found.update({f"{local}.{key.split('.', 1)[1]}": key for key in keys if key.split(".", 1)[0] == stem})
    return found


class BestAccuracyCheckpointRule(Rule):
    code = "ML107"
    name = "best-accuracy-checkpoint"
    summary = (
        "Reports model selection on accuracy: best checkpoints (best_acc, max_accuracy_ema), monitors "
        "(monitor=\"val_acc\", metric_for_best_model, ignite score functions, timm's eval metric) and plateaus."
    )
    rationale = (
        "Training scripts keep the checkpoint with the best validation accuracy "
        "(`if acc > best_acc: torch.save(...)`, `max_accuracy = max(max_accuracy, acc1)`, "
        "`is_best = acc1 > best_acc1`). After the migration that accuracy is exact match, which "
        "is strict, noisy on rare label combinations and often flat for many epochs, so it picks "
        "checkpoints poorly; a threshold-free ranking metric (mAP, macro average precision) or "
        "sample-F1 is the usual choice for multi-label model selection. Which metric matters is "
        "a project decision, so migrate-ml reports each comparison or update of the best-accuracy "
        "variable and leaves it alone. The same holds wherever a library selects by the metric's "
        "name or value: Lightning's `ModelCheckpoint`/`EarlyStopping(monitor=\"val_acc\")` (also in "
        "a scheduler dict's `\"monitor\"`), Hugging Face `metric_for_best_model=\"accuracy\"`, "
        "pytorch-accelerated's `SaveBestModelCallback(watch_metric=\"accuracy\")`, ignite's "
        "`Checkpoint`/`EarlyStopping` whose `score_function` returns `metrics[\"accuracy\"]` "
        "(`Checkpoint.get_default_score_fn(\"Accuracy\")`), timm's `CheckpointSaver` given the "
        "`--eval-metric` value (default `top1`), `ReduceLROnPlateau` stepped on an accuracy (also a scheduler built from a config and stepped under `isinstance(sched, ReduceLROnPlateau)`, on a name that only ever copies an accuracy), and a "
        "comparison of this epoch's accuracy with the best one however the best is kept "
        "(`val_acc > val_scores[best_epoch]`, `val_acc > state[\"best_val_acc\"]`, `score > best_score` where the score is "
        "`accuracy_score`, `valid_error < best_error` for the top-1 error of a file that predicts "
        "by arg-max), the lowest top-1 error kept by `min` (pycls's `min_top1_err = min(min_top1_err, "
        "top1_err)`), and a `save_checkpoint(...)` given this epoch's accuracy or top-1 error "
        "(`test_err = stats[\"top1_err\"]`). The monitored name may be reached through a constant of the file "
        "(`\"monitor\": VALIDATION_METRIC_NAME`), a parameter's string default stored on `self` "
        "(`metric_for_best_model=self.eval_metric` with `eval_metric=\"accuracy\"`) or either branch of an "
        "`if`; across the files of a run, through a constant another module logs an accuracy under "
        "(`ModelCheckpoint(monitor=VALIDATION_METRIC_NAME)` importing it) or a keyword given to a class or function of "
        "another module that hands it to a selector (`Training(eval_metric=\"accuracy\")`, reported at that call); "
        "and a name the file logs an accuracy under (`self.log(VALIDATION_METRIC_NAME, acc_fine)`) is an "
        "accuracy whatever it is called. A monitored name that is already a ranking or F1 score (`val_map`, "
        "`val_f1`), or under which the file logs one, is left alone."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = "if acc > best_acc:\n    best_acc = acc\n    torch.save(model.state_dict(), path)\n"
    example_after = "if mAP > best_map:\n    best_map = mAP\n    torch.save(model.state_dict(), path)\n"
    triggers = ("best", "Best", "BEST", "max", "Max", "highest", *_SELECTION_WORDS)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        # "max" and "acc" each occur in most files (``accumulate``, ``max(``): only a name that
        # reads as a best accuracy (the test the rule itself applies) is worth a parse. The name
        # regexes match whole words: they run over the file's words, each once.
        facts = text_facts(source)
        lowered, words = facts.lower_word_text, facts.word_text
        run = current_facts()
        if run is not None and facts.has_any(_SELECTION_WORDS) and any(
            facts.has(key.split(".", 1)[1]) for key, _ in run.accuracy_constants
        ):
            return True  # a monitor named through an accuracy constant of another module of the run
        if run is not None and any(
            facts.has(callable_.split(".", 1)[1]) and facts.has(parameter) for callable_, parameter in run.selection_parameters
        ):
            return True  # a class or function of another module of the run told which metric to monitor
        if facts.has("min(") and "err" in lowered and any(
            _is_lowest_error(match.group(), True) for match in _LOWEST_ERROR_CANDIDATE.finditer(words)
        ):
            return True  # the lowest top-1 error kept by ``min`` (pycls's meters)
        if (facts.has_any(_SELECTION_WORDS) or "best" in lowered) and (
            facts.has("accuracy_score")
            or any(_may_name_accuracy(match.group()) for match in _ACCURACY_CANDIDATE.finditer(words))
            or (facts.has_any(_SELECTION_WORDS) and any(_names_accuracy(m.group()) for m in _ACCURACY_CANDIDATE.finditer(words)))
        ):
            return True  # a selection by name or a best value kept some other way, beside an accuracy's name
        if not (any(w in lowered for w in _BEST_WORDS) and any(w in lowered for w in ("acc", "top1", "prec1"))):
            return False  # a plain substring test first: the name scan below costs ten times more
        return any(_is_best_accuracy(match.group()) for match in _CANDIDATE_NAME.finditer(words))

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node
        self._facts = _Facts(node)
        node.visit(self._facts)
        code = node.code
        # A top-1 error is ``1 - accuracy`` only where predictions are one class per sample.
        self._errors_are_top1 = any(word in code for word in ("argmax", ".max(1)", "max(dim=1)", ".topk(", "torch.ne("))
        self._accuracy_values = {
            key: _leaf(value.func) for key, value in self._facts.assignments if self._computes_accuracy(value)
        }
        """Names bound to an accuracy computed by a call: ``score = get_score(labels, preds)``."""
        self._accuracy_reads = {
            key: self._module.code_for_node(value)
            for key, value in self._facts.assignments
            if isinstance(value, cst.Subscript) and any(map(_names_accuracy, _subscripted_strings(value)))
        }
        """Names bound to an accuracy read by its key: ``test_err = stats["top1_err"]``."""
        aliases: dict[str, set[str]] = {}
        for key, value in self._facts.assignments:
            if isinstance(value, cst.Name) and value.value == "None":
                continue  # the placeholder an ``__init__`` sets before the first epoch
            leaf = _leaf(value) if isinstance(value, (cst.Name, cst.Attribute)) else ""
            aliases.setdefault(key, set()).add(leaf if leaf and _is_accuracy_variable(leaf, self._errors_are_top1) else "")
        self._accuracy_aliases = {key: next(iter(leaves)) for key, leaves in aliases.items() if len(leaves) == 1 and "" not in leaves}
        """Names every assignment of which copies an accuracy: ``self.monitored_metrics = avg_val_acc``."""
        run = current_facts()
        constants = dict(run.accuracy_constants) if run is not None else {}
        self._imported_accuracy = {local: constants[key] for local, key in _run_imports(node, set(constants)).items()}
        """Names this file imports from another module of the run that measures them as an accuracy."""
        monitoring: dict[str, list[str]] = {}
        for callable_, parameter in run.selection_parameters if run is not None else ():
            monitoring.setdefault(callable_, []).append(parameter)
        self._monitoring = {local: monitoring[key] for local, key in _run_imports(node, set(monitoring)).items()}
        """Classes and functions of another module of the run that monitor the metric one parameter names."""
        for key, value in self._facts.logged_under:
            for name in self._metric_names(key):
                self._facts.logged.setdefault(name, []).append(value)

    def _metric_names(self, expression: cst.BaseExpression) -> list[str]:
        """The metric names ``expression`` can hold: a string, a constant of the file bound to one
        (``monitor=VALIDATION_METRIC_NAME``), a parameter or the attribute it is stored in with a string
        default (``self.eval_metric`` from ``eval_metric="accuracy"``), either branch of an ``if``."""
        if isinstance(expression, cst.IfExp):
            return [*self._metric_names(expression.body), *self._metric_names(expression.orelse)]
        if _string(expression) is not None:
            return [_string(expression)]  # type: ignore[list-item]
        if not isinstance(expression, (cst.Name, cst.Attribute)):
            return []
        key = self._module.code_for_node(expression)
        values = [value for bound, value in self._facts.assignments if bound == key]
        names = [name for value in values if isinstance(value, (cst.SimpleString, cst.Name)) for name in self._metric_names(value) if value is not expression]
        if not names and isinstance(expression, cst.Name) and expression.value in self._facts.parameter_defaults:
            names = [self._facts.parameter_defaults[expression.value]]
        if not names and key in self._imported_accuracy:
            names = [self._imported_accuracy[key]]
        return names

    def _computes_accuracy(self, value: cst.BaseExpression) -> bool:
        if isinstance(value, cst.Call):
            callee = _leaf(value.func)
            return callee in _ACCURACY_FUNCTIONS or callee in self._facts.accuracy_functions
        return False

    # -- comparisons with the best value so far

    def visit_Comparison(self, node: cst.Comparison) -> None:
        if not any(isinstance(t.operator, (cst.GreaterThan, cst.GreaterThanEqual, cst.LessThan, cst.LessThanEqual)) for t in node.comparisons):
            return
        sides = [node.left, *(t.comparator for t in node.comparisons)]
        name = next((n for n in map(_accuracy_name, sides) if n), None)
        if name:
            self._report(node, name)
            return
        if len(sides) != 2:
            return
        for current, best in (sides, sides[::-1]):
            measured = self._measured_accuracy(current)
            if measured and self._is_best_so_far(best):
                self._report(node, self._module.code_for_node(best), measured)
                return

    def _measured_accuracy(self, expression: cst.BaseExpression) -> str | None:
        """What makes ``expression`` this epoch's accuracy: its name, or the accuracy it was computed by."""
        key = self._module.code_for_node(expression)
        computed = self._accuracy_values.get(key)
        if computed:
            return f"`{key}` (from `{computed}()`)"
        read = self._accuracy_reads.get(key)
        if read:
            return f"`{key}` (`{read}`)"
        alias = self._accuracy_aliases.get(key)
        if alias:
            return f"`{key}` (`{alias}`)"
        leaf = _leaf(expression)
        if isinstance(expression, cst.Subscript) and _integer_index(expression):
            leaf = _leaf(expression.value)  # ``valid_error[0]``: the value of a meter's (value, average) pair
        if leaf and _is_accuracy_variable(leaf, self._errors_are_top1):
            return f"`{key}`"
        if isinstance(expression, cst.Subscript) and any(map(_names_accuracy, _subscripted_strings(expression))):
            return f"`{key}`"  # ``metrics["val_acc"]``, ``test_stats["acc1"]``
        return None

    def _is_best_so_far(self, expression: cst.BaseExpression) -> bool:
        """``best_score``, ``self.best_error``, ``val_scores[best_epoch]``, ``state["best_val_acc"]``."""
        if isinstance(expression, cst.Subscript):
            return any(
                isinstance(element.slice, cst.Index) and any(
                    w in _BEST_WORDS for w in _words(_string(element.slice.value) or _leaf(element.slice.value))
                )
                for element in expression.slice
            )
        return "best" in _words(_leaf(expression)) or _is_best_accuracy(_leaf(expression))

    # -- calls that select by a metric's name or value

    def visit_Call(self, node: cst.Call) -> None:
        callee = _leaf(node.func)
        if isinstance(node.func, cst.Name) and callee == "max":
            name = next((n for n in (_accuracy_name(a.value) for a in node.args) if n), None)
            if name:
                self._report(node, name)
            return
        if isinstance(node.func, cst.Name) and callee == "min":
            lowest = (_leaf(a.value) for a in node.args)
            name = next((n for n in lowest if n and _is_lowest_error(n, self._errors_are_top1)), None)
            if name:
                self.report(
                    node,
                    f"the best model is kept by its lowest top-1 error (`{name}`, 1 - accuracy); multi-label exact "
                    "match is a poor selection metric",
                    suggestion="keep the highest validation mAP (torchmetrics MultilabelAveragePrecision) or sample-F1 "
                    "instead, and rename the variable accordingly",
                )
            return
        if callee in _SELECTORS:
            self._selector(node, callee)
        elif self._module.code_for_node(node.func) in self._monitoring:
            for parameter in self._monitoring[self._module.code_for_node(node.func)]:
                value = _keyword(node, parameter)
                name = next((n for n in self._metric_names(value) if self._selects_accuracy(n)), None) if value is not None else None
                if name:
                    self._report_selection(node, f'{parameter}="{name}"` passed to `{callee}')
                    return
        elif callee == "step" and isinstance(node.func, cst.Attribute) and node.args:
            scheduler = self._module.code_for_node(node.func.value)
            measured = self._measured_accuracy(node.args[0].value)
            if scheduler in self._facts.plateau_schedulers and measured:
                self.report(
                    node,
                    f"the learning rate is lowered when accuracy ({measured}) stops improving; multi-label exact "
                    "match is a poor selection metric",
                    suggestion="step ReduceLROnPlateau on validation mAP (torchmetrics MultilabelAveragePrecision), "
                    "sample-F1 or the validation loss",
                )
        elif callee == "save_checkpoint":
            saver = isinstance(node.func, cst.Attribute) and self._module.code_for_node(node.func.value) in self._facts.savers
            metric = _keyword(node, "metric") if saver else None
            name = self._selected_metric(metric) if metric is not None else None
            if name:
                self._report_selection(node, name)
                return
            # pycls's ``cp.save_checkpoint(model, ..., epoch, test_err)`` keeps the lowest error
            measured = next((m for m in (self._measured_accuracy(a.value) for a in node.args) if m), None)
            if measured:
                self.report(
                    node,
                    f"the checkpoint is saved with this epoch's accuracy or top-1 error ({measured}), by which the "
                    "best one is kept; multi-label exact match is a poor selection metric",
                    suggestion="pass validation mAP (torchmetrics MultilabelAveragePrecision) or sample-F1, "
                    "and keep the highest",
                )

    def visit_Dict(self, node: cst.Dict) -> None:
        for element in node.elements:
            if isinstance(element, cst.DictElement) and _string(element.key) == "monitor":
                name = next((n for n in self._metric_names(element.value) if self._selects_accuracy(n)), None)
                if name:
                    self._report_selection(node, self._shown(element.value, name))

    def _selector(self, node: cst.Call, callee: str) -> None:
        for keyword in _SELECTORS[callee]:
            value = _keyword(node, keyword)
            name = next((n for n in self._metric_names(value) if self._selects_accuracy(n)), None) if value is not None else None
            if name:
                self._report_selection(node, self._shown(value, name))
                return
        score = _keyword(node, _SCORE_FUNCTION)
        if score is None:
            return
        if isinstance(score, cst.Call) and _leaf(score.func) == "get_default_score_fn" and score.args:
            name = _string(score.args[0].value)
            if name and _names_accuracy(name):
                self._report_selection(node, name)
        elif isinstance(score, cst.Name) and score.value in self._facts.accuracy_functions:
            self._report_selection(node, f"{score.value}()")
        elif isinstance(score, cst.Lambda):
            name = next((key for key in _subscripted_strings(score.body) if _names_accuracy(key)), None)
            if name:
                self._report_selection(node, name)

    def _selects_accuracy(self, name: str) -> bool:
        """An accuracy's name, unless what the file logs under it is a ranking or F1 score; or a name
        the file logs an accuracy under (``self.log("val_af", acc_fine)``)."""
        logged = self._facts.logged.get(name, ())
        for value in logged:
            built = [v for key, v in self._facts.assignments if key == self._module.code_for_node(value)]
            if any(_RANKING_METRICS.search(self._module.code_for_node(v)) for v in (value, *built)):
                return False
        return _names_accuracy(name) or name in self._imported_accuracy.values() or any(
            isinstance(value, (cst.Name, cst.Attribute)) and _names_accuracy(_leaf(value)) for value in logged
        )

    def _shown(self, expression: cst.BaseExpression, name: str) -> str:
        """``VALIDATION_METRIC_NAME` = `val_af`` for a name reached through a constant or a default."""
        if _string(expression) is not None:
            return name
        return f"{self._module.code_for_node(expression)}` = `{name}"

    def _selected_metric(self, metric: cst.BaseExpression) -> str | None:
        """``eval_metrics[eval_metric]`` where ``eval_metric = args.eval_metric`` defaults to ``top1``."""
        if isinstance(metric, cst.Name):
            values = [value for key, value in self._facts.assignments if key == metric.value]
            return next((name for name in map(self._selected_metric, values) if name), None)
        if not isinstance(metric, cst.Subscript) or len(metric.slice) != 1:
            return None
        element = metric.slice[0].slice
        if not isinstance(element, cst.Index):
            return None
        key = element.value
        if _string(key) is not None:
            return _string(key) if _names_accuracy(_string(key)) else None
        if isinstance(key, cst.Name):
            for bound, value in self._facts.assignments:
                if bound == key.value and isinstance(value, cst.Attribute):
                    default = self._facts.option_defaults.get(value.attr.value)
                    if default and _names_accuracy(default):
                        return f"{key.value}` = `{self._module.code_for_node(value)}`, default `{default}"
        return None

    def _report_selection(self, node: cst.CSTNode, name: str) -> None:
        self.report(
            node,
            f"the best model is chosen (or training stopped) on accuracy (`{name}`); multi-label exact match is a "
            "poor selection metric",
            suggestion='select on validation mAP (torchmetrics MultilabelAveragePrecision, logged as "val_map", '
            'mode="max") or sample-F1',
        )

    def _report(self, node: cst.CSTNode, name: str, measured: str | None = None) -> None:
        what = f"`{name}`" if measured is None else f"{measured} against `{name}`"
        self.report(
            node,
            f"the best checkpoint is chosen on accuracy ({what}); multi-label exact match is a poor selection metric",
            suggestion="select on validation mAP (torchmetrics MultilabelAveragePrecision) or sample-F1, and rename the variable accordingly",
        )
