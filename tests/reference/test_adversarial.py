"""Issue 21: a hostile or unlucky user of the reference runtime. Each test names its item; every
refusal is one line naming the file, exit 2, and nothing written."""

import os

import pytest

from migrate_ml.cli import main as migrate_ml_main
from migrate_ml_reference.cli import main

SMALL = ["--n-train", "64", "--n-val", "32", "--n-test", "32", "--batch-size", "32", "--epochs", "1", "--threads", "1",
         "--workers", "0", "--model-kwarg", "depth=1", "--image-size", "16"]


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


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


@pytest.mark.parametrize("out", [".", "runs"], ids=["the-data-folder", "inside-it"])
def test_train_never_writes_inside_the_data_folder(own_data, out, capsys):
    """Item 5: `train --data own --out own --overwrite` replaced the dataset's classes.txt and metrics.json."""
    before = _tree(own_data)
    assert main(["reference", "train", *SMALL, "--data", str(own_data), "--out", str(own_data / out), "--overwrite"]) == 2
    _one_line_error(capsys, "inside the data folder", str(own_data))
    assert _tree(own_data) == before and not (own_data / "runs").exists()
    assert main(["reference", "train", *SMALL, "--data", str(own_data / "labels.csv"), "--out", str(own_data),
                 "--overwrite"]) == 2
    _one_line_error(capsys, "inside the data folder")
    assert _tree(own_data) == before


@pytest.mark.parametrize("link", ["images", "labels.csv", "classes.txt", "images/train_000000.png"])
def test_sample_data_overwrite_never_writes_through_a_symlink_out_of_the_folder(tmp_path, link, capsys):
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
    _one_line_error(capsys, f"{folder / link}: a symlink to {victim}", "refused")
    assert _tree(outside) == before and list(outside.rglob("*.png")) == []


def test_resume_never_writes_through_a_run_file_linked_out_of_the_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["reference", "train", *SMALL, "--out", str(run)]) == 0
    capsys.readouterr()
    (tmp_path / "victim.json").write_text("keep")
    os.replace(run / "metrics.json", tmp_path / "old.json")
    (run / "metrics.json").symlink_to(tmp_path / "victim.json")
    assert main(["reference", "train", *SMALL, "--out", str(run), "--resume", "--epochs", "2"]) == 2
    _one_line_error(capsys, "metrics.json: a symlink to", "outside the run folder")
    assert (tmp_path / "victim.json").read_text() == "keep"
