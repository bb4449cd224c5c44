"""Notebooks: rewritten cell by cell, everything but the edited sources kept as it was."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pytest

from tests.integrations.conftest import make_notebook


def _cells(path):
    return json.loads(path.read_text())["cells"]


def test_rewrite_changes_only_code_sources_and_stays_valid(run_cli, notebook_file):
    before = json.loads(notebook_file.read_text())
    code, out, _ = run_cli("rewrite", str(notebook_file))
    assert code == 0, out
    after = json.loads(notebook_file.read_text())
    nbformat.validate(nbformat.read(str(notebook_file), as_version=nbformat.NO_CONVERT))
    assert (after["nbformat"], after["nbformat_minor"], after["metadata"]) == (
        before["nbformat"], before["nbformat_minor"], before["metadata"]
    )
    for old, new in zip(before["cells"], after["cells"]):
        assert {k: v for k, v in old.items() if k != "source"} == {k: v for k, v in new.items() if k != "source"}
    sources = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in after["cells"]]
    assert sources[2] == "!nvidia-smi\ncriterion = nn.BCEWithLogitsLoss()"
    assert sources[4] == (
        "for images, labels in loader:\n    out = model(images)\n    loss = criterion(out, labels.float())\n"
        "    files = !ls\n    loss.backward()"
    )
    assert sources[1] == "%matplotlib inline\nimport torch\nimport torch.nn as nn"
    assert sources[3] == "%%bash\necho untouched"


def test_diff_is_minimal_and_only_touches_edited_lines(run_cli, notebook_file):
    before = notebook_file.read_text().splitlines()
    run_cli("rewrite", str(notebook_file))
    after = notebook_file.read_text().splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(changed) == 2


def test_second_run_is_a_no_op(run_cli, notebook_file):
    run_cli("rewrite", str(notebook_file))
    once = notebook_file.read_bytes()
    code, _, _ = run_cli("rewrite", "--check", str(notebook_file))
    assert code == 0
    assert notebook_file.read_bytes() == once


def test_check_and_diff_name_cells_and_write_nothing(run_cli, notebook_file, tmp_path):
    original = notebook_file.read_bytes()
    code, out, _ = run_cli("rewrite", "--check", str(notebook_file))
    assert code == 1 and "Would rewrite" in out
    code, out, err = run_cli("rewrite", "--diff", str(notebook_file))
    assert code == 1
    assert notebook_file.read_bytes() == original
    headers = [line for line in out.splitlines() if line.startswith("@@")]
    assert len(headers) == 2 and all(line.endswith("@@ ML001 cross-entropy-loss") for line in headers)


def test_diff_applies_with_git(notebook_file, tmp_path):
    repo = notebook_file.parent
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    diff = subprocess.run(
        [sys.executable, "-m", "migrate_ml", "rewrite", "--diff", notebook_file.name],
        cwd=repo, capture_output=True, text=True,
    )
    assert diff.returncode == 1
    subprocess.run(["git", "apply", "-"], cwd=repo, input=diff.stdout, text=True, check=True)
    nbformat.validate(nbformat.read(str(notebook_file), as_version=nbformat.NO_CONVERT))
    assert "BCEWithLogitsLoss" in notebook_file.read_text()


def test_findings_point_at_cell_and_line(run_cli, tmp_path):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    notebook = new_notebook()
    notebook.cells = [new_markdown_cell("x"), new_code_cell("import torch.nn as nn\n\nmasked = nn.CrossEntropyLoss(ignore_index=-1)")]
    path = tmp_path / "review.ipynb"
    nbformat.write(notebook, str(path))
    code, out, _ = run_cli("rewrite", "--check", str(path))
    assert code == 1
    assert f"{path}:cell 2:3:10: ML001" in out


def test_folders_include_notebooks(run_cli, tmp_path):
    (tmp_path / "nb").mkdir()
    make_notebook(tmp_path / "nb" / "train.ipynb")
    code, out, _ = run_cli("rewrite", "--check", str(tmp_path / "nb"))
    assert code == 1 and "train.ipynb" in out


def test_broken_cell_is_reported_by_cell_and_nothing_is_written(run_cli, tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook()
    notebook.cells = [new_code_cell("import torch.nn as nn"), new_code_cell("criterion = nn.CrossEntropyLoss(\nx = 1")]
    path = tmp_path / "broken.ipynb"
    nbformat.write(notebook, str(path))
    original = path.read_bytes()
    code, out, err = run_cli("rewrite", str(path))
    assert code == 2
    assert f"{path}:cell 2:" in out + err
    assert path.read_bytes() == original


def test_invalid_json_is_a_positioned_error(run_cli, tmp_path):
    path = tmp_path / "bad.ipynb"
    path.write_text('{"cells": [\n  CrossEntropyLoss\n')
    code, out, err = run_cli("rewrite", str(path))
    assert code == 2
    assert f"{path}:2:3: error: not a notebook: invalid JSON" in out + err


@pytest.mark.parametrize("source_as_string", [True, False])
def test_source_stored_as_string_or_list_keeps_its_form(run_cli, tmp_path, source_as_string):
    cell_source = "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n"
    raw = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "abc", "metadata": {}, "outputs": [],
                   "source": cell_source if source_as_string else cell_source.splitlines(keepends=True)}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path = tmp_path / "forms.ipynb"
    path.write_text(json.dumps(raw, indent=2) + "\n")
    run_cli("rewrite", str(path))
    source = _cells(path)[0]["source"]
    assert isinstance(source, str) == source_as_string
    assert "BCEWithLogitsLoss" in "".join(source)
    assert path.read_text().startswith('{\n  "cells"')  # the file's indentation is kept


def _raw_notebook(cells: list[dict]) -> dict:
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _code(source, **fields) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": f"c{abs(hash(str(source))) % 10**6}",
            "metadata": {}, "outputs": [], "source": source, **fields}


def test_untouched_bytes_stay_identical(run_cli, tmp_path):
    """CRLF, BOM, \\uXXXX escapes in outputs, 1.10 and the indentation are the user's, not ours."""
    output = {"name": "stdout", "output_type": "stream", "text": ["caf\u00e9 \u2713 loss 2.3\n"]}
    raw = _raw_notebook([
        _code(["import torch.nn as nn\n", "criterion = nn.CrossEntropyLoss()\n", "x = 1"], outputs=[output]),
        _code(["print('untouched')"], metadata={"scale": 1.5}),
    ])
    text = json.dumps(raw, indent=3).replace("1.5", "1.10").replace("\n", "\r\n") + "\r\n"
    path = tmp_path / "styled.ipynb"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    before = path.read_bytes()
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    after = path.read_bytes()
    expected = before.replace(b"nn.CrossEntropyLoss()", b"nn.BCEWithLogitsLoss()")
    assert after == expected
    assert b"\\u00e9 \\u2713" in after and b"1.10" in after


