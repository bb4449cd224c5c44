"""The verify harness's driver for ``LightningModule`` subclasses (``lightning`` or ``pytorch_lightning``).

No ``Trainer`` runs: the module is built from sample arguments, ``configure_optimizers`` gives
the optimizers, and the steps are called the way a ``Trainer`` calls them with automatic
optimisation: ``training_step`` on every sample batch, then ``backward`` and ``step`` of each
optimizer, for ``--epochs`` epochs; then ``validation_step`` and ``test_step`` on every batch
with gradients off. ``self.log``/``self.log_dict`` are captured on the instance (with the line
that logged), each logged metric is averaged over the epoch as Lightning does (or computed, for
a torchmetrics ``Metric``), and compared with the reference metrics on the very outputs the
module produced during that phase.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from . import harness as h

PHASES = (("validation_step", "validation"), ("test_step", "test"))


class LoggedValues:
    """Replaces ``self.log`` and ``self.log_dict`` on one instance; remembers values per name."""

    def __init__(self, instance, user_files: set[str]) -> None:
        self.user_files = user_files
        self.values: dict[str, list] = {}
        self.lines: dict[str, int | None] = {}
        instance.log = self.log
        instance.log_dict = self.log_dict

    def clear(self) -> None:
        self.values.clear()
        self.lines.clear()

    def log(self, name, value, *args, **kwargs) -> None:
        self.values.setdefault(str(name), []).append(value)
        self.lines.setdefault(str(name), self._line())

    def log_dict(self, dictionary, *args, **kwargs) -> None:
        line = self._line()
        for name, value in dict(dictionary).items():
            self.values.setdefault(str(name), []).append(value)
            self.lines.setdefault(str(name), line)

    def _line(self) -> int | None:
        frame = sys._getframe(2)
        while frame is not None:
            if os.path.abspath(frame.f_code.co_filename) in self.user_files:
                return frame.f_lineno
            frame = frame.f_back
        return None

    def epoch_values(self) -> list[tuple[str, float, int | None]]:
        """(name, epoch value, line): the mean of per-batch numbers, or ``Metric.compute()``."""
        found = []
        for name, values in self.values.items():
            last = values[-1]
            if hasattr(last, "compute") and hasattr(last, "reset"):
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
    :func:`harness._recording_model`) so that evaluation metrics cannot match by chance.
    """

    def __init__(self, instance, sample: h.Sample) -> None:
        self.sample = sample
        self.hinted = False
        self.outputs: list[tuple[Any, Any]] = []
        target = instance
        for child in instance.children():
            if self._gives_scores(child):
                target = child
                break
        target.register_forward_hook(self._hook)

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

    def _hook(self, _module, inputs, output):
        import torch

        logits = getattr(output, "logits", output)
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or not inputs or not isinstance(inputs[0], torch.Tensor):
            return None
        rows = self.sample.rows_of(inputs[0])
        if self.hinted:
            found = rows >= 0
            hint = torch.zeros_like(logits)
            hint[found] = self.sample.hint_logits[rows[found]].to(logits.dtype)
            logits = logits + hint
            if logits is not output and hasattr(output, "logits"):
                output.logits = logits
            else:
                output = logits
        self.outputs.append((logits.detach().float().cpu(), rows))
        return output


def _optimizers(configured) -> list:
    """The optimizers of any ``configure_optimizers`` return form Lightning accepts."""
    import torch

    if configured is None:
        return []
    if isinstance(configured, torch.optim.Optimizer):
        return [configured]
    if isinstance(configured, dict):
        return _optimizers(configured.get("optimizer"))
    if isinstance(configured, (list, tuple)):
        if len(configured) == 2 and isinstance(configured[0], (list, tuple)):
            return _optimizers(list(configured[0]))
        found = []
        for item in configured:
            found.extend(_optimizers(item))
        return found
    return []


def run_lightning(unit: h.UnitRun, cls: type, spec: dict) -> None:
    for form in h.LABEL_FORMS:
        _run_form(unit, cls, spec, form)


