"""Whole-project migration: a criterion built in main.py and called in engine.py, a model's
outputs passed to an accuracy helper in utils.py (issue 9, §3).

``tests/fixtures/projects/<name>/before`` is rewritten as one run (serially and with two worker
processes) and must equal ``after``; the rewritten project is then imported and trained on
int64 and on float32 multi-hot labels. Each file rewritten alone keeps the finding that names
the parameter and the function.
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pytest

from migrate_ml.engine.project import build_project_facts
from migrate_ml.engine.runner import process_files
from migrate_ml.engine.transform import Settings
from migrate_ml.rules._project import FileFacts

PROJECTS = Path(__file__).resolve().parent.parent / "fixtures" / "projects"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rules" / "ML101"


def _copy(tmp_path: Path, name: str, state: str = "before") -> Path:
    folder = tmp_path / name
    shutil.copytree(PROJECTS / name / state, folder)
    return folder


def _run(folder: Path, jobs: int = 1, write: bool = True, settings: Settings = Settings()):
    paths = sorted(str(p) for p in folder.glob("*.py"))
    return {Path(o.path).name: o for o in process_files(paths, settings, write=write, jobs=jobs)}


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def _deit_style(module, model, loader) -> float:
    return module.main(model, loader, loader, epochs=8)


def _utils_accuracy(module, model, loader) -> float:
    optimizer = module.torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(8):
        module.train(model, loader, optimizer)
    return module.evaluate(model, loader)


PROJECT_CASES = {
    # the criterion is built in main.py and called in engine.py
    "deit_style": ("main", _deit_style),
    # the model's outputs reach an accuracy helper in utils.py
    "utils_accuracy": ("train", _utils_accuracy),
    # the same, to a helper whose file names no training, no accuracy, no model call
    "run_helper_top1": ("train", _utils_accuracy),
}


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("project", sorted(PROJECT_CASES))
def test_project_rewrite_matches_golden(tmp_path: Path, project: str, jobs: int) -> None:
    folder = _copy(tmp_path, project)
    outcomes = _run(folder, jobs=jobs)
    for path in sorted((PROJECTS / project / "after").glob("*.py")):
        assert (folder / path.name).read_text() == path.read_text(), path.name
        assert outcomes[path.name].error is None
        assert outcomes[path.name].findings == []


def test_project_changes_name_both_places(tmp_path: Path) -> None:
    outcomes = _run(_copy(tmp_path, "deit_style"), write=False)
    cast = [c for c in outcomes["engine.py"].changes if c.code == "ML010"]
    assert len(cast) == 1 and cast[0].line == 11
    assert "CrossEntropyLoss built at" in cast[0].message and "main.py:9" in cast[0].message
    built = [c for c in outcomes["main.py"].changes if c.code == "ML001"]
    assert len(built) == 1 and "train_one_epoch(criterion) in " in built[0].message
    assert "engine.py" in built[0].message


@pytest.mark.parametrize("project", sorted(PROJECT_CASES))
def test_rewritten_project_is_idempotent(tmp_path: Path, project: str) -> None:
    outcomes = _run(_copy(tmp_path, project, "after"))
    assert not any(o.changed for o in outcomes.values())


@pytest.mark.parametrize("alone", ["engine.py", "main.py"])
def test_a_file_rewritten_alone_keeps_its_finding(tmp_path: Path, alone: str) -> None:
    folder = _copy(tmp_path, "deit_style")
    [outcome] = process_files([str(folder / alone)], Settings(), write=False)
    findings = [f for f in outcome.findings if f.code in {"ML001", "ML010"}]
    assert len(findings) == 1
    if alone == "engine.py":
        assert findings[0].line == 11
        assert "criterion is a parameter of train_one_epoch()" in findings[0].message
    else:
        assert "not every use of this criterion could be followed" in findings[0].message


@pytest.mark.parametrize("dtype", ["int64", "float32"])
@pytest.mark.parametrize("project", sorted(PROJECT_CASES))
def test_rewritten_project_trains_multi_label(tmp_path: Path, project: str, dtype: str, monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    folder = _copy(tmp_path, project, "after")
    monkeypatch.syspath_prepend(str(folder))
    for path in folder.glob("*.py"):
        monkeypatch.delitem(sys.modules, path.stem, raising=False)
    entry, drive = PROJECT_CASES[project]
    module = importlib.import_module(entry)

    generator = torch.Generator().manual_seed(1)
    features = torch.randn(256, 8, generator=generator)
    labels = (features[:, :4] > 0).to(getattr(torch, dtype))
    dataset = torch.utils.data.TensorDataset(features, labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, generator=generator)
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)

    def bce() -> float:
        with torch.no_grad():
            return torch.nn.functional.binary_cross_entropy_with_logits(model(features), labels.float()).item()

    before = bce()
    accuracy = drive(module, model, loader)
    assert bce() < 0.6 * before
    with torch.no_grad():
        exact = ((torch.sigmoid(model(features)) > 0.5) == labels.bool()).all(1).float().mean().item()
    assert accuracy == pytest.approx(exact, abs=1e-6)


ENGINE = (
    "def train_one_epoch(model, criterion, loader):\n"
    "    for x, y in loader:\n"
    "        criterion(model(x), y).backward()\n"
)


@pytest.mark.parametrize(
    "main",
    [
        "import torch.nn as nn\nimport engine as eng\n\ncriterion = nn.CrossEntropyLoss()\n"
        "eng.train_one_epoch(None, criterion, [])\n",
        "from torch import nn\nfrom . import engine\n\ndef run():\n    loss = nn.CrossEntropyLoss().cuda()\n"
        "    engine.train_one_epoch(None, loader=[], criterion=loss)\n",
        "from timm.loss import SoftTargetCrossEntropy\nfrom .engine import train_one_epoch\n\n"
        "def run():\n    criterion = SoftTargetCrossEntropy()\n    train_one_epoch(None, criterion, [])\n",
        "import torch\nfrom pkg.engine import train_one_epoch\n\ncriterion = torch.nn.BCEWithLogitsLoss()\n"
        "train_one_epoch(None, criterion, [])\n",
    ],
    ids=["import-as", "relative-module", "relative-function", "package-function"],
)
def test_imports_of_the_run_are_resolved(tmp_path: Path, main: str) -> None:
    folder = _write(tmp_path / "pkg", {"__init__.py": "", "main.py": main, "engine.py": ENGINE})
    outcomes = _run(folder, write=False)
    cast = [c for c in outcomes["engine.py"].changes if c.code == "ML010"]
    assert len(cast) == 1 and "main.py:" in cast[0].message
    assert outcomes["engine.py"].findings == [] and outcomes["main.py"].findings == []


@pytest.mark.parametrize(
    "build, passed",
    [
        ("nn.CrossEntropyLoss(label_smoothing=0.1)", "CrossEntropyLoss built at"),
        ("nn.CrossEntropyLoss(ignore_index=-1)", "CrossEntropyLoss built at"),
        ("make_loss()", "an unknown value passed at"),
    ],
)
def test_criteria_this_run_does_not_make_bce_are_reported(tmp_path: Path, build: str, passed: str) -> None:
    main = (
        "from torch import nn\nfrom engine import train_one_epoch\n\ndef run(make_loss, flag):\n"
        "    criterion = nn.CrossEntropyLoss()\n    if flag:\n"
        f"        criterion = {build}\n    train_one_epoch(None, criterion, [])\n"
    )
    folder = _write(tmp_path / "project", {"main.py": main, "engine.py": ENGINE})
    outcomes = _run(folder, write=False)
    assert not [c for c in outcomes["engine.py"].changes if c.code == "ML010"]
    [finding] = [f for f in outcomes["engine.py"].findings if f.code == "ML010"]
    assert finding.applicability == "unsafe"
    assert "criterion is a parameter of train_one_epoch()" in finding.message and passed in finding.message


def test_a_criterion_the_callee_does_not_only_call_stays_reported(tmp_path: Path) -> None:
    # DeiT wraps the criterion (DistillationLoss(criterion, ...)): engine.py does not cast it.
    engine = "def train_one_epoch(model, criterion, loader):\n    return Wrapper(criterion)\n"
    main = (
        "from torch import nn\nimport engine\n\ncriterion = nn.CrossEntropyLoss()\n"
        "engine.train_one_epoch(None, criterion, [])\n"
    )
    outcomes = _run(_write(tmp_path / "project", {"main.py": main, "engine.py": engine}), write=False)
    [note] = [f for f in outcomes["main.py"].findings if f.code == "ML001"]
    assert "not every use of this criterion could be followed" in note.message


def test_conversion_not_selected_means_no_cast(tmp_path: Path) -> None:
    main = "from torch import nn\nimport engine\n\ncriterion = nn.CrossEntropyLoss()\nengine.train_one_epoch(None, criterion, [])\n"
    folder = _write(tmp_path / "project", {"main.py": main, "engine.py": ENGINE})
    outcomes = _run(folder, write=False, settings=Settings(select=("ML010",)))
    assert outcomes["engine.py"].changes == []
    [finding] = outcomes["engine.py"].findings
    assert "CrossEntropyLoss built at" in finding.message


def test_only_multi_file_runs_with_a_loss_pay_for_the_pass(tmp_path: Path) -> None:
    folder = _write(tmp_path / "project", {"main.py": "import engine\nengine.train_one_epoch(None, None, [])\n", "engine.py": ENGINE})
    paths = [str(folder / "main.py"), str(folder / "engine.py")]
    # nothing is parsed: each file learns only the names of the run's modules
    assert build_project_facts(paths, Settings()) == {path: FileFacts(run_modules=("engine", "main")) for path in paths}
    assert build_project_facts(paths[:1], Settings()) == {}


def test_a_criterion_passed_to_a_class_of_the_run_is_cast_there(tmp_path: Path) -> None:
    # DeiT: main.py wraps the criterion in losses.DistillationLoss, which calls self.base_criterion.
    losses = (
        "import torch\n\n\nclass DistillationLoss(torch.nn.Module):\n"
        "    def __init__(self, base_criterion, alpha):\n"
        "        super().__init__()\n        self.base_criterion = base_criterion\n        self.alpha = alpha\n\n"
        "    def forward(self, outputs, labels):\n"
        "        return self.base_criterion(outputs, labels) * (1 - self.alpha)\n"
    )
    main = (
        "from torch import nn\nfrom losses import DistillationLoss\n\n"
        "def build():\n    base = nn.CrossEntropyLoss()\n    return DistillationLoss(base, alpha=0.5)\n"
    )
    outcomes = _run(_write(tmp_path / "project", {"main.py": main, "losses.py": losses}), write=False)
    [cast] = [c for c in outcomes["losses.py"].changes if c.code == "ML010"]
    assert "self.base_criterion is set from a parameter of DistillationLoss()" in cast.message
    assert "main.py:5" in cast.message
    assert "labels.float()" in outcomes["losses.py"].new_text
    assert outcomes["main.py"].findings == [] and outcomes["losses.py"].findings == []


def test_a_helper_called_from_a_file_not_scanned_stays_unproven(tmp_path: Path) -> None:
    utils = "def accuracy(output, target):\n    pred = output.argmax(dim=1)\n    return (pred == target).float().mean()\n"
    train = (
        "from torch import nn\nfrom utils import accuracy\n\ndef step(model, x, y):\n"
        "    outputs = model(x)\n    nn.CrossEntropyLoss()(outputs, y).backward()\n    return accuracy(outputs, y)\n"
    )
    # no loss here, so the pass does not parse it; it calls the helper with something else
    report = "from utils import accuracy\n\ndef score(probs, y):\n    return accuracy(probs, y)\n"
    folder = _write(tmp_path / "project", {"utils.py": utils, "train.py": train, "report.py": report})
    outcomes = _run(folder, write=False)
    assert not outcomes["utils.py"].changed
    # the arg-max and, at its own line, the comparison built on it
    assert [(f.code, f.line) for f in outcomes["utils.py"].findings] == [("ML020", 2), ("ML100", 3)]


def test_a_run_helper_given_something_else_than_the_model_output_is_left_alone(tmp_path: Path) -> None:
    # top1's file has no training marker of its own: only every caller giving it a model's
    # output makes it a classifier's metric; here the scores are a teacher's table
    metrics = "def top1(output, target):\n    pred = output.argmax(1)\n    return (pred == target).float().mean()\n"
    train = (
        "from torch import nn\nfrom metrics import top1\n\ndef step(model, x, y, teacher):\n"
        "    nn.CrossEntropyLoss()(model(x), y).backward()\n    return top1(teacher[x], y)\n"
    )
    outcomes = _run(_write(tmp_path / "project", {"metrics.py": metrics, "train.py": train}), write=False)
    assert not outcomes["metrics.py"].changed and outcomes["metrics.py"].findings == []


def test_a_criterion_passed_on_uncast_names_the_function_it_reaches(tmp_path: Path) -> None:
    main = (
        "from torch import nn\nfrom timm.loss import LabelSmoothingCrossEntropy\nimport engine\n\n"
        "def run(args):\n    if args.smoothing:\n        criterion = LabelSmoothingCrossEntropy(smoothing=args.smoothing)\n"
        "    else:\n        criterion = nn.CrossEntropyLoss()\n    engine.train_one_epoch(None, criterion, [])\n"
    )
    outcomes = _run(_write(tmp_path / "project", {"main.py": main, "engine.py": ENGINE}), write=False)
    [note] = [f for f in outcomes["main.py"].findings if f.code == "ML001"]
    assert "(it is passed to train_one_epoch(criterion) in " in note.message and "engine.py in this run)" in note.message
    [reported] = [f for f in outcomes["engine.py"].findings if f.code == "ML010"]
    assert "LabelSmoothingCrossEntropy built at" in reported.message


LABEL_HELPERS = (
    "import torch\nfrom torch.utils.data import DataLoader\nfrom torchvision import datasets\n\n\n"
    "def one_hot_embedding(labels, num_classes=10):\n    eye = torch.eye(num_classes)\n    return eye[labels]\n\n\n"
    "def get_loaders(root):\n    train_set = datasets.CIFAR100(root, train=True, download=False)\n"
    "    return DataLoader(train_set, batch_size=64)\n\n\n"
    "def one_hot_of_tokens(tokens, vocab):\n    return torch.nn.functional.one_hot(tokens, vocab)\n"
)
LABEL_TRAIN = (
    "from torch import nn\nfrom helpers import get_loaders, one_hot_embedding, one_hot_of_tokens\n\n\n"
    "def train(model, root, tokens):\n"
    "    criterion = nn.CrossEntropyLoss()\n"
    "    for images, labels in get_loaders(root):\n"
    "        y = one_hot_embedding(labels, 100)\n"
    "        words = one_hot_of_tokens(tokens, 50)\n"
    "        loss = criterion(model(images), y)\n"
    "        loss.backward()\n"
)


def test_label_sources_in_another_file_of_the_run_are_reported_at_the_calls(tmp_path: Path) -> None:
    # The helper's body (torch.eye(n)[labels]) and the factory's (CIFAR100, returned) prove them;
    # a one-hot of a parameter not named as labels proves nothing.
    folder = _write(tmp_path / "project", {"helpers.py": LABEL_HELPERS, "train.py": LABEL_TRAIN})
    outcomes = _run(folder, write=False)
    found = sorted((f.code, f.line) for f in outcomes["train.py"].findings)
    assert found == [("ML100", 8), ("ML101", 7)]  # the loss at 10 is built on line 8's one-hot
    helpers = sorted((f.code, f.line) for f in outcomes["helpers.py"].findings)
    assert helpers == [("ML100", 8), ("ML101", 12)]
    # the one-hot helpers are one fact of every file of the run (the call's labels argument decides);
    # the label sources a caller imports are its loader factories
    facts = build_project_facts(sorted(str(p) for p in folder.glob("*.py")), Settings())
    assert {f.one_hot_functions for f in facts.values()} == {("helpers.one_hot_embedding", "helpers.one_hot_of_tokens")}
    assert facts[str(folder / "train.py")].label_sources == (("get_loaders", "CIFAR100"),)
    alone = {Path(o.path).name: o for o in process_files([str(folder / "train.py")], Settings(), write=False)}
    assert alone["train.py"].findings == []


def test_a_one_hot_helper_of_another_file_makes_a_loss_target_one_hot(tmp_path: Path) -> None:
    # pytorch-classification-uncertainty: the evidential loss gets one_hot_embedding(labels) from helpers.py
    helpers = "import torch\n\n\ndef one_hot_embedding(labels, num_classes=10):\n    y = torch.eye(num_classes)\n    return y[labels]\n"
    train = (
        "from helpers import one_hot_embedding\n\n\ndef step(model, criterion, x, labels, epoch):\n"
        "    y = one_hot_embedding(labels, 10)\n    outputs = model(x)\n"
        "    loss = criterion(outputs, y.float(), epoch, 10)\n    loss.backward()\n"
    )
    paths = [str(p) for p in sorted(_write(tmp_path / "project", {"helpers.py": helpers, "train.py": train}).glob("*.py"))]
    assert {fact.one_hot_functions for fact in build_project_facts(paths, Settings()).values()} == {("helpers.one_hot_embedding",)}
    outcomes = _run(tmp_path / "project", write=False)
    [finding] = outcomes["train.py"].findings
    assert (finding.code, finding.line) == ("ML100", 7) and "one-hot of class indices" in finding.message
    # alone, the helper's meaning is not known: nothing is claimed
    alone = process_files([str(tmp_path / "project" / "train.py")], Settings(), write=False)
    assert alone[0].findings == []


def test_a_numpy_one_hot_helper_imported_relatively_is_reported_at_its_call(tmp_path: Path) -> None:
    helpers = "import numpy as np\n\n\ndef to_one_hot(labels, n):\n    return np.eye(n)[labels]\n"
    train = (
        "from torch import nn\nfrom .helpers import to_one_hot\n\n\ndef train(model, loader):\n"
        "    criterion = nn.CrossEntropyLoss()\n    for images, labels in loader:\n"
        "        y = to_one_hot(labels, 10)\n        criterion(model(images), y).backward()\n"
    )
    outcomes = _run(_write(tmp_path / "pkg", {"__init__.py": "", "helpers.py": helpers, "train.py": train}), write=False)
    [finding] = outcomes["train.py"].findings
    assert (finding.code, finding.line) == ("ML100", 8) and "to_one_hot() makes one-hot rows of the class indices labels" in finding.message


def test_a_token_model_hands_the_run_no_criterion_to_cast(tmp_path: Path) -> None:
    # a captioning script: its cross-entropy is over the vocabulary and stays; engine.py's calls
    # of it get no float targets
    main = (
        "from torch import nn\nimport engine\n\ndef run(word_map):\n"
        "    decoder = Decoder(vocab_size=len(word_map))\n    criterion = nn.CrossEntropyLoss()\n"
        "    engine.train_one_epoch(decoder, criterion, [])\n"
    )
    outcomes = _run(_write(tmp_path / "project", {"main.py": main, "engine.py": ENGINE}), write=False)
    assert outcomes["main.py"].changes == [] and outcomes["main.py"].findings == []
    assert not [c for c in outcomes["engine.py"].changes if c.code == "ML010"]


ONE_OUTPUT = Path(__file__).resolve().parent.parent / "fixtures" / "rules" / "ML100"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("one_output_binary_left_alone", []),
        ("one_output_head_replaced_left_alone", []),
        ("one_output_count_proven", ["ML100@12"]),  # num_classes=2: two outputs, not proven binary
    ],
)
def test_a_one_output_binary_classifier_is_left_alone_in_a_run(tmp_path: Path, case: str, expected: list[str]) -> None:
    # a run of several files reports a file's accuracy that the file alone leaves unreported
    train = (ONE_OUTPUT / f"{case}.in.py").read_text()
    outcomes = _run(_write(tmp_path / "project", {"train.py": train, "other.py": "x = 1\n"}), write=False)
    assert outcomes["train.py"].changes == []
    assert sorted(f"{f.code}@{f.line}" for f in outcomes["train.py"].findings) == expected


def test_a_loss_class_of_another_file_is_reported_where_it_is_built(tmp_path: Path) -> None:
    # kaylode/theseus: a loss factory builds the soft-target cross-entropy of a module beside it
    smoothing = (
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
        "class SoftTargetCrossEntropy(nn.Module):\n    def forward(self, outputs, batch):\n"
        "        target = batch['targets']\n"
        "        return torch.sum(-target * F.log_softmax(outputs, dim=-1), dim=-1).mean()\n"
    )
    factory = (
        "from torch import nn\nfrom .smoothing import SoftTargetCrossEntropy\n\n\n"
        "class SmoothLoss(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.soft = SoftTargetCrossEntropy()\n"
    )
    folder = _write(tmp_path / "project", {"smoothing.py": smoothing, "factory.py": factory})
    outcomes = _run(folder, write=False)
    [built] = outcomes["factory.py"].findings
    assert (built.code, built.line) == ("ML100", 8)
    assert "builds SoftTargetCrossEntropy (from smoothing), which computes a soft-target cross-entropy" in built.message
    assert sorted((f.code, f.line) for f in outcomes["smoothing.py"].findings) == [("ML100", 6), ("ML100", 9)]
    alone = process_files([str(folder / "factory.py")], Settings(), write=False)
    assert alone[0].findings == []


def test_a_softmax_focal_class_of_another_file_is_reported_where_a_criterion_choice_builds_it(tmp_path: Path) -> None:
    # MachineLP/PyTorch_image_classifier: the loss picks the softmax probability of the labelled
    # class through a scattered mask, and a criterion chosen by name builds it beside a cross-entropy
    focal = (
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
        "class FocalLoss(nn.Module):\n    def forward(self, inputs, targets):\n"
        "        p = F.softmax(inputs, dim=1)\n        mask = torch.zeros_like(p)\n"
        "        mask.scatter_(1, targets.view(-1, 1), 1.0)\n"
        "        return -((p * mask).sum(1)).log().mean()\n"
    )
    chooser = (
        "import torch\nfrom torch import nn\nfrom .focal import FocalLoss\n\n\n"
        "def build(loss_type):\n    if loss_type == 'focal_loss':\n"
        "        return FocalLoss().to(torch.device('cuda'))\n    return nn.BCEWithLogitsLoss()\n"
    )
    folder = _write(tmp_path / "project", {"focal.py": focal, "chooser.py": chooser})
    outcomes = _run(folder, write=False)
    [built] = outcomes["chooser.py"].findings
    assert (built.code, built.line) == ("ML100", 8)
    assert "builds FocalLoss (from focal), which computes the softmax probability of each image's one labelled class" in built.message
    assert [(f.code, f.line) for f in outcomes["focal.py"].findings][:1] == [("ML100", 6)]


DATASET = (
    "import torch\nfrom torch.utils.data import Dataset\n\n\nclass Pets(Dataset):\n"
    "    def __init__(self, df):\n        self.labels = df['label'].values\n\n"
    "    def __getitem__(self, i):\n        return {'images': torch.zeros(3), 'targets': torch.tensor(self.labels[i])}\n"
)


@pytest.mark.parametrize(
    ("loss", "reported"),
    [("criterion = nn.BCELoss()", False), ("criterion = nn.CrossEntropyLoss()", True)],
)
def test_a_dataset_of_a_binary_run_returns_its_label(tmp_path: Path, loss: str, reported: bool) -> None:
    # A run that only trains binary losses (a cat/dog model with one sigmoid output, built in a
    # package outside the run) reads one 0/1 number per image as the label: nothing to migrate.
    main = f"from torch import nn\nfrom dataset import Pets\n\n{loss}\n"
    outcomes = _run(_write(tmp_path / "project", {"main.py": main, "dataset.py": DATASET}), write=False)
    sources = [f for f in outcomes["dataset.py"].findings if "class-index-source" in f.message]
    assert bool(sources) == reported


ROWS_DATASET = (
    "import pandas as pd\nimport torch\nfrom torch.utils.data import Dataset\n\n\nclass Leaves(Dataset):\n"
    "    def __init__(self, csv):\n        self.annots = pd.read_csv(csv)\n        self.load = lambda path: path\n\n"
    "    def __getitem__(self, idx):\n        obj = self.annots.iloc[idx]\n"
    "        labels = torch.tensor(obj.values[1:].tolist(), dtype=torch.{dtype})\n"
    "        return torch.zeros(3), labels\n\n    def __len__(self):\n        return len(self.annots)\n"
)
ROWS_MIXUP = (
    "class MixupCriterion(object):\n    def __call__(self, criterion, pred, y_a, y_b, lam):\n"
    "        return lam * criterion(pred, y_a) + (1 - lam) * criterion(pred, y_b)\n"
)
ROWS_ENGINE = (
    "from mixup import MixupCriterion\nfrom augment import MixupData\n\n\n"
    "def train_one_epoch(model, loader, criterion):\n    mixup_data = MixupData()\n"
    "    mixup_criterion = MixupCriterion()\n    for images, labels in loader:\n        if mixup:\n"
    "            inputs, targets_a, targets_b, lam = mixup_data(images, labels)\n"
    "            loss = mixup_criterion(criterion, model(inputs), targets_a, targets_b, lam)\n"
    "        else:\n            loss = criterion(model(images), labels)\n        loss.backward()\n"
)
ROWS_MAIN = (
    "import torch\nfrom dataset import Leaves\nfrom engine import train_one_epoch\n\n\n"
    "def train(model, criterion, loader):\n    train_one_epoch(model, loader, criterion)\n\n\n"
    "loader = torch.utils.data.DataLoader(Leaves('train.csv'), batch_size=8)\n"
    "train(None, {loss}, loader)\n"
)


UNPROVEN = ["engine.py:ML010@13", "mixup.py:ML010@3"]
"""The criterion's targets are reported, not the mixup: its two weighted losses are the BCE of the
mixed rows once the targets are float."""


@pytest.mark.parametrize(
    ("dtype", "loss", "expected"),
    [
        ("float32", "torch.nn.BCEWithLogitsLoss()", []),
        # the same rows as class-index integers: a BCE criterion needs them cast
        ("int64", "torch.nn.BCEWithLogitsLoss()", UNPROVEN),
        # float rows, but a criterion of the run that may not be BCE: nothing is proven
        ("float32", "torch.nn.MSELoss()", UNPROVEN),
    ],
    ids=["float32-rows-bce", "int64-rows", "float32-rows-other-loss"],
)
def test_a_bce_run_on_float_label_rows_of_another_file_is_left_alone(tmp_path: Path, dtype: str, loss: str, expected: list[str]) -> None:
    # yohann84L/plant_pathology_2020: the dataset builds float32 rows of the CSV's one-hot columns,
    # the script a BCE criterion that reaches the engine and the mixup criterion of two other files
    files = {
        "dataset.py": ROWS_DATASET.format(dtype=dtype), "mixup.py": ROWS_MIXUP,
        "engine.py": ROWS_ENGINE, "main.py": ROWS_MAIN.format(loss=loss),
    }
    outcomes = _run(_write(tmp_path / "project", files), write=False)
    found = sorted(f"{name}:{f.code}@{f.line}" for name, o in outcomes.items() for f in o.findings if f.code in ("ML010", "ML104"))
    assert found == expected
    assert all(o.changes == [] for o in outcomes.values())


MONITORED_MODULE = '''import pytorch_lightning as pl
import torch

VALIDATION_METRIC_NAME = "val_af"
RANKED_METRIC_NAME = "val_score"


class Classifier(pl.LightningModule):
    def validation_step(self, batch, batch_idx):
        images, labels = batch
        logits = self(images)
        acc_fine = (logits.argmax(dim=1) == labels).float().mean()
        self.log(VALIDATION_METRIC_NAME, acc_fine)
        self.log(RANKED_METRIC_NAME, average_precision)
'''
MONITORING_SCRIPT = '''from pytorch_lightning.callbacks import ModelCheckpoint
from {module} import {name}

checkpoint = ModelCheckpoint(monitor={name}, mode="max")
'''


@pytest.mark.parametrize(
    ("module", "name", "expected"),
    [
        ("pkg.module", "VALIDATION_METRIC_NAME", [("ML107", 4)]),
        # the module logs a ranking score under this one: not an accuracy
        ("pkg.module", "RANKED_METRIC_NAME", []),
        # a library's constant of the same name is not the run's
        ("lightning_helpers", "VALIDATION_METRIC_NAME", []),
    ],
    ids=["accuracy-constant", "ranking-constant", "not-the-run"],
)
def test_a_monitor_named_by_another_modules_accuracy_constant_is_reported(tmp_path: Path, module: str, name: str, expected: list) -> None:
    # Dutta-SD/DualViT: cifar10.py monitors VALIDATION_METRIC_NAME, which modulev2.py logs its fine accuracy under
    folder = _write(tmp_path / "project", {"module.py": MONITORED_MODULE, "train.py": MONITORING_SCRIPT.format(module=module, name=name)})
    outcomes = _run(folder, write=False)
    assert sorted((f.code, f.line) for f in outcomes["train.py"].findings) == expected
    facts = build_project_facts(sorted(str(p) for p in folder.glob("*.py")), Settings())
    assert facts[str(folder / "train.py")].accuracy_constants == (("module.VALIDATION_METRIC_NAME", "val_af"),)
    # alone, the constant's meaning is not known: nothing is claimed
    assert process_files([str(folder / "train.py")], Settings(), write=False)[0].findings == []


SELECTING_CLASS = '''from transformers import TrainingArguments


class Training:
    def __init__(self, model=None, eval_metric="loss", is_best_model=True):
        self.model = model
        self.eval_metric = eval_metric
        self.args = TrainingArguments(output_dir="out", metric_for_best_model=self.eval_metric, load_best_model_at_end=is_best_model)


def build(metric):
    return TrainingArguments(output_dir="out", metric_for_best_model=metric)
'''
SELECTING_CALLER = '''import trainer_module
from trainer_module import Training

training = Training(model=None, eval_metric="{metric}")
arguments = trainer_module.build("{metric}")
other = trainer_module.build(metric="{metric}")
'''


@pytest.mark.parametrize(("metric", "expected"), [("accuracy", [("ML107", 4), ("ML107", 6)]), ("f1", [])], ids=["accuracy", "f1"])
def test_an_accuracy_passed_to_a_selecting_class_of_the_run_is_reported_at_the_call(tmp_path: Path, metric: str, expected: list) -> None:
    # Afrida-Rahman: newCode.py builds Training(eval_metric="accuracy"), which Training.py gives metric_for_best_model
    folder = _write(tmp_path / "project", {"trainer_module.py": SELECTING_CLASS, "main.py": SELECTING_CALLER.format(metric=metric)})
    outcomes = _run(folder, write=False)
    assert sorted((f.code, f.line) for f in outcomes["main.py"].findings) == expected
    assert outcomes["trainer_module.py"].findings == []  # its default is the loss
    facts = build_project_facts(sorted(str(p) for p in folder.glob("*.py")), Settings())
    assert facts[str(folder / "main.py")].selection_parameters == (
        ("trainer_module.Training", "eval_metric"), ("trainer_module.build", "metric"),
    )


def test_a_dataset_class_of_a_module_in_the_run_is_judged_there_not_at_its_construction(tmp_path: Path) -> None:
    # the trainer of tests/fixtures/rules/ML101/outside_run_dataset: with data_utils.py in the run, its
    # own __getitem__ is judged (a float row here), and the construction is not reported
    trainer = (FIXTURES / "outside_run_dataset.in.py").read_text()
    data_utils = (
        "import torch\nfrom torch.utils.data import Dataset\n\n\nclass FolderDataset(Dataset):\n"
        "    def __init__(self, root, split):\n        self.rows = torch.load(f\"{root}/{split}.pt\")\n\n"
        "    def __len__(self):\n        return len(self.rows)\n\n"
        "    def __getitem__(self, i):\n        image, row = self.rows[i]\n        return image, torch.as_tensor(row, dtype=torch.float32)\n"
    )
    folder = _write(tmp_path / "pkg", {"__init__.py": "", "data_utils.py": data_utils, "trainer.py": trainer})
    outcomes = _run(folder, write=False)
    assert [f for f in outcomes["trainer.py"].findings if f.code == "ML101"] == []
    alone = process_files([str(folder / "trainer.py")], Settings(), write=False)
    assert [(f.code, f.line) for f in alone[0].findings] == [("ML101", 11)]


@pytest.mark.parametrize(
    "line, takes",
    [
        ("_, pred = torch.max(outputs, 1)", True),
        ("    (_, predicted) = outputs.max(1)", True),
        ("values, self.last, pred = out.data.max(dim=1)", True),
        ("pred = outputs.max(1)[1]", True),
        ("pred = outputs.max(dim=1).indices", True),
        ("pred = outputs.argmax(dim=1)", True),
        ("_, top = outputs.topk(5, 1)", True),
        # a keyword argument after a comma, as timm's Swin and EfficientNet builders write them
        ("    norm_layer=norm_layer, reduction=max(1, dim // 4),", False),
        ("Block(dim,\n    reduction=max(1, dim // 4))", False),
        ("width = max(8, int(width * multiplier))", False),
        ("scores = amax(x)[1]", False),
    ],
)
def test_the_argmax_hand_off_fact_reads_only_files_that_take_an_argmax(line: str, takes: bool) -> None:
    from migrate_ml.engine.project import _takes_an_argmax

    assert _takes_an_argmax(f"import torch\n\n{line}\n".encode()) is takes


def test_a_file_the_pass_parses_is_not_parsed_again_for_its_pre_check(tmp_path: Path) -> None:
    from migrate_ml.rules._prefilter import parse_once

    losses = "import torch\n\n\nclass SoftCE(torch.nn.Module):\n    def forward(self, x, y):\n        return -(y * x.log_softmax(-1)).sum(-1).mean()\n"
    folder = _write(tmp_path / "project", {"losses.py": losses, "train.py": "from losses import SoftCE\n"})
    (folder / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\n" + losses.encode())
    paths = [str(folder / name) for name in ("latin.py", "losses.py", "train.py")]
    facts = build_project_facts(paths, Settings())
    assert [name for name, _, _ in facts[paths[2]].loss_classes] == ["latin.SoftCE", "losses.SoftCE"]
    # the tree the pass parsed serves the rules' pre-check of the same text, whatever was parsed between
    kept = parse_once((folder / "losses.py").read_text())
    parse_once("pass\n")
    assert parse_once((folder / "losses.py").read_text()) is kept
    # a file with a coding cookie is parsed again from the text the engine decodes
    latin = parse_once((folder / "latin.py").read_text("latin-1"))
    parse_once("pass\n")
    assert parse_once((folder / "latin.py").read_text("latin-1")) is not latin


def test_a_run_with_workers_finds_the_same_facts_in_a_forked_child(tmp_path: Path) -> None:
    losses = "import torch\n\n\nclass SoftCE(torch.nn.Module):\n    def forward(self, x, y):\n        return -(y * x.log_softmax(-1)).sum(-1).mean()\n"
    scoring = "def accuracy(predictions, labels):\n    return (predictions == labels).float().mean()\n"
    train = (
        "from losses import SoftCE\nfrom scoring import accuracy\n\n\ndef step(model, images, labels):\n"
        "    outputs = model(images)\n    predictions = outputs.argmax(dim=1)\n    return accuracy(predictions, labels)\n"
    )
    folder = _write(tmp_path / "project", {"losses.py": losses, "scoring.py": scoring, "train.py": train})
    paths = sorted(str(p) for p in folder.glob("*.py"))
    serial = build_project_facts(paths, Settings())
    assert serial[str(folder / "scoring.py")].argmax_arguments == (("accuracy", "0", "train.py:8"),)
    assert [name for name, _, _ in serial[str(folder / "train.py")].loss_classes] == ["losses.SoftCE"]
    assert build_project_facts(paths, Settings(), parallel=True) == serial


def test_a_forked_computation_that_fails_gives_no_result() -> None:
    from migrate_ml.engine.project import _Forked

    assert _Forked(lambda: {"scoring": (("accuracy", "0", "train.py:8"),)}).result() == {"scoring": (("accuracy", "0", "train.py:8"),)}
    assert _Forked(lambda: 1 / 0).result() is None  # the parent then finds the facts itself


def test_a_criterion_from_a_factory_outside_the_run_is_reported_where_built(tmp_path: Path) -> None:
    # yukkyo/Compare-PyTorch-Catalyst-Ignite-Lightning: self.criterion = get_criterion() of
    # share_funcs.py, which returns nn.CrossEntropyLoss(); rewritten in the same run it is fine
    share = "from torch import nn\n\n\ndef get_criterion():\n    return nn.CrossEntropyLoss()\n"
    module = (
        "import pytorch_lightning as pl\nfrom share_funcs import get_criterion\n\n\n"
        "class Module(pl.LightningModule):\n    def __init__(self, model):\n        super().__init__()\n"
        "        self.model = model\n        self.criterion = get_criterion()\n\n"
        "    def training_step(self, batch, batch_idx):\n        x, y = batch\n"
        "        return self.criterion(self.model(x), y)\n\n"
        "    def validation_step(self, batch, batch_idx):\n        x, y = batch\n"
        "        return (self.model(x).argmax(dim=1) == y).float().mean()\n"
    )
    folder = _write(tmp_path / "project", {"share_funcs.py": share, "train.py": module})
    outcomes = _run(folder, write=False)
    assert [c.code for c in outcomes["share_funcs.py"].changes] == ["ML001"]
    assert not any("get_criterion()" in f.message for f in outcomes["train.py"].findings)
    [alone] = process_files([str(folder / "train.py")], Settings(), write=False)
    [built] = [f for f in alone.findings if "get_criterion()" in f.message]
    assert (built.code, built.line) == ("ML100", 9)
    assert "a module this run does not include, and called on the labels (line 13)" in built.message


def test_a_criterion_handed_in_needs_no_cast_where_every_loss_class_of_the_run_casts_itself(tmp_path: Path) -> None:
    # ssssssshy/Cassava-Leaf-Disease-Classification: the trainer is handed FocalLoss of losses.py,
    # whose cross-entropy the run makes BCE with targets.float(); a loss class that passes its
    # target uncast to nll_loss leaves the trainer's finding in place
    casting = (
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n\n"
        "class FocalLoss(nn.Module):\n    def forward(self, inputs, targets):\n"
        "        ce = F.cross_entropy(inputs, targets, reduction='none')\n"
        "        return ((1 - torch.exp(-ce)) ** 2 * ce).mean()\n"
    )
    uncast = (
        "import torch.nn.functional as F\nfrom torch import nn\n\n\n"
        "class NllLoss(nn.Module):\n    def forward(self, inputs, targets):\n"
        "        return F.nll_loss(F.log_softmax(inputs, dim=1), targets)\n"
    )
    trainer = (
        "class ModelTrainer:\n    def __init__(self, model, criterion):\n"
        "        self.model = model\n        self.criterion = criterion\n\n"
        "    def step(self, images, labels):\n        return self.criterion(self.model(images), labels)\n"
    )
    folder = _write(tmp_path / "casting", {"losses.py": casting, "trainer.py": trainer})
    assert [c.code for c in _run(folder, write=False)["losses.py"].changes] == ["ML002"]
    assert _run(folder, write=False)["trainer.py"].findings == []
    folder = _write(tmp_path / "uncast", {"losses.py": casting, "other_losses.py": uncast, "trainer.py": trainer})
    assert [(f.code, f.line) for f in _run(folder, write=False)["trainer.py"].findings] == [("ML010", 7)]


TOPK_METER = '''import torch


def top1(output, target, ks=(1,)):
    _, pred = output.topk(max(ks), 1, True, True)
    correct = pred.t().eq(target.view(1, -1).expand_as(pred.t()))
    return [correct[:k].float().sum() * 100.0 / target.size(0) for k in ks]


def shuffled(images, labels):
    order = torch.randperm(images.size(0))
    return images[order], labels[order]
'''
SCORE_METER = '''import torch
from sklearn.metrics import accuracy_score


def score(predictions, targets):
    predictions = torch.argmax(predictions, dim=1)
    return accuracy_score(targets, predictions)


class ScoreMeter:
    def __init__(self):
        self.total = 0.0

    def update(self, y_pred, y_true):
        self.total += score(y_pred, y_true)
'''
HELPER_CALLER = '''import torch
from torch import nn
from utils.meters import top1, shuffled
from .scores import ScoreMeter


def train(model, loader, optimizer):
    criterion = nn.CrossEntropyLoss()
    meter = ScoreMeter()
    for images, labels in loader:
        images, labels = shuffled(images, labels)
        output = model(images)
        loss = criterion(output, labels)
        prec1 = top1(output, labels)
        meter.update(output, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return prec1


class Evaluator:
    def __init__(self):
        self.meter = ScoreMeter()

    def run(self, model, images, labels):
        output = model(images)
        self.meter.update(y_pred=output, y_true=labels)
        return top1(output, labels)
'''


def test_calls_of_helpers_another_file_reports_single_label_are_reported_at_each_call(tmp_path: Path) -> None:
    # yuehniu/modeldecomp-fl: prec1 = cal_acc(output, target)[0] with cal_acc's top-k in utils/meter.py;
    # KevinMathewT/Cassava: running_accuracy.update(...) of an AccuracyMeter whose update calls get_accuracy
    folder = _write(tmp_path / "project", {
        "utils/meters.py": TOPK_METER, "scores.py": SCORE_METER, "train.py": HELPER_CALLER,
    })
    paths = [str(folder / name) for name in ("scores.py", "train.py", "utils/meters.py")]
    outcomes = {Path(o.path).name: o for o in process_files(paths, Settings(), write=False, jobs=1)}
    calls = {f.line: f.message for f in outcomes["train.py"].findings if "single-label in its body" in f.message}
    assert sorted(calls) == [14, 15, 28, 29]
    assert "top1() is single-label in its body (reported at utils/meters.py:6)" in calls[14]
    assert "meter.update() scores with ScoreMeter.update(), single-label in its body (reported at scores.py:15)" in calls[15]
    assert "self.meter.update() scores with ScoreMeter.update()" in calls[28]
    assert "reported at utils/meters.py:6" in calls[29]
    assert not any(f.line == 11 for f in outcomes["train.py"].findings)  # shuffled(images, labels) scores nothing
    assert sorted((f.code, f.line) for f in outcomes["meters.py"].findings) == [("ML100", 6)]
    facts = build_project_facts(paths, Settings())
    assert facts[str(folder / "train.py")].reported_helpers == (
        ("scores.ScoreMeter", ("update",), "scores.py:15"), ("meters.top1", (), "utils/meters.py:6"),
    )


@pytest.mark.parametrize("case", ["not-in-run", "own-function", "rewritable-argmax", "multi-label", "epoch-loop"])
def test_calls_of_helpers_the_run_does_not_report_are_left_alone(tmp_path: Path, case: str) -> None:
    helper = {
        # an arg-max compared with the labels is ML020/ML021's to rewrite or report in the helper's own file
        "rewritable-argmax": "def top1(output, target):\n    pred = output.argmax(dim=1)\n"
                             "    return (pred == target).float().mean().item()\n",
        # MI4People/CoVision: an epoch loop given the model and a loader builds its own multiclass F1
        "epoch-loop": "import torch\nfrom torchmetrics.classification import F1Score\n\n\n"
                      "def top1(model, num_classes, loader):\n"
                      "    f1 = F1Score(task=\"multiclass\", num_classes=num_classes)\n    correct = 0\n"
                      "    for data, target in loader:\n        _, predicted = torch.max(model(data), 1)\n"
                      "        correct += (predicted == target).sum().item()\n        f1.update(predicted, target)\n"
                      "    return f1.compute().item()\n",
        "multi-label": "import torch\n\n\ndef top1(output, target, threshold=0.5):\n"
                       "    pred = torch.sigmoid(output) > threshold\n    return (pred == target.bool()).all(dim=1).float().mean()\n",
    }.get(case, TOPK_METER)
    caller = (
        "from torch import nn\nfrom meters import top1\n\n\n"
        "def train(model, loader):\n    criterion = nn.CrossEntropyLoss()\n    for images, labels in loader:\n"
        "        output = model(images)\n        loss = criterion(output, labels)\n        acc = top1(output, labels)\n"
        "    return acc\n"
    )
    if case == "own-function":
        caller = caller.replace("from meters import top1\n", "") + "\n\ndef top1(output, target):\n    return 0.0\n"
    if case == "epoch-loop":
        caller = caller.replace("acc = top1(output, labels)", "acc = top1(model, 3, loader)")
    files = {"train.py": caller} if case == "not-in-run" else {"train.py": caller, "meters.py": helper}
    folder = _write(tmp_path / "project", files)
    outcomes = _run(folder, write=False)
    assert not any("single-label in its body" in f.message for f in outcomes["train.py"].findings)


def test_a_metrics_helper_outside_the_run_is_reported_where_the_run_makes_the_criterion_bce(tmp_path: Path) -> None:
    # train_utils.py names no loss itself: the cross-entropy main.py passes it, which the run makes
    # BCE, says the helper of src.metrics (outside the run) scores one class per sample.
    train_utils = (
        "from src.metrics import batch_metrics, plot_images\n\n\n"
        "def train_epoch(model, loader, criterion, optimizer, num_classes):\n"
        "    for images, targets in loader:\n"
        "        plot_images(images, targets)\n"
        "        logits = model(images)\n"
        "        loss = criterion(logits, targets)\n"
        "        loss.backward()\n"
        "        acc, f1 = batch_metrics(logits.detach(), targets, num_classes)\n"
    )
    main = (
        "from torch import nn\nimport train_utils\n\ncriterion = nn.CrossEntropyLoss()\n"
        "train_utils.train_epoch(None, [], criterion, None, 4)\n"
    )
    folder = _write(tmp_path / "project", {"main.py": main, "train_utils.py": train_utils})
    [finding] = [f for f in _run(folder, write=False)["train_utils.py"].findings if f.code == "ML100"]
    assert finding.line == 10 and "batch_metrics() (from src.metrics, not in this run)" in finding.message
    alone = _run(_write(tmp_path / "alone", {"train_utils.py": train_utils}), write=False)["train_utils.py"]
    assert [f for f in alone.findings if f.code == "ML100"] == []
