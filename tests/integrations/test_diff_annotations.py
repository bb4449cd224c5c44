"""``--diff`` hunk headers name the rules behind each hunk and still apply."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FAR_APART = textwrap.dedent(
    """\
    import torch.nn as nn
    import torch.nn.functional as F

    criterion = nn.CrossEntropyLoss()
    a = 1
    b = 2
    c = 3
    d = 4
    e = 5
    f = 6
    g = 7
    h = 8


    def other(out, labels):
        return F.cross_entropy(out, labels)
    """
)


def _diff(cwd, name):
    return subprocess.run(
        [sys.executable, "-m", "migrate_ml", "rewrite", "--diff", name], cwd=cwd, capture_output=True, text=True
    )


def test_each_hunk_names_its_rule(tmp_path):
    (tmp_path / "train.py").write_text(FAR_APART)
    result = _diff(tmp_path, "train.py")
    assert result.returncode == 1
    headers = [line for line in result.stdout.splitlines() if line.startswith("@@")]
    assert headers == ["@@ -1,7 +1,7 @@ ML001 cross-entropy-loss", "@@ -13,4 +13,4 @@ ML002 functional-cross-entropy"]


def test_annotated_diff_applies_with_git_and_patch(tmp_path):
    (tmp_path / "train.py").write_text(FAR_APART)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    diff = _diff(tmp_path, "train.py").stdout
    subprocess.run(["git", "apply", "--check", "-"], cwd=tmp_path, input=diff, text=True, check=True)
    subprocess.run(["patch", "-p1", "--dry-run"], cwd=tmp_path, input=diff, text=True, check=True, capture_output=True)
    subprocess.run(["git", "apply", "-"], cwd=tmp_path, input=diff, text=True, check=True)
    assert _diff(tmp_path, "train.py").returncode == 0  # applied: nothing left to do


CAST_ABOVE_CRITERION = textwrap.dedent(
    """\
    import torch.nn as nn


    def compute_loss(criterion, outputs, targets):
        return criterion(outputs, targets)


    def train_step(model, batch, criterion):
        x, y = batch
        return compute_loss(criterion, model(x), y)


    def train_epoch(model, loader, criterion):
        for batch in loader:
            train_step(model, batch, criterion).backward()


    def main(model, loader):
        criterion = nn.CrossEntropyLoss()
        train_epoch(model, loader, criterion)
    """
)


def test_a_hunk_above_the_rules_own_line_names_it_too(tmp_path):
    (tmp_path / "train.py").write_text(CAST_ABOVE_CRITERION)
    headers = [line for line in _diff(tmp_path, "train.py").stdout.splitlines() if line.startswith("@@")]
    assert headers == ["@@ -2,7 +2,7 @@ ML001 cross-entropy-loss", "@@ -16,5 +16,5 @@ ML001 cross-entropy-loss"]
