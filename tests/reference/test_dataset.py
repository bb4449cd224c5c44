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
    assert torch.equal(open_dataset(root, "train").targets.float(), csv_ds.targets)


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


# --- users' formats: label-list CSV, one-hot CSV, COCO; classes; splits ---------------------

from migrate_ml_reference import read_labels  # noqa: E402
from migrate_ml_reference.dataset import assign_splits  # noqa: E402


def _images(root, *names):
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (8, 8)).save(root / name)
    return root


@pytest.mark.parametrize("fmt,data_name", [("folder", None), ("csv", "train_v2.csv"), ("onehot", "labels.csv"), ("coco", "annotations.json")])
def test_every_sample_format_reads_back_the_same_targets(tmp_path, fmt, data_name):
    data = write_sample_data(tmp_path / fmt, kind="shapes", n=20, image_size=16, seed=3, format=fmt)
    assert data == (tmp_path / fmt if data_name is None else tmp_path / fmt / data_name)
    table = read_labels(data)
    reference = read_labels(write_sample_data(tmp_path / "ref", kind="shapes", n=20, image_size=16, seed=3, overwrite=True))
    assert sorted(table.classes) == sorted(reference.classes) and len(table.files) == 20
    by_class = {c: table.targets[:, table.classes.index(c)] for c in table.classes}
    for c in reference.classes:
        assert torch.equal(by_class[c], reference.targets[:, reference.classes.index(c)]), c
    assert (table.splits is not None) == (fmt == "folder")


def test_planet_style_csv_names_without_extension(tmp_path):
    _images(tmp_path / "train-jpg", "train_0.jpg", "train_1.jpg")
    (tmp_path / "train_v2.csv").write_text("image_name,tags\ntrain_0,haze primary\ntrain_1,clear primary water\n")
    table = read_labels(tmp_path / "train_v2.csv")
    assert table.classes == ["clear", "haze", "primary", "water"]  # inferred, sorted
    assert table.targets.tolist() == [[0, 1, 1, 0], [1, 0, 1, 1]]
    assert table.files[0].endswith("train-jpg/train_0.jpg")
    explicit = read_labels(tmp_path / "train_v2.csv", images=tmp_path / "train-jpg", image_ext="jpg")
    assert explicit.files == table.files


def test_class_names_with_spaces_and_a_bom_in_classes_txt(tmp_path):
    _images(tmp_path / "images", "a.png", "b.png")
    (tmp_path / "classes.txt").write_text("\ufefftraffic light\nstop sign\n", encoding="utf-8")
    (tmp_path / "labels.csv").write_text("file,labels\na.png,traffic light;stop sign\nb.png,stop sign\n")
    table = read_labels(tmp_path / "labels.csv", label_sep=";")
    assert table.classes == ["traffic light", "stop sign"]
    assert table.targets.tolist() == [[1, 1], [0, 1]]


def test_bom_in_labels_csv_header_and_one_hot_detection(tmp_path):
    _images(tmp_path / "images", "a.png", "b.png")
    (tmp_path / "labels.csv").write_text("\ufeffimage,cat,dog,split\na.png,1,0,train\nb.png,1,1,val\n", encoding="utf-8")
    table = read_labels(tmp_path)
    assert table.classes == ["cat", "dog"] and table.targets.tolist() == [[1, 0], [1, 1]]
    assert table.splits == ["train", "val"]


def test_coco_image_without_annotations_is_all_negative(tmp_path):
    _images(tmp_path / "images", "a.png", "b.png")
    doc = {"images": [{"id": 7, "file_name": "a.png"}, {"id": 8, "file_name": "b.png"}],
           "annotations": [{"id": 1, "image_id": 7, "category_id": 3}, {"id": 2, "image_id": 7, "category_id": 3}],
           "categories": [{"id": 3, "name": "fire hydrant"}, {"id": 1, "name": "person"}]}
    (tmp_path / "instances.json").write_text(json.dumps(doc, indent=1))
    table = read_labels(tmp_path / "instances.json")
    assert table.classes == ["person", "fire hydrant"] and table.targets.tolist() == [[0, 1], [0, 0]]


def _bad(tmp_path, name, text, **options):
    _images(tmp_path / "images", "a.png", "b.png")
    (tmp_path / "images" / "empty.png").write_bytes(b"")
    (tmp_path / "outside.png").write_bytes((tmp_path / "images" / "a.png").read_bytes())
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DatasetFormatError) as info:
        read_labels(path, **options)
    return info.value


