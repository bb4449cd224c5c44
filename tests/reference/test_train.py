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
           "--quiet", "--out", str(tmp_path),
           # A budget that does not bind still exercises the ranks' shared clock (an all_reduce per update).
           "--max-seconds", "600", "--patience", "5"]
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


def test_default_batch_size_gives_enough_updates_and_small_epochs_warn(tmp_path, capsys):
    from migrate_ml_reference.train import choose_batch_size

    assert choose_batch_size(None, 400) == 16 and choose_batch_size(None, 20000) == 256
    assert choose_batch_size(None, 50) == 8 and choose_batch_size(64, 400) == 64
    train(TrainConfig(out=str(tmp_path), epochs=1, sample="shapes", **dict(TINY, batch_size=256, n_train=400)))
    err = capsys.readouterr().err
    assert "1 update(s) per epoch" in err and "--batch-size" in err


def test_warning_when_no_class_clears_half(capsys):
    from migrate_ml_reference.train import _warn_if_nothing_clears_half

    _warn_if_nothing_clears_half(torch.full((4, 3), 0.5), "test", 7)
    assert "no class scores above 0.5 on any test image after 7 updates" in capsys.readouterr().err
    _warn_if_nothing_clears_half(torch.tensor([[0.1, 0.6]]), "test", 7)
    assert capsys.readouterr().err == ""


def test_cpu_plan_never_oversubscribes(monkeypatch):
    from migrate_ml_reference import pipeline

    monkeypatch.setattr(pipeline.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(pipeline.os, "getloadavg", lambda: (6.0, 0.0, 0.0))
    assert pipeline.usable_cpus() == 2
    assert pipeline.cpu_plan(1, file_data=True) == (1, 1)
    assert pipeline.cpu_plan(1, file_data=False) == (2, 0)
    monkeypatch.setattr(pipeline.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    threads, workers = pipeline.cpu_plan(2, file_data=True)
    assert 2 * (threads + workers) <= 8 and workers >= 1
    assert pipeline.cpu_plan(2, file_data=True, threads=3) == (3, 2)


def test_max_steps_progress_counts_real_updates(tmp_path, capsys):
    result = train(TrainConfig(out=str(tmp_path), epochs=5, max_steps=12, **dict(TINY, progress=True)))
    assert result["run"]["steps"] == 12 and result["run"]["stopped_by"] == "max_steps"
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert lines[0].startswith("epoch 1/5  update 8/12") and lines[-1].startswith("epoch 2/5  update 12/12")


def test_best_model_kept_and_patience_stops(tmp_path):
    # lr 1 wrecks the model after the first epoch: the best stays epoch 1 and patience ends the run.
    result = train(TrainConfig(out=str(tmp_path), epochs=20, patience=2, **dict(TINY, lr=1.0, batch_size=32)))
    maps = [h["val_mAP"] for h in result["history"]]
    best = max(range(len(maps)), key=maps.__getitem__)
    assert result["run"]["stopped_by"] == "patience" and len(maps) == best + 3
    assert result["run"]["best_epoch"] == best + 1 and result["run"]["best_val_mAP"] == maps[best]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == best + 1
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == len(maps)
    # The report is the best model's: eval of checkpoint.pt reproduces it.
    got = evaluate(str(tmp_path / "checkpoint.pt"), split="test", show=False)
    assert got["at_0.5"]["mAP"] == pytest.approx(result["report_at_0.5"]["mAP"], abs=1e-6)


def test_max_seconds_keeps_back_the_final_evaluation(monkeypatch):
    # The clock is faked: a timing assertion on a shared, loaded machine would be flaky.
    from migrate_ml_reference import train as train_module
    from migrate_ml_reference.train import WRITE_SECONDS, _Budget, _Dist

    now = [100.0]
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: now[0])
    budget = _Budget(60.0, 2.0, n_val=1000, n_report=2000, num_classes=10)  # 2 s already spent loading data
    ddp = _Dist(torch.device("cpu"))
    assert budget.check(ddp, validated=False) == (False, pytest.approx(2.0 / (60.0 - WRITE_SECONDS)))
    # Before any validation, scoring an image is guessed to cost what training on it did.
    budget.train_per_image = 0.004
    reserve = 0.004 * 3000 + WRITE_SECONDS
    now[0] += 60.0 - 2.0 - reserve - 0.01
    assert budget.check(ddp, validated=False)[0] is False
    now[0] += 0.02
    out_of_time, spent = budget.check(ddp, validated=False)
    assert out_of_time and spent == pytest.approx(1.0)
    # Once a validation pass is measured, its rate is used, and a validated model needs no second pass.
    budget.eval_per_image = 0.001
    assert budget.reserve(validated=True) == pytest.approx(0.001 * 2000 + WRITE_SECONDS)
    assert budget.reserve(validated=False) == pytest.approx(0.001 * 3000 + WRITE_SECONDS)
    assert budget.remaining() == pytest.approx(reserve - 0.01)
    # Once an epoch's plot is timed, the final figures are sized from it (PR curves: a panel per class).
    budget.figure_seconds = 0.4
    assert budget.reserve(validated=True) == pytest.approx(0.001 * 2000 + 0.4 * (2 + 10 / 2) + 0.5)


def test_interpreter_exit_skips_the_final_garbage_collections():
    # Timing the exit would be flaky on a shared machine; what is checked is that by the time
    # exit handlers registered before the trainer was imported run, the heap is frozen (so the
    # interpreter's final collections pass over nothing that was alive).
    code = ("import atexit, gc; atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0)); "
            "import migrate_ml_reference.train")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "frozen at exit: True"


def test_uncertain_labels_train_with_each_policy(tmp_path):
    from PIL import Image

    (tmp_path / "d" / "images").mkdir(parents=True)
    rows = ["Path,a,b"]
    for i in range(60):
        Image.new("RGB", (8, 8), (255 * (i % 2), 255 * (i % 3 == 0), 0)).save(tmp_path / "d" / "images" / f"{i}.png")
        rows.append(f"{i}.png,{['-1', str(i % 2)][i % 5 > 0]},{['', str(int(i % 3 == 0))][i % 7 > 0]}")
    (tmp_path / "d" / "labels.csv").write_text("\n".join(rows) + "\n")
    # ignore: a masked loss and masked metrics (zeros/ones only change the targets: test_dataset).
    result = train(TrainConfig(out=str(tmp_path / "run"), data=str(tmp_path / "d" / "labels.csv"), uncertain="ignore", epochs=1,
                               image_size=8, workers=0, model_kwargs={"depth": 1, "patch_size": 4}, **dict(TINY, batch_size=8)))
    assert result["run"]["class_names"] == ["a", "b"] and all(h["train_loss"] == h["train_loss"] for h in result["history"])
    test_rows = [int(line.split(",")[0].rsplit("/", 1)[-1].split(".")[0]) for line in (tmp_path / "run" / "splits.csv").read_text().splitlines()[1:]
                 if line.endswith(",test")]
    known_a = sum(1 for i in test_rows if i % 5 > 0 and i % 2 == 1)
    assert result["report_at_0.5"]["per_class"][0]["support"] == known_a
