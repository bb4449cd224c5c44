"""A file's run as the framework modules see it: the sample arguments of an entry point by parameter
role, the objects built the way the file's caller builds them, and the rows of the loss, loss-falls
and metric checks."""

from __future__ import annotations

import importlib
import math
import os
from typing import Any, Callable

from . import checks_state, checks_threshold
from .budget import Budget
from .checks_state import MetricStates
from .core import (
    BATCH_SIZE,
    CLASS_COUNT_PARAMETER,
    CRITERION_DEFECTS,
    LEARNING_RATE,
    MODEL_DEFECTS,
    ROLE_DEFAULTS,
    LossRecorder,
    args_namespace,
    build_site,
    caller_build,
    class_count_kwargs,
    constant_rate,
    loss_scaler,
    row,
)
from .judge import is_metric_name, judge_metric, loss_failure, reference, returned_numbers
from .sample import Sample, accepted_input


class Unit:
    """One file's run: its spec, the sample it runs on, the recorders, and the rows it has so far.

    ``role_values`` gives the sample value of a parameter role that a framework module supplies
    (``accelerator``, ``eval_prediction``, ``image_path``): ``role_values[role](form, model)``.
    """

    def __init__(self, spec: dict, unit: dict, recorder: LossRecorder, metric_states: MetricStates, sample: Sample,
                 role_values: dict[str, Callable[[str, Any], Any]]) -> None:
        self.spec = spec
        self.unit = unit
        self.path = unit["path"]
        self.threshold = float(unit["threshold"])
        self.epochs = max(1, int(spec["epochs"]))
        self.rows: list[dict] = []
        self.unchecked_models: list[tuple[str, str]] = []
        """Model classes of the file that could not be built from sample arguments, and why."""
        self.built_as: list[str] = []
        """What the current call's model and optimizer are, when built the way the file's caller builds them."""
        self.model_built_at = ""
        """Where the file builds the current call's model (``Net(...) at train.py:40``), when verify built it so."""
        self.recorder = recorder
        self.metric_states = metric_states
        self.sample = sample
        self.role_values = role_values
        self.module: Any = None
        """The imported file."""
        self.budget: Budget | None = None

    def row(self, status: str, check: str, reason: str, **kw) -> None:
        self.rows.append(row(status, check, reason, file=self.path, **kw))

    def entry_callable(self, module, function: dict) -> Callable | None:
        """The function ``function`` names in the user's imported ``module``; None, after a FAIL
        row, when the module has no callable of that name."""
        name = function["name"]
        func = getattr(module, name, None)
        if not callable(func):
            self.row("FAIL", "call", f"{name} is not a callable attribute of the imported module",
                     line=function["line"], function=name)
            return None
        return func

    def build(self, cls: type, spec: dict, positional: list, keywords: dict):
        """An instance of ``cls``: from the ``--bind CLASS='FUNCTION()'`` factory, else from sample arguments."""
        factory = spec.get("factory")
        if not factory:
            return cls(*positional, **keywords)
        module_name, _, attribute = factory.rpartition(".")
        owner = importlib.import_module(module_name) if module_name else self.module
        return getattr(owner, attribute)()

    @staticmethod
    def line_of(obj) -> int | None:
        import inspect

        try:
            return inspect.getsourcelines(obj)[1]
        except (OSError, TypeError):
            return None

    def arguments(self, function: dict, form: str, model, epoch: int, *, factories: bool = False):
        """Sample values for ``function``'s parameters, by role.

        ``factories``: a LightningModule's constructor, which receives the optimizer (and scheduler) as a
        factory it calls in ``configure_optimizers`` (``self.hparams.optimizer(params=self.parameters())``,
        the lightning-hydra-template form); an optional scheduler keeps its default.
        """
        import functools

        import torch

        loader = self.sample.loader(form, function.get("batch_keys", []))
        optimizer = self.optimizer(function, model)
        values = {"num_classes": self.sample.num_classes, "threshold": self.threshold}
        positional: list = []
        keywords: dict = {}
        first_batch = next(iter(loader))
        for param in function["params"]:
            role = param["role"]
            if role == "bound":
                value = param["value"]
            elif role == "model":
                value = model
            elif role == "loader":
                value = loader
            elif role == "optimizer" and factories:
                value = functools.partial(torch.optim.AdamW, lr=LEARNING_RATE)
            elif role == "optimizer":
                value = optimizer
            elif role == "scheduler" and factories and param.get("optional"):
                continue
            elif role == "scheduler" and factories:
                value = functools.partial(torch.optim.lr_scheduler.LambdaLR, lr_lambda=constant_rate)
            elif role == "device":
                value = torch.device("cpu")
            elif role == "epoch":
                value = epoch
            elif role == "criterion":
                value = self.criterion(function.get("criterion"))
            elif role == "args":
                value = args_namespace(function.get("args_attributes", []), values, function.get("args_values", {}))
            elif role == "logits":
                # A metric helper's logits carry no graph: NumPy code (np.logical_and(y_true, y_pred)) reads them too.
                value = model(first_batch[0] if isinstance(first_batch, (list, tuple))
                              else self.sample.images[:BATCH_SIZE]).detach()
                if function.get("numpy_inputs"):
                    value = value.detach().numpy()
            elif role == "labels":
                value = self.sample.targets[:BATCH_SIZE].long() if form == "int64" else self.sample.targets[:BATCH_SIZE].clone()
                if function.get("numpy_inputs"):
                    value = value.numpy()
            elif role in self.role_values:
                value = self.role_values[role](form, model)
            elif role == "threshold":
                value = self.threshold
            elif role == "num_classes":
                value = self.sample.num_classes
            elif role == "class_names":
                value = list(self.sample.class_names)
            elif role == "scaler":
                value = loss_scaler()
            elif role == "scheduler":
                value = torch.optim.lr_scheduler.LambdaLR(optimizer, constant_rate)
            elif role in ROLE_DEFAULTS:
                value = ROLE_DEFAULTS[role]
            elif role == "default":
                continue
            else:
                raise KeyError(role)
            if param["kind"] == "positional_only":
                positional.append(value)
            else:
                keywords[param["name"]] = value
        return positional, keywords

    def optimizer(self, function: dict, model):
        """The optimizer the file's caller builds (a ``torch.optim`` class with its literal keywords), else AdamW."""
        import torch

        build = caller_build(function, "optimizer")
        if build:
            cls = getattr(torch.optim, build["qualified_name"].rpartition(".")[2], None)
            try:
                optimizer = cls(model.parameters(), **build["kwargs"])
            except Exception:
                pass  # keywords only valid with other arguments: the stand-in below
            else:
                self.built_as.append(f"optimizer built as {cls.__name__}(...) at {os.path.basename(self.path)}:{build['line']}")
                return optimizer
        return torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)

    def caller_model(self, build: dict | None) -> tuple[Any, str]:
        """The model as the file's caller builds it (``Net(num_classes=C)``), and how the call row describes it.

        None (the reference ViT is used) when it cannot be built from the caller's literal keywords
        or does not map a batch of sample images to ``[B, C]`` logits. A model that takes other images
        (``nn.Conv2d(1, …)`` on 1x28x28) gets them: :attr:`sample` becomes the sample in that shape.
        """
        import torch

        if not build:
            return None, ""
        where = build_site(build, self.path)
        factory = getattr(self.module, build["name"], None)
        try:
            kwargs = {k: v for k, v in build["kwargs"].items() if not CLASS_COUNT_PARAMETER.fullmatch(k)}
            kwargs.update(class_count_kwargs(factory, self.sample.num_classes))
            torch.manual_seed(0)
            net = factory(**kwargs)
        except Exception as error:
            return None, f"with the reference ViT, as {where} raised {type(error).__name__}: {error}"
        try:
            with torch.no_grad():
                out = net.eval()(self.sample.images[:2])
            net.train()
        except Exception as error:
            shaped = self.shaped_for(net)
            if shaped is None:
                return None, f"with the reference ViT, as {where} raised {type(error).__name__}: {error}"
            self.sample = shaped
            return net.train(), f"model built as {where}, fed {shaped.shape_text()} sample images"
        if not (isinstance(out, torch.Tensor) and tuple(out.shape) == (2, self.sample.num_classes)):
            return None, f"with the reference ViT, as {where} does not map sample images to [B, {self.sample.num_classes}]"
        return net, f"model built as {where}"

    def shaped_for(self, model) -> Sample | None:
        """The sample in the image shape ``model`` (in eval mode) maps to ``[B, C]`` scores, when that is not the
        sample's own; None when it is, or when the model takes none of :data:`.sample.INPUT_SHAPES`."""
        import torch

        was_training = model.training
        model.eval()
        try:
            accepted = accepted_input(model)
        finally:
            model.train(was_training)
        if accepted is None or accepted[0] == tuple(self.sample.images.shape[1:]):
            return None
        out = getattr(accepted[1], "logits", accepted[1])
        if not (isinstance(out, torch.Tensor) and out.ndim == 2 and out.shape[1] == self.sample.num_classes):
            return None
        return self.sample.shaped(accepted[0])

    def criterion(self, criterion: dict | None):
        import torch

        if criterion:
            module_name, _, attribute = criterion["qualified_name"].rpartition(".")
            try:
                cls = getattr(importlib.import_module(module_name), attribute)
                return cls(**criterion.get("kwargs", {}))
            except Exception:
                pass
        return torch.nn.BCEWithLogitsLoss()
    def loss_rows(self, function: str, labels: str, records: list[dict], criterion: dict | None = None) -> None:
        """One row per loss call site. ``criterion``: what verify built for a criterion parameter the
        way the file's caller builds it; a failure of that criterion names the line that builds it."""
        by_site: dict[tuple, list[dict]] = {}
        for record in records:
            by_site.setdefault((record["path"], record["line"], record["label"]), []).append(record)
        for (path, line, label), group in by_site.items():
            where = f"{os.path.basename(path)}:{line}" if path else "a library"
            check = f"loss at {where} ({labels})"
            failure = next((f for f in (loss_failure(r, labels) for r in group) if f), None)
            if failure:
                reason, code, hint = failure
                built = (criterion and criterion.get("line") and criterion["qualified_name"].rpartition(".")[2] == label
                         and code in CRITERION_DEFECTS)
                if code in MODEL_DEFECTS and self.model_built_at:
                    reason += f"; the model passed to {function}() is built as {self.model_built_at}"
                if built:
                    built_in = os.path.basename(criterion.get("path") or self.path)
                    reason += f"; the criterion passed to {function}() is built at {built_in}:{criterion['line']}"
                    if os.path.abspath(criterion.get("path") or self.path) == self.path:
                        line = criterion["line"]
                self.row("FAIL", check, reason, line=line, function=function, code=code, hint=hint)
            else:
                record = group[-1]
                self.row("PASS", check, f"{label}: {record['target_dtype']} target {record['target_shape']} in [0, 1], "
                         f"logits {record['logits_shape']}, loss {record['loss']:.3f}", line=line, function=function)

    def falls_row(self, function: dict, labels: str, epoch_losses: list[list[float]]) -> None:
        means = [sum(losses) / len(losses) for losses in epoch_losses if losses]
        if not means:
            return
        check = f"loss falls ({labels})"
        name = function["name"]
        if not all(math.isfinite(m) for m in means):
            self.row("FAIL", check, f"loss is not finite: {means}", line=function["line"], function=name,
                     hint="check the loss input: raw logits and float multi-hot targets")
        elif len(means) < 2:
            self.row("SKIP", check, f"one epoch run (loss {means[0]:.3f}): nothing to compare it with; run with "
                     "--epochs 2 or more", line=function["line"], function=name)
        elif means[-1] < means[0]:
            self.row("PASS", check, f"mean loss fell from {means[0]:.3f} to {means[-1]:.3f} over {len(means)} epochs",
                     line=function["line"], function=name)
        else:
            self.row("FAIL", check, f"mean loss did not fall over {len(means)} epochs on learnable sample data "
                     f"({means[0]:.3f} -> {means[-1]:.3f})", line=function["line"], function=name,
                     hint="check that optimizer.step() runs and the loss is computed on the model's logits")

    def metric_state_rows(self, function: str, labels: str, line: int | None) -> list:
        """A FAIL row per metric computed on state carried over from an earlier epoch; returns those metrics."""
        never_reset = self.metric_states.take()
        for state in never_reset:
            self.row("FAIL", f"metric state ({labels})", checks_state.never_reset_reason(state),
                     line=state.compute_line or state.update_line or line, function=function, hint=checks_state.RESET_HINT)
        return never_reset

    def metric_rows(self, function: dict, labels: str, returned, outputs: list, never_reset: list = ()) -> None:
        named = returned_numbers(returned, function.get("returns", []))
        metrics = [(n, v) for n, v in named if is_metric_name(n)]
        if not metrics:
            return
        reference = self.reference(outputs)
        for label, value in metrics:
            check = f"metric {label} ({labels})"
            line = function.get("return_line") or function["line"]
            if reference is None:
                self.row("FAIL", check, f"returned {value:.4g}, but the model produced no predictions on sample images "
                         "during the call, so it cannot be compared", line=line, function=function["name"],
                         hint="compute the metric from model(images) on the loader's batches")
                continue
            status, reason, code, hint = judge_metric(value, reference, self.threshold, name=label)
            line, reason = checks_threshold.blamed_line(reason, self.path, function["line"], line)
            code, reason, hint, line = checks_state.amend(never_reset, status, reason, code, hint, line)
            self.row(status, check, reason, line=line, function=function["name"], code=code, hint=hint)

    def reference(self, outputs: list) -> dict | None:
        return reference(outputs, self.sample.targets, self.threshold)
