"""The LibCST codemod command, run the documented way: ``python -m libcst.tool codemod -x``."""

from __future__ import annotations

import subprocess
import sys

from tests.integrations.conftest import NEEDS_REVIEW, TRAIN


def test_libcst_tool_runs_the_migration(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "masked.py").write_text(NEEDS_REVIEW)
    result = subprocess.run(
        [sys.executable, "-m", "libcst.tool", "codemod", "-x", "migrate_ml.codemod.MigrateToMultiLabelCommand",
         "--no-format", "--threshold", "0.4", "."],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "train.py").read_text()
    assert "nn.BCEWithLogitsLoss()" in text and "criterion(out, labels.float())" in text
    assert "binary_cross_entropy_with_logits(out, labels.float())" in text
    assert (tmp_path / "masked.py").read_text() == NEEDS_REVIEW
    assert "masked.py:3:10: ML001" in result.stderr  # findings become codemod warnings
