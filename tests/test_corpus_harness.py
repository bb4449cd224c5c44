"""The corpus harness (bench/corpus): its independent detector, the coverage matching, the
checked-in manifest, and one end-to-end run on tiny inline sources (no network, no fetched files)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "bench" / "corpus"
sys.path.insert(0, str(CORPUS))

import detector  # noqa: E402
import fetch  # noqa: E402
import harness  # noqa: E402
import manifest  # noqa: E402

TRAIN = """\
import torch.nn as nn
from torchvision import datasets

data = datasets.ImageFolder("train")
criterion = nn.CrossEntropyLoss()


def evaluate(model, loader):
    correct = 0
    for images, labels in loader:
        outputs = model(images)
        _, predicted = torch.max(outputs, 1)

        probs = torch.softmax(outputs, dim=1)


        correct += (predicted == labels).sum().item()
    return correct
"""

# What a rewrite of TRAIN might leave: the loss changed, nothing else edited.
TRAIN_REWRITTEN = TRAIN.replace("nn.CrossEntropyLoss()", "nn.BCEWithLogitsLoss()")


def kinds(constructs):
    return [(c.line, c.kind) for c in constructs]


def test_detector_lists_single_label_constructs_by_line_and_kind():
    scan = detector.scan("train.py", TRAIN)
    assert kinds(scan.constructs) == [
        (4, "dataset-class-index"),
        (5, "loss-ce"),
        (12, "pred-max"),
        (14, "softmax"),
        (17, "accuracy-compare"),
    ]
    assert scan.scopes[(None, 8)] == 18  # evaluate() spans lines 8-18


def test_detector_knows_spellings_and_leaves_multi_label_code_alone():
    source = """\
