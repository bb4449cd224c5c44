"""What every framework module of the harness shares: the sample sizes, check rows, the user's
traceback and line, hints for a crash, ``args`` namespaces, and the interception of loss calls."""

from __future__ import annotations

import argparse
import functools
import os
import re
import sys
import traceback
from typing import Any, Callable

_PACKAGE = os.path.dirname(os.path.abspath(__file__))

SAMPLES = 128
BATCH_SIZE = 32
IMAGE_SIZE = 32
SAMPLE_KIND = "shapes"
LEARNING_RATE = 3e-3
LABEL_FORMS = ("int64", "float32")

CRITERION_DEFECTS = frozenset({"ML001", "ML002", "ML003"})
"""Loss failures that lie in the criterion itself: the row names the line that builds it."""
MODEL_DEFECTS = frozenset({"ML024", "ML103"})
"""Loss failures that lie in the logits: the row names the model's construction when the caller's is used."""
CLASS_COUNT_PARAMETER = re.compile(r"(num|n|nb)_?(classes|labels|class)|classes|out_features|output_dim")
"""Parameters of a model class or factory that take the class count: verify passes the sample's."""


def class_count_kwargs(factory, num_classes: int) -> dict[str, int]:
    """``{parameter: num_classes}`` for each class-count parameter of ``factory``'s signature."""
    import inspect

    return {name: num_classes for name in inspect.signature(factory).parameters if CLASS_COUNT_PARAMETER.fullmatch(name)}


def row(status: str, check: str, reason: str, *, file: str, line: int | None = None, function: str | None = None,
         code: str | None = None, hint: str = "", trace: str | None = None) -> dict:
    return {
        "file": file,
        "line": line,
        "function": function,
        "check": check,
        "status": status,
        "code": code,
        "reason": reason,
        "hint": hint,
        "traceback": trace,
    }


def user_traceback(error: BaseException) -> str:
    """The exception's traceback without this harness's own frames."""
    te = traceback.TracebackException.from_exception(error)
    for link in _chain(te):
        link.stack = traceback.StackSummary.from_list(
            [f for f in link.stack if os.path.dirname(os.path.abspath(f.filename)) != _PACKAGE])
    return "".join(te.format())


def _chain(te: traceback.TracebackException):
    while te is not None:
        yield te
        te = te.__cause__ or te.__context__


def user_line(error: BaseException, path: str) -> int | None:
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if os.path.abspath(frame.filename) == path:
            line = frame.lineno
    return line



def user_site(user_files: set[str]) -> tuple[str | None, int | None]:
    """The innermost frame of the calling stack that runs one of ``user_files``: (its file, its line)."""
    frame = sys._getframe(1)
    while frame is not None:
        if os.path.abspath(frame.f_code.co_filename) in user_files:
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return None, None

BUILD_HINT = ("verify builds the class from sample arguments chosen by parameter name; give the others with "
              "--bind NAME=VALUE (see docs/verify.md)")


def build_site(build: dict, path: str) -> str:
    """``Net(...) at train.py:40``: where the file builds an object verify built the same way."""
    return f"{build['name']}(...) at {os.path.basename(path)}:{build['line']}"


def caller_build(function: dict, role: str) -> dict | None:
    """How the file's caller builds the parameter of ``role`` (see migrate_ml/verify/builds.py)."""
    return next((p["build"] for p in function["params"] if p.get("role") == role and p.get("build")), None)


def constant_rate(_epoch: int) -> float:
    return 1.0


def import_hint(error: BaseException) -> str:
    """A missing package is the environment's, not the code's: say where to install it."""
    if isinstance(error, ModuleNotFoundError) and error.name:
        package = error.name.split(".")[0]
        return (f"install {package} into the environment verify runs user code in ({sys.executable}), "
                "or install migrate-ml[runtime] into your project's environment and run verify from there")
    if isinstance(error, ImportError) and error.name:
        package = error.name.split(".")[0]
        return (f"the installed {package} lacks this name (another version than your code was written for): run verify "
                "in your project's environment, or update the import")
    return "the module must import without side effects; guard scripts with if __name__ == '__main__':"


def error_text(error: BaseException) -> str:
    """The exception as the user should read it: verify's sample model named as such, not by its class."""
    if isinstance(error, MemoryError) and not str(error):
        return "MemoryError: out of the memory verify allows (--memory)"
    text = f"{type(error).__name__}: {error}"
    return re.sub(r"(recording_model\.<locals>\.)?'?RecordingModel'?( object)?", "verify's sample model", text)


