"""The runtime's command line: help, option order, refusals, one-line errors, file modes."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from migrate_ml.cli import main as migrate_ml_main
from migrate_ml_reference.cli import main

SMALL = ["--n-train", "64", "--n-val", "32", "--n-test", "32", "--batch-size", "32", "--epochs", "1", "--threads", "1",
         "--workers", "0", "--model-kwarg", "depth=1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["reference", "train", *SMALL, "--sample", "shapes", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("argv", [["sample-data"], ["reference"], ["reference", "train"], ["reference", "eval"], ["reference", "predict"],
                                  ["reference", "convert"], ["reference", "export"]])
def test_help_on_every_runtime_command(argv, capsys):
    with pytest.raises(SystemExit) as info:
        migrate_ml_main([*argv, "--help"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("usage: migrate-ml ")


def test_options_before_the_folder_and_non_empty_folder_refused(tmp_path, capsys, one_line_error):
    assert migrate_ml_main(["sample-data", "--n", "6", "--format", "onehot", str(tmp_path / "d")]) == 0
    before = (tmp_path / "d" / "labels.csv").read_bytes()
    capsys.readouterr()
    assert migrate_ml_main(["sample-data", str(tmp_path / "d"), "--n", "9"]) == 2
    one_line_error("not empty", "--overwrite")
    assert (tmp_path / "d" / "labels.csv").read_bytes() == before and not (tmp_path / "d" / "classes.txt").exists()
    assert migrate_ml_main(["sample-data", str(tmp_path / "d"), "--n", "9", "--overwrite", "--format", "onehot"]) == 0
    assert len((tmp_path / "d" / "labels.csv").read_text().splitlines()) == 10


@pytest.mark.parametrize(
    "option,needle",
    [(["--batch-size", "0"], "at least 1"), (["--lr", "nan"], "finite"), (["--epochs", "x"], "not an integer"),
     (["--val-fraction", "1.5"], "below 1"), (["--max-seconds", "-3"], "above 0"), (["--workers", "-1"], "at least 0")],
)
def test_bad_numbers_are_one_line_errors(option, needle, tmp_path, one_line_error):
    assert main(["reference", "train", *option, "--out", str(tmp_path / "run")]) == 2
    one_line_error(needle)
    assert not (tmp_path / "run").exists()


def test_non_empty_out_is_refused_and_left_untouched(run, one_line_error):
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert main(["reference", "train", *SMALL, "--out", str(run)]) == 2
    one_line_error(str(run), "not empty", "--overwrite", "--resume")
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_out_that_is_a_file_is_refused(tmp_path, one_line_error):
    (tmp_path / "f").write_text("keep")
    assert main(["reference", "train", *SMALL, "--out", str(tmp_path / "f")]) == 2
    one_line_error(str(tmp_path / "f"), "is a file")
    assert (tmp_path / "f").read_text() == "keep"


def test_read_only_out_is_refused(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    code = (
        "import os, sys\n"
        "if os.geteuid() == 0: os.setgid(65534); os.setuid(65534)\n"
        "from migrate_ml_reference.cli import main\n"
        f"sys.exit(main(['reference', 'train', '--out', {str(out)!r}, '--epochs', '1']))\n"
    )
    tmp_path.chmod(0o755)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    if "Traceback" in done.stderr and ("Permission denied" in done.stderr or "ModuleNotFoundError" in done.stderr):
        pytest.skip("the unprivileged user 'nobody' cannot read this Python installation")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert str(out) in done.stderr and "not writable" in done.stderr


def test_out_on_a_read_only_filesystem_is_refused(one_line_error):
    if os.access("/sys", os.W_OK) and not os.path.ismount("/sys"):
        pytest.skip("/sys is writable here")
    out = "/sys/migrate-ml-test/run"
    assert main(["reference", "train", "--out", out, "--epochs", "1"]) == 2
    one_line_error(out, "cannot create the run folder")


@pytest.mark.parametrize("device,needle", [("tpu9", "unknown device"), ("cuda", "no CUDA GPU")])
def test_bad_device_is_a_one_line_error(device, needle, tmp_path, one_line_error):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["reference", "train", "--device", device, "--out", str(tmp_path / "run")]) == 2
    one_line_error(f"--device {device}", needle)


def test_run_files_are_0644_and_respect_the_umask(tmp_path):
    from migrate_ml_reference.report import save_checkpoint, write_json

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o027)
        save_checkpoint(tmp_path / "c.pt", {"x": torch.zeros(1)})
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o640


def test_trained_run_files_are_world_readable(run):
    for name in ("checkpoint.pt", "metrics.json", "thresholds.json", "classes.txt"):
        assert (run / name).stat().st_mode & 0o044 == 0o044, name


def _malicious(path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path.write_bytes(pickle.dumps({"model": Evil()}))


@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage", "malicious", "foreign"])
@pytest.mark.parametrize("action", ["eval", "predict"])
def test_bad_checkpoints_are_one_line_errors(kind, action, run, tmp_path, one_line_error):
    bad = tmp_path / "bad.pt"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "truncated":
        bad.write_bytes((run / "checkpoint.pt").read_bytes()[:5000])
    elif kind == "garbage":
        bad.write_bytes(b"\x00not a checkpoint" * 10)
    elif kind == "malicious":
        _malicious(bad)
    else:
        torch.save({"weight": torch.zeros(2)}, bad)
    extra = [str(run)] if action == "predict" else []
    assert main(["reference", action, "--checkpoint", str(bad), *extra]) == 2
    one_line_error(str(bad))


def test_thresholds_file_without_thresholds(run, tmp_path, one_line_error):
    (tmp_path / "t.json").write_text(json.dumps({"class_names": ["x"]}))
    assert main(["reference", "eval", "--checkpoint", str(run / "checkpoint.pt"), "--thresholds", str(tmp_path / "t.json")]) == 2
    one_line_error(str(tmp_path / "t.json"), "no 'thresholds'")


def test_predict_refuses_to_overwrite_and_writes_csv(run, tmp_path, capsys, one_line_error):
    from PIL import Image

    Image.new("RGB", (32, 32), "white").save(tmp_path / "a.png")
    out = tmp_path / "preds.csv"
    assert main(["reference", "predict", str(tmp_path / "a.png"), "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0].startswith("image,labels,circle,")
    capsys.readouterr()
    assert main(["reference", "predict", str(tmp_path / "a.png"), "--checkpoint", str(run / "checkpoint.pt"), "--out", str(out)]) == 2
    one_line_error(str(out), "--overwrite")


def test_one_class_dataset_fails_before_training(tmp_path, one_line_error):
    from PIL import Image

    (tmp_path / "d" / "images").mkdir(parents=True)
    for i in range(12):
        Image.new("RGB", (8, 8)).save(tmp_path / "d" / "images" / f"{i}.png")
    (tmp_path / "d" / "labels.csv").write_text("file,labels\n" + "".join(f"{i}.png,cat\n" for i in range(12)))
    assert main(["reference", "train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "run"), "--workers", "0"]) == 2
    one_line_error("only 1 class", "at least 2")
    assert not (tmp_path / "run").exists()  # a failed run leaves no empty --out behind


def test_non_utf8_labels_csv_names_path_and_line(tmp_path, one_line_error):
    write = __import__("migrate_ml_reference").write_sample_data
    data = write(tmp_path / "d", n=10, image_size=8)
    text = (data / "labels.csv").read_bytes().replace(b"\ntrain_000001.png", b"\ntrain_00000\xe9.png")
    (data / "labels.csv").write_bytes(text)
    assert main(["reference", "train", "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    one_line_error(f"{data / 'labels.csv'}:3:", "not UTF-8")


def test_plain_progress_lines_and_few_positives_warning_when_not_a_terminal(tmp_path, capsys):
    assert main(["reference", "train", *SMALL, "--n-val", "8", "--sample", "digits", "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    assert "epoch 1/1  update 2/2" in captured.out and "ETA" in captured.out
    assert "\r" not in captured.out and "\x1b[" not in captured.out
    assert "warning: fewer than 5 positives on val for '0' (" in captured.err and "unreliable" in captured.err


def test_report_says_when_tuned_thresholds_did_worse(capsys):
    from migrate_ml_reference.train import _print_threshold_notes

    half = {"F1_macro": 0.8}
    _print_threshold_notes({}, "val", ["cat"], half, {"F1_macro": 0.7}, "test")
    assert capsys.readouterr().out == ("note: on test, tuned thresholds did worse than 0.5 for 1 class(es) ('cat'); "
                                       "macro F1 0.8000 at 0.5 vs 0.7000 tuned\n")


def _without_torch(argv, module="migrate_ml"):
    code = ("import runpy, sys\n"
            "for name in ('torch', 'timm', 'torchvision'): sys.modules[name] = None\n"
            f"sys.argv = ['x', *{argv!r}]\n"
            f"runpy.run_module({module!r}, run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize("module", ["migrate_ml", "migrate_ml_reference"])
@pytest.mark.parametrize("argv", [["sample-data", "/nonexistent/x"], ["reference", "train"], ["reference", "predict", "--checkpoint", "c", "x"]])
def test_without_the_runtime_extra_every_command_prints_the_install_hint(argv, module):
    done = _without_torch(argv, module)
    assert done.returncode == 2 and "pip install 'migrate-ml[runtime]'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_predict_takes_one_image_or_a_list_and_float_thresholds(run, tmp_path):
    from PIL import Image

    from migrate_ml_reference import InputError, load

    Image.new("RGB", (16, 16), (200, 30, 30)).save(tmp_path / "a.png")
    predictor = load(run)  # the run folder stands for its checkpoint.pt
    one = predictor.predict(str(tmp_path / "a.png"))
    assert isinstance(one, dict) and set(one["probs"]) == set(predictor.classes)
    for same in (tmp_path / "a.png", Image.open(tmp_path / "a.png"), torch.full((3, 16, 16), 0.5)):
        assert isinstance(predictor.predict(same), dict)
    assert predictor.predict_proba(str(tmp_path / "a.png")).shape == (len(predictor.classes),)
    assert len(predictor.predict([str(tmp_path / "a.png")] * 2)) == 2
    assert load(run, thresholds=0.0).predict(tmp_path / "a.png")["labels"] == predictor.classes
    assert load(run, thresholds=1.0).predict(tmp_path / "a.png")["labels"] == []
    assert load(run, thresholds=[1.0] * len(predictor.classes)).thresholds.tolist() == [1.0] * len(predictor.classes)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        load(run, thresholds=1.5)
    with pytest.raises(InputError, match="one per class"):
        load(run, thresholds=[0.5, 0.5])


def test_checkpoint_option_takes_the_run_folder_and_eval_quiet(run, tmp_path, capsys, one_line_error):
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    capsys.readouterr()
    assert main(["reference", "predict", "--checkpoint", str(run), str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().out.startswith("image,labels,")
    assert main(["reference", "eval", "--checkpoint", str(run), "--quiet", "--out", str(tmp_path / "ev"), "--workers", "0"]) == 0
    assert capsys.readouterr().out == "" and (tmp_path / "ev" / "eval.json").is_file()
    assert main(["reference", "eval", "--checkpoint", str(tmp_path), "--quiet"]) == 2
    one_line_error(str(tmp_path), "checkpoint.pt")


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["reference", "train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("passes over the train split (default: 30)", "(default: 0.002)", "(default: 0)", "(default: runs/reference)"):
        assert shown in text


def test_all_row_support_counts_positive_labels_like_the_class_rows():
    from rich.console import Console

    from migrate_ml_reference import multilabel_metrics
    from migrate_ml_reference.report import per_class_table

    targets = torch.tensor([[1, 1], [1, 0], [0, 0]]).float()
    metrics = multilabel_metrics(torch.rand(3, 2), targets, 0.5, ["a", "b"])
    console = Console(record=True, width=120)
    console.print(per_class_table(metrics, None, "t"))
    text = console.export_text()
    all_row = next(line for line in text.splitlines() if " all " in line)
    assert all_row.split("│")[2].strip() == "3" and "3 images" in text


def test_init_checkpoint_from_other_classes_starts_a_fresh_head(tmp_path):
    from migrate_ml_reference import create_reference_model
    from migrate_ml_reference.model import load_init_weights

    source = create_reference_model(3)
    torch.save({"class_names": ["a", "b", "c"], "model": source.state_dict()}, tmp_path / "run.pt")
    same = create_reference_model(3)
    note, warning = load_init_weights(same, str(tmp_path / "run.pt"), ["a", "b", "c"])
    assert warning is None and torch.equal(same.head.weight, source.head.weight)
    other = create_reference_model(3)
    note, warning = load_init_weights(other, str(tmp_path / "run.pt"), ["x", "y", "z"])
    assert "other classes" in warning and "head" in warning and "head.weight" in note
    assert not torch.equal(other.head.weight, source.head.weight)
    assert torch.equal(other.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)


def test_convert_image_folder_merges_copies_into_multi_hot_rows(tmp_path, capsys, one_line_error):
    from PIL import Image

    from migrate_ml_reference import read_labels

    root = tmp_path / "imagefolder"
    for split, cls, name, colour in [("train", "cat", "a", 1), ("train", "dog", "a-copy", 1), ("train", "dog", "b", 2),
                                     ("val", "cat", "c", 3), ("val", "bird", "d", 4), ("val", "dog", "e", 1)]:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (colour * 40, 0, 0)).save(root / split / cls / f"{name}.png")
    assert main(["reference", "convert", str(root), "--out", str(tmp_path / "csv")]) == 0
    captured = capsys.readouterr()
    assert "4 rows (3 classes; 2 copies merged" in captured.out and f"--images {root}" in captured.out
    assert "1 image(s) appear in more than one split" in captured.err
    assert (tmp_path / "csv" / "labels.csv").read_text() == (
        "file,labels,split\ntrain/cat/a.png,cat dog,train\ntrain/dog/b.png,dog,train\nval/bird/d.png,bird,val\nval/cat/c.png,cat,val\n")
    table = read_labels(tmp_path / "csv" / "labels.csv", images=root)
    assert table.classes == ["bird", "cat", "dog"] and table.targets.tolist()[0] == [0, 1, 1]
    assert main(["reference", "convert", str(root), "--out", str(tmp_path / "csv")]) == 2
    one_line_error("not empty", "--overwrite")
    assert main(["reference", "convert", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    one_line_error("no such folder")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_process_age_counts_from_the_process_start():
    from migrate_ml_reference.cli import _process_age

    # This pytest process imported torch long before this test ran.
    assert 0.2 < _process_age() < 24 * 3600
