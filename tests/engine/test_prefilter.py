"""The pre-filter: LibCST parses a file only when some rule can act on it.

Each case pairs code a rule handles (parsed, and the rule reports it) with code that merely
shares its words (left unparsed). The words in question are everywhere in model and library
code: `zip(`, `best` + `acc`, dataset class names, `softmax` inside attention.
"""

from __future__ import annotations

import ast

import pytest

from migrate_ml.engine.source import decode_source
from migrate_ml.engine.transform import FileTransformer, Settings, _without_documentation, select_rules
from migrate_ml.rules import load_rules
from migrate_ml.rules._prefilter import nodes_of, parent_links, text_facts, walk
from migrate_ml.rules.semantics.residue import may_return_softmax


@pytest.fixture(scope="module")
def transformer():
    return FileTransformer(select_rules(load_rules(), (), ()), Settings())


def _run(transformer, text: str):
    return transformer.transform(decode_source("t.py", text.encode()))


ACTED_ON = {
    "ML105 hand-written confusion matrix": (
        "ML105",
        "def count(cm, targets, preds):\n    for t, p in zip(targets, preds):\n        cm[t, p] += 1\n",
    ),
    "ML105 per-class counter": (
        "ML105",
        "def tally(labels, correct):\n    for i, label in enumerate(labels):\n        class_correct[label] += correct[i]\n",
    ),
    "ML107 best accuracy": (
        "ML107",
        "def keep(acc, model):\n    global best_acc\n    if acc > best_acc:\n        best_acc = acc\n",
    ),
    "ML101 a user's subclass of torchvision's dataset": (
        "ML101",
        "from torchvision.datasets import ImageFolder\n\n\nclass Plants(ImageFolder):\n    pass\n\n\n"
        "def step(model, criterion, images, labels):\n    return criterion(model(images), labels)\n",
    ),
    "ML101 dataset built under an alias": (
        "ML101",
        "from torchvision.datasets import ImageFolder as Folder\n\ntrain_set = Folder('data/train')\n",
    ),
    "ML010 criterion parameter": (
        "ML010",
        "def train_step(model, images, labels, criterion):\n    return criterion(model(images), labels)\n",
    ),
    "ML010 criterion set from a constructor parameter": (
        "ML010",
        "class Trainer:\n    def __init__(self, model, criterion):\n        self.model = model\n"
        "        self.criterion = criterion\n\n    def step(self, images, labels):\n"
        "        return self.criterion(self.model(images), labels)\n",
    ),
    "ML110 torch's one_hot beside the file's own": (
        "ML110",
        "import torch.nn as nn\nimport torch.nn.functional as F\n\ncriterion = nn.BCEWithLogitsLoss()\n\n\n"
        "def one_hot(x, num_classes):\n    return x\n\n\n"
        "def step(model, images, labels):\n    return criterion(model(images), F.one_hot(labels, 10).float())\n",
    ),
    "ML010 BCE imported under an alias": (
        "ML010",
        "from torch.nn import BCEWithLogitsLoss as Loss\n\nloss_fn = Loss()\n\n\n"
        "def step(model, x, y):\n    return loss_fn(model(x), y.long())\n",
    ),
}

UNPARSED = {
    "zip without a subscripted counter": "def pairs(a, b):\n    return [x + y for x, y in zip(a, b)]\n",
    "zip beside an unrelated counter": "def f(a, b, stats):\n    for x, y in zip(a, b):\n        stats['n'] += x * y\n",
    "best and acc in other words": (
        "def accumulate(grads, max_norm):\n    best = max(grads)\n    return best if best < max_norm else max_norm\n"
    ),
    "a criterion the class builds itself": (
        "class Task:\n    def __init__(self, model, criterion=None):\n        self.model = model\n"
        "        self.criterion = make_loss(criterion)\n\n    def step(self, images, labels):\n"
        "        return self.criterion(self.model(images), labels)\n"
    ),
    "best and accuracy in a comment only": "import torch\n\n# the best accuracy of these weights\nmodel = torch.nn.Linear(2, 2)\n",
    "best and accuracy in a string documenting an attribute": (
        "class Options:\n    policy: str = 'auto'\n    \"\"\"Best when the accuracy matters.\"\"\"\n"
    ),
    "the file's own one_hot (timm's mixup)": (
        "def one_hot(x, num_classes):\n    return x\n\n\ndef mixup_target(target, num_classes):\n"
        "    return one_hot(target, num_classes)\n\n\ndef fast_collate(batch):\n    return batch\n"
    ),
    "a dataset defined, not built": "class CIFAR10(VisionDataset):\n    def __len__(self):\n        return 50000\n",
    "a library's datasets subclassing its own (torchvision's cifar.py, eurosat.py)": (
        "from .folder import ImageFolder\n\n\nclass CIFAR10(VisionDataset):\n    def __getitem__(self, index):\n"
        "        return self.data[index], self.targets[index]\n\n\nclass CIFAR100(CIFAR10):\n    base_folder = 'c'\n\n\n"
        "class EuroSAT(ImageFolder):\n    def __len__(self):\n        return len(self.samples)\n"
    ),
    "softmax inside attention": (
        "import torch\n\n\nclass Attention(torch.nn.Module):\n    def forward(self, q, k, v):\n"
        "        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)\n        x = attn @ v\n        return x\n"
    ),
}


