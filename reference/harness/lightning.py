"""The verify harness's driver for ``LightningModule`` subclasses (``lightning`` or ``pytorch_lightning``).

Where the package the module subclasses is importable, a real ``Trainer`` runs (:func:`_run_real`):
``fit`` for ``--epochs`` epochs with validation after each, then ``test``, on the CPU, with no logger,
checkpoint or progress bar, the sample data served by a ``LightningDataModule``, so callbacks, the
fit loop, schedulers, manual optimisation and accumulation are Lightning's own. A ``Callback`` follows
the phases: what each logged (``self.log`` is recorded on the way to Lightning's), the outputs the
module produced, and its loss calls, per epoch; a logged ``Metric`` is read from ``callback_metrics``,
as Lightning computed it.

Where it is not, :class:`StandInTrainer` stands in: the module is built from sample arguments and gets it as
``self.trainer`` (so ``self.current_epoch``, ``self.global_step``,
``self.trainer.estimated_stepping_batches`` … read what a one-process ``Trainer`` would hold);
``configure_optimizers`` gives the optimizers and schedulers, and the steps are called the way a
``Trainer`` calls them: ``training_step`` on every sample batch for ``--epochs`` epochs, followed
(with automatic optimisation) by ``zero_grad``/``backward``/``step`` of each optimizer and the
schedulers' ``step`` at their interval; with ``automatic_optimization = False`` the step does
that itself through ``self.optimizers()``, ``self.manual_backward`` and ``self.lr_schedulers()``.
Then ``validation_step`` and ``test_step`` run on every batch with gradients off. The epoch hooks
a ``Trainer`` calls around them (``on_fit_start``, ``on_train_start``, ``on_train_epoch_start``/
``_end``, ``on_validation_epoch_start``/``_end``, ``on_test_epoch_start``/``_end``) run too.

Either way, each logged metric is averaged over the epoch as Lightning does (or computed, for a
torchmetrics ``Metric``), and compared with the reference metrics on the very outputs the module
produced during that phase.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from . import checks_state, checks_threshold
from .checks_threshold import hint
from .core import (
    BATCH_SIZE,
    BUILD_HINT,
    LABEL_FORMS,
    LEARNING_RATE,
    SAMPLES,
    class_count_kwargs,
    crash_hint,
    error_text,
    user_line,
    user_site,
    user_traceback,
)
from .judge import is_metric_name, judge_metric
from .sample import Sample, recording_model
from .trainer_settings import TrainerSettings, trainer_settings
from .unit import Unit

PHASES = (("validation_step", "validating"), ("test_step", "testing"))


class LoggedValues:
    """Replaces ``self.log`` and ``self.log_dict`` on one instance; remembers values per name.

    With ``forward`` (a real ``Trainer`` runs), each call also goes to the module's own method, so
    that Lightning logs, aggregates and resets as it does; values are kept per ``phase``.
    """

    def __init__(self, instance, user_files: set[str], forward: bool = False) -> None:
        self.user_files = user_files
        self.phase = ""
        self.values: dict[str, list] = {}
        self.lines: dict[str, int | None] = {}
        self.by_phase: dict[str, dict[str, list]] = {}
        self._forward = (instance.log, instance.log_dict) if forward else None
        self._inside = False
        instance.log = self.log
        instance.log_dict = self.log_dict

    def clear(self) -> None:
        self.values.clear()
        self.lines.clear()

    def start(self, phase: str) -> None:
        """A new epoch of ``phase`` starts: what it logs replaces what its last epoch logged."""
        self.phase = phase
        self.values = self.by_phase[phase] = {}

    def log(self, name, value, *args, **kwargs) -> None:
        if not self._inside:
            self.values.setdefault(str(name), []).append(value)
            self.lines.setdefault(str(name), self._line())
        if self._forward:
            self._forward[0](name, value, *args, **kwargs)

    def log_dict(self, dictionary, *args, **kwargs) -> None:
        line = self._line()
        for name, value in dict(dictionary).items():
            self.values.setdefault(str(name), []).append(value)
            self.lines.setdefault(str(name), line)
        if self._forward:  # Lightning's log_dict calls self.log, which must not count the values again
            self._inside = True
            try:
                self._forward[1](dictionary, *args, **kwargs)
            finally:
                self._inside = False

    def _line(self) -> int | None:
        return user_site(self.user_files)[1]

    def resume(self, phase: str) -> None:
        """Back to ``phase`` after another ran inside it (validation inside a training epoch)."""
        self.phase = phase
        self.values = self.by_phase.setdefault(phase, {})

    def epoch_values(self, computed: dict | None = None) -> list[tuple[str, float, int | None]]:
        """(name, epoch value, line): the mean of per-batch numbers, or ``Metric.compute()``.

        ``computed``: the ``callback_metrics`` a real ``Trainer`` held at the end of the phase; a logged
        ``Metric`` is read there, as Lightning computed and reset it at the end of the epoch.
        """
        found = []
        for name, values in self.values.items():
            last = values[-1]
            if hasattr(last, "compute") and hasattr(last, "reset"):
                if computed is not None:
                    value = next((_number(computed[key]) for key in (name, f"{name}_epoch") if key in computed), None)
                else:
                    try:
                        value = _number(last.compute())
                        last.reset()
                    except Exception:
                        value = None
            else:
                numbers = [_number(v) for v in values]
                value = sum(numbers) / len(numbers) if numbers and None not in numbers else None
            if value is not None:
                found.append((name, value, self.lines.get(name)))
        return found


def _number(value) -> float | None:
    import torch

    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach().float())
    return None


class OutputTap:
    """Records the class scores the module produces, with the sample rows they belong to.

    The hook sits on the innermost part that maps a sample image batch to ``[B, C]`` scores (a
    ``self.model`` child), else on the module itself, so ``self(x)`` and ``self.model(x)`` are
    both seen once. With ``hinted`` on, the hook adds the sample's hint logits (see
    :func:`.sample.recording_model`) so that evaluation metrics cannot match by chance.
    """

    def __init__(self, instance, sample: Sample) -> None:
        self.sample = sample
        self.hinted = False
        self.batch_rows = None
        """The sample rows of the batch a real ``Trainer`` runs now (its loader is not shuffled)."""
        self.outputs: list[tuple[Any, Any]] = []
        target = instance
        for child in instance.children():
            if self._gives_scores(child):
                target = child
                break
        target.register_forward_hook(self._hook, with_kwargs=True)
        self.by_phase: dict[str, list] = {}

    def start(self, phase: str, hinted: bool) -> None:
        """A new epoch of ``phase`` starts: its outputs replace those of its last epoch."""
        self.hinted = hinted
        self.outputs = self.by_phase[phase] = []

    def resume(self, phase: str, hinted: bool) -> None:
        self.hinted = hinted
        self.outputs = self.by_phase.setdefault(phase, [])

    def _gives_scores(self, child) -> bool:
        import torch

        was_training = child.training
        child.eval()
        try:
            with torch.no_grad():
                out = child(self.sample.images[:2])
        except Exception:
            return False
        finally:
            child.train(was_training)
        out = getattr(out, "logits", out)
        return isinstance(out, torch.Tensor) and tuple(out.shape) == (2, self.sample.num_classes)

    def _hook(self, _module, inputs, keywords, output):
        import torch

        logits = getattr(output, "logits", output)
        # A Hugging Face model is called with keywords: model(pixel_values=..., labels=...).
        images = inputs[0] if inputs else keywords.get("pixel_values")
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not isinstance(images, torch.Tensor):
            return None
        rows = self.sample.rows_of(images)
        if self.batch_rows is not None and bool((rows < 0).all()) and len(rows) == len(self.batch_rows):
            rows = self.batch_rows  # images a batch-transfer hook transformed (normalised) no longer match by content
        if self.hinted:
            logits = hint(self.sample, logits, rows)
            if logits is not output and hasattr(output, "logits"):
                output.logits = logits
            else:
                output = logits
        self.outputs.append((logits.detach().float().cpu(), rows))
        return output


@dataclass
class SchedulerConfig:
    """One scheduler of ``configure_optimizers``, with Lightning's keys (``trainer.lr_scheduler_configs``)."""

    scheduler: Any
    interval: str = "epoch"
    frequency: int = 1
    monitor: str | None = None

    @classmethod
    def of(cls, item) -> "SchedulerConfig":
        if isinstance(item, dict):
            return cls(item["scheduler"], item.get("interval", "epoch"), int(item.get("frequency", 1)), item.get("monitor"))
        return cls(item)


