"""The LibCST metadata the rules of one pass depend on, computed with fewer walks of the tree.

``MetadataWrapper`` resolves batchable providers one dependency level at a time and walks the
whole tree once per level. ``ParentNodeProvider``, ``ExpressionContextProvider``,
``ScopeProvider`` and ``QualifiedNameProvider`` do their work in ``visit_Module`` with walks
of their own, so for them that level walk visits every node for nothing; the parent links
cost a further walk (LibCST asks every node for its children), and the qualified names one
more, for every node, where rules ask for those of a few callees. On the files the pre-filters
let through these walks were most of the rules' time.

:func:`prepare` computes those four first, with one walk each for the parent links, the
expression contexts and the scopes, and the qualified names on demand, and puts them where
``MetadataWrapper`` keeps what it resolved: it then resolves only the rest (positions, the
loss and prediction flows) and runs the rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Collection, Iterable

import libcst as cst
from libcst.metadata import (
    ExpressionContextProvider,
    MetadataWrapper,
    ParentNodeProvider,
    QualifiedName,
    QualifiedNameProvider,
    QualifiedNameSource,
    ScopeProvider,
)
from libcst.metadata.base_provider import ProviderT

from migrate_ml.rules._exprs import cst_children


def prepare(wrapper: MetadataWrapper, visitors: Iterable[cst.MetadataDependent]) -> None:
    """Resolve the four whole-module providers that ``visitors`` depend on, directly or through
    another provider (the loss flow needs scopes and qualified names)."""
    needed = _dependencies(visitors)
    # MetadataWrapper takes no metadata from outside, so these go into its own record of what it
    # resolved, where it finds them and computes none again (tests/engine/test_metadata.py checks
    # every node gets what LibCST would give it).
    resolved = getattr(wrapper, "_metadata", None)
    if not isinstance(resolved, dict):
        return  # a LibCST release that keeps it elsewhere: it resolves everything itself, only slower
    if ParentNodeProvider in needed and ParentNodeProvider not in resolved:
        resolved[ParentNodeProvider] = MappingProxyType(_parent_links(wrapper.module))
    for provider in (ExpressionContextProvider, ScopeProvider):
        if provider in needed and provider not in resolved:
            instance = provider()
            with instance.resolve(wrapper):  # the scopes read the contexts resolved just before
                instance.visit_Module(wrapper.module)
            computed = getattr(instance, "_computed", None)
            if computed is None:
                return
            resolved[provider] = MappingProxyType(dict(computed))  # as LibCST stores a batch's results
    if QualifiedNameProvider in needed and QualifiedNameProvider not in resolved:
        resolved[QualifiedNameProvider] = _QualifiedNames(resolved[ScopeProvider], _star_imported_modules(wrapper.module))


def _dependencies(dependents: Iterable[cst.MetadataDependent]) -> set[ProviderT]:
    """Every provider the dependents need, theirs and their providers' (scopes need contexts)."""
    found: set[ProviderT] = set()
    pending = [provider for dependent in dependents for provider in dependent.get_inherited_dependencies()]
    while pending:
        provider = pending.pop()
        if provider not in found:
            found.add(provider)
            pending.extend(provider.get_inherited_dependencies())
    return found


def _parent_links(module: cst.Module) -> dict[cst.CSTNode, cst.CSTNode]:
    """``ParentNodeProvider``'s links in one walk of the nodes each node holds. Rules only look
    links up, so the walk need not follow the source's order, nor build the copy of every node
    that LibCST's ``visit`` makes."""
    parents: dict[cst.CSTNode, cst.CSTNode] = {}
    pending: list[cst.CSTNode] = [module]
    while pending:
        node = pending.pop()
        for child in cst_children(node):
            parents[child] = node
            pending.append(child)
    return parents


class _QualifiedNames(Mapping):
    """``QualifiedNameProvider``'s metadata, each node's names computed when first asked for.

    LibCST gives every node of the tree a set, empty where the node has no scope; here any node
    has one, which is the same answer to ``get_metadata(QualifiedNameProvider, node, set())``,
    the way rules ask.

    One addition: LibCST binds nothing for ``from timm.loss import *``, so a name read but never
    bound (``LabelSmoothingCrossEntropy(...)`` in a timm ``train.py``) has no qualified name.
    Such a name gets one per module star-imported at the top level (``timm.loss.X``): where
    several modules are, only the one that defines it can match a rule's table.
    """

    def __init__(self, scopes: Mapping[cst.CSTNode, object], star_modules: tuple[str, ...] = ()) -> None:
        self._scopes = scopes
        self._star_modules = star_modules
        self._names: dict[cst.CSTNode, Collection[QualifiedName]] = {}

    def __getitem__(self, node: cst.CSTNode) -> Collection[QualifiedName]:
        names = self._names.get(node)
        if names is None:
            scope = self._scopes.get(node)
            names = scope.get_qualified_names_for(node) if scope else set()
            if not names and self._star_modules and isinstance(node, cst.Name) and _unbound_read(scope, node):
                names = {QualifiedName(f"{module}.{node.value}", QualifiedNameSource.IMPORT) for module in self._star_modules}
            self._names[node] = names
        return names

    def __iter__(self) -> Iterator[cst.CSTNode]:
        return iter(self._scopes)

    def __len__(self) -> int:
        return len(self._scopes)


def _star_imported_modules(module: cst.Module) -> tuple[str, ...]:
    """The modules of ``from M import *`` statements at the top level of ``module``."""
    found = []
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.ImportFrom) and isinstance(small.names, cst.ImportStar) and small.module is not None and not small.relative:
                found.append(cst.Module([]).code_for_node(small.module))
    return tuple(found)


def _unbound_read(scope, node: cst.Name) -> bool:
    """``node`` is read in ``scope`` and nothing there or in an enclosing scope binds its name."""
    return (
        scope is not None
        and any(access.node is node for access in scope.accesses[node.value])
        and not scope.assignments[node.value]
        and node.value not in scope
    )
