"""The sample split every entry point of a file runs on, and the sample model that records its outputs
(also in the form a Hugging Face model is called in), built without downloading anything."""

from __future__ import annotations

import re
import sys
from typing import Any

from .checks_threshold import band_mask, band_value, hint
from .core import BATCH_SIZE, IMAGE_SIZE, SAMPLES

SAMPLE_KIND = "shapes"
INPUT_SHAPES = ((3, IMAGE_SIZE, IMAGE_SIZE), (1, 28, 28), (1, IMAGE_SIZE, IMAGE_SIZE), (3, 224, 224))
"""The image shapes a model of the file may need, the sample's own first: RGB 32 px, MNIST-style 1x28x28 and
1x32x32, ImageNet-style 224 px."""
MULTI_LABEL = "multi_label_classification"
HINT_LOGIT = 3.0
HINT_FLIP_FRACTION = 0.4


class Sample:
    """The sample split every function of a file sees, and how to recognise its rows."""

    def __init__(self, num_classes: int | None = None, threshold: float = 0.5) -> None:
        import torch

        from ..api import make_sample_tensors

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

    def shaped(self, shape: tuple[int, ...]) -> "Sample":
        """The same sample (labels, hints, threshold band) with its images as ``shape``: averaged to grayscale for
        one channel, resized bilinearly."""
        import copy

        import torch
        import torch.nn.functional as F

        shape = tuple(shape)
        if shape == tuple(self.images.shape[1:]):
            return self
        images = self.images
        if shape[0] == 1 and images.shape[1] != 1:
            images = images.mean(dim=1, keepdim=True)
        if tuple(images.shape[2:]) != shape[1:]:
            images = F.interpolate(images, size=shape[1:], mode="bilinear", align_corners=False).clamp(0, 1)
        other = copy.copy(self)
        other.images = images.contiguous()
        generator = torch.Generator().manual_seed(0)
        other._projection = torch.randn(other.images[0].numel(), generator=generator, dtype=torch.float64)
        other._keys = other.images.flatten(1).double() @ other._projection
        return other

    def shape_text(self) -> str:
        """``1x28x28 grayscale`` for the steps and call rows; empty for the sample's own images."""
        channels, height, width = self.images.shape[1:]
        if (channels, height, width) == INPUT_SHAPES[0]:
            return ""
        return f"{channels}x{height}x{width}{' grayscale' if channels == 1 else ''}"

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


def accepted_input(call) -> tuple[tuple[int, ...], Any] | None:
    """(shape, output) for the first of :data:`INPUT_SHAPES` that ``call`` (a model's forward, under no_grad) runs on
    with a batch of 4 random images; None when it runs on none."""
    import torch

    for shape in INPUT_SHAPES:
        try:
            with torch.no_grad():
                return shape, call(torch.randn(4, *shape))
        except Exception:
            continue
    return None


def _is_label_key(key: str) -> bool:
    return bool(re.search(r"label|target|^y$|^gt$", key, re.I))


def recording_model(sample: Sample, hinted: bool, hf: bool = False, net=None):
    """The reference model (or ``net``, the file's own), recording its outputs; ``hinted`` adds near-correct logits.

    Hints (true labels at +-3 logits, one label flipped on 40% of the samples) make an
    untrained model's predictions structured, so exact match, per-label accuracy and
    thresholded softmax give different numbers and a wrong metric cannot match by chance.
    """
    import torch
    import torch.nn as nn

    from ..api import create_reference_model

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
        return hf_style(RecordingModel(), num_labels=sample.num_classes)
    return RecordingModel()


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
    # The modules are listed once: a scan of every loaded module for each of the ~120 builders took
    # most of a second of each verify child's start.
    names = models.list_models()
    builder_modules = [module for module_name, module in list(sys.modules.items()) if module_name.startswith("torchvision.models")]
    for name in names:
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
        for module in builder_modules:
            if getattr(module, builder.__name__, None) is builder:
                setattr(module, builder.__name__, untrained)
