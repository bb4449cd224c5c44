"""``migrate-ml reference export``: a run's model as ONNX or TorchScript, checked by running it.

The exported graph includes the sigmoid, so it maps a normalised ``[N, 3, H, W]`` float batch to
``[N, C]`` probabilities. ``OUT.json`` (``model.onnx.json``) beside it holds what a caller needs around the graph: the
class names, the run's tuned thresholds (``prob > threshold``), the input size and the mean/std to
normalise with. Before anything is reported, the exported file is loaded back (onnxruntime for
ONNX, ``torch.jit.load`` for TorchScript) and run on sample images; its probabilities must match
the checkpoint's.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from .errors import InputError

# Sample images the exported model is checked on; ONNX Runtime and PyTorch differ by float rounding only.
CHECK_IMAGES = 8
TOLERANCE = 1e-4


class _Probabilities(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(images))


def _sample_batch(data_config: dict) -> torch.Tensor:
    from .pipeline import normalise
    from .sample import make_sample_tensors

    _, height, width = data_config["input_size"]
    images, _, _ = make_sample_tensors("shapes", CHECK_IMAGES, max(height, width) + max(height, width) % 2, 0, "test")
    images = torch.nn.functional.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    return normalise(images, data_config)


def _run_onnx(path: Path, batch: torch.Tensor) -> torch.Tensor:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0])


def export_model(checkpoint: str | Path, fmt: str, out: str | Path, overwrite: bool = False) -> dict:
    """Write ``out`` (``fmt`` ``onnx`` or ``torchscript``) and ``out`` + ``.json`` beside it;
    returns the sidecar document plus its path under ``sidecar``."""
    from .predictor import load
    from .report import write_text
    from .train import THRESHOLD_RULE

    out = Path(out)
    sidecar = out.with_name(out.name + ".json")
    if fmt not in ("onnx", "torchscript"):
        raise InputError(f"--format must be onnx or torchscript, got {fmt!r}")
    for path in (out, sidecar):
        if path.exists() and not overwrite:
            raise InputError(f"{path}: exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such folder for --out")
    if fmt == "onnx":
        missing = [name for name in ("onnx", "onnxscript", "onnxruntime") if __import__("importlib.util").util.find_spec(name) is None]
        if missing:
            raise InputError(f"--format onnx needs {', '.join(missing)}: pip install 'migrate-ml[runtime-extras]'")
    predictor = load(checkpoint, device="cpu")
    wrapper = _Probabilities(predictor.model).eval()
    batch = _sample_batch(predictor.data_config)
    with torch.no_grad(), warnings.catch_warnings():
        # torch.jit and the ONNX exporter announce their deprecations and progress; the check below says what matters.
        warnings.simplefilter("ignore")
        expected = wrapper(batch)
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(wrapper, batch), str(out))
            got = torch.jit.load(str(out))(batch)
        else:
            torch.onnx.export(wrapper, (batch,), str(out), input_names=["images"], output_names=["probs"],
                              dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, dynamo=True, external_data=False, verbose=False)
            got = _run_onnx(out, batch)
    diff = float((got.float() - expected).abs().max())
    if not diff <= TOLERANCE:
        out.unlink(missing_ok=True)
        raise InputError(f"{out}: the exported model disagrees with {checkpoint} by {diff:.2e} on sample images "
                         f"(more than {TOLERANCE:g}); nothing kept")
    doc = {
        "format": fmt,
        "model_file": out.name,
        "input": {"name": "images", "shape": ["N", *predictor.data_config["input_size"]], "dtype": "float32",
                  "normalise": "(RGB in [0, 1] - mean) / std, resized to the input size",
                  "mean": predictor.data_config["mean"], "std": predictor.data_config["std"],
                  "interpolation": predictor.data_config["interpolation"]},
        "output": {"name": "probs", "shape": ["N", len(predictor.classes)], "meaning": "sigmoid probabilities, one per class"},
        "class_names": predictor.classes,
        "threshold_rule": THRESHOLD_RULE,
        "thresholds": predictor.thresholds.tolist(),
        "checked": {"images": CHECK_IMAGES, "max_abs_diff": diff},
    }
    write_text(sidecar, json.dumps(doc, indent=2) + "\n")
    return dict(doc, sidecar=str(sidecar))
