"""Where a file's training and evaluation code lives, and how to call it.

The locator reads a file with the same LibCST analysis the rules use (:class:`LossFlowProvider`
for loss calls and the criteria behind them) and produces a plan the harness can execute
without importing migrate-ml: which module-level functions to call, the role of each
parameter, the criterion a ``criterion`` parameter should receive, which ``args.X`` attributes
and batch keys the function reads, and what it returns.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from migrate_ml.engine.source import SourceError
from migrate_ml.rules.semantics.flow import LossConstruction, LossFlowProvider
from migrate_ml.verify.builds import BuildSites, literal_kwargs
from migrate_ml.verify.trainer_call import trainer_settings

# Parameter name -> role. Exact names first, then the patterns below.
ROLE_NAMES: dict[str, str] = {
    **dict.fromkeys(("model", "net", "network", "classifier", "vit", "backbone", "module"), "model"),
    **dict.fromkeys(("optimizer", "optim", "opt", "optimiser"), "optimizer"),
    **dict.fromkeys(("device", "dev"), "device"),
    **dict.fromkeys(("epoch", "epoch_idx", "epoch_num", "cur_epoch", "current_epoch", "ep", "epoch_index"), "epoch"),
    **dict.fromkeys(("criterion", "loss_fn", "loss_func", "loss_function", "lossfn", "loss_fun", "criteria",
                     "loss_fcn", "loss_module"), "criterion"),
    **dict.fromkeys(("args", "opts", "cfg", "config", "hparams", "hp", "flags"), "args"),
    **dict.fromkeys(("dl", "train_dl", "val_dl", "valid_dl", "test_dl", "data_iter", "batches"), "loader"),
    **dict.fromkeys(("output", "outputs", "logits", "preds", "pred", "y_pred", "scores", "predictions"), "logits"),
    **dict.fromkeys(("target", "targets", "labels", "label", "y", "y_true", "gt"), "labels"),
    **dict.fromkeys(("threshold", "thresh", "thr"), "threshold"),
    **dict.fromkeys(("num_classes", "n_classes", "nb_classes", "num_labels"), "num_classes"),
    **dict.fromkeys(("class_names", "classes", "class_indict", "labels_list"), "class_names"),
    **dict.fromkeys(("scaler", "loss_scaler", "grad_scaler"), "scaler"),
    **dict.fromkeys(("scheduler", "lr_scheduler", "sched"), "scheduler"),
    **dict.fromkeys(("print_freq", "log_interval", "log_freq", "print_every"), "print_freq"),
    **dict.fromkeys(("max_norm", "clip_grad", "grad_clip"), "max_norm"),
    **dict.fromkeys(("mixup_fn", "mixup"), "mixup_fn"),
    **dict.fromkeys(("model_ema", "ema"), "model_ema"),
    **dict.fromkeys(("log_writer", "writer", "tb_writer", "summary_writer", "logger"), "log_writer"),
    **dict.fromkeys(("use_amp", "amp", "fp16"), "use_amp"),
    **dict.fromkeys(("accelerator", "accel"), "accelerator"),
    **dict.fromkeys(("img_path", "image_path", "image_file", "img_file", "image_filename", "path_to_image", "image",
                     "img"), "image_path"),
    "dry_run": "dry_run",
    "verbose": "verbose",
    "batch_idx": "batch_idx",
}
ROLE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"loader|dataloader"), "loader"),
    (re.compile(r"(_model|_net)$"), "model"),
    (re.compile(r"optimizer$"), "optimizer"),
    (re.compile(r"criterion"), "criterion"),
)
ROLES = frozenset(ROLE_NAMES.values())

_PREDICTION_CALLS = frozenset({
    "sigmoid", "expit", "softmax", "log_softmax", "argmax", "topk",
    # metric code (a Hugging Face compute_metrics in NumPy/sklearn) that must not go unchecked either
    "accuracy_score", "f1_score", "precision_score", "recall_score", "fbeta_score", "jaccard_score", "hamming_loss",
    "average_precision_score", "roc_auc_score", "precision_recall_fscore_support", "classification_report",
})
MODEL_FACTORY = re.compile(r"^(create|build|get|make|init|load)_?(\w+_)?(model|net|network|classifier|vit)$", re.I)
"""Module-level functions that build the model (``create_model(num_classes)``): checked like model classes."""
_METRIC_FUNCTION = re.compile(r"acc|metric|score|exact|f1|precision|recall|hamming", re.I)
_THRESHOLD_CONSTANT = re.compile(r"^(MULTILABEL_)?THRESHOLD(_\d+)?$")
_CLASS_COUNT = re.compile(r"^(NUM_CLASSES|N_CLASSES|NB_CLASSES|NUM_LABELS|num_classes|n_classes|num_labels|CLASSES|"
                          r"CLASS_NAMES|classes|class_names|LABELS|labels)$")


def role_of(name: str) -> str | None:
    if name in ROLE_NAMES:
        return ROLE_NAMES[name]
    for pattern, role in ROLE_PATTERNS:
        if pattern.search(name):
            return role
    return None


@dataclass
class Bind:
    """``--bind name=value``: a role (``@loader``) or a Python literal, for a parameter or ``args.attr``;
    or, for a class, the function that builds it (``--bind LitModel='make_model()'``)."""

    name: str
    role: str | None = None
    value: object = None
    factory: str | None = None


@dataclass
class FunctionPlan:
    name: str
    line: int
    params: list[dict]
    trains: bool
    criterion: dict | None
    args_attributes: list[str]
    args_values: dict[str, object]
    batch_keys: list[str]
    returns: list[str]
    return_line: int | None
    unbound: list[str] = field(default_factory=list)
    """Required parameters with no role and no bind: the function cannot be called."""
    hf_model: bool = False
    numpy_inputs: bool = False
    predicts: bool = False
    """Classifies the image file it is given: what it returns must hold every label above the threshold."""

    def to_spec(self) -> dict:
        return {
            "name": self.name,
            "predicts": self.predicts,
            "numpy_inputs": self.numpy_inputs,
            "hf_model": self.hf_model,
            "line": self.line,
            "params": self.params,
            "trains": self.trains,
            "criterion": self.criterion,
            "args_attributes": self.args_attributes,
            "args_values": self.args_values,
            "batch_keys": self.batch_keys,
            "returns": self.returns,
            "return_line": self.return_line,
        }


LIGHTNING_STEPS = ("training_step", "validation_step", "test_step")


@dataclass
class ClassPlan:
    """A class verify builds from sample arguments, then drives: a ``LightningModule`` (its steps,
    with the optimizers of ``configure_optimizers``) or a plain trainer class (its methods)."""

    name: str
    line: int
    kind: str
    """``lightning`` or ``trainer``."""
    init: FunctionPlan
    """``__init__``'s parameters (``self`` left out); an empty plan when the class has none."""
    methods: list[FunctionPlan]
    """Trainer: the methods to call. Lightning: the steps it defines, in training order."""
    batch_keys: list[str] = field(default_factory=list)
    factory: str | None = None
    """``--bind CLASS='FUNCTION()'``: built by calling FUNCTION (of the file, or a dotted import path)."""

    @property
    def unbound(self) -> list[str]:
        return self.init.unbound + [name for method in self.methods for name in method.unbound]

    def to_spec(self) -> dict:
        return {"name": self.name, "line": self.line, "kind": self.kind, "init": self.init.to_spec(), "factory": self.factory,
                "methods": [m.to_spec() for m in self.methods], "batch_keys": self.batch_keys}