def test_only_edited_lines_of_a_list_source_are_spelled_afresh(run_cli, tmp_path):
    raw = _raw_notebook([_code(["import torch.nn as nn\n", "# caf\u00e9\n", "criterion = nn.CrossEntropyLoss()\n"])])
    path = tmp_path / "mixed.ipynb"
    text = json.dumps(raw, indent=1, ensure_ascii=False).replace('"# caf\u00e9\\n"', '"# caf\\u00e9\\n"')
    path.write_text(text)
    run_cli("rewrite", str(path))
    assert path.read_text() == text.replace("CrossEntropyLoss", "BCEWithLogitsLoss")


@pytest.mark.parametrize(
    "quoted",
    [
        "pass  # migrate-ml-magic:0\n",
        "# migrate-ml-cell:1\n",
        "pass  # migrate-ml-cell:1\n",
        "pass  # migrate-ml-cell-0:1\n",
        "import migrate_ml_magic_0_0\n",
    ],
)
def test_cells_quoting_the_internal_markers_are_not_corrupted(run_cli, tmp_path, quoted):
    cells = [
        _code(["%matplotlib inline\n", "import torch.nn as nn"]),
        _code([quoted, "criterion = nn.CrossEntropyLoss()\n", "x = 2"]),
        _code(["!ls\n", quoted, "y = 3"]),
    ]
    path = tmp_path / "quotes.ipynb"
    path.write_text(json.dumps(_raw_notebook(cells), indent=1) + "\n")
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    sources = ["".join(cell["source"]) for cell in _cells(path)]
    assert sources == [
        "%matplotlib inline\nimport torch.nn as nn",
        f"{quoted}criterion = nn.BCEWithLogitsLoss()\nx = 2",
        f"!ls\n{quoted}y = 3",
    ]


