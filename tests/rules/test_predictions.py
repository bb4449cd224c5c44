"""The proofs of ``semantics/predictions.py`` and ``semantics/prediction_provider.py``: what counts as
the classifier's output, and what is excluded.

Every prediction rule (ML020-ML024) rewrites only what these proofs accept, so a false positive
here is a silent wrong rewrite of attention maps, distillation targets or model selection.
"""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, ParentNodeProvider, ScopeProvider

from migrate_ml.rules.semantics.class_index import is_class_index_target
from migrate_ml.rules.semantics.prediction_provider import PredictionFlowProvider
from migrate_ml.rules.semantics.predictions import PredictionFlow, is_model_callee, strip_transparent


def _flow(source: str) -> tuple[cst.Module, PredictionFlow]:
    wrapper = MetadataWrapper(cst.parse_module(textwrap.dedent(source)))
    flows = wrapper.resolve(PredictionFlowProvider)
    return wrapper.module, flows[wrapper.module]


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _predictions(source: str) -> dict[str, tuple[bool, str]]:
    """``{code of the prediction: (proven, blocked reason)}``."""
    _, flow = _flow(source)
    return {_code(p.node).strip(): (p.proven, p.blocked) for p in flow.predictions}


@pytest.mark.parametrize(
    "callee",
    ["model", "net", "model_ft", "student", "vit", "classifier", "ema_model", "self", "self.model", "self.net"],
)
def test_model_callees(callee: str) -> None:
    assert is_model_callee(cst.parse_expression(f"{callee}(x)").func)


@pytest.mark.parametrize(
    "callee",
    ["teacher", "teacher_model", "model_teacher", "create_model", "get_model", "build_net", "train_model",
     "evaluate_model", "attn", "forward_fn", "self.teacher", "self.attn", "F.softmax", "torch.nn.Linear"],
)
def test_not_model_callees(callee: str) -> None:
    assert not is_model_callee(cst.parse_expression(f"{callee}(x)").func)


@pytest.mark.parametrize(
    ("expression", "inner"),
    [
        ("model(x).logits.detach().cpu()", "model(x)"),
        ("outputs.data", "outputs"),
        ("model(x).to(device).float()", "model(x)"),
        ("torch.squeeze(model(img))", "model(img)"),
        ("model(img).squeeze()", "model(img)"),
        ("torch.cuda(out)", "torch.cuda(out)"),  # a torch function, not a method of the scores
        ("out.numpy()", "out.numpy()"),  # leaves the tensor world: not transparent for torch rules
    ],
)
def test_strip_transparent(expression: str, inner: str) -> None:
    assert _code(strip_transparent(cst.parse_expression(expression))) == inner


@pytest.mark.parametrize(
    ("bindings", "proven"),
    [
        ("out = model(x)", True),
        ("out: torch.Tensor = self.model(x).logits", True),
        ("out = model(x)\n    out = out[:, :3]", False),  # one binding is not the model's output
        ("out = scorer(x)", False),
        ("out, aux = model(x)", False),  # unpacked outputs: which element holds the logits is unknown
    ],
)
def test_names_are_scores_only_when_every_binding_is_a_model_call(bindings: str, proven: bool) -> None:
    _, flow = _flow(
        f"""
import torch

def evaluate(self, model, scorer, x, y):
    {bindings}
    pred = out.argmax(dim=1)
    return (pred == y).sum()
"""
    )
    assert [p.proven for p in flow.predictions] == [proven]


def test_loss_logits_prove_scores_from_any_callee() -> None:
    _, flow = _flow(
        """
        import torch.nn as nn

        criterion = nn.CrossEntropyLoss()

        def step(forward_fn, x, y):
            scores = forward_fn(x)
            loss = criterion(scores, y)
            return loss, (scores.argmax(1) == y).float().mean()
        """
    )
    assert [p.proven for p in flow.predictions] == [True]


def test_teacher_and_distillation_targets_are_not_predictions() -> None:
    _, flow = _flow(
        """
        import torch.nn as nn

        criterion = nn.CrossEntropyLoss()

        def distill(model, teacher, x, y):
            outputs = model(x)
            hard = teacher(x).argmax(dim=1)
            loss = criterion(outputs, model(x).argmax(dim=1))
            return loss, (hard == y).sum()
        """
    )
    # The teacher's arg-max is compared, so it is reported but never proven; the arg-max used as
    # a loss target is no prediction at all.
    assert [(_code(p.node), p.proven) for p in flow.predictions] == [("teacher(x).argmax(dim=1)", False)]