@pytest.mark.parametrize(
    "name,text,line,needle",
    [
        ("l.csv", "image,tags\na.png,x\nc.png,y\n", 3, "missing image 'c.png'"),
        ("l.csv", "image,tags\na.png,x\n,y\n", 3, "empty row: no image name"),
        ("l.csv", "image,tags\na.png,x\nb.png\n", 3, "expected 2 columns"),
        ("l.csv", "image,tags\na.png,x\nempty.png,y\n", 3, "empty file (0 bytes)"),
        ("l.csv", "image,tags\na.png,x\n../outside.png,y\n", 3, "resolves outside the images folder"),
        ("l.csv", "image,tags\na.png,x\n/etc/passwd,y\n", 3, "resolves outside the images folder"),
        ("l.csv", "image,cat,dog\na.png,1,0\nb.png,1,2\n", 3, "column 'dog': expected 0 or 1, got '2'"),
        ("l.csv", "image,a,b,c\na.png,x,y,z\n", 1, "cannot tell which column holds the labels"),
        ("l.csv", "image,tags\na.png,caf\xe9\n".encode("latin-1"), 2, "not UTF-8 text"),
        ("c.json", '{"images": [{"id": 1, "file_name": "a.png"},\n {"id": 2, "file_name": "z.png"}],\n "annotations": [],\n "categories": [{"id": 1, "name": "x"}]}', 2, "missing image 'z.png'"),
        ("c.json", '{"images": [{"id": 1, "file_name": "a.png"}],\n "annotations": [\n {"image_id": 1, "category_id": 9}],\n "categories": [{"id": 1, "name": "x"}]}', 3, "unknown category_id 9"),
    ],
)
def test_bad_rows_in_users_formats_name_file_and_line(tmp_path, name, text, line, needle):
    err = _bad(tmp_path, name, text)
    assert err.line == line and needle in str(err), str(err)
    assert str(err).startswith(f"{tmp_path / name}:{line}: ") and "\n" not in str(err)


def test_unknown_class_with_a_classes_file(tmp_path):
    (tmp_path / "classes.txt").write_text("x\ny\n")
    err = _bad(tmp_path, "l.csv", "image,tags\na.png,x\nb.png,y z\n")
    assert err.line == 3 and "unknown label 'z'" in str(err)


def test_symlink_leading_out_of_the_images_root_is_refused(tmp_path):
    _images(tmp_path / "images", "a.png")
    (tmp_path / "images" / "link.png").symlink_to(tmp_path / "elsewhere.png")
    (tmp_path / "elsewhere.png").write_bytes((tmp_path / "images" / "a.png").read_bytes())
    (tmp_path / "labels.csv").write_text("file,labels\na.png,x\nlink.png,y\n")
    with pytest.raises(DatasetFormatError, match="resolves outside"):
        read_labels(tmp_path)


def test_assign_splits_is_seeded_and_sized():
    a = assign_splits(100, 0.1, 0.2, seed=1)
    assert a == assign_splits(100, 0.1, 0.2, seed=1) and a != assign_splits(100, 0.1, 0.2, seed=2)
    assert (a.count("train"), a.count("val"), a.count("test")) == (70, 10, 20)


def test_labels_col_none_means_one_hot_columns(tmp_path):
    from PIL import Image

    from migrate_ml_reference import read_labels

    (tmp_path / "images").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (4, 4)).save(tmp_path / "images" / f"{name}.png")
    # "tags" would be guessed as a labels column; with --labels-col none it is a class.
    (tmp_path / "labels.csv").write_text("file,tags,other\na.png,1,0\nb.png,0,1\n")
    table = read_labels(tmp_path / "labels.csv", labels_col="none")
    assert table.classes == ["tags", "other"] and table.targets.tolist() == [[1, 0], [0, 1]]