def test_threshold_goes_after_the_magics_and_imports_of_its_cell(run_cli, tmp_path):
    cells = [
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# Training"]},
        _code(["!pip install timm\n", "%matplotlib inline\n", "import torch\n", "import torch.nn as nn"]),
        _code([
            "criterion = nn.CrossEntropyLoss()\n", "for inputs, labels in loader:\n",
            "    scores = model(inputs)\n", "    loss = criterion(scores, labels)\n",
            "    _, preds = torch.max(scores, 1)\n", "    corrects += torch.sum(preds == labels.data)\n",
        ]),
    ]
    path = tmp_path / "magics.ipynb"
    path.write_text(json.dumps(_raw_notebook(cells), indent=1) + "\n")
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    first = "".join(_cells(path)[1]["source"])
    assert first.startswith("!pip install timm\n%matplotlib inline\nimport torch\nimport torch.nn as nn\n\nTHRESHOLD = 0.5")
    assert "THRESHOLD" in "".join(_cells(path)[2]["source"])


def test_threshold_goes_to_the_last_import_before_its_use_not_a_setup_cell(run_cli, tmp_path):
    """A Colab setup cell that imports and then asks for a restart is not run again: the constant
    goes after the last import before its first use (the imports' cell), not after the leading imports."""
    cells = [
        _code(["!pip install Pillow==5.3.0\n", "import PIL.Image\n", "# Now, restart the Runtime"]),
        _code(["!ls data\n", "import torch\n", "import torch.nn as nn\n", "data_dir = 'data/'"]),
        _code(["!nvidia-smi"]),
        _code([
            "criterion = nn.CrossEntropyLoss()\n", "for inputs, labels in loader:\n",
            "    scores = model(inputs)\n", "    loss = criterion(scores, labels)\n",
            "    _, preds = torch.max(scores, 1)\n",
        ]),
        _code(["import json\n", "names = json.load(open('names.json'))"]),
    ]
    path = tmp_path / "colab.ipynb"
    path.write_text(json.dumps(_raw_notebook(cells), indent=1) + "\n")
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    sources = ["".join(cell["source"]) for cell in _cells(path)]
    assert sources[0] == "!pip install Pillow==5.3.0\nimport PIL.Image\n# Now, restart the Runtime"
    assert sources[1] == (
        "!ls data\nimport torch\nimport torch.nn as nn\n\nTHRESHOLD = 0.5  # multi-label decision threshold on"
        " sigmoid outputs; tune per class on validation data\n\ndata_dir = 'data/'"
    )
    assert sources[2] == "!nvidia-smi" and sources[4] == "import json\nnames = json.load(open('names.json'))"
    assert "> THRESHOLD" in sources[3]
    code, out, err = run_cli("rewrite", "--check", str(path))
    assert code == 0, out + err


@pytest.mark.parametrize(
    "source, kind",
    [(5, "a number"), (["x = 1\n", 7], "a list holding a non-string"), ({"a": 1}, "an object"), (None, "a null")],
)
def test_a_malformed_cell_source_is_an_input_error(run_cli, tmp_path, source, kind):
    cells = [_code("import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n"), _code(source)]
    path = tmp_path / "odd.ipynb"
    path.write_text(json.dumps(_raw_notebook(cells), indent=1) + "\n")
    original = path.read_bytes()
    (tmp_path / "train.py").write_text("import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n")
    code, out, err = run_cli("rewrite", str(tmp_path))
    assert code == 2
    errors = [line for line in (out + err).splitlines() if "error" in line]
    assert len(errors) == 1
    where, message = errors[0].split(": error: ")
    assert message == f"malformed notebook: the source of cell 2 is {kind}, not text"
    name, line, column = where.rsplit(":", 2)
    assert name == str(path)
    assert path.read_text().splitlines()[int(line) - 1][int(column) - 1 :].startswith(json.dumps(source)[:1])
    assert path.read_bytes() == original
    assert "BCEWithLogitsLoss" in (tmp_path / "train.py").read_text()


