"""What the CLI imports: never torch, and no libcst.matchers/codemod unless an import changes.

Each case runs the CLI in a fresh interpreter, then lists the modules it loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from migrate_ml.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _modules_after(*argv: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def _loaded(modules: set[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in modules)


def test_rewriting_never_imports_torch(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(
        "import torch\nimport torch.nn as nn\n"
        "from torch.nn import CrossEntropyLoss as CE\n"
        "criterion = nn.CrossEntropyLoss()\nother = CE()\n"
        "loss = criterion(model(x), y)\n"
    )
    code, modules = _modules_after("rewrite", str(path))
    assert code == 0
    assert "BCEWithLogitsLoss" in path.read_text()
    for heavy in ("torch", "torchvision", "timm", "numpy", "migrate_ml_reference"):
        assert not _loaded(modules, heavy), heavy


def test_a_run_without_changes_skips_matchers_and_codemod(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text("print('hello')\n")
    code, modules = _modules_after("rewrite", "--check", str(path))
    assert code == 0
    assert not _loaded(modules, "libcst.matchers")
    assert not _loaded(modules, "libcst.codemod")
    assert not _loaded(modules, "torch")


def test_listing_and_explaining_rules_never_import_torch():
    for argv in (("rules",), ("explain", "ML001")):
        code, modules = _modules_after(*argv)
        assert code == 0
        assert not _loaded(modules, "torch")



def test_a_small_training_file_with_a_class_index_dataset_skips_matchers(tmp_path):
    # ML101 judges every ImageFolder file: importing libcst.matchers for it cost a third of the
    # run. Files are parsed in forked workers, whose imports the probe cannot see, so this run
    # parses in its own process, as where processes cannot fork.
    path = tmp_path / "train.py"
    path.write_text(
        "import torch\nfrom torchvision import datasets\n"
        "def load_data(root):\n    return datasets.ImageFolder(root)\n"
        "train_set = datasets.ImageFolder('data/train')\n"
        "for images, labels in train_set:\n"
        "    predicted = model(images).argmax(dim=1)\n"
        "    correct += (predicted == labels).sum().item()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "import os\ndel os.fork\n" + PROBE, "rewrite", "--diff", str(path)],
        capture_output=True, text=True, timeout=120,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert "ML101 blocking: ImageFolder" in done.stdout + done.stderr
    assert report["code"] == 1  # a diff is pending: ML020/ML021 rewrite the arg-max and its accuracy
    assert not _loaded(set(report["modules"]), "libcst.matchers")
