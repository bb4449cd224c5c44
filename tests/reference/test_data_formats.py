"""Train briefly on every format sample-data writes, then predict and evaluate, through the CLI."""

import csv
import io
import json

import pytest

from migrate_ml_reference.cli import main

TINY = ["--epochs", "1", "--batch-size", "16", "--threads", "1", "--workers", "0", "--model-kwarg", "depth=1", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    made = {}
    for fmt in ("folder", "csv", "onehot", "coco"):
        assert main(["sample-data", str(root / fmt), "--format", fmt, "--n", "80", "--kind", "shapes", "--image-size", "16"]) == 0
        data = {"folder": root / fmt, "csv": root / fmt / "train_v2.csv", "onehot": root / fmt / "labels.csv",
                "coco": root / fmt / "annotations.json"}[fmt]
        # Options before and after each other in any order; the CSV run also exercises
        # DataLoader workers and RandAugment.
        extra = ["--augment", "randaug", "--workers", "1"] if fmt == "csv" else []
        assert main(["reference", "train", *TINY, "--out", str(root / f"run-{fmt}"), "--data", str(data), "--image-size", "16", *extra]) == 0
        made[fmt] = (data, root / f"run-{fmt}")
    return made


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["folder", "csv", "onehot", "coco"])
def test_train_predict_eval_on_each_format(runs, fmt, tmp_path, capsys):
    data, run = runs[fmt]
    metrics = json.loads((run / "metrics.json").read_text())
    # The Planet-style CSV has no classes.txt: classes are inferred, sorted.
    assert fmt != "csv" or metrics["run"]["class_names"] == sorted(metrics["run"]["class_names"])
    assert len(metrics["run"]["class_names"]) == 7 and metrics["report_at_0.5"]["num_samples"] > 0
    assert (run / "classes.txt").read_text().split("\n")[:-1] == metrics["run"]["class_names"]
    assert (run / "splits.csv").is_file() == (fmt != "folder")  # assigned splits are recorded
    assert fmt == "folder" or b"\r" not in (run / "splits.csv").read_bytes()  # LF line endings
    # 8 validation images: classes with under 5 positives there are flagged.
    few = metrics["few_positive_classes"]
    assert few and set(few) <= set(metrics["run"]["class_names"]) and all(count < 5 for count in few.values())
    assert set(metrics["tuned_worse_than_0.5"]) == {"classes", "F1_macro_at_0.5", "F1_macro_at_tuned"}

    images = data if data.is_dir() else data.parent
    capsys.readouterr()
    assert main(["reference", "predict", "--checkpoint", str(run / "checkpoint.pt"), str(images)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["image", "labels", *metrics["run"]["class_names"]] and len(rows) == 81
    assert all(0.0 <= float(p) <= 1.0 for p in rows[1][2:])

    assert main(["reference", "eval", "--checkpoint", str(run / "checkpoint.pt"), "--data", str(data), "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["split"] == ("test" if fmt == "folder" else "all") and result["at_0.5"]["num_samples"] in (8, 80)
    # The run's own data by default: its (recorded, seeded) test split reproduces the report.
    own = json.loads((run / "metrics.json").read_text())["report_at_0.5"]["mAP"]
    assert main(["reference", "eval", "--checkpoint", str(run / "checkpoint.pt"), "--out", str(tmp_path), "--overwrite"]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["at_0.5"]["mAP"] == pytest.approx(own, abs=1e-5)


@pytest.mark.slow
def test_python_api_load_and_predict(runs):
    from PIL import Image

    from migrate_ml_reference import load

    data, run = runs["folder"]
    predictor = load(run / "checkpoint.pt")
    files = sorted((data / "images").glob("*.png"))[:3]
    preds = predictor.predict([str(files[0]), Image.open(files[1]), files[2]])
    assert len(preds) == 3 and set(preds[0]["probs"]) == set(predictor.classes)
    for pred in preds:
        assert pred["labels"] == [c for c, t in zip(predictor.classes, predictor.thresholds.tolist()) if pred["probs"][c] > t]


@pytest.mark.slow
def test_init_checkpoint_resizes_the_head(runs, tmp_path, capsys):
    _, run = runs["folder"]  # shapes: 7 classes
    digits = tmp_path / "digits"
    assert main(["sample-data", str(digits), "--n", "60", "--image-size", "16"]) == 0
    capsys.readouterr()
    assert main(["reference", "train", "--data", str(digits), *TINY[:-1], "--image-size", "16",
                 "--pretrained", str(run / "checkpoint.pt"), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert f"from {run / 'checkpoint.pt'}" in out and "re-initialised" in out and "head.weight" in out and "head.bias" in out


@pytest.mark.slow
def test_any_timm_model_trains_and_predicts(runs, tmp_path, capsys):
    data, _ = runs["folder"]
    run = tmp_path / "run"
    assert main(["reference", "train", "--data", str(data), "--model", "mobilenetv3_small_050", "--image-size", "16",
                 "--epochs", "1", "--batch-size", "16", "--threads", "1", "--workers", "0", "--quiet", "--out", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["run"]["model"] == "mobilenetv3_small_050"
    capsys.readouterr()
    assert main(["reference", "predict", "--checkpoint", str(run / "checkpoint.pt"), str(data / "images")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 81