def _configured(configured) -> tuple[list, list[SchedulerConfig]]:
    """The optimizers and schedulers of any ``configure_optimizers`` return form Lightning accepts."""
    import torch

    if isinstance(configured, torch.optim.Optimizer):
        return [configured], []
    if isinstance(configured, dict):
        optimizers, _ = _configured(configured.get("optimizer"))
        scheduler = configured.get("lr_scheduler")
        return optimizers, [] if scheduler is None else [SchedulerConfig.of(scheduler)]
    if isinstance(configured, (list, tuple)):
        if len(configured) == 2 and isinstance(configured[0], (list, tuple)):  # ([optimizers], [schedulers])
            optimizers, _ = _configured(list(configured[0]))
            schedulers = configured[1] if isinstance(configured[1], (list, tuple)) else [configured[1]]
            return optimizers, [SchedulerConfig.of(s) for s in schedulers if s is not None]
        optimizers, schedulers = [], []
        for item in configured:
            found, their_schedulers = _configured(item)
            optimizers.extend(found)
            schedulers.extend(their_schedulers)
        return optimizers, schedulers
    return [], []


class DroppingLogger:
    """``self.logger``: takes every call (``log_metrics``, ``log_hyperparams``, ``experiment.add_image``, …)
    and keeps nothing, so that logging images or hyperparameters does not stop the steps."""

    name = "verify"
    version = 0

    def __init__(self, folder: str) -> None:
        self.save_dir = self.log_dir = self.root_dir = folder

    def __getattr__(self, name: str) -> "DroppingLogger":
        if name.startswith("__"):  # copy and pickle probe for __deepcopy__, __getnewargs_ex__, …
            raise AttributeError(name)
        return self

    def __call__(self, *_args, **_kwargs) -> "DroppingLogger":
        return self


class NotOnStandIn(AttributeError):
    """``self.trainer.X`` for an ``X`` the stand-in does not have: verify's limit, said as such."""


