import json
import os
import subprocess
import sys

import pytest
import torch

from migrate_ml_reference.metrics import METRIC_KEYS
from migrate_ml_reference.report import load_checkpoint
from migrate_ml_reference.train import TrainConfig, evaluate, train

TINY = dict(n_train=512, n_val=160, n_test=160, batch_size=64, threads=1, progress=False, lr=3e-3)


def _metrics_without_timing(result):
    history = [{k: v for k, v in h.items() if k in ("epoch", "step", "train_loss", "val_mAP")} for h in result["history"]]
    return result["report_at_0.5"], result["report_at_tuned"], result["tuning_at_0.5"], history


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    return out, train(TrainConfig(out=str(out), epochs=2, **TINY))


def test_run_folder_contents(straight_run):
    out, result = straight_run
    for name in ("metrics.json", "thresholds.json", "checkpoint.pt", "pr_curves.png", "thresholds.png", "training_curves.png"):
        assert (out / name).is_file(), name
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["schema_version"] == 1 and on_disk["threshold_rule"] == "prob > threshold"
    assert (on_disk["tuned_on"], on_disk["reported_on"]) == ("val", "test")
    for key in ("tuning_at_0.5", "report_at_0.5", "report_at_tuned"):
        assert set(METRIC_KEYS) <= set(on_disk[key]) and len(on_disk[key]["per_class"]) == 10
    assert [h["epoch"] for h in on_disk["history"]] == [1, 2]
    thresholds = json.loads((out / "thresholds.json").read_text())
    assert thresholds["class_names"] == [str(d) for d in range(10)] and len(thresholds["thresholds"]) == 10
    assert [r["threshold"] for r in result["report_at_tuned"]["per_class"]] == pytest.approx(thresholds["thresholds"])


def test_resumed_run_matches_uninterrupted(straight_run, tmp_path):
    straight_out, straight = straight_run
    assert train(TrainConfig(out=str(tmp_path), epochs=2, stop_after_epoch=1, **TINY)) is None
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    resumed = train(TrainConfig(out=str(tmp_path), epochs=2, resume=True, **TINY))
    assert _metrics_without_timing(resumed) == _metrics_without_timing(straight)
    a = load_checkpoint(straight_out / "checkpoint.pt")["model"]
    b = load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_eval_reproduces_reported_metrics(straight_run, tmp_path):
    out, result = straight_run
    got = evaluate(str(out / "checkpoint.pt"), split="test", out=str(tmp_path), show=False)
    for key in ("mAP", "CF1", "OF1", "exact_match"):
        assert got["at_tuned"][key] == pytest.approx(result["report_at_tuned"][key], abs=1e-6)
        assert got["at_0.5"][key] == pytest.approx(result["report_at_0.5"][key], abs=1e-6)
    assert json.loads((tmp_path / "eval.json").read_text())["split"] == "test"


def test_max_seconds_stops_and_still_reports(tmp_path):
    result = train(TrainConfig(out=str(tmp_path), epochs=10_000, max_seconds=1.0, sample="shapes", pos_weight="auto", **TINY))
    assert result["run"]["epochs_completed"] < 10_000
    assert result["run"]["class_names"][0] == "circle"


def _cli(*args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "migrate_ml_reference", *args], capture_output=True, text=True, env=env, **kw)


def test_cli_train_on_folder_then_eval(tmp_path):
    assert _cli("sample-data", str(tmp_path / "data"), "--n", "300", "--kind", "shapes").returncode == 0
    run = _cli("reference", "train", "--data", str(tmp_path / "data"), "--epochs", "1", "--batch-size", "32",
               "--threads", "1", "--workers", "0", "--out", str(tmp_path / "run"), "--model-kwarg", "depth=1")
    assert run.returncode == 0, run.stderr
    assert "F1@thr" in run.stdout  # the rich per-class table
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["run"]["data"] == str(tmp_path / "data") and metrics["run"]["model_kwargs"]["depth"] == 1
    ev = _cli("reference", "eval", "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"), "--split", "val", "--workers", "0")
    assert ev.returncode == 0, ev.stderr


def test_cli_errors_are_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    bad = _cli("reference", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "labels" in bad.stderr
    bad = _cli("reference", "train", "--model-kwarg", "oops")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "migrate_ml_reference", "reference", "train", "--sample", "digits", "--n-train", "512",
           "--n-val", "150", "--n-test", "151", "--batch-size", "32", "--epochs", "2", "--threads", "1",
           "--quiet", "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["run"]["world_size"] == 2
    # The gathered report covers every test image once (151 is odd: the sampler pads one).
    assert metrics["report_at_0.5"]["num_samples"] == 151
    single = evaluate(str(tmp_path / "checkpoint.pt"), split="test", show=False)
    assert single["at_0.5"]["mAP"] == pytest.approx(metrics["report_at_0.5"]["mAP"], abs=1e-5)
    assert single["at_tuned"]["exact_match"] == pytest.approx(metrics["report_at_tuned"]["exact_match"], abs=1e-5)


def test_folder_without_test_split_tunes_and_reports_on_val_halves(tmp_path):
    from migrate_ml_reference import read_labels, write_sample_data

    data = write_sample_data(tmp_path / "data", kind="shapes", n=200, seed=5)
    lines = (data / "labels.csv").read_text().splitlines(keepends=True)
    (data / "labels.csv").write_text("".join(line for line in lines if not line.rstrip().endswith(",test")))
    assert set(read_labels(data).splits) == {"train", "val"}
    result = train(TrainConfig(out=str(tmp_path / "run"), data=str(data), epochs=1, **dict(TINY, batch_size=32)))
    assert (result["tuned_on"], result["reported_on"]) == ("val[0::2]", "val[1::2]")
    assert result["report_at_tuned"]["num_samples"] == 10
