"""Plain entry points: functions (train and evaluate loops, metric helpers, prediction functions) and the
methods of plain classes, called with sample arguments by parameter role, once per label form; and the file's
own model classes, whose outputs must be raw logits."""

from __future__ import annotations

import os
import re

from . import checks_outputs
from .core import (
    BUILD_HINT,
    LABEL_FORMS,
    SAMPLES,
    build_site,
    caller_build,
    class_count_kwargs,
    crash_hint,
    error_text,
    logits_form,
    user_line,
    user_traceback,
)
from .sample import accepted_input, recording_model
from .unit import Unit


def check_model_class(unit: Unit, module, name: str) -> None:
    import inspect

    import torch

    cls = getattr(module, name, None)
    if cls is None:
        return
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return
    kwargs = class_count_kwargs(cls, unit.sample.num_classes)
    for parameter in signature.parameters.values():
        if parameter.name not in kwargs and parameter.default is inspect.Parameter.empty and parameter.kind not in (
                inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            unit.unchecked_models.append((name, f"{name}() needs `{parameter.name}`, which verify has no sample "
                                          "value for"))
            return
    try:
        model = cls(**kwargs).eval()
    except Exception as error:
        unit.unchecked_models.append((name, f"{name}() raised {type(error).__name__}: {error}"))
        return
    watched: list[checks_outputs.LastOp] = []

    def call(images):
        watched[:] = [checks_outputs.LastOp(unit.recorder.user_files).watch(model)]
        with watched[0]:
            return model(images)

    accepted = accepted_input(call)
    if accepted is None:
        return
    out, last = accepted[1], watched[0]
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        return
    line = unit.line_of(cls)
    form = logits_form(out)
    what = f"{name}.forward" if isinstance(cls, type) else f"the model {name}() builds"
    if form == "log_softmax":
        unit.row("FAIL", f"model {name} outputs", f"{what} returns log-probabilities (log_softmax over "
                 "classes: each row's exp sums to 1), which couples the labels",
                 line=line, code="ML103", hint="return raw logits from forward and use BCEWithLogitsLoss (rule ML103)")
    elif form == "softmax":
        unit.row("FAIL", f"model {name} outputs", f"{what} returns softmax probabilities (each row "
                 "sums to 1), so labels compete", line=line, code="ML024",
                 hint="return raw logits; apply torch.sigmoid only for predictions (rule ML024)")
    elif clamped := checks_outputs.never_negative_row(what, out, last):
        status, reason, op_line, hint = clamped
        unit.row(status, f"model {name} outputs", reason, line=op_line or line, hint=hint)
    else:
        unit.row("PASS", f"model {name} outputs", f"{what} returns raw logits {list(out.shape)}", line=line)


def run_function(unit: Unit, module, function: dict) -> None:
    func = unit.entry_callable(module, function)
    if func is None:
        return
    for form in LABEL_FORMS:
        run_form(unit, func, function, form)


def run_form(unit: Unit, func, function: dict, form: str, owner: tuple[type, dict] | None = None) -> None:
    """Call ``func`` (or, with ``owner``, the method of a class built from sample arguments)."""
    sample = unit.sample
    try:
        _run_form(unit, func, function, form, owner)
    finally:
        unit.sample = sample  # a model of the file that takes other images had the sample reshaped for this call


def _run_form(unit: Unit, func, function: dict, form: str, owner: tuple[type, dict] | None) -> None:
    unit.budget.entry(function["name"] if owner is None else f"{owner[1]['name']}.{function['name']}",
                      function["line"], unit.epochs if function["trains"] else 1, f"{form} labels")
    if function.get("predicts") and func is not None:
        prepare_default_files(func, unit.sample)
    trains = function["trains"]
    model_build = caller_build(function, "model") or (owner and caller_build(owner[1]["init"], "model"))
    net, model_built_as = unit.caller_model(model_build)
    unit.built_as = [model_built_as] if model_built_as else []
    unit.model_built_at = build_site(model_build, unit.path) if net is not None else ""
    model = recording_model(unit.sample, hinted=not trains, hf=function.get("hf_model", False), net=net)
    name = function["name"] if owner is None else f"{owner[1]['name']}.{function['name']}"
    labels = f"{form} labels"
    epochs = unit.epochs if trains else 1
    epoch_losses: list[list[float]] = []
    returned = None
    first_output = 0  # a metric helper's logits are computed while its arguments are built
    try:
        if owner is not None:
            cls, spec = owner
            init_positional, init_keywords = unit.arguments(spec["init"], form, model, 0)
            try:
                instance = unit.build(cls, spec, init_positional, init_keywords)
            except BaseException as error:
                unit.row("FAIL", f"build ({labels})", f"{spec['name']}(...) raised {type(error).__name__}: {error}",
                         line=user_line(error, unit.path) or spec["line"], function=spec["name"],
                         trace=user_traceback(error), hint=BUILD_HINT)
                return
            func = getattr(instance, function["name"])
        positional, keywords = unit.arguments(function, form, model, 0)
    except Exception as error:
        unit.row("FAIL", f"call ({labels})", f"could not build the sample arguments: {type(error).__name__}: {error}",
                 line=function["line"], function=name, trace=user_traceback(error))
        return
    unit.metric_states.take()
    unit.budget.user_code_starts()
    for epoch in range(epochs):
        unit.metric_states.mark()
        for param in function["params"]:
            if param["role"] == "epoch":
                if param["kind"] == "positional_only":
                    continue
                keywords[param["name"]] = epoch
        start = len(unit.recorder.records)
        if epoch:
            first_output = len(model.outputs)
        try:
            returned = func(*positional, **keywords)
        except BaseException as error:  # SystemExit too: user code must not end the check
            unit.loss_rows(name, labels, unit.recorder.records[start:], function.get("criterion"))
            unit.row("FAIL", f"call ({labels})", f"{name} raised {error_text(error)}",
                     line=user_line(error, unit.path) or function["line"], function=name,
                     trace=user_traceback(error),
                     hint=crash_hint(error, function, owner[1]["name"] if owner else None))
            return
        unit.budget.step_done()
        epoch_losses.append([r["loss"] for r in unit.recorder.records[start:] if "loss" in r])
        if epoch == epochs - 1:
            unit.loss_rows(name, labels, unit.recorder.records[start:], function.get("criterion"))
    if trains:
        unit.falls_row({**function, "name": name}, labels, epoch_losses)
    unit.metric_rows({**function, "name": name}, labels, returned, model.outputs[first_output:],
                      unit.metric_state_rows(name, labels, function["line"]))
    if function.get("predicts"):
        status, reason, code, hint = judge_prediction(returned, unit.sample)
        unit.row(status, f"prediction ({labels})", reason, line=function.get("return_line") or function["line"],
                 function=name, code=code, hint=hint)
    what = "a sample image file" if function.get("predicts") else f"{SAMPLES} sample images"
    built_as = "".join(f"; {note}" for note in unit.built_as)
    unit.row("PASS", f"call ({labels})", f"{name} ran {epochs} time{'s' if epochs > 1 else ''} on {what}{built_as}",
             line=function["line"], function=name)


# --------------------------------------------------------------------------- prediction functions

MODEL_FACTORY = re.compile(r"^(create|build|get|make|init|load)_?(\w+_)?(model|net|network|classifier|vit)$", re.I)
SAMPLE_IMAGE = "sample_image.png"


def sample_image_file(sample) -> str:
    """The first sample image as a PNG in the working (scratch) folder; its path."""
    import numpy as np
    from PIL import Image

    pixels = (sample.images[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(SAMPLE_IMAGE)
    return os.path.abspath(SAMPLE_IMAGE)


def prepare_default_files(func, sample) -> None:
    """Files a prediction function reads through relative default paths, written in the scratch folder:
    a class-index map for ``*.json`` (``{"0": name, ...}``) and, for ``*.pth``/``*.pt``, the
    ``state_dict`` of the model a factory of the file's namespace (``create_model``) builds."""
    import inspect
    import json

    for parameter in inspect.signature(func).parameters.values():
        default = parameter.default
        if not isinstance(default, str) or os.path.isabs(default) or os.path.exists(default):
            continue
        if default.endswith(".json"):
            _write(default, lambda path: json.dump({str(i): n for i, n in enumerate(sample.class_names)},
                                                   open(path, "w", encoding="utf-8")))
        elif default.endswith((".pth", ".pt")):
            factory = next((value for name, value in func.__globals__.items()
                            if callable(value) and MODEL_FACTORY.match(name)), None)
            if factory is not None:
                import torch

                _write(default, lambda path: torch.save(
                    factory(**class_count_kwargs(factory, sample.num_classes)).state_dict(), path))


def _write(path: str, writer) -> None:
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    try:
        writer(path)
    except Exception:
        pass  # the prediction function reports the missing file itself


def judge_prediction(returned, sample) -> tuple[str, str, str | None, str]:
    """A multi-label prediction for one image names every label above the threshold, so it is a
    collection (names, indices, a multi-hot or probability vector), never one class."""
    import numpy as np
    import torch

    fix = ("return every label above the threshold, e.g. [class_indict[str(i)] for i in "
           "(probs > THRESHOLD).nonzero().flatten().tolist()] (rule ML106)")
    value = returned[0] if isinstance(returned, tuple) and returned and not isinstance(returned[0], (int, float)) else returned
    if isinstance(value, str):
        return "FAIL", f"returned one class name ({value!r}) for an image with several labels", "ML106", fix
    if _one_number(value):
        return "FAIL", f"returned one class index ({int(value)}) for an image with several labels", "ML106", fix
    if isinstance(value, (list, tuple, set, dict)):
        return "PASS", f"returned {len(value)} label(s) for the sample image", None, ""
    if isinstance(value, (torch.Tensor, np.ndarray)) and tuple(value.shape)[-1:] == (sample.num_classes,):
        return "PASS", f"returned a {list(value.shape)} score or multi-hot vector", None, ""
    return "FAIL", f"returned {type(value).__name__}, not the labels predicted for the image", "ML106", fix


def _one_number(value) -> bool:
    import numpy as np
    import torch

    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return True
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, np.ndarray) and value.size == 1
