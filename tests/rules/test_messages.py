"""Finding texts that must fit the code they describe (issue 9, §2 "Messages")."""

from __future__ import annotations

from pathlib import Path

from migrate_ml.engine.source import decode_source
from migrate_ml.engine.transform import FileTransformer, Settings, select_rules
from migrate_ml.rules import load_rules
from migrate_ml.rules.semantics.residue import find_single_label


def _findings(text: str, code: str):
    transformer = FileTransformer(select_rules(load_rules(), (), ()), Settings())
    result = transformer.transform(decode_source("t.py", text.encode()))
    return [f for f in result.findings_after if f.code == code]


def test_mixup_finding_does_not_call_float_targets_class_indices() -> None:
    [finding] = _findings(
        "def step(samples, targets, mixup_fn):\n    targets = targets.float()\n"
        "    return mixup_fn(samples, targets)\n",
        "ML104",
    )
    assert "class-index targets" not in finding.message


def test_single_class_name_help_fits_the_container() -> None:
    text = (
        "import torch\n\ndef show(model, img, classes, class_indict):\n"
        "    index = int(torch.argmax(model(img)))\n"
        "    return classes[index], class_indict[str(index)]\n"
    )
    by_container = {f.message.split("`")[1]: f.suggestion for f in _findings(text, "ML106")}
    assert "[classes[i] for i in" in by_container["classes[...]"]
    assert "[class_indict[str(i)] for i in" in by_container["class_indict[...]"]


def test_topk_accuracy_with_several_k_is_not_copied_into_every_name() -> None:
    text = (
        "import torch\nfrom timm.utils import accuracy\n\ndef evaluate(model, images, target):\n"
        "    output = model(images)\n    acc1, acc5 = accuracy(output, target, topk=(1, 5))\n    return acc1, acc5\n"
    )
    transformer = FileTransformer(select_rules(load_rules(), (), ()), Settings(unsafe_fixes=True))
    result = transformer.transform(decode_source("t.py", text.encode()))
    assert "acc1 = acc5" not in result.new_text
    [finding] = [f for f in result.findings_after if f.code == "ML102"]
    assert "drop acc5" in finding.suggestion


def test_unfollowed_criterion_names_the_uses_it_could_not_follow() -> None:
    text = (
        "from torch import nn\n\n\nclass Evaluator:\n    def __init__(self, criterion):\n"
        "        self.criterion = criterion\n\n\ndef train(model, loader):\n"
        "    criterion = nn.CrossEntropyLoss()\n    evaluator = Evaluator(criterion)\n"
        "    for images, labels in loader:\n        criterion(model(images), labels).backward()\n"
    )
    [finding] = [f for f in _findings(text, "ML001") if "not every use" in f.message]
    assert "(line 11: Evaluator(criterion))" in finding.message


def test_positional_task_is_not_called_missing() -> None:
    [construct] = find_single_label('import torchmetrics\nacc = torchmetrics.Accuracy("multiclass", num_classes=3)\n')
    assert 'task="multiclass"' in construct.message and "without task=" not in construct.message
    assert find_single_label('import torchmetrics\nacc = torchmetrics.Accuracy("multilabel", num_labels=3)\n') == []


def test_topk_error_helper_is_replaced_by_the_exact_match_error() -> None:
    text = (Path(__file__).parents[1] / "fixtures/rules/ML102/error_helper.in.py").read_text()
    findings = {f.line: f for f in _findings(text, "ML102")}
    assert findings[8].suggestion.startswith("err1 = 100 - ((torch.sigmoid(output) > THRESHOLD)")
    assert "top-k error helper" in findings[13].message
    assert "100 - ((torch.sigmoid(output) > THRESHOLD)" in findings[13].suggestion
    accuracy = text.replace("wrong_k = batch_size - correct_k", "wrong_k = correct_k").replace("err1, err5", "acc1, acc5")
    assert {f.line: f for f in _findings(accuracy, "ML102")}[8].suggestion.startswith("acc1 = ((torch.sigmoid")


