"""Hugging Face: ``from_pretrained`` builds a sample model offline and records the ``problem_type``
each call asks for; a ``compute_metrics`` runs inside a real ``transformers.Trainer.evaluate()`` over the
sample data where transformers is installed (else it receives an ``EvalPrediction`` of the sample model's
logits directly, as a tuple)."""

from __future__ import annotations

import importlib.util
import os
import tempfile

from .core import BATCH_SIZE, LABEL_FORMS, SAMPLES, crash_hint, error_text, user_line, user_site, user_traceback
from .sample import recording_model
from .unit import Unit


class PretrainedCalls:
    """Patches ``from_pretrained`` of transformers models: builds a sample model offline and records
    the ``problem_type`` and ``num_labels`` each call asked for, with the user's line."""

    def __init__(self, user_files: set[str], build) -> None:
        self.user_files = user_files
        self.build = build
        """``build(num_labels, problem_type)`` -> a sample model."""
        self.calls: list[dict] = []

    def install(self) -> bool:
        try:
            import transformers
            from transformers.models.auto import auto_factory, modeling_auto
        except ImportError:
            return False
        calls = self

        def from_pretrained(cls, name=None, *args, **kwargs):
            config = kwargs.get("config")
            num_labels = kwargs.get("num_labels") or len(kwargs.get("id2label") or {}) or getattr(config, "num_labels", None)
            problem_type = kwargs.get("problem_type", getattr(config, "problem_type", None))
            calls.calls.append({"line": user_site(calls.user_files)[1], "class": getattr(cls, "__name__", str(cls)), "name": str(name),
                                "num_labels": num_labels, "problem_type": problem_type})
            return calls.build(num_labels, problem_type)

        def config_from_pretrained(cls, name=None, *args, **kwargs):
            calls.calls.append({"line": user_site(calls.user_files)[1], "class": getattr(cls, "__name__", str(cls)), "name": str(name),
                                "num_labels": kwargs.get("num_labels"), "problem_type": kwargs.get("problem_type")})
            config_class = transformers.PretrainedConfig if cls is transformers.AutoConfig else cls
            return config_class(**{k: v for k, v in kwargs.items() if k not in ("cache_dir", "revision", "token")})

        transformers.PreTrainedModel.from_pretrained = classmethod(from_pretrained)
        transformers.PretrainedConfig.from_pretrained = classmethod(config_from_pretrained)
        transformers.AutoConfig.from_pretrained = classmethod(config_from_pretrained)
        # Each Auto class carries its own copy of the method.
        for value in [auto_factory._BaseAutoModelClass, *vars(modeling_auto).values()]:
            if isinstance(value, type) and issubclass(value, auto_factory._BaseAutoModelClass):
                value.from_pretrained = classmethod(from_pretrained)
        return True


def problem_type_rows(unit: Unit, calls: list[dict]) -> None:
    """One row per ``from_pretrained`` site: its head must be built for multi-label."""
    if not calls:
        unit.row("SKIP", "problem_type", "from_pretrained was not called on import or by an entry point verify "
                 "runs, so its problem_type was checked by the static pass only")
    seen = set()
    for call in calls:
        if call["line"] in seen:
            continue
        seen.add(call["line"])
        check = f"problem_type of {call['class']}.from_pretrained"
        if call["problem_type"] == "multi_label_classification":
            unit.row("PASS", check, "problem_type='multi_label_classification': the head's loss is "
                     "BCEWithLogitsLoss", line=call["line"])
        else:
            unit.row("FAIL", check, f"problem_type is {call['problem_type']!r}: with integer labels transformers "
                     "infers single_label_classification and trains a cross-entropy (softmax) head",
                     line=call["line"], code="ML005",
                     hint="pass problem_type='multi_label_classification' to from_pretrained (rule ML005)")


def eval_prediction(logits, labels):
    """A Hugging Face ``EvalPrediction`` (a tuple of predictions and label ids where transformers is missing)."""
    try:
        from transformers import EvalPrediction
    except ImportError:
        return (logits, labels)
    return EvalPrediction(predictions=logits, label_ids=labels)


def evaluates(function: dict) -> bool:
    """``function`` is a ``compute_metrics`` (its one argument is an ``EvalPrediction``) and transformers is installed:
    it runs inside a real ``Trainer.evaluate()``."""
    roles = [param["role"] for param in function["params"] if param["role"] != "default"]
    return roles == ["eval_prediction"] and importlib.util.find_spec("transformers") is not None


def run_compute_metrics(unit: Unit, module, function: dict) -> None:
    func = unit.entry_callable(module, function)
    if func is None:
        return
    for form in LABEL_FORMS:
        _evaluate(unit, func, function, form)


def _evaluate(unit: Unit, func, function: dict, form: str) -> None:
    """``Trainer(model, args, eval_dataset, compute_metrics=func).evaluate()`` with the sample model (hinted
    logits, the multi-label head's loss) over the sample split; ``func``'s return value is judged."""
    import transformers

    name = function["name"]
    labels = f"{form} labels"
    unit.budget.entry(name, function["line"], 1, labels)
    model = recording_model(unit.sample, hinted=True, hf=True)
    returned: list = []

    def compute_metrics(prediction):
        returned.append(func(prediction))
        return returned[-1]

    targets = unit.sample.targets.long() if form == "int64" else unit.sample.targets.clone()
    dataset = [{"pixel_values": image, "labels": target} for image, target in zip(unit.sample.images, targets)]
    arguments = transformers.TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="hf-", dir=os.getcwd()), report_to=[], use_cpu=True,
        per_device_eval_batch_size=BATCH_SIZE, dataloader_num_workers=0, disable_tqdm=True, save_strategy="no")
    trainer = transformers.Trainer(model=model, args=arguments, eval_dataset=dataset, compute_metrics=compute_metrics)
    unit.metric_states.take()
    unit.metric_states.mark()
    unit.budget.user_code_starts()
    try:
        trainer.evaluate()
    except BaseException as error:  # SystemExit too: user code must not end the check
        unit.row("FAIL", f"call ({labels})", f"{name} raised {error_text(error)}",
                 line=user_line(error, unit.path) or function["line"], function=name, trace=user_traceback(error),
                 hint=crash_hint(error, function))
        return
    unit.budget.step_done()
    unit.metric_rows(function, labels, returned[-1] if returned else None, model.outputs,
                     unit.metric_state_rows(name, labels, function["line"]))
    unit.row("PASS", f"call ({labels})", f"{name} ran inside transformers.Trainer.evaluate() on {SAMPLES} sample "
             "images", line=function["line"], function=name)
