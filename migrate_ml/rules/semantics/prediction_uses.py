"""Where an arg-max prediction goes, for :class:`~migrate_ml.rules.semantics.prediction_provider.PredictionFlowProvider`.

From the name a prediction is bound to, through flattens, ``.tolist()``/``.numpy()``, lists
joined after the loop and distributed gathers, to what it meets: an accuracy comparison with
the labels (and the ``numel`` it is divided by), or a call nothing follows. A prediction whose
uses are all known can be rewritten; one that escapes is reported instead.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from migrate_ml.rules._base import enclosing, in_source_order
from migrate_ml.rules.semantics.bindings import reaching_bindings
from migrate_ml.rules.semantics.class_index import class_index_sources
from migrate_ml.rules.semantics.predictions import (
    LITERALS,
    Comparison,
    Flatten,
    Prediction,
    qualified_names,
    strip_transparent,
)
from migrate_ml.rules.semantics.shapes import is_flatten, unflattened
from migrate_ml.rules.semantics.tables import JOIN_FUNCTIONS, JOINS, TENSOR_COPIES, TORCHMETRICS_TASK_METRICS

_PREDICTION_CHAIN = frozenset({"detach", "cpu", "cuda", "to", "numpy", "clone"})
_GATHER_METHODS = frozenset({"gather", "gather_for_metrics", "all_gather", "pad_across_processes"})
"""Distributed collection (accelerate, Lightning, torch_xla): the rows of every process, same layout."""
_FOLLOWED_METHODS = _GATHER_METHODS | {"append", "extend", "update", "add_batch", "add", "compute", "eq", "ne", "log"}
"""Calls a prediction goes through that other code follows or reports (ML022, ML023, the gathers)."""
_STEP_COLLECTORS = {
    f"{stage}_step": frozenset({f"{stage}_step_end", f"{stage}_epoch_end", f"on_{hook}_batch_end"})
    for stage, hook in (("training", "train"), ("validation", "validation"), ("test", "test"), ("predict", "predict"))
}
"""What Lightning hands a step's returned dict to: ``validation_epoch_end`` reads the outputs of
``validation_step``, never those of ``training_step``."""
_NEUTRAL_BUILTINS = frozenset({"print", "len", "int", "str", "type", "isinstance", "repr"})
_METRIC_LIBRARIES = ("sklearn.", "torchmetrics.")


class PredictionUses:
    """The use-following half of :class:`PredictionFlowProvider`, mixed into it: it reads the
    provider's metadata (parents, scopes, qualified names), its proofs (``_max_call``,
    ``_assigned_value``) and the state ``leave_Module`` sets up."""

    def _bind(self, prediction: Prediction) -> None:
        """Find the name the prediction is assigned to, and mark ``_, p = torch.max(...)``."""
        node = prediction.node
        parent = self.get_metadata(ParentNodeProvider, node)
        if isinstance(node, cst.Call) and isinstance(parent, cst.Assign) and self._max_call(node) is node:
            target = parent.targets[0].target if len(parent.targets) == 1 else None
            if isinstance(target, cst.Tuple) and len(target.elements) == 2 and not any(
                isinstance(e, cst.StarredElement) for e in target.elements
            ):
                values, indices = (e.value for e in target.elements)
                if not isinstance(indices, cst.Name):
                    prediction.blocked = "the indices are not assigned to a plain name"
                elif not (isinstance(values, cst.Name) and values.value.startswith("_")) and self._is_used(values):
                    prediction.blocked = f"the max values `{values.value}` are used too"
                prediction.node, prediction.unpacking, prediction.binding = parent, True, indices
            return
        current, flattens, numpy, listed = self._chain_top(node)
        parent = self.get_metadata(ParentNodeProvider, current)
        if current is node and isinstance(parent, (cst.Assign, cst.AnnAssign, cst.Return, cst.Arg)):
            prediction.parenthesize = False
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
            prediction.binding = parent.targets[0].target
            prediction.drop_flattens(flattens)
            if listed:
                self._listed.add(id(prediction.binding))
            if numpy:
                self._numpy_bindings.add(id(prediction.binding))
        else:
            self._classify_use(prediction, node, False)

    def _chain_top(self, node: cst.CSTNode) -> tuple[cst.CSTNode, list[Flatten], bool, bool]:
        """Walk up from ``node`` through calls that keep one row per sample: transfers
        (``.cpu()``, ``.numpy()``…), flattens and ``.tolist()``. Returns the outermost of them,
        the flattens passed, and whether the value became a NumPy array or a Python list."""
        current, flattens, numpy, listed = node, [], False, False
        while True:
            parent = self.get_metadata(ParentNodeProvider, current, None)
            call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Attribute) else None
            if not (isinstance(call, cst.Call) and call.func is parent and parent.value is current):
                break
            method = parent.attr.value
            if is_flatten(call):
                flattens.append(self._flatten(call))
            elif method not in _PREDICTION_CHAIN and method != "tolist":
                break
            numpy = numpy or method == "numpy"
            listed = listed or method == "tolist"
            current = call
        return current, flattens, numpy, listed

    def _flatten(self, call: cst.Call) -> Flatten:
        flatten = Flatten(call, self._standalone(call))
        statement = self.get_metadata(ParentNodeProvider, call, None)
        line = self.get_metadata(ParentNodeProvider, statement, None) if isinstance(statement, cst.Assign) else None
        block = self.get_metadata(ParentNodeProvider, line, None) if isinstance(line, cst.SimpleStatementLine) else None
        receiver = call.func.value if isinstance(call.func, cst.Attribute) else None
        if (
            isinstance(block, (cst.IndentedBlock, cst.Module))
            and len(block.body) > 1
            and len(line.body) == 1
            and not line.leading_lines
            and line.trailing_whitespace.comment is None
            and len(statement.targets) == 1
            and isinstance(receiver, cst.Name)
            and statement.targets[0].target.deep_equals(receiver)
        ):
            flatten.self_assignment = line
        return flatten

    def _standalone(self, node: cst.CSTNode) -> bool:
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, (cst.Assign, cst.Return)):
            return parent.value is node
        return isinstance(parent, cst.Arg) and parent.value is node

    def _is_used(self, name: cst.Name) -> bool:
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return True
        return any(getattr(a, "node", None) is name and a.references for a in scope[name.value])

    def _link_comparisons(self, predictions: list[Prediction]) -> None:
        holders: dict[int, list[tuple[cst.CSTNode, bool]]] = {}
        for prediction in predictions:
            numpy = prediction.binding is not None and id(prediction.binding) in self._numpy_bindings
            found = [(prediction.binding, numpy)] if prediction.binding is not None else []
            seeds = [prediction.binding] if prediction.binding is not None else [prediction.node]
            self._walked_flattens = []
            for seed in seeds:
                found.extend(self._carried_names(seed, seed is prediction.binding, 0, numpy))
            prediction.drop_flattens(self._walked_flattens)
            holders[id(prediction)] = found
        bindings = {
            name for p in predictions if p.proven and not p.blocked for name, _ in holders[id(p)]
        }
        for prediction in predictions:
            for name, numpy in holders[id(prediction)]:
                if not isinstance(name, cst.Name):
                    self._classify_use(prediction, name, numpy)  # torch.cat(rows) == labels
                    continue
                for use in self._reads(name):
                    reaching = reaching_bindings(self, use.node, list(use.referents)) if isinstance(use.node, cst.Name) else use.referents
                    if all(getattr(r, "node", None) is not name for r in reaching):
                        continue  # `outputs = model(x)` ... `outputs = outputs.argmax(1)`: an earlier value's read
                    referents = [getattr(r, "node", None) for r in reaching]
                    if prediction.proven and not all(r in bindings or self._starts_empty(r) for r in referents):
                        continue  # another binding of the name is not a rewritten prediction
                    kinds = {flag for n, flag in holders[id(prediction)] if n in referents}
                    listed = any(id(r) in self._listed for r in referents)
                    self._classify_use(prediction, use.node, numpy if len(kinds) <= 1 else None, listed)

    def _classify_use(self, prediction: Prediction, node: cst.CSTNode, numpy: bool | None, listed: bool = False) -> None:
        self._note_escape(prediction, node)
        self._note_returned(prediction, node)
        top, flattens, moved, made_list = self._chain_top(node)
        use = self._comparison_of(top)
        if isinstance(use, Comparison) and numpy is None:
            use = "the name holds a tensor in one place and a NumPy array in another"
        if isinstance(use, Comparison) and (listed or made_list):
            use = "it is compared as a Python list (.tolist()), element by element"
        if isinstance(use, Comparison):
            use.numpy = bool(numpy) or moved
            prediction.drop_flattens(flattens)
            use.denominators = self._element_counts(_label_side(use))
            if all(use.node is not known.node for known in prediction.comparisons):
                prediction.comparisons.append(use)  # a name and its gathered re-binding read it once each
        elif use and not prediction.blocked:
            prediction.blocked = use
            prediction.blocked_at = top if top is not prediction.node else None

    def _element_counts(self, labels: cst.BaseExpression) -> list[cst.Call]:
        """``labels.numel()``, ``labels.nelement()`` and ``torch.numel(labels)`` on the bindings of
        the labels name compared with the prediction (``seen += y.numel()``)."""
        name, previous = labels, None
        while name is not previous:  # y.to(device).view(-1), target.view_as(pred)
            previous, name = name, unflattened(strip_transparent(name))
            if isinstance(name, cst.Call) and isinstance(name.func, cst.Attribute) and name.func.attr.value == "view_as":
                name = name.func.value
        scope = self.get_metadata(ScopeProvider, name, None) if isinstance(name, cst.Name) else None
        if scope is None:
            return []
        referents = [
            assignment
            for access in scope.accesses[name.value]
            if access.node is name
            for assignment in in_source_order(self, access.referents)
        ]
        found: list[cst.Call] = []
        for assignment in referents:
            for access in in_source_order(self, assignment.references):
                parent = self.get_metadata(ParentNodeProvider, access.node, None)
                call = self.get_metadata(ParentNodeProvider, parent, None)
                if (
                    isinstance(parent, cst.Attribute)
                    and parent.value is access.node
                    and parent.attr.value in ("numel", "nelement")
                    and isinstance(call, cst.Call)
                    and call.func is parent
                    and not call.args
                ) or (
                    isinstance(parent, cst.Arg)
                    and isinstance(call, cst.Call)
                    and len(call.args) == 1
                    and qualified_names(self, call.func) & {"torch.numel"}
                ):
                    if all(call is not known for known in found):
                        found.append(call)
        return found

    def _starts_empty(self, bound: cst.CSTNode | None) -> bool:
        """``rows = []`` or ``rows, labels = [], []``: the accumulator a joined prediction re-binds
        (``rows = torch.cat(rows)``)."""
        value = self._assigned_value(bound)
        element = self.get_metadata(ParentNodeProvider, bound, None) if value is None else None
        pair = self.get_metadata(ParentNodeProvider, element, None) if isinstance(element, cst.Element) else None
        target = self.get_metadata(ParentNodeProvider, pair, None) if isinstance(pair, cst.Tuple) else None
        statement = self.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.AssignTarget) else None
        if isinstance(statement, cst.Assign) and isinstance(statement.value, cst.Tuple):
            index = next(i for i, e in enumerate(pair.elements) if e is element)
            values = statement.value.elements
            value = values[index].value if len(values) == len(pair.elements) else None
        return isinstance(value, cst.List) and not value.elements

    def _note_escape(self, prediction: Prediction, node: cst.CSTNode) -> None:
        """Record a call that receives the prediction (after ``.cpu()``/``.numpy()``…) and that
        nothing here follows: a helper defined elsewhere, ``np.bincount``, a plotting function.
        A flatten on the way is dropped, so that the call gets the [B, C] rows its note names."""
        current, flattens, _, _ = self._chain_top(node)
        parent = self.get_metadata(ParentNodeProvider, current, None)
        call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
        if not isinstance(call, cst.Call) or parent.value is not current:
            return
        func = call.func
        if isinstance(func, cst.Attribute) and (func.attr.value in _FOLLOWED_METHODS or func.attr.value.endswith("_as")):
            return  # followed or reported elsewhere; `labels.view_as(pred)` only reads the shape
        if isinstance(func, cst.Name) and func.value in _NEUTRAL_BUILTINS:
            return
        if isinstance(func, (cst.Name, cst.Attribute)) and (func.value if isinstance(func, cst.Name) else func.attr.value).endswith("_like"):
            return  # torch.zeros_like(pred) reads only the shape
        qualified = qualified_names(self, func)
        if self._copied(current) is not None:
            return  # the copy is followed to the name it is bound to
        if qualified & JOIN_FUNCTIONS or any(q.startswith(_METRIC_LIBRARIES) for q in qualified):
            return  # joins are followed; scikit-learn and torchmetrics calls have their own rules
        if self._torchmetrics_object(func):
            return  # `self.metric(preds, y)` with `self.metric = MulticlassAccuracy(...)`: ML022's, as above
        if all(call is not known for known in prediction.escapes):
            prediction.escapes.append(call)
        prediction.drop_flattens(flattens)

    def _torchmetrics_object(self, func: cst.BaseExpression) -> bool:
        """``func`` (``acc``, ``self.metric``) is assigned a multilabel torchmetrics metric, or one ML022
        converts to one, somewhere in the file (found by the assigned code, as ML022 finds them)."""
        if not isinstance(func, (cst.Name, cst.Attribute)):
            return False
        code = cst.Module([]).code_for_node(func)
        for call in self._calls:
            statement = self.get_metadata(ParentNodeProvider, call, None)
            if (
                isinstance(statement, cst.Assign)
                and len(statement.targets) == 1
                and cst.Module([]).code_for_node(statement.targets[0].target) == code
                and any(_multi_label_metric(call, q) for q in qualified_names(self, call.func))
            ):
                return True
        return False

    def _note_returned(self, prediction: Prediction, node: cst.CSTNode) -> None:
        """Record the key of a returned dict the prediction is a value of (after ``.cpu()``…) when
        another function of the file reads that key: Lightning's ``return {"val_preds": preds}``
        collected and read back as ``x["val_preds"]`` in ``validation_epoch_end``."""
        current = self._chain_top(node)[0]
        element = self.get_metadata(ParentNodeProvider, current, None)
        holder = self.get_metadata(ParentNodeProvider, element, None) if isinstance(element, cst.DictElement) else None
        returned = self.get_metadata(ParentNodeProvider, holder, None) if isinstance(holder, cst.Dict) else None
        if not (isinstance(returned, cst.Return) and element.value is current and isinstance(element.key, cst.SimpleString)):
            return
        key = element.key.evaluated_value
        function = enclosing(self, returned, cst.FunctionDef)
        collectors = _STEP_COLLECTORS.get(function.name.value) if function is not None else None
        readers = [
            read for read in self._keyed.get(key, [])
            if not self._is_store(read) and (reader := enclosing(self, read, cst.FunctionDef)) not in (None, function)
            and (collectors is None or reader.name.value in collectors)
        ]
        if readers and all(known != key for known, _ in prediction.returned_under):
            prediction.returned_under.append((key, readers[0]))

    def _reads(self, binding: cst.Name) -> list:
        scope = self.get_metadata(ScopeProvider, binding, None)
        if scope is None:
            return []
        return [
            access
            for assignment in scope[binding.value]
            if getattr(assignment, "node", None) is binding
            for access in in_source_order(self, assignment.references)
        ]

    def _carried_names(
        self, seed: cst.CSTNode, is_binding: bool, depth: int, numpy: bool = False
    ) -> list[tuple[cst.CSTNode, bool]]:
        """Names (or unnamed joins, ``torch.cat(rows)``) the prediction reaches after transfers
        that keep one row per sample:
        ``.cpu()``/``.detach()``/``.numpy()``, ``accelerator.gather_for_metrics((preds, labels))``
        (also ``gather``/``all_gather``/``pad_across_processes``) with tuple unpacking, and rows
        appended to a list that ``torch.cat``/``np.concatenate`` joins. Each name comes with
        whether it holds a NumPy array."""
        if depth > 3:
            return []
        found: list[tuple[cst.CSTNode, bool]] = []
        reads = [access.node for access in self._reads(seed)] if is_binding else [seed]
        for node in reads:
            for holder, as_numpy in self._carried_from(node, None, numpy, depth):
                if all(holder is not known for known, _ in found):
                    found.append((holder, as_numpy))
                    if isinstance(holder, cst.Name):
                        found.extend(self._carried_names(holder, True, depth + 1, as_numpy))
        return found

    def _carried_from(
        self, node: cst.CSTNode, position: int | None, numpy: bool, depth: int, collected: bool = False
    ) -> list[tuple[cst.CSTNode, bool]]:
        """Where the value of ``node`` (element ``position`` of it, for a tuple) is bound. A
        ``collected`` value (a join or a gather's result) that is used without a name is
        returned itself, so that a comparison on it is found too."""
        current, flattens = node, []
        while position is None:
            copy = self._copied(current)
            if copy is not None:
                current, numpy = copy, False
                continue
            parent = self.get_metadata(ParentNodeProvider, current, None)
            call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Attribute) else None
            if not (
                isinstance(call, cst.Call)
                and call.func is parent
                and parent.value is current
                and (
                    parent.attr.value in _PREDICTION_CHAIN
                    or (parent.attr.value == "tolist" and self._extends(call))
                    or is_flatten(call)
                )
            ):
                break
            if is_flatten(call):
                flattens.append(self._flatten(call))
            numpy = numpy or parent.attr.value == "numpy"
            current = call
        found = self._holders_of(current, position, numpy, depth, collected)
        if found:
            self._walked_flattens.extend(flattens)
        return found

    def _holders_of(
        self, current: cst.CSTNode, position: int | None, numpy: bool, depth: int, collected: bool
    ) -> list[tuple[cst.CSTNode, bool]]:
        parent = self.get_metadata(ParentNodeProvider, current, None)
        if isinstance(parent, cst.Element) and position is None:
            pair = self.get_metadata(ParentNodeProvider, parent, None)
            join = self._join_of(pair) if isinstance(pair, (cst.Tuple, cst.List)) else None
            if join is not None:  # torch.cat((seen, rows)): the batches joined one by one
                return self._carried_from(join, None, numpy, depth, collected=True)
            if isinstance(pair, cst.Tuple):
                index = next(i for i, element in enumerate(pair.elements) if element is parent)
                return self._carried_from(pair, index, numpy, depth)
            return []
        if isinstance(parent, cst.Arg) and parent.keyword is None:
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)):
                return []
            if (
                call.func.attr.value == "all_gather"
                and len(call.args) == 2
                and call.args[1] is parent
                and isinstance(call.args[0].value, cst.Name)
                and position is None
            ):
                return self._joined(call.args[0].value, "append", numpy, depth)  # dist.all_gather(rows, pred)
            if call.args[0] is not parent:
                return []
            if call.func.attr.value in _GATHER_METHODS:
                return self._carried_from(call, position, numpy, depth, collected=True)
            if call.func.attr.value in ("append", "extend") and position is None and isinstance(call.func.value, cst.Name):
                return self._joined(call.func.value, call.func.attr.value, numpy, depth)
            return []
        if isinstance(parent, cst.AugAssign) and isinstance(parent.operator, cst.AddAssign) and position is None:
            if isinstance(parent.target, cst.Name) and parent.value is current:
                return self._joined(parent.target, "extend", numpy, depth)  # rows += pred.tolist()
            return []
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1:
            target = parent.targets[0].target
            if position is None and isinstance(target, cst.Name):
                return [(target, numpy)]
            if (
                position is not None
                and isinstance(target, (cst.Tuple, cst.List))
                and len(target.elements) > position
                and isinstance(target.elements[position].value, cst.Name)
                and not any(isinstance(e, cst.StarredElement) for e in target.elements)
            ):
                return [(target.elements[position].value, numpy)]
        return [(current, numpy)] if collected and position is None else []

    def _copied(self, node: cst.CSTNode) -> cst.Call | None:
        """``torch.tensor(node, dtype=torch.float)``/``torch.as_tensor(node)``: the call that copies
        or casts the tensor ``node`` (its only positional argument), keeping one row per sample."""
        parent = self.get_metadata(ParentNodeProvider, node, None)
        call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
        if not (isinstance(call, cst.Call) and parent.keyword is None and parent.value is node):
            return None
        if [a for a in call.args if a.keyword is None] != [parent] or not qualified_names(self, call.func) & TENSOR_COPIES:
            return None
        return call

    def _extends(self, tolist: cst.Call) -> bool:
        """``rows.extend(pred.tolist())`` / ``rows += pred.tolist()``: the list gains the rows."""
        parent = self.get_metadata(ParentNodeProvider, tolist, None)
        if isinstance(parent, cst.AugAssign):
            return parent.value is tolist and isinstance(parent.operator, cst.AddAssign)
        call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
        return isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "extend"

    def _joined(self, rows: cst.Name, how: str, numpy: bool, depth: int) -> list[tuple[cst.CSTNode, bool]]:
        """``preds = torch.cat(all_preds)`` for the list ``all_preds`` that batches are appended
        to, or ``np.array(all_preds)`` for one extended with their rows (``how``)."""
        scope = self.get_metadata(ScopeProvider, rows, None)
        if scope is None:
            return []
        found = []
        # `rows[0] = np.append(rows[0], ...)`: a list whose items are re-assigned holds more than
        # the batches appended to it, so its items are not followed
        items_kept = not any(
            self._is_store(self.get_metadata(ParentNodeProvider, access.node, None))
            for assignment in scope[rows.value] for access in assignment.references
        )
        for assignment in in_source_order(self, scope[rows.value]):
            for access in in_source_order(self, assignment.references):
                parent = self.get_metadata(ParentNodeProvider, access.node, None)
                if (
                    how == "append"
                    and items_kept
                    and isinstance(parent, cst.Subscript)
                    and parent.value is access.node
                    and len(parent.slice) == 1
                    and isinstance(parent.slice[0].slice, cst.Index)
                    and not self._is_store(parent)
                ):
                    # `rows[0]`, `rows[i + 1]`: one appended batch, the same [B, C] rows
                    found.extend(self._carried_from(parent, None, numpy, depth, collected=True))
                    continue
                join = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
                if isinstance(join, cst.Call) and join.args and join.args[0] is parent:
                    qualified = qualified_names(self, join.func) & JOINS[how]
                    if qualified:
                        as_numpy = numpy or any(name.startswith("numpy.") for name in qualified)
                        found.extend(self._carried_from(join, None, as_numpy, depth, collected=True))
        return found

    def _join_of(self, rows: cst.Tuple | cst.List) -> cst.Call | None:
        """The ``torch.cat``/``np.concatenate`` call whose first argument is ``rows``."""
        parent = self.get_metadata(ParentNodeProvider, rows, None)
        call = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.Arg) else None
        if isinstance(call, cst.Call) and call.args and call.args[0] is parent and qualified_names(self, call.func) & JOINS["append"]:
            return call
        return None

    def _is_store(self, node: cst.CSTNode) -> bool:
        parent = self.get_metadata(ParentNodeProvider, node, None)
        return isinstance(parent, cst.AssignTarget) or (isinstance(parent, (cst.AugAssign, cst.AnnAssign)) and parent.target is node)

    def _iterated(self, node: cst.CSTNode) -> bool:
        """``for p in pred``, ``for t, p in zip(target, pred)``, ``enumerate(pred)`` in a loop or a
        comprehension: each step reads one sample's prediction."""
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, cst.Arg) and parent.keyword is None and parent.value is node:
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Name) and call.func.value in ("zip", "enumerate")):
                return False
            node, parent = call, self.get_metadata(ParentNodeProvider, call, None)
        return isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is node

    def _comparison_of(self, prediction: cst.CSTNode) -> Comparison | str | None:
        """How a prediction is used: an accuracy comparison with the labels, a use as one class
        index (a reason that blocks the rewrite), or None for anything neutral. Labels that are
        themselves an arg-max (``target.argmax(1)``: one-hot or multi-hot targets collapsed to
        one class index) block it too, and are recorded to be reported where they are made."""
        use = self._use_of(prediction)
        if not isinstance(use, Comparison):
            return use
        sources = class_index_sources(self, _label_side(use))
        if not sources:
            return use
        self._collapsed_targets.extend(s for s in sources if all(s is not known for known in self._collapsed_targets))
        return "the labels it is compared with are one class index per sample (an arg-max over the targets)"

    def _class_loop_index(self, other: cst.BaseExpression) -> bool:
        """``for i in range(num_classes): (preds == i)``: the name runs over the classes, so the
        comparison picks one class's samples, not the samples whose prediction matches their label."""
        if not isinstance(other, cst.Name):
            return False
        scope = self.get_metadata(ScopeProvider, other, None)
        if scope is None:
            return False
        for access in scope.accesses[other.value]:
            if access.node is not other or not access.referents:
                continue
            for referent in access.referents:
                loop = self.get_metadata(ParentNodeProvider, getattr(referent, "node", None), None)
                if not (
                    isinstance(loop, cst.For)
                    and loop.target is referent.node
                    and isinstance(loop.iter, cst.Call)
                    and isinstance(loop.iter.func, cst.Name)
                    and loop.iter.func.value == "range"
                ):
                    return False
            return True
        return False

    def _use_of(self, prediction: cst.CSTNode) -> Comparison | str | None:
        parent = self.get_metadata(ParentNodeProvider, prediction, None)
        if self._iterated(prediction):
            return (
                "it is iterated one sample at a time (for ... in zip(..., pred)) as one class index; "
                "a multi-label sample has a row of labels, so the loop body needs rewriting first"
            )
        if (
            isinstance(parent, cst.Subscript)
            and parent.value is prediction
            and len(parent.slice) == 1
            and isinstance(parent.slice[0].slice, cst.Index)
        ):
            return (
                "it is read one sample at a time (pred[i]) as one class index; collect whole rows "
                "instead (y_pred.extend(pred.tolist()), with the targets' rows alike)"
            )
        if isinstance(parent, cst.Comparison) and len(parent.comparisons) == 1 and isinstance(
            parent.comparisons[0].operator, (cst.Equal, cst.NotEqual)
        ):
            left = parent.left is prediction
            other = parent.comparisons[0].comparator if left else parent.left
            if isinstance(other, LITERALS) or self._class_loop_index(other):
                return "it is compared with a class index"
            negated = isinstance(parent.comparisons[0].operator, cst.NotEqual)
            return Comparison(parent, "right" if left else "left", negated=negated)
        if isinstance(parent, cst.Attribute) and parent.attr.value in ("eq", "ne", "item"):
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not (isinstance(call, cst.Call) and call.func is parent):
                return None
            if parent.attr.value == "item":
                return "it is read as one class index with .item()"
            if len(call.args) == 1:
                if isinstance(call.args[0].value, LITERALS):
                    return "it is compared with a class index"
                return Comparison(call, "arg0", negated=parent.attr.value == "ne")
            return None
        if isinstance(parent, cst.Index):
            return "it is used as an index (one class per sample)"
        if isinstance(parent, cst.Element):
            return self._joined_onto_empty_list(parent)
        slots = [t.target for t in parent.targets if _row_slot(t.target)] if isinstance(parent, cst.Assign) else []
        if slots and parent.value is prediction:
            # ``predictions[i:i + n] = preds.cpu().numpy()`` into ``np.zeros(size)``: the buffer was
            # made for one class index per sample, and [B, C] rows do not fit it
            buffer = slots[0].value
            return (
                f"it is stored into `{cst.Module([]).code_for_node(buffer)}[...]`, a buffer filled with one class "
                "index per sample; multi-hot rows need a [N, C] buffer"
            )
        if isinstance(parent, cst.Arg):
            call = self.get_metadata(ParentNodeProvider, parent, None)
            if not isinstance(call, cst.Call):
                return None
            if parent.keyword is not None:
                if (
                    parent.keyword.value == "predictions"
                    and isinstance(call.func, cst.Attribute)
                    and call.func.attr.value in ("add_batch", "add", "compute")
                ):
                    return (
                        "it is fed to a Hugging Face `evaluate` metric, whose single-label configuration "
                        "rejects multi-hot rows (load evaluate.load(\"f1\", \"multilabel\") and pass average=\"micro\")"
                    )
                return None
            if isinstance(call.func, cst.Name) and call.func.value in ("int", "str"):
                return f"it is converted with {call.func.value}() as one class index"
            if qualified_names(self, call.func) & {"numpy.append"} and not any(
                arg.keyword is not None and arg.keyword.value == "axis" for arg in call.args
            ):
                return (
                    "it is added with np.append, which without axis= flattens [B, C] rows into one long vector; "
                    "collect the rows in a list and np.concatenate them once"
                )
            equality = qualified_names(self, call.func) & {"torch.eq", "torch.ne"}
            if equality and len(call.args) == 2:
                label_index = 1 - call.args.index(parent)
                if isinstance(call.args[label_index].value, LITERALS):
                    return "it is compared with a class index"
                return Comparison(call, f"arg{label_index}", negated=equality == {"torch.ne"})
            if isinstance(call.func, cst.Attribute) and call.func.attr.value in ("eq", "ne") and len(call.args) == 1:
                return Comparison(call, "receiver", negated=call.func.attr.value == "ne")
        return None

    def _joined_onto_empty_list(self, element: cst.Element) -> str | None:
        """``preds_all = np.concatenate((preds_all, preds))`` with ``preds_all = []`` first: NumPy
        joins the empty list as a 1-D array, which matches class indices [B] but not [B, C] rows."""
        parts = self.get_metadata(ParentNodeProvider, element, None)
        arg = self.get_metadata(ParentNodeProvider, parts, None) if isinstance(parts, (cst.Tuple, cst.List)) else None
        call = self.get_metadata(ParentNodeProvider, arg, None) if isinstance(arg, cst.Arg) else None
        if not (isinstance(call, cst.Call) and call.args and call.args[0] is arg):
            return None
        if not qualified_names(self, call.func) & {"numpy.concatenate", "numpy.hstack"}:
            return None
        for other in parts.elements:
            if other is element or not isinstance(other.value, cst.Name):
                continue
            scope = self.get_metadata(ScopeProvider, other.value, None)
            if scope is None:
                continue
            for access in scope.accesses[other.value.value]:
                if access.node is other.value and any(self._starts_empty(getattr(r, "node", None)) for r in access.referents):
                    return (
                        f"it is joined onto `{other.value.value}`, which starts as an empty list: NumPy reads [] as a "
                        f"1-D array, so joining [B, C] rows onto it fails; start it as np.empty((0, num_classes)) "
                        "or collect the rows in a list and join them once"
                    )
        return None


