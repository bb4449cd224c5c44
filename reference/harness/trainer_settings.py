"""The file's own Lightning ``Trainer(...)`` settings that verify's real ``Trainer`` applies (the spec carries them,
read statically by ``migrate-ml verify``): gradient accumulation and clipping, the precision the CPU runs, the epoch
count capped by ``--epochs``, and the callbacks the file constructs from literal arguments, with the files they write
kept in the scratch folder. What is not applied is said, with why."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

CPU_PRECISIONS = frozenset({"32", "32-true", "64", "64-true", "bf16", "bf16-mixed", "bf16-true"})
HALF_PRECISIONS = frozenset({"16", "16-mixed", "16-true", "half"})
CLIP_ALGORITHMS = frozenset({"norm", "value"})


@dataclass
class TrainerSettings:
    """What of the file's ``Trainer(...)`` call applies, and the two lists the rows report."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keywords for verify's ``Trainer``."""
    callbacks: list[tuple[type, list, dict]] = field(default_factory=list)
    """(class, args, kwargs) of each callback, built afresh for each run."""
    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    where: str = ""
    """``Trainer(...) at train.py:40``."""

    def build_callbacks(self, package, folder: str) -> list:
        """Fresh instances; a ``ModelCheckpoint`` writes in ``folder`` (the scratch folder), wherever the file said."""
        built = []
        for cls, args, kwargs in self.callbacks:
            if issubclass(cls, package.callbacks.ModelCheckpoint):
                kwargs = {**kwargs, "dirpath": os.path.join(folder, "checkpoints")}
            built.append(cls(*args, **kwargs))
        return built

    def checkpointing(self, package) -> bool:
        return any(issubclass(cls, package.callbacks.ModelCheckpoint) for cls, _, _ in self.callbacks)


def trainer_settings(call: dict | None, package, module, epochs: int) -> TrainerSettings:
    """The settings of ``call`` (the spec's ``trainer``) that apply to ``package``'s ``Trainer``; ``module``: the
    imported file, whose own callback classes ``call`` may name."""
    settings = TrainerSettings()
    if not call:
        return settings
    settings.where = f"Trainer(...) at {os.path.basename(call['path'])}:{call['line']}"
    settings.skipped.extend(f"{what} ({why})" for what, why in call["skipped"])
    for name, value in call["settings"].items():
        _apply(settings, name, value, epochs)
    for callback in call["callbacks"]:
        _callback(settings, callback, package, module)
    return settings


def _apply(settings: TrainerSettings, name: str, value, epochs: int) -> None:
    whole = isinstance(value, int) and not isinstance(value, bool)
    if name == "accumulate_grad_batches" and whole and value >= 1:
        settings.kwargs[name] = value
        settings.applied.append(f"{name}={value}")
    elif name == "gradient_clip_val" and (whole or isinstance(value, float)) and value >= 0:
        settings.kwargs[name] = value
        settings.applied.append(f"{name}={value}")
    elif name == "gradient_clip_algorithm" and value in CLIP_ALGORITHMS:
        settings.kwargs[name] = value
        settings.applied.append(f"{name}={value!r}")
    elif name == "precision" and str(value) in CPU_PRECISIONS:
        settings.kwargs[name] = value
        settings.applied.append(f"{name}={value!r}")
    elif name == "precision" and str(value) in HALF_PRECISIONS:
        settings.skipped.append(f"precision={value!r} (run in 32-bit: float16 training needs a GPU, verify runs on the "
                                "CPU)")
    elif name == "max_epochs" and whole and value >= 1:
        settings.kwargs[name] = min(value, epochs)
        capped = f" ({value} capped by --epochs)" if value > epochs else ""
        settings.applied.append(f"max_epochs={settings.kwargs[name]}{capped}")
    else:
        settings.skipped.append(f"{name}={value!r} (not applied: a value verify does not run)")


def _callback(settings: TrainerSettings, callback: dict, package, module) -> None:
    name = callback["name"]
    if "file_class" in callback:
        cls = getattr(module, callback["file_class"], None)
    else:
        cls = _resolve(callback["qualified_name"])
    args, kwargs = callback["args"], callback["kwargs"]
    why = ""
    if not (isinstance(cls, type) and issubclass(cls, package.Callback)):
        why = f"not a {package.__name__.split('.')[0]} Callback verify can import"
    elif issubclass(cls, package.callbacks.ProgressBar):
        why = "verify shows no progress bar"
    elif any(_leaves_scratch(value) for value in [*args, *kwargs.values()]) and not issubclass(
            cls, package.callbacks.ModelCheckpoint):
        why = "a path outside verify's scratch folder"
    else:
        try:
            cls(*args, **({**kwargs, "dirpath": os.getcwd()} if issubclass(cls, package.callbacks.ModelCheckpoint)
                          else kwargs))
        except Exception as error:
            why = f"building it raised {type(error).__name__}: {error}"
    if why:
        settings.skipped.append(f"callback {name}(...) at line {callback['line']} ({why})")
        return
    settings.callbacks.append((cls, args, kwargs))
    moved = " with its dirpath in the scratch folder" if issubclass(cls, package.callbacks.ModelCheckpoint) else ""
    settings.applied.append(f"callback {name}{moved}")


def _resolve(qualified_name: str):
    """``lightning.pytorch.callbacks.EarlyStopping``: the longest importable module prefix, then attributes."""
    parts = qualified_name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            value = getattr(value, part, None)
        return value
    return None


def _leaves_scratch(value) -> bool:
    """An absolute path, a home path or a way up: the callback would write outside the scratch folder."""
    return isinstance(value, str) and (os.path.isabs(value) or value.startswith("~") or ".." in value.split("/"))