@dataclass
class FilePlan:
    path: str
    functions: list[FunctionPlan] = field(default_factory=list)
    classes: list[ClassPlan] = field(default_factory=list)
    model_classes: list[str] = field(default_factory=list)
    uncovered: list[tuple[int, str]] = field(default_factory=list)
    """Loss or prediction code outside any callable function: (line, where)."""
    threshold: float | None = None
    from_pretrained: bool = False
    """The file calls ``from_pretrained``: the harness builds Hugging Face models offline and checks ``problem_type``."""
    num_classes: int | None = None
    """The file's own class count (``NUM_CLASSES = 20``, ``classes = [...]``): sample data gets as many labels."""
    trainer: dict | None = None
    """The settings of the file's Lightning ``Trainer(...)`` call (see :mod:`.trainer_call`)."""
    constructions: list[dict] = field(default_factory=list)

    @property
    def callable_functions(self) -> list[FunctionPlan]:
        return [f for f in self.functions if not f.unbound]

    @property
    def callable_classes(self) -> list[ClassPlan]:
        return [c for c in self.classes if not c.unbound]

    @property
    def runnable(self) -> bool:
        return bool(self.callable_functions or self.callable_classes or self.model_classes or self.from_pretrained)


def locate(path: str, text: str, binds: dict[str, Bind]) -> FilePlan:
    """Plan the dynamic pass for one file; :class:`SourceError` with its position when it does not parse."""
    module = parse(path, text)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    sites = BuildSites()
    wrapper.visit(sites)
    visitor = _Collector(path, binds, sites)
    wrapper.visit(visitor)
    visitor.plan.from_pretrained = ".from_pretrained(" in text
    if "Trainer(" in text:
        visitor.plan.trainer = trainer_settings(text)
    return visitor.plan