def test_softmax_inside_the_model_is_never_a_candidate() -> None:
    _, flow = _flow(
        """
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        class Attention(nn.Module):
            def __init__(self):
                super().__init__()
                self.softmax = nn.Softmax(dim=-1)

            def forward(self, q, k):
                weights = self.softmax(q @ k.transpose(-2, -1))
                return F.softmax(self.model(q), dim=-1), weights

        def predict(model, x):
            return F.softmax(model(x), dim=1)
        """
    )
    assert [_code(s.call) for s in flow.softmaxes] == ["F.softmax(model(x), dim=1)"]


def test_argmax_over_attention_or_numpy_is_ignored() -> None:
    found = _predictions(
        """
        import numpy as np
        import torch

        def select(attn, tokens, val_scores, model, x):
            idx = attn.mean(1).argmax(dim=-1)
            best = int(np.argmax(val_scores))
            chosen = np.argmax(model(x).detach().numpy(), axis=1)
            return tokens[idx], best, chosen
        """
    )
    assert found == {}


@pytest.mark.parametrize(
    ("use", "reason"),
    [
        ("return pred == 3", "compared with a class index"),
        ("return names[pred]", "used as an index"),
        ("return pred.item()", ".item()"),
        ("return int(pred)", "int()"),
        ("return [pred[i].item() for i in range(len(pred))]", "one sample at a time"),
        ("return pred == y.argmax(1)", "labels it is compared with are one class index"),
        ("return metric.add_batch(predictions=pred, references=y)", "`evaluate` metric"),
    ],
)
def test_uses_as_one_class_index_block_the_rewrite(use: str, reason: str) -> None:
    _, flow = _flow(
        f"""
        import torch

        def predict(model, x, y, names, metric):
            pred = torch.argmax(model(x), dim=1)
            {use}
        """
    )
    (prediction,) = flow.predictions
    assert prediction.proven and reason in prediction.blocked


def test_used_max_values_block_the_unpacking() -> None:
    _, flow = _flow(
        """
        import torch

        def predict(model, x):
            confidence, pred = torch.max(model(x), 1)
            return confidence, pred
        """
    )
    (prediction,) = flow.predictions
    assert prediction.unpacking and "confidence" in prediction.blocked


def test_sigmoid_and_probability_names_feed_the_decision_directly() -> None:
    _, flow = _flow(
        """
        import torch
        import torch.nn.functional as F

        def evaluate(model, x, y):
            probs = F.softmax(model(x), dim=1)
            pred = probs.argmax(dim=1)
            gated = torch.sigmoid(model(x)).argmax(dim=1)
            return (pred == y).sum(), (gated == y).sum()
        """
    )
    decisions = {_code(p.node): _code(p.decision_input) for p in flow.predictions}
    assert decisions == {"probs.argmax(dim=1)": "probs", "torch.sigmoid(model(x)).argmax(dim=1)": "torch.sigmoid(model(x))"}
    (with_softmax,) = [p for p in flow.predictions if p.softmaxes]
    assert _code(with_softmax.softmaxes[0].call) == "F.softmax(model(x), dim=1)"


def test_comparisons_are_found_through_the_binding() -> None:
    _, flow = _flow(
        """
        import torch

        def evaluate(model, loader):
            correct = 0
            for images, labels in loader:
                outputs = model(images)
                _, predicted = torch.max(outputs.data, 1)
                correct += (predicted == labels).sum().item()
                correct += predicted.eq(labels.view_as(predicted)).sum().item()
                correct += torch.eq(labels, predicted).sum().item()
            return correct
        """
    )
    (prediction,) = flow.predictions
    assert prediction.proven and not prediction.blocked
    assert sorted(c.label_position for c in prediction.comparisons) == ["arg0", "arg0", "right"]


def test_metric_arguments_are_answered_after_the_traversal() -> None:
    module, flow = _flow(
        """
        def step(model, metric, x, y):
            logits = model(x)
            metric.update(logits, y)
            metric.update(x, y)
        """
    )
    calls = [
        node.value
        for statement in module.body[0].body.body
        for node in statement.body
        if isinstance(node, cst.Expr)
    ]
    assert [flow.is_classifier_scores(call.args[0].value) for call in calls] == [True, False]


def test_nll_inputs_are_log_probabilities_and_their_argmax_decides_on_the_logits() -> None:
    _, flow = _flow(
        """
        import torch.nn.functional as F

        def test(model, data, target):
            output = model(data)
            log_probs = F.log_softmax(output, dim=1)
            loss = F.nll_loss(log_probs, target)
            return loss, log_probs.argmax(dim=1) == target
        """
    )
    (prediction,) = flow.predictions
    assert _code(prediction.decision_input) == "torch.sigmoid(output)"