def crash_hint(error: BaseException, function: dict | None = None, owner: str | None = None) -> str:
    from .stand_in_gaps import StandInGap

    if isinstance(error, StandInGap):
        return error.hint
    text = str(error)
    if isinstance(error, AttributeError) and "RecordingModel" in text:
        hint = ("the code uses an attribute of its own model class that verify's sample model (a ViT) lacks: let a "
                "caller in the file build the model (model = MyNet(...); see docs/verify.md)")
        return hint + (f", or build {owner} with a function of the file: --bind {owner}='FUNCTION()'" if owner else "")
    hparam = re.fullmatch(r"'AttributeDict' object has no attribute '(\w+)'", text)
    if isinstance(error, AttributeError) and hparam:
        # save_hyperparameters(args) keeps the sample namespace, which holds only the args.X verify saw read
        return (f"self.hparams has no {hparam.group(1)!r}: the args namespace verify passed holds only the attributes "
                f"the file reads as args.X; give this one with --bind args.{hparam.group(1)}=VALUE")
    unknown = unknown_args(function or {})
    if isinstance(error, TypeError) and "NoneType" in text and unknown:
        return (f"verify sets the args attributes it has no sample value for to None ({', '.join(unknown)}): give them "
                f"with --bind args.{unknown[0]}=VALUE")
    if "Found dtype Long" in text or "result type Float can't be cast" in text:
        return "the loss received integer targets: add .float() to the target at the loss call (rule ML010)"
    if "multi-target" in text or "0D or 1D target" in text:
        return "a class-index loss received multi-hot targets: use BCEWithLogitsLoss (rule ML001)"
    if isinstance(error, MemoryError) or "can't allocate memory" in text:
        return ("the file's process ran out of the memory verify allows (--memory, default 8G): lower the sizes "
                "the code allocates, or raise --memory")
    if "cannot be converted to Scalar" in text:
        return ("a label row is multi-hot: .item() cannot read one class from it; compare whole rows, "
                "(preds == labels).all(dim=1) for exact match (rule ML021)")
    return "the traceback above is from your code running on sample multi-label batches"


ROLE_DEFAULTS: dict[str, Any] = {
    "print_freq": 10**9, "max_norm": 0, "mixup_fn": None, "model_ema": None, "log_writer": None,
    "use_amp": False, "dry_run": False, "verbose": False, "batch_idx": 0,
}


KNOWN_ARGS: dict[str, Any] = {
    "log_interval": 10**9, "print_freq": 10**9, "dry_run": False, "no_cuda": True, "cuda": False,
    "use_cuda": False, "amp": False, "clip_grad": None, "max_norm": 0, "distributed": False, "gpu": None,
    "local_rank": -1, "world_size": 1, "rank": 0, "smoothing": 0.0, "mixup": 0.0, "cutmix": 0.0,
    "debug": False, "verbose": False, "seed": 0, "num_workers": 0, "workers": 0,
}
"""``args.X`` values verify gives a training script's namespace (besides the sample-dependent ones)."""
_SAMPLE_DEPENDENT_ARGS = frozenset({"lr", "learning_rate", "device", "batch_size", "epochs", "num_classes", "nb_classes",
                                    "n_classes", "num_labels", "threshold"})


def unknown_args(function: dict) -> list[str]:
    """The ``args.X`` a function reads that verify has no value for (they are None) and no ``--bind`` gave."""
    given = function.get("args_values", {})
    return [a for a in function.get("args_attributes", [])
            if a not in KNOWN_ARGS and a not in _SAMPLE_DEPENDENT_ARGS and a not in given]


def args_namespace(attributes: list[str], values: dict[str, Any], overrides: dict[str, Any]):
    known = {
        "lr": LEARNING_RATE, "learning_rate": LEARNING_RATE, "device": "cpu", "batch_size": BATCH_SIZE,
        "epochs": 1, "num_classes": values["num_classes"], "nb_classes": values["num_classes"],
        "n_classes": values["num_classes"], "num_labels": values["num_classes"], "threshold": values["threshold"],
        **KNOWN_ARGS,
    }
    namespace = argparse.Namespace()
    for attribute in attributes:
        setattr(namespace, attribute, overrides.get(attribute, known.get(attribute)))
    return namespace