from torchmetrics import Accuracy
loss_fn = F.cross_entropy
smooth = nn.CrossEntropyLoss(label_smoothing=0.1)
train_acc = Accuracy(task="multiclass", num_classes=10)
map_metric = Accuracy(task="multilabel", num_labels=10)
checkpoint = ModelCheckpoint(monitor="val_acc", mode="max")
model = AutoModelForImageClassification.from_pretrained(name, num_labels=5)
multi = AutoModelForImageClassification.from_pretrained(name, num_labels=5, problem_type="multi_label_classification")
attn = scores.softmax(dim=-1)
print(classes[pred.item()])
nll_loss = -log_probs.gather(1, y)
total = nll_loss.mean()
"""
    assert kinds(detector.scan("m.py", source).constructs) == [
        (2, "loss-ce"),
        (3, "loss-ce-label-smoothing"),
        (4, "metric-torchmetrics"),
        (6, "monitor-accuracy"),
        (7, "hf-num-labels"),
        (10, "class-name-lookup"),
    ]


def test_a_written_findings_line_and_the_lines_its_message_names_are_mapped_onto_the_original():
    old = "a = 1\nb = 2\nc = 3\n"
    new = "import x\na = 1\nb = 2\nc = 3\n"
    _, new_to_old = harness.edits("t.py", old, new)
    finding = {"code": "ML100", "line": 4, "message": "compared (see ML020 at line 3)", "cell": None}
    [mark] = harness.marks_from_report({"findings": [finding]}, new_to_old, written=True)
    assert (mark.line, mark.message) == (3, "compared (see ML020 at line 2)")
    [mark] = harness.marks_from_report({"findings": [finding]}, new_to_old, written=False)
    assert (mark.line, mark.message) == (4, "compared (see ML020 at line 3)")


def test_coverage_counts_constructs_near_an_edit_or_a_finding_and_lists_lone_marks():
    scan = detector.scan("train.py", TRAIN)
    touched, new_to_old = harness.edits("train.py", TRAIN, TRAIN_REWRITTEN)
    assert touched == {(None, 5)}
    marks = harness.marks_from_report(
        {
            "changes": [{"code": "ML001", "line": 5, "end_line": 5, "message": "CE", "cell": None}],
            "findings": [
                {"code": "ML020", "line": 12, "message": "argmax", "cell": None},
                {"code": "ML999", "line": 9, "message": "nothing single-label near", "cell": None},
            ],
        },
        new_to_old,
        written=True,
    )
    covered, missed, unmatched = harness.match(scan.constructs, touched, marks, near=2, scopes=scan.scopes)
    # The dataset and the loss by the edit on line 5, the max and the softmax (two lines below
    # it) by the finding on line 12; the compare on line 17 has nothing near it.
    assert kinds(covered) == [(4, "dataset-class-index"), (5, "loss-ce"), (12, "pred-max"), (14, "softmax")]
    assert kinds(missed) == [(17, "accuracy-compare")]
    assert [m.code for m in unmatched] == ["ML999"]
    covered, missed, unmatched = harness.match(scan.constructs, touched, marks, near=0, scopes=scan.scopes)
    assert kinds(covered) == [(5, "loss-ce"), (12, "pred-max")] and len(missed) == 3
    assert [m.code for m in unmatched] == ["ML999"]


def test_a_finding_on_a_def_line_covers_the_whole_definition():
    scan = detector.scan("train.py", TRAIN)
    finding = harness.Mark("finding", "ML102", None, 8, 8, "accuracy helper")
    covered, missed, _ = harness.match(scan.constructs, set(), [finding], near=0, scopes=scan.scopes)
    assert kinds(covered) == [(12, "pred-max"), (14, "softmax"), (17, "accuracy-compare")]
    assert len(missed) == 2


def notebook(*cells: tuple[str, str]) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True),
                 **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                for kind, source in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        indent=1,
    )


def test_notebook_positions_are_cell_and_line_with_ipython_lines_masked():
    text = notebook(
        ("markdown", "# Train"),
        ("code", "!pip install timm\n%matplotlib inline\nimport torch.nn as nn\ncriterion = nn.CrossEntropyLoss()"),
        ("code", " pred = out.argmax(1)\n print('acc %.2f'\n       % (pred == y).float().mean())"),
        ("code", "%%bash\nls"),
    )
    scan = detector.scan("train.ipynb", text)
    assert scan.errors == []
    assert [(c.cell, c.line, c.kind) for c in scan.constructs] == [
        (2, 4, "loss-ce"),
        (3, 1, "pred-argmax"),
        (3, 3, "accuracy-compare"),
    ]
    rewritten = text.replace("nn.CrossEntropyLoss()", "nn.BCEWithLogitsLoss()")
    touched, _ = harness.edits("train.ipynb", text, rewritten)
    assert touched == {(2, 4)}


def test_checked_in_manifest_is_large_enough_and_split_by_the_documented_rule():
    everything = manifest.load()
    entries = [entry for entry in everything if entry.split not in manifest.HAND_WRITTEN]
    assert len(entries) >= 150 and len({e.repo for e in entries}) >= 60
    rule = manifest.split_rule(everything)
    assert all(entry.split == rule[entry.repo] for entry in entries)
    held = sum(entry.split == "heldout" for entry in entries)
    assert len(entries) / 3 <= held < len(entries) / 3 + max(map(lambda r: sum(e.repo == r for e in entries), rule))
    assert any(entry.kind == manifest.NEGATIVE for entry in entries)


@pytest.mark.parametrize("side", manifest.HAND_WRITTEN)
def test_checked_in_hand_written_split_is_large_enough_and_shares_no_repository(side):
    everything = manifest.load()
    fresh = manifest.select(everything, side)
    assert len(fresh) >= 60 and len({e.repo for e in fresh}) >= 20
    assert {e.repo for e in fresh}.isdisjoint(e.repo for e in everything if e.split != side)
    assert sum(e.kind == manifest.NEGATIVE for e in fresh) >= 5


@pytest.mark.parametrize(("first", "second"), [("tune", "fresh"), ("fresh", "fresh2"), ("fresh2", "heldout"), ("fresh2", "fresh3"), ("fresh3", "tune"), ("fresh3", "fresh4"), ("fresh4", "heldout"), ("fresh4", "fresh5"), ("fresh5", "tune"), ("fresh5", "fresh6"), ("fresh6", "heldout"), ("fresh6", "fresh7"), ("fresh7", "tune"), ("fresh7", "fresh8"), ("fresh8", "heldout"), ("fresh8", "fresh9"), ("fresh9", "tune"), ("fresh9", "fresh10"), ("fresh10", "heldout"), ("fresh10", "fresh11"), ("fresh11", "tune")])
def test_a_repository_on_a_hand_written_split_and_on_another_is_refused(tmp_path, first, second):
    bad = tmp_path / "manifest.tsv"
    commit = "0" * 40
    bad.write_text(
        "repo\tcommit\tpath\tkind\tsplit\n"
        f"owner/name\t{commit}\ttrain.py\tplain\t{first}\n"
        f"owner/name\t{commit}\teval.py\teval\t{second}\n"
    )
    side = first if first in manifest.HAND_WRITTEN else second
    with pytest.raises(manifest.ManifestError, match=rf"manifest.tsv:3: owner/name has rows on the {side} split and on another"):
        manifest.load(bad)


def test_a_bad_manifest_row_is_one_error_naming_file_and_line(tmp_path):
    bad = tmp_path / "manifest.tsv"
    bad.write_text("repo\tcommit\tpath\tkind\tsplit\nowner/name\tabc\ttrain.py\tplain\ttune\n")
    with pytest.raises(manifest.ManifestError, match=r"manifest.tsv:2: commit 'abc' is not 40 hex digits"):
        manifest.load(bad)


def test_checked_in_lock_has_a_blob_id_for_every_manifest_row():
    lock = manifest.load_lock()
    assert set(lock) == {(entry.repo, entry.path) for entry in manifest.load()}


HELLO_BLOB = "ce013625030ba8dba906f756967f9e9ca394464a"
"""``git hash-object`` of ``hello\\n``."""


def _mini_corpus(tmp_path: Path, lock_rows: str) -> tuple[Path, Path, Path]:
    commit = "0" * 40
    listed = tmp_path / "manifest.tsv"
    listed.write_text(
        "repo\tcommit\tpath\tkind\tsplit\n"
        f"owner/name\t{commit}\ttrain.py\tplain\ttune\n"
        f"owner/name\t{commit}\tsub/eval.py\teval\ttune\n"
    )
    lock = tmp_path / "manifest.lock.tsv"
    lock.write_text("repo\tpath\tblob\n" + lock_rows)
    return listed, lock, tmp_path / "files"


def test_verify_compares_every_file_with_its_locked_blob_id(tmp_path, capsys):
    assert manifest.blob_id(b"hello\n") == HELLO_BLOB
    listed, lock, files = _mini_corpus(
        tmp_path, f"owner/name\ttrain.py\t{HELLO_BLOB}\nowner/name\tsub/eval.py\t{HELLO_BLOB}\n"
    )
    (files / "owner+name" / "sub").mkdir(parents=True)
    (files / "owner+name" / "train.py").write_bytes(b"hello\n")
    (files / "owner+name" / "sub" / "eval.py").write_bytes(b"hello\n")
    verify = ["--verify", "--manifest", str(listed), "--lock", str(lock), "--dest", str(files)]
    assert fetch.main(verify) == 0
    assert "2 files: 2 as locked" in capsys.readouterr().out

    rewritten = b"hello, rewritten in place\n"
    (files / "owner+name" / "train.py").write_bytes(rewritten)
    (files / "owner+name" / "sub" / "eval.py").unlink()
    assert fetch.main(verify) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"changed: {files / 'owner+name' / 'train.py'}: its content is blob "
        f"{manifest.blob_id(rewritten)}, the lock has {HELLO_BLOB} (owner/name@000000000000:train.py)",
        "missing: owner/name@000000000000:sub/eval.py",
    ]
    assert "0 as locked" in captured.out and "1 missing, 1 changed" in captured.out
    assert (files / "owner+name" / "train.py").read_bytes() == rewritten  # --verify writes nothing


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to build a mirror")
def test_fetch_records_blob_ids_and_refuses_content_that_is_not_the_locked_one(tmp_path, capsys):
    work = tmp_path / "mirror" / "owner+name"
    (work / "sub").mkdir(parents=True)
    (work / "train.py").write_bytes(b"hello\n")
    (work / "sub" / "eval.py").write_bytes(b"print(1)\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "files"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    listed, lock, files = _mini_corpus(tmp_path, "")
    listed.write_text(listed.read_text().replace("0" * 40, commit))
    run = ["--manifest", str(listed), "--lock", str(lock), "--dest", str(files), "--mirror", str(tmp_path / "mirror")]
    assert fetch.main(run) == 0
    eval_blob = subprocess.run([*git, "rev-parse", f"{commit}:sub/eval.py"], check=True, capture_output=True, text=True).stdout.strip()
    assert manifest.load_lock(lock) == {("owner/name", "train.py"): HELLO_BLOB, ("owner/name", "sub/eval.py"): eval_blob}
    capsys.readouterr()

    (files / "owner+name" / "train.py").write_bytes(b"overwritten\n")
    assert fetch.main(run) == 0  # a changed file is fetched again at its commit
    assert (files / "owner+name" / "train.py").read_bytes() == b"hello\n"

    lock.write_text(lock.read_text().replace(HELLO_BLOB, "f" * 40))
    (files / "owner+name" / "train.py").unlink()
    assert fetch.main(run) == 1
    err = capsys.readouterr().err
    assert f"refused: owner/name@{commit[:12]}:train.py: fetched content is blob {HELLO_BLOB}, the lock has {'f' * 40}" in err
    assert not (files / "owner+name" / "train.py").exists()


def test_run_group_rewrites_a_scratch_copy_and_matches_positions_end_to_end(tmp_path):
    files = tmp_path / "files"
    entries = [
        manifest.Entry("someone/project", "0" * 40, "train.py", "plain", "tune"),
        manifest.Entry("someone/project", "0" * 40, "nb.ipynb", "notebook", "tune"),
    ]
    (files / "someone+project").mkdir(parents=True)
    (files / "someone+project" / "train.py").write_text(TRAIN)
    (files / "someone+project" / "nb.ipynb").write_text(
        notebook(("markdown", "# eval"), ("code", "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\nloss = criterion(z, y)"))
    )
    results = harness.run_group(entries, files, near=2, dump=tmp_path, command=harness.MIGRATE_ML)
    by_path = {r.path: r for r in results}
    assert (files / "someone+project" / "train.py").read_text() == TRAIN  # the original is never rewritten
    assert all(not r.error for r in results)
    assert (5, "loss-ce") in kinds(by_path["train.py"].covered)
    assert [(c.cell, c.line) for c in by_path["nb.ipynb"].covered] == [(2, 2)]
    assert "ML001" in (tmp_path / "someone+project.diff").read_text()
