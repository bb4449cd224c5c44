"""Half-migrations seen in the values themselves: probabilities reaching a loss that applies its own sigmoid, and
models whose last op leaves no negative output (ReLU, sigmoid or softmax after the classifier)."""

from __future__ import annotations

import os

from .core import user_site

WITH_LOGITS_KINDS = frozenset({"bce"})
"""Loss kinds (see ``LossRecorder``) whose input goes through a sigmoid inside the loss."""
MIN_VALUES = 8
"""Fewer values than this prove nothing about their sign."""


def loss_input_failure(record: dict) -> tuple[str, str | None, str] | None:
    """A loss taking logits that received values all in [0, 1] (a sigmoid applied twice), or none negative."""
    low, high = record.get("logits_min"), record.get("logits_max")
    if record["kind"] not in WITH_LOGITS_KINDS or low is None or record.get("logits_count", 0) < MIN_VALUES or low < 0:
        return None
    label = record["label"]
    if high <= 1:
        return (f"{label} received values all in [0, 1] ([{low:.3g}, {high:.3g}]): probabilities, not raw logits, so "
                "the sigmoid is applied twice (double sigmoid)", None,
                f"pass raw logits to {label}, which applies the sigmoid itself: drop the torch.sigmoid before it "
                "(and at the end of the model's forward)")
    return (f"{label} received no negative value ([{low:.3g}, {high:.3g}]): the model's last op clamps its logits "
            "(ReLU), so no label's probability can fall below 0.5", None,
            "end the model's forward with the classifier layer (no ReLU after it)")


class LastOp:
    """The last torch operation (function, ``Tensor`` method or ``nn.Module``) that produced a given output.

    Used as a context around one forward pass: ``with LastOp(user_files) as last: out = model(x)``, then
    ``last.describe(out)``.
    """

    def __init__(self, user_files: set[str]) -> None:
        self.user_files = user_files
        self.ops: dict[int, tuple[str, str | None, int | None, bool, bool]] = {}
        """id of each output -> (op, file, line, whether a module produced it, whether that module is a layer
        whose outputs take either sign: a linear or convolution layer)."""
        self._mode = None
        self._hooks: list = []

    def watch(self, model) -> LastOp:
        """Also name the ``nn.Module`` children (``classifier.2 (ReLU)``) whose output is the model's."""
        for name, child in model.named_modules():
            if name:
                self._hooks.append(child.register_forward_hook(self._module_hook(name)))
        return self

    def _module_hook(self, name: str):
        import torch.nn as nn

        def hook(module, _inputs, output):
            if not self.ops.get(id(output), (None, None, None, False, False))[3]:  # the innermost module names it
                self.ops[id(output)] = (f"self.{name} ({type(module).__name__})", *user_site(self.user_files), True,
                                        isinstance(module, (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)))
        return hook

    def __enter__(self) -> LastOp:
        from torch.overrides import TorchFunctionMode

        recorder = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                recorder.ops[id(out)] = (_op_name(func), *user_site(recorder.user_files), False, False)
                return out

        self._mode = Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)
        for hook in self._hooks:
            hook.remove()


    def describe(self, output) -> tuple[str, int | None]:
        """``("torch.relu at model.py:23", 23)``: what produced ``output``, and the line in the user's file."""
        op = self.ops.get(id(output))
        if op is None:
            return "", None
        name, path, line, _, _ = op
        return (f"{name} at {os.path.basename(path)}:{line}" if path else name), line

    def from_signed_layer(self, output) -> bool:
        """Whether a linear or convolution layer produced ``output`` last: nothing after it clamps its sign."""
        return self.ops.get(id(output), (None, None, None, False, False))[4]


def _op_name(func) -> str:
    name = getattr(func, "__name__", repr(func))
    module = getattr(func, "__module__", "") or ""
    if module.endswith("nn.functional"):
        return f"F.{name}"
    if "Tensor" in getattr(func, "__qualname__", "") or module.startswith("torch._tensor") or module == "torch._C":
        return f"Tensor.{name}" if "Tensor" in getattr(func, "__qualname__", "") else f"torch.{name}"
    return f"torch.{name}"


def never_negative_row(what: str, out, last: LastOp) -> tuple[str, str, int | None, str] | None:
    """(status, reason, line of the last op, hint) when the model's outputs hold no negative value, else None.

    A sigmoid last is a PASS (with ``BCELoss`` it is a multi-label model; with a ``*WithLogits`` loss the loss
    check fails it as a double sigmoid); a ReLU, softmax or clamp last is a FAIL. A linear or convolution layer
    last is never one: an untrained head's outputs vary little from image to image, so its bias alone puts all
    of them above 0 for some initialisations (one in 30 of a 5-label ``nn.Linear`` head's).
    """
    if out.numel() < MIN_VALUES or float(out.min()) < 0 or last.from_signed_layer(out):
        return None
    op, line = last.describe(out)
    if float(out.max()) <= 1 and "sigmoid" in op.lower():
        return ("PASS", f"{what} returns sigmoid probabilities {list(out.shape)} (its last op is {op}): "
                "BCELoss takes them, a *WithLogits loss would apply a second sigmoid", line, "")
    reason = (f"{what} never returns a negative value (outputs in [{float(out.min()):.3g}, {float(out.max()):.3g}] on "
              "sample batches), not raw logits"
              + (f": its last op is {op}" if op else ""))
    return "FAIL", reason, line, ("end forward with the classifier layer (no ReLU, sigmoid or softmax after it): "
                                  "BCEWithLogitsLoss and the predictions apply the sigmoid")