class LossRecorder:
    """Records what every loss call received; nested calls (a module calling F.*) count once."""

    def __init__(self, user_files: set[str]) -> None:
        self.user_files = user_files
        self.records: list[dict] = []
        self._inside = False

    def wrap(self, original: Callable, kind: str, label: str, offset: int) -> Callable:
        recorder = self

        @functools.wraps(original)
        def intercepted(*args, **kwargs):
            if recorder._inside:
                return original(*args, **kwargs)
            logits = args[offset] if len(args) > offset else kwargs.get("input")
            target = args[offset + 1] if len(args) > offset + 1 else kwargs.get("target")
            recorder._inside = True
            try:
                result = original(*args, **kwargs)
            except Exception as error:
                recorder._add(kind, label, logits, target, None, error)
                raise
            finally:
                recorder._inside = False
            recorder._add(kind, label, logits, target, result, None)
            return result

        return intercepted

    def install(self) -> None:
        import torch.nn as nn
        import torch.nn.functional as F

        for name, kind in (("cross_entropy", "ce"), ("nll_loss", "nll"),
                           ("binary_cross_entropy_with_logits", "bce"), ("binary_cross_entropy", "bce-prob")):
            setattr(F, name, self.wrap(getattr(F, name), kind, f"F.{name}", 0))
        classes = [(nn.CrossEntropyLoss, "ce"), (nn.NLLLoss, "nll"), (nn.BCEWithLogitsLoss, "bce"), (nn.BCELoss, "bce-prob")]
        import timm.loss as timm_loss

        for name, kind in (("LabelSmoothingCrossEntropy", "ce"), ("SoftTargetCrossEntropy", "ce"),
                           ("BinaryCrossEntropy", "bce"), ("AsymmetricLossMultiLabel", "bce")):
            if hasattr(timm_loss, name):
                classes.append((getattr(timm_loss, name), kind))
        for cls, kind in classes:
            cls.forward = self.wrap(cls.forward, kind, cls.__name__, 1)

    def _add(self, kind, label, logits, target, result, error) -> None:
        import torch

        path, line = user_site(self.user_files)
        record: dict[str, Any] = {"kind": kind, "label": label, "path": path, "line": line, "error": None}
        if error is not None:
            record["error"] = f"{type(error).__name__}: {error}"
        if isinstance(logits, torch.Tensor):
            record["logits_shape"] = list(logits.shape)
            record["logits_form"] = logits_form(logits.detach())
            if logits.is_floating_point() and logits.numel() and bool(torch.isfinite(logits).all()):
                record["logits_min"], record["logits_max"] = float(logits.min()), float(logits.max())
                record["logits_count"] = logits.numel()
        if isinstance(target, torch.Tensor):
            t = target.detach()
            record["target_dtype"] = str(t.dtype).removeprefix("torch.")
            record["target_float"] = t.is_floating_point()
            record["target_shape"] = list(t.shape)
            if t.numel():
                record["target_min"], record["target_max"] = float(t.min()), float(t.max())
        if isinstance(result, torch.Tensor) and result.numel() >= 1:
            record["loss"] = float(result.detach().float().mean())
        self.records.append(record)


def logits_form(z) -> str:
    """``log_softmax``/``softmax`` when each row is a normalised distribution, else ``raw``."""
    import torch

    if z.ndim != 2 or z.shape[1] < 2 or not z.is_floating_point() or not torch.isfinite(z).all():
        return "raw"
    z = z.double()
    if bool((z <= 1e-6).all()) and bool((z.exp().sum(1) - 1).abs().max() < 1e-3):
        return "log_softmax"
    if bool(((z >= 0) & (z <= 1)).all()) and bool((z.sum(1) - 1).abs().max() < 1e-3):
        return "softmax"
    return "raw"


def patch_cuda() -> None:
    """``.cuda()`` in user code is a no-op here, so GPU-only scripts can be checked on CPU."""
    import torch

    if torch.cuda.is_available():
        return
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    torch.nn.Module.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    # DeiT/ConvNeXt/MAE engines synchronise and read memory statistics after every step.
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.empty_cache = lambda *a, **k: None
    torch.cuda.reset_peak_memory_stats = lambda *a, **k: None
    for statistic in ("max_memory_allocated", "memory_allocated", "max_memory_reserved", "memory_reserved"):
        setattr(torch.cuda, statistic, lambda *a, **k: 0)


def loss_scaler():
    """A disabled ``GradScaler`` that can also be called like timm's ``NativeScaler`` (DeiT/ConvNeXt engines:
    ``loss_scaler(loss, optimizer, clip_grad=max_norm, parameters=model.parameters())``)."""
    import torch

    class LossScaler(torch.amp.GradScaler):
        def __call__(self, loss, optimizer, clip_grad=None, clip_mode="norm", parameters=None, create_graph=False,
                     update_grad=True):
            loss.backward(create_graph=create_graph)
            if not update_grad:
                return None
            if clip_grad and parameters is not None:
                parameters = list(parameters)
                if clip_mode == "value":
                    torch.nn.utils.clip_grad_value_(parameters, clip_grad)
                else:
                    torch.nn.utils.clip_grad_norm_(parameters, clip_grad)
            optimizer.step()
            return None

    return LossScaler("cpu", enabled=False)
