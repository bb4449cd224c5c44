"""The static pass FAILs every construct still single-label, at its line, with the rewrite's safety
net (ML100) included; it runs the same with and without --static-only."""

from __future__ import annotations

import textwrap

import pytest

from verify_helpers import run_verify

SOURCES = {
    "per_element.py": """\
        import torch


        def evaluate(model, loader):
            accs = []
            for x, y in loader:
                preds = torch.sigmoid(model(x)) > 0.5
                accs.append((preds == y.bool()).float().mean())
            return sum(accs) / len(accs)
        """,
    "argmax_compared.py": """\
        def evaluate(model, loader):
            correct = 0
            for x, y in loader:
                pred = model(x).argmax(dim=1)  # migrate-ml: ignore[ML020]
                correct += (pred == y).sum().item()
            return correct
        """,
    "single_label_loss.py": """\
        import torch.nn as nn


        def train(model, loader, optimizer):
            criterion = nn.CrossEntropyLoss()
            for x, y in loader:
                criterion(model(x), y.float()).backward()
        """,
    "exact_match_helper.py": """\
        import torch


        def accuracy(output, target, topk=(1,)):
            correct = ((torch.sigmoid(output) > 0.5) == target.bool()).all(dim=1)
            return [correct.float().mean() * 100 for _ in topk]


        def validate(model, loader):
            for x, y in loader:
                acc1, = accuracy(model(x), y, topk=(1,))
            return acc1
        """,
    "topk_helper.py": """\
        def accuracy(output, target, topk=(1,)):
            _, pred = output.topk(max(topk), 1, True, True)
            return [pred.t().eq(target.view(1, -1)).float().sum() for _ in topk]
        """,
    "clean.py": """\
        import torch


        def evaluate(model, loader, threshold=0.5):
            hits = 0
            for x, y in loader:
                hits += ((torch.sigmoid(model(x)) > threshold) == y.bool()).all(dim=1).sum().item()
            return hits
        """,
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("static")
    for name, text in SOURCES.items():
        (folder / name).write_text(textwrap.dedent(text))
    return run_verify(str(folder), "--static-only")


def _static(report, name):
    return [(c["line"], c["code"], c["status"]) for c in report[1]["checks"]
            if c["phase"] == "static" and c["file"].endswith(name)]


@pytest.mark.parametrize(("name", "line", "codes"), [
    ("per_element.py", 8, {"ML100"}),
    ("argmax_compared.py", 5, {"ML021", "ML100"}),
    ("single_label_loss.py", 5, {"ML001"}),
])
def test_still_single_label_constructs_fail_at_their_line(report, name, line, codes):
    rows = _static(report, name)
    assert rows and all(status == "FAIL" for _, _, status in rows)
    assert any(row_line == line and code in codes for row_line, code, _ in rows), rows


def test_per_element_accuracy_reason_comes_from_the_safety_net(report):
    row = next(c for c in report[1]["checks"] if c["file"].endswith("per_element.py") and c["code"] == "ML100")
    assert row["reason"].startswith("still single-label (per-element-accuracy)")
    assert "all(dim=1)" in row["hint"]


def test_clean_file_passes(report):
    assert _static(report, "clean.py") == [(None, None, "PASS")]


def test_helper_named_top_k_accuracy_whose_body_is_exact_match_passes(report):
    """The pytorch/examples signature kept over an exact-match body: no ML102 on the helper or its call."""
    assert _static(report, "exact_match_helper.py") == [(None, None, "PASS")]
    assert (1, "ML102", "FAIL") in _static(report, "topk_helper.py")


@pytest.mark.parametrize(("name", "hint"), [
    ("epochs", "--bind epochs=1"),
    ("img_path", "--bind img_path='path/to/img_path'"),
    ("use_ema", "--bind use_ema=False"),
    ("mystery", "--bind mystery=@ROLE"),
])
def test_bind_hints_fit_the_parameter(name, hint):
    from migrate_ml.verify import bind_example

    assert bind_example(name).startswith(hint)
    assert "@loader" not in bind_example(name)


def test_unbound_parameters_of_classes_and_functions_are_named(tmp_path):
    (tmp_path / "unbound.py").write_text(textwrap.dedent("""\
        import torch.nn.functional as F


        def train(model, loader, epochs):
            for x, y in loader:
                F.binary_cross_entropy_with_logits(model(x), y.float()).backward()


        class Trainer:
            def __init__(self, model, mystery):
                self.model = model

            def train_epoch(self, loader, total_steps):
                for x, y in loader:
                    F.binary_cross_entropy_with_logits(self.model(x), y.float()).backward()
        """))
    _, report = run_verify(str(tmp_path), "--static-only")
    calls = [(c["line"], c["reason"], c["hint"].split(";")[0]) for c in report["checks"] if c["check"] == "call"]
    assert calls == [
        (4, "cannot call train(): no sample value for parameter(s) epochs", "bind them, e.g. --bind epochs=1"),
        (10, "cannot call Trainer(): no sample value for parameter(s) mystery",
         "bind them, e.g. --bind mystery=@ROLE (model, loader, optimizer, criterion, …: docs/verify.md) or --bind mystery=None"),
        (13, "cannot call Trainer.train_epoch(): no sample value for parameter(s) total_steps",
         "bind them, e.g. --bind total_steps=1"),
    ]


def test_piped_text_is_one_line_per_check(tmp_path):
    import re
    import subprocess
    import sys

    from verify_helpers import REPO

    folder = tmp_path / ("a_rather_long_folder_name_that_would_wrap_in_a_table" * 2)
    folder.mkdir()
    (folder / "per_element.py").write_text(textwrap.dedent(SOURCES["per_element.py"]))
    completed = subprocess.run([sys.executable, "-m", "migrate_ml", "verify", "--static-only", str(folder)],
                               capture_output=True, text=True, cwd=REPO, env={"PATH": "", "COLUMNS": "80"},
                               check=False)
    lines = completed.stdout.splitlines()
    assert lines[0] == (f"FAIL {folder}/per_element.py:8 static: ML100: still single-label (per-element-accuracy): "
                        "a thresholded multi-label prediction is compared element by element and averaged over all "
                        "B x C entries (label-wise accuracy, dominated by negatives; a count over B images exceeds 100 %)")
    assert lines[1].startswith("    fix: reduce per image first")
    assert re.match(r"SKIP \S+per_element.py:4 evaluate\(\) dynamic: not run \(--static-only\)$", lines[2])
    assert lines[-1].startswith("1 file, 2 checks: 0 passed, 1 failed, 1 skipped")
    assert not any(ch in completed.stdout for ch in "┃│┏")