@pytest.mark.parametrize("case", sorted(ACTED_ON))
def test_code_a_rule_handles_is_parsed_and_reported(transformer, case):
    code, text = ACTED_ON[case]
    result = _run(transformer, text)
    assert result.skipped == ""
    assert code in {finding.code for finding in result.findings_before} | {change.code for change in result.changes}


@pytest.mark.parametrize("case", sorted(UNPARSED))
def test_code_that_only_shares_the_words_is_left_unparsed(transformer, case):
    result = _run(transformer, UNPARSED[case])
    assert result.skipped
    assert not result.findings_before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("def forward(self, x):\n    return F.softmax(self.fc(x), dim=1)\n", True),
        ("def forward(self, x):\n    probs = self.fc(x).softmax(1)\n    return probs, x\n", True),
        ("def forward(self, x):\n    attn = x.softmax(-1)\n    return attn @ x\n", True),  # superset: the detector decides
        ("def forward(self, q, v):\n    attn = q.softmax(-1)\n    out = attn @ v\n    return out\n", False),
        ("def forward(self, x):\n    return self.head(x)\n", False),
    ],
)
def test_may_return_softmax_is_a_text_superset_of_a_model_ending_in_softmax(text, expected):
    assert may_return_softmax(text) is expected


def test_a_model_file_ending_in_softmax_is_still_reported(transformer):
    text = (
        "import torch.nn as nn\nimport torch.nn.functional as F\n\n\nclass Net(nn.Module):\n"
        "    def forward(self, x):\n        out = F.softmax(self.fc(x), dim=1)\n        return out\n"
    )
    result = _run(transformer, text)
    assert [(f.code, f.line) for f in result.findings_before] == [("ML100", 7)]


def test_the_shared_walk_is_ast_walk_with_its_parent_links():
    tree = ast.parse(
        "import torch\n\n\nclass Net(torch.nn.Module):\n    def forward(self, x, *, y=1):\n"
        "        return [a for a in x if a > y], f'{x!r:>3}', lambda z: z @ x\n"
    )
    assert walk(tree) == list(ast.walk(tree))
    assert walk(tree) is walk(tree)  # walked once
    assert nodes_of(tree, ast.Name, ast.Call) == [n for n in ast.walk(tree) if isinstance(n, (ast.Name, ast.Call))]
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    assert parent_links(tree) == parents


def test_documentation_lines_are_left_out_of_the_trigger_word_test():
    text = (
        "# a comment line\nimport torch  # a trailing comment stays\n"
        "TEMPLATE = '''\n# inside a string: text, not a comment\n'''\n\n\n"
        "class Options:\n    policy = 'auto'\n    \"\"\"Documents policy.\"\"\"\n"
        "    def f(self): \"\"\"doc\"\"\"; return 1\n"
    )
    assert _without_documentation(text, ast.parse(text)) == (
        "import torch  # a trailing comment stays\n"
        "TEMPLATE = '''\n# inside a string: text, not a comment\n'''\n\n\n"
        "class Options:\n    policy = 'auto'\n"
        "    def f(self): \"\"\"doc\"\"\"; return 1\n"
    )


SCANNED = (
    "import torch.nn.functional as F\nloss = F.cross_entropy(out, y)  # the best acc1\nx.max(1)\n",
    "preds = torch.max(out, 1)[1]\nlam * crit(a) + (1 - lam) * crit(b)\nds.features['label'].names\n",
    "lambda_ = 2\nself.lam *2\ncounts[y] += 1\nt = y.long()\ndtype=torch.long\nclasses[3]\n",
    "def __getitem__(self, i):\n    return x, torch.tensor(lbl, dtype=torch.int64)\nmodel.eval()\nß_max(2)\n",
    "",
)
"""Texts with triggers at the edges of words: inside a longer name, before a call, after a dot."""


@pytest.mark.parametrize("text", SCANNED)
def test_the_shared_scan_answers_each_trigger_as_a_substring_test(text):
    triggers = {trigger for rule in load_rules().values() for trigger in rule.triggers}
    triggers |= {"max(", ".max(", "lam *", "* lam", "ax(", "ma", "features[", "[", "(", "] +=", "orch.lo", "self.lam"}
    facts = text_facts(text)
    for trigger in sorted(triggers):
        assert facts.has(trigger) == (trigger in text), trigger
    assert text_facts(text) is facts  # scanned once per text


def test_the_shared_scan_lists_words_and_called_names():
    facts = text_facts("y = model(x).argmax(dim=1)  # best_acc\nloss_fn (y)\n")
    assert facts.words == {"y", "model", "x", "argmax", "dim", "1", "best_acc", "loss_fn"}
    assert facts.called == {"model", "argmax"}  # `loss_fn (y)`: a space before the bracket
    assert "best_acc" in facts.word_text.split("\n")
