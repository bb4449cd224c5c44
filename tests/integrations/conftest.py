"""Shared inputs for the integration tests: a small training script and a notebook."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

TRAIN = textwrap.dedent(
    """\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    criterion = nn.CrossEntropyLoss()


    def step(model, images, labels):
        out = model(images)
        loss = criterion(out, labels)
        aux = F.cross_entropy(out, labels)
        return loss + aux
    """
)

NEEDS_REVIEW = textwrap.dedent(
    """\
    import torch.nn as nn

    masked = nn.CrossEntropyLoss(ignore_index=-1)
    """
)


@pytest.fixture
def train_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.py"
    path.write_text(TRAIN)
    return path


def make_notebook(path: Path) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    notebook = new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        new_markdown_cell("# Training"),
        new_code_cell("%matplotlib inline\nimport torch\nimport torch.nn as nn"),
        new_code_cell("!nvidia-smi\ncriterion = nn.CrossEntropyLoss()", execution_count=2),
        new_code_cell("%%bash\necho untouched"),
        new_code_cell(
            "for images, labels in loader:\n    out = model(images)\n    loss = criterion(out, labels)\n"
            "    files = !ls\n    loss.backward()",
            execution_count=3,
            outputs=[new_output("stream", name="stdout", text="loss 2.3\n")],
        ),
    ]
    notebook.cells[4].metadata["tags"] = ["train"]
    nbformat.write(notebook, str(path))
    return path


@pytest.fixture
def notebook_file(tmp_path: Path) -> Path:
    return make_notebook(tmp_path / "train.ipynb")
