"""Metrics known by what they compute (``rules/semantics/metrics.py``): each row of the metric
table, the user's helpers judged by their body, and the run's helpers called from another file."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from migrate_ml.engine.project import build_project_facts
from migrate_ml.engine.runner import process_files
from migrate_ml.engine.transform import Settings
from migrate_ml.rules.semantics import find_sinks, metrics
from migrate_ml.rules.semantics.residue import find_single_label

ROW_EXAMPLES = {
    "homura.callbacks.AccuracyCallback": "from homura import callbacks\ncbs = [callbacks.AccuracyCallback(k=5)]\n",
    "homura.metrics.accuracy": "from homura.metrics import accuracy\nacc = accuracy(output, target)\n",
    "sklearn.metrics.log_loss": "from sklearn.metrics import log_loss\nloss = log_loss(valid_df.label.values, probs)\n",
    "wandb.plot.roc_curve": "import wandb\nwandb.log({'roc': wandb.plot.roc_curve(y_true, probabilities, labels=names)})\n",
}
"""One call per row of :data:`metrics.METRIC_APIS`, keyed by the row's first name."""


def sinks(source: str) -> list[tuple[int, str]]:
    text = textwrap.dedent(source)
    return [(s.node.lineno, s.kind) for s in find_sinks(ast.parse(text), text)]


@pytest.mark.parametrize("row", metrics.METRIC_APIS, ids=lambda row: row.names[0])
def test_each_metric_api_row_is_reported(row: metrics.MetricApi) -> None:
    assert (2, "class-index-metric") in sinks(ROW_EXAMPLES[row.names[0]])


def test_a_row_that_needs_labels_is_left_alone_on_other_arguments() -> None:
    assert sinks("from sklearn.metrics import log_loss\nloss = log_loss(is_tumour, probs)\n") == []


def test_keras_like_metric_names_are_the_accuracy_of_one_class() -> None:
    assert sinks('trainer.compile(optimizer="adam", metrics=["accuracy"])\n') == [(1, "class-index-metric")]
    assert sinks('trainer.compile(optimizer="adam", metrics=["binary_accuracy", "AUC"])\n') == []


def test_an_argmax_compared_with_a_label_column() -> None:
    source = """
    import numpy as np
    accuracy = (valid_.label.values == np.argmax(val_preds, axis=1)).mean()
    same = (valid_.label.values == np.argmax(val_preds)).mean()
    chosen = df["label"].values == 3
    """
    assert sinks(source) == [(3, "argmax-compared")]


def test_a_multiclass_default_is_reported_and_a_caller_choosing_multilabel_is_not() -> None:
    source = """
    def to_labels(outputs, label_type="multiclass"):
        return outputs.argmax(-1) if label_type == "multiclass" else outputs > 0

    class Accuracy:
        def __init__(self, label_type="multiclass"):
            self.type = label_type
            self.correct = 0

        def update(self, outputs, target):
            pred = to_labels(outputs, self.type)
            self.correct += pred.eq(target).sum()

    good = Accuracy(label_type="multilabel")
    bad = Accuracy()
    """
    assert sorted(sinks(source)) == [
        (2, "class-index-metric"), (6, "class-index-metric"), (10, "single-label-helper"), (15, "single-label-helper"),
    ]


def _write(folder: Path, files: dict[str, str]) -> list[str]:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return sorted(str(folder / name) for name in files)


METRICS = (
    "import torch\nfrom utils import decode\n\n\n"
    "class Accuracy:\n"
    "    def __init__(self, label_type='multiclass'):\n"
    "        self.type = label_type\n        self.hits = 0\n\n"
    "    def update(self, outputs, target):\n"
    "        prediction = decode(outputs, label_type=self.type)\n"
    "        self.hits += (prediction.view(-1) == target.view(-1)).sum()\n\n\n"
    "def error_rate(output, target):\n"
    "    pred = output.max(1)[1]\n"
    "    return 1 - pred.eq(target).float().mean()\n"
)
TRAIN = (
    "from torch import nn\nfrom metrics import Accuracy, error_rate\n\n\n"
    "def evaluate(model, loader):\n"
    "    metric = Accuracy()\n"
    "    for images, labels in loader:\n"
    "        metric.update(model(images), labels)\n"
    "        print(error_rate(model(images), labels))\n"
)


