"""LossFlowProvider: which criterion uses are followed (the proof that smoothing can move)."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper

from migrate_ml.rules.semantics.flow import LossFlowProvider

SOURCE = '''
import torch.nn as nn
from engine import external_train

passed = nn.CrossEntropyLoss().cuda()
escapes = nn.CrossEntropyLoss()
inline = nn.CrossEntropyLoss()(a, b)

def train(model, loader, criterion):
    for x, y in loader:
        criterion(model(x), y)

def main():
    train(1, 2, passed)
    external_train(escapes)

class Trainer:
    def __init__(self):
        self.loss_fn = nn.CrossEntropyLoss()
        self.spare = nn.CrossEntropyLoss()

    def step(self, x, y):
        return self.loss_fn(x, y), self.spare

'''


def _flow():
    wrapper = MetadataWrapper(cst.parse_module(SOURCE))
    flow = wrapper.resolve(LossFlowProvider)[wrapper.module]
    names = {}
    for construction in flow.constructions:
        target = construction.target
        key = target.value if isinstance(target, cst.Name) else target.attr.value if target else "inline"
        names[key] = construction
    return flow, names


def test_uses_followed_through_parameters_attributes_and_device_chains() -> None:
    flow, names = _flow()
    assert names["passed"].uses_followed and len(flow.calls_of(names["passed"])) == 1
    assert names["inline"].uses_followed
    assert names["loss_fn"].uses_followed


def test_a_use_that_leaves_the_file_or_is_not_a_call_is_not_followed() -> None:
    _, names = _flow()
    assert not names["escapes"].uses_followed
    assert not names["spare"].uses_followed


REBOUND = '''
import torch.nn as nn

def main(model, loader, device, half):
    criterion = nn.CrossEntropyLoss()
    criterion = criterion.to(device)
    if half:
        criterion = criterion.half()
    moved = criterion.cuda()
    for x, y in loader:
        criterion(model(x), y)
        moved(model(x), y)
'''


def test_a_criterion_rebound_to_itself_moved_is_the_same_criterion() -> None:
    wrapper = MetadataWrapper(cst.parse_module(REBOUND))
    flow = wrapper.resolve(LossFlowProvider)[wrapper.module]
    [construction] = flow.constructions
    assert construction.uses_followed
    assert [len(call.constructions) for call in flow.calls] == [1, 1]  # criterion(...) and moved(...)
