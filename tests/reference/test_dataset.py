import json

import pytest
import torch

from migrate_ml_reference import (
    DatasetFormatError,
    MultiLabelCsvDataset,
    MultiLabelJsonDataset,
    make_sample_tensors,
    open_dataset,
    write_sample_data,
)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("data") / "digits", kind="digits", n=30, image_size=32, seed=0)


def test_csv_dataset_reads_back_generated_tensors(sample_dir):
    ds = MultiLabelCsvDataset(sample_dir, split="val")
    images, targets, names = make_sample_tensors("digits", n=3, image_size=32, seed=0, split="val")
    assert len(ds) == 3 and ds.classes == names
    for i in range(3):
        image, target = ds[i]
        assert image.shape == (3, 32, 32) and target.dtype == torch.float32
        assert torch.equal(target, targets[i])
        assert (image - images[i]).abs().max() <= 0.5 / 255 + 1e-6
    assert len(MultiLabelCsvDataset(sample_dir)) == 30


def test_json_variant_and_split_folders(sample_dir, tmp_path):
    csv_ds = MultiLabelCsvDataset(sample_dir, split="train")
    root = tmp_path / "j"
    (root / "train" / "images").mkdir(parents=True)
    mapping = {}
    for path, target in zip(csv_ds.files, csv_ds.targets):
        (root / "train" / "images" / path.name).write_bytes(path.read_bytes())
        mapping[path.name] = [csv_ds.classes[j] for j in torch.nonzero(target).flatten().tolist()]
    (root / "train" / "labels.json").write_text(json.dumps(mapping, indent=1))
    (root / "classes.txt").write_text((sample_dir / "classes.txt").read_text())
    ds = MultiLabelJsonDataset(root, split="train")
    assert torch.equal(ds.targets, csv_ds.targets)
    assert isinstance(open_dataset(root, "train"), MultiLabelJsonDataset)


def _csv_case(tmp_path, body):
    (tmp_path / "images").mkdir(exist_ok=True)
    for name in ("a.png", "b.png"):
        from PIL import Image

        Image.new("RGB", (8, 8)).save(tmp_path / "images" / name)
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    (tmp_path / "labels.csv").write_text(body)
    return tmp_path


@pytest.mark.parametrize(
    "body,line,needle",
    [
        ("file,labels\na.png,cat\nb.png,cat bird\n", 3, "unknown label 'bird'"),
        ("file,labels\na.png,cat\nc.png,dog\n", 3, "missing image 'c.png'"),
        ("file,labels\na.png,cat\n,\nb.png,dog\n", 3, "empty row"),
        ("file,labels\na.png,cat\nb.png,dog\na.png,dog\n", 4, "duplicate row for 'a.png' (first at line 2)"),
        ("a.png,cat\nb.png,dog\n", 1, "expected a header row"),
    ],
)
def test_csv_bad_rows_name_file_and_line(tmp_path, body, line, needle):
    root = _csv_case(tmp_path, body)
    with pytest.raises(DatasetFormatError) as info:
        MultiLabelCsvDataset(root)
    assert info.value.line == line and needle in str(info.value)
    assert str(info.value).startswith(f"{root / 'labels.csv'}:{line}: ")


def test_csv_empty_labels_is_a_negative_image(tmp_path):
    ds = MultiLabelCsvDataset(_csv_case(tmp_path, "file,labels\na.png,\nb.png,cat dog\n"))
    assert ds.targets.tolist() == [[0.0, 0.0], [1.0, 1.0]]


@pytest.mark.parametrize(
    "body,line,needle",
    [
        ('{\n "a.png": ["cat"],\n "b.png": ["fish"]\n}', 3, "unknown label 'fish'"),
        ('{\n "a.png": ["cat"],\n "z.png": ["dog"]\n}', 3, "missing image 'z.png'"),
        ('{\n "a.png": ["cat"],\n "": ["dog"]\n}', 3, "empty row"),
        ('{\n "a.png": ["cat"],\n "b.png": null\n}', 3, "bad row"),
        ('{\n "a.png": ["cat"],\n "b.png": [],\n "a.png": ["dog"]\n}', 4, "duplicate row for 'a.png' (first at line 2)"),
        ('{\n "a.png": ["cat"],\n', 3, "invalid JSON"),
    ],
)
def test_json_bad_rows_name_file_and_line(tmp_path, body, line, needle):
    root = _csv_case(tmp_path, "file,labels\n")
    (root / "labels.json").write_text(body)
    with pytest.raises(DatasetFormatError) as info:
        MultiLabelJsonDataset(root)
    assert info.value.line == line and needle in str(info.value)
