"""The safety-net detector (``rules/semantics/residue/``) and ML100, its report in the engine.

The detector is also ``verify``'s static pass, so its API is tested directly: what it finds
(kind at line) in single-label snippets, and that it finds nothing in multi-label ones.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from migrate_ml.cli import main
from migrate_ml.engine.source import decode_source
from migrate_ml.engine.transform import FileTransformer, Settings, parse_suppressions, select_rules
from migrate_ml.rules import load_rules
from migrate_ml.rules._prefilter import has_loss_marker, has_training_marker
from migrate_ml.rules.semantics.residue import KINDS, SingleLabelConstruct, find_single_label

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXPECT = re.compile(r"#\s*expect(?:-note)?:\s*(.+)$", re.MULTILINE)


def kinds(source: str) -> list[tuple[int, str]]:
    return [(c.line, c.kind) for c in find_single_label(textwrap.dedent(source))]


POSITIVES = {
    "nn CrossEntropyLoss through an alias": (
        """
        import torch.nn as nn
        from torch.nn import CrossEntropyLoss as CE
        criterion = nn.CrossEntropyLoss()
        other = CE(label_smoothing=0.1)
        """,
        [(4, "single-label-loss"), (5, "single-label-loss")],
    ),
    "functional cross_entropy and nll_loss": (
        """
        import torch.nn.functional as F
        def step(model, x, y):
            loss = F.cross_entropy(model(x), y)
            return loss + F.nll_loss(model(x), y)
        """,
        [(4, "single-label-loss"), (5, "single-label-loss")],
    ),
    "timm loss": (
        """
        from timm.loss import SoftTargetCrossEntropy
        criterion = SoftTargetCrossEntropy()
        """,
        [(3, "single-label-loss")],
    ),
    "torch.max unpacked and compared": (
        """
        import torch
        def test(net, loader):
            correct = 0
            for images, labels in loader:
                _, predicted = torch.max(net(images).data, 1)
                correct += (predicted == labels).sum().item()
        """,
        [(7, "argmax-compared")],
    ),
    "inline max(-1)[-1]": (
        """
        def acc(output, targets):
            return (output.max(-1)[-1] == targets).float().mean()
        """,
        [(3, "argmax-compared")],
    ),
    "top-k indices through .t() into .eq": (
        """
        def accuracy(output, target, topk=(1,)):
            _, pred = output.topk(max(topk), 1, True, True)
            pred = pred.t()
            return pred.eq(target.view(1, -1).expand_as(pred))
        """,
        [(5, "topk-accuracy")],
    ),
    "torch.argmax with axis= into torch.eq": (
        """
        import torch
        def hits(logits, labels):
            preds = torch.argmax(logits, axis=1)
            return torch.eq(preds, labels).sum()
        """,
        [(5, "argmax-compared")],
    ),
    "NumPy accuracy helper": (
        """
        import numpy as np
        def accuracy(outputs, labels):
            outputs = np.argmax(outputs, axis=1)
            return np.sum(outputs == labels) / float(labels.size)
        """,
        [(5, "argmax-compared")],
    ),
    "arg-max through gather_for_metrics and tuple unpacking into sklearn": (
        """
        from sklearn.metrics import f1_score
        def evaluate(accelerator, model, loader):
            all_preds, all_labels = [], []
            for batch in loader:
                predictions = model(**batch).logits.argmax(dim=-1)
                predictions, references = accelerator.gather_for_metrics((predictions, batch["labels"]))
                all_preds.append(predictions.cpu())
                all_labels.append(references.cpu())
            return f1_score(all_labels, all_preds, average="macro")
        """,
        [(10, "argmax-metric")],
    ),
    "HF evaluate metric": (
        """
        import evaluate
        metric = evaluate.load("accuracy")
        def compute_metrics(p):
            return metric.compute(predictions=p.predictions.argmax(-1), references=p.label_ids)
        """,
        [(3, "class-index-metric"), (5, "argmax-metric")],
    ),
    "torchmetrics multiclass and legacy Accuracy()": (
        """
        import torchmetrics
        from torchmetrics import Accuracy
        a = torchmetrics.Accuracy(task="multiclass", num_classes=10)
        b = Accuracy()
        c = torchmetrics.classification.MulticlassAccuracy(num_classes=10)
        """,
        [(4, "class-index-metric"), (5, "class-index-metric"), (6, "class-index-metric")],
    ),
    "ignite Accuracy without is_multilabel": (
        """
        from ignite.metrics import Accuracy, Precision
        metrics = {"accuracy": Accuracy(), "precision": Precision(average=True)}
        """,
        [(3, "class-index-metric")],
    ),
    "softmax over a model's output outside forward": (
        """
        import torch
        def predict(model, img):
            output = torch.squeeze(model(img))
            probs = torch.softmax(output, dim=0)
            return probs.numpy()
        """,
        [(5, "softmax-class-dim")],
    ),
    "a softmax written out in NumPy over one image's shifted scores": (
        """
        import numpy as np
        def confidence(net, images, out):
            outputs = net(images)
            scores = outputs.data.cpu().numpy()[0]
            scores = scores - np.max(scores)
            scores = np.exp(scores) / np.sum(np.exp(scores))
            out.write(str(np.max(scores)))
        """,
        [(7, "softmax-class-dim")],
    ),
    "the model's own arg-max fed back to a loss as a pseudo-label": (
        """
        import numpy as np
        import torch
        from torch.autograd import Variable
        def perturb(net, criterion, images, device):
            outputs = net(images)
            guess = np.argmax(outputs.data.cpu().numpy()[0])
            labels = Variable(torch.LongTensor([guess]).cuda(device))
            loss = criterion(outputs, labels)
            _, pseudo = outputs.max(1)
            return loss + self_loss(outputs, torch.tensor([pseudo[0]]))
        """,
        [(9, "target-argmax"), (11, "target-argmax")],
    ),
    "a label cell of each table row, kept in a list of samples": (
        """
        from torch.utils.data import Dataset
        class Rows(Dataset):
            def __init__(self, table):
                self.samples = []
                for _, row in table.iterrows():
                    self.samples.append((row["img_path"], row["label"]))
                self.named = [(r.img_path, r.class_id) for r in table.itertuples()]
            def __getitem__(self, index):
                path, label = self.samples[index]
                name, target = self.named[index]
                return path, label, target
        """,
        [(12, "class-index-source")],
    ),
    "a label column read as an attribute of the table": (
        """
        import pandas as pd
        from torch.utils.data import Dataset
        class Leaves(Dataset):
            def __init__(self, csv_path):
                self.data = pd.read_csv(csv_path)
            def __getitem__(self, index):
                path, lbl = self.data.image_id.values[index], self.data.label.values[index]
                return path, lbl
        """,
        [(9, "class-index-source")],
    ),
    "a LabelEncoder imported from scikit-learn's old module path": (
        """
        import pandas as pd
        from sklearn.preprocessing.label import LabelEncoder
        table = pd.read_csv("labels.csv")
        labels = LabelEncoder().fit_transform(table.breed)
        """,
        [(5, "class-index-source")],
    ),
    "a softmax written out with tensor methods": (
        """
        def probabilities(model, x):
            logits = model(x)
            return logits.exp() / logits.exp().sum(dim=1, keepdim=True)
        """,
        [(4, "softmax-class-dim")],
    ),
    "per-element accuracy of thresholded predictions": (
        """
        import torch
        def score(model, x, y, THRESHOLD=0.5):
            preds = torch.sigmoid(model(x)) > THRESHOLD
            return (preds == y.bool()).float().mean()
        """,
        [(5, "per-element-accuracy")],
    ),
    "matches of thresholded predictions counted over the images of a loader": (
        """
        import torch
        def train(model, loader, THRESHOLD=0.5):
            running_correct, running_total = 0, 0
            for images, labels in loader:
                predictions = (torch.sigmoid(model(images)) > THRESHOLD).float()
                running_correct += (predictions == labels).sum().item()
                running_total += labels.size(0)
            return 100.0 * running_correct / running_total
        """,
        [(7, "per-element-accuracy")],
    ),
    "matches of thresholded predictions divided by the batch size": (
        """
        import torch
        def score(model, x, y, THRESHOLD=0.5):
            preds = (torch.sigmoid(model(x)) > THRESHOLD).float()
            return (preds == y).sum().item() / len(y)
        """,
        [(5, "per-element-accuracy")],
    ),
    "per-sample .item() of predictions": (
        """
        def collect(model, x, y_pred):
            pred = model(x).argmax(1)
            for i in range(len(pred)):
                y_pred.append(pred[i].item())
        """,
        [(5, "prediction-item")],
    ),
    "targets collapsed to one class": (
        """
        def step(model, x, target):
            target = target.max(dim=1)[1]
            return target
        """,
        [(3, "target-argmax")],
    ),
    "arg-max over a model's output, returned": (
        """
        import numpy as np
        def predict(model, x):
            logits = model(x)
            return np.argmax(logits, axis=1)
        """,
        [(5, "argmax-prediction")],
    ),
    "arg-max over the logits a model returns first": (
        """
        import torch
        def predict(model, x):
            logits, attn_weights = model(x)
            return torch.argmax(logits, dim=-1)
        """,
        [(5, "argmax-prediction")],
    ),
    "matches bound to a name, then counted": (
        """
        import torch
        def hits(model, x, y, THRESHOLD=0.5):
            preds = torch.sigmoid(model(x)) > THRESHOLD
            matches = preds == y
            return matches.long().sum()
        """,
        [(6, "per-element-accuracy")],
    ),
    "forward returns softmax; softmax handed to a metric": (
        """
        import torch
        import torch.nn.functional as F
        class Net(torch.nn.Module):
            def forward(self, x):
                return F.softmax(self.fc(x), dim=-1)
            def training_step(self, batch, out):
                self.train_accuracy(torch.softmax(out["logits"], dim=-1), batch[1])
        """,
        [(6, "softmax-class-dim"), (8, "softmax-class-dim")],
    ),
    "top-k accuracy helper call": (
        """
        from timm.utils import accuracy
        def validate(model, x, target):
            acc1, acc5 = accuracy(model(x), target, topk=(1, 5))
            return acc1
        """,
        [(4, "topk-accuracy")],
    ),
    "a k-NN ranking by sort compared with the label": (
        """
        def knn(probs, targets):
            _, predictions = probs.sort(1, True)
            return predictions.eq(targets.view(-1, 1))
        """,
        [(4, "topk-accuracy")],
    ),
    "torch.sort of the model's output, descending": (
        """
        import torch
        def top5(model, x, y):
            _, indices = torch.sort(model(x), descending=True)
            return indices[:, :5].eq(y[:, None]).any(1)
        """,
        [(5, "topk-accuracy")],
    ),
    "an nn.Softmax module built under any name, then applied to the model's output": (
        """
        import torch
        def predict(model, images):
            squash = torch.nn.Softmax(dim=0)
            outputs = model(images)
            probabilities = squash(outputs[0]).tolist()
            return probabilities
        """,
        [(4, "softmax-class-dim")],
    ),
    "the exp of a model's log-probabilities": (
        """
        import torch
        def test(model, features, labels):
            logps = model(features)
            ps = torch.exp(logps)
            top_p, top_class = ps.topk(1, dim=1)
            return top_p, top_class
        """,
        [(5, "softmax-class-dim"), (6, "argmax-prediction")],
    ),
    "one of two class names chosen by a softmax probability": (
        """
        import torch.nn.functional as f
        def show(model, data, ax):
            pred = f.softmax(model(data), dim=1)[:, 1][0]
            ax.set_title('{}% dog'.format(int(pred * 100)) if pred > 0.5 else '{}% cat'.format(int(100 * (1 - pred))))
        """,
        [(4, "softmax-class-dim"), (5, "argmax-prediction")],
    ),
    "a focal loss's per-class weight picked by the target class": (
        """
        import torch
        import torch.nn.functional as F
        class Focal(torch.nn.Module):
            def forward(self, logits, target):
                ce = F.cross_entropy(logits, target, reduction="none")
                alpha_t = self.alpha.to(logits.device).gather(0, target.view(-1))
                weights = self.class_weights[target]
                return (alpha_t * weights * (1 - torch.exp(-ce)) ** 2 * ce).mean()
        """,
        [(6, "single-label-loss"), (7, "single-label-loss"), (8, "single-label-loss")],
    ),
    "one of two class names chosen by an arg-max": (
        """
        def show(model, data):
            pred = model(data).argmax(1)
            print(f"a dog" if pred == 1 else "a cat")
        """,
        [(4, "argmax-prediction")],
    ),
}


@pytest.mark.parametrize("source, expected", POSITIVES.values(), ids=list(POSITIVES))
def test_still_single_label_constructs_are_found(source: str, expected: list[tuple[int, str]]) -> None:
    assert kinds(source) == expected


NEGATIVES = {
    "a plural label column, or a label attribute of something not named as a table": """
        import pandas as pd
        from torch.utils.data import Dataset
        class Leaves(Dataset):
            def __init__(self, csv_path, encoder):
                self.data = pd.read_csv(csv_path)
                self.encoder = encoder
            def __getitem__(self, index):
                labels = self.data.labels.values[index]
                label = self.encoder.label.values[index]
                return index, labels, label
    """,
    "table rows whose label cell holds several labels": """
        from torch.utils.data import Dataset
        class Rows(Dataset):
            def __init__(self, table, columns):
                self.samples = []
                for _, row in table.iterrows():
                    self.samples.append((row["img_path"], row["labels"], row[columns].values))
            def __getitem__(self, index):
                path, labels, hot = self.samples[index]
                return path, labels, hot
    """,
    "a loss given the dataset's labels, wrapped like a pseudo-label": """
        import torch
        from torch.autograd import Variable
        def step(net, criterion, images, label, device):
            outputs = net(images)
            labels = Variable(torch.LongTensor([label]).cuda(device))
            return criterion(outputs, labels)
    """,
    "a softmax written out over attention weights, or over two different arrays": """
        import numpy as np
        def attend(weights, values):
            w = weights - np.max(weights)
            p = np.exp(w) / np.sum(np.exp(w))
            return p @ values
        def ratio(outputs, other):
            return np.exp(outputs) / np.sum(np.exp(other))
        def second(net, x):
            aux = net(x)[1]
            return np.exp(aux) / np.sum(np.exp(aux))
    """,
    "BCE training with exact match and Hamming loss": """
        import torch
        import torch.nn as nn
        criterion = nn.BCEWithLogitsLoss()
        def fit(model, x, y, THRESHOLD=0.5):
            logits = model(x)
            loss = criterion(logits, y.float())
            preds = torch.sigmoid(logits) > THRESHOLD
            exact = (preds == y.bool()).all(dim=1).float().mean()
            hamming = (preds != y.bool()).float().mean()
            per_image = (preds == y.bool()).float().mean(dim=1)
            return loss, exact, hamming, per_image
        """,
    "attention softmax, inside and outside forward": """
        import torch.nn as nn
        class Attention(nn.Module):
            def forward(self, q, k):
                return (q @ k.transpose(-2, -1)).softmax(dim=-1)
        def attention(q, k, v):
            scores = q @ k.transpose(-2, -1)
            return scores.softmax(dim=-1) @ v
        """,
    "attention weights returned from forward": """
        import torch.nn as nn
        class CrossAttention(nn.Module):
            def forward(self, q, k):
                return (q @ k.transpose(-2, -1)).softmax(dim=-1)
        class Pooling(nn.Module):
            def forward(self, scores):
                weights = scores.softmax(dim=-1)
                return weights
        """,
    "model selection by arg-max over validation accuracy": """
        import numpy as np
        def pick(validation_accuracy, epochs):
            best = np.argmax(validation_accuracy)
            return best == epochs - 1
        """,
    "builtin max and a file's own argmax": """
        def argmax(values):
            return max(range(len(values)), key=values.__getitem__)
        def best(a, b, labels):
            value, index = max(a, b)
            return argmax(labels) == index
        """,
    "a loss the file defines itself, and a softmax nobody reads": """
        import torch.nn.functional as F
        class CrossEntropyLoss:
            pass
        def step(model, x, y):
            criterion = CrossEntropyLoss()
            logits = model(x)
            log_probs = F.log_softmax(logits, dim=1)
            return F.binary_cross_entropy_with_logits(logits, y.float())
        """,
    "multilabel metrics": """
        import evaluate
        import torchmetrics
        from ignite.metrics import Accuracy
        a = torchmetrics.Accuracy(task="multilabel", num_labels=5)
        b = Accuracy(is_multilabel=True)
        c = evaluate.load("f1", "multilabel")
        """,
    "not Python": "def broken(:\n",
    "softmax taught on literal tensors": """
        import numpy as np
        import torch
        from torch import nn
        def softmax(x):
            return torch.exp(x) / torch.exp(x).sum()
        x = torch.tensor([1.0, 2.0, 3.0])
        probabilities = softmax(x)
        torch.softmax(torch.tensor([2.0, 1.0, 0.1]), dim=0)
        nn.Softmax(dim=1)(torch.tensor([[1.0, 2.0, 3.0]]))
        np.exp(np.array([2.0, 1.0])) / np.sum(np.exp(np.array([2.0, 1.0])))
        criterion = nn.BCEWithLogitsLoss()
        """,
    "a flat arg-max of logits, values sorted, a teacher's hard target": """
        import numpy as np
        def f(logits, values, teacher_logits, criterion):
            position = np.argmax(logits)
            ordered, _ = values.sort()
            return criterion(logits, teacher_logits.argmax(dim=-1))
        """,
    "the exp of a model's output normalised by hand, of its output in a formula, and the true label named": """
        import torch
        def scores(model, x, labels):
            logits = model(x)
            e = torch.exp(logits)
            p = e / e.sum(1, keepdim=True)
            energy = torch.log(torch.exp(logits).sum(1))
            names = ["dog" if label == 1 else "cat" for label in labels]
            return p, energy, names
        """,
    "a binary focal loss weighing each 0/1 target entry, and a loss indexing its scores by position": """
        import torch
        import torch.nn.functional as F
        class WeightedFocal(torch.nn.Module):
            def forward(self, inputs, targets):
                bce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
                at = self.alpha.gather(0, targets.long().view(-1))
                return (at * bce.view(-1)).mean()
        class Margin(torch.nn.Module):
            def forward(self, scores, target):
                return F.log_softmax(scores, 1)[:, 0].mean() + scores[target > 0].sum()
        """,
    "the two most confused classes of logits": """
        import torch
        def confused(logits):
            (values, idxs) = torch.topk(logits, k=2, dim=1)
            return values, idxs
        """,
    "label-wise (Hamming) accuracy: matches over a running count of labels.numel()": """
        import torch
        def train(model, loader, THRESHOLD=0.5):
            running_correct = 0
            running_total = 0
            for images, labels in loader:
                predictions = (torch.sigmoid(model(images)) > THRESHOLD).float()
                running_correct += (predictions == labels).sum().item()
                running_total += labels.numel()
            return 100.0 * running_correct / running_total
        """,
    "label-wise (Hamming) accuracy: matches over B x C": """
        import torch
        def score(model, x, y, THRESHOLD=0.5):
            preds = (torch.sigmoid(model(x)) > THRESHOLD).float()
            B, C = y.shape
            return (preds == y).float().sum() / (B * C), (preds == y).sum() / y.numel()
        """,
    "label-wise (Hamming) accuracy of matches bound to a name": """
        import torch
        def hits(model, x, y, THRESHOLD=0.5):
            preds = torch.sigmoid(model(x)) > THRESHOLD
            matches = preds == y
            return matches.long().sum() / torch.numel(y)
        """,
    "label-wise (Hamming) accuracy kept in a metric object's counters": """
        import torch
        class LabelAccuracy:
            def update(self, probs, labels, THRESHOLD=0.5):
                preds = probs > THRESHOLD
                self.correct += (preds == labels.bool()).sum().item()
                self.total += labels.size(0) * labels.size(1)
            def compute(self):
                return self.correct / self.total
        """,
    "predict_step of a ranking module": """
        import torch
        class Ranker:
            def training_step(self, batch, batch_idx):
                return batch
            def predict_step(self, batch, batch_idx):
                return torch.cdist(batch[0], batch[1]).argmin(1)
        """,
}


@pytest.mark.parametrize("source", NEGATIVES.values(), ids=list(NEGATIVES))
def test_multi_label_code_is_left_alone(source: str) -> None:
    assert kinds(source) == []


def test_the_api_takes_a_libcst_module_and_positions_in_characters() -> None:
    text = 'import torch.nn as nn\nname = "é"; criterion = nn.CrossEntropyLoss()\n'
    from_text = find_single_label(text)
    assert find_single_label(cst.parse_module(text)) == from_text
    (construct,) = from_text
    assert isinstance(construct, SingleLabelConstruct)
    assert (construct.line, construct.column, construct.kind) == (2, 25, "single-label-loss")
    assert construct.kind in KINDS
    assert "BCEWithLogitsLoss" in construct.suggestion and construct.message


def test_a_comparison_remembers_the_arg_max_it_uses() -> None:
    (construct,) = find_single_label("def f(model, x, y):\n    p = model(x).argmax(1)\n    return (p == y).sum()\n")
    assert construct.line == 3 and 2 in construct.related_lines


def test_a_criterion_is_related_to_where_it_is_called() -> None:
    text = "import torch.nn as nn\nloss_fn = nn.CrossEntropyLoss()\ndef step(out, y):\n    return loss_fn(out, y)\n"
    (construct,) = find_single_label(text)
    assert construct.line == 2 and 4 in construct.related_lines


# --- ML100 in the engine ---------------------------------------------------------------------


def transform(text: str, **settings):
    transformer = FileTransformer(select_rules(load_rules(), settings.pop("select", ()), settings.pop("ignore", ())), Settings(**settings))
    return transformer.transform(decode_source("t.py", textwrap.dedent(text).encode()))


UNFIXED = """
    import torch

    def score(model, x, y, THRESHOLD=0.5):
        preds = torch.sigmoid(model(x)) > THRESHOLD
        return (preds == y).float().mean()
    """


def test_ml100_reports_what_no_rule_reported():
    result = transform(UNFIXED)
    assert [(f.code, f.line) for f in result.findings_after] == [("ML100", 6)]
    assert [(f.code, f.line) for f in result.findings_before] == [("ML100", 6)]
    assert result.findings_after[0].applicability == "display-only"
    assert "per-element-accuracy" in result.findings_after[0].message


def test_ml100_can_be_ignored_or_selected_alone():
    assert transform(UNFIXED, ignore=("ML100",)).findings_after == []
    assert [f.code for f in transform(UNFIXED, select=("ML100",)).findings_after] == ["ML100"]


def test_ml100_findings_are_positioned_in_the_original_for_check_and_diff():
    # ML001 adds the threshold constant (two lines) above the leftover comparison.
    result = transform(
        """
        import torch
        import torch.nn as nn
        criterion = nn.CrossEntropyLoss()

        def score(model, x, y, THRESHOLD=0.5):
            preds = torch.sigmoid(model(x)) > THRESHOLD
            return (preds == y).float().mean()
        """
    )
    after = result.new_text.splitlines()
    (finding_after,) = [f for f in result.findings_after if f.code == "ML100"]
    (finding_before,) = [f for f in result.findings_before if f.code == "ML100"]
    assert "(preds == y)" in after[finding_after.line - 1]
    assert finding_before.line == 8


def test_a_construct_a_rule_reported_is_not_reported_again():
    result = transform(
        """
        import numpy as np
        from sklearn.metrics import accuracy_score

        def compute_metrics(model, x, y):
            return accuracy_score(y, model(x).argmax(axis=-1))
        """
    )
    assert "ML100" not in {f.code for f in result.findings_after}


def test_a_construct_built_on_a_reported_line_is_reported_at_its_own_line():
    result = transform(
        """
        import numpy as np
        from sklearn.metrics import accuracy_score

        def compute_metrics(model, x, y):
            preds = model(x).argmax(axis=-1)
            return accuracy_score(y, preds)
        """
    )
    [rule, net] = result.findings_after
    assert (rule.code, rule.line) == ("ML023", 6)
    assert (net.code, net.line) == ("ML100", 7)
    assert net.message.endswith("(see ML023 at line 6)")


def test_a_construct_built_on_a_silenced_line_is_not_reported():
    result = transform(
        """
        def accuracy(output, target):
            pred = output.argmax(dim=1)  # migrate-ml: ignore[ML020]
            return (pred == target).float().mean()
        """
    )
    assert result.findings_after == []


def test_the_summary_never_says_zero_findings_for_a_file_still_single_label(tmp_path, capsys):
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(UNFIXED))
    assert main(["rewrite", "--check", str(path)]) == 1  # --check fails on a finding
    out = capsys.readouterr()
    text = out.out + out.err
    assert "ML100" in text and "1 finding needs review" in text


@pytest.mark.parametrize(
    ("source", "line"),
    [
        (
            """
            from torch import nn
            losses = {"ce": nn.CrossEntropyLoss(), "mse": nn.MSELoss()}
            def step(model, x, y):
                return losses["ce"](model(x), y)
            """,
            4,
        ),
        (
            """
            from torch import nn
            class Trainer:
                def __init__(self, model, criterion):
                    self.model, self.criterion = model, criterion
                    self.loss = criterion
                def step(self, x, y):
                    return self.loss(self.model(x), y)
            trainer = Trainer(None, nn.CrossEntropyLoss())
            """,
            7,
        ),
    ],
    ids=["dict", "constructor argument"],
)
def test_an_unfollowed_criterion_is_still_reported_after_the_rewrite(tmp_path, capsys, source, line):
    # The rewrite's note about uses it could not follow must not vanish from a re-scan.
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(source).lstrip())
    main(["rewrite", str(path)])
    capsys.readouterr()
    assert main(["rewrite", "--check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"train.py:{line}:" in out and "ML010 BCE criterion called with targets that are not cast" in out


# --- every fixture's rewritten text is fully reported ----------------------------------------


def _rewritten_fixtures() -> list[Path]:
    cases = []
    for case in sorted((FIXTURES / "rules").glob("*/*.in.py")):
        out = case.with_name(case.name[: -len(".in.py")] + ".out.py")
        cases.append(out if out.exists() else case)
    cases.extend(sorted((FIXTURES / "executed").glob("*.out.py")))
    return cases


def _expected_lines(text: str) -> set[int]:
    lines = set()
    for match in EXPECT.finditer(text):
        for part in match.group(1).split(","):
            code_line = part.strip().split("@")
            if len(code_line) == 2 and code_line[1].strip().isdigit():
                lines.add(int(code_line[1]))
    return lines


@pytest.mark.parametrize("path", _rewritten_fixtures(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_construct_in_a_rewritten_fixture_is_reported(path: Path) -> None:
    """Re-scan each fixture's rewritten text: whatever the detector finds has an ``# expect:`` line."""
    text = path.read_text()
    reported = _expected_lines(text) | {
        line for line, codes in parse_suppressions(text).items() if any("ML100".startswith(c) or c == "*" for c in codes)
    }
    unreported = [
        f"{c.line}: {c.kind}"
        for c in find_single_label(text)
        if not reported.intersection((c.line, *c.related_lines))
    ]
    assert unreported == []


