"""``rewrite --diff`` and ``rewrite --check`` preview exactly what ``rewrite`` writes and reports."""

from __future__ import annotations

import re
import shutil

import pytest

# A trainer's method applies timm's Mixup it builds (ML104 inside a class body: its syntax-tree
# pre-check once left it out of the first pass only, so the written file had it and the preview did not).
MIXUP_IN_A_METHOD = """\
import torch
from timm.data import Mixup


class Trainer:
    def __init__(self, model, criterion, num_classes):
        self.model = model
        self.criterion = criterion
        self.mixup_fn = Mixup(mixup_alpha=0.4, num_classes=num_classes)

    def train_epoch(self, loader):
        correct = 0
        for images, labels in loader:
            images, targets = self.mixup_fn(images, labels)
            outputs = self.model(images)
            loss = self.criterion(outputs, targets)
            _, predicted = outputs.max(1)
            correct += predicted.eq(labels).sum().item()
        return correct
"""

# Fixes that move lines, and findings before and after them.
EDITS_AND_FINDINGS = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


def train(model, loader, optimizer):
    criterion = nn.CrossEntropyLoss()
    correct = 0
    for x, y in loader:
        out = model(x)
        loss = criterion(out, y)
        probs = F.softmax(out, dim=1)
        pred = probs.argmax(1)
        correct += (pred == y).sum().item()
        top = torch.topk(probs, 5)
    return correct, top
"""

# The safety net reports on the rewritten text (a sigmoid the rewrite puts before BCE).
SOFTMAX_BEFORE_THE_LOSS = """\
import torch
import torch.nn as nn

criterion = nn.CrossEntropyLoss()


def evaluate(model, image, label):
    pred = torch.softmax(model(image), dim=1)
    loss = criterion(pred, label)
    pred_class = pred.argmax(dim=1).item()
    return loss, pred_class
"""

FINDINGS_ONLY = """\
import torch.nn as nn

criterion = nn.CrossEntropyLoss(ignore_index=-1)
"""

_FINDING = re.compile(r"^(?P<path>\S+?):(?P<line>\d+):(?P<column>\d+): (?P<code>ML\d+) (?P<message>.*)$")
_SUMMARY = re.compile(r"^(?:Rewrote|Would rewrite) (.*)$")


def _report(text: str) -> tuple[list[tuple[str, str, str]], list[str], list[tuple[str, int]]]:
    """The findings (path, code, message with its line numbers left out), the change summaries,
    and the findings' positions."""
    findings, summaries, positions = [], [], []
    for line in text.splitlines():
        if match := _FINDING.match(line):
            message = re.sub(r"\bline \d+\b", "line N", match["message"])
            findings.append((match["path"], match["code"], message))
            positions.append((match["path"], int(match["line"])))
        elif match := _SUMMARY.match(line):
            summaries.append(match[1])
    return sorted(findings), summaries, positions


@pytest.mark.parametrize(
    "files",
    [
        {"utils__trainer.py": MIXUP_IN_A_METHOD},
        {"train.py": EDITS_AND_FINDINGS},
        {"evaluate.py": SOFTMAX_BEFORE_THE_LOSS},
        {"losses.py": FINDINGS_ONLY},
        {"utils__trainer.py": MIXUP_IN_A_METHOD, "train.py": EDITS_AND_FINDINGS, "evaluate.py": SOFTMAX_BEFORE_THE_LOSS},
    ],
    ids=["mixup-in-a-method", "edits-and-findings", "safety-net-after-the-rewrite", "findings-only", "together"],
)
@pytest.mark.parametrize("select", [(), ("--select", "ML104")], ids=["all-rules", "ML104"])
def test_diff_and_check_report_what_the_write_reports(project, run_cli, files, select):
    root = project(**files)
    original = {path: path.read_text() for path in root.rglob("*.py")}
    paths = sorted(name.replace("__", "/") for name in files)
    _, check_out, _ = run_cli("rewrite", "--check", "-j1", *select, *paths)
    _, diff_out, diff_err = run_cli("rewrite", "--diff", "-j1", *select, *paths)
    _, write_out, _ = run_cli("rewrite", "-j1", *select, *paths)
    written = {path: path.read_text() for path in root.rglob("*.py")}

    check, diff, write = _report(check_out), _report(diff_err), _report(write_out)
    assert check == diff  # the same positions too: both are in the original text
    assert check[0] == write[0] and check[1] == write[1]
    if select:
        # timm's Mixup where it is built and where it is applied
        assert [code for _, code, _ in write[0]] == ["ML104"] * 2 * ("utils__trainer.py" in files)
    # the preview's positions are the original's lines of what the write reports
    for path, line in check[2]:
        assert 1 <= line <= len(original[root / path].splitlines())
    # and the edits previewed are those written
    for path, text in written.items():
        if text != original[path]:
            assert f"+++ b/{path.relative_to(root).as_posix()}" in diff_out


def test_the_mixup_a_method_applies_is_reported_on_its_line_in_every_mode(project, run_cli):
    root = project(**{"utils__trainer.py": MIXUP_IN_A_METHOD})
    _, check_out, _ = run_cli("rewrite", "--check", "--select", "ML104", "utils/trainer.py")
    assert check_out.splitlines()[0].startswith("utils/trainer.py:9:25: ML104 timm Mixup one-hot encodes")
    shutil.copy(root / "utils" / "trainer.py", root / "copy.py")
    _, write_out, _ = run_cli("rewrite", "copy.py")
    written = (root / "copy.py").read_text().splitlines()
    built, applied = [int(m["line"]) for m in map(_FINDING.match, write_out.splitlines()) if m and m["code"] == "ML104"]
    assert "Mixup(mixup_alpha=0.4, num_classes=num_classes)" in written[built - 1]
    assert "self.mixup_fn(images, labels)" in written[applied - 1]