class StandInDataModule:
    """``self.trainer.datamodule``: every loader it gives is verify's sample loader, so that a step or
    ``configure_optimizers`` sizing itself on ``len(self.trainer.datamodule.train_dataloader())``
    or reading ``num_classes`` sees the sample data it runs on."""

    def __init__(self, loader, num_classes: int) -> None:
        self.num_classes = num_classes
        self.batch_size = loader.batch_size
        self._loader = loader

    def __getattr__(self, name: str):
        raise NotOnStandIn(f"verify runs no Trainer; its stand-in for self.trainer.datamodule has no {name!r}")

    def train_dataloader(self):
        return self._loader

    val_dataloader = test_dataloader = predict_dataloader = train_dataloader


STAND_IN_HINT = ("this is a gap of verify's stand-in, not of your code: install lightning (or pytorch_lightning, "
                 f"whichever the module imports) into the environment verify runs user code in ({sys.executable}) and "
                 "verify runs a real Trainer; the stand-in for self.trainer has current_epoch, global_step, max_epochs, "
                 "estimated_stepping_batches, num_training_batches, optimizers, lr_scheduler_configs, logger, "
                 "callback_metrics, datamodule (its loaders are the sample loader) and the rank/precision settings "
                 "of one CPU process")


class StandInFitLoop:
    """``self.trainer.fit_loop``: the epoch and step counts Lightning's loop keeps, read from the stand-in trainer
    (``fit_loop.max_epochs``, ``fit_loop.epoch_progress.current.completed``, ``fit_loop.epoch_loop.max_steps``)."""

    def __init__(self, trainer) -> None:
        from types import SimpleNamespace

        self.max_epochs = trainer.max_epochs
        self.min_epochs = 0
        self.max_steps = trainer.max_steps
        self.current_epoch = trainer.current_epoch
        self.total_batch_idx = trainer.current_epoch * trainer.num_training_batches
        done = SimpleNamespace(ready=trainer.current_epoch, started=trainer.current_epoch,
                               processed=trainer.current_epoch, completed=trainer.current_epoch)
        self.epoch_progress = SimpleNamespace(current=done, total=done)
        self.epoch_loop = SimpleNamespace(max_steps=trainer.max_steps, global_step=trainer.global_step,
                                          _batches_that_stepped=trainer.global_step)

    def __getattr__(self, name: str):
        raise NotOnStandIn(f"verify runs no Trainer; its stand-in for self.trainer.fit_loop has no {name!r}")


def _one_or_list(items: list):
    """Lightning's ``optimizers()``/``lr_schedulers()`` convention: one item unwrapped, else the list."""
    return items[0] if len(items) == 1 else items


