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
