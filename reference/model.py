"""The reference model: a small timm ViT that trains at thousands of images/s on 2 CPU cores."""

from __future__ import annotations

from typing import Any

DEFAULT_MODEL = "vit_tiny_patch16_224"
# A 3-block, 64-wide ViT on 8 px patches of 32 px images (16 tokens): ~115k parameters, small
# enough to reach high mAP on the sample data within a minute on 2 cores. ``global_pool="avg"``
# pools the patch tokens, which trains faster here than the class token.
DEFAULT_MODEL_KWARGS: dict[str, Any] = {
    "img_size": 32,
    "patch_size": 8,
    "depth": 3,
    "embed_dim": 64,
    "num_heads": 2,
    "mlp_ratio": 2,
    "global_pool": "avg",
}


def model_kwargs(model_name: str = DEFAULT_MODEL, image_size: int | None = None, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments :func:`create_reference_model` passes to ``timm.create_model``.

    The default architecture kwargs, and ``image_size`` as its ``img_size``, apply only to
    :data:`DEFAULT_MODEL` (other timm models take different kwargs; pass them as
    ``overrides``, which win over both).
    """
    kwargs: dict[str, Any] = dict(DEFAULT_MODEL_KWARGS) if model_name == DEFAULT_MODEL else {}
    if image_size is not None and model_name == DEFAULT_MODEL:
        kwargs["img_size"] = image_size
    kwargs.update(overrides)
    return kwargs


def create_reference_model(num_classes: int, model_name: str = DEFAULT_MODEL, **overrides: Any):
    """``timm.create_model(model_name, pretrained=False, num_classes=num_classes, **kwargs)``.

    ``kwargs`` are :data:`DEFAULT_MODEL_KWARGS` for the default model, updated by ``overrides``
    (e.g. ``depth=6``; ``image_size=64`` sets the default ViT's ``img_size``). The model
    outputs one logit per class; apply
    ``torch.sigmoid`` for probabilities. Never downloads weights.
    """
    import timm

    try:
        return timm.create_model(
            model_name, pretrained=False, num_classes=num_classes, **model_kwargs(model_name, **overrides)
        )
    except (RuntimeError, TypeError) as err:
        # timm raises RuntimeError for an unknown name and TypeError for a keyword the
        # architecture does not take; both are the user's input, reported in one line.
        raise ValueError(f"model {model_name!r}: {err}") from None