WITHOUT_NBFORMAT = """
import sys
sys.modules["nbformat"] = None  # `import nbformat` now raises ImportError, as in an install without the extra
from migrate_ml.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_nbformat_a_notebook_gives_the_install_hint(notebook_file):
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_NBFORMAT, "rewrite", str(notebook_file)], capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 2
    output = done.stdout + done.stderr
    assert f"{notebook_file}: error: rewriting notebooks needs the nbformat package: pip install 'migrate-ml[notebooks]'" in output
    assert "internal error" not in output and "Traceback" not in output


def test_cell_magics_that_run_python_are_migrated_and_others_left_alone(run_cli, tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook()
    notebook.cells = [
        new_code_cell("import torch\nimport torch.nn as nn\ncriterion = nn.CrossEntropyLoss()"),
        new_code_cell("%%time\nfor x, y in loader:\n    out = model(x)\n    loss = criterion(out, y)\n"
                      "    correct = (out.argmax(dim=1) == y).sum().item()"),
        new_code_cell("%%writefile losses.py\nimport torch.nn as nn\n\nLOSS = nn.CrossEntropyLoss()"),
        new_code_cell("%%writefile data.csv\nimage,label\na.png,cat"),
        new_code_cell("%%bash\npython train.py --loss CrossEntropyLoss"),
    ]
    path = tmp_path / "magics.ipynb"
    nbformat.write(notebook, str(path))
    code, out, _ = run_cli("rewrite", str(path))
    assert code == 0, out
    sources = ["".join(c["source"]) for c in _cells(path)]
    assert sources[1].startswith("%%time\n")  # the magic stays the cell's first line
    assert "loss = criterion(out, y.float())" in sources[1]
    assert "(torch.sigmoid(out) > THRESHOLD) == y.bool()).all(dim=1)" in sources[1]
    assert sources[3:] == ["%%writefile data.csv\nimage,label\na.png,cat", "%%bash\npython train.py --loss CrossEntropyLoss"]
    assert sources[2] == "%%writefile losses.py\nimport torch.nn as nn\n\nLOSS = nn.BCEWithLogitsLoss()"


def test_a_cell_indented_as_a_whole_is_migrated_like_ipython_runs_it(run_cli, tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook()
    notebook.cells = [
        new_code_cell("import torch.nn as nn"),
        new_code_cell(" criterion = nn.CrossEntropyLoss()\n for images, labels in loader:\n     loss = criterion(model(images), labels)\n"),
    ]
    path = tmp_path / "indented.ipynb"
    nbformat.write(notebook, str(path))
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    assert "".join(_cells(path)[1]["source"]) == (
        " criterion = nn.BCEWithLogitsLoss()\n for images, labels in loader:\n"
        "     loss = criterion(model(images), labels.float())\n"
    )
    code, _, _ = run_cli("rewrite", "--check", str(path))
    assert code == 0


def test_a_cell_whose_later_lines_lack_the_first_lines_indent_keeps_them_as_they_are(run_cli, tmp_path):
    """IPython strips the first line's indent only from the lines that start with it: `f()` at
    column 0 after an indented `def` runs, and the rewrite keeps every byte but its edit."""
    cells = [
        _code("import torch.nn as nn\n"),
        _code(" def step(model, images, labels):\n     criterion = nn.CrossEntropyLoss()  # per image\n"
              "     return criterion(model(images), labels)\n\nloss = step(model, images, labels)\n"
              "print(loss)"),
    ]
    path = tmp_path / "leading_indent.ipynb"
    path.write_text(json.dumps(_raw_notebook(cells), indent=1) + "\n")
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    assert "".join(_cells(path)[1]["source"]) == (
        " def step(model, images, labels):\n     criterion = nn.BCEWithLogitsLoss()  # per image\n"
        "     return criterion(model(images), labels.float())\n\nloss = step(model, images, labels)\n"
        "print(loss)"
    )
    code, _, _ = run_cli("rewrite", "--check", str(path))
    assert code == 0


def test_automagic_lines_without_percent_are_kept_not_parsed(run_cli, tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook()
    notebook.cells = [
        new_code_cell("pip install -q timm\ncd data"),
        new_code_cell("import torch.nn as nn\ntime = 3\ncriterion = nn.CrossEntropyLoss()"),
        new_code_cell("ls -l checkpoints/\nloss = criterion(model(x), y)"),
    ]
    path = tmp_path / "automagic.ipynb"
    nbformat.write(notebook, str(path))
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    assert "syntax error" not in out + err
    sources = ["".join(c["source"]) for c in _cells(path)]
    assert sources[0] == "pip install -q timm\ncd data"
    assert sources[1] == "import torch.nn as nn\ntime = 3\ncriterion = nn.BCEWithLogitsLoss()"
    assert sources[2] == "ls -l checkpoints/\nloss = criterion(model(x), y.float())"


def test_help_lines_before_or_after_the_name_are_kept_not_parsed(run_cli, tmp_path):
    """IPython's ``?name`` help (as course notebooks use it) must not make the whole notebook a
    syntax error: the rest of it is still migrated."""
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook()
    notebook.cells = [
        new_code_cell("import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()"),
        new_code_cell("?nn.functional.conv2d"),
        new_code_cell("??criterion\nnn.Linear?"),
        new_code_cell("loss = criterion(model(x), y)"),
    ]
    path = tmp_path / "help.ipynb"
    nbformat.write(notebook, str(path))
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    assert "syntax error" not in out + err
    sources = ["".join(c["source"]) for c in _cells(path)]
    assert sources[1:3] == ["?nn.functional.conv2d", "??criterion\nnn.Linear?"]
    assert sources[0].endswith("nn.BCEWithLogitsLoss()")
    assert sources[3] == "loss = criterion(model(x), y.float())"


def test_a_global_criterion_no_cell_uses_is_not_reported_as_unfollowed(run_cli, tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook()
    notebook.cells = [
        new_code_cell("import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()"),
        new_code_cell(
            "def train(model, loader):\n    criterion = nn.CrossEntropyLoss()\n"
            "    for images, labels in loader:\n        criterion(model(images), labels).backward()"
        ),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, str(path))
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    assert "could be followed" not in out + err
    sources = ["".join(c["source"]) for c in _cells(path)]
    assert sources[0].endswith("criterion = nn.BCEWithLogitsLoss()")
    assert "criterion(model(images), labels.float())" in sources[1]


def test_a_criterion_passed_to_a_loop_redefined_in_a_later_cell_is_followed(run_cli, tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    loop = (
        "def training_loop(n_epochs, model, loss_fn, train_loader):\n"
        "    for epoch in range(n_epochs):\n"
        "        for imgs, labels in train_loader:\n"
        "            loss_fn(model(imgs), labels).backward()\n"
    )
    run = "training_loop(n_epochs=2, model=model, loss_fn=loss_fn, train_loader=[])"
    notebook = new_notebook()
    notebook.cells = [
        new_code_cell("import torch.nn as nn"),
        new_code_cell(loop),
        new_code_cell("model = nn.Linear(8, 4)\nloss_fn = nn.CrossEntropyLoss()"),
        new_code_cell(run),
        new_code_cell(loop + "    print('done')"),
        new_code_cell(run),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, str(path))
    code, out, err = run_cli("rewrite", str(path))
    assert code == 0, out + err
    assert "could be followed" not in out + err
    sources = ["".join(c["source"]) for c in _cells(path)]
    assert sources[2].endswith("loss_fn = nn.BCEWithLogitsLoss()")
    assert "loss_fn(model(imgs), labels.float())" in sources[1]
    assert "loss_fn(model(imgs), labels.float())" in sources[4]


def test_lines_a_finding_names_are_given_as_cell_and_line(run_cli, tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook()
    notebook.cells = [
        new_code_cell("import torch\nimport torch.nn as nn\ncriterion = nn.CrossEntropyLoss()"),
        new_code_cell("fit(model, criterion)\nloss = criterion(model(x), y)"),
        new_code_cell("y_pred, _ = model(x)\ntop = y_pred.argmax(1)"),
        new_code_cell("correct = torch.eq(top, y)"),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, str(path))
    code, out, err = run_cli("rewrite", "--check", str(path))
    assert code == 1, out + err
    # the use ML001 could not follow, and the arg-max the comparison is built on
    assert "elsewhere were not cast (cell 2:1: fit(model, criterion))" in out
    assert f"{path}:cell 4:1:11: ML100" in out and "(see ML020 at cell 3:2)" in out
    assert re.search(r"\bline \d", out) is None
