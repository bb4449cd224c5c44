import csv
import subprocess
import sys

import pytest
import torch

from migrate_ml_reference import make_sample_tensors, write_sample_data
from migrate_ml_reference.sample import digit_pools


@pytest.mark.parametrize("kind", ["digits", "shapes"])
def test_same_seed_same_tensors_other_seed_differs(kind):
    a = make_sample_tensors(kind, n=64, image_size=32, seed=3)
    b = make_sample_tensors(kind, n=64, image_size=32, seed=3)
    c = make_sample_tensors(kind, n=64, image_size=32, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("kind,num_classes", [("digits", 10), ("shapes", 7)])
def test_shapes_ranges_and_label_counts(kind, num_classes):
    images, targets, names = make_sample_tensors(kind, n=200, image_size=48, seed=0, split="val")
    assert images.shape == (200, 3, 48, 48) and images.dtype == torch.float32
    assert targets.shape == (200, num_classes) and len(names) == num_classes
    assert 0.0 <= images.min() and images.max() <= 1.0
    per_image = targets.sum(1)
    assert per_image.min() >= 1 and per_image.max() <= 4
    assert set(targets.unique().tolist()) == {0.0, 1.0}


def test_digit_pools_are_disjoint_and_cover_every_class():
    from sklearn.datasets import load_digits

    pools = digit_pools()
    sets = {k: set(v.tolist()) for k, v in pools.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
    assert len(sets["train"] | sets["val"] | sets["test"]) == 1797
    target = load_digits().target
    for idx in pools.values():
        assert set(target[idx.numpy()].tolist()) == set(range(10))


def test_splits_use_their_own_pool():
    # Each cell of a val image must be (an upsampled copy of) a val-pool digit, never a train one.
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    images, _, _ = make_sample_tensors("digits", n=50, image_size=16, seed=0, split="val")
    digits = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16.0
    bank = F.interpolate(digits[:, None], size=(8, 8), mode="bilinear", align_corners=False).clamp(0, 1)[:, 0]
    val_pool = set(digit_pools()["val"].tolist())
    cells = images[:, 0].reshape(50, 2, 8, 2, 8).permute(0, 1, 3, 2, 4).reshape(-1, 8, 8)
    for cell in cells[cells.flatten(1).amax(1) > 0]:
        matches = torch.nonzero((bank - cell).abs().flatten(1).amax(1) < 1e-6).flatten().tolist()
        assert matches and all(m in val_pool for m in matches)


def test_write_sample_data_layout_and_determinism(tmp_path):
    a = write_sample_data(tmp_path / "a", kind="shapes", n=30, image_size=32, seed=1)
    b = write_sample_data(tmp_path / "b", kind="shapes", n=30, image_size=32, seed=1)
    rows = list(csv.reader(open(a / "labels.csv")))
    assert rows[0] == ["file", "labels", "split"] and len(rows) == 31
    assert {r[2] for r in rows[1:]} == {"train", "val", "test"}
    assert (a / "classes.txt").read_text().split() == ["circle", "square", "triangle", "cross", "ring", "bar", "diamond"]
    assert (a / "labels.csv").read_bytes() == (b / "labels.csv").read_bytes()
    for row in rows[1:]:
        assert (a / "images" / row[0]).read_bytes() == (b / "images" / row[0]).read_bytes()


def test_cli_sample_data_and_bad_args(tmp_path):
    run = [sys.executable, "-m", "migrate_ml_reference", "sample-data", str(tmp_path / "d"), "--n", "20", "--seed", "2"]
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "d" / "labels.csv").read_text().splitlines()) == 21
    bad = subprocess.run([*run[:4], str(tmp_path / "e"), "--image-size", "15"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "image_size" in bad.stderr
    assert not (tmp_path / "e").exists()
