"""Executed fixtures: the rewritten code must train a multi-label model, not just look right.

Each ``tests/fixtures/executed/<name>.in.py`` is single-label training code in one of the common
shapes (docs: ``idioms.md``, "most common single-label shapes"). The test rewrites it with every
rule at default settings, compares the result with the checked-in ``<name>.out.py``, imports
the rewritten module and trains a small model with it on a learnable multi-label problem,
once with int64 and once with float32 multi-hot labels. The training loss (measured here,
independently of the fixture) must fall, and an accuracy the fixture reports must equal the
thresholded exact match computed here on the same model.

Set ``MIGRATE_ML_UPDATE_EXECUTED=1`` to rewrite the ``.out.py`` files after a rule change
(then review the diff: the golden files are what the rules promise).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

torch = pytest.importorskip("torch")

from migrate_ml.engine.source import decode_source  # noqa: E402
from migrate_ml.engine.transform import FileTransformer, Settings, select_rules  # noqa: E402
from migrate_ml.rules import load_rules  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "executed"
FEATURES, LABELS, BATCH, EPOCHS = 8, 4, 32, 8


@dataclass(frozen=True)
class Case:
    train: str
    """Function run once per epoch; its arguments are passed by role name."""
    evaluate: str | None = None
    accuracy: Callable[[object], float] | None = None
    """Picks the exact-match accuracy (a fraction) out of what ``evaluate`` returns."""
    model_class: str | None = None
    """A model class defined in the fixture (built without arguments); default: a linear layer."""
    evaluate_step: str | None = None
    """A model method evaluating one batch (Lightning ``validation_step``); batch sizes are equal."""
    dict_batches: bool = False


CASES: dict[str, Case] = {
    "tutorial": Case(train="train", evaluate="test", accuracy=lambda result: result / 100),
    "wz_family": Case(train="train_one_epoch", evaluate="evaluate", accuracy=lambda result: result[1]),
    "deit_family": Case(train="fit", evaluate="evaluate"),
    "timm_smoothing": Case(train="train_one_epoch"),
    "lightning_family": Case(
        train="fit", model_class="ViTClassifier", evaluate_step="validation_step", accuracy=float
    ),
    "nll_examples": Case(train="train", evaluate="test"),
    "dict_batches": Case(train="train_epoch", evaluate="evaluate", accuracy=float, dict_batches=True),
    "pytorch_examples_eq": Case(train="train", evaluate="test", accuracy=lambda result: result[1] / 100),
    "transfer_learning": Case(train="train", evaluate="evaluate", accuracy=float),
    # torchmetrics accuracy becomes ExactMatch (ML022), so it must equal the exact match computed here.
    "lightning_torchmetrics": Case(
        train="fit", model_class="LitClassifier", evaluate_step="validation_step", accuracy=float
    ),
    # metrics fed through a (cloned) MetricCollection get sigmoid probabilities and int targets too.
    "torchmetrics_collection": Case(train="train", evaluate="evaluate", accuracy=lambda result: result["val_acc"]),
    "torchmetrics_epoch": Case(train="train", evaluate="evaluate", accuracy=float),
    "carried_predictions": Case(train="train", evaluate="evaluate", accuracy=float),
    "numpy_accuracy": Case(train="train", evaluate="evaluate", accuracy=float),
    "nll_inline_log_softmax": Case(train="train", evaluate="test", accuracy=float),
    "tutorial_two_loops": Case(train="train", evaluate="test", accuracy=float),
    # The criterion reaches train_step() through train()'s parameter (issue 9, call chains).
    "chained_criterion": Case(train="fit", evaluate="evaluate", accuracy=lambda result: result[1]),
    # ignite's Accuracy(is_multilabel=True) is exact match, so it must equal the one computed here.
    "ignite_supervised": Case(train="fit", evaluate="evaluate", accuracy=lambda result: result["accuracy"]),
    # reduction="none" with per-sample weights [B]: BCE's [B, C] loss is averaged over labels.
    "per_sample_weights": Case(train="train", evaluate="evaluate"),
    # pt from one unreduced loss modulates a label-smoothed one: both stay [B, C] per label.
    "focal_smoothed": Case(train="train"),
    # An error rate (pred != y) becomes the complement of exact match (asserted in the fixture).
    "error_rate": Case(train="train", evaluate="evaluate", accuracy=float),
    # correct / labels.numel(): the denominator becomes labels.size(0) with the exact-match numerator.
    "element_count_denominator": Case(train="train", evaluate="evaluate", accuracy=float),
    # A prediction re-bound to the scores' name and copied (torch.tensor(x, dtype=...)) keeps its comparison.
    "copied_prediction": Case(train="train", evaluate="evaluate", accuracy=float),
    # Flattened predictions (.flatten(), .view(-1), .ravel()) keep their rows after the rewrite.
    "flattened_predictions": Case(train="train", evaluate="evaluate", accuracy=float),
    # Labels cast to int64 (.long() of torch.from_numpy, dtype=torch.long in a helper's return) become float.
    "cast_labels": Case(train="train"),
    # `self.loss` is MSE in the denoising branch, whose call regresses the model's output: left uncast
    "criterion_rebound_branch": Case(train="train", model_class="TaskModule"),
    "dtype_cast_labels": Case(train="train"),
    # criterion.cpu()/.train() in place pass no targets: not "a use that could not be followed".
    "moved_criterion": Case(train="train"),
    # the mean of stacked softmax views (test-time augmentation) is thresholded, its softmaxes become sigmoids
    "averaged_probabilities": Case(train="train", evaluate="evaluate", accuracy=float),
    # `model, loss = train_model(model, criterion, ...)`: a model handed back, not a recurrent state
    "model_through_helper": Case(train="train"),
    # label_smoothing= dropped where a comment is written on its line: the comment stays
    "commented_smoothing": Case(train="train"),
    # a trainer's own mixup method handing back (y, y[index], lam): the two weighted losses stay, as BCE
    "mixup_method": Case(train="train"),
    "hf_compute_metrics": Case(
        train="train_epoch", evaluate="evaluate", accuracy=lambda result: result["accuracy"], dict_batches=True
    ),
}

LOADER_NAMES = frozenset(
    {"loader", "data_loader", "dataloader", "train_loader", "trainloader", "val_loader",
     "test_loader", "testloader", "train_dataloader", "eval_dataloader"}
)


def _rewrite(name: str) -> str:
    source = FIXTURES / f"{name}.in.py"
    transformer = FileTransformer(select_rules(load_rules(), (), ()), Settings())
    return transformer.transform(decode_source(str(source), source.read_bytes())).new_text


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"executed_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data(seed: int, count: int, dtype):
    """Label k is on exactly when feature k is positive: learnable by a linear layer."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(count, FEATURES, generator=generator)
    return features, (features[:, :LABELS] > 0).to(dtype)