def _run_form(unit: h.UnitRun, cls: type, spec: dict, form: str) -> None:
    import torch

    labels = f"{form} labels"
    name = spec["name"]
    steps = {m["name"]: m for m in spec["methods"]}
    try:
        placeholder = h._recording_model(unit.sample, hinted=False)
        positional, keywords = unit._arguments(spec["init"], form, placeholder, 0)
        instance = unit.build(cls, spec, positional, keywords)
    except BaseException as error:
        unit.row("FAIL", f"build ({labels})", f"{name}(...) raised {type(error).__name__}: {error}",
                 line=h._user_line(error, unit.path) or spec["line"], function=name, trace=h._user_traceback(error),
                 hint=h.BUILD_HINT)
        return
    logged = LoggedValues(instance, unit.recorder.user_files)
    tap = OutputTap(instance, unit.sample)
    loader = unit.sample.loader(form, spec.get("batch_keys", []))
    if "training_step" in steps:
        if not _train(unit, instance, steps["training_step"], loader, labels, logged, tap, name):
            return
    for step_name, phase in PHASES:
        if step_name in steps:
            if not _evaluate(unit, instance, steps[step_name], loader, labels, logged, tap, name, phase):
                return
    ran = ", ".join(steps)
    unit.row("PASS", f"steps ({labels})", f"{ran} ran on {h.SAMPLES} sample images without a Trainer",
             line=spec["line"], function=name)


def _train(unit, instance, step: dict, loader, labels, logged, tap, name) -> bool:
    function = f"{name}.training_step"
    try:
        optimizers = _optimizers(instance.configure_optimizers()) if hasattr(instance, "configure_optimizers") else []
    except BaseException as error:
        unit.row("FAIL", f"configure_optimizers ({labels})", f"raised {type(error).__name__}: {error}",
                 line=h._user_line(error, unit.path), function=name, trace=h._user_traceback(error))
        return False
    if not optimizers:
        optimizers = [__import__("torch").optim.AdamW(instance.parameters(), lr=h.LEARNING_RATE)]
    instance.train()
    epoch_losses: list[list[float]] = []
    for epoch in range(unit.epochs):
        start = len(unit.recorder.records)
        logged.clear()
        tap.outputs.clear()
        for batch_idx, batch in enumerate(loader):
            try:
                result = instance.training_step(batch, batch_idx)
                loss = result["loss"] if isinstance(result, dict) else result
                if getattr(loss, "requires_grad", False):
                    for optimizer in optimizers:
                        optimizer.zero_grad()
                    loss.backward()
                    for optimizer in optimizers:
                        optimizer.step()
            except BaseException as error:
                unit._loss_rows(function, labels, unit.recorder.records[start:])
                unit.row("FAIL", f"call ({labels})", f"training_step raised {type(error).__name__}: {error}",
                         line=h._user_line(error, unit.path) or step["line"], function=function,
                         trace=h._user_traceback(error), hint=h._crash_hint(error))
                return False
        epoch_losses.append([r["loss"] for r in unit.recorder.records[start:] if "loss" in r])
        if epoch == unit.epochs - 1:
            unit._loss_rows(function, labels, unit.recorder.records[start:])
    unit._falls_row({**step, "name": function}, labels, epoch_losses)
    _logged_rows(unit, logged, tap.outputs, labels, function, step)
    return True


def _evaluate(unit, instance, step: dict, loader, labels, logged, tap, name, phase) -> bool:
    import torch

    function = f"{name}.{step['name']}"
    instance.eval()
    logged.clear()
    tap.outputs.clear()
    tap.hinted = True
    start = len(unit.recorder.records)
    try:
        with torch.no_grad():
            for batch_idx, batch in enumerate(loader):
                getattr(instance, step["name"])(batch, batch_idx)
    except BaseException as error:
        unit._loss_rows(function, labels, unit.recorder.records[start:])
        unit.row("FAIL", f"call ({labels})", f"{step['name']} raised {type(error).__name__}: {error}",
                 line=h._user_line(error, unit.path) or step["line"], function=function,
                 trace=h._user_traceback(error), hint=h._crash_hint(error))
        return False
    finally:
        tap.hinted = False
    unit._loss_rows(function, labels, unit.recorder.records[start:])
    _logged_rows(unit, logged, tap.outputs, labels, function, step)
    return True


def _logged_rows(unit, logged: LoggedValues, outputs: list, labels: str, function: str, step: dict) -> None:
    metrics = [(n, v, line) for n, v, line in logged.epoch_values() if h.METRIC_NAME.search(n) and not h.LOSS_NAME.search(n)]
    if not metrics:
        return
    reference = unit._reference(outputs) if outputs else None
    for metric, value, line in metrics:
        check = f"logged {metric} ({labels})"
        if reference is None:
            unit.row("FAIL", check, f"logged {value:.4g}, but the module produced no class scores on sample images "
                     "during the step, so it cannot be compared", line=line or step["line"], function=function,
                     hint="log a metric computed from the module's outputs on the batch")
            continue
        status, reason, code, hint = h._judge_metric(value, reference, unit.threshold)
        unit.row(status, check, reason, line=line or step["line"], function=function, code=code, hint=hint)