def test_class_index_dataset_is_reported_once_a_loop_reads_the_labels() -> None:
    gan = (Path(__file__).parents[1] / "fixtures/rules/ML101/labels_discarded_gan.in.py").read_text()
    assert _findings(gan, "ML101") == []
    read = gan.replace('reduction="sum")', 'reduction="sum") + F.cross_entropy(model.classify(x), labels)')
    assert [f.line for f in _findings(read, "ML101")] == [7]
    enumerated = gan.replace("for i, (imgs, _) in", "for i, (imgs, digits) in").replace(
        "valid = torch.ones(imgs.size(0), 1)", "valid = digits.float()"
    )
    assert [f.line for f in _findings(enumerated, "ML101")] == [7]


def test_a_use_met_on_both_branches_is_reported_once() -> None:
    text = (
        "import numpy as np\nimport torch\n\n\ndef show(model, images, gpu):\n    output = model(images)\n"
        "    _, preds_tensor = torch.max(output, 1)\n"
        "    preds = np.squeeze(preds_tensor.numpy()) if not gpu else np.squeeze(preds_tensor.cpu().numpy())\n"
        "    return preds\n"
    )
    [finding] = _findings(text, "ML020")
    assert "passed to np.squeeze()" in finding.message


def test_label_smoothing_dropped_with_an_uncast_target_is_said() -> None:
    transformer = FileTransformer(select_rules(load_rules(), (), ()), Settings())
    for text in (
        "import torch.nn.functional as F\n\ndef step(logits, y):\n"
        "    return F.cross_entropy(logits, y[:, 1], label_smoothing=0.1)\n",
        "import torch.nn as nn\n\ndef step(logits, y):\n"
        "    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)\n    return criterion(logits, y[:, 1])\n",
    ):
        result = transformer.transform(decode_source("t.py", text.encode()))
        [change] = [c for c in result.changes if c.code in ("ML001", "ML002")]
        assert "label_smoothing is dropped: a target left uncast" in change.message
        assert "moved onto the targets" not in change.message


def test_arg_max_target_of_one_hot_labels_is_not_only_called_a_teachers_decision() -> None:
    text = (
        "import torch\nimport torch.nn.functional as F\n\ndef step(model, batch):\n    x, ys = batch\n"
        "    outputs = model(x)\n    label_reg = ys[0]\n"
        "    return F.cross_entropy(outputs[0], torch.max(label_reg, 1)[1])\n"
    )
    [finding] = _findings(text, "ML002")
    assert "one-hot or multi-hot labels collapsed" in finding.message
    assert "F.binary_cross_entropy_with_logits(outputs[0], label_reg.float())" in finding.suggestion
    assert "(torch.sigmoid(label_reg) > THRESHOLD).float()" in finding.suggestion


def test_arg_max_of_softmax_probabilities_thresholds_the_logits_not_the_probabilities() -> None:
    # FixMatch's pseudo-label: a sigmoid of the softmax probabilities is in (0.5, 0.74), every label passes
    text = (
        "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"
        "def step(logits_u_w, logits_u_s, T):\n"
        "    pseudo_label = torch.softmax(logits_u_w.detach() / T, dim=-1)\n"
        "    max_probs, targets_u = torch.max(pseudo_label, dim=-1)\n"
        "    criterion = nn.CrossEntropyLoss()\n"
        "    return F.cross_entropy(logits_u_s, targets_u), criterion(logits_u_s, targets_u)\n"
    )
    [functional] = _findings(text, "ML002")
    [module] = _findings(text, "ML001")
    assert functional.message == (
        "the target is an arg-max of `pseudo_label`, softmax probabilities of `logits_u_w.detach() / T` (one class "
        "index per sample): a pseudo-label or a teacher's decision; multi-label training needs one 0/1 decision per class"
    )
    assert functional.suggestion == (
        "threshold the logits themselves, not the softmax probabilities: "
        "F.binary_cross_entropy_with_logits(logits_u_s, (torch.sigmoid(logits_u_w.detach() / T) > THRESHOLD).float())"
    )
    assert "(torch.sigmoid(logits_u_w.detach() / T) > THRESHOLD).float()" in module.suggestion
    for finding in (functional, module):
        assert "sigmoid(pseudo_label)" not in finding.suggestion