class _Collector(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (LossFlowProvider, ParentNodeProvider, PositionProvider)

    def __init__(self, path: str, binds: dict[str, Bind], sites: BuildSites) -> None:
        super().__init__()
        self.plan = FilePlan(path=path)
        self.binds = binds
        self.sites = sites
        self._buildable: set[str] = set()
        self._sequences: dict[str, int] = {}
        """Module-level list and tuple literals by name, with their lengths (for ``len(CATEGORIES)``)."""

    def leave_Module(self, original_node: cst.Module) -> None:
        # Metadata is only resolvable while the wrapper's visit runs, so the plan is built here.
        module = original_node
        flow = self.get_metadata(LossFlowProvider, module)
        self.plan.constructions = [_criterion_spec(c, self.plan.path, self._line(c.call)) for c in flow.constructions]
        for statement in module.body:
            self._module_statement(statement, module)
        if self.plan.num_classes is None and self.sites.head_counts:
            counts = self.sites.head_counts
            self.plan.num_classes = max(counts, key=counts.count)
        self._buildable = {
            *(n.name.value for n in module.body if isinstance(n, cst.ClassDef) and _is_module_subclass(n, module)),
            *(n.name.value for n in module.body if isinstance(n, cst.FunctionDef) and MODEL_FACTORY.match(n.name.value)),
        }
        functions = {f.name: f for f in module.body if isinstance(f, cst.FunctionDef)}
        classes = {c.name.value: c for c in module.body if isinstance(c, cst.ClassDef)}
        loss_sites: dict[str, list] = {}
        method_sites: dict[tuple[str, str], list] = {}
        loose_losses = []
        for loss_call in flow.calls:
            owner = self._top_level_function(loss_call.call)
            method = self._method_of(loss_call.call)
            if owner is not None and owner.name.value != "main":
                loss_sites.setdefault(owner.name.value, []).append(loss_call)
            elif method is not None:
                method_sites.setdefault(method, []).append(loss_call)
                loose_losses.append((loss_call.call, owner))
            else:
                loose_losses.append((loss_call.call, owner))
        for name, function in functions.items():
            plan = self._function_plan(function, loss_sites.get(name, []), module)
            if plan is not None:
                self.plan.functions.append(plan)
        for name, node in classes.items():
            plan = self._class_plan(node, method_sites, module)
            if plan is not None:
                self.plan.classes.append(plan)
        planned = {c.name for c in self.plan.classes}
        for call, owner in loose_losses:
            if (self._method_of(call) or ("", ""))[0] not in planned:
                self.plan.uncovered.append((self._line(call), self._where(call, owner, "loss")))
        covered = {f.name for f in self.plan.functions}
        for call in _PredictionCalls.find(module):
            owner = self._top_level_function(call)
            if owner is None or owner.name.value not in covered:
                if not self._inside_class(call):
                    self.plan.uncovered.append((self._line(call), self._where(call, owner, "prediction")))
        self.plan.uncovered.sort()

    # -- classes

    def _class_plan(self, node: cst.ClassDef, method_sites: dict, module: cst.Module) -> ClassPlan | None:
        methods = {m.name.value: m for m in node.body.body if isinstance(m, cst.FunctionDef)}
        init = methods.get("__init__")
        bind = self.binds.get(node.name.value)
        factory = bind.factory if bind is not None else None
        init_plan = (self._function_plan(init, [], module, method=True, always=True, callee=node.name.value)
                     if init is not None and not factory
                     else FunctionPlan(name="__init__", line=self._line(node), params=[], trains=False, criterion=None,
                                       args_attributes=[], args_values={}, batch_keys=[], returns=[], return_line=None))
        if _is_lightning_module(node, module):
            steps = [self._function_plan(methods[name], method_sites.get((node.name.value, name), []), module,
                                         method=True, always=True, step=True)
                     for name in LIGHTNING_STEPS if name in methods]
            if not steps:
                return None
            keys = sorted({key for step in steps for key in step.batch_keys})
            return ClassPlan(node.name.value, self._line(node), "lightning", init_plan, steps, keys, factory)
        if _is_module_subclass(node, module) or _is_callback(node, module):
            return None  # a callback runs in the Trainer the file's Trainer(callbacks=[...]) call gives it
        called = []
        for name, method in methods.items():
            if name.startswith("__"):
                continue
            sites = method_sites.get((node.name.value, name), [])
            plan = self._function_plan(method, sites, module, method=True, always=bool(sites) or _predicts(method))
            if plan is not None:
                called.append(plan)
        if not called:
            return None
        return ClassPlan(node.name.value, self._line(node), "trainer", init_plan, called, factory=factory)

    def _method_of(self, node: cst.CSTNode) -> tuple[str, str] | None:
        """(class, method) when ``node`` is inside a method of a module-level class."""
        chain = []
        current = node
        while (current := self.get_metadata(ParentNodeProvider, current, None)) is not None:
            if isinstance(current, (cst.ClassDef, cst.FunctionDef)):
                chain.append(current)
        if len(chain) >= 2 and isinstance(chain[-1], cst.ClassDef) and isinstance(chain[-2], cst.FunctionDef):
            return chain[-1].name.value, chain[-2].name.value
        return None

    # -- module level

    def _module_statement(self, statement: cst.CSTNode, module: cst.Module) -> None:
        if isinstance(statement, cst.FunctionDef) and MODEL_FACTORY.match(statement.name.value):
            self.plan.model_classes.append(statement.name.value)
        if isinstance(statement, cst.ClassDef) and _is_module_subclass(statement, module):
            if any(isinstance(s, cst.FunctionDef) and s.name.value == "forward" for s in statement.body.body):
                self.plan.model_classes.append(statement.name.value)
        if not isinstance(statement, cst.SimpleStatementLine):
            return
        for small in statement.body:
            if not (isinstance(small, cst.Assign) and len(small.targets) == 1
                    and isinstance(small.targets[0].target, cst.Name)):
                continue
            name = small.targets[0].target.value
            try:
                value = ast.literal_eval(module.code_for_node(small.value))
            except (ValueError, SyntaxError):
                value = self._length_of_literal(small.value)
                if value is None:
                    continue
            if isinstance(value, (list, tuple)):
                self._sequences[name] = len(value)
            if _THRESHOLD_CONSTANT.match(name) and isinstance(value, (int, float)) and 0 < value < 1:
                self.plan.threshold = float(value)
            if _CLASS_COUNT.match(name):
                count = len(value) if isinstance(value, (list, tuple)) else value
                if isinstance(count, int) and not isinstance(count, bool) and 2 <= count <= 1000:
                    self.plan.num_classes = count

    def _length_of_literal(self, value: cst.BaseExpression) -> int | None:
        """``len(CATEGORIES)`` where ``CATEGORIES`` is a module-level list or tuple literal."""
        if (isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == "len"
                and len(value.args) == 1 and isinstance(value.args[0].value, cst.Name)):
            return self._sequences.get(value.args[0].value.value)
        return None

    # -- functions

    def _function_plan(self, function: cst.FunctionDef, losses: list, module: cst.Module, *, method: bool = False,
                       always: bool = False, step: bool = False, callee: str | None = None) -> FunctionPlan | None:
        """How to call ``function``; None when it is not training or evaluation code.

        ``method``: ``self`` is left out. ``always``: plan it whatever its parameters.
        ``step``: a Lightning step, whose ``batch`` and ``batch_idx`` the harness supplies.
        ``callee``: the name the file calls it by (a class, for ``__init__``), to build its model and
        optimizer the way those callers do; a module-level function is called by its own name.
        """
        if function.name.value == "main" and not method:
            return None
        params = _parameters(function)[1 if method else 0:]
        roles = {p.name.value: role_of(p.name.value) for p, _ in params}
        if step:
            roles.update({p.name.value: "step_input" for p, _ in params[:2]})
        has = set(roles.values())
        metric_helper = (
            {"logits", "labels"} <= has and "model" not in has and _METRIC_FUNCTION.search(function.name.value)
        ) or _is_hf_compute_metrics(function, params)
        if metric_helper and "logits" not in has:
            roles[params[0][0].name.value] = "eval_prediction"
        predictor = "image_path" in has and _predicts(function)
        if not (losses or {"model", "loader"} <= has or metric_helper or always or predictor):
            return None
        body = _BodyFacts.of(function, {n for n, r in roles.items() if r == "args"})
        callee = callee or (None if method else function.name.value)
        built = self.sites.built_for(callee, [p for p, _ in params], roles, self._buildable) if callee else {}
        specs = []
        unbound = []
        for param, kind in params:
            name = param.name.value
            bind = self.binds.get(name)
            spec: dict = {"name": name, "kind": kind, "optional": param.default is not None}
            if bind is not None and bind.role is None:
                spec.update(role="bound", value=bind.value)
            elif bind is not None:
                spec["role"] = bind.role
            elif roles[name] is not None and not (roles[name] in ("logits", "labels") and not metric_helper):
                spec["role"] = roles[name]
                if name in built:
                    spec["build"] = built[name]
            elif param.default is not None:
                spec["role"] = "default"
            else:
                unbound.append(name)
                continue
            specs.append(spec)
        args_values = {
            b.name.split(".", 1)[1]: b.value for b in self.binds.values() if b.name.startswith("args.") and b.role is None
        }
        return FunctionPlan(
            name=function.name.value,
            line=self._line(function),
            params=specs,
            trains="optimizer" in has or body.trains or function.name.value == "training_step",
            criterion=self._criterion_for(function, losses, roles, module),
            args_attributes=sorted(body.args_attributes | set(args_values)),
            args_values=args_values,
            batch_keys=sorted(body.batch_keys),
            returns=body.returns,
            return_line=self._line(body.return_node) if body.return_node is not None else None,
            unbound=unbound,
            hf_model=body.hf_model,
            numpy_inputs=body.numpy_inputs,
            predicts=predictor and not losses,
        )

    def _criterion_for(self, function, losses, roles, module) -> dict | None:
        if "criterion" not in roles.values():
            return None
        for loss_call in losses:
            func = loss_call.call.func
            if isinstance(func, cst.Name) and roles.get(func.value) == "criterion" and loss_call.constructions:
                return _criterion_spec(loss_call.constructions[0], self.plan.path,
                                       self._line(loss_call.constructions[0].call))
        return None  # the orchestrator falls back to constructions elsewhere in the run

    # -- positions and ownership

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _top_level_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        owner = None
        current = node
        while True:
            parent = self.get_metadata(ParentNodeProvider, current, None)
            if parent is None:
                return owner if isinstance(owner, cst.FunctionDef) else None
            if isinstance(parent, cst.ClassDef):
                owner = parent
            elif isinstance(parent, cst.FunctionDef):
                owner = parent
            current = parent

    def _inside_class(self, node: cst.CSTNode) -> bool:
        current = node
        while current is not None:
            current = self.get_metadata(ParentNodeProvider, current, None)
            if isinstance(current, cst.ClassDef):
                return True
        return False

    def _where(self, node: cst.CSTNode, owner: cst.FunctionDef | None, what: str) -> str:
        if owner is not None and owner.name.value == "main":
            return f"{what} code inside main()"
        if self._inside_class(node):
            return f"{what} code inside a class method"
        if owner is not None:
            return f"{what} code inside {owner.name.value}(), which verify cannot call"
        return f"{what} code at module level"


def parse(path: str, text: str) -> cst.Module:
    """Parse ``text``; a syntax error is a :class:`SourceError` worded and positioned as CPython does."""
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as error:
        try:
            compile(text, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except SyntaxError as python_error:
            raise SourceError(path, f"syntax error: {python_error.msg}", python_error.lineno or 1,
                              python_error.offset or 1) from None
        raise SourceError(path, f"syntax error: {error.message}", error.raw_line, error.raw_column + 1) from None
    except (SyntaxError, ValueError, RecursionError) as error:
        raise SourceError(path, f"cannot parse: {error}") from None


def _parameters(function: cst.FunctionDef) -> list[tuple[cst.Param, str]]:
    p = function.params
    return (
        [(param, "positional_only") for param in p.posonly_params]
        + [(param, "normal") for param in p.params]
        + [(param, "keyword_only") for param in p.kwonly_params]
    )


_EVAL_PREDICTION_PARAMS = frozenset({"eval_pred", "eval_preds", "eval_prediction", "p", "pred", "prediction"})


def _is_hf_compute_metrics(function: cst.FunctionDef, params: list[tuple[cst.Param, str]]) -> bool:
    """A Hugging Face ``compute_metrics(eval_pred)``: one required parameter, an ``EvalPrediction``."""
    required = [p for p, _ in params if p.default is None]
    if len(required) != 1:
        return False
    name = function.name.value
    return name == "compute_metrics" or (
        required[0].name.value in _EVAL_PREDICTION_PARAMS and bool(_METRIC_FUNCTION.search(name))
    )


def _is_lightning_module(node: cst.ClassDef, module: cst.Module) -> bool:
    return any(module.code_for_node(base.value).split(".")[-1] == "LightningModule" for base in node.bases)


def _is_callback(node: cst.ClassDef, module: cst.Module) -> bool:
    """A Lightning ``Callback`` (``class Logger(L.Callback)``, ``(pl.callbacks.Callback)``): its hooks need a Trainer."""
    return any(module.code_for_node(base.value).split(".")[-1] == "Callback" for base in node.bases)


def _predicts(function: cst.FunctionDef) -> bool:
    return bool(_PredictionCalls.find(function))


def _is_module_subclass(node: cst.ClassDef, module: cst.Module) -> bool:
    return any(module.code_for_node(base.value).split(".")[-1].endswith("Module") for base in node.bases)


def _criterion_spec(construction: LossConstruction, path: str, line: int) -> dict:
    return {"qualified_name": construction.qualified_name, "kwargs": literal_kwargs(construction.call), "path": path,
            "line": line}


_BATCH_NAMES = frozenset({"batch", "data", "sample", "inputs", "example", "item"})
"""Names whose string subscripts are batch keys even outside a ``for`` over the loader (a step's ``batch``)."""


class _BodyFacts(cst.CSTVisitor):
    """What a function body reads and returns; nested functions and classes are not its body."""

    def __init__(self, function: cst.FunctionDef, args_names: set[str]) -> None:
        super().__init__()
        self.root = function
        self.args_names = args_names
        self.args_attributes: set[str] = set()
        self.batch_keys: set[str] = set()
        self.trains = False
        self.hf_model = False
        """Reads ``.logits`` or calls with ``**batch``: the function expects a Hugging Face model."""
        self.numpy_inputs = False
        """Calls ``.astype``: a metric helper that expects NumPy arrays."""
        self.returns: list[str] = []
        self._subscripts: list[tuple[str, str]] = []
        self._loop_targets: set[str] = set()
        self.return_node: cst.Return | None = None
        self._module = cst.Module(body=[])

    @classmethod
    def of(cls, function: cst.FunctionDef, args_names: set[str]) -> "_BodyFacts":
        facts = cls(function, args_names)
        function.body.visit(facts)
        batches = facts._loop_targets | _BATCH_NAMES
        facts.batch_keys.update(key for name, key in facts._subscripts if name in batches)
        return facts

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if isinstance(node.value, cst.Name) and node.value.value in self.args_names:
            self.args_attributes.add(node.attr.value)
        if node.attr.value == "logits":
            self.hf_model = True
        if node.attr.value == "astype":
            self.numpy_inputs = True

    def visit_For(self, node: cst.For) -> None:
        if isinstance(node.target, cst.Name):
            self._loop_targets.add(node.target.value)

    def visit_Call(self, node: cst.Call) -> None:
        if any(arg.star == "**" for arg in node.args):
            self.hf_model = True
            self.batch_keys.update(("pixel_values", "labels"))
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("backward", "step"):
            self.trains = True

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
            key = node.slice[0].slice.value
            if (isinstance(key, cst.SimpleString) and isinstance(key.evaluated_value, str)
                    and isinstance(node.value, cst.Name)):
                self._subscripts.append((node.value.value, key.evaluated_value))

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is None:
            return
        self.return_node = node
        value = node.value
        if isinstance(value, (cst.Tuple, cst.List)):
            self.returns = [self._module.code_for_node(e.value) for e in value.elements]
        elif isinstance(value, cst.Dict):
            self.returns = []  # dict results are named by their keys at run time
        else:
            self.returns = [self._module.code_for_node(value)]


class _PredictionCalls(cst.CSTVisitor):
    """Calls of sigmoid/softmax/argmax-like functions and of metric functions anywhere in a module, and the
    logistic written out (``1 / (1 + np.exp(-z))``)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[cst.CSTNode] = []

    @classmethod
    def find(cls, module: cst.CSTNode) -> list[cst.CSTNode]:
        finder = cls()
        module.visit(finder)
        return finder.calls

    def visit_Call(self, node: cst.Call) -> None:
        if _callee_name(node) in _PREDICTION_CALLS:
            self.calls.append(node)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        denominator = node.right
        if (isinstance(node.operator, cst.Divide) and isinstance(node.left, cst.Integer) and node.left.value == "1"
                and isinstance(denominator, cst.BinaryOperation) and isinstance(denominator.operator, cst.Add)
                and any(isinstance(side, cst.Call) and _callee_name(side) == "exp"
                        for side in (denominator.left, denominator.right))):
            self.calls.append(node)


def _callee_name(call: cst.Call) -> str | None:
    func = call.func
    return func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
