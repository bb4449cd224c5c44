"""Gates on real code: the installed timm, torchvision and a fixed part of torch.

These trees are large, varied, and mostly *not* training code, which is what a user's
repository mostly is too. Two kinds of regression showed up on them and nowhere in the
fixtures: rules that crash on constructs the fixtures never had (a LibCST node taken for a
string), and a pre-filter that stopped filtering (LibCST parsed 127 of timm's 304 files instead
of 18, a 10x slowdown). Both are checked here deterministically: counts, not timings.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from migrate_ml.engine import transform
from migrate_ml.engine.source import read_source
from migrate_ml.engine.transform import FileTransformer, Settings, select_rules
from migrate_ml.rules import load_rules

SITE = Path(importlib.util.find_spec("timm").origin).parent.parent
"""The site-packages folder the test extra installed timm, torchvision and torch into."""

# The most files LibCST may parse in each tree. The rest must be settled by the text and `ast`
# pre-filters, which is what keeps a run over a large repository fast. Counts when set: timm 13
# (its loss modules, the evaluator and token distillation, the dataset factory, the accuracy
# helpers, the NaFlex collator class that stacks one class index per sample), torchvision 8 (detection losses and box coding), torch 5 + 0 + 0 + 3. Trigger words
# in comments and string statements do not count (inception_v3's "# best ... accuracy" comment,
# DataLoader's), nor a file's own one_hot (timm's mixup).
# Raising a budget needs a reason in the commit message.
PARSE_BUDGETS = {
    "timm": 14,
    "torchvision": 9,
    "torch/nn/modules": 6,
    "torch/optim": 1,
    "torch/utils/data": 1,
    "torch/distributions": 4,
}

_VERBOSE_FILE = re.compile(r"^migrate-ml: (?P<path>.+): (?P<what>parsed and checked|could not be processed|not parsed, pre-filter: .*) \(\d+\.\d+ s\)$")


@pytest.fixture(scope="module")
def verbose_run():
    """One ``rewrite --diff -j1 -v`` over every tree, as a user would run it."""
    trees = [str(SITE / tree) for tree in PARSE_BUDGETS]
    run = subprocess.run(
        [sys.executable, "-m", "migrate_ml", "rewrite", "--diff", "-j1", "-v", *trees],
        capture_output=True,
        text=True,
        timeout=300,
    )
    files = {}
    for line in run.stderr.splitlines():
        match = _VERBOSE_FILE.match(line)
        if match:
            files[match.group("path")] = match.group("what")
    return run, files


def _tree_of(path: str) -> str:
    relative = Path(path).relative_to(SITE).as_posix()
    return max((tree for tree in PARSE_BUDGETS if relative.startswith(tree + "/")), key=len)


def test_no_internal_error_and_no_file_refused(verbose_run):
    run, files = verbose_run
    assert run.returncode in (0, 1), run.stderr[-3000:]
    assert "internal error" not in run.stdout + run.stderr
    refused = [path for path, what in files.items() if what == "could not be processed"]
    assert refused == []
    assert len(files) > 600  # every file of every tree was reported on


@pytest.mark.parametrize("tree", sorted(PARSE_BUDGETS))
def test_libcst_parses_only_files_a_rule_acts_on(verbose_run, tree):
    _, files = verbose_run
    in_tree = [path for path in files if _tree_of(path) == tree]
    assert len(in_tree) > 10, f"{tree}: the gate lost its tree"
    parsed = sorted(path for path in in_tree if files[path] == "parsed and checked")
    assert len(parsed) <= PARSE_BUDGETS[tree], "\n".join(parsed)


# Files on which rules once crashed, or that hold the constructs rules look at most closely
# (losses, metrics, datasets, mixup, distillation). Every rule runs on each, the pre-filter
# off, so a rule's crash cannot hide behind a pre-filter that happens to skip the file today.
EVERY_RULE_SAMPLE = [
    "timm/models/byobnet.py",
    "timm/models/dpn.py",
    "timm/models/hrnet.py",
    "timm/data/naflex_dataset.py",
    "timm/data/mixup.py",
    "timm/data/dataset_factory.py",
    "timm/loss/cross_entropy.py",
    "timm/task/distillation.py",
    "timm/utils/metrics.py",
    "torchvision/models/detection/roi_heads.py",
    "torchvision/datasets/folder.py",
    "torchvision/ops/focal_loss.py",
    "torch/nn/modules/loss.py",
]


_WHOLE_FILE_KINDS = (
    "is_dense_prediction", "is_token_model", "is_one_output_binary", "is_variational_autoencoder", "already_multi_label"
)
"""The engine's whole-file exits (a detector's ``roi_heads.py`` is dense prediction): off too, so that
every rule still runs on the sample."""


@pytest.fixture(scope="module")
def unfiltered_transformer():
    rules = select_rules(load_rules(), (), ())
    transformer = FileTransformer(rules, Settings())
    always = classmethod(lambda cls, _: True)
    saved = [(rule, rule.__dict__.get("could_apply"), rule.__dict__.get("could_apply_tree")) for rule in rules]
    for rule in rules:
        rule.could_apply = always
        rule.could_apply_tree = always
    kinds = pytest.MonkeyPatch()
    for kind in _WHOLE_FILE_KINDS:
        kinds.setattr(transform, kind, lambda tree: False)
    yield transformer
    kinds.undo()
    for rule, text_filter, tree_filter in saved:
        for name, original in (("could_apply", text_filter), ("could_apply_tree", tree_filter)):
            if original is None:
                delattr(rule, name)
            else:
                setattr(rule, name, original)


@pytest.mark.parametrize("relative", EVERY_RULE_SAMPLE)
def test_every_rule_runs_on_real_code(unfiltered_transformer, relative):
    path = SITE / relative
    if not path.exists():
        pytest.skip(f"{relative} is not in this version of the package")
    result = unfiltered_transformer.transform(read_source(os.fspath(path)))
    assert not result.skipped  # the file really went through every rule
    compile(result.new_text, relative, "exec")