# --- the pre-filter markers ML100 and other rules share --------------------------------------

TRAINING = ["out = model(x)", "net.eval()", "criterion", "loss_fn(a, b)", "accuracy(o, t)", "acc1 += 1",
            "correct_top1 += 1", "predict", "def training_step(self, b)", "compute_metrics", "import torchmetrics"]
LOSS = ["nn.CrossEntropyLoss()", "F.cross_entropy", "BCEWithLogitsLoss", "binary_cross_entropy", "F.nll_loss",
        "nn.NLLLoss()", "criterion", "loss_fn", "loss.backward()"]


@pytest.mark.parametrize("text", TRAINING)
def test_every_training_marker_alternative_still_matches(text: str) -> None:
    assert has_training_marker(f"x = 1\n{text}\n")
    assert not has_training_marker("x = 1\ny = x + 2\n")


@pytest.mark.parametrize("text", LOSS)
def test_every_loss_marker_alternative_still_matches(text: str) -> None:
    assert has_loss_marker(f"x = 1\n{text}\n")
    assert not has_loss_marker("x = 1\ny = x + 2\n")


def test_rewrite_then_check_fails_on_integer_targets_left_at_an_unfollowed_call(tmp_path, capsys):
    # The criterion became BCE; the call migrate-ml could not follow keeps the integer labels.
    fixture = FIXTURES / "rules" / "ML100" / "residue_after_rewrite.in.py"
    path = tmp_path / "train.py"
    path.write_text(fixture.read_text())
    main(["rewrite", str(path)])
    capsys.readouterr()
    assert main(["rewrite", "--check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "train.py:15:" in out and "uncast-target" in out and "at line 23 gets float targets" in out


def test_rewrite_then_check_fails_on_integer_targets_left_in_another_file_of_the_run(tmp_path, capsys):
    (tmp_path / "main.py").write_text(textwrap.dedent(
        """
        from torch import nn
        from engine import evaluate, train_one_epoch

        def main(model, train_loader, val_loader):
            criterion = nn.CrossEntropyLoss()
            train_one_epoch(model, criterion, train_loader)
            evaluate(model, criterion, val_loader)
        """
    ))
    (tmp_path / "engine.py").write_text(textwrap.dedent(
        """
        def train_one_epoch(model, criterion, loader):
            for images, targets in loader:
                criterion(model(images), targets).backward()

        def evaluate(model, criterion, loader):
            losses = {"val": criterion}
            return sum(losses["val"](model(images), targets).item() for images, targets in loader)
        """
    ))
    main(["rewrite", str(tmp_path)])
    capsys.readouterr()
    assert main(["rewrite", "--check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "engine.py:8:" in out and "uncast-target" in out


def test_a_per_class_count_is_described_as_one():
    source = textwrap.dedent(
        """
        import torch
        def correct(yhat, y, threshold=0.5):
            predicted = (torch.sigmoid(yhat) > threshold).long()
            return [(predicted[y == c] == c).sum().item() for c in range(yhat.size(1))]
        """
    )
    [construct] = find_single_label(source)
    assert (construct.line, construct.kind) == (5, "per-element-accuracy")
    assert "per-class count" in construct.message and "B x C" not in construct.message
    assert "labels.sum(0)" in construct.suggestion


def test_inference_code_without_training_gets_the_safety_net(tmp_path, capsys):
    script = tmp_path / "predict.py"
    script.write_text(
        "import numpy as np\n"
        "import torch\n"
        "from mymodels import Classifier\n"
        "clf = Classifier()\n"
        "clf.load_state_dict(torch.load('weights.pt'))\n"
        "clf.eval()\n"
        "logits = clf(torch.rand(1, 3, 32, 32)).detach().numpy()\n"
        "predicted = np.argmax(logits, 1)\n"
    )
    assert main(["rewrite", "--check", str(script)]) == 1
    assert "predict.py:8:13: ML100 still single-label (argmax-prediction)" in capsys.readouterr().out
