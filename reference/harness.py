"""The dynamic pass of ``migrate-ml verify``: run migrated code on sample multi-label data.

``python -m migrate_ml_reference.harness SPEC.json`` reads a spec written by ``migrate-ml verify``
(which found the functions and the role of each parameter; this module never imports
``migrate_ml``), and writes a JSON list of check rows to ``spec["result"]``.

The parent process imports torch, timm and torchmetrics once, then runs each user file in a
forked child (a fresh subprocess per file where ``fork`` is missing), from a scratch working
folder, in a process group of its own, cut off from the network, and with a deadline: a child
that hangs dumps its stack and exits, and the parent kills it if even that fails. Whatever the
file's code started is killed with its group when its run ends. User code never runs in the
parent.

In the child, every loss call is intercepted (the functional losses and the ``forward`` of the
loss modules, patched before the user module is imported so ``from ... import`` binds the
patched ones). Each function is called with sample objects chosen by parameter role, once with
int64 and once with float32 multi-hot labels. Checks: what each loss received (criterion kind,
target dtype/shape/range, logits that are really log-probabilities or probabilities), that the
loss is finite and falls over epochs, that returned metrics equal the reference metrics on the
very predictions the model produced during the call, and that the file's own model classes
return raw logits.
"""

from __future__ import annotations

import argparse
import faulthandler
import functools
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

from . import budget, checks_outputs, checks_state, checks_threshold

SAMPLES = 128
BATCH_SIZE = 32
IMAGE_SIZE = 32
SAMPLE_KIND = "shapes"
LEARNING_RATE = 3e-3
TOLERANCE = 1e-3
HINT_LOGIT = 3.0
HINT_FLIP_FRACTION = 0.4
KILL_GRACE_S = 5.0

LABEL_FORMS = ("int64", "float32")
METRIC_NAME = re.compile(r"acc|correct|exact|match|f1|(?<![a-z])map(?![a-z])|m_ap|precision|recall|score|metric|hamming|jaccard|"
                         r"(?<![a-z])m?iou(?![a-z])|(?-i:IoU)", re.I)
LOSS_NAME = re.compile(r"loss", re.I)
MEASURE_NAMES = (
    ("jaccard", re.compile(r"jaccard|(?<![a-z])m?iou(?![a-z])|(?-i:IoU)", re.I)),
    ("hamming", re.compile(r"hamming", re.I)),
    ("mAP", re.compile(r"\bmap\b|(?<![a-z])m_?ap(?![a-z])|average_?precision", re.I)),
    ("F1", re.compile(r"f1|(?<![a-z])f_?(score|measure)", re.I)),
    ("precision", re.compile(r"precision|(?<![a-z])prec(?![a-z])", re.I)),
    ("recall", re.compile(r"recall|(?<![a-z])rec(?![a-z])", re.I)),
    ("exact match", re.compile(r"acc|correct|exact|match|subset", re.I)),
)
"""What a metric's name says it measures, searched in order, each match blanked before the next search:
"jaccard" holds "acc" and "average_precision" holds "precision", but neither is that measure."""
AVERAGE_NAMES = (
    ("samples", re.compile(r"sample|example", re.I)),
    ("weighted", re.compile(r"weight", re.I)),
    ("micro", re.compile(r"micro|overall|(?<![a-z])o(?=f1)", re.I)),
    ("macro", re.compile(r"macro|per_?class|classwise|(?<![a-z])c(?=f1)", re.I)),
)
"""The ``average`` a metric's name states (``f1_samples``, ``macro_f1``, ML-GCN's OF1 and CF1)."""
AVERAGED_MEASURES = ("F1", "precision", "recall", "jaccard")
ZERO_DIVISION_1 = "(zero_division=1)"
BATCH_MEAN = " (mean over batches)"
"""Suffix of a reference computed per batch and averaged, as a loop summing per-batch F1 does and as
Lightning aggregates a value logged in every step."""
"""Suffix of a reference computed with 0/0 counted as 1 (scikit-learn's ``zero_division=1``) instead of 0."""
REFERENCE_KINDS = {"CF1": ("F1", "macro"), "mAP": ("mAP", "macro"), "mAP_micro": ("mAP", "micro"),
                   "hamming_loss": ("hamming", ""), "1-hamming_loss": ("hamming", "")}
"""(measure, average) of the references not named ``<measure>_<average>``."""
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

_HERE = os.path.abspath(__file__)


# ----------------------------------------------------------------------------- rows


def _row(status: str, check: str, reason: str, *, file: str, line: int | None = None, function: str | None = None,
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


def _user_traceback(error: BaseException) -> str:
    """The exception's traceback without this harness's own frames."""
    te = traceback.TracebackException.from_exception(error)
    for link in _chain(te):
        link.stack = traceback.StackSummary.from_list([f for f in link.stack if os.path.abspath(f.filename) != _HERE])
    return "".join(te.format())


def _chain(te: traceback.TracebackException):
    while te is not None:
        yield te
        te = te.__cause__ or te.__context__


def _user_line(error: BaseException, path: str) -> int | None:
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if os.path.abspath(frame.filename) == path:
            line = frame.lineno
    return line


# ----------------------------------------------------------------------------- isolation


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000


def _block_network() -> None:
    """Cut this process (and all it starts) off the network.

    Where the kernel allows it, a new network namespace: no interface but a loopback that is
    down, so no connection of any kind can be made, whatever library makes it. As root that
    is ``unshare(CLONE_NEWNET)``; otherwise inside a user namespace mapping our own uid/gid.
    Where neither is permitted (macOS, containers without namespace rights), socket
    connections made through the ``socket`` module are refused, which code calling ``_socket``
    or the C library directly can bypass (see docs/verify.md).
    """
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "WANDB_MODE"):
        os.environ[name] = "offline" if name == "WANDB_MODE" else "1"
    if _unshare_network():
        return

    def refuse(*_args, **_kwargs):
        raise OSError("network access is disabled while migrate-ml verify runs user code")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]


def _unshare_network() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        unshare = libc.unshare
    except (OSError, AttributeError):
        return False
    if unshare(CLONE_NEWNET) == 0:
        return True
    uid, gid = os.getuid(), os.getgid()
    if unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        return False
    try:  # keep our own uid/gid inside the user namespace, so file access is unchanged
        with open("/proc/self/setgroups", "w") as handle:
            handle.write("deny")
        with open("/proc/self/uid_map", "w") as handle:
            handle.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as handle:
            handle.write(f"{gid} {gid} 1")
    except OSError:
        pass  # unmapped ids read as nobody; the network is cut off all the same
    return True


_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
_RUNNING_GROUPS: list[int] = []
"""The process group of the file running now (killed if the harness must stop at once)."""


def _die_with_parent(signum: int = signal.SIGKILL) -> None:
    """Linux: get ``signum`` when the parent dies, so a killed ``migrate-ml`` leaves nothing behind."""
    _prctl(PR_SET_PDEATHSIG, signum)


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, value) == 0
    except (OSError, AttributeError):
        return False


