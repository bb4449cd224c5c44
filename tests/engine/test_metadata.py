"""The metadata ``prepare`` computes is LibCST's own, node for node."""

from __future__ import annotations

from types import MappingProxyType

import libcst as cst
import pytest
from libcst.metadata import (
    ExpressionContextProvider,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from migrate_ml.engine.metadata import prepare
from migrate_ml.rules._exprs import cst_children, cst_walk
from migrate_ml.rules.semantics.flow import LossFlowProvider

CODE = '''\
"""A training script with the constructs the rules follow."""
import torch
import torch.nn as nn
from torch.nn import functional as F
from timm.loss import LabelSmoothingCrossEntropy as Smooth

criterion = nn.CrossEntropyLoss().cuda()


class Trainer:
    def __init__(self, model, loss_fn=None):
        self.model = model
        self.loss_fn = loss_fn or Smooth(0.1)

    def step(self, batch):
        images, (labels, _) = batch
        logits = self.model(images)
        del images
        total = [F.cross_entropy(z, y) for z, y in zip(logits, labels) if y is not None]
        return self.loss_fn(logits, labels) + sum(total), lambda t=labels: t.long()


def evaluate(model, loader, loss_fn=criterion):
    global criterion
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            criterion(out, y).backward()
            print(f"{loss_fn(out, y)=}", (out.argmax(1) == y).float().mean())
'''


class _Needs(cst.BatchableCSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider, LossFlowProvider)


@pytest.fixture(scope="module")
def both():
    module = cst.parse_module(CODE)
    libcst_wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    ours = MetadataWrapper(module, unsafe_skip_copy=True)
    prepare(ours, [_Needs()])
    return libcst_wrapper, ours


def _every_node(module: cst.Module) -> list[cst.CSTNode]:
    nodes: list[cst.CSTNode] = []

    class Collect(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nodes.append(node)
            return True

    module.visit(Collect())
    return nodes


def test_children_read_from_fields_are_the_ones_libcst_visits():
    """The parent links and ``cst_any`` walk the nodes each node's fields hold, not LibCST's visit:
    every node must hold exactly the children LibCST visits, and the walk reach every node once."""
    module = cst.parse_module(CODE)
    nodes = _every_node(module)
    for node in nodes:
        assert sorted(map(id, cst_children(node))) == sorted(map(id, node.children)), type(node).__name__
    assert sorted(map(id, cst_walk(module))) == sorted(map(id, nodes))


@pytest.mark.parametrize("provider", [ParentNodeProvider, ExpressionContextProvider])
def test_each_node_gets_what_libcst_gives_it(both, provider):
    libcst_wrapper, ours = both
    expected, got = libcst_wrapper.resolve(provider), ours.resolve(provider)
    assert dict(got) == dict(expected)


def _described(scope) -> tuple:
    """A scope by its kind, the node that opens it, what it binds and what it reads."""
    assignments = {(a.name, getattr(a, "node", None)) for a in scope.assignments}
    accesses = {(a.node, frozenset(getattr(r, "node", None) for r in a.referents)) for a in scope.accesses}
    return type(scope).__name__, getattr(scope, "node", None), frozenset(assignments), frozenset(accesses)


def test_each_node_is_in_the_scope_libcst_puts_it_in(both):
    libcst_wrapper, ours = both
    expected, got = libcst_wrapper.resolve(ScopeProvider), ours.resolve(ScopeProvider)
    assert set(got) == set(expected)
    assert {node: _described(scope) for node, scope in got.items()} == {
        node: _described(scope) for node, scope in expected.items()
    }


class _AsksForNames(cst.MetadataDependent):
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)


def _names(wrapper: MetadataWrapper, nodes: list[cst.CSTNode]) -> dict:
    """Each node's qualified names, asked for the way rules ask."""
    asks = _AsksForNames()
    with asks.resolve(wrapper):
        return {node: {q.name for q in asks.get_metadata(QualifiedNameProvider, node, set())} for node in nodes}


def test_qualified_names_are_libcst_s_for_every_node(both):
    libcst_wrapper, ours = both
    nodes = _every_node(ours.module)
    got = _names(ours, nodes)
    assert got == _names(libcst_wrapper, nodes)
    assert {"torch.nn.CrossEntropyLoss", "timm.loss.LabelSmoothingCrossEntropy", "torch.nn.functional.cross_entropy"} <= set().union(*got.values())


def test_the_flows_built_on_them_are_the_same(both):
    libcst_wrapper, ours = both
    [expected], [got] = libcst_wrapper.resolve(LossFlowProvider).values(), ours.resolve(LossFlowProvider).values()
    assert [c.call for c in got.calls] == [c.call for c in expected.calls]
    assert [c.qualified_name for c in got.constructions] == [c.qualified_name for c in expected.constructions]
    assert [c.call for c in got.open_parameter_calls] == [c.call for c in expected.open_parameter_calls]
    assert len(got.calls) >= 2 and got.open_parameter_calls



def test_a_libcst_that_keeps_its_record_elsewhere_is_left_to_resolve_everything_itself():
    """The shortcut writes into MetadataWrapper's private record; on a LibCST release without it
    the shortcut must step aside (costing speed, not correctness), not raise."""
    module = cst.parse_module(CODE)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    wrapper._metadata = MappingProxyType({})  # not the dict the shortcut writes into
    prepare(wrapper, [_Needs()])
    assert dict(wrapper._metadata) == {}
