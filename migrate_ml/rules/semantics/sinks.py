"""Where a single-label meaning does harm: losses, metrics, thresholds, logging.

Each check looks at one statement (its own expressions, not the bodies it holds) where the
walk of :mod:`summaries` has the meanings of its names, and reports what it proves.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass

from migrate_ml.rules._prefilter import has_loss_marker, text_facts
from migrate_ml.rules._project import current_facts
from migrate_ml.rules.semantics import hand_losses, metrics, sources, tables
from migrate_ml.rules.semantics.flow import LOSS_CLASS_WORDS
from migrate_ml.rules.semantics.meanings import (
    ARGMAX,
    CLASS_INDEX,
    CONTAINER,
    INT,
    LABEL_ENCODER,
    LOG_PROB,
    LOGITS,
    LOGITS_LOSS_FN,
    LOSS_FN,
    MULTI_HOT,
    ONE_HOT,
    SCORES,
    SIGMOID,
    SOFTMAX,
    THRESHOLDED,
    UNKNOWN,
)
from migrate_ml.rules.semantics.summaries import Analysis

KINDS = (
    "class-index-source",
    "class-index-target",
    "one-hot-target",
    "soft-target-cross-entropy",
    "sigmoid-before-logits-loss",
    "threshold-on-logits",
    "threshold-on-softmax",
    "model-output-relu",
    "argmax-logged",
    "uncast-target",
)
"""What this analysis adds to the safety net's kinds."""

LOSS_CALLEE = re.compile(r"(^|_)(criterion|loss_fn|loss_func|lossfn|loss|criteria)(_|$|\d)", re.IGNORECASE)
LOGITS_NAME = re.compile(r"logit", re.IGNORECASE)
"""A model output named as logits (``logits = model(x)``) is taken at its word."""
THRESHOLD_NAME = re.compile(r"thresh", re.IGNORECASE)
CLASS_INDEX_NAME = re.compile(r"^(class|label|target)_?(index|idx|ids?)$", re.IGNORECASE)
"""A tensor named as the class index of each row (``class_index``, ``label_idx``)."""
LABEL_LIKE = re.compile(r"label|target|^y(_|$)|^gt", re.IGNORECASE)
HEAD = re.compile(r"^(fc|fc\d|classifier|head|linear|out|output|logits?|cls_head|last_linear|final|last_layer)$")
_FEATURES = re.compile(r"backbone|encoder|feature|stem|trunk|body", re.IGNORECASE)
"""Modules that compute features for a head, not the model's output."""
_LOGGED = frozenset({"add_data", "set_title", "title", "add_text", "log_text"})
"""Calls that write one image's prediction next to it: a table row, a plot title."""
_CAST_METHODS = frozenset({"float", "double", "half", "type_as", "bfloat16"})
_FLOAT_DTYPES = frozenset({"float", "float32", "float16", "float64", "double", "half", "bfloat16"})
_TARGET_KEYWORDS = ("target", "targets", "labels", "label", "y", "y_true")
_RANDINT = frozenset({"torch.randint", "numpy.random.randint"})
_INDEX_TENSORS = frozenset({"torch.LongTensor", "torch.cuda.LongTensor"})
"""``torch.LongTensor(3).random_(5)``: an integer tensor of a given shape, filled in place with
class indices below ``random_``'s bound."""
_EYE = frozenset({"numpy.eye", "numpy.identity", "torch.eye"})
_COLLECTING = frozenset({"append", "extend", "add"})
"""What collects into an entry of a per-class table (``per_class[pred].append(i)``)."""
_COMPOUND_FIELDS = frozenset({"body", "orelse", "finalbody", "handlers"})


@dataclass(frozen=True)
class Sink:
    node: ast.AST
    kind: str
    message: str
    suggestion: str
    related: tuple[int, ...] = ()
    enclosing: tuple[int, ...] = ()
    """The ``def``/``class`` lines around it (also in ``related``)."""