def _supervise(scratch: str) -> None:
    """Make every process user code starts die with this run, however ``migrate-ml`` ends.

    Where the kernel allows it (Linux, in the user namespace :func:`_block_network` entered),
    the harness moves into a PID namespace of its own: this process forks the namespace's first
    process, which runs the harness, and stays outside as its supervisor. When that first
    process ends, the kernel kills everything left in the namespace, a ``setsid`` double-forked
    daemon included. The supervisor gets SIGTERM when ``migrate-ml`` dies (even by SIGKILL,
    through ``PR_SET_PDEATHSIG``): it kills the namespace and removes the scratch folder that
    ``migrate-ml`` could not. Elsewhere the harness becomes a child subreaper, so orphans of
    user code stay its descendants, and ``migrate-ml`` sweeps what carries the run's marker.
    """
    def scratch_gone(_signum, _frame):
        for group in _RUNNING_GROUPS:
            _kill_group(group)
        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(128 + signal.SIGTERM)

    for number in _STOP_SIGNALS:
        signal.signal(number, scratch_gone)
    _die_with_parent(signal.SIGTERM)
    if not _unshare(CLONE_NEWPID):
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # PID 1 of the namespace: the harness itself
        for number in _STOP_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        _die_with_parent(signal.SIGKILL)
        return

    def namespace_gone(_signum, _frame):
        os.kill(pid, signal.SIGKILL)
        scratch_gone(_signum, _frame)

    for number in _STOP_SIGNALS:
        signal.signal(number, namespace_gone)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _unshare(flags: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).unshare(flags) == 0
    except (OSError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate_ml_reference.harness")
    parser.add_argument("spec")
    parser.add_argument("--unit", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    with open(options.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    _die_with_parent()
    _block_network()
    if options.unit is not None:  # the no-fork path: this process is the child
        _limit_memory(spec.get("memory"))
        _child(spec, options.unit)
        return 0
    _supervise(spec["scratch"])
    # Loaded once here, inherited by every forked child.
    import timm  # noqa: F401
    import torchmetrics.functional.classification  # noqa: F401

    from . import api  # noqa: F401

    rows: list[dict] = []
    for index, unit in enumerate(spec["units"]):
        rows.extend(_run_isolated(spec, index, unit))
        _write_json(spec["result"], rows)
    _write_json(spec["result"], rows)
    return 0


def _write_json(path: str, value: Any) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(value, handle)
    os.replace(temporary, path)


def _unit_paths(spec: dict, index: int) -> tuple[str, str, str]:
    folder = os.path.join(spec["scratch"], f"unit{index}")
    os.makedirs(folder, exist_ok=True)
    return folder, os.path.join(folder, "rows.json"), os.path.join(folder, "stack.txt")


def _run_isolated(spec: dict, index: int, unit: dict) -> list[dict]:
    folder, rows_path, stack_path = _unit_paths(spec, index)
    timeout = float(spec["timeout"])
    if hasattr(os, "fork"):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                for number in _STOP_SIGNALS:  # the supervisor's handlers are not the user's
                    signal.signal(number, signal.SIG_DFL)
                os.setpgid(0, 0)  # the file's own process group: whatever it starts dies with it
                _die_with_parent()
                _limit_memory(spec.get("memory"))
                _child(spec, index)
            finally:
                os._exit(0)
        _RUNNING_GROUPS[:] = [pid]
        started_wall, started = time.time(), time.monotonic()
        while True:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > budget.parent_deadline(folder, started_wall, started, timeout, KILL_GRACE_S):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.05)
        _kill_group(pid)
    else:
        child = subprocess.Popen([sys.executable, "-m", "migrate_ml_reference.harness", sys.argv[1], "--unit", str(index)],
                                 cwd=folder, start_new_session=True)
        try:
            child.wait(timeout + KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        _kill_group(child.pid)
        child.wait()
    if os.path.exists(rows_path):
        with open(rows_path, encoding="utf-8") as handle:
            return json.load(handle)
    return [_lost_child(unit, stack_path, timeout, budget.read_progress(folder))]


def _limit_memory(limit: int | None) -> None:
    """``--memory``: the data segment (heap and private mappings, the runtime's own included).

    RLIMIT_DATA rather than RLIMIT_AS: address space reserved but never written (CUDA's, torch's
    allocator arenas) does not count, so the limit measures memory the file's code can fill.
    Past it an allocation fails: a ``MemoryError`` or torch's "can't allocate memory" in the call.
    """
    if not limit:
        return
    import resource

    kind = getattr(resource, "RLIMIT_DATA", None) or getattr(resource, "RLIMIT_AS", None)
    if kind is None:
        return
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(kind, (limit, hard if hard != resource.RLIM_INFINITY else limit))
    except (ValueError, OSError):
        pass  # a limit below what the process already holds: the run reports its own failure


def _kill_group(group: int) -> None:
    """Kill what the file's code left running (a Popen, a forked loop) once its run is over."""
    if not hasattr(os, "killpg"):
        return
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _lost_child(unit: dict, stack_path: str, timeout: float, progress: dict) -> dict:
    stack = ""
    if os.path.exists(stack_path):
        with open(stack_path, encoding="utf-8", errors="replace") as handle:
            stack = handle.read()
    path = unit["path"]
    line = None
    where = ""
    for match in re.finditer(r'File "([^"]+)", line (\d+) in (\S+)', stack):
        if os.path.abspath(match.group(1)) in unit["user_files"]:
            line = int(match.group(2)) if os.path.abspath(match.group(1)) == path else None
            where = f" in {match.group(3)} ({os.path.basename(match.group(1))}:{match.group(2)})"
            break  # faulthandler lists the most recent call first
    running = budget.where(progress, path)
    if running:
        where = f"{where}, while running {running}" if where else f" in {running}"
        line = line or progress.get("line")
    timeout = progress.get("limit_s", timeout)
    if stack.strip():
        if line is not None:  # keep the user's frames: torch's internals say nothing about the hang
            kept = [text for text in stack.splitlines()
                    if not text.startswith("  File ") or f'"{path}"' in text or any(f'"{p}"' in text for p in unit["user_files"])]
            stack = "\n".join(kept) + "\n"
        return _row("FAIL", "run", f"timed out after {timeout:g} s{where}", file=path, line=line,
                    function=progress.get("entry") or None,
                    hint="make the function finish on 128 samples, or raise --timeout (it bounds the first step of each "
                    "entry point)", trace=stack)
    return _row("FAIL", "run", "the process running this file died without a result (killed, out of memory, or crashed in native code)",
                file=path, hint="run the file on `migrate-ml sample-data` output to see the crash")


def _child(spec: dict, index: int) -> None:
    folder, rows_path, stack_path = _unit_paths(spec, index)
    unit = spec["units"][index]
    os.chdir(folder)
    with open(stack_path, "w", encoding="utf-8") as stack:
        unit_run = UnitRun(spec, unit)
        unit_run.budget = budget.Budget(folder, float(spec["timeout"]), stack)
        try:
            rows = unit_run.run()
        except BaseException as error:  # the harness itself failed: still a row, never silence
            rows = [_row("FAIL", "run", f"verify could not run this file: {type(error).__name__}: {error}",
                         file=unit["path"], trace=_user_traceback(error))]
        faulthandler.cancel_dump_traceback_later()
    _write_json(rows_path, rows)


# ----------------------------------------------------------------------------- loss interception


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

    def _site(self) -> tuple[str | None, int | None]:
        frame = sys._getframe(2)
        while frame is not None:
            if os.path.abspath(frame.f_code.co_filename) in self.user_files:
                return frame.f_code.co_filename, frame.f_lineno
            frame = frame.f_back
        return None, None

    def _add(self, kind, label, logits, target, result, error) -> None:
        import torch

        path, line = self._site()
        record: dict[str, Any] = {"kind": kind, "label": label, "path": path, "line": line, "error": None}
        if error is not None:
            record["error"] = f"{type(error).__name__}: {error}"
        if isinstance(logits, torch.Tensor):
            record["logits_shape"] = list(logits.shape)
            record["logits_form"] = _logits_form(logits.detach())
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


def _logits_form(z) -> str:
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


def _patch_cuda() -> None:
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


def _loss_scaler():
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


# ----------------------------------------------------------------------------- sample objects


class Sample:
    """The sample split every function of a file sees, and how to recognise its rows."""

    def __init__(self, num_classes: int | None = None, threshold: float = 0.5) -> None:
        import torch

        from .api import make_sample_tensors
        from .checks_threshold import band_mask, band_value

        self.images, self.targets, self.class_names = make_sample_tensors(SAMPLE_KIND, SAMPLES, IMAGE_SIZE, seed=0)
        if num_classes and num_classes != self.targets.shape[1]:
            self._resize(num_classes)
        self.num_classes = self.targets.shape[1]
        generator = torch.Generator().manual_seed(0)
        self._projection = torch.randn(self.images[0].numel(), generator=generator, dtype=torch.float64)
        self._keys = self.images.flatten(1).double() @ self._projection
        hint = self.targets * 2 - 1
        flipped = torch.rand(SAMPLES, generator=generator) < HINT_FLIP_FRACTION
        column = torch.randint(self.num_classes, (SAMPLES,), generator=generator)
        rows = torch.nonzero(flipped).flatten()
        hint[rows, column[rows]] *= -1
        self.hint_logits = hint * HINT_LOGIT
        self.band, self.band_value = band_mask(self.targets, generator), band_value(threshold)

    def _resize(self, num_classes: int) -> None:
        """Sized to the file's own class count: columns dropped, or random extra labels (p=0.2) added."""
        import torch

        kept = self.targets[:, :num_classes]
        extra = num_classes - kept.shape[1]
        if extra > 0:
            generator = torch.Generator().manual_seed(1)
            kept = torch.cat([kept, (torch.rand(SAMPLES, extra, generator=generator) < 0.2).float()], dim=1)
        self.targets = kept
        self.class_names = (list(self.class_names) + [f"label{i}" for i in range(len(self.class_names), num_classes)])[:num_classes]

    def rows_of(self, images) -> Any:
        """Sample index of each row of ``images`` (-1 where the row is not a sample image)."""
        import torch

        if tuple(images.shape[1:]) != tuple(self.images.shape[1:]):
            return torch.full((images.shape[0],), -1, dtype=torch.long)
        keys = images.detach().cpu().flatten(1).double() @ self._projection
        distance = (keys[:, None] - self._keys[None, :]).abs()
        best = distance.argmin(1)
        scale = self._keys.abs().max() + 1
        return torch.where(distance.gather(1, best[:, None])[:, 0] < 1e-6 * scale, best, torch.full_like(best, -1))

    def loader(self, form: str, keys: list[str]):
        import torch
        from torch.utils.data import DataLoader, Dataset, TensorDataset

        labels = self.targets.long() if form == "int64" else self.targets.clone()
        if not keys:
            return DataLoader(TensorDataset(self.images, labels), batch_size=BATCH_SIZE, shuffle=False)
        images = self.images

        class DictDataset(Dataset):
            def __len__(self):
                return SAMPLES

            def __getitem__(self, i):
                return {key: labels[i] if _is_label_key(key) else images[i] for key in keys}

        del torch
        return DataLoader(DictDataset(), batch_size=BATCH_SIZE, shuffle=False)


def _is_label_key(key: str) -> bool:
    return bool(re.search(r"label|target|^y$|^gt$", key, re.I))


def _recording_model(sample: Sample, hinted: bool, hf: bool = False, net=None):
    """The reference model (or ``net``, the file's own), recording its outputs; ``hinted`` adds near-correct logits.

    Hints (true labels at +-3 logits, one label flipped on 40% of the samples) make an
    untrained model's predictions structured, so exact match, per-label accuracy and
    thresholded softmax give different numbers and a wrong metric cannot match by chance.
    """
    import torch
    import torch.nn as nn

    from .api import create_reference_model
    from .checks_threshold import hint

    class RecordingModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net if net is not None else create_reference_model(sample.num_classes, img_size=IMAGE_SIZE)
            self.outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

        def forward(self, x, *args, **kwargs):
            out = self.net(x, *args, **kwargs)
            rows = sample.rows_of(x)
            if hinted:
                out = hint(sample, out, rows)
            self.outputs.append((out.detach().float().cpu(), rows))
            return out

    torch.manual_seed(0)
    if hf:
        from .harness_frameworks import hf_style

        return hf_style(RecordingModel(), num_labels=sample.num_classes)
    return RecordingModel()


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


def _args_namespace(attributes: list[str], values: dict[str, Any], overrides: dict[str, Any]):
    import argparse as _argparse

    known = {
        "lr": LEARNING_RATE, "learning_rate": LEARNING_RATE, "device": "cpu", "batch_size": BATCH_SIZE,
        "epochs": 1, "num_classes": values["num_classes"], "nb_classes": values["num_classes"],
        "n_classes": values["num_classes"], "num_labels": values["num_classes"], "threshold": values["threshold"],
        **KNOWN_ARGS,
    }
    namespace = _argparse.Namespace()
    for attribute in attributes:
        setattr(namespace, attribute, overrides.get(attribute, known.get(attribute)))
    return namespace


# ----------------------------------------------------------------------------- one file


class UnitRun:
    def __init__(self, spec: dict, unit: dict) -> None:
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

    def row(self, status: str, check: str, reason: str, **kw) -> None:
        self.rows.append(_row(status, check, reason, file=self.path, **kw))

    def run(self) -> list[dict]:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        self.recorder = LossRecorder({os.path.abspath(p) for p in self.unit["user_files"]})
        self.recorder.install()
        self.metric_states = checks_state.MetricStates(self.recorder.user_files)
        self.metric_states.install()
        _patch_cuda()
        from .harness_frameworks import untrained_builders

        untrained_builders()
        self.sample = Sample(self.unit.get("num_classes"), self.threshold)
        pretrained = None
        if self.unit.get("from_pretrained"):
            from .harness_frameworks import PretrainedCalls, hf_style

            pretrained = PretrainedCalls(self.recorder.user_files, lambda num_labels, problem_type: hf_style(
                _recording_model(self.sample, hinted=False), problem_type, num_labels))
            if not pretrained.install():
                pretrained = None
        try:
            module = self.module = self._import()
        except BaseException as error:
            self.row("FAIL", "import", f"importing the file failed: {type(error).__name__}: {error}",
                     line=_user_line(error, self.path), trace=_user_traceback(error), hint=_import_hint(error))
            return self.rows
        for name in self.unit.get("model_classes", []):
            self._check_model_class(module, name)
        for function in self.unit["functions"]:
            self._run_function(module, function)
        for spec in self.unit.get("classes", []):
            cls = getattr(module, spec["name"], None)
            if not isinstance(cls, type):
                self.row("FAIL", "build", f"{spec['name']} is not a class of the imported module", line=spec["line"])
            elif spec["kind"] == "lightning":
                from .harness_lightning import run_lightning

                run_lightning(self, cls, spec)
            else:
                for method in spec["methods"]:
                    for form in LABEL_FORMS:
                        self._run_form(None, method, form, owner=(cls, spec))
        if pretrained is not None:
            self._problem_type_rows(pretrained.calls)
        if not self.rows:  # the file's only entry points were model classes verify could not build
            for name, why in self.unchecked_models:
                self.row("SKIP", f"model {name} outputs", f"not checked: {why}", line=self._line_of(getattr(module, name)))
        return self.rows

    def build(self, cls: type, spec: dict, positional: list, keywords: dict):
        """An instance of ``cls``: from the ``--bind CLASS='FUNCTION()'`` factory, else from sample arguments."""
        factory = spec.get("factory")
        if not factory:
            return cls(*positional, **keywords)
        module_name, _, attribute = factory.rpartition(".")
        owner = importlib.import_module(module_name) if module_name else self.module
        return getattr(owner, attribute)()

    def _problem_type_rows(self, calls: list[dict]) -> None:
        """One row per ``from_pretrained`` site: its head must be built for multi-label."""
        if not calls:
            self.row("SKIP", "problem_type", "from_pretrained was not called on import or by an entry point verify "
                     "runs, so its problem_type was checked by the static pass only")
        seen = set()
        for call in calls:
            if call["line"] in seen:
                continue
            seen.add(call["line"])
            check = f"problem_type of {call['class']}.from_pretrained"
            if call["problem_type"] == "multi_label_classification":
                self.row("PASS", check, "problem_type='multi_label_classification': the head's loss is "
                         "BCEWithLogitsLoss", line=call["line"])
            else:
                self.row("FAIL", check, f"problem_type is {call['problem_type']!r}: with integer labels transformers "
                         "infers single_label_classification and trains a cross-entropy (softmax) head",
                         line=call["line"], code="ML005",
                         hint="pass problem_type='multi_label_classification' to from_pretrained (rule ML005)")

    def _import(self):
        for folder in reversed(self.unit["search_path"]):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        name = re.sub(r"\W", "_", self.unit["module"])
        spec = importlib.util.spec_from_file_location(name, self.path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    # -- model classes

    def _check_model_class(self, module, name: str) -> None:
        import inspect

        import torch

        cls = getattr(module, name, None)
        if cls is None:
            return
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):
            return
        kwargs = class_count_kwargs(cls, self.sample.num_classes)
        for parameter in signature.parameters.values():
            if parameter.name not in kwargs and parameter.default is inspect.Parameter.empty and parameter.kind not in (
                    inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                self.unchecked_models.append((name, f"{name}() needs `{parameter.name}`, which verify has no sample "
                                              "value for"))
                return
        try:
            model = cls(**kwargs).eval()
        except Exception as error:
            self.unchecked_models.append((name, f"{name}() raised {type(error).__name__}: {error}"))
            return
        for shape in ((3, IMAGE_SIZE, IMAGE_SIZE), (1, 28, 28), (1, IMAGE_SIZE, IMAGE_SIZE), (3, 224, 224)):
            try:
                with torch.no_grad(), checks_outputs.LastOp(self.recorder.user_files).watch(model) as last:
                    out = model(torch.randn(4, *shape))
            except Exception:
                continue
            if not isinstance(out, torch.Tensor) or out.ndim != 2:
                return
            line = self._line_of(cls)
            form = _logits_form(out)
            what = f"{name}.forward" if isinstance(cls, type) else f"the model {name}() builds"
            if form == "log_softmax":
                self.row("FAIL", f"model {name} outputs", f"{what} returns log-probabilities (log_softmax over "
                         "classes: each row's exp sums to 1), which couples the labels",
                         line=line, code="ML103", hint="return raw logits from forward and use BCEWithLogitsLoss (rule ML103)")
            elif form == "softmax":
                self.row("FAIL", f"model {name} outputs", f"{what} returns softmax probabilities (each row "
                         "sums to 1), so labels compete", line=line, code="ML024",
                         hint="return raw logits; apply torch.sigmoid only for predictions (rule ML024)")
            elif clamped := checks_outputs.never_negative_row(what, out, last):
                status, reason, op_line, hint = clamped
                self.row(status, f"model {name} outputs", reason, line=op_line or line, hint=hint)
            else:
                self.row("PASS", f"model {name} outputs", f"{what} returns raw logits {list(out.shape)}", line=line)
            return

    @staticmethod
    def _line_of(obj) -> int | None:
        import inspect

        try:
            return inspect.getsourcelines(obj)[1]
        except (OSError, TypeError):
            return None

    # -- functions

    def _run_function(self, module, function: dict) -> None:
        name = function["name"]
        func = getattr(module, name, None)
        if not callable(func):
            self.row("FAIL", "call", f"{name} is not a callable attribute of the imported module",
                     line=function["line"], function=name)
            return
        for form in LABEL_FORMS:
            self._run_form(func, function, form)

    def _arguments(self, function: dict, form: str, model, epoch: int, *, factories: bool = False):
        """Sample values for ``function``'s parameters, by role.

        ``factories``: a LightningModule's constructor, which receives the optimizer (and scheduler) as a
        factory it calls in ``configure_optimizers`` (``self.hparams.optimizer(params=self.parameters())``,
        the lightning-hydra-template form); an optional scheduler keeps its default.
        """
        import functools

        import torch

        loader = self.sample.loader(form, function.get("batch_keys", []))
        optimizer = self._optimizer(function, model)
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
                value = functools.partial(torch.optim.lr_scheduler.LambdaLR, lr_lambda=_constant_rate)
            elif role == "device":
                value = torch.device("cpu")
            elif role == "epoch":
                value = epoch
            elif role == "criterion":
                value = self._criterion(function.get("criterion"))
            elif role == "args":
                value = _args_namespace(function.get("args_attributes", []), values, function.get("args_values", {}))
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
            elif role == "eval_prediction":
                value = _eval_prediction(model(self.sample.images).detach().numpy(),
                                         self.sample.targets.numpy().astype("int64" if form == "int64" else "float32"))
            elif role == "image_path":
                from .harness_frameworks import sample_image_file

                value = sample_image_file(self.sample)
            elif role == "accelerator":
                from .harness_frameworks import accelerator

                value = accelerator()
            elif role == "threshold":
                value = self.threshold
            elif role == "num_classes":
                value = self.sample.num_classes
            elif role == "class_names":
                value = list(self.sample.class_names)
            elif role == "scaler":
                value = _loss_scaler()
            elif role == "scheduler":
                value = torch.optim.lr_scheduler.LambdaLR(optimizer, _constant_rate)
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

    def _optimizer(self, function: dict, model):
        """The optimizer the file's caller builds (a ``torch.optim`` class with its literal keywords), else AdamW."""
        import torch

        build = _caller_build(function, "optimizer")
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

    def _caller_model(self, build: dict | None) -> tuple[Any, str]:
        """The model as the file's caller builds it (``Net(num_classes=C)``), and how the call row describes it.

        None (the reference ViT is used) when it cannot be built from the caller's literal keywords
        or does not map a batch of sample images to ``[B, C]`` logits.
        """
        import torch

        if not build:
            return None, ""
        where = _site(build, self.path)
        factory = getattr(self.module, build["name"], None)
        try:
            kwargs = {k: v for k, v in build["kwargs"].items() if not CLASS_COUNT_PARAMETER.fullmatch(k)}
            kwargs.update(class_count_kwargs(factory, self.sample.num_classes))
            torch.manual_seed(0)
            net = factory(**kwargs)
            with torch.no_grad():
                out = net.eval()(self.sample.images[:2])
            net.train()
        except Exception as error:
            return None, f"with the reference ViT, as {where} raised {type(error).__name__}: {error}"
        if not (isinstance(out, torch.Tensor) and tuple(out.shape) == (2, self.sample.num_classes)):
            return None, f"with the reference ViT, as {where} does not map sample images to [B, {self.sample.num_classes}]"
        return net, f"model built as {where}"

    def _criterion(self, criterion: dict | None):
        import torch

        if criterion:
            module_name, _, attribute = criterion["qualified_name"].rpartition(".")
            try:
                cls = getattr(importlib.import_module(module_name), attribute)
                return cls(**criterion.get("kwargs", {}))
            except Exception:
                pass
        return torch.nn.BCEWithLogitsLoss()

    def _run_form(self, func, function: dict, form: str, owner: tuple[type, dict] | None = None) -> None:
        """Call ``func`` (or, with ``owner``, the method of a class built from sample arguments)."""
        self.budget.entry(function["name"] if owner is None else f"{owner[1]['name']}.{function['name']}",
                          function["line"], self.epochs if function["trains"] else 1, f"{form} labels")
        if function.get("predicts") and func is not None:
            from .harness_frameworks import prepare_default_files

            prepare_default_files(func, self.sample)
        trains = function["trains"]
        model_build = _caller_build(function, "model") or (owner and _caller_build(owner[1]["init"], "model"))
        net, model_built_as = self._caller_model(model_build)
        self.built_as = [model_built_as] if model_built_as else []
        self.model_built_at = _site(model_build, self.path) if net is not None else ""
        model = _recording_model(self.sample, hinted=not trains, hf=function.get("hf_model", False), net=net)
        name = function["name"] if owner is None else f"{owner[1]['name']}.{function['name']}"
        labels = f"{form} labels"
        epochs = self.epochs if trains else 1
        epoch_losses: list[list[float]] = []
        returned = None
        first_output = 0  # a metric helper's logits are computed while its arguments are built
        try:
            if owner is not None:
                cls, spec = owner
                init_positional, init_keywords = self._arguments(spec["init"], form, model, 0)
                try:
                    instance = self.build(cls, spec, init_positional, init_keywords)
                except BaseException as error:
                    self.row("FAIL", f"build ({labels})", f"{spec['name']}(...) raised {type(error).__name__}: {error}",
                             line=_user_line(error, self.path) or spec["line"], function=spec["name"],
                             trace=_user_traceback(error), hint=BUILD_HINT)
                    return
                func = getattr(instance, function["name"])
            positional, keywords = self._arguments(function, form, model, 0)
        except Exception as error:
            self.row("FAIL", f"call ({labels})", f"could not build the sample arguments: {type(error).__name__}: {error}",
                     line=function["line"], function=name, trace=_user_traceback(error))
            return
        self.metric_states.take()
        for epoch in range(epochs):
            self.metric_states.mark()
            for param in function["params"]:
                if param["role"] == "epoch":
                    if param["kind"] == "positional_only":
                        continue
                    keywords[param["name"]] = epoch
            start = len(self.recorder.records)
            if epoch:
                first_output = len(model.outputs)
            try:
                returned = func(*positional, **keywords)
            except BaseException as error:  # SystemExit too: user code must not end the check
                self._loss_rows(name, labels, self.recorder.records[start:], function.get("criterion"))
                self.row("FAIL", f"call ({labels})", f"{name} raised {_error_text(error)}",
                         line=_user_line(error, self.path) or function["line"], function=name,
                         trace=_user_traceback(error),
                         hint=_crash_hint(error, function, owner[1]["name"] if owner else None))
                return
            self.budget.step_done()
            epoch_losses.append([r["loss"] for r in self.recorder.records[start:] if "loss" in r])
            if epoch == epochs - 1:
                self._loss_rows(name, labels, self.recorder.records[start:], function.get("criterion"))
        if trains:
            self._falls_row({**function, "name": name}, labels, epoch_losses)
        self._metric_rows({**function, "name": name}, labels, returned, model.outputs[first_output:],
                          self.metric_state_rows(name, labels, function["line"]))
        if function.get("predicts"):
            from .harness_frameworks import judge_prediction


            status, reason, code, hint = judge_prediction(returned, self.sample)
            self.row(status, f"prediction ({labels})", reason, line=function.get("return_line") or function["line"],
                     function=name, code=code, hint=hint)
        what = "a sample image file" if function.get("predicts") else f"{SAMPLES} sample images"
        built_as = "".join(f"; {note}" for note in self.built_as)
        self.row("PASS", f"call ({labels})", f"{name} ran {epochs} time{'s' if epochs > 1 else ''} on {what}{built_as}",
                 line=function["line"], function=name)

    # -- checks

    def _loss_rows(self, function: str, labels: str, records: list[dict], criterion: dict | None = None) -> None:
        """One row per loss call site. ``criterion``: what verify built for a criterion parameter the
        way the file's caller builds it; a failure of that criterion names the line that builds it."""
        by_site: dict[tuple, list[dict]] = {}
        for record in records:
            by_site.setdefault((record["path"], record["line"], record["label"]), []).append(record)
        for (path, line, label), group in by_site.items():
            where = f"{os.path.basename(path)}:{line}" if path else "a library"
            check = f"loss at {where} ({labels})"
            failure = next((f for f in (_loss_failure(r, labels) for r in group) if f), None)
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

    def _falls_row(self, function: dict, labels: str, epoch_losses: list[list[float]]) -> None:
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

    def _metric_rows(self, function: dict, labels: str, returned, outputs: list, never_reset: list = ()) -> None:
        named = _returned_numbers(returned, function.get("returns", []))
        metrics = [(n, v) for n, v in named if _is_metric_name(n)]
        if not metrics:
            return
        reference = self._reference(outputs)
        for label, value in metrics:
            check = f"metric {label} ({labels})"
            line = function.get("return_line") or function["line"]
            if reference is None:
                self.row("FAIL", check, f"returned {value:.4g}, but the model produced no predictions on sample images "
                         "during the call, so it cannot be compared", line=line, function=function["name"],
                         hint="compute the metric from model(images) on the loader's batches")
                continue
            status, reason, code, hint = _judge_metric(value, reference, self.threshold, name=label)
            line, reason = checks_threshold.blamed_line(reason, self.path, function["line"], line)
            code, reason, hint, line = checks_state.amend(never_reset, status, reason, code, hint, line)
            self.row(status, check, reason, line=line, function=function["name"], code=code, hint=hint)

    def _reference(self, outputs: list) -> dict | None:
        import torch

        from .api import exact_match, multilabel_metrics

        logits = [out[rows >= 0] for out, rows in outputs if out.ndim == 2]
        indices = [rows[rows >= 0] for out, rows in outputs if out.ndim == 2]
        if not logits or sum(len(i) for i in indices) == 0:
            return None
        z = torch.cat(logits)
        y = self.sample.targets[torch.cat(indices)]
        probs = torch.sigmoid(z)
        preds = (probs > self.threshold).long()
        correct = (preds == y.long()).float()
        softmax_preds = (torch.softmax(z, dim=1) > self.threshold).long()
        metrics = multilabel_metrics(probs, y, self.threshold)
        last_out, last_rows = next((out, rows) for out, rows in reversed(outputs) if out.ndim == 2)
        last_found = last_rows >= 0
        last_preds = (torch.sigmoid(last_out[last_found]) > self.threshold).long()
        return {
            "last_batch_exact_match": exact_match(last_preds, self.sample.targets[last_rows[last_found]])
            if bool(last_found.any()) else math.nan,
            "exact_match": exact_match(preds, y),
            "per_element": float(correct.mean()),
            "per_element_over_samples": float(correct.sum() / len(y)),
            "softmax_exact_match": exact_match(softmax_preds, y),
            "logits_threshold": checks_threshold.logits_references(z, y, self.threshold, _averaged_references),
            "others": {**_averaged_references(preds, y.long()), "CF1": metrics["CF1"], "mAP": metrics["mAP"],
                       "mAP_micro": metrics["mAP_micro"], "hamming_loss": metrics["hamming_loss"],
                       "1-hamming_loss": 1 - metrics["hamming_loss"], **self._batch_means(logits, indices)},
            "samples": len(y),
        }


    def _batch_means(self, logits: list, indices: list) -> dict[str, float]:
        """The averaged references of each model call, averaged over the calls (only where that differs)."""
        import torch

        per_batch = [_averaged_references((torch.sigmoid(z) > self.threshold).long(), self.sample.targets[i].long())
                     for z, i in zip(logits, indices) if len(i)]
        if len(per_batch) < 2:
            return {}
        whole = _averaged_references((torch.sigmoid(torch.cat(logits)) > self.threshold).long(),
                                     self.sample.targets[torch.cat(indices)].long())
        means = {key: sum(batch.get(key, whole[key]) for batch in per_batch) / len(per_batch) for key in whole}
        return {key + BATCH_MEAN: value for key, value in means.items() if abs(value - whole[key]) > 1e-9}


def _averaged_references(preds, targets) -> dict[str, float]:
    """Precision, recall, F1 and Jaccard at every ``average`` scikit-learn takes for multi-label input.

    Keys are ``<measure>_<average>``; a ratio whose denominator is 0 counts as 0, and where
    counting it as 1 (scikit-learn's ``zero_division=1``) changes the value, that one is added too.
    torchmetrics has no ``samples`` average (one ratio per sample, averaged), so it is computed here.
    """
    import torch
    from torchmetrics.functional.classification import (
        multilabel_f1_score,
        multilabel_jaccard_index,
        multilabel_precision,
        multilabel_recall,
    )

    functions = dict(zip(AVERAGED_MEASURES, (multilabel_f1_score, multilabel_precision, multilabel_recall,
                                             multilabel_jaccard_index)))
    predicted, true = preds.bool(), targets.bool()
    tp = (predicted & true).sum(1).double()
    fp = (predicted & ~true).sum(1).double()
    fn = (~predicted & true).sum(1).double()
    per_sample = dict(zip(AVERAGED_MEASURES,  # (numerator, denominator) of each sample's ratio
                          ((2 * tp, 2 * tp + fp + fn), (tp, tp + fp), (tp, tp + fn), (tp, tp + fp + fn))))

    def averages(zero_division: int) -> dict[str, float]:
        values = {}
        for measure in AVERAGED_MEASURES:
            for average in ("micro", "macro", "weighted"):
                values[f"{measure}_{average}"] = float(functions[measure](
                    preds, targets, num_labels=preds.shape[1], average=average, zero_division=zero_division,
                    validate_args=False))
            numerator, denominator = per_sample[measure]
            ratios = torch.where(denominator > 0, numerator / denominator.clamp(min=1), float(zero_division))
            values[f"{measure}_samples"] = float(ratios.mean())
        return values

    references = averages(0)
    references.update({key + ZERO_DIVISION_1: value for key, value in averages(1).items()
                       if not _close(value, references[key])})
    return references


BUILD_HINT = ("verify builds the class from sample arguments chosen by parameter name; give the others with "
              "--bind NAME=VALUE (see docs/verify.md)")


def _site(build: dict, path: str) -> str:
    """``Net(...) at train.py:40``: where the file builds an object verify built the same way."""
    return f"{build['name']}(...) at {os.path.basename(path)}:{build['line']}"


def _caller_build(function: dict, role: str) -> dict | None:
    """How the file's caller builds the parameter of ``role`` (see migrate_ml/verify/builds.py)."""
    return next((p["build"] for p in function["params"] if p.get("role") == role and p.get("build")), None)


def _constant_rate(_epoch: int) -> float:
    return 1.0


def _eval_prediction(logits, labels):
    """A Hugging Face ``EvalPrediction`` (a tuple of predictions and label ids where transformers is missing)."""
    try:
        from transformers import EvalPrediction
    except ImportError:
        return (logits, labels)
    return EvalPrediction(predictions=logits, label_ids=labels)


def _import_hint(error: BaseException) -> str:
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


def _error_text(error: BaseException) -> str:
    """The exception as the user should read it: verify's sample model named as such, not by its class."""
    if isinstance(error, MemoryError) and not str(error):
        return "MemoryError: out of the memory verify allows (--memory)"
    text = f"{type(error).__name__}: {error}"
    return re.sub(r"(_recording_model\.<locals>\.)?'?RecordingModel'?( object)?", "verify's sample model", text)


def _crash_hint(error: BaseException, function: dict | None = None, owner: str | None = None) -> str:
    from .stand_in_gaps import StandInGap

    if isinstance(error, StandInGap):
        return error.hint
    text = str(error)
    if isinstance(error, AttributeError) and "RecordingModel" in text:
        hint = ("the code uses an attribute of its own model class that verify's sample model (a ViT) lacks: let a "
                "caller in the file build the model (model = MyNet(...); see docs/verify.md)")
        return hint + (f", or build {owner} with a function of the file: --bind {owner}='FUNCTION()'" if owner else "")
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


def _loss_failure(record: dict, labels: str) -> tuple[str, str | None, str] | None:
    label = record["label"]
    kind = record["kind"]
    shape = record.get("target_shape")
    multi_hot = record.get("target_float") and shape is not None and shape == record.get("logits_shape")
    if kind == "ce":
        code = "ML002" if label.startswith("F.") else "ML001"
        if multi_hot:
            return (f"{label} received float multi-hot targets: it trains a softmax over labels (wrong objective)",
                    code, f"use BCEWithLogitsLoss / binary_cross_entropy_with_logits (rule {code})")
        return (f"{label} is a single-label loss (target {record.get('target_dtype')} {shape})", code,
                f"use BCEWithLogitsLoss with float multi-hot targets (rule {code})")
    if kind == "nll":
        return (f"{label} expects log-softmax scores and class indices: a single-label loss", "ML003",
                "drop log_softmax and use binary_cross_entropy_with_logits on raw logits (rule ML003)")
    form = record.get("logits_form")
    if kind == "bce" and form == "log_softmax":
        return (f"{label} received log-probabilities (log_softmax over classes: each row's exp sums to 1), not raw logits",
                "ML103", "remove log_softmax from the model's forward (rule ML103)")
    if form == "softmax":
        return (f"{label} received softmax probabilities (each row sums to 1): the labels compete", "ML024",
                "pass raw logits to BCEWithLogitsLoss; use torch.sigmoid for probabilities (rule ML024)")
    failure = checks_outputs.loss_input_failure(record)
    if failure:
        return failure
    if "target_float" in record and not record["target_float"]:
        if labels.startswith("float32"):
            return (f"{label} received {record['target_dtype']} targets although the loader yields float32 labels: "
                    "a .long() cast is left on the labels", "ML011", "replace .long() with .float() (rule ML011)")
        return (f"{label} received {record['target_dtype']} targets {shape}: BCE needs floating-point targets",
                "ML010", "add .float() to the target at the loss call (rule ML010)")
    if shape is not None and shape != record.get("logits_shape"):
        return (f"{label} target shape {shape} differs from logits {record.get('logits_shape')}: labels are not "
                "multi-hot [B, C]", "ML101", "the dataset/collate must yield float multi-hot [B, C] targets (rule ML101)")
    low, high = record.get("target_min"), record.get("target_max")
    if low is not None and (low < 0 or high > 1):
        return (f"{label} target values span [{low:g}, {high:g}], outside [0, 1]", None,
                "targets must be multi-hot 0/1 (or soft labels in [0, 1])")
    if record.get("error"):
        return (f"{label} raised {record['error']}", None, "see the call's traceback")
    loss = record.get("loss")
    if loss is None or not math.isfinite(loss):
        return (f"{label} returned a non-finite loss ({loss})", None, "pass raw logits and float multi-hot targets")
    return None


def _returned_numbers(value, names: list[str]) -> list[tuple[str, float]]:
    import torch

    def number(x):
        if isinstance(x, bool):
            return None
        if isinstance(x, (int, float)):
            return float(x)
        if isinstance(x, torch.Tensor) and x.numel() == 1:
            return float(x.detach().float())
        try:
            import numpy as np

            if isinstance(x, np.generic) and x.size == 1:
                return float(x)
        except ImportError:
            pass
        return None

    found = []
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (tuple, list)):
        items = [(names[i] if len(names) == len(value) else f"return[{i}]", v) for i, v in enumerate(value)]
    else:
        items = [(names[0] if len(names) == 1 else "return value", value)]
    for label, item in items:
        n = number(item)
        if n is not None:
            found.append((label, n))
    return found


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE


def _percent_of(value: float, fraction: float) -> bool:
    """``value`` is ``fraction`` in percent, possibly floored or rounded to a whole number."""
    if value == int(value):
        return abs(value - 100 * fraction) < 1
    return abs(value - 100 * fraction) <= 100 * TOLERANCE


def _is_metric_name(name: str) -> bool:
    """A returned number judged as a metric: a metric name, not a loss (a Hamming loss is a metric)."""
    return bool(METRIC_NAME.search(name)) and (not LOSS_NAME.search(name) or "hamming" in name.lower())


def _named_measures(name: str) -> list[str]:
    """The measures (keys of :data:`MEASURE_NAMES`) that ``name`` states, e.g. ``["F1"]`` for ``val_f1_samples``.

    Accuracy qualified by another measure ("hamming accuracy", "jaccard accuracy") is that measure.
    """
    found, rest = [], name
    for measure, pattern in MEASURE_NAMES:
        if pattern.search(rest):
            found.append(measure)
            rest = pattern.sub(" ", rest)
    return [m for m in found if m != "exact match"] or found


def _named_average(name: str) -> str:
    return next((average for average, pattern in AVERAGE_NAMES if pattern.search(name)), "")


def _reference_kind(key: str) -> tuple[str, str]:
    """(measure, average) of the reference metric ``key``."""
    if key in REFERENCE_KINDS:
        return REFERENCE_KINDS[key]
    measure, _, average = key.removesuffix(BATCH_MEAN).removesuffix(ZERO_DIVISION_1).partition("_")
    return measure, average


def _named_references(ref: dict, measures: list[str]) -> list[tuple[str, float]]:
    """The reference metrics of the named measures.

    A "hamming score" written after a well-known Stack Overflow answer is the sample-averaged Jaccard
    index (1 for a sample with no true and no predicted label), so a Hamming name accepts it too.
    """
    def wanted(key: str) -> bool:
        kind = _reference_kind(key)
        return kind[0] in measures or ("hamming" in measures and kind == ("jaccard", "samples"))

    return [(k, v) for k, v in ref["others"].items() if wanted(k) and isinstance(v, float) and math.isfinite(v)]


def _distance(scaled: list[float], other: float) -> float:
    return min(abs(v - other) for v in scaled)


def _nearest_equal(scaled: list[float], references: list[tuple[str, float]]) -> tuple[str, float] | None:
    """The reference nearest to the value (or its percent), among those within TOLERANCE of it."""
    distances = [(min(abs(v - other) for v in scaled), key, other) for key, other in references if math.isfinite(other)]
    near = min((d for d in distances if d[0] <= TOLERANCE), default=None, key=lambda d: d[0])
    return None if near is None else (near[1], near[2])


def _judge_metric(value: float, ref: dict, threshold: float, name: str = "") -> tuple[str, str, str | None, str]:
    """PASS, or FAIL with a reason, a rule code and a fix, for the metric ``name`` returning ``value``.

    The name directs the comparison: a value named after F1, precision, recall, Jaccard/IoU, Hamming
    or mAP is compared with that measure's references only (the average it names first); one named
    after accuracy or exact match with the exact match, so it cannot pass by equalling an unrelated
    reference by chance. A name that states no measure ("score") may equal any reference.
    """
    em = ref["exact_match"]
    scaled = [value] + ([value / 100] if value > 1 else [])
    fix21 = "use exact match: (preds == targets).all(dim=1) per sample, divided by the sample count (rule ML021)"
    if not math.isfinite(value):
        return "FAIL", f"returned {value}", "ML021", fix21
    measures = _named_measures(name)
    on_logits = checks_threshold.on_logits(value, ref, measures, _named_average(name), _close)
    logits_failure = ("FAIL", f"{checks_threshold.ON_LOGITS}: {on_logits}", None, checks_threshold.ON_LOGITS_FIX)
    if measures and measures != ["exact match"]:
        verdict = _judge_named_measure(value, scaled, ref, threshold, measures, _named_average(name))
        return logits_failure if verdict[0] == "FAIL" and on_logits else verdict
    if _close(value, em) or (value > 1 and _percent_of(value, em)):
        return "PASS", f"{value:.4g} equals the reference exact match {em:.4f} at threshold {threshold:g}", None, ""
    last = ref.get("last_batch_exact_match", math.nan)
    if math.isfinite(last) and (_close(value, last) or (value > 1 and _percent_of(value, last))):
        return ("PASS", f"{value:.4g} equals the reference exact match {last:.4f} of the last batch at threshold "
                f"{threshold:g}", None, "")
    samples = ref.get("samples", 0)
    if value > 1 and value == int(value) and abs(value - em * samples) < 0.5:  # a count: correct += ....sum().item()
        return ("PASS", f"{value:g} equals the reference exact-match count ({em:.4f} of {samples} samples) at threshold "
                f"{threshold:g}", None, "")
    if on_logits:
        return logits_failure
    if any(_close(v, ref["per_element"]) for v in scaled) and not _close(ref["per_element"], em):
        return ("FAIL", f"accuracy {value:.4g} equals per-element (label-wise) accuracy, inflated by negatives; "
                f"reference exact match is {em:.4f}", "ML021", fix21)
    if _close(value, ref["per_element_over_samples"]) or (value > 1 and _close(value / 100, ref["per_element_over_samples"])):
        return ("FAIL", f"accuracy {value:.4g} counts correct labels per element but divides by the sample count "
                f"(out of range); reference exact match is {em:.4f}", "ML021", fix21)
    if any(_close(v, ref["softmax_exact_match"]) for v in scaled) and not _close(ref["softmax_exact_match"], em):
        return ("FAIL", f"{value:.4g} matches predictions thresholded after a softmax (labels compete); with sigmoid "
                f"the reference exact match is {em:.4f}", "ML024",
                "replace softmax by torch.sigmoid before the threshold (rule ML024)")
    equal = _nearest_equal(scaled, [(k, o) for k, o in ref["others"].items() if isinstance(o, float)])
    if equal and not measures:
        return "PASS", f"{value:.4g} equals the reference {equal[0]} {equal[1]:.4f} at threshold {threshold:g}", None, ""
    if not 0 <= value <= 1 and not (value > 1 and value <= 100):
        return "FAIL", f"{value:.4g} is out of range for a metric; reference exact match is {em:.4f}", "ML021", fix21
    also = (f"; it equals the reference {equal[0]} {equal[1]:.4f}: if that is the metric meant, name it so"
            if equal else "")
    return ("FAIL", f"{value:.4g} differs from the reference exact match {em:.4f} at threshold {threshold:g} "
            f"(per-label accuracy would be {ref['per_element']:.4f}){also}", "ML021", fix21)


def _judge_named_measure(value: float, scaled: list[float], ref: dict, threshold: float, measures: list[str],
                         average: str) -> tuple[str, str, str | None, str]:
    candidates = _named_references(ref, measures)
    named = [(k, v) for k, v in candidates if _reference_kind(k)[1] == average] if average else []
    equal = _nearest_equal(scaled, named) or _nearest_equal(scaled, candidates)
    nearest = _nearest_equal(scaled, candidates)
    if equal and nearest and _distance(scaled, nearest[1]) < _distance(scaled, equal[1]):
        equal = nearest  # another average matches more closely than the one the name states
    if equal and named and _reference_kind(equal[0])[1] != average:
        return ("FAIL", f"{value:.4g} equals the reference {equal[0]} {equal[1]:.4f}, not the {average} average its name "
                f"states: the reference {named[0][0]} is {named[0][1]:.4f} at threshold {threshold:g}", None,
                f"compute it with average='{average}', or name it after the average it computes")
    if equal:
        return "PASS", f"{value:.4g} equals the reference {equal[0]} {equal[1]:.4f} at threshold {threshold:g}", None, ""
    listed = ", ".join(f"{k} {v:.4f}" for k, v in (named or candidates) if not k.endswith((ZERO_DIVISION_1, BATCH_MEAN)))
    return ("FAIL", f"{value:.4g} differs from every reference {' or '.join(measures)} at threshold {threshold:g}"
            f"{': ' + listed if listed else ''}", None,
            "compute it from torch.sigmoid(logits) > THRESHOLD (not a softmax or an arg-max) against the multi-hot "
            "labels, with a multi-label average: micro, macro, weighted or samples (rules ML020, ML023, ML024)")


if __name__ == "__main__":
    sys.exit(main())
