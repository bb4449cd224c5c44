"""Issue 21: a hostile or unlucky user of the reference runtime. Each test names its item; every
refusal is one line naming the file, exit 2, and nothing written."""

import os

import pytest

from migrate_ml.cli import main as migrate_ml_main
from migrate_ml_reference.cli import main

SMALL = ["--n-train", "64", "--n-val", "32", "--n-test", "32", "--batch-size", "32", "--epochs", "1", "--threads", "1",
         "--workers", "0", "--model-kwarg", "depth=1", "--image-size", "16"]


def _tree(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def own_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own") / "own"
    assert migrate_ml_main(["sample-data", "--n", "20", "--image-size", "16", str(folder)]) == 0
    # A dataset's own files under names a run writes: a BOM in classes.txt, its own metrics.json.
    (folder / "classes.txt").write_bytes(b"\xef\xbb\xbf" + (folder / "classes.txt").read_bytes())
    (folder / "metrics.json").write_text('{"mine": true}\n')
    return folder


@pytest.mark.parametrize("out", [".", "images", "images/run"], ids=["the-data-folder", "the-images", "inside-them"])
def test_train_never_writes_inside_the_data_folder(own_data, out, one_line_error):
    """Item 5: `train --data own --out own --overwrite` replaced the dataset's classes.txt and metrics.json."""
    before = _tree(own_data)
    assert main(["reference", "train", *SMALL, "--data", str(own_data), "--out", str(own_data / out), "--overwrite"]) == 2
    one_line_error("the output folder holds the data", str(own_data))
    assert _tree(own_data) == before and not (own_data / "images" / "run").exists()
    assert main(["reference", "train", *SMALL, "--data", str(own_data / "labels.csv"), "--out", str(own_data),
                 "--overwrite"]) == 2
    one_line_error("the output folder holds the data")
    assert _tree(own_data) == before


def test_a_new_folder_below_the_data_may_hold_the_run(own_data):
    before = _tree(own_data)
    assert main(["reference", "train", *SMALL, "--batch-size", "8", "--data", str(own_data),
                 "--out", str(own_data / "runs")]) == 0
    assert {p: b for p, b in _tree(own_data).items() if "runs" not in p.parts} == before
    assert (own_data / "runs" / "checkpoint.pt").is_file()


@pytest.mark.parametrize("link", ["images", "labels.csv", "classes.txt", "images/train_000000.png"])
def test_sample_data_overwrite_never_writes_through_a_symlink_out_of_the_folder(tmp_path, link, one_line_error):
    """Item 5: `sample-data --overwrite` wrote through an images/ or labels.csv symlink to files outside DIR."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / ("folder" if link == "images" else "victim")
    if link == "images":
        victim.mkdir()
        (victim / "keep.txt").write_text("keep")
    else:
        victim.write_text("keep")
    folder = tmp_path / "d"
    folder.mkdir()
    if "/" in link:
        (folder / "images").mkdir()
    (folder / link).symlink_to(victim)
    before = _tree(outside)
    assert migrate_ml_main(["sample-data", "--n", "10", "--image-size", "16", "--overwrite", str(folder)]) == 2
    one_line_error(f"{folder / link}: a symlink to {victim}", "refused")
    assert _tree(outside) == before and list(outside.rglob("*.png")) == []


def test_resume_never_writes_through_a_run_file_linked_out_of_the_run_folder(tmp_path, capsys, one_line_error):
    run = tmp_path / "run"
    assert main(["reference", "train", *SMALL, "--out", str(run)]) == 0
    capsys.readouterr()
    (tmp_path / "victim.json").write_text("keep")
    os.replace(run / "metrics.json", tmp_path / "old.json")
    (run / "metrics.json").symlink_to(tmp_path / "victim.json")
    assert main(["reference", "train", *SMALL, "--out", str(run), "--resume", "--epochs", "2"]) == 2
    one_line_error("metrics.json: a symlink to", "outside the run folder")
    assert (tmp_path / "victim.json").read_text() == "keep"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["reference", "train", *SMALL, "--sample", "shapes", "--out", str(out)]) == 0
    return out


@pytest.fixture
def no_hang():
    """A FIFO opened for reading blocks until a writer comes: fail the test instead of hanging."""
    import signal

    def hung(_signum, _frame):
        raise TimeoutError("blocked on the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_fifo_as_labels_file_or_thresholds_file_is_refused_without_blocking(run, tmp_path, no_hang, one_line_error):
    """Item 11: `--data x/labels.csv` or `predict --thresholds` on a FIFO blocked forever."""
    os.mkfifo(tmp_path / "labels.csv")
    assert main(["reference", "train", *SMALL, "--data", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "out" / "r")]) == 2
    one_line_error(f"{tmp_path / 'labels.csv'}: is a FIFO (named pipe), not a regular file")
    assert not (tmp_path / "out" / "r").exists() or not any((tmp_path / "out" / "r").iterdir())
    os.mkfifo(tmp_path / "t.json")
    assert main(["reference", "predict", "--checkpoint", str(run / "checkpoint.pt"), "--thresholds",
                 str(tmp_path / "t.json"), str(run)]) == 2
    one_line_error(f"{tmp_path / 't.json'}: thresholds file is a FIFO")
    os.mkfifo(tmp_path / "c.pt")
    assert main(["reference", "eval", "--checkpoint", str(tmp_path / "c.pt")]) == 2
    one_line_error(f"{tmp_path / 'c.pt'}: checkpoint is a FIFO")


def test_a_csv_field_over_the_csv_module_limit_is_a_one_line_error(tmp_path, one_line_error):
    """Item 15: a field over 131,072 characters was a `_csv.Error` traceback."""
    (tmp_path / "labels.csv").write_text("file,labels\na.png," + "x" * 140_000 + "\n")
    assert main(["reference", "train", *SMALL, "--data", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "out" / "r")]) == 2
    one_line_error(f"{tmp_path / 'labels.csv'}:2: cannot read as CSV: field larger than field limit")


def test_a_coco_file_name_holding_nul_names_the_file_and_line(tmp_path, one_line_error):
    """Item 17: "embedded null byte" named no file."""
    (tmp_path / "images").mkdir()
    (tmp_path / "c.json").write_text('{"images": [\n{"id": 1, "file_name": "a\\u0000.png"}],\n "annotations": [],\n'
                                     ' "categories": [{"id": 1, "name": "x"}]}')
    assert main(["reference", "train", *SMALL, "--data", str(tmp_path / "c.json"), "--out", str(tmp_path / "out" / "r")]) == 2
    one_line_error(f"{tmp_path / 'c.json'}:2: image name 'a\\x00.png' holds a NUL character")


@pytest.mark.parametrize("values, needle", [
    ("NaN", "threshold of class 'circle' is nan: expected a number in [0, 1]"),
    ('"0.5"', "threshold of class 'circle' is '0.5': expected a number in [0, 1]"),
    ("1.5", "is 1.5: expected a number in [0, 1]"),
    ("short", "expected 7 thresholds (one per class), got 2"),
], ids=["nan", "text", "above-one", "too-few"])
def test_thresholds_files_are_checked_value_by_value(run, tmp_path, values, needle, one_line_error):
    """Item 17: a NaN threshold was accepted; a non-number said "expected 7 numeric thresholds, got 7"."""
    import json

    names = json.loads((run / "thresholds.json").read_text())["class_names"]
    thresholds = [0.5, 0.5] if values == "short" else [0.5] * (len(names) - 1)
    text = json.dumps({"class_names": names, "thresholds": thresholds})
    if values != "short":
        text = text[:-2] + f", {values}]}}"
    (tmp_path / "t.json").write_text(text)
    assert main(["reference", "eval", "--checkpoint", str(run / "checkpoint.pt"), "--thresholds", str(tmp_path / "t.json")]) == 2
    one_line_error(str(tmp_path / "t.json"), needle.replace("'circle'", repr(names[-1])))


@pytest.mark.parametrize("kind, needle", [
    ("text", "not a PyTorch checkpoint (it does not start like one: a text file?)"),
    # A folder may be a run folder (its checkpoint.pt is meant): one without it says so.
    ("folder", "a folder without a checkpoint.pt (expected a run folder or a checkpoint file)"),
])
def test_a_text_file_or_a_folder_as_checkpoint_says_what_it_is(run, tmp_path, kind, needle, one_line_error):
    """Item 17: a text checkpoint said "cannot read checkpoint: 101"; a folder said "not found"."""
    bad = tmp_path / "c.pt"
    if kind == "text":
        bad.write_text("epoch 3\n")
    else:
        bad.mkdir()
    assert main(["reference", "eval", "--checkpoint", str(bad)]) == 2
    one_line_error(f"{bad}: {needle}")


def test_predict_on_a_folder_with_a_file_name_that_is_not_utf8(run, tmp_path, capsys):
    """Item 17: a non-UTF-8 file name gave a UnicodeEncodeError naming no file, and no output."""
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (16, 16), "red").save(folder / "plain.png")
    odd = os.fsdecode(b"caf\xe9.png")
    Image.new("RGB", (16, 16), "blue").save(folder / odd)
    assert main(["reference", "predict", "--checkpoint", str(run / "checkpoint.pt"), str(folder)]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == [f"{folder}/caf\\xe9.png", f"{folder}/plain.png"]


@pytest.mark.parametrize("kwarg, needle", [
    ("img_size=7", "cannot take 16 px images: Input height (16) doesn't match model (7)"),
    ("patch_size=64", "cannot take 16 px images: Calculated padded input size"),
    ("num_heads=3", "dim should be divisible by num_heads"),
    ("act_layer='nope'", "unknown name 'nope'"),
])
def test_model_kwargs_that_do_not_fit_are_one_line_errors(tmp_path, kwarg, needle, one_line_error):
    """Item 15: these were AssertionError, RuntimeError and KeyError tracebacks (mid-training for two)."""
    assert main(["reference", "train", *SMALL, "--model-kwarg", kwarg, "--out", str(tmp_path / "r")]) == 2
    one_line_error("model 'vit_tiny_patch16_224'", needle)
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


@pytest.mark.parametrize("change, needle", [
    (["--sample", "digits"], "the checkpoint was trained on 7 classes, this run has 10"),
    (["--model", "resnet18"], "the checkpoint holds a 'vit_tiny_patch16_224' model, this run asks for 'resnet18'"),
    (["--model-kwarg", "embed_dim=32"], "the checkpoint's weights do not fit this model (other --model-kwarg values?): "
                                        "size mismatch for cls_token"),
], ids=["classes", "model", "kwargs"])
def test_resume_with_another_class_count_or_model_says_so(run, tmp_path, change, needle, one_line_error):
    """Item 15: `--resume` with another class count or --model was a load_state_dict traceback."""
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    before = _tree(folder)
    argv = [a for a in SMALL if a != "depth=1"]
    argv = argv[:argv.index("--model-kwarg")] + argv[argv.index("--model-kwarg") + 1:]
    if change[0] != "--model":
        argv += ["--model-kwarg", "depth=1"]
    assert main(["reference", "train", *argv, "--sample", "shapes", *change, "--out", str(folder), "--resume",
                 "--epochs", "2"]) == 2
    one_line_error(f"{folder / 'last.pt'}: {needle}")  # --resume reads the last state, not the best
    assert _tree(folder) == before


def test_ctrl_c_while_a_run_file_is_written_waits_until_it_is_in_place(tmp_path):
    """Item 15: Ctrl-C inside torch.save's writer was a traceback and left a temporary file."""
    import signal

    import torch

    from migrate_ml_reference.report import save_checkpoint

    state = {"weight": torch.arange(1000.0)}

    original = torch.save

    def interrupted_midway(obj, handle):
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the archive is being written
        original(obj, handle)

    torch.save = interrupted_midway
    # A test run started in the background inherits SIGINT ignored: give it Python's handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(tmp_path / "checkpoint.pt", state)
    finally:
        torch.save = original
        signal.signal(signal.SIGINT, previous)
    assert os.listdir(tmp_path) == ["checkpoint.pt"]
    assert torch.equal(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["weight"], state["weight"])


def test_library_warnings_are_shown_with_verbose_only(tmp_path, capsys, caplog):
    """Item 18: matplotlib's missing-glyph warnings (class names in CJK) broke the one-line promise;
    so did timm's scheduler, through logging, on a one-step run."""
    from PIL import Image

    (tmp_path / "data" / "images").mkdir(parents=True)
    names = ["猫", "犬", "鳥"]
    rows = ["file,labels"]
    for i in range(24):
        Image.new("RGB", (16, 16), (i * 10, 0, 0)).save(tmp_path / "data" / "images" / f"{i}.png")
        rows.append(f"{i}.png," + " ".join(n for j, n in enumerate(names) if (i >> j) & 1 or j == i % 3))
    (tmp_path / "data" / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    argv = ["reference", "train", *SMALL, "--batch-size", "8", "--max-steps", "1", "--data", str(tmp_path / "data")]
    import warnings

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert main([*argv, "--out", str(tmp_path / "quiet")]) == 0
    assert shown == [] and "Warning" not in capsys.readouterr().err
    assert [r for r in caplog.records if r.name.startswith("timm")] == []
    with pytest.warns(UserWarning, match="Glyph .* missing from font"):
        assert main([*argv, "--out", str(tmp_path / "loud"), "-v"]) == 0
    assert any("Cosine annealing scheduler will have no effect" in r.getMessage() for r in caplog.records)
