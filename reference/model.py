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
    except (RuntimeError, TypeError, AssertionError, KeyError, ValueError) as err:
        # timm raises RuntimeError for an unknown name, TypeError for a keyword the architecture
        # does not take, AssertionError for sizes that do not fit (num_heads=3 with a 64-wide
        # embedding), KeyError for an unknown layer name (act_layer='nope'): all the user's input.
        raise ValueError(f"model {model_name!r}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    if isinstance(err, KeyError):
        text = f"unknown name {text}"
    return text.splitlines()[0] if text else type(err).__name__


def check_input_size(model, image_size: int, model_name: str, kwargs: dict[str, Any]) -> None:
    """Run one blank image through ``model``: kwargs that build but cannot take the run's images
    (``img_size=7`` with 32 px images, ``patch_size=64``) fail here in one line, not mid-training."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device))
    except (RuntimeError, AssertionError, ValueError) as err:
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ValueError(f"model {model_name!r} ({given}) cannot take {image_size} px images: {_first_line(err)}") from None
    finally:
        model.train(was_training)


def load_run_weights(model, state: dict, path, class_names: list[str], model_name: str) -> None:
    """Load a run checkpoint's weights into ``model`` (``--resume``, eval, predict), or raise
    ``CheckpointError`` saying how the checkpoint's run differs from this one."""
    from .errors import CheckpointError

    saved_names = list(state.get("class_names", []))
    if saved_names != list(class_names):
        raise CheckpointError(f"{path}: the checkpoint was trained on {len(saved_names)} classes, this run has "
                              f"{len(class_names)} (or other names): start a new run with --overwrite or another --out")
    if state.get("model_name", model_name) != model_name:
        raise CheckpointError(f"{path}: the checkpoint holds a {state['model_name']!r} model, this run asks for "
                              f"{model_name!r}: resume with the same --model, or start a new run")
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        # torch's first line only says "Error(s) in loading state_dict"; the next ones say which.
        lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        raise CheckpointError(f"{path}: the checkpoint's weights do not fit this model (other --model-kwarg "
                              f"values?): {lines[0] if lines else _first_line(err)}") from None


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