def test_comparisons_are_found_where_the_prediction_is_carried() -> None:
    _, flow = _flow(
        """
        import numpy as np
        import torch

        def evaluate(model, loader, accelerator):
            rows = []
            for x, y in loader:
                preds = model(x).argmax(dim=-1)
                preds, refs = accelerator.gather_for_metrics((preds, y))
                hits = preds == refs
                as_array = preds.cpu().numpy()
                array_hits = np.sum(as_array == y.numpy())
                rows.append(preds.cpu())
            joined = torch.cat(rows)
            return hits, array_hits, (joined == y).float().mean(), report(joined)
        """
    )
    (prediction,) = flow.predictions
    assert prediction.proven and not prediction.blocked
    assert sorted((_code(c.node), c.numpy) for c in prediction.comparisons) == [
        ("(joined == y)", False),
        ("as_array == y.numpy()", True),
        ("preds == refs", False),
    ]
    assert [_code(call.func) for call in prediction.escapes] == ["report"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("teacher.argmax(dim=1)", True),
        ("teacher.max(1)[1]", True),
        ("hard", True),
        ("pair_hard", True),
        ("y", False),
        ("y.float()", False),
        ("mixed", False),
    ],
)
def test_class_index_targets(target: str, expected: bool) -> None:
    wrapper = MetadataWrapper(
        cst.parse_module(
            textwrap.dedent(
                f"""
                def loss(z, teacher, y, flag):
                    hard = teacher.argmax(dim=-1)
                    _, pair_hard = teacher.max(1)
                    mixed = teacher.argmax(1) if flag else y
                    return criterion(z, {target})
                """
            )
        )
    )

    class Probe(cst.CSTVisitor):
        METADATA_DEPENDENCIES = (ScopeProvider, ParentNodeProvider)
        found: list[bool] = []

        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Name) and node.func.value == "criterion":
                self.found.append(is_class_index_target(self, node.args[1].value))

    probe = Probe()
    wrapper.visit(probe)
    assert probe.found == [expected]


@pytest.mark.parametrize(("other_use", "proven"), [("", True), ("confidence = output.exp()", False)])
def test_argmax_over_a_dropped_log_softmax_decides_on_the_name(other_use: str, proven: bool) -> None:
    # ML003 drops `F.log_softmax(model(x))` in the same pass only when nothing else reads `output`.
    _, flow = _flow(
        f"""
        import torch.nn.functional as F

        def test(model, data, target):
            output = F.log_softmax(model(data), dim=1)
            loss = F.nll_loss(output, target)
            {other_use}
            return loss, output.argmax(dim=1) == target
        """
    )
    (prediction,) = flow.predictions
    assert prediction.proven is proven
    if proven:
        assert _code(prediction.decision_input) == "torch.sigmoid(output)"


@pytest.mark.parametrize(
    ("average", "added", "proven"),
    [
        ("torch.mean(torch.stack(views), dim=0)", "torch.softmax(model(x), dim=1)", True),
        ("torch.stack(views).mean(0)", "torch.sigmoid(model(x))", True),
        ("torch.stack(views).mean(dim=0)", "F.softmax(model(x), dim=1)", True),
        # a mean over the class axis, or the batch's: no longer one row of probabilities per sample
        ("torch.mean(torch.stack(views), dim=1)", "torch.softmax(model(x), dim=1)", False),
        ("torch.stack(views).mean()", "torch.softmax(model(x), dim=1)", False),
        # a view that is not the classifier's probabilities (features, a teacher's table)
        ("torch.mean(torch.stack(views), dim=0)", "encoder(x)", False),
    ],
)
def test_probabilities_averaged_over_views_are_the_decision_input(average: str, added: str, proven: bool) -> None:
    predictions = _predictions(
        f"""
        import torch
        import torch.nn.functional as F

        def evaluate(model, encoder, x, y):
            views = []
            for _ in range(2):
                views.append({added})
            pred = {average}
            return (pred.argmax(dim=1) == y).sum()
        """
    )
    assert predictions["pred.argmax(dim=1)"][0] is proven


def test_averaged_probabilities_need_every_append_to_be_probabilities() -> None:
    predictions = _predictions(
        """
        import torch

        def evaluate(model, x, y, extra):
            views = []
            views.append(torch.softmax(model(x), dim=1))
            views.extend(extra)
            pred = torch.mean(torch.stack(views), dim=0)
            return (pred.argmax(dim=1) == y).sum()
        """
    )
    assert predictions["pred.argmax(dim=1)"][0] is False
