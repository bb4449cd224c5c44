"""Hugging Face: ``from_pretrained`` builds a sample model offline and records the ``problem_type``
each call asks for; ``compute_metrics`` receives an ``EvalPrediction`` of the sample model's logits."""

from __future__ import annotations

from .core import user_site
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