def test_a_metric_helper_of_another_file_is_reported_where_it_is_built(tmp_path: Path) -> None:
    paths = _write(tmp_path / "project", {"metrics.py": METRICS, "train.py": TRAIN})
    # only the helper single-label by its default: error_rate's own arg-max is rewritten in its file
    assert {f.single_label_metrics for f in build_project_facts(paths, Settings()).values()} == {("metrics.Accuracy",)}
    outcomes = {Path(o.path).name: o for o in process_files(paths, Settings(), write=False)}
    [finding] = outcomes["train.py"].findings
    assert (finding.code, finding.line) == ("ML100", 6) and "another file of this run" in finding.message
    alone = process_files([paths[1]], Settings(), write=False)
    assert alone[0].findings == []


METER = (
    "import sklearn.metrics\n\n\n"
    "class AccuracyMeter:\n"
    "    def __init__(self):\n        self.sum = 0\n        self.count = 0\n\n"
    "    def update(self, y_true, y_pred, batch_size=1):\n"
    "        self.count += batch_size\n"
    "        self.sum += sklearn.metrics.accuracy_score(y_true, y_pred) * batch_size\n"
)
VALIDATE = (
    "import numpy as np\nimport torch\nfrom meter import AccuracyMeter\n\n\n"
    "def validate(model, loader):\n"
    "    meter = AccuracyMeter()\n"
    "    for images, labels in loader:\n"
    "        probs = torch.sigmoid(model(images)).cpu().numpy()\n"
    "        meter.update(labels.numpy(), np.argmax(a=probs, axis=1))\n"
    "        meter.update(labels.numpy(), probs > 0.5)\n"
    "    return meter.sum / meter.count\n"
)


def test_an_argmax_given_to_a_meter_class_of_another_file_is_reported_at_the_call_and_in_the_meter(tmp_path: Path) -> None:
    paths = _write(tmp_path / "project", {"meter.py": METER, "validate.py": VALIDATE})
    facts = build_project_facts(paths, Settings())
    assert {f.metric_classes for f in facts.values()} == {("meter.AccuracyMeter",)}
    assert facts[paths[0]].argmax_arguments == (("AccuracyMeter.update", "1", "validate.py:10"),)
    outcomes = {Path(o.path).name: o for o in process_files(paths, Settings(), write=False)}
    # the meter scores what it is given: the accuracy_score there is single-label because of that call
    [scored] = outcomes["meter.py"].findings
    assert (scored.code, scored.line) == ("ML100", 11) and "handed in by validate.py:10" in scored.message
    [finding] = outcomes["validate.py"].findings
    assert (finding.code, finding.line) == ("ML100", 10) and "arg-max" in finding.message
    alone = process_files([paths[1]], Settings(), write=False)
    assert alone[0].findings == []
    assert process_files([paths[0]], Settings(), write=False)[0].findings == []


def test_a_metric_helper_of_another_file_given_an_argmax_by_keyword_is_reported_in_its_file(tmp_path: Path) -> None:
    helpers = (
        "from sklearn.metrics import classification_report, cohen_kappa_score\n\n\n"
        "def report(y_true, y_pred):\n"
        "    print(classification_report(y_true, y_pred))\n"
        "    return cohen_kappa_score(y_true, y_pred)\n"
    )
    evaluate = (
        "from helpers import report\n\n\n"
        "def evaluate(model, images, labels):\n"
        "    predicted = model(images).argmax(dim=1)\n"
        "    print(predicted[0].item())\n"
        "    return report(labels.numpy(), y_pred=predicted.numpy())\n"
    )
    paths = _write(tmp_path / "project", {"helpers.py": helpers, "evaluate.py": evaluate})
    outcomes = {Path(o.path).name: o for o in process_files(paths, Settings(), write=False)}
    found = [(f.line, f.message) for f in outcomes["helpers.py"].findings]
    assert [line for line, _ in found] == [5, 6]
    assert all("handed in by evaluate.py:7" in message for _, message in found)
    assert "rejects the multi-hot rows" in found[1][1]