def _loader(features, labels, dict_batches: bool, shuffle: bool):
    def collate(items):
        x = torch.stack([item[0] for item in items])
        y = torch.stack([item[1] for item in items])
        return {"pixel_values": x, "labels": y} if dict_batches else (x, y)

    dataset = torch.utils.data.TensorDataset(features, labels)
    generator = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(
        dataset, batch_size=BATCH, shuffle=shuffle, collate_fn=collate, generator=generator
    )


def _call(function, roles: dict[str, object]):
    """Call ``function`` with arguments chosen by parameter name."""
    arguments = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name in roles:
            arguments[parameter.name] = roles[parameter.name]
        elif parameter.name in LOADER_NAMES or parameter.name.endswith("loader"):
            arguments[parameter.name] = roles["loader"]
        elif parameter.default is inspect.Parameter.empty:
            raise AssertionError(f"{function.__name__}: no role for parameter {parameter.name!r}")
    return function(**arguments)


def _exact_match(model, features, labels) -> float:
    with torch.no_grad():
        predicted = torch.sigmoid(model(features)) > 0.5
    return (predicted == labels.bool()).all(1).float().mean().item()


def _bce(model, features, labels) -> float:
    with torch.no_grad():
        return torch.nn.functional.binary_cross_entropy_with_logits(model(features), labels.float()).item()


