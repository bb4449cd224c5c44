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

    The default architecture kwargs apply only to :data:`DEFAULT_MODEL` (other timm models take
    different kwargs; pass them as ``overrides``, which win). ``image_size`` becomes
    ``img_size``, which models with a fixed input grid (ViTs) need and
    :func:`create_reference_model` drops for models that do not take it (CNNs).
    """
    kwargs: dict[str, Any] = dict(DEFAULT_MODEL_KWARGS) if model_name == DEFAULT_MODEL else {}
    if image_size is not None:
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

    kwargs = model_kwargs(model_name, **overrides)
    try:
        try:
            return timm.create_model(model_name, pretrained=False, num_classes=num_classes, **kwargs)
        except TypeError as err:
            if "img_size" not in str(err):
                raise
            kwargs.pop("img_size")
            return timm.create_model(model_name, pretrained=False, num_classes=num_classes, **kwargs)
    except (RuntimeError, TypeError) as err:
        # timm raises RuntimeError for an unknown name and TypeError for a keyword the
        # architecture does not take; both are the user's input, reported in one line.
        raise ValueError(f"model {model_name!r}: {str(err).splitlines()[0]}") from None


def load_init_weights(model, path: str, class_names: list[str] | None = None) -> tuple[str, str | None]:
    """Initialise ``model`` from a local weights file before training (``--init-checkpoint``).

    Accepts a run's ``checkpoint.pt``, a plain ``state_dict`` or a timm/DeiT-style checkpoint
    (``model``/``state_dict``/``model_ema`` key, ``module.`` prefixes). Tensors whose shape
    differs from the model's (the classifier head when the number of classes differs) are left
    freshly initialised. A run's checkpoint records its class names: when they differ from
    ``class_names`` (even with the same count, where the shapes would fit), the head is
    re-initialised too, since its rows would score the wrong classes. Returns a one-line summary
    and a warning (``None`` when there is nothing to warn about); raises ``CheckpointError`` when
    the file cannot be read or no tensor fits.
    """
    import torch

    from .errors import CheckpointError
    from .report import load_checkpoint

    state = load_checkpoint(path)
    warning, other_head = None, None
    head = getattr(model, "pretrained_cfg", {}).get("classifier")
    if isinstance(state, dict) and isinstance(state.get("class_names"), list) and class_names is not None \
            and list(state["class_names"]) != list(class_names) and head:
        old = state["class_names"]
        warning = (f"warning: {path} was trained on other classes ({len(old)}: {', '.join(map(str, old[:5]))}"
                   f"{', ...' if len(old) > 5 else ''}); its head ({head}) is not used and starts fresh")
        other_head = head + "."
    for key in ("model", "state_dict", "model_ema", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a state dict or checkpoint")
    state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    own = model.state_dict()
    usable = {k: v for k, v in state.items()
              if k in own and own[k].shape == v.shape and not (other_head and k.startswith(other_head))}
    resized = sorted(k for k in state if k in own and k not in usable)
    if not usable:
        raise CheckpointError(f"{path}: no tensor matches the model's parameters (a different architecture?)")
    model.load_state_dict(usable, strict=False)
    note = f"initialised {len(usable)}/{len(own)} tensors from {path}"
    if resized:
        note += f"; re-initialised (other shape or other classes, e.g. the head): {', '.join(resized)}"
    return note, warning
