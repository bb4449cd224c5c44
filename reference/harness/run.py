"""The dynamic pass of ``migrate-ml verify``: run migrated code on sample multi-label data.

``python -m migrate_ml_reference.harness SPEC.json`` (this module's :func:`main`) reads a spec written by ``migrate-ml verify``
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
import importlib.util
import json
import os
import re
import sys

from . import accelerate, budget, contain, hugging_face, lightning, loops
from .checks_state import MetricStates
from .core import LABEL_FORMS, LossRecorder, import_hint, patch_cuda, row, user_line, user_traceback
from .sample import Sample, hf_style, recording_model, untrained_builders
from .unit import Unit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate_ml_reference.harness")
    parser.add_argument("spec")
    parser.add_argument("--unit", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    with open(options.spec, encoding="utf-8") as handle:
        spec = json.load(handle)
    contain.die_with_parent()
    contain.block_network()
    if options.unit is not None:  # the no-fork path: this process is the child
        contain.limit_memory(spec.get("memory"))
        _child(spec, options.unit)
        return 0
    contain.supervise(spec["scratch"])
    # Loaded once here, inherited by every forked child.
    import timm  # noqa: F401
    import torchmetrics.functional.classification  # noqa: F401

    from .. import api  # noqa: F401

    rows: list[dict] = []
    for index, unit in enumerate(spec["units"]):
        rows.extend(contain.run_isolated(spec, index, unit, _child))
        contain.write_json(spec["result"], rows)
    contain.write_json(spec["result"], rows)
    return 0


def _child(spec: dict, index: int) -> None:
    folder, rows_path, stack_path = contain.unit_paths(spec, index)
    unit = spec["units"][index]
    os.chdir(folder)
    with open(stack_path, "w", encoding="utf-8") as stack:
        try:
            rows = run_file(spec, unit, budget.Budget(folder, float(spec["timeout"]), stack))
        except BaseException as error:  # the harness itself failed: still a row, never silence
            rows = [row("FAIL", "run", f"verify could not run this file: {type(error).__name__}: {error}",
                        file=unit["path"], trace=user_traceback(error))]
        faulthandler.cancel_dump_traceback_later()
    contain.write_json(rows_path, rows)


def run_file(spec: dict, file: dict, deadline: budget.Budget) -> list[dict]:
    """Import the file and run each entry point with the framework module its kind needs; the rows."""
    import random

    import numpy
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    # torch seeds its generator at random in every process: unseeded, the models verify builds from the file's
    # classes (and what the file's code draws) change from run to run, and so could a verdict on their outputs
    for seed in (torch.manual_seed, random.seed, numpy.random.seed):
        seed(0)
    recorder = LossRecorder({os.path.abspath(p) for p in file["user_files"]})
    recorder.install()
    metric_states = MetricStates(recorder.user_files)
    metric_states.install()
    patch_cuda()
    untrained_builders()
    sample = Sample(file.get("num_classes"), float(file["threshold"]))
    role_values = {
        "accelerator": lambda _form, _model: accelerate.accelerator(),
        "eval_prediction": lambda form, model: hugging_face.eval_prediction(
            model(sample.images).detach().numpy(), sample.targets.numpy().astype("int64" if form == "int64" else "float32")),
        "image_path": lambda _form, _model: loops.sample_image_file(sample),
    }
    unit = Unit(spec, file, recorder, metric_states, sample, role_values)
    unit.budget = deadline
    pretrained = None
    if file.get("from_pretrained"):
        pretrained = hugging_face.PretrainedCalls(recorder.user_files, lambda num_labels, problem_type: hf_style(
            recording_model(sample, hinted=False), problem_type, num_labels))
        if not pretrained.install():
            pretrained = None
    deadline.user_code_starts()
    try:
        module = unit.module = _import(file)
    except BaseException as error:
        unit.row("FAIL", "import", f"importing the file failed: {type(error).__name__}: {error}",
                 line=user_line(error, unit.path), trace=user_traceback(error), hint=import_hint(error))
        return unit.rows
    for name in file.get("model_classes", []):
        loops.check_model_class(unit, module, name)
    for function in file["functions"]:
        if hugging_face.evaluates(function):
            hugging_face.run_compute_metrics(unit, module, function)
        else:
            loops.run_function(unit, module, function)
    for spec_of_class in file.get("classes", []):
        cls = getattr(module, spec_of_class["name"], None)
        if not isinstance(cls, type):
            unit.row("FAIL", "build", f"{spec_of_class['name']} is not a class of the imported module",
                     line=spec_of_class["line"])
        elif spec_of_class["kind"] == "lightning":
            lightning.run_lightning(unit, cls, spec_of_class)
        else:
            for method in spec_of_class["methods"]:
                for form in LABEL_FORMS:
                    loops.run_form(unit, None, method, form, owner=(cls, spec_of_class))
    if pretrained is not None:
        hugging_face.problem_type_rows(unit, pretrained.calls)
    if not unit.rows:  # the file's only entry points were model classes verify could not build
        for name, why in unit.unchecked_models:
            unit.row("SKIP", f"model {name} outputs", f"not checked: {why}", line=unit.line_of(getattr(module, name)))
    return unit.rows


def _import(file: dict):
    for folder in reversed(file["search_path"]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    name = re.sub(r"\W", "_", file["module"])
    spec = importlib.util.spec_from_file_location(name, file["path"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
