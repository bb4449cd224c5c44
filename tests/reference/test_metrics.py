import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from migrate_ml_reference import METRIC_KEYS, exact_match, multilabel_metrics, tune_thresholds
from migrate_ml_reference.metrics import MultilabelEvaluator


def _random(seed, n=400, c=5, ties=False):
    g = torch.Generator().manual_seed(seed)
    targets = (torch.rand(n, c, generator=g) < 0.3).long()
    targets[0] = 1  # every class has a positive
    probs = (0.7 * torch.rand(n, c, generator=g) + 0.3 * targets).clamp(0, 1)
    if ties:
        probs = (probs * 10).round() / 10
    return probs, targets


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("per_class", [False, True])
def test_metrics_agree_with_sklearn(seed, per_class):
    probs, targets = _random(seed, ties=seed % 2 == 1)
    thr = torch.tensor([0.3, 0.4, 0.5, 0.6, 0.7]) if per_class else 0.5
    m = multilabel_metrics(probs, targets, thr)
    y, s = targets.numpy(), probs.numpy()
    pred = (probs > (thr if per_class else torch.tensor(0.5))).numpy()
    approx = lambda a, b: a == pytest.approx(b, abs=1e-6)
    assert approx(m["mAP"], skm.average_precision_score(y, s, average="macro"))
    assert approx(m["mAP_micro"], skm.average_precision_score(y, s, average="micro"))
    p_c = skm.precision_score(y, pred, average=None, zero_division=0)
    r_c = skm.recall_score(y, pred, average=None, zero_division=0)
    assert approx(m["CP"], p_c.mean()) and approx(m["CR"], r_c.mean())
    assert approx(m["CF1"], 2 * p_c.mean() * r_c.mean() / (p_c.mean() + r_c.mean()))
    assert approx(m["OP"], skm.precision_score(y, pred, average="micro", zero_division=0))
    assert approx(m["OR"], skm.recall_score(y, pred, average="micro", zero_division=0))
    assert approx(m["OF1"], skm.f1_score(y, pred, average="micro", zero_division=0))
    assert approx(m["F1_macro"], skm.f1_score(y, pred, average="macro", zero_division=0))
    assert approx(m["F1_micro"], skm.f1_score(y, pred, average="micro", zero_division=0))
    assert approx(m["hamming_loss"], skm.hamming_loss(y, pred))
    assert approx(m["exact_match"], skm.accuracy_score(y, pred))
    assert approx(exact_match(torch.as_tensor(pred), targets), skm.accuracy_score(y, pred))
    ap_c = skm.average_precision_score(y, s, average=None)
    for i, row in enumerate(m["per_class"]):
        assert approx(row["AP"], ap_c[i]) and approx(row["precision"], p_c[i]) and approx(row["recall"], r_c[i])
        assert row["support"] == int(y[:, i].sum())
    assert set(METRIC_KEYS) <= set(m)


def test_cf1_differs_from_macro_f1():
    targets = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 0]])
    probs = torch.tensor([[0.9, 0.9], [0.2, 0.9], [0.1, 0.9], [0.1, 0.9]])
    m = multilabel_metrics(probs, targets)
    assert m["CF1"] != pytest.approx(m["F1_macro"])


def test_threshold_is_strict():
    probs = torch.tensor([[0.5], [0.6]])
    m = multilabel_metrics(probs, torch.tensor([[1], [1]]), 0.5)
    assert m["OR"] == 0.5


def test_class_without_positives_is_left_out_of_map():
    probs, targets = _random(0, c=3)
    targets[:, 2] = 0
    m = multilabel_metrics(probs, targets)
    assert math.isnan(m["per_class"][2]["AP"])
    assert m["mAP"] == pytest.approx((m["per_class"][0]["AP"] + m["per_class"][1]["AP"]) / 2)


def _f1(p, t, thr):
    pred = p > thr
    tp = (pred & (t == 1)).sum().item()
    denom = pred.sum().item() + t.sum().item()
    return 2 * tp / denom if denom else 0.0


def _brute_force_best_f1(p, t):
    candidates = torch.cat([p.unique(), torch.tensor([-1.0], dtype=p.dtype)])
    return max(_f1(p, t, x) for x in candidates)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    levels=st.integers(2, 12),
    seed=st.integers(0, 2**31 - 1),
)
def test_tuner_matches_brute_force(n, levels, seed):
    g = torch.Generator().manual_seed(seed)
    targets = (torch.rand(n, 3, generator=g) < 0.4).long()
    probs = torch.randint(0, levels, (n, 3), generator=g).float() / (levels - 1)
    thr = tune_thresholds(probs, targets)
    for c in range(3):
        if targets[:, c].sum() == 0:
            assert thr[c] == 0.5
        else:
            assert _f1(probs[:, c], targets[:, c], thr[c]) == pytest.approx(_brute_force_best_f1(probs[:, c], targets[:, c]))


def test_tuner_handles_adjacent_float32_scores():
    a = torch.tensor(0.7, dtype=torch.float32)
    b = torch.nextafter(a, torch.tensor(0.0))
    probs = torch.stack([a, b])[:, None]
    thr = tune_thresholds(probs, torch.tensor([[1], [0]]))
    assert (probs[:, 0] > thr[0]).tolist() == [True, False]


def test_tuned_thresholds_beat_half_on_the_tuning_split():
    probs, targets = _random(7, n=1000, c=4)
    probs = probs**3  # skew scores so 0.5 is a poor cut
    tuned = multilabel_metrics(probs, targets, tune_thresholds(probs, targets))
    assert tuned["F1_macro"] >= multilabel_metrics(probs, targets, 0.5)["F1_macro"]


def test_evaluator_deduplicates_by_index():
    probs, targets = _random(1, n=10, c=3)
    ev = MultilabelEvaluator(["a", "b", "c"])
    ev.update(probs[5:], targets[5:], torch.arange(5, 10))
    ev.update(probs[:6], targets[:6], torch.arange(0, 6))
    got_p, got_t = ev.gather()
    assert torch.equal(got_p, probs) and torch.equal(got_t, targets.float())
    assert ev.compute()["mAP"] == pytest.approx(multilabel_metrics(probs, targets)["mAP"])