class Sinks:
    """Runs every check on each statement the analysis walks; ``found`` collects the constructs."""

    def __init__(self, analysis: Analysis, text: str) -> None:
        self.analysis = analysis
        self.found: list[Sink] = []
        facts = text_facts(text)
        self.multi_label_training = facts.has_any(("BCEWithLogits", "binary_cross_entropy_with_logits", "sigmoid("))
        self._names_a_loss = facts.has_any(LOSS_CLASS_WORDS)
        self._has_loss = has_loss_marker(text)
        self._classification_training = self.multi_label_training or facts.has_any(("CrossEntropyLoss", "cross_entropy("))
        """A ReLU'd output is harmless to cross-entropy's training but breaks the sigmoid it migrates to."""
        self._fed_to_logits_loss: dict[ast.AST, set[str]] = {}
        self._statement: ast.stmt | None = None
        self._loss_targets: list[tuple[str, ast.Call, ast.AST, bool]] = []
        self._loss_functions = hand_losses.find_loss_functions(analysis.tree, analysis.qualified)
        self._exp_parameters = (
            hand_losses.exp_of_negated_parameters(analysis.tree, analysis.qualified) if facts.has("exp(-") else {}
        )
        self._loss_classes = (
            hand_losses.find_loss_classes(analysis.tree, analysis.qualified)
            if facts.has_any(hand_losses.LOSS_CLASS_WORDS) else {}
        )
        self._built_models: dict[str, str] | None = None
        self._fed_cross_entropy: dict[str, tuple[str, int, int]] = {}
        """A function taking ``exp(-parameter)`` -> (parameter, exp line, line of the call giving it a cross-entropy)."""
        self._multiclass_defaults = facts.has(metrics.MULTICLASS)
        self._metric_helpers = (
            metrics.single_label_metrics(analysis.tree, self._multiclass_defaults) if metrics.may_hold_helpers(text) else []
        )
        self._metric_callees = {helper.owner or helper.name: helper for helper in self._metric_helpers}
        """Module-level names whose call hands data to one of the file's single-label metric helpers."""

    def report(self, node: ast.AST, kind: str, message: str, suggestion: str, *related: int) -> None:
        enclosing = tuple(self.analysis.scope_lines)
        self.found.append(
            Sink(node, kind, message, suggestion, tuple(line for line in (*related, *enclosing) if line), enclosing)
        )

    def __call__(self, statement: ast.stmt) -> None:
        self._statement = statement
        callees = set()
        for node in _own_nodes(statement):
            if isinstance(node, ast.Call):
                callees.add(node.func)
                self._call(node)
            elif isinstance(node, ast.Name) and node not in callees and node.id in self._loss_functions:
                self._loss_function_use(node, node.id)  # ``criterion = edl_mse_loss``, passed as a criterion
            elif isinstance(node, ast.Compare):
                self._compare(node)
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
                self._soft_target_product(node)
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
                self._remapped_class(node)
                self._rows_of_one_class(node)
                self._dataset_labels_read(node, node.value)
                self._indexed_log_probability(node)
            elif isinstance(node, (ast.ListComp, ast.GeneratorExp, ast.SetComp)):
                for generator in node.generators:
                    if sources.reads_pair_labels(node, generator):
                        self._dataset_labels_read(node, generator.iter)
        if isinstance(statement, ast.Return) and statement.value is not None:
            self._returned(statement)
        if isinstance(statement, ast.Assign):
            self._mixed_class_indices(statement)
            self._eye_rows(statement)
            self._random_class_indices(statement)
            self._relu_head(statement)
            self._model_computes_loss(statement)
        if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Subscript):
            self._counted_by_label(statement, statement.target)
            self._kept_by_predicted_class(statement, statement.target)
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            func = statement.value.func
            if isinstance(func, ast.Attribute) and func.attr in _COLLECTING and isinstance(func.value, ast.Subscript):
                self._kept_by_predicted_class(statement, func.value)

    def finish(self) -> list[Sink]:
        """The file-wide checks: the hand-written losses of the file, at their ``def``; a logits
        criterion given float targets at one call and integer labels at another (the residue of a
        rewrite that could not follow every call)."""
        for name, loss in self._loss_functions.items():
            what = _HAND_WRITTEN[loss.kind]
            how = f"returns {loss.through}(), which computes {what}" if loss.through else f"computes {what}"
            self.found.append(Sink(
                loss.function, "single-label-loss",
                f"{name}() {how} (line {loss.line}): {_WHY[loss.kind]}",
                _ADVICE[loss.kind],
                (loss.line,),
            ))
        for name, loss in self._loss_classes.items():
            how = f"calls {loss.through}, which computes" if loss.through else "computes"
            self.found.append(Sink(
                loss.node, "single-label-loss",
                f"{name} {how} {loss.computes} (line {loss.line}): the classes compete for one unit of "
                "probability, one label per image",
                hand_losses.class_advice(loss),
                # no related line: the class is a construct of its own even where a line of its
                # body (the ``nll_loss`` an ML003 finding names) is reported for something else
            ))
        for name, (parameter, line, call) in self._fed_cross_entropy.items():
            function = next(f for f in self.analysis.tree.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name == name)
            self.found.append(Sink(
                function, "single-label-loss",
                f"{name}() reads exp(-{parameter}) (line {line}) as the probability of the one true class: it is "
                f"given a per-sample cross-entropy (line {call}), one label per image",
                "give it the per-element BCE, F.binary_cross_entropy_with_logits(logits, targets.float(), "
                "reduction='none') of shape [B, C]: exp(-bce) is then each label's probability of being right",
                (line,),  # not the call's line: the cross-entropy there is a construct (and a finding) of its own
            ))
        self._metric_definitions()
        # One criterion or several, a call of a BCE criterion that casts its targets shows what
        # the others need: integer labels left at another call are what the rewrite did not reach.
        cast = [(name, call) for name, call, _, is_cast in self._loss_targets if is_cast]
        for name, call, target, is_cast in self._loss_targets if cast else ():
            if not is_cast:
                self.found.append(Sink(
                    call,
                    "uncast-target",
                    f"{name} (BCE with logits) is given {ast.unparse(target)}, integer class labels left from before "
                    f"the migration, where {cast[0][0]} at line {cast[0][1].lineno} gets float targets",
                    f"pass float multi-hot [B, C] targets: {ast.unparse(target)}.float()",
                    (cast[0][1].lineno,),
                ))
        return self.found

    # -- calls

    def _call(self, node: ast.Call) -> None:
        analysis = self.analysis
        value = analysis.value
        func = node.func
        method = func.attr if isinstance(func, ast.Attribute) else ""
        qualified = analysis.qualified(func)
        if isinstance(func, ast.Name) and not analysis.is_bound(func):
            self._loss_class_built(node, func.id)
            if func.id in self._loss_functions:
                self._loss_function_use(node, func.id)
            for position, line in self._exp_parameters.get(func.id, {}).items():
                given = node.args[position] if position < len(node.args) else None
                if given is not None and hand_losses.is_per_sample_cross_entropy(given, analysis.qualified):
                    parameter = self._parameter_name(func.id, position)
                    self._fed_cross_entropy.setdefault(func.id, (parameter, line, node.lineno))
        if self._is_loss_call(node):
            target = _argument(node, 1, _TARGET_KEYWORDS)
            scores = _argument(node, 0, ("input", "logits", "inputs"))
            if scores is not None and target is not None and value(scores).meaning == LOG_PROB and value(target).meaning == SOFTMAX:
                self.report(
                    node, "single-label-loss",
                    "a KL divergence between softmax distributions over the classes (distillation): the student "
                    "learns the teacher's one-class-per-image distribution",
                    "distil per label: F.binary_cross_entropy_with_logits(student_logits / T, "
                    "torch.sigmoid(teacher_logits / T)) * T * T",
                    value(scores).line, value(target).line,
                )
            if target is not None and value(target).meaning == ONE_HOT:
                encoded = self._one_hot_call_at(value(target).line)
                if encoded is not None and encoded.lineno != node.lineno:
                    # reported where the class indices are encoded: that line is what to change
                    self.report(
                        encoded, "one-hot-target",
                        f"{ast.unparse(encoded.args[0])} is read as one class index per sample and one-hot encoded "
                        f"as the target of the loss at line {node.lineno}: one class per image",
                        "pass the real float multi-hot [B, C] targets to the loss (several labels per image) and "
                        "drop the encoding",
                        node.lineno,
                    )
                else:
                    self.report(
                        node, "one-hot-target",
                        "the loss target is a one-hot of class indices (however smoothed or mixed): one class per image",
                        "pass the real float multi-hot [B, C] targets (several labels per image)",
                        value(target).line,
                    )
            if scores is not None and analysis.is_logits_loss(func):
                meaning = value(scores).meaning
                if meaning in (SIGMOID, SOFTMAX):
                    what = "torch.sigmoid" if meaning == SIGMOID else "softmax"
                    self.report(
                        node, "sigmoid-before-logits-loss",
                        f"{what} is applied before a loss that applies the sigmoid itself (BCE with logits): "
                        "the loss sees squashed scores and its gradients vanish",
                        "pass the raw logits to BCEWithLogitsLoss / binary_cross_entropy_with_logits",
                        value(scores).line,
                    )
            if target is not None and self._is_logits_criterion(func) and value(target).meaning == CLASS_INDEX:
                self.report(
                    node, "class-index-target",
                    f"the labels given to this BCE-with-logits loss are class indices (from line {value(target).line}): "
                    "one class per image, not a [B, C] multi-hot row",
                    "load float multi-hot labels (a Dataset whose __getitem__ returns a [C] float tensor)",
                    value(target).line,
                )
            criterion = self._criterion_name(func)
            if target is not None and criterion:
                if _is_float_cast(target):
                    self._loss_targets.append((criterion, node, target, True))
                elif self._integer_label(target):
                    self._loss_targets.append((criterion, node, target, False))
        if method in ("scatter_", "scatter"):
            self._scatter_one_hot(node)
        if method == "sum" and isinstance(func, ast.Attribute):
            self._picked_by_one_hot(node, func.value)
        elif qualified == "torch.sum" and node.args:
            self._picked_by_one_hot(node, node.args[0])
        if method == "fit_transform" and isinstance(func, ast.Attribute) and value(func.value).meaning == LABEL_ENCODER:
            self._label_encoding(node)
        if qualified == "pandas.get_dummies":
            self._dummies_of_label(node)
        if method == "map" and len(node.args) == 1:
            self._mapped_to_class_index(node)
        self._one_hot_helper_call(node)
        if qualified in _CLASS_COUNTS and node.args:
            self._class_frequencies(node, qualified)
        if qualified in ("torch.log", "numpy.log") and node.args:
            self._gathered_log_probability(node, node.args[0])
        elif method == "log" and not node.args:
            self._gathered_log_probability(node, func.value)
        elif method == "gather":
            self._gathered_class_score(node)
        if tables.row_for(qualified) is tables.row_for("torch.nn.functional.one_hot") and node.args:
            if value(node.args[0]).meaning == ARGMAX:
                self.report(
                    node, "argmax-prediction",
                    "a one-hot of an arg-max is still one predicted class per image",
                    "predict with (torch.sigmoid(logits) > THRESHOLD).float() — one decision per label",
                    value(node.args[0]).line,
                )
        if self._serving() and (method == "softmax" or tables.row_for(qualified) is tables.row_for("torch.softmax")):
            module_call = tables.row_for(qualified) is tables.row_for("torch.softmax")
            scores = (node.args[0] if node.args else None) if module_call else func.value
            if scores is not None and value(scores).meaning in (SCORES, LOGITS):
                self.report(
                    node, "softmax-class-dim",
                    "the response is built from a softmax over the model's output: the classes compete for one unit "
                    "of probability, and the top class(es) are served as the answer",
                    "serve torch.sigmoid(logits) and every label above THRESHOLD: "
                    "[[mapping[j] for j in (row > THRESHOLD).nonzero()] for row in probs]",
                    value(scores).line,
                )
        self._old_functional_metric(node, qualified)
        self._metric_call(node, qualified)
        self._logged(node, method)
        if method in ("gt", "ge", "__gt__") and node.args and isinstance(func, ast.Attribute):
            self._threshold(node, func.value, node.args[0])

    def _one_hot_call_at(self, line: int) -> ast.Call | None:
        """The ``one_hot(y, C)`` call of the enclosing function at ``line``, if there is one."""
        function = self.analysis.function
        if function is None or not line:
            return None
        return next((
            node for node in ast.walk(function)
            if isinstance(node, ast.Call) and node.lineno == line and node.args
            and self.analysis.qualified(node.func).endswith("one_hot")
        ), None)

    def _loss_function_use(self, node: ast.AST, name: str) -> None:
        """A call of (or a reference to) a hand-written loss function of the file, outside the
        functions that make up that loss (their ``def`` is where the loss is reported)."""
        function = self.analysis.function
        if function is not None and any(loss.function is function for loss in self._loss_functions.values()):
            return
        loss = self._loss_functions[name]
        self.report(
            node, "single-label-loss",
            f"{name}() (line {loss.function.lineno}) computes {_HAND_WRITTEN[loss.kind]}: {_WHY[loss.kind]}",
            _ADVICE[loss.kind],
            loss.function.lineno,
        )

    def _loss_class_built(self, node: ast.Call, name: str) -> None:
        """``criterion = LabelSmoothing(0.1)``: a loss class of this file (or of another file of the
        run, imported) that computes a single-label loss, built outside its own body."""
        loss = self._loss_classes.get(name)
        if loss is not None:
            if self.analysis.class_name == name or loss.node.lineno in self.analysis.scope_lines:
                return
            where, computes, advice = f"line {loss.node.lineno}", loss.computes, hand_losses.class_advice(loss)
        else:
            found = self.analysis.run_loss_class(node.func)
            if found is None:
                return
            where, computes, advice = found
        self.report(
            node, "single-label-loss",
            f"builds {name} ({where}), which computes {computes}: one label per image",
            advice,
        )

    def _parameter_name(self, function_name: str, position: int) -> str:
        function = next(
            f for f in self.analysis.tree.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name == function_name
        )
        return (*function.args.posonlyargs, *function.args.args)[position].arg

    def _is_loss_call(self, node: ast.Call) -> bool:
        func = node.func
        if self.analysis.qualified(func) in tables.LOSS_FUNCTIONS:
            return True
        if self.analysis.value(func).meaning in (LOSS_FN, LOGITS_LOSS_FN):
            return True
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return bool(LOSS_CALLEE.search(name)) and len(node.args) + len(node.keywords) >= 2

    def _is_logits_criterion(self, func: ast.AST) -> bool:
        return self.analysis.is_logits_loss(func) or bool(self._criterion_name(func))

    def _criterion_name(self, func: ast.AST) -> str:
        """How a BCE-with-logits criterion object is called (``criterion``, ``self.loss_fn``,
        ``losses["val"]``), also where a function receives it as a parameter of that name or from
        another file of the run; "" for anything else, the functional losses included."""
        if self.analysis.qualified(func) in tables.LOSS_FUNCTIONS:
            return ""
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        meaning = self.analysis.value(func).meaning
        if meaning == LOGITS_LOSS_FN:
            return ast.unparse(func)
        # The name alone stands for the criterion only where no binding of this scope says what it
        # holds (a parameter, a global): ``loss = nn.MSELoss()`` in another function is another loss.
        if name in self.analysis.logits_loss_names and not self.analysis.is_bound(func):
            return ast.unparse(func)
        return ""

    def _integer_label(self, target: ast.AST) -> bool:
        """Class labels as they come from a loader: a label-named value with no float cast, or ``.long()``."""
        meaning = self.analysis.value(target).meaning
        if meaning in (MULTI_HOT, ONE_HOT, SIGMOID, SOFTMAX, THRESHOLDED, LOGITS, SCORES):
            return False
        if any(isinstance(n, ast.Attribute) and n.attr in ("long", "int") for n in ast.walk(target)):
            return True
        root = target
        while isinstance(root, (ast.Call, ast.Attribute, ast.Subscript)):
            root = root.func if isinstance(root, ast.Call) else root.value
        name = root.id if isinstance(root, ast.Name) else ""
        if name == "self" and isinstance(target, ast.Attribute):
            name = target.attr
        return bool(LABEL_LIKE.search(name)) and meaning in (UNKNOWN, CLASS_INDEX, INT)

    def _scatter_one_hot(self, node: ast.Call) -> None:
        """``torch.full((B, C), off).scatter_(1, x.view(-1, 1), on)``: one class index per row
        becomes a one-hot row (a vendored ``one_hot``/``mixup_target``)."""
        dim, index = _argument(node, 0, ("dim",)), _argument(node, 1, ("index",))
        fill = _argument(node, 2, ("value", "src"))
        if dim is None or index is None or fill is None:
            return
        if not (isinstance(dim, (ast.Constant, ast.UnaryOp)) and ast.unparse(dim) in ("1", "-1")):
            return
        shaped = index if _is_column(index) else self.analysis.value(index).node
        if shaped is None or not _is_column(shaped):
            if not (isinstance(index, ast.Name) and CLASS_INDEX_NAME.search(index.id)):
                return  # truth.scatter_(1, class_index, 1.0): named as the class of each row
        if self._scattered_mask(node):
            self.report(
                node, "one-hot-target",
                "one class index per row is scattered into a mask of each image's class (a margin or a "
                "selection by the true class): it marks one class per image",
                "a mask of each image's labels is the multi-hot rows themselves: index = target.bool()",
            )
            return
        # the mixing clause fits where the file mixes or smooths targets (timm's vendored
        # one_hot/mixup_target), not a kNN vote or a margin built from the true class
        mixing = any(
            isinstance(other, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(w in other.name.lower() for w in ("mix", "smooth"))
            for other in ast.walk(self.analysis.tree)
        )
        self.report(
            node, "one-hot-target",
            "one class index per row is scattered into a one-hot row (a one_hot/mixup_target that encodes class "
            "indices): mixed or smoothed, the targets still hold one class per image",
            "build targets from the multi-hot [B, C] labels; mix them directly (lam * y + (1 - lam) * y.flip(0))"
            if mixing else "build the [B, C] rows from the multi-hot labels themselves (y.float()), not from one class index per row",
        )

    def _picked_by_one_hot(self, node: ast.Call, summed: ast.AST) -> None:
        """``(weights * labels_one_hot).sum(1)``: a per-class value times a one-hot of the class
        index, summed over the classes, is each sample's value at its one class (a class-balanced
        weight per sample)."""
        dims = [ast.unparse(k.value) for k in node.keywords if k.arg in ("dim", "axis")]
        dims += [ast.unparse(a) for a in (node.args[1:2] if self.analysis.qualified(node.func) == "torch.sum" else node.args[:1])]
        if not dims or dims[0] not in ("1", "-1"):
            return
        value = self.analysis.value(summed)
        product = value.node
        if value.meaning != ONE_HOT or not (isinstance(product, ast.BinOp) and isinstance(product.op, ast.Mult)):
            return
        factors = [side for side in (product.left, product.right) if self.analysis.value(side).meaning != ONE_HOT]
        encoded = self._one_hot_call_at(value.line)
        if len(factors) != 1 or encoded is None or not self._labels(encoded.args[0]):
            return  # a one-hot of an expert or a token index routes, it does not label
        self.report(
            node, "one-hot-target",
            f"{ast.unparse(factors[0])} times a one-hot of the class index (line {product.lineno}) summed over the "
            "classes picks each sample's value at its one class (a class weight per sample): one label per image",
            "keep one value per label: weights * labels.float() as a [B, C] weight (weight= of "
            "binary_cross_entropy_with_logits), not summed over the classes",
            product.lineno,
        )

    def _label_encoding(self, node: ast.Call) -> None:
        """``y = LabelEncoder().fit_transform(df["species"])``: one class name per row encoded as
        one class index (a label, by the name it is stored under)."""
        statement = self._statement
        targets = statement.targets if isinstance(statement, ast.Assign) else []
        if not any(_LABEL_TARGET.search(ast.unparse(target)) for target in targets):
            return  # a categorical feature encoded, not the label
        self.report(
            node, "class-index-source",
            "LabelEncoder encodes one class name per row as one class index: one label per sample",
            "encode every label of a row with sklearn.preprocessing.MultiLabelBinarizer (float multi-hot [N, C])",
        )

    def _dummies_of_label(self, node: ast.Call) -> None:
        """``pd.get_dummies(df, columns=["label"])``, ``pd.get_dummies(df["label"])``: a one-hot of
        the one label of each row."""
        columns = next((k.value for k in node.keywords if k.arg == "columns"), None)
        keys: list[ast.AST] = list(columns.elts) if isinstance(columns, (ast.List, ast.Tuple)) else []
        if columns is None and node.args and isinstance(node.args[0], ast.Subscript):
            keys = [node.args[0].slice]
        named = [k.value for k in keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        if not any(_LABEL_TARGET.search(key) for key in named):
            return  # dummies of input features
        self.report(
            node, "one-hot-target",
            f"get_dummies of the label column ({', '.join(repr(k) for k in named)}) is a one-hot of one class per row",
            "read every label of a row as multi-hot columns: df['labels'].str.get_dummies(sep=' ') (space-separated names)",
        )

    def _mapped_to_class_index(self, node: ast.Call) -> None:
        """``df["cultivar_index"] = df["cultivar"].map(lambda c: classes.index(c))`` (or
        ``.map(class_to_idx)``): a label column encoded as one class index per row."""
        statement = self._statement
        if not (isinstance(statement, ast.Assign) and statement.value is node):
            return
        column = next((t.slice for t in statement.targets if isinstance(t, ast.Subscript)), None)
        if not (isinstance(column, ast.Constant) and isinstance(column.value, str) and _LABEL_COLUMN_KEY.search(column.value)):
            return
        if sources.NOT_LABEL_COLUMN.search(column.value):
            return
        mapping = node.args[0]
        encodes = (isinstance(mapping, (ast.Name, ast.Attribute)) and sources.CLASS_INDEX_MAP.search(ast.unparse(mapping).rpartition(".")[2])) or (
            isinstance(mapping, ast.Lambda) and _looks_up_position(mapping.body)
        )
        if not encodes:
            return
        self.report(
            node, "class-index-source",
            f"the column {column.value!r} is encoded as one class index per row: one label per sample",
            "keep every label of a row: multi-hot columns (df['labels'].str.get_dummies(sep=' ')) or a list of label ids",
        )

    def _counted_by_label(self, statement: ast.AugAssign, target: ast.Subscript) -> None:
        """``label_to_count[label] += 1``: a count (or sum) per class indexed by the one class of
        each sample."""
        index = _unwrapped_scalar(target.slice)
        if isinstance(index, ast.Subscript) and self.analysis.value(index).meaning == CLASS_INDEX:
            # count[train_set[i][1]] += 1: the label of a class-index dataset's sample
            self.report(
                statement, "class-index-source",
                f"{ast.unparse(target)} counts per class with the one class index of each sample",
                f"count every label of a sample: {ast.unparse(target.value)} += its float multi-hot [C] row "
                "(labels.sum(0) for a batch)",
                self.analysis.value(index).line,
            )
            return
        if not (isinstance(index, ast.Name) and sources.LABEL_RETURNED.match(index.id)):
            return
        if self.analysis.value(index).meaning in (MULTI_HOT, ONE_HOT):
            return
        scope = self.analysis.function or self.analysis.tree
        if any(isinstance(loop, (ast.For, ast.comprehension)) and isinstance(loop.target, ast.Name)
               and loop.target.id == index.id for loop in ast.walk(scope)):
            return  # for label in tags: counts[label] += 1 counts the several labels of one image
        if sum(
            isinstance(other, ast.AugAssign) and isinstance(other.target, ast.Subscript)
            and ast.unparse(_unwrapped_scalar(other.target.slice)) == index.id
            for other in ast.walk(scope)
        ) > 1:
            return  # class_correct[label] += ...; class_total[label] += 1: per-class accuracy (ML105)
        self.report(
            statement, "class-index-source",
            f"{ast.unparse(target)} counts per class with the one class index of each sample ({index.id})",
            f"count every label of a sample: {ast.unparse(target.value)} += {index.id} (a float multi-hot [C] row; "
            "labels.sum(0) for a batch)",
        )

    def _kept_by_predicted_class(self, statement: ast.stmt, target: ast.Subscript) -> None:
        """``mis_matrix[pred, true] += 1``, ``tp_per_class[pred][true].append(i)``: per-class or
        confusion bookkeeping indexed by the one arg-max class of each sample."""
        indices: list[ast.AST] = []
        node: ast.AST = target
        while isinstance(node, ast.Subscript):
            index = node.slice
            indices.extend(index.elts if isinstance(index, ast.Tuple) else (index,))
            node = node.value
        for index in map(_unwrapped_scalar, indices):
            value = self.analysis.value(index)
            if isinstance(index, (ast.Name, ast.Subscript)) and value.meaning == ARGMAX:
                self.report(
                    statement, "argmax-prediction",
                    f"{ast.unparse(target)} keeps per-class bookkeeping indexed by each sample's one predicted class "
                    f"({ast.unparse(index)}, an arg-max): a multi-label sample has several predicted labels, or none",
                    "keep it per label over the thresholded [N, C] predictions instead: one 2 x 2 matrix per label "
                    "(sklearn.metrics.multilabel_confusion_matrix), or one entry for each j in "
                    "(probs[i] > THRESHOLD).nonzero() of a sample",
                    value.line,
                )
                return

    def _class_frequencies(self, node: ast.Call, qualified: str) -> None:
        """``np.bincount(labels)``, ``np.unique(y, return_counts=True)``: class frequencies counted
        from one class per sample (for class weights or a balanced sampler)."""
        if qualified.endswith("unique") and not any(k.arg == "return_counts" for k in node.keywords):
            return
        counted = node.args[0]
        name = _column_name(counted)
        if not (LABEL_LIKE.search(name) or self.analysis.value(counted).meaning in (CLASS_INDEX, INT)):
            return
        if self.analysis.value(counted).meaning in (MULTI_HOT, ONE_HOT):
            return
        self.report(
            node, "class-index-source",
            f"class frequencies are counted from one class index per sample ({ast.unparse(counted)})",
            "count each label over multi-hot [N, C] labels: labels.sum(0) (a sample adds to every class it has)",
        )

    def _dataset_labels_read(self, node: ast.AST, labels: ast.AST) -> None:
        """``[s[-1] for s in dataset.samples]``, ``dataset.targets[idx]``: the class indices a
        class-index dataset keeps, read one per image (k-NN labels, per-sample weights)."""
        if not (isinstance(labels, ast.Attribute) and labels.attr in sources.DATASET_LABELS):
            return
        dataset = self.analysis.index_dataset(self.analysis.value(labels.value))
        if not dataset:
            return
        self.report(
            node, "class-index-source",
            f"{ast.unparse(labels)} of {dataset} holds one class index per image, read here as the labels",
            "read the float multi-hot [C] labels of a multi-label dataset "
            "(migrate_ml_reference.MultiLabelCsvDataset keeps them per image)",
        )

    def _rows_of_one_class(self, node: ast.Subscript) -> None:
        """``train[train["label"] == class_id]``: the rows of one class picked by the table's label
        column, which holds one class per row."""
        test = node.slice
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
            return
        column = test.left
        if isinstance(column, ast.Subscript) and isinstance(column.slice, ast.Constant):
            key, table = column.slice.value, column.value
        elif isinstance(column, ast.Attribute):
            key, table = column.attr, column.value
        else:
            return
        if not (sources.is_label_key(key) and ast.dump(table) == ast.dump(node.value)):
            return
        self.report(
            node, "class-index-source",
            f"{ast.unparse(node)} picks the rows of one class by the label column {key!r}: each row holds one class",
            f"with a multi-hot label column per class pick the rows that have it: {ast.unparse(table)}[{ast.unparse(table)}[<class>] == 1]",
        )

    def _remapped_class(self, node: ast.Subscript) -> None:
        """``label_map[label]`` with ``label_map = {0: 0, 2: 1}``: class indices mapped to others."""
        base = self.analysis.value(node.value)
        if not (isinstance(base.node, ast.Dict) and _int_to_int(base.node)):
            return
        if self.analysis.value(node.slice).meaning != CLASS_INDEX:
            return
        self.report(
            node, "class-index-source",
            f"{ast.unparse(node)} maps one class index per sample to another (classes kept or merged): one label per image",
            "keep the columns of the kept classes of the multi-hot labels instead: labels[:, kept_classes]",
            base.line,
        )

    def _scattered_mask(self, node: ast.Call) -> bool:
        """The scattered tensor is a mask: made as ``uint8``/``bool`` (``torch.zeros_like(x,
        dtype=torch.uint8)``) or the condition of a ``torch.where`` in the same function."""
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        function = self.analysis.function
        if not isinstance(receiver, ast.Name) or function is None:
            return False
        for inner in ast.walk(function):
            if isinstance(inner, ast.Assign) and any(isinstance(t, ast.Name) and t.id == receiver.id for t in inner.targets):
                if isinstance(inner.value, ast.Call) and any(
                    keyword.arg == "dtype" and isinstance(keyword.value, ast.Attribute) and keyword.value.attr in ("uint8", "bool")
                    for keyword in inner.value.keywords
                ):
                    return True
            if (
                isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "where"
                and inner.args and isinstance(inner.args[0], ast.Name) and inner.args[0].id == receiver.id
            ):
                return True
        return False

    def _serving(self) -> bool:
        function = self.analysis.function
        return function is not None and function.name == sources.POSTPROCESS

    def _gathered_log_probability(self, node: ast.Call, gathered: ast.AST) -> None:
        """``-torch.log(y_hat.gather(1, y.view(-1, 1)))``, ``-np.log(p[range(B), y])``: the
        log-probability of one class per row, a hand-written cross-entropy."""
        if self._picks_labelled_class(gathered):
            self.report(
                node, "single-label-loss",
                "the log-probability of the labelled class of each row is read (p[range(B), y]): a hand-written "
                "cross-entropy, one label per image",
                "use nn.BCEWithLogitsLoss() on the logits with float multi-hot [B, C] targets",
            )
            return
        if not (isinstance(gathered, ast.Call) and isinstance(gathered.func, ast.Attribute) and gathered.func.attr == "gather"):
            return
        if len(gathered.args) < 2 or ast.unparse(gathered.args[0]) not in ("1", "-1"):
            return
        index = gathered.args[1]
        if not (_is_column(index) or _is_column(self.analysis.value(index).node or index)):
            return
        self.report(
            node, "single-label-loss",
            "the log-probability of one class per row is gathered (a hand-written cross-entropy): it trains "
            "one label per image",
            "use nn.BCEWithLogitsLoss() on the logits with float multi-hot [B, C] targets",
        )

    def _indexed_log_probability(self, node: ast.Subscript) -> None:
        """``log_p[torch.arange(len(x)), y]`` of ``log_p = F.log_softmax(x, dim=-1)``: the
        log-probability of the labelled class of each row (a focal loss's ``log_pt``)."""
        if self.analysis.value(node.value).meaning != LOG_PROB or not self._picks_labelled_class(node):
            return
        self.report(
            node, "single-label-loss",
            f"{ast.unparse(node)} reads the log-softmax probability of the labelled class of each row: a hand-written "
            "cross-entropy (or a focal loss built on it), one label per image",
            "use nn.BCEWithLogitsLoss() (or torchvision.ops.sigmoid_focal_loss) on the logits with float multi-hot "
            "[B, C] targets",
            self.analysis.value(node.value).line,
        )

    def _gathered_class_score(self, node: ast.Call) -> None:
        """``out.gather(dim=1, index=class_index)`` with one class index per row, as a column: the
        score of the labelled class (a likelihood, a hand-written loss built on it)."""
        dim = _argument(node, 0, ("dim",))
        index = _argument(node, 1, ("index",))
        if dim is None or index is None or ast.unparse(dim) not in ("1", "-1"):
            return
        shaped = index if _is_column(index) else self.analysis.value(index).node
        if shaped is None or not _is_column(shaped) or not (self._labels(index) or self._labels(shaped)):
            return
        self.report(
            node, "single-label-loss",
            "the score of the labelled class of each row is gathered (one class index per image): a likelihood "
            "of one true class, which a loss built on it trains as single-label",
            "score every label: nn.BCEWithLogitsLoss() on the logits with float multi-hot [B, C] targets",
        )

    def _picks_labelled_class(self, node: ast.AST) -> bool:
        """``p[range(B), y]``, ``p[torch.arange(n), labels]``: one entry per row, at its label."""
        if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2):
            return False
        rows, columns = node.slice.elts
        if isinstance(rows, ast.Name):
            rows = self._only_binding(rows.id) or rows  # ``all_rows = torch.arange(len(x))``
        if not isinstance(rows, ast.Call):
            return False
        ranged = (isinstance(rows.func, ast.Name) and rows.func.id == "range") or self.analysis.qualified(rows.func) in (
            "torch.arange", "numpy.arange"
        )
        return ranged and self._labels(columns)

    def _only_binding(self, name: str) -> ast.AST | None:
        """What the one assignment to ``name`` in this function assigns; None where it is bound
        otherwise or more than once (a loop variable, a parameter, a name rebound)."""
        function = self.analysis.function
        if function is None or name in {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}:
            return None
        bindings = [
            node for node in ast.walk(function)
            if isinstance(node, ast.Name) and node.id == name and not isinstance(node.ctx, ast.Load)
        ]
        if len(bindings) != 1:
            return None
        statement = next(
            (s for s in ast.walk(function) if isinstance(s, ast.Assign) and s.targets == [bindings[0]]), None
        )
        return statement.value if statement is not None else None

    def _labels(self, node: ast.AST) -> bool:
        """Class labels: meant as class indices, or named as labels (``y``, ``targets``, ``class_index``)."""
        if self.analysis.value(node).meaning == CLASS_INDEX:
            return True
        root = node
        while isinstance(root, (ast.Call, ast.Attribute, ast.Subscript)):
            root = root.func.value if isinstance(root, ast.Call) and isinstance(root.func, ast.Attribute) else (
                root.func if isinstance(root, ast.Call) else root.value
            )
        name = root.id if isinstance(root, ast.Name) else ""
        return bool(LABEL_LIKE.search(name) or re.search(r"class_?(index|idx|id)", name, re.IGNORECASE))

    def _old_functional_metric(self, node: ast.Call, qualified: str) -> None:
        module, _, name = qualified.rpartition(".")
        if f"{module}." not in tables.OLD_FUNCTIONAL_METRICS or name not in tables.CLASS_METRIC_FUNCTIONS:
            return
        keywords = {k.arg for k in node.keywords}
        if keywords & {"task", "num_labels", "multilabel"}:
            return
        if any(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in node.args):
            return  # the task given positionally
        self.report(
            node, "class-index-metric",
            f"{qualified.replace('pytorch_lightning', 'pl')}() without task= scores class indices "
            "(older releases inferred multiclass from the shapes)",
            'pass task="multilabel", num_labels=C, threshold=THRESHOLD (torchmetrics.functional), on sigmoid outputs',
        )

    def _metric_call(self, node: ast.Call, qualified: str) -> None:
        """A library metric of :data:`metrics.METRIC_APIS`, a Keras-like ``metrics=["accuracy"]``, or a
        call of a single-label metric helper of this file or of another file of the run."""
        api = metrics.metric_api(qualified)
        if api is not None and (not api.needs_labels or (node.args and self._labels_given(node.args[0]))):
            self.report(node, "class-index-metric", f"{api.what}: one class per sample", api.advice)
            return
        listed = metrics.keras_accuracy(node)
        if listed is not None:
            self.report(
                listed, "class-index-metric",
                f"metrics={ast.unparse(listed)} is the accuracy of one class per sample (the arg-max against a class index)",
                'ask for per-label metrics instead (binary accuracy, F1, mAP), e.g. metrics=["binary_accuracy"], '
                "or torchmetrics MultilabelAveragePrecision",
            )
            return
        if any(k.arg in ("label_type", "task") and isinstance(k.value, ast.Constant) and k.value.value != metrics.MULTICLASS
               for k in node.keywords):
            return  # the caller picks another branch than the default
        func = node.func
        helper = self._metric_callees.get(func.id) if isinstance(func, ast.Name) else None
        if helper is not None and self.analysis.function is not helper.function:
            self.report(
                node, "single-label-helper",
                f"{func.id}() ({f'{helper.name}, ' if helper.owner else ''}line {helper.function.lineno}) counts matches "
                "of one predicted class per sample with its label: a single-label metric",
                metrics.HELPER_ADVICE,
                helper.function.lineno,
            )
        elif isinstance(func, (ast.Name, ast.Attribute)) and self.analysis.calls_run_metric(func):
            self.report(
                node, "single-label-helper",
                f"{ast.unparse(func)}() (another file of this run) counts matches of one predicted class per sample "
                "with its label: a single-label metric",
                metrics.HELPER_ADVICE,
            )

    def _labels_given(self, node: ast.AST) -> bool:
        """Class labels: a label column of a table, or what :meth:`_labels` accepts."""
        return metrics.is_label_column(node) or self._labels(node)

    def _metric_definitions(self) -> None:
        """The file's ``"multiclass"`` defaults and single-label metric helpers, at their ``def``."""
        for function, parameter, default in metrics.multiclass_defaults(self.analysis.tree) if self._multiclass_defaults else ():
            self.found.append(Sink(
                default, "class-index-metric",
                f'{function}() defaults {parameter} to "multiclass": a caller that does not pass it gets the '
                "single-label branch (one arg-max class per sample)",
                f'default {parameter} to "multilabel" (sigmoid > THRESHOLD per label, multi-hot [B, C] targets), '
                "or pass it at every call",
            ))
        for helper in self._metric_helpers:
            self.found.append(Sink(
                helper.function, "single-label-helper",
                f"{helper.name}() counts matches of one predicted class per sample with its label "
                f"({ast.unparse(helper.comparison)}, line {helper.comparison.lineno}): a single-label metric",
                metrics.HELPER_ADVICE,
                (helper.comparison.lineno,),
            ))

    def _logged(self, node: ast.Call, method: str) -> None:
        """An arg-max written next to one image: a caption, a table row, a plot title."""
        logged: list[ast.AST] = [k.value for k in node.keywords if k.arg in ("caption", "captions", "data", "title")]
        if method in _LOGGED:
            logged.extend(node.args)
        for expression in logged:
            for part in ast.walk(expression):
                if isinstance(part, (ast.Name, ast.Subscript, ast.Attribute)) and self.analysis.value(part).meaning == ARGMAX:
                    self.report(
                        node, "argmax-logged",
                        "an arg-max prediction (one class per image) is logged with each image",
                        "log every label above the threshold: [classes[j] for j in (probs[i] > THRESHOLD).nonzero()]",
                        self.analysis.value(part).line,
                    )
                    return
        if isinstance(node.func, ast.Name) and node.func.id == "print":
            # the predictions themselves shown to the user, not a score computed from them
            for argument in node.args:
                value = self.analysis.value(argument)
                if isinstance(argument, (ast.Name, ast.Subscript, ast.Attribute)) and value.meaning == ARGMAX:
                    self.report(
                        node, "argmax-logged",
                        f"{ast.unparse(argument)} is printed as the prediction: one arg-max class per image",
                        "print every label above the threshold: (torch.sigmoid(logits) > THRESHOLD).nonzero()",
                        value.line,
                    )
                    return

    # -- comparisons and products

    def _compare(self, node: ast.Compare) -> None:
        if len(node.ops) != 1:
            return
        operator, right = node.ops[0], node.comparators[0]
        if isinstance(operator, (ast.Eq, ast.NotEq)):
            pair = metrics.argmax_against_labels(node)
            if pair is not None:
                self.report(
                    node, "argmax-compared",
                    f"the arg-max over the classes ({ast.unparse(pair[0])}) is compared with the label column "
                    f"{ast.unparse(pair[1])}: one class per sample",
                    "threshold sigmoid probabilities (p > THRESHOLD) and compare whole rows with the multi-hot labels: "
                    "(pred == labels.astype(bool)).all(axis=1).mean() for exact match, or per-label F1/mAP",
                )
        if isinstance(operator, (ast.Gt, ast.GtE)):
            self._threshold(node, node.left, right)
        elif isinstance(operator, (ast.Lt, ast.LtE)):
            self._threshold(node, right, node.left)

    def _threshold(self, node: ast.AST, subject: ast.AST, threshold: ast.AST) -> None:
        if isinstance(threshold, ast.Constant):
            if not isinstance(threshold.value, (int, float)) or isinstance(threshold.value, bool) or threshold.value == 0:
                return  # logits > 0 is the 0.5 decision on probabilities
        elif not THRESHOLD_NAME.search(ast.unparse(threshold)):
            return
        value = self.analysis.value(subject)
        meaning = value.meaning
        if meaning == SCORES and (LOGITS_NAME.search(ast.unparse(subject)) or self._fed_to_logits_loss_here(subject)):
            meaning = LOGITS
        squashed = self._sigmoid_taken_of(subject) if meaning in (SCORES, UNKNOWN) else 0
        if squashed:
            # probs = torch.sigmoid(outputs); outputs > threshold: half-migrated, the probabilities were meant
            self.report(
                node, "threshold-on-logits",
                f"{ast.unparse(subject)} holds raw logits (line {squashed} takes their sigmoid): a probability "
                f"threshold ({ast.unparse(threshold)}) on them decides at a probability of sigmoid(threshold), "
                "not at the threshold",
                f"threshold the sigmoid probabilities of line {squashed} instead (or compare the logits with 0 "
                "for a 0.5 threshold)",
                squashed,
            )
        elif meaning == LOGITS:
            self.report(
                node, "threshold-on-logits",
                f"{ast.unparse(subject)} holds raw logits: a probability threshold ({ast.unparse(threshold)}) "
                "on them decides at a probability of sigmoid(threshold), not at the threshold",
                f"threshold probabilities: torch.sigmoid({ast.unparse(subject)}) > {ast.unparse(threshold)}",
                value.line,
            )
        elif meaning == SOFTMAX:
            self.report(
                node, "threshold-on-softmax",
                "a threshold on softmax probabilities: they sum to 1 over the classes, so at most one label "
                "can pass 0.5 and several labels push each other down",
                "threshold torch.sigmoid(logits), one independent probability per label",
                value.line,
            )

    def _sigmoid_taken_of(self, subject: ast.AST) -> int:
        """The line where the enclosing function binds ``torch.sigmoid(subject)`` to another name:
        ``subject`` is what the sigmoid squashes, the logits."""
        function = self.analysis.function
        if function is None or not isinstance(subject, ast.Name):
            return 0
        for statement in ast.walk(function):
            if not (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call)):
                continue
            call = statement.value
            if tables.row_for(self.analysis.qualified(call.func)) is tables.row_for("torch.sigmoid"):
                squashed = call.args[0] if call.args else None
            elif isinstance(call.func, ast.Attribute) and call.func.attr == "sigmoid" and not call.args:
                squashed = call.func.value
            else:
                continue
            if isinstance(squashed, ast.Name) and squashed.id == subject.id and not any(
                isinstance(target, ast.Name) and target.id == subject.id for target in statement.targets
            ):
                return statement.lineno
        return 0

    def _fed_to_logits_loss_here(self, subject: ast.AST) -> bool:
        """Whether the enclosing function passes this name to a BCE-with-logits loss: then it holds logits."""
        function = self.analysis.function
        if function is None or not isinstance(subject, ast.Name):
            return False
        names = self._fed_to_logits_loss.get(function)
        if names is None:
            names = self._fed_to_logits_loss[function] = {
                call.args[0].id
                for call in ast.walk(function)
                if isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Name)
                and self._is_logits_criterion(call.func)
            }
        return subject.id in names

    def _soft_target_product(self, node: ast.BinOp) -> None:
        """``-target * F.log_softmax(x, -1)``: cross-entropy against soft targets, written out."""
        left, right = self.analysis.value(node.left), self.analysis.value(node.right)
        for scores, other, other_node in ((left, right, node.right), (right, left, node.left)):
            if scores.meaning != LOG_PROB or isinstance(other_node, ast.Constant) or other.meaning in (LOG_PROB, SCORES, LOGITS):
                continue
            if not (self._is_parameter(other_node) or self._read_from_parameter(other_node)):
                continue  # a soft target passed in (forward(self, x, target)), not a prior of the module
            self.report(
                node, "soft-target-cross-entropy",
                "a target times log_softmax over the classes: a hand-written (soft-target) cross-entropy, "
                "one label per image however the target is mixed",
                "use BCEWithLogitsLoss (timm.loss.BinaryCrossEntropy) on the logits with float multi-hot targets",
                scores.line,
            )
            return

    def _read_from_parameter(self, node: ast.AST) -> bool:
        """A local name bound to an item of a parameter: ``target = batch["targets"]`` in
        ``forward(self, outputs, batch)``."""
        while isinstance(node, ast.UnaryOp):
            node = node.operand
        if not isinstance(node, ast.Name) or self.analysis.function is None:
            return False
        return any(
            isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == node.id
            and isinstance(statement.value, ast.Subscript) and self._is_parameter(statement.value.value)
            for statement in ast.walk(self.analysis.function)
        )

    def _is_parameter(self, node: ast.AST) -> bool:
        while isinstance(node, (ast.UnaryOp, ast.Call, ast.Attribute)):
            node = node.operand if isinstance(node, ast.UnaryOp) else node.func if isinstance(node, ast.Call) else node.value
        function = self.analysis.function
        if function is None or not isinstance(node, ast.Name):
            return False
        arguments = function.args
        return node.id != "self" and node.id in {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}

    # -- returns and models

    def _model_computes_loss(self, statement: ast.Assign) -> None:
        """``loss = model(x, y)`` where the model's class comes from a module outside the run, in a
        file whose other losses are BCE: the model's own loss was not migrated with them."""
        call = statement.value
        if not self.multi_label_training or len(statement.targets) != 1 or not isinstance(call, ast.Call):
            return
        target = statement.targets[0]
        if not (isinstance(target, ast.Name) and "loss" in target.id.lower()) or len(call.args) < 2:
            return
        callee = self.analysis.key(call.func).rpartition(".")[2] or (call.func.id if isinstance(call.func, ast.Name) else "")
        if not sources.is_model_callee(callee) or not self._labels(call.args[1]):
            return
        origins = self._model_classes()
        facts = current_facts()
        run = set(facts.run_modules) if facts is not None else set()
        if not origins or "" in origins.values() or any(module.rpartition(".")[2] in run for module in origins.values()):
            return  # a class of this file or of the run: its own loss is migrated (or reported) there
        built = ", ".join(f"{name} from {module}" for name, module in sorted(origins.items()))
        self.report(
            statement, "single-label-loss",
            f"the model computes its own loss from the labels ({ast.unparse(call)}): its class ({built}) is not in "
            "this run, so that loss was not migrated with this file's BCE; a CrossEntropyLoss in its forward still "
            "trains one label per image",
            "make the model return logits and compute nn.BCEWithLogitsLoss()(logits, y.float()) here, or rewrite "
            "the model's module in the same run",
        )

    def _model_classes(self) -> dict[str, str]:
        """The classes the file builds its model from (``model = VisionTransformer(...)``), with
        the module each is imported from ("" for a class of this file)."""
        if self._built_models is None:
            self._built_models = {}
            for node in ast.walk(self.analysis.tree):
                if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)):
                    continue
                if not any(sources.is_model_callee(self.analysis.key(t).rpartition(".")[2]) for t in node.targets):
                    continue
                name = node.value.func.id
                wrapped = node.value.args[:1]
                if wrapped and sources.is_model_callee(self.analysis.key(wrapped[0]).rpartition(".")[2]):
                    continue  # ``model = DDP(model)``: a wrapper around the model built elsewhere
                if name in self.analysis.modules:
                    self._built_models[name] = ""
                elif name in self.analysis.imports and name[:1].isupper():
                    module = self.analysis.imports[name].rpartition(".")[0]
                    if module.partition(".")[0] not in _LIBRARIES:
                        self._built_models[name] = module
        return self._built_models

    def _returned(self, statement: ast.Return) -> None:
        function = self.analysis.function
        if function is not None and sources.is_model_callee(function.name) and statement.value is not None:
            returned = self.analysis.value(statement.value)
            if returned.meaning == SOFTMAX:
                self.report(
                    statement, "softmax-class-dim",
                    f"{function.name}() is the model and returns softmax probabilities: the labels compete for one "
                    "unit of probability, and a BCE-with-logits loss or a sigmoid applied to them is wrong",
                    f"return the raw scores from {function.name}(); apply torch.sigmoid where probabilities are needed",
                    returned.line,
                )
            return
        if function is not None and function.name != "__getitem__" and statement.value is not None:
            self._one_hot_helper(function, statement.value)
        if function is None or function.name != "__getitem__":
            return
        facts = current_facts()
        if facts is not None and facts.binary_run:
            return  # one 0/1 number per image is the label of a one-output binary classifier
        for item, value, name in sources.returned_labels(statement.value, self.analysis.value):
            why = sources.class_index_label(name, value)
            if why and not _made_integer_tensor(function, item):
                self.report(
                    statement, "class-index-source",
                    f"the dataset returns {ast.unparse(item)} as the label: {why}",
                    "return a float multi-hot tensor of shape [C] (1.0 for each label of the image)",
                    value.line,
                )
                return

    def _eye_rows(self, statement: ast.Assign) -> None:
        """``self.labels = np.eye(C)[self.labels]``: rows of the identity picked by class indices, a
        one-hot of one class per sample."""
        value = statement.value
        if not (isinstance(value, ast.Subscript) and isinstance(value.value, ast.Call)):
            return
        if self.analysis.qualified(value.value.func) not in _EYE:
            return
        picked = self.analysis.value(value.slice)
        if picked.meaning == CONTAINER and picked.element is not None:
            picked = picked.element
        if picked.meaning not in (CLASS_INDEX, INT) and not LABEL_LIKE.search(_column_name(value.slice)):
            return
        self.report(
            value, "one-hot-target",
            f"{ast.unparse(value)} picks one row of the identity per sample: a one-hot of its one class index",
            "use the float multi-hot [N, C] labels themselves (a row may hold several 1.0)",
            picked.line,
        )

    def _random_class_indices(self, statement: ast.Assign) -> None:
        """``lb = torch.randint(0, 10, (20,))``: demo or test labels drawn as one class index per
        sample (a [N] shape), where the file trains or evaluates with a loss."""
        value = statement.value
        if (
            isinstance(value, ast.Call) and len(value.args) == 1
            and self.analysis.qualified(value.func) == "torch.autograd.Variable"
        ):
            value = value.args[0]
        if not isinstance(value, ast.Call):
            return
        size = self._random_fill_size(value)
        if size is None and self.analysis.qualified(value.func) not in _RANDINT:
            return
        names = [_column_name(target) for target in statement.targets]
        if not any(LABEL_LIKE.search(name) or name in ("lb", "lbs") for name in names):
            return
        if size is None:
            size = next((k.value for k in value.keywords if k.arg == "size"), value.args[2] if len(value.args) > 2 else None)
        if not (isinstance(size, (ast.Tuple, ast.List)) and len(size.elts) == 1) or not self._has_loss:
            return
        self.report(
            value, "class-index-source",
            f"{ast.unparse(value)} draws one class index per sample as the labels: one label per image",
            f"draw multi-hot labels: (torch.rand({ast.unparse(size.elts[0])}, num_classes) > 0.5).float()",
        )

    def _random_fill_size(self, value: ast.Call) -> ast.Tuple | None:
        """``torch.LongTensor(3).random_(5)``: the shape ``(3,)`` of an integer tensor filled with
        class indices below a bound."""
        func = value.func
        if not (isinstance(func, ast.Attribute) and func.attr == "random_" and value.args):
            return None
        made = func.value
        if not (isinstance(made, ast.Call) and self.analysis.qualified(made.func) in _INDEX_TENSORS):
            return None
        if not made.args or any(isinstance(size, (ast.List, ast.Tuple, ast.Starred)) for size in made.args):
            return None  # ``torch.LongTensor([1, 2])`` holds data, not a shape
        return ast.Tuple(elts=list(made.args), ctx=ast.Load())

    def _mixed_class_indices(self, statement: ast.Assign) -> None:
        """``target = rate * target + (1 - rate) * self.labels[ix]``: mixup, FMix or CutMix written
        over class indices (a weighted sum of two class numbers is no label of either image)."""
        value = statement.value
        if not (isinstance(value, ast.BinOp) and isinstance(value.op, ast.Add)):
            return
        terms = (value.left, value.right)
        if not all(isinstance(term, ast.BinOp) and isinstance(term.op, ast.Mult) for term in terms):
            return
        meanings = [self.analysis.value(term).meaning for term in terms]
        if not all(meaning in (CLASS_INDEX, INT) for meaning in meanings):
            return
        if not any(LABEL_LIKE.search(ast.unparse(target)) for target in statement.targets):
            return
        self.report(
            value, "class-index-target",
            f"{ast.unparse(value)} mixes two class indices (mixup, FMix or CutMix written for one label per image): "
            "the weighted sum of two class numbers is no label of either image",
            "mix the float multi-hot [C] rows of both images with the same weight: rate * y + (1 - rate) * y_other",
            self.analysis.value(terms[0]).line,
        )

    def _one_hot_helper(self, function: ast.FunctionDef | ast.AsyncFunctionDef, returned: ast.AST) -> None:
        """``def one_hot_embedding(labels, n): return torch.eye(n)[labels]``: a helper that encodes
        the class index of each sample, given as a label-named parameter, as a one-hot row."""
        if self.analysis.value(returned).meaning != ONE_HOT:
            return
        parameters = {a.arg for a in (*function.args.posonlyargs, *function.args.args)}
        encoded = [n.id for n in ast.walk(returned) if isinstance(n, ast.Name) and n.id in parameters and LABEL_LIKE.search(n.id)]
        if not encoded:
            return
        self.report(
            returned, "one-hot-target",
            f"{function.name}() encodes the class index of each sample ({encoded[0]}) as a one-hot row: one class per image",
            f"pass the float multi-hot [B, C] labels where {function.name}() is called, not one-hot rows of one class",
        )

    def _one_hot_helper_call(self, node: ast.Call) -> None:
        """A call of a one-hot helper of this file or, in a file that builds a criterion, of another
        file of the run on labels (``y = one_hot_embedding(labels, 10)``). Elsewhere the loss call
        given the helper's one-hot reports it (``criterion(outputs, y, ...)`` of a passed-in criterion)."""
        func = node.func
        if not (isinstance(func, ast.Name) and node.args):
            return
        if self._names_a_loss and self.analysis.returns_run_one_hot(func):
            summary = self.analysis.value(node)
        else:
            summary = self.analysis.returns.get(("", func.id)) if func.id in self.analysis.defined else None
        label = node.args[0]
        if summary is None or summary.meaning != ONE_HOT or not LABEL_LIKE.search(ast.unparse(label)):
            return
        if self._is_loss_target_here(node):
            return  # the loss reports its one-hot target
        self.report(
            node, "one-hot-target",
            f"{func.id}() makes one-hot rows of the class indices {ast.unparse(label)}: one class per image",
            "use the float multi-hot [B, C] labels themselves (several 1.0 per row)",
            summary.line,
        )

    def _is_loss_target_here(self, node: ast.Call) -> bool:
        return any(
            isinstance(other, ast.Call) and other is not node and self._is_loss_call(other)
            and any(inner is node for inner in ast.walk(other))
            for other in _own_nodes(self._statement)
        ) if self._statement is not None else False

    def _relu_head(self, statement: ast.Assign) -> None:
        """``self.classifier = nn.Sequential(nn.Linear(d, C), nn.ReLU())``: logits never below 0."""
        call = statement.value
        if not self._classification_training or not isinstance(call, ast.Call) or not self._ends_in_relu(call):
            return
        names = [self.analysis.key(target).rpartition(".")[2] for target in statement.targets]
        if not any(HEAD.match(name) or (sources.is_model_callee(name) and not _FEATURES.search(name)) for name in names):
            return  # a backbone or encoder ending in ReLU feeds a head: its features may be non-negative
        self._report_relu(call.args[-1])

    def _ends_in_relu(self, call: ast.Call) -> bool:
        """``nn.Sequential(..., nn.Linear(d, C), nn.ReLU())``."""
        if not self.analysis.qualified(call.func).endswith("Sequential") or len(call.args) < 2:
            return False
        last, before = call.args[-1], call.args[-2]
        return (
            isinstance(last, ast.Call) and self.analysis.qualified(last.func).endswith(("ReLU", "ReLU6"))
            and isinstance(before, ast.Call) and self.analysis.qualified(before.func).endswith("Linear")
        )

    def _report_relu(self, node: ast.AST) -> None:
        if any(sink.node is node and sink.kind == "model-output-relu" for sink in self.found):
            return  # the head's ReLU, reached both from its assignment and from ``forward``
        self.report(
            node, "model-output-relu",
            "the model's last op is a ReLU: its logits are never below 0, so sigmoid(logits) is never below 0.5 "
            "and every label is predicted",
            "end the model with the Linear layer (raw logits); apply torch.sigmoid where probabilities are needed",
        )

    def forward_return(self, statement: ast.Return) -> None:
        """``return F.relu(self.fc(x))`` in ``forward``, also through the returned name (``x =
        torch.relu(self.l2(x)); return x``) and through a layer ending in ReLU (``return self.layer3(x)``
        with ``self.layer3 = nn.Sequential(nn.Linear(h, C), nn.ReLU(True))``)."""
        value = statement.value
        function = self.analysis.function
        if not self._classification_training or function is None or self.analysis.class_name in self._feeding_heads():
            return
        if isinstance(value, ast.Name):
            value = sources.last_assigned(function, value.id, statement)
        if not isinstance(value, ast.Call) or len(value.args) != 1:
            return
        layers = sources.class_layers(self.analysis.tree).get(self.analysis.class_name, {})
        layer = sources.self_layer(value.func)
        if layer is not None and layer in layers and self._ends_in_relu(layers[layer]):
            self._report_relu(layers[layer].args[-1])
            return
        func = value.func
        relu = self.analysis.qualified(func) in ("torch.relu", "torch.nn.functional.relu") or (
            isinstance(func, ast.Attribute) and self.analysis.key(func) in ("self.relu", "self.act")
        )
        inner = value.args[0]
        layer = sources.self_layer(inner.func) if relu and isinstance(inner, ast.Call) else None
        if layer is not None and (HEAD.match(layer) or layer == _last_linear(layers, self.analysis.qualified)):
            self._report_relu(value)

    def _feeding_heads(self) -> set[str]:
        """The classes built as a layer of another class of the file that builds a ``Linear``
        (``self.encoder = Encoder()`` beside ``self.fc``): their output is features for that head."""
        feeding: set[str] = set()
        for owner, layers in sources.class_layers(self.analysis.tree).items():
            built = {_name_of(call.func) for call in layers.values()}
            if any(self.analysis.qualified(call.func).endswith(("Linear", "LazyLinear")) for call in layers.values()):
                feeding |= built - {owner}
        return feeding


