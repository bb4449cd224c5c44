"""timm train.py's techniques through the reference trainer: AMP, EMA, accumulation, clipping,
ASL, multi-label mixup/cutmix, TensorBoard, epochs.csv, config.yaml and --config, export."""

import csv
import json

import pytest
import torch
import yaml

from migrate_ml_reference.cli import main
from migrate_ml_reference.report import load_checkpoint

TINY = ["--sample", "shapes", "--n-train", "128", "--n-val", "48", "--n-test", "48", "--threads", "1", "--quiet",
        "--model-kwarg", "depth=1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tricks") / "run"
    assert main(["reference", "train", *TINY, "--epochs", "2", "--batch-size", "8", "--accum-steps", "2", "--clip-grad", "1.0",
                 "--amp", "bf16", "--ema", "0.9", "--mixup", "0.2", "--cutmix", "1.0", "--loss", "asl", "--tensorboard",
                 "--out", str(out)]) == 0
    return out


def test_techniques_run_and_log_every_epoch(run):
    metrics = json.loads((run / "metrics.json").read_text())
    # 128 images, 8 per micro-batch, 2 micro-batches per update: 8 updates an epoch.
    assert [h["step"] for h in metrics["history"]] == [8, 16]
    rows = list(csv.DictReader((run / "epochs.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and {"train_loss", "val_mAP", "lr"} <= set(rows[0])
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert load_checkpoint(run / "last.pt")["ema"] is not None


def test_config_yaml_reruns_with_command_line_options_winning(run, tmp_path):
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["loss"] == "asl" and saved["ema"] == 0.9 and saved["model_kwargs"] == {"depth": 1} and "out" not in saved
    assert main(["reference", "train", "--config", str(run / "config.yaml"), "--epochs", "1", "--out", str(tmp_path / "again")]) == 0
    again = yaml.safe_load((tmp_path / "again" / "config.yaml").read_text())
    assert again == dict(saved, epochs=1)


def test_bad_config_and_incompatible_options_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("lr: 0.1\nlearning_rate: 3\n")
    assert main(["reference", "train", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r")]) == 2
    assert "c.yaml: unknown option(s) learning_rate" in capsys.readouterr().err
    for extra, needle in ((["--amp", "fp16", "--device", "cpu"], "--amp fp16 needs a CUDA device"),
                          (["--loss", "asl", "--pos-weight", "auto"], "--pos-weight auto weighs BCE"),
                          (["--mixup", "0.2", "--batch-size", "7"], "--batch-size must be even")):
        assert main(["reference", "train", *TINY, *extra, "--out", str(tmp_path / "r")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and needle in err and err.count("\n") == 1
        assert not (tmp_path / "r").exists()


def test_mixup_blends_multi_hot_targets_with_the_image_lambda():
    from timm.data import Mixup

    from migrate_ml_reference.train import _mix

    torch.manual_seed(0)
    mixup = Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, num_classes=3)
    x = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    mixed, targets = _mix(mixup, x.clone(), y)
    lam = 1.0 - float(mixed[0].mean())  # image 0 (zeros) blended with image 1 (ones)
    assert targets[0].tolist() == pytest.approx([lam, 1 - lam, lam], abs=1e-6)
    assert targets[1].tolist() == pytest.approx([1 - lam, lam, 1 - lam], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("fmt, name", [("torchscript", "model.pt"), ("onnx", "model.onnx")])
def test_export_is_checked_by_running_it(run, tmp_path, fmt, name, capsys):
    pytest.importorskip("onnxruntime") if fmt == "onnx" else None
    capsys.readouterr()
    assert main(["reference", "export", "--checkpoint", str(run), "--format", fmt, "--out", str(tmp_path / name)]) == 0
    assert "checked on 8 sample images" in capsys.readouterr().out
    side = json.loads((tmp_path / f"{name}.json").read_text())
    assert side["thresholds"] == json.loads((run / "thresholds.json").read_text())["thresholds"]
    assert side["checked"]["max_abs_diff"] <= 1e-4 and side["class_names"][0] == "circle"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, f"{name}.json"])
    # The exported model labels an image as the checkpoint does.
    from migrate_ml_reference import load
    from migrate_ml_reference.export import _sample_batch

    predictor = load(run)
    batch = _sample_batch(predictor.data_config)
    if fmt == "onnx":
        from migrate_ml_reference.export import _run_onnx

        got = _run_onnx(tmp_path / name, batch)
    else:
        got = torch.jit.load(str(tmp_path / name))(batch)
    with torch.no_grad():
        assert torch.allclose(got, torch.sigmoid(predictor.model(batch)), atol=1e-4)
    assert main(["reference", "export", "--checkpoint", str(run), "--format", fmt, "--out", str(tmp_path / name)]) == 2