class StandInTrainer:
    """What a ``LightningModule`` reads from ``self.trainer`` in verify's run: one process on the CPU,
    a logger that drops everything, no callbacks, the sample data. :meth:`attach` also gives the
    instance the manual optimisation methods and ``all_gather`` (Lightning's own read the
    ``Trainer``'s strategy), the same way for ``lightning`` and ``pytorch_lightning``. Anything else
    a ``Trainer`` has is an ``AttributeError`` that says why.
    """

    def __init__(self, loader, epochs: int, num_classes: int, logged: LoggedValues) -> None:
        batches = len(loader)
        self.max_epochs = epochs
        self.max_steps = -1
        self.num_training_batches = batches
        self.num_val_batches = [batches]
        self.num_test_batches = [batches]
        self.estimated_stepping_batches = epochs * batches
        self.train_dataloader = loader
        self.val_dataloaders = loader
        self.test_dataloaders = loader
        self.current_epoch = 0
        self.global_step = 0
        self.is_last_batch = False
        self.training = self.validating = self.testing = self.predicting = self.sanity_checking = False
        self.should_stop = False
        self.optimizers: list = []
        self.lr_scheduler_configs: list[SchedulerConfig] = []
        self.default_root_dir = self.log_dir = os.getcwd()  # the unit's scratch folder
        self.logger = DroppingLogger(self.log_dir)
        self.loggers = [self.logger]
        self.callbacks: list = []
        self.progress_bar_callback = self.checkpoint_callback = self.early_stopping_callback = None
        self.is_global_zero = True
        self.world_size = self.num_devices = self.num_nodes = 1
        self.global_rank = self.local_rank = self.node_rank = 0
        self.datamodule = StandInDataModule(loader, num_classes)
        self.precision = "32-true"
        self.accumulate_grad_batches = 1
        self.gradient_clip_val = self.gradient_clip_algorithm = None
        self.log_every_n_steps = 50
        self.check_val_every_n_epoch = 1
        self.lightning_module = None
        self._logged = logged
        self._requires_grad: dict = {}  # parameter -> its flag, while an optimizer is toggled

    def __getattr__(self, name: str):
        raise NotOnStandIn(f"verify runs no Trainer; its stand-in for self.trainer has no {name!r}")

    @property
    def model(self):
        return self.lightning_module

    @property
    def fit_loop(self) -> StandInFitLoop:
        return StandInFitLoop(self)

    @property
    def callback_metrics(self) -> dict:
        return {name: values[-1] for name, values in self._logged.values.items()}

    def attach(self, instance) -> None:
        instance.trainer = self  # Lightning's setter: child LightningModules get it too
        self.lightning_module = instance
        instance.optimizers = self._module_optimizers
        instance.lr_schedulers = self._module_lr_schedulers
        instance.manual_backward = self._manual_backward
        instance.toggle_optimizer = self._toggle_optimizer
        instance.untoggle_optimizer = self._untoggle_optimizer
        instance.clip_gradients = self._clip_gradients
        instance.all_gather = self._all_gather

    def set_optimizers(self, optimizers: list, schedulers: list[SchedulerConfig]) -> None:
        self.optimizers = optimizers
        self.lr_scheduler_configs = schedulers
        for optimizer in optimizers:  # global_step counts optimizer steps, as Lightning's does
            optimizer.register_step_post_hook(self._count_step)
            if not hasattr(optimizer, "optimizer"):  # a LightningOptimizer's way to the optimizer it wraps
                optimizer.optimizer = optimizer

    def stage(self, name: str) -> None:
        """Lightning's stage flags: ``training``, ``validating`` or ``testing``."""
        self.training = name == "training"
        self.validating = name == "validating"
        self.testing = name == "testing"

    def step_schedulers(self, interval: str, count: int) -> None:
        """What automatic optimisation does after an optimizer step (``step``) or an epoch (``epoch``).
        ``ReduceLROnPlateau`` is left alone: it needs the monitored value of a whole run."""
        from torch.optim.lr_scheduler import ReduceLROnPlateau

        for config in self.lr_scheduler_configs:
            if config.interval == interval and count % max(1, config.frequency) == 0 \
                    and not isinstance(config.scheduler, ReduceLROnPlateau):
                config.scheduler.step()

    def _count_step(self, *_args) -> None:
        self.global_step += 1

    def _module_optimizers(self, use_pl_optimizer: bool = True):
        return _one_or_list(self.optimizers)

    def _module_lr_schedulers(self):
        return _one_or_list([config.scheduler for config in self.lr_scheduler_configs]) or None

    def _manual_backward(self, loss, *args, **kwargs) -> None:
        if getattr(self.lightning_module, "automatic_optimization", True):
            raise RuntimeError("to use manual_backward, please disable automatic optimization: "
                               "set model property `automatic_optimization` as False")
        loss.backward(*args, **kwargs)

    def _toggle_optimizer(self, optimizer) -> None:
        """Only ``optimizer``'s parameters get gradients until :meth:`_untoggle_optimizer`, as in Lightning."""
        own = {p for group in optimizer.param_groups for p in group["params"]}
        for other in self.optimizers:
            for group in other.param_groups:
                for parameter in group["params"]:
                    if parameter not in own and parameter not in self._requires_grad:
                        self._requires_grad[parameter] = parameter.requires_grad
                        parameter.requires_grad = False

    def _untoggle_optimizer(self, optimizer) -> None:
        for parameter, requires_grad in self._requires_grad.items():
            parameter.requires_grad = requires_grad
        self._requires_grad = {}

    @staticmethod
    def _all_gather(data, group=None, sync_grads: bool = False):
        """One process: what every rank holds is this rank's data, as Lightning's single-device strategy gives."""
        return data

    @staticmethod
    def _clip_gradients(optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        import torch

        if not gradient_clip_val:
            return
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        if (gradient_clip_algorithm or "norm").lower() == "value":
            torch.nn.utils.clip_grad_value_(parameters, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(parameters, gradient_clip_val)


def run_lightning(unit: Unit, cls: type, spec: dict) -> None:
    """Each label form through a real ``Trainer`` of the package ``cls`` subclasses, else the stand-in."""
    package = lightning_package(cls)
    settings = None
    if package is not None:
        settings = trainer_settings(unit.unit.get("trainer"), package, unit.module, unit.epochs)
        _settings_rows(unit, spec, settings)
    sample = unit.sample
    for form in LABEL_FORMS:
        try:
            if package is None:
                _run_form(unit, cls, spec, form)
            else:
                _run_real(unit, cls, spec, form, package, settings)
        finally:
            unit.sample = sample  # a module that takes other images had the sample reshaped for its run


def _settings_rows(unit: Unit, spec: dict, settings: TrainerSettings) -> None:
    """What of the file's ``Trainer(...)`` call verify's ``Trainer`` applied, and what it did not, with why."""
    if settings.applied:
        unit.row("PASS", "Trainer settings", f"applied from {settings.where}: {', '.join(settings.applied)}",
                 line=spec["line"], function=spec["name"])
    if settings.skipped:
        unit.row("SKIP", "Trainer settings not applied", f"from {settings.where}: {'; '.join(settings.skipped)}",
                 line=spec["line"], function=spec["name"])


def lightning_package(cls: type):
    """``lightning.pytorch`` or ``pytorch_lightning``, whichever ``LightningModule`` ``cls`` subclasses and is
    importable; None (the stand-in runs) when neither is."""
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            package = importlib.import_module(name)
        except ImportError:
            continue
        if issubclass(cls, package.LightningModule):
            return package
    return None


def _build(unit: Unit, cls: type, spec: dict, labels: str, form: str):
    """The module built from sample arguments (its optimizer and scheduler as factories), with the unit's sample
    data shaped for it, or None after a FAIL row."""
    try:
        # Steps that call self(**batch) or read .logits wrap a Hugging Face model: the sample model speaks its API.
        hf = any(method.get("hf_model") for method in spec["methods"])
        placeholder = recording_model(unit.sample, hinted=False, hf=hf)
        positional, keywords = unit.arguments(spec["init"], form, placeholder, 0, factories=True)
        instance = unit.build(cls, spec, positional, keywords)
    except BaseException as error:
        unit.row("FAIL", f"build ({labels})", f"{spec['name']}(...) raised {type(error).__name__}: {error}",
                 line=user_line(error, unit.path) or spec["line"], function=spec["name"], trace=user_traceback(error),
                 hint=BUILD_HINT)
        return None
    unit.sample = unit.shaped_for(instance) or unit.sample
    return instance


def _run_form(unit: Unit, cls: type, spec: dict, form: str) -> None:
    labels = f"{form} labels"
    name = spec["name"]
    steps = {m["name"]: m for m in spec["methods"]}
    instance = _build(unit, cls, spec, labels, form)
    if instance is None:
        return
    logged = LoggedValues(instance, unit.recorder.user_files)
    loader = unit.sample.loader(form, spec.get("batch_keys", []))
    trainer = StandInTrainer(loader, unit.epochs, unit.sample.num_classes, logged)
    trainer.attach(instance)
    tap = OutputTap(instance, unit.sample)
    if "training_step" in steps:
        if not _train(unit, instance, trainer, steps["training_step"], loader, labels, logged, tap, name):
            return
    for step_name, stage in PHASES:
        if step_name in steps:
            if not _evaluate(unit, instance, trainer, steps[step_name], loader, labels, logged, tap, name, stage):
                return
    ran = ", ".join(steps)
    unit.row("PASS", f"steps ({labels})", f"{ran} ran on {_images(unit)} with a stand-in Trainer",
             line=spec["line"], function=name)


def _train(unit, instance, trainer: StandInTrainer, step: dict, loader, labels, logged, tap, name) -> bool:
    import torch

    function = f"{name}.training_step"
    try:
        optimizers, schedulers = _configured(instance.configure_optimizers()) \
            if hasattr(instance, "configure_optimizers") else ([], [])
    except BaseException as error:
        unit.row("FAIL", f"configure_optimizers ({labels})", f"raised {type(error).__name__}: {error}",
                 line=user_line(error, unit.path), function=name, trace=user_traceback(error),
                 hint=_hint(error))
        return False
    trainer.set_optimizers(optimizers or [torch.optim.AdamW(instance.parameters(), lr=LEARNING_RATE)], schedulers)
    automatic = getattr(instance, "automatic_optimization", True)
    instance.train()
    trainer.stage("training")
    epoch_losses: list[list[float]] = []
    running, start = "on_fit_start", len(unit.recorder.records)
    try:
        _call_hooks(instance, "on_fit_start", "on_train_start")
        unit.budget.entry(function, step["line"], unit.epochs, labels)
        for epoch in range(unit.epochs):
            unit.metric_states.mark()
            trainer.current_epoch = epoch
            start = len(unit.recorder.records)
            logged.clear()
            tap.outputs.clear()
            returned: list[float] = []
            running = "on_train_epoch_start"
            _call_hooks(instance, running)
            running = "training_step"
            for batch_idx, batch in enumerate(loader):
                trainer.is_last_batch = batch_idx == trainer.num_training_batches - 1
                for running, transfer in _transfer_hooks(instance):
                    batch = transfer(batch)
                running = step["name"]
                result = instance.training_step(batch, batch_idx)
                loss = result["loss"] if isinstance(result, dict) else result
                if isinstance(loss, torch.Tensor) and loss.numel() == 1:
                    returned.append(float(loss.detach()))
                if automatic and getattr(loss, "requires_grad", False):
                    for optimizer in trainer.optimizers:
                        optimizer.zero_grad()
                    loss.backward()
                    for optimizer in trainer.optimizers:
                        optimizer.step()
                    trainer.step_schedulers("step", trainer.global_step)
            running = "on_train_epoch_end"
            _call_hooks(instance, running)
            if automatic:
                trainer.step_schedulers("epoch", epoch + 1)
            # the recorded loss calls; a loss verify cannot intercept (hand-written) is what the step returned
            epoch_losses.append([r["loss"] for r in unit.recorder.records[start:] if "loss" in r] or returned)
            unit.budget.step_done()
    except BaseException as error:
        _failed(unit, error, name, running, function, labels, step, start)
        return False
    unit.loss_rows(function, labels, unit.recorder.records[start:])
    unit.falls_row({**step, "name": function}, labels, epoch_losses)
    _logged_rows(unit, logged, tap.outputs, labels, function, step, unit.metric_state_rows(function, labels, step["line"]))
    return True


def _evaluate(unit, instance, trainer: StandInTrainer, step: dict, loader, labels, logged, tap, name, stage) -> bool:
    import torch

    function = f"{name}.{step['name']}"
    hooks = "on_validation_epoch" if stage == "validating" else "on_test_epoch"
    instance.eval()
    trainer.stage(stage)
    logged.clear()
    tap.outputs.clear()
    tap.hinted = True
    start = len(unit.recorder.records)
    unit.metric_states.mark()
    unit.budget.entry(function, step["line"], 1, labels)
    running = f"{hooks}_start"
    try:
        with torch.no_grad():
            _call_hooks(instance, running)
            running = step["name"]
            for batch_idx, batch in enumerate(loader):
                trainer.is_last_batch = batch_idx == trainer.num_training_batches - 1
                for running, transfer in _transfer_hooks(instance):
                    batch = transfer(batch)
                running = step["name"]
                getattr(instance, step["name"])(batch, batch_idx)
            running = f"{hooks}_end"
            _call_hooks(instance, running)
    except BaseException as error:
        _failed(unit, error, name, running, function, labels, step, start)
        return False
    finally:
        tap.hinted = False
    unit.loss_rows(function, labels, unit.recorder.records[start:])
    _logged_rows(unit, logged, tap.outputs, labels, function, step, unit.metric_state_rows(function, labels, step["line"]))
    return True


def _transfer_hooks(instance) -> list[tuple[str, Any]]:
    """(name, batch -> batch) of each batch-transfer hook of the module, in the order a ``Trainer`` calls them
    (on the CPU, dataloader 0)."""
    import torch

    hooks = []
    for hook, arguments in (("on_before_batch_transfer", (0,)), ("transfer_batch_to_device", (torch.device("cpu"), 0)),
                            ("on_after_batch_transfer", (0,))):
        method = getattr(instance, hook, None)
        if callable(method):
            hooks.append((hook, lambda batch, method=method, arguments=arguments: method(batch, *arguments)))
    return hooks


def _images(unit: Unit) -> str:
    """``128 sample images`` (``… (1x28x28 grayscale)`` for a module that takes other images)."""
    shape = unit.sample.shape_text()
    return f"{SAMPLES} sample images" + (f" ({shape})" if shape else "")


def _call_hooks(instance, *hooks: str) -> None:
    """The ``LightningModule`` hooks a ``Trainer`` calls at this point (the inherited ones do nothing),
    so that a metric computed and logged in ``on_validation_epoch_end`` is judged too."""
    for hook in hooks:
        method = getattr(instance, hook, None)
        if callable(method):
            method()


def _failed(unit, error: BaseException, name: str, running: str, function: str, labels: str, step: dict,
            start: int) -> None:
    """The rows of a phase that raised: its loss calls so far, then the call that raised (a step or a hook)."""
    unit.loss_rows(function, labels, unit.recorder.records[start:])
    unit.row("FAIL", f"call ({labels})", f"{running} raised {error_text(error)}",
             line=user_line(error, unit.path) or step["line"], function=f"{name}.{running}",
             trace=user_traceback(error), hint=_hint(error, name))


def _hint(error: BaseException, name: str | None = None) -> str:
    return STAND_IN_HINT if isinstance(error, NotOnStandIn) else crash_hint(error, owner=name)


def _logged_rows(unit, logged: LoggedValues, outputs: list, labels: str, function: str, step: dict,
                 never_reset: list = (), computed: dict | None = None) -> None:
    metrics = [(n, v, line) for n, v, line in logged.epoch_values(computed) if is_metric_name(n)]
    if not metrics:
        return
    reference = unit.reference(outputs) if outputs else None
    for metric, value, line in metrics:
        check = f"logged {metric} ({labels})"
        if reference is None:
            unit.row("FAIL", check, f"logged {value:.4g}, but the module produced no class scores on sample images "
                     "during the step, so it cannot be compared", line=line or step["line"], function=function,
                     hint="log a metric computed from the module's outputs on the batch")
            continue
        status, reason, code, hint = judge_metric(value, reference, unit.threshold, name=metric)
        line, reason = checks_threshold.blamed_line(reason, unit.path, step["line"], line)
        code, reason, hint, line = checks_state.amend(never_reset, status, reason, code, hint, line)
        unit.row(status, check, reason, line=line or step["line"], function=function, code=code, hint=hint)


# --------------------------------------------------------------------------- a real Trainer

REAL_PHASES = (("training_step", "training"), ("validation_step", "validating"), ("test_step", "testing"))


def _run_real(unit: Unit, cls: type, spec: dict, form: str, package, settings: TrainerSettings) -> None:
    """``Trainer.fit`` (validating each epoch) and ``Trainer.test`` on the sample data, on the CPU, writing no file
    that outlives the unit's scratch folder; what each phase logged is judged on the outputs of its last epoch."""
    labels = f"{form} labels"
    name = spec["name"]
    steps = {m["name"]: m for m in spec["methods"]}
    instance = _build(unit, cls, spec, labels, form)
    if instance is None:
        return
    loader = unit.sample.loader(form, spec.get("batch_keys", []))
    logged = LoggedValues(instance, unit.recorder.user_files, forward=True)
    tap = OutputTap(instance, unit.sample)
    watch = _phase_watch(package, unit, logged, tap)
    folder = tempfile.mkdtemp(prefix="lightning-", dir=os.getcwd())  # in the unit's scratch folder
    # Not logger=False: that leaves self.logger None, and code logging images or hyperparameters through it fails.
    epochs = settings.kwargs.get("max_epochs", unit.epochs)
    trainer = package.Trainer(
        **{**settings.kwargs, "max_epochs": epochs}, accelerator="cpu", devices=1, limit_train_batches=len(loader),
        limit_val_batches=len(loader), limit_test_batches=len(loader), num_sanity_val_steps=0,
        logger=_dropping_logger(package, folder), enable_checkpointing=settings.checkpointing(package),
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=folder,
        callbacks=[*settings.build_callbacks(package, folder), watch])
    datamodule, served = _datamodule(unit, package, loader)
    first = next(step for step_name, _ in REAL_PHASES if (step := steps.get(step_name)))
    unit.budget.entry(f"{name}.{first['name']}", first["line"], epochs if "training_step" in steps else 1, labels)
    unit.metric_states.take()  # flags of the other label form's run are not this one's
    try:
        if "training_step" in steps:
            trainer.fit(instance, datamodule=datamodule)
        elif "validation_step" in steps:
            trainer.validate(instance, datamodule=datamodule)
        if "test_step" in steps:
            trainer.test(instance, datamodule=datamodule)
    except BaseException as error:
        watch.flush()
        owner, raised_in = _user_function(error, unit.path)
        running = raised_in or watch.running
        step = steps.get(running) or first
        for step_name, phase in REAL_PHASES:
            if step_name in steps:
                unit.loss_rows(f"{name}.{step_name}", labels, watch.last_epoch_records(phase))
        # No frame of the file and no phase started: the Trainer refused the module before running it.
        who = running or f"{package.__name__.split('.')[0]}.Trainer"
        unit.row("FAIL", f"call ({labels})", f"{who} raised {error_text(error)}",
                 line=user_line(error, unit.path) or (step["line"] if running else spec["line"]),
                 function=f"{owner or name}.{running}" if running else name, trace=user_traceback(error),
                 hint=crash_hint(error, owner=name))
        return
    watch.flush()
    never_reset = unit.metric_state_rows(f"{name}.{first['name']}", labels, first["line"])
    for step_name, phase in REAL_PHASES:
        step = steps.get(step_name)
        if step is None:
            continue
        function = f"{name}.{step_name}"
        unit.loss_rows(function, labels, watch.last_epoch_records(phase))
        if phase == "training":
            unit.falls_row({**step, "name": function}, labels, watch.epoch_losses())
        logged.resume(phase)
        _logged_rows(unit, logged, tap.by_phase.get(phase, []), labels, function, step, never_reset,
                     watch.computed.get(phase, {}))
    unit.row("PASS", f"steps ({labels})", f"{', '.join(steps)} ran on {_images(unit)} with a real "
             f"{package.__name__.split('.')[0]}.Trainer{served}", line=spec["line"], function=name)


def _dropping_logger(package, folder: str):
    """A real ``Logger`` that keeps nothing: ``self.logger.log_hyperparams(...)``, ``self.logger.experiment.add_image(...)``
    are taken and dropped, and Lightning's own metric logging writes no file."""

    class VerifyLogger(package.loggers.Logger):
        @property
        def name(self) -> str:
            return "verify"

        @property
        def version(self) -> int:
            return 0

        @property
        def root_dir(self) -> str:
            return folder

        @property
        def experiment(self) -> DroppingLogger:
            return DroppingLogger(folder)

        def log_metrics(self, metrics, step=None) -> None:
            pass

        def log_hyperparams(self, params, *args, **kwargs) -> None:
            pass

    return VerifyLogger()


def _user_function(error: BaseException, path: str) -> tuple[str | None, str | None]:
    """(class, function) of the user's file the exception left last: a step or hook of the module, or a hook of the
    file's ``LightningDataModule`` (class None for a module-level function)."""
    frame = None
    link = error.__traceback__
    while link is not None:
        # A comprehension's frame is named <listcomp>: the function it is written in is the one to name.
        if os.path.abspath(link.tb_frame.f_code.co_filename) == path and not (
                frame is not None and link.tb_frame.f_code.co_name.startswith("<")):
            frame = link.tb_frame
        link = link.tb_next
    if frame is None:
        return None, None
    code = frame.f_code
    owner = getattr(code, "co_qualname", code.co_name).partition(".<locals>")[0].rpartition(".")[0]
    return owner or None, code.co_name


CLASS_COUNT_ATTRIBUTE = re.compile(r"(num|n|nb)_?(classes|labels|class)")
"""A DataModule's class count (``self.trainer.datamodule.num_classes``): the sample's is read instead."""
TRANSFER_HOOKS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")


def _user_datamodule(unit: Unit, package) -> type | None:
    """The ``LightningDataModule`` subclass the file defines (or imports from another file of the run), the file's
    own first; None when there is none."""
    import inspect

    found = []
    for value in vars(unit.module).values():
        if not (isinstance(value, type) and issubclass(value, package.LightningDataModule)
                and value is not package.LightningDataModule):
            continue
        try:
            source = os.path.abspath(inspect.getsourcefile(value) or "")
        except TypeError:
            continue
        if source in unit.recorder.user_files:
            found.append(((source != unit.path, unit.line_of(value) or 0), value))
    return min(found, key=lambda item: item[0])[1] if found else None


def _datamodule(unit: Unit, package, loader) -> tuple[Any, str]:
    """The ``LightningDataModule`` the ``Trainer`` gets, and what the steps row says of it.

    With a DataModule of the file: a subclass of it whose ``prepare_data``/``setup``/``teardown`` do nothing and whose
    loaders are the sample loader, so its batch-transfer hooks run on the sample batches while the user's data is never
    read; its ``__init__`` runs with sample values (the class count, the batch size, defaults for the rest), or, when
    that raises, Lightning's alone. Its class count (``num_classes``, ``num_labels``, …) and ``batch_size`` read the
    sample's. Without one: a DataModule of the sample loader.
    """
    import inspect

    user = _user_datamodule(unit, package)
    num_classes = unit.sample.num_classes
    base = user or package.LightningDataModule
    names = {name for name in dir(base) if CLASS_COUNT_ATTRIBUTE.fullmatch(name)} | {"num_classes"}
    # A setter that drops the value: the user's __init__ may assign self.num_classes = num_classes.
    namespace: dict[str, Any] = {name: property(lambda _self: num_classes, lambda _self, _value: None) for name in names}
    namespace["batch_size"] = property(lambda _self: loader.batch_size, lambda _self, _value: None)

    def sample_loader(_self, *_args, **_kwargs):
        return loader

    def nothing(_self, *_args, **_kwargs) -> None:
        return None

    namespace.update(prepare_data=nothing, setup=nothing, teardown=nothing, train_dataloader=sample_loader,
                     val_dataloader=sample_loader, test_dataloader=sample_loader, predict_dataloader=sample_loader)
    cls = type(user.__name__ if user else "SampleDataModule", (base,), namespace)
    if user is None:
        return cls(), ""
    kwargs = class_count_kwargs(user, num_classes)
    if "batch_size" in inspect.signature(user).parameters:
        kwargs["batch_size"] = loader.batch_size
    try:
        datamodule = cls(**kwargs)
        built = "its __init__ run with sample values"
    except Exception as error:  # e.g. a data_dir without a default: Lightning's __init__ alone
        datamodule = cls.__new__(cls)
        package.LightningDataModule.__init__(datamodule)
        built = f"its __init__ not run, as it raised {type(error).__name__}: {error}"
    hooks = [hook for hook in TRANSFER_HOOKS if getattr(user, hook) is not getattr(package.LightningDataModule, hook)]
    through = f"through {user.__name__}'s {', '.join(hooks)}" if hooks else f"by {user.__name__}"
    return datamodule, (f", the sample batches served {through} ({built}; its prepare_data, setup, teardown and "
                        "loaders replaced)")


def _phase_watch(package, unit: Unit, logged: LoggedValues, tap: OutputTap):
    """A ``Callback`` that follows the real ``Trainer``'s phases: it starts each epoch's logged values, outputs
    and metric marks, tags each loss call with its phase and epoch, and keeps the metrics Lightning computed
    at the end of each phase (a logged ``Metric`` is computed and reset there)."""

    def _batch_rows(batch_idx: int):
        import torch

        start = batch_idx * BATCH_SIZE
        return torch.arange(start, min(start + BATCH_SIZE, SAMPLES))

    class PhaseWatch(package.Callback):
        def __init__(self) -> None:
            self.tags: list[tuple[str, int] | None] = []
            """(phase, epoch) of each loss record."""
            self.current: tuple[str, int] | None = None
            self.outer: tuple[str, int] | None = None
            self.returned: dict[int, list[float]] = {}
            self.computed: dict[str, dict] = {}
            self.running = ""
            """The step of the phase that runs now."""

        def flush(self) -> None:
            self.tags.extend([self.current] * (len(unit.recorder.records) - len(self.tags)))

        def _start(self, phase: str, epoch: int, step: str) -> None:
            self.flush()
            self.current = (phase, epoch)
            self.running = step
            logged.start(phase)
            tap.start(phase, hinted=phase != "training")
            unit.metric_states.mark()

        def _end(self, trainer, phase: str) -> None:
            self.flush()
            self.computed[phase] = dict(trainer.callback_metrics)
            self.current = self.outer
            self.outer = None
            if self.current is not None:  # validation inside a training epoch: back to it
                logged.resume(self.current[0])
                tap.resume(self.current[0], hinted=False)

        def on_train_epoch_start(self, trainer, _module) -> None:
            self._start("training", trainer.current_epoch, "training_step")

        def on_train_batch_start(self, _trainer, _module, _batch, batch_idx) -> None:
            tap.batch_rows = _batch_rows(batch_idx)

        def on_validation_batch_start(self, _trainer, _module, _batch, batch_idx, _dataloader_idx=0) -> None:
            tap.batch_rows = _batch_rows(batch_idx)

        def on_test_batch_start(self, _trainer, _module, _batch, batch_idx, _dataloader_idx=0) -> None:
            tap.batch_rows = _batch_rows(batch_idx)

        def on_validation_batch_end(self, *_args) -> None:
            tap.batch_rows = None

        on_test_batch_end = on_validation_batch_end

        def on_train_batch_end(self, trainer, _module, outputs, _batch, _batch_idx) -> None:
            tap.batch_rows = None
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if loss is not None and getattr(loss, "numel", lambda: 0)() == 1:
                self.returned.setdefault(trainer.current_epoch, []).append(float(loss.detach()))

        def on_train_epoch_end(self, _trainer, _module) -> None:
            self.flush()
            unit.budget.step_done()

        def on_train_end(self, trainer, _module) -> None:
            self._end(trainer, "training")

        def on_validation_epoch_start(self, trainer, _module) -> None:
            self.outer = self.current
            self._start("validating", trainer.current_epoch, "validation_step")

        def on_validation_end(self, trainer, _module) -> None:
            self._end(trainer, "validating")

        def on_test_epoch_start(self, trainer, _module) -> None:
            self._start("testing", 0, "test_step")

        def on_test_end(self, trainer, _module) -> None:
            self._end(trainer, "testing")

        def last_epoch_records(self, phase: str) -> list[dict]:
            epochs = [tag[1] for tag in self.tags if tag and tag[0] == phase]
            if not epochs:
                return []
            return [r for r, tag in zip(unit.recorder.records, self.tags) if tag == (phase, epochs[-1])]

        def epoch_losses(self) -> list[list[float]]:
            """Per training epoch: its recorded loss calls, else (a loss verify cannot intercept) what the step returned."""
            epochs = sorted({tag[1] for tag in self.tags if tag and tag[0] == "training"} | set(self.returned))
            return [[r["loss"] for r, tag in zip(unit.recorder.records, self.tags) if tag == ("training", e) and "loss" in r]
                    or self.returned.get(e, []) for e in epochs]

    return PhaseWatch()