def _chexpert_like(root, n=40):
    from PIL import Image

    (root / "images").mkdir(parents=True)
    rows = ["Path,Edema,Effusion,Other"]
    for i in range(n):
        Image.new("RGB", (8, 8), (i * 6, 0, 0)).save(root / "images" / f"{i}.png")
        # The first row holds -1 and a blank, as CheXpert's often do.
        rows.append(f"{i}.png,{['-1', '1', '0', ''][i % 4]},{i % 2},{['', '1.0', '0.0'][i % 3]}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


def test_uncertain_cells_are_read_as_a_mask(tmp_path):
    from migrate_ml_reference import read_labels

    table = read_labels(_chexpert_like(tmp_path))
    assert table.classes == ["Edema", "Effusion", "Other"]
    assert table.uncertain[:4].tolist() == [[True, False, True], [False, False, False], [False, False, False], [True, False, True]]
    assert table.targets[:4].tolist() == [[0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 1, 0]]
    assert table.subset([1, 3]).uncertain.tolist() == [[False, False, False], [True, False, True]]


@pytest.mark.parametrize("policy, value", [("ignore", -1.0), ("zeros", 0.0), ("ones", 1.0)])
def test_uncertain_policy(tmp_path, policy, value):
    from migrate_ml_reference import read_labels
    from migrate_ml_reference.train import label_targets

    table = read_labels(_chexpert_like(tmp_path))
    targets = label_targets(table, policy)
    assert targets[0].tolist() == [value, 0.0, value] and targets[1].tolist() == [1.0, 1.0, 1.0]


def test_masked_loss_and_metrics_leave_unknown_cells_out():
    from migrate_ml_reference.metrics import multilabel_metrics, tune_thresholds
    from migrate_ml_reference.train import MaskedBCEWithLogits

    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0], [-2.0, 0.0]])
    targets = torch.tensor([[1.0, -1.0], [0.0, 1.0], [-1.0, 0.0]])
    known = targets >= 0
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[known], targets[known])
    assert MaskedBCEWithLogits()(logits, targets) == pytest.approx(float(expected))
    probs = torch.sigmoid(logits)
    masked = multilabel_metrics(probs, targets, 0.5)
    # Class 0 scored on rows 0-1 only, class 1 on rows 1-2: as if the unknown rows were absent.
    only0 = multilabel_metrics(probs[:2, :1], targets[:2, :1], 0.5)
    assert masked["per_class"][0]["AP"] == only0["per_class"][0]["AP"] and [r["support"] for r in masked["per_class"]] == [1, 1]
    assert tune_thresholds(probs, targets)[0] == tune_thresholds(probs[:2, :1], targets[:2, :1])[0]


def _jpgs(folder, names, colour=(0, 0, 0)):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", (4, 4), colour).save(folder / f"{name}.jpg")


def test_kaggle_planet_layout_found_without_flags(tmp_path):
    from migrate_ml_reference import read_labels

    _jpgs(tmp_path / "train-jpg", ["train_0", "train_1"])
    _jpgs(tmp_path / "test-jpg", ["test_0"])
    (tmp_path / "train.csv").write_text("image_name,tags\ntrain_0,clear primary\ntrain_1,haze\n")
    for data in (tmp_path / "train.csv", tmp_path):
        table = read_labels(data)
        assert [f.rsplit("/", 2)[-2:] for f in table.files] == [["train-jpg", "train_0.jpg"], ["train-jpg", "train_1.jpg"]]
        assert table.classes == ["clear", "haze", "primary"]


def test_images_in_other_folders_error_lists_them_and_names_images_option(tmp_path):
    from migrate_ml_reference import DatasetFormatError, read_labels

    _jpgs(tmp_path / "jpg-a", ["x"])
    _jpgs(tmp_path / "jpg-b", ["y"])
    (tmp_path / "tags.csv").write_text("image_name,tags\nx,a\ny,b\n")
    with pytest.raises(DatasetFormatError, match=r"tags.csv:2: missing image 'x'.*\(jpg-a, jpg-b\): pass --images DIR"):
        read_labels(tmp_path / "tags.csv")


def test_line_numbers_of_a_large_coco_file_cost_linear_time(tmp_path):
    """Issue 21, item 9: each line number was counted from the start of the file (quadratic:
    8 MB took 100 s). 4 MB with the bad annotation last, and a labels.json of 60,000 rows."""
    import time

    _images(tmp_path / "images", "a.png", "b.png")
    annotations = [{"id": k, "image_id": 1, "category_id": 1, "bbox": [1.5, 2.5, 30.25, 40.75]} for k in range(40_000)]
    annotations.append({"id": 40_000, "image_id": 1, "category_id": 9})
    doc = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": annotations,
           "categories": [{"id": 1, "name": "x"}]}
    (tmp_path / "c.json").write_text(json.dumps(doc, indent=1))
    assert (tmp_path / "c.json").stat().st_size > 4_000_000
    started = time.process_time()  # CPU time: a busy machine stretches the wall clock, not this
    with pytest.raises(DatasetFormatError) as info:
        read_labels(tmp_path / "c.json")
    text = (tmp_path / "c.json").read_text()
    assert info.value.line == text[:text.index('"category_id": 9')].count("\n") + 1
    rows = {f"img{k:05d}.png": ["x"] for k in range(60_000)}
    rows["missing.png"] = ["x"]
    rows = {"a.png": ["x"], **rows}
    (tmp_path / "labels.json").write_text(json.dumps(rows, indent=1))
    with pytest.raises(DatasetFormatError) as info:
        read_labels(tmp_path / "labels.json")
    text = (tmp_path / "labels.json").read_text()
    assert info.value.line == text[:text.index('"img00000.png"')].count("\n") + 1
    assert "missing image 'img00000.png'" in str(info.value)
    assert time.process_time() - started < 10