def test_every_fixture_has_a_case() -> None:
    assert sorted(CASES) == sorted(p.name[: -len(".in.py")] for p in FIXTURES.glob("*.in.py"))


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory) -> dict[str, Path]:
    torch.set_num_threads(1)  # tiny tensors: extra threads only contend for the shared CPU
    folder = tmp_path_factory.mktemp("executed")
    paths = {}
    for name in CASES:
        text = _rewrite(name)
        golden = FIXTURES / f"{name}.out.py"
        if os.environ.get("MIGRATE_ML_UPDATE_EXECUTED"):
            golden.write_text(text)
        paths[name] = folder / f"{name}.py"
        paths[name].write_text(text)
    return paths


@pytest.mark.parametrize("name", sorted(CASES))
def test_rewrite_matches_golden(name: str, rewritten: dict[str, Path]) -> None:
    assert rewritten[name].read_text() == (FIXTURES / f"{name}.out.py").read_text()


@pytest.mark.parametrize("dtype", ["int64", "float32"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_rewritten_code_trains_multi_label(name: str, dtype: str, rewritten: dict[str, Path]) -> None:
    case = CASES[name]
    module = _import(rewritten[name], name)
    label_dtype = getattr(torch, dtype)
    torch.manual_seed(0)
    model = getattr(module, case.model_class)() if case.model_class else torch.nn.Linear(FEATURES, LABELS)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    train_x, train_y = _data(1, 8 * BATCH, label_dtype)
    val_x, val_y = _data(2, 4 * BATCH, label_dtype)
    roles = {"model": model, "net": model, "optimizer": optimizer, "device": torch.device("cpu")}

    before = _bce(model, train_x, train_y)
    for epoch in range(EPOCHS):
        _call(getattr(module, case.train), {**roles, "epoch": epoch, "loader": _loader(train_x, train_y, case.dict_batches, True)})
    after = _bce(model, train_x, train_y)
    assert after < 0.6 * before, f"loss did not fall: {before:.3f} -> {after:.3f}"

    val_loader = _loader(val_x, val_y, case.dict_batches, False)
    if case.evaluate_step is not None:
        step = getattr(model, case.evaluate_step)
        with torch.no_grad():
            results = [step(batch, index) for index, batch in enumerate(val_loader)]
        reported = sum(case.accuracy(r) for r in results) / len(results)
    elif case.evaluate is not None:
        reported = _call(getattr(module, case.evaluate), {**roles, "epoch": 0, "loader": val_loader})
        if case.accuracy is None:
            return  # the evaluation runs on multi-hot labels; it reports no accuracy
        reported = case.accuracy(reported)
    else:
        return
    assert reported == pytest.approx(_exact_match(model, val_x, val_y), abs=1e-6)


@pytest.mark.slow  # importing transformers alone takes seconds
def test_hf_head_sized_by_label_maps_trains_multi_label(tmp_path: Path) -> None:
    """ML005 on from_pretrained(..., id2label=..., label2id=...) without num_labels: the head
    loads as multi-label and its own loss trains on float multi-hot labels (int64 labels must
    be made float by the dataset or collate function, which ML111 reports)."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=8, patch_size=4, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, num_labels=2,
    )
    transformers.ViTForImageClassification(config).save_pretrained(tmp_path / "checkpoint")
    source = Path(__file__).resolve().parent.parent / "fixtures" / "rules" / "ML005" / "label_maps_only.out.py"
    model = _import(source, "ml005_label_maps").build(str(tmp_path / "checkpoint"), ["a", "b", "c", "d"])
    assert model.config.problem_type == "multi_label_classification" and model.config.num_labels == 4
    images = torch.randn(32, 3, 8, 8)
    labels = (images.flatten(1)[:, :4] > 0).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(30):
        loss = model(pixel_values=images, labels=labels).loss
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.8 * first
