"""Sample stand-ins for framework objects user code receives: a Hugging Face style model, models
``from_pretrained`` builds offline, and a single-process accelerator.

None of them downloads anything or needs the framework installed, except that
``from_pretrained`` is only patched where ``transformers`` is importable.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import Any

from .stand_in_gaps import missing

MULTI_LABEL = "multi_label_classification"


class ClassifierOutput(dict):
    """What a transformers ``...ForImageClassification`` returns: ``.logits`` (and ``.loss`` with labels),
    also readable as ``outputs["logits"]`` and ``outputs[0]``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __getitem__(self, key):
        if isinstance(key, int):
            return [value for value in self.values() if value is not None][key]
        return super().__getitem__(key)


def hf_style(model, problem_type: str | None = MULTI_LABEL, num_labels: int | None = None):
    """Wrap a recording model so it is called like a transformers model and returns ``.logits``.

    ``model(pixel_values=x, labels=y)`` or ``model(x)``; with labels the output has the loss
    the transformers head computes for ``problem_type`` (binary cross-entropy for multi-label),
    calculated here by formula so the loss checks see only the user's own loss calls.
    """
    import types

    import torch
    import torch.nn as nn

    class HFStyleModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.config = types.SimpleNamespace(problem_type=problem_type, num_labels=num_labels or 0,
                                                id2label={}, label2id={})

        @property
        def outputs(self):
            return self.inner.outputs

        def forward(self, *args, pixel_values=None, labels=None, **_kwargs):
            images = pixel_values if pixel_values is not None else args[0]
            logits = self.inner(images)
            loss = None
            if labels is not None:
                y = labels.to(logits.dtype)
                loss = (logits.clamp(min=0) - logits * y + torch.log1p(torch.exp(-logits.abs()))).mean()
            return ClassifierOutput(loss=loss, logits=logits)

    return HFStyleModel()


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
            calls.calls.append({"line": calls._line(), "class": getattr(cls, "__name__", str(cls)), "name": str(name),
                                "num_labels": num_labels, "problem_type": problem_type})
            return calls.build(num_labels, problem_type)

        def config_from_pretrained(cls, name=None, *args, **kwargs):
            calls.calls.append({"line": calls._line(), "class": getattr(cls, "__name__", str(cls)), "name": str(name),
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

    def _line(self) -> int | None:
        frame = sys._getframe(2)
        while frame is not None:
            if os.path.abspath(frame.f_code.co_filename) in self.user_files:
                return frame.f_lineno
            frame = frame.f_back
        return None


def untrained_builders() -> None:
    """timm's ``create_model`` and torchvision's model builders build the architecture without weights.

    ``timm.create_model(..., pretrained=True)`` and ``resnet50(weights="IMAGENET1K_V2")`` in a
    LightningModule's ``__init__`` would download weights, which verify never does (and its network is
    cut off): what is checked is the code around the model, on the untrained architecture.
    """
    import functools

    try:
        import timm
        import timm.models
    except ImportError:
        timm = None
    if timm is not None:
        create_model = timm.create_model

        @functools.wraps(create_model)
        def untrained_create_model(model_name, pretrained=False, *args, **kwargs):
            return create_model(model_name, False, *args, **kwargs)

        timm.create_model = timm.models.create_model = untrained_create_model
    try:
        import torchvision.models as models
        from torchvision.models import _api
    except ImportError:
        return
    for name in models.list_models():
        builder = models.get_model_builder(name)

        @functools.wraps(builder)
        def untrained(*args, _builder=builder, **kwargs):
            for keyword in ("weights", "weights_backbone"):
                if keyword in kwargs:
                    kwargs[keyword] = None
            if "pretrained" in kwargs:
                kwargs["pretrained"] = False
            return _builder(*args, **kwargs)

        _api.BUILTIN_MODELS[name] = untrained
        for module_name, module in list(sys.modules.items()):
            if module_name.startswith("torchvision.models") and getattr(module, builder.__name__, None) is builder:
                setattr(module, builder.__name__, untrained)


ACCELERATE_REAL = ("install accelerate into the environment verify runs user code in "
                   f"({sys.executable}): verify then runs the real accelerate.Accelerator(cpu=True)")


def accelerator():
    """The real ``accelerate.Accelerator(cpu=True)`` where accelerate is installed, else the stand-in below."""
    try:
        from accelerate import Accelerator
    except ImportError:
        return SingleProcessAccelerator()
    return Accelerator(cpu=True)


class SingleProcessAccelerator:
    """An ``accelerate.Accelerator`` stand-in for one CPU process: what distributed code calls
    reduces to the plain operation (``backward`` is ``loss.backward()``, gathering returns its input)."""

    device = "cpu"
    num_processes = 1
    process_index = local_process_index = 0
    is_main_process = is_local_main_process = True
    sync_gradients = True
    distributed_type = "NO"
    mixed_precision = "no"
    gradient_accumulation_steps = 1
    use_distributed = False
    optimizer_step_was_skipped = False
    is_last_process = True

    def __getattr__(self, name: str):
        raise missing("accelerate.Accelerator", name, ACCELERATE_REAL)

    def prepare(self, *objects):
        return objects[0] if len(objects) == 1 else objects

    def backward(self, loss, **_kwargs) -> None:
        loss.backward()

    def gather(self, value):
        return value

    gather_for_metrics = reduce = pad_across_processes = gather

    def unwrap_model(self, model, **_kwargs):
        return model

    def clip_grad_norm_(self, parameters, max_norm, norm_type=2):
        import torch

        return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type)

    def accumulate(self, *_models):
        return contextlib.nullcontext()

    def autocast(self, *_args, **_kwargs):
        return contextlib.nullcontext()

    def no_sync(self, *_args, **_kwargs):
        return contextlib.nullcontext()

    def wait_for_everyone(self) -> None:
        pass

    def print(self, *args, **kwargs) -> None:
        print(*args, **kwargs)

    def log(self, *_args, **_kwargs) -> None:
        pass

    def save(self, obj, path, **_kwargs) -> None:
        import torch

        torch.save(obj, path)

    def get_state_dict(self, model, **_kwargs) -> dict:
        return model.state_dict()

    def save_model(self, model, save_directory, **_kwargs) -> None:
        """Writes the weights where ``accelerate`` would (``pytorch_model.bin``; no safetensors dependency)."""
        import torch

        os.makedirs(save_directory, exist_ok=True)
        torch.save(model.state_dict(), os.path.join(save_directory, "pytorch_model.bin"))

    def init_trackers(self, *_args, **_kwargs) -> None:
        pass

    end_training = free_memory = init_trackers


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

                from .harness import class_count_kwargs

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