def _name_of(node: ast.AST) -> str:
    """``Encoder`` of ``Encoder`` or ``models.Encoder``."""
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _last_linear(layers: dict[str, ast.Call], qualified: Callable[[ast.AST], str]) -> str | None:
    """The name of the class's last-built ``Linear`` layer: the one that gives the model its outputs."""
    linear = [
        (call.lineno, call.col_offset, name) for name, call in layers.items()
        if qualified(call.func).endswith(("Linear", "LazyLinear"))
    ]
    return max(linear)[2] if linear else None


_CLASS_COUNTS = frozenset({"numpy.bincount", "torch.bincount", "numpy.unique", "torch.unique"})
_PASS_ATTRIBUTES = frozenset({"values", "data", "numpy", "cpu", "tolist", "to_numpy"})


def _unwrapped_scalar(node: ast.AST) -> ast.AST:
    """``label`` of ``int(label)`` or ``label.item()``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "int" and len(node.args) == 1:
        return node.args[0]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "item" and not node.args:
        return node.func.value
    return node


def _column_name(node: ast.AST) -> str:
    """What ``train_df.label.values``, ``df["label"].to_numpy()`` or ``labels.cpu()`` is named: ``label``, ``labels``."""
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _PASS_ATTRIBUTES:
            node = node.func.value
        elif isinstance(node, ast.Attribute) and node.attr in _PASS_ATTRIBUTES:
            node = node.value
        else:
            break
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return node.id if isinstance(node, ast.Name) else ""


_INTEGER_TENSOR = re.compile(r"\.long\(\)|LongTensor|\.long\b|int64|\.int\(\)")


def _made_integer_tensor(function: ast.FunctionDef | ast.AsyncFunctionDef, item: ast.AST) -> bool:
    """The returned label is built as an integer tensor in ``__getitem__`` (``label =
    torch.tensor(y).long()``): ML101 reports that construction."""
    if _INTEGER_TENSOR.search(ast.unparse(item)):
        return True
    if not isinstance(item, ast.Name):
        return False
    return any(
        isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == item.id for t in node.targets)
        and _INTEGER_TENSOR.search(ast.unparse(node.value)) is not None
        for node in ast.walk(function)
    )


def _int_to_int(mapping: ast.Dict) -> bool:
    return bool(mapping.keys) and all(
        isinstance(part, ast.Constant) and type(part.value) is int for part in (*mapping.keys, *mapping.values)
    )


_LABEL_TARGET = re.compile(r"label|target|^y(_|$)|class|categor", re.IGNORECASE)
_LABEL_COLUMN_KEY = re.compile(r"label|target|class|categor|(?:^|_)(?:index|idx|id)$", re.IGNORECASE)


def _looks_up_position(body: ast.AST) -> bool:
    """``classes.index(c)``, ``class_to_idx[c]``: the position of one class name."""
    if isinstance(body, ast.Call) and isinstance(body.func, ast.Attribute) and body.func.attr == "index":
        return len(body.args) == 1
    if isinstance(body, ast.Subscript):
        return bool(sources.CLASS_INDEX_MAP.search(ast.unparse(body.value).rpartition(".")[2]))
    return False


_LIBRARIES = frozenset(
    {"torch", "torchvision", "timm", "transformers", "pytorch_lightning", "lightning", "monai", "apex", "accelerate"}
)
"""Model classes from these take no labels in ``forward`` (Hugging Face's ``labels=`` is ML005's)."""
_HAND_WRITTEN = {
    hand_losses.DIRICHLET: "a Dirichlet over the classes (lgamma/digamma of alpha summed over the class dimension)",
    hand_losses.CATEGORICAL: "a categorical cross-entropy written out, -sum(y * log(p)) with no (1 - y) * log(1 - p) term",
}
_WHY = {
    hand_losses.DIRICHLET: "an evidential loss whose classes compete for one unit of belief (fed one-hot targets), "
    "one label per image",
    hand_losses.CATEGORICAL: "it scores the probability of the one true class, one label per image",
}
_ADVICE = {
    hand_losses.DIRICHLET: "for multi-label targets give each label its own Beta/Bernoulli: nn.BCEWithLogitsLoss() on "
    "the logits with float multi-hot [B, C] targets (keep the Dirichlet only if the classes are exclusive)",
    hand_losses.CATEGORICAL: "score each label on its own: -(y * log(p) + (1 - y) * log(1 - p)) on sigmoid probabilities, "
    "or nn.BCEWithLogitsLoss() on the logits",
}


def _argument(node: ast.Call, position: int, keywords: tuple[str, ...]) -> ast.AST | None:
    if len(node.args) > position and not any(isinstance(a, ast.Starred) for a in node.args[: position + 1]):
        return node.args[position]
    return next((k.value for k in node.keywords if k.arg in keywords), None)


def _is_float_cast(target: ast.AST) -> bool:
    for node in ast.walk(target):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _CAST_METHODS:
            return True
        if isinstance(node, ast.Attribute) and node.attr in _FLOAT_DTYPES and ast.unparse(node.value) == "torch":
            return True
    return False


def _is_column(node: ast.AST) -> bool:
    """``x.view(-1, 1)``, ``x.unsqueeze(1)``, ``x[:, None]``: one index per row, as a column."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        arguments = [ast.unparse(a) for a in node.args]
        if node.func.attr in ("view", "reshape") and arguments == ["-1", "1"]:
            return True
        if node.func.attr == "unsqueeze" and arguments in (["1"], ["-1"]):
            return True
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
        return [ast.unparse(e) for e in node.slice.elts] == [":", "None"]
    return False


def _own_nodes(statement: ast.stmt):
    """The expressions of ``statement`` itself: not the statements it holds, nor nested functions."""
    stack: list[ast.AST] = []
    for name, field in ast.iter_fields(statement):
        if name in _COMPOUND_FIELDS or name in ("decorator_list", "returns", "args"):
            continue
        if isinstance(field, list):
            stack.extend(item for item in field if isinstance(item, ast.AST))
        elif isinstance(field, ast.AST):
            stack.append(field)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Lambda, ast.stmt)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))
