"""The locator: which functions verify calls, the role of each parameter, what is left uncallable."""

from __future__ import annotations

import pytest

from migrate_ml.commands._common import UsageError
from migrate_ml.commands.verify import parse_bind
from migrate_ml.verify.locate import Bind, locate, role_of

SOURCE = '''\
import torch
import torch.nn as nn

THRESHOLD = 0.35


class Net(nn.Module):
    def forward(self, x):
        return x


def build():
    return nn.BCEWithLogitsLoss(reduction="sum")


def train(args, model, device, train_loader, optimizer, epoch, criterion):
    for batch in train_loader:
        loss = criterion(model(batch["pixel_values"]), batch["labels"].float())
        loss.backward()
        if args.dry_run:
            break
    return loss.item(), 0.5


def evaluate(model, val_dl, device, scaler_state):
    return sum(torch.sigmoid(model(x)).sum() for x, _ in val_dl)


def accuracy(outputs, targets):
    return ((torch.sigmoid(outputs) > THRESHOLD) == targets).all(1).float().mean()


def main():
    z = torch.softmax(torch.zeros(2, 3), dim=1)
'''


def _plan(binds=()):
    return locate("example.py", SOURCE, {b.name: b for b in binds})


def test_roles_from_common_names():
    assert role_of("trainloader") == "loader"
    assert role_of("data_loader") == "loader"
    assert role_of("net") == "model"
    assert role_of("teacher_model") == "model"
    assert role_of("loss_fn") == "criterion"
    assert role_of("epoch") == "epoch"
    assert role_of("whatever") is None


def test_plan_of_a_training_function():
    plan = _plan()
    assert plan.threshold == 0.35
    assert plan.model_classes == ["Net"]
    train = next(f for f in plan.functions if f.name == "train")
    assert [p["role"] for p in train.params] == ["args", "model", "device", "loader", "optimizer", "epoch", "criterion"]
    assert train.trains
    assert train.args_attributes == ["dry_run"]
    assert train.batch_keys == ["labels", "pixel_values"]
    assert train.returns == ["loss.item()", "0.5"]
    # The flow cannot prove what reaches the parameter; the run falls back to this file's construction.
    assert train.criterion is None
    assert plan.constructions == [{"qualified_name": "torch.nn.BCEWithLogitsLoss", "kwargs": {"reduction": "sum"},
                                   "path": "example.py", "line": 13}]


def test_unknown_required_parameter_makes_a_function_uncallable_until_bound():
    evaluate = next(f for f in _plan().functions if f.name == "evaluate")
    assert evaluate.unbound == ["scaler_state"] and not evaluate.trains
    bound = next(f for f in _plan([Bind("scaler_state", value=None)]).functions if f.name == "evaluate")
    assert not bound.unbound
    assert {"name": "scaler_state", "kind": "normal", "optional": False, "role": "bound", "value": None} in bound.params


def test_metric_helpers_and_main():
    plan = _plan()
    names = [f.name for f in plan.functions]
    assert "accuracy" in names and "main" not in names and "build" not in names
    assert plan.uncovered == [(34, "prediction code inside main()")]


def test_bind_parsing():
    assert parse_bind("val_dl=@loader") == Bind("val_dl", role="loader")
    assert parse_bind("args.lr=0.1") == Bind("args.lr", value=0.1)
    assert parse_bind("LitModel=make_model()") == Bind("LitModel", factory="make_model")
    assert parse_bind("LitModel=pkg.factories.build()") == Bind("LitModel", factory="pkg.factories.build")
    with pytest.raises(UsageError):
        parse_bind("x=@nonsense")
    with pytest.raises(UsageError):
        parse_bind("x=open('f')")


LIGHTNING = """\
import lightning as L


class Lit(L.LightningModule):
    def __init__(self, backbone, head_width):
        super().__init__()

    def training_step(self, batch, batch_idx):
        return self(batch[0]).sum()


def make_lit():
    return Lit(None, 4)
"""


def test_lightning_module_plan_and_factory_bind():
    plan = locate("lit.py", LIGHTNING, {})
    (lit,) = plan.classes
    assert (lit.kind, lit.unbound, [m.name for m in lit.methods]) == ("lightning", ["head_width"], ["training_step"])
    assert [p["role"] for p in lit.methods[0].params] == ["step_input", "step_input"]
    bound = locate("lit.py", LIGHTNING, {"Lit": Bind("Lit", factory="make_lit")}).classes[0]
    assert bound.unbound == [] and bound.to_spec()["factory"] == "make_lit"


CALLER_SOURCE = '''\
import timm
import torch.nn as nn
from torch import optim as O


class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.head = nn.Linear(width, 6)

    def forward(self, x):
        return self.head(x)


class Trainer:
    def __init__(self, model, optimizer):
        self.model, self.optimizer = model, optimizer

    def fit(self, loader):
        for x, y in loader:
            nn.functional.binary_cross_entropy_with_logits(self.model(x), y.float()).backward()


def train(model, loader, optimizer):
    for x, y in loader:
        nn.functional.binary_cross_entropy_with_logits(model(x), y.float()).backward()
        optimizer.step()


def main(args, loader):
    model = Net(width=8, bias=args.bias).cuda()
    optimizer = O.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    train(model, loader, optimizer)
    Trainer(model, optimizer=optimizer).fit(loader)
    other = timm.create_model("vit_tiny_patch16_224", num_classes=6)
    train(other, loader, O.Adam(other.parameters()))
'''


def _params(plan_function) -> dict:
    return {p["name"]: p for p in plan_function.params}


def test_model_and_optimizer_are_built_the_way_the_files_caller_builds_them():
    plan = locate("t.py", CALLER_SOURCE, {})
    train = _params(next(f for f in plan.functions if f.name == "train"))
    # literal keywords kept (args.lr, args.bias are runtime values); .cuda() returns the model
    assert train["model"]["build"] == {"name": "Net", "line": 31, "kwargs": {"width": 8}}
    assert train["optimizer"]["build"] == {"qualified_name": "torch.optim.SGD", "line": 32, "kwargs": {"momentum": 0.9}}
    assert "build" not in train["loader"]
    trainer = next(c for c in plan.classes if c.name == "Trainer")
    init = _params(trainer.init)
    assert init["model"]["build"]["name"] == "Net" and init["optimizer"]["build"]["qualified_name"] == "torch.optim.SGD"


def test_sample_label_count_comes_from_the_head_the_file_builds():
    assert locate("t.py", CALLER_SOURCE, {}).num_classes == 6
    constant_first = "NUM_CLASSES = 3\n" + CALLER_SOURCE
    assert locate("t.py", constant_first, {}).num_classes == 3
    assert locate("t.py", "import torch.nn as nn\nhead = nn.Linear(4, 6)\n", {}).num_classes is None


def test_constructions_outside_the_file_are_not_built():
    source = CALLER_SOURCE.replace("    train(model, loader, optimizer)\n", "")
    train = _params(next(f for f in locate("t.py", source, {}).functions if f.name == "train"))
    assert "build" not in train["model"]  # timm.create_model: verify's reference model stands in
    assert "build" not in train["optimizer"]  # passed inline, not through a variable


def test_label_count_from_the_length_of_a_module_level_list():
    source = "CATEGORIES = ['cat', 'dog', 'car']\nNUM_CLASSES = len(CATEGORIES)\n"
    assert locate("t.py", source, {}).num_classes == 3
    assert locate("t.py", "NUM_CLASSES = len(load_names())\n", {}).num_classes is None