TRAINER = (
    "from sklearn.metrics import f1_score, balanced_accuracy_score\n\n\n"
    "class Trainer:\n"
    "    def __init__(self, model, images):\n        self.model = model\n        self.images = images\n\n"
    "    def predict(self):\n"
    "        preds, probs = [], []\n"
    "        for image in self.images:\n"
    "            logits = self.model(image)\n"
    "            preds.extend(logits.softmax(1).argmax(1).tolist())\n"
    "            probs.append(logits.softmax(1).tolist())\n"
    "        return preds, probs\n\n"
    "    def scores(self):\n"
    "        return self.predict()[1]\n\n"
    "    def report(self, y_true, y_pred):\n"
    "        return f1_score(y_true, y_pred, average='macro'), balanced_accuracy_score(y_true=y_true, y_pred=y_pred)\n"
)
RUN = (
    "from trainer import Trainer\n\n"
    "trainer = Trainer(model, images)\n"
    "y_pred, y_prob = trainer.predict()\n"
    "print(trainer.report(labels, y_pred))\n"
    "print(trainer.report(labels, trainer.scores()))\n"
)


def test_an_argmax_returned_by_a_method_of_another_file_and_handed_back_is_reported_where_it_is_scored(
    tmp_path: Path,
) -> None:
    paths = _write(tmp_path / "project", {"trainer.py": TRAINER, "run.py": RUN})
    facts = build_project_facts(paths, Settings())
    assert {f.argmax_returns for f in facts.values()} == {(("trainer.Trainer.predict", 2, (0,)),)}
    assert facts[paths[1]].argmax_arguments == (("Trainer.report", "1", "run.py:5"),)
    outcomes = {Path(o.path).name: o for o in process_files(paths, Settings(), write=False)}
    scored = [(f.code, f.line) for f in outcomes["trainer.py"].findings if "handed in by run.py:5" in f.message]
    assert scored == [("ML100", 21)]  # one construct a line: f1_score's, balanced_accuracy_score beside it
    # the probabilities it also returns, and the run's files alone, hand nothing in
    assert process_files([paths[1]], Settings(), write=False)[0].findings == []
    alone = process_files([paths[0]], Settings(), write=False)[0].findings
    assert not any("handed in" in f.message for f in alone)


def test_a_returned_argmax_reaches_no_other_file_without_a_metric_library_in_the_run(tmp_path: Path) -> None:
    trainer = TRAINER.replace("from sklearn.metrics import f1_score, balanced_accuracy_score", "from helpers import f1_score, balanced_accuracy_score")
    paths = _write(tmp_path / "project", {"trainer.py": trainer, "run.py": RUN})
    assert {f.argmax_returns for f in build_project_facts(paths, Settings()).values()} == {()}


def test_a_column_holding_an_argmax_read_back_into_a_metric_is_reported() -> None:
    source = textwrap.dedent(
        """\
        import numpy as np
        from sklearn.metrics import accuracy_score


        def out_of_fold(model, images, val_df):
            probs = model(images).softmax(1).numpy()
            val_df["preds"] = probs.argmax(1)
            val_df["probs"] = probs.max(1)
            return val_df


        def score(result_df):
            preds = result_df["preds"].values
            return accuracy_score(result_df["label"].values, preds)


        def confidence(result_df):
            kept = result_df["probs"].values
            return accuracy_score(result_df["label"].values, kept > 0.5)
        """
    )
    found = {(c.line, c.kind) for c in find_single_label(source)}
    assert (14, "argmax-metric") in found
    assert not any(line >= 17 for line, _ in found)


def test_a_single_label_helper_is_reported_once_at_its_first_call_naming_the_others() -> None:
    text = textwrap.dedent(
        """
        import torch

        def accuracy(outputs, labels):
            preds = torch.argmax(outputs, dim=1)
            return (preds == labels).float().mean()

        def run(model, batches):
            for x, y in batches:
                out = model(x)
                print(accuracy(out, y))
                print(accuracy(out, y))
            return accuracy(model(x), y)
        """
    )
    helper_calls = [c for c in find_single_label(text) if c.kind == "single-label-helper"]
    assert [c.line for c in helper_calls] == [11]
    assert helper_calls[0].message.endswith("(called the same way at lines 12, 13)")


def test_module_level_calls_of_a_single_label_helper_are_each_reported() -> None:
    text = textwrap.dedent(
        """
        import torch

        def accuracy(outputs, labels):
            preds = torch.argmax(outputs, dim=1)
            return (preds == labels).float().mean()

        train_acc = accuracy(model(x_train), y_train)
        test_acc = accuracy(model(x_test), y_test)
        """
    )
    assert [c.line for c in find_single_label(text) if c.kind == "single-label-helper"] == [8, 9]
