"""ML107's facts about a file's metrics, gathered before the rule looks at a selection: option and
parameter defaults, the functions that return an accuracy, what is logged under which name, and the
names bound to a plateau scheduler or a checkpoint saver.
"""

from __future__ import annotations

import libcst as cst

from migrate_ml.rules._accuracy_names import _keyword, _leaf, _names_accuracy, _string, _subscripted_strings


_ACCURACY_FUNCTIONS = frozenset({"accuracy_score", "balanced_accuracy_score", "top_k_accuracy_score"})
"""scikit-learn's accuracies: a helper returning one (``get_score``) computes an accuracy."""
_LOG_METHODS = frozenset({"log", "log_metric", "add_scalar"})


class _Facts(cst.CSTVisitor):
    """What the file says about its metrics before the rule looks at a selection: the options
    with accuracy defaults (``--eval-metric`` default ``top1``), the functions that return an
    accuracy, and the names bound to a plateau scheduler, a checkpoint saver or an accuracy."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.option_defaults: dict[str, str] = {}
        self.accuracy_functions: set[str] = set()
        self.plateau_schedulers: set[str] = set()
        self.savers: set[str] = set()
        self.assignments: list[tuple[str, cst.BaseExpression]] = []
        self.logged: dict[str, list[cst.BaseExpression]] = {}
        self.logged_under: list[tuple[cst.BaseExpression, cst.BaseExpression]] = []
        """``self.log(NAME if stage == "val" else ..., acc)``: a key not written as a string, resolved
        once every constant is known."""
        self.parameter_defaults: dict[str, str] = {}
        """``def __init__(self, eval_metric="accuracy")``: string defaults of the file's parameters."""

    def visit_Call(self, node: cst.Call) -> None:
        method = _leaf(node.func)
        if method == "add_argument":
            default = _keyword(node, "default")
            flags = [_string(arg.value) for arg in node.args if not arg.keyword]
            if default is not None and _string(default) is not None and flags and flags[-1]:
                self.option_defaults[flags[-1].lstrip("-").replace("-", "_")] = _string(default)
        elif method in _LOG_METHODS and len(node.args) >= 2 and _string(node.args[0].value):
            self.logged.setdefault(_string(node.args[0].value), []).append(node.args[1].value)
        elif method in _LOG_METHODS and len(node.args) >= 2:
            self.logged_under.append((node.args[0].value, node.args[1].value))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        for param in (*node.params.params, *node.params.kwonly_params):
            default = _string(param.default) if param.default is not None else None
            if default is not None:
                self.parameter_defaults[param.name.value] = default
        returns_accuracy = False

        class _Returns(cst.CSTVisitor):
            def visit_Return(self, statement: cst.Return) -> None:
                nonlocal returns_accuracy
                value = statement.value
                if isinstance(value, cst.Call) and _leaf(value.func) in _ACCURACY_FUNCTIONS:
                    returns_accuracy = True
                elif value is not None and any(_names_accuracy(key) for key in _subscripted_strings(value)):
                    returns_accuracy = True

            def visit_FunctionDef(self, inner: cst.FunctionDef) -> bool:
                return False

        node.body.visit(_Returns())
        if returns_accuracy:
            self.accuracy_functions.add(node.name.value)

    def visit_If(self, node: cst.If) -> None:
        """``if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):`` a scheduler built from
        a config (``getattr(lr_scheduler, name)(...)``) that the branch steps as a plateau one."""
        test = node.test
        if (
            isinstance(test, cst.Call) and _leaf(test.func) == "isinstance" and len(test.args) == 2
            and _leaf(test.args[1].value) == "ReduceLROnPlateau"
        ):
            self.plateau_schedulers.add(self.module.code_for_node(test.args[0].value))

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            key = self.module.code_for_node(target.target)
            if isinstance(node.value, cst.Call):
                callee = _leaf(node.value.func)
                if callee == "ReduceLROnPlateau":
                    self.plateau_schedulers.add(key)
                elif callee == "CheckpointSaver":
                    self.savers.add(key)
            self.assignments.append((key, node.value))