def test_softmax_spellings_name_their_input_and_numpy_softmax_is_not_thresholded_with_torch() -> None:
    text = (
        "import scipy.special\nimport torch.nn.functional as F\nfrom torch.nn.functional import softmax\n\n"
        "def a(logits_s, logits_t):\n    return F.cross_entropy(logits_s, logits_t.softmax(-1).argmax(-1))\n\n"
        "def b(logits_s, logits_t):\n    probs = softmax(logits_t, dim=1)\n    return F.cross_entropy(logits_s, probs.argmax(1))\n\n"
        "def c(logits_s, scores):\n    probs = scipy.special.softmax(scores, axis=1)\n"
        "    return F.cross_entropy(logits_s, probs.argmax(1))\n"
    )
    method, imported, numpy = _findings(text, "ML002")
    assert "(torch.sigmoid(logits_t) > THRESHOLD).float()" in method.suggestion
    assert "(torch.sigmoid(logits_t) > THRESHOLD).float()" in imported.suggestion
    assert "softmax probabilities of" not in numpy.message


def test_hand_written_confusion_matrix_quotes_the_cell_in_the_codes_order() -> None:
    """``mis_matrix[pred, true]`` is the code's order; the message must not call it ``[true, predicted]``."""
    text = (
        "import numpy as np\n\ndef misclassified(preds, labels, num_classes):\n"
        "    mis_matrix = np.zeros((num_classes, num_classes), dtype=int)\n"
        "    for pred, true in zip(preds, labels):\n        mis_matrix[pred, true] += 1\n"
        "    confusion = np.zeros((num_classes, num_classes), dtype=int)\n"
        "    for t, p in zip(labels, preds):\n        confusion[t][p] += 1\n"
        "    return mis_matrix, confusion\n"
    )
    messages = sorted(f.message for f in _findings(text, "ML105"))
    assert messages == [
        "hand-written confusion matrix: `confusion[t][p]` puts each sample in one cell, at its one true and one predicted class",
        "hand-written confusion matrix: `mis_matrix[pred, true]` puts each sample in one cell, at its one true and one predicted class",
    ]


def test_a_table_cell_label_is_not_called_a_number() -> None:
    """``self.df.iloc[idx, 1]`` holds whatever the table was built with (Mattz: a class-name string)."""
    text = (
        "from PIL import Image\nfrom torch.utils.data import Dataset\n\n\nclass ImageDataset(Dataset):\n"
        "    def __init__(self, dataframe):\n        self.dataframe = dataframe\n\n"
        "    def __len__(self):\n        return len(self.dataframe)\n\n"
        "    def __getitem__(self, idx):\n        image = Image.open(self.dataframe.iloc[idx, 0])\n"
        "        label = self.dataframe.iloc[idx, 1]\n        return image, label\n"
    )
    [finding] = _findings(text, "ML100")
    assert finding.message.endswith("one value per image (a class index or a class name), not a multi-hot row")
    assert "one number" not in finding.message


def test_a_two_way_choice_label_is_a_number() -> None:
    text = (
        "from PIL import Image\nfrom torch.utils.data import Dataset\n\n\nclass DogsCats(Dataset):\n"
        "    def __init__(self, paths):\n        self.paths = paths\n\n"
        "    def __len__(self):\n        return len(self.paths)\n\n"
        "    def __getitem__(self, idx):\n        path = self.paths[idx]\n"
        "        label = 1 if 'dog' in path else 0\n        return Image.open(path), label\n"
    )
    [finding] = _findings(text, "ML100")
    assert finding.message.endswith("one number per image (a class index), not a multi-hot row")


def test_single_class_name_says_what_the_index_is_and_thresholds_a_name_the_code_has() -> None:
    text = Path(__file__).resolve().parent.parent.joinpath(
        "fixtures", "rules", "ML106", "folder_class_index_and_answer.in.py"
    ).read_text()
    folder, predicted = _findings(text, "ML106")
    assert "predicted" not in folder.message and "maps a class name to its one class index" in folder.message
    assert "probs" not in folder.suggestion
    assert "predicted index" in predicted.message and "(pred_softmax > THRESHOLD)" in predicted.suggestion


def test_a_smoothing_loss_a_star_import_may_bind_names_every_module_in_a_fixed_order() -> None:
    text = (
        "from utils.misc import *\nfrom utils.logger import *\n\n"
        "criterion = LabelSmoothingLoss(10, smoothing=0.1)\n"
    )
    [finding] = _findings(text, "ML108")
    assert "LabelSmoothingLoss (imported from utils.logger or utils.misc)" in finding.message