def _row_slot(target: cst.BaseAssignTargetExpression) -> bool:
    """``buffer[i:i + n]``: a range of a preallocated buffer, one slot per sample (not a dict key)."""
    return isinstance(target, cst.Subscript) and any(isinstance(element.slice, cst.Slice) for element in target.slice)


def _label_side(comparison: Comparison) -> cst.BaseExpression:
    node, position = comparison.node, comparison.label_position
    if isinstance(node, cst.Comparison):
        return node.left if position == "left" else node.comparisons[0].comparator
    assert isinstance(node, cst.Call)
    if position == "receiver":
        assert isinstance(node.func, cst.Attribute)
        return node.func.value
    return node.args[int(position.removeprefix("arg"))].value


def _multi_label_metric(call: cst.Call, qualified: str) -> bool:
    """A torchmetrics construction that takes [B, C] rows after the run: a ``Multilabel*`` class,
    ``task="multilabel"``, or a ``Multiclass*``/``task="multiclass"`` metric ML022 rewrites
    (``Accuracy(task="binary")`` takes neither and keeps the note)."""
    if not qualified.startswith("torchmetrics."):
        return False
    name = qualified.rpartition(".")[2]
    task = next((
        arg.value.evaluated_value for arg in call.args
        if isinstance(arg.value, cst.SimpleString) and (arg.keyword is None or arg.keyword.value == "task")
    ), None)
    if name.startswith("Multilabel") or task == "multilabel":
        return True
    return name.removeprefix("Multiclass") in TORCHMETRICS_TASK_METRICS and (name.startswith("Multiclass") or task == "multiclass")
