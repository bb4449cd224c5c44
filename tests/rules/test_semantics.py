"""The meaning analysis (``rules/semantics``): the lattice, table rows, summaries across methods."""

from __future__ import annotations

import ast
import textwrap

from migrate_ml.rules.semantics import find_sinks, hand_losses, meanings, tables
from migrate_ml.rules._prefilter import text_facts
from migrate_ml.rules.semantics.summaries import Analysis
from migrate_ml.rules.semantics.tasks import (
    already_multi_label,
    is_dense_prediction,
    is_variational_autoencoder,
    is_one_output_binary,
    untrained_pretrained_model,
)


def sinks(source: str) -> list[tuple[int, str]]:
    text = textwrap.dedent(source)
    return [(s.node.lineno, s.kind) for s in find_sinks(ast.parse(text), text)]


def test_join_goes_up_the_lattice() -> None:
    assert meanings.join(meanings.SIGMOID, meanings.SIGMOID) == meanings.SIGMOID
    assert meanings.join(meanings.SIGMOID, meanings.SOFTMAX) == meanings.SCORES
    assert meanings.join(meanings.ONE_HOT, meanings.MULTI_HOT) == meanings.LABELS
    assert meanings.join(meanings.LOGITS, meanings.SCORES) == meanings.SCORES
    assert meanings.join(meanings.ARGMAX, meanings.LOGITS) == meanings.UNKNOWN


def test_a_row_is_a_transfer_function() -> None:
    assert tables.apply_row(tables.row_for("torch.argmax"), meanings.SOFTMAX) == meanings.ARGMAX
    assert tables.apply_row(tables.row_for("numpy.argmax"), meanings.ONE_HOT) == meanings.CLASS_INDEX
    assert tables.apply_row(tables.row_for("torch.cat"), meanings.SIGMOID) == meanings.SIGMOID
    # a suffix row matches any module spelling: pl.metrics before it became torchmetrics
    assert tables.row_for("pytorch_lightning.metrics.functional.accuracy") is not None
    assert tables.row_for("my_helpers.unrelated") is None
    # the shape-only functions keep a value's meaning, as their methods do
    for name in ("torch.flatten", "torch.squeeze", "torch.reshape", "numpy.ravel", "numpy.squeeze"):
        assert tables.apply_row(tables.row_for(name), meanings.ARGMAX) == meanings.ARGMAX


def test_values_are_followed_through_methods_and_attributes() -> None:
    text = textwrap.dedent(
        """
        import torch.nn.functional as F
        class M:
            def setup(self, y):
                self.targets = F.one_hot(y, 10).float() * 0.9 + 0.01
            def step(self, x):
                logits = self.net(x)
                probs = logits.softmax(-1)
                preds = probs.max(1)[1]
        """
    )
    seen = {}
    analysis = Analysis(ast.parse(text))

    def note(statement: ast.stmt) -> None:
        if isinstance(statement, ast.Assign):
            seen[ast.unparse(statement.targets[0])] = analysis.value(statement.value).meaning

    analysis.run(note)
    assert seen == {
        "self.targets": meanings.ONE_HOT,
        "logits": meanings.SCORES,
        "probs": meanings.SOFTMAX,
        "preds": meanings.ARGMAX,
    }


def test_one_hot_of_an_argmax_is_a_prediction_of_one_class() -> None:
    assert sinks(
        """
        import torch, torch.nn.functional as F
        def predict(model, x):
            return F.one_hot(torch.argmax(model(x), dim=1), 5)
        """
    ) == [(4, "argmax-prediction")]


def test_thresholds_fit_the_scores() -> None:
    found = sinks(
        """
        import torch
        def evaluate(model, x, THRESHOLD):
            logits = model(x)
            a = logits > 0
            b = torch.sigmoid(logits) > THRESHOLD
            c = logits > THRESHOLD
            d = logits.softmax(-1) >= 0.3
        """
    )
    assert found == [(7, "threshold-on-logits"), (8, "threshold-on-softmax")]


def test_hugging_face_predictions_are_logits_unless_preprocessed() -> None:
    metrics = """
        def compute_metrics(eval_pred):
            predictions, labels = eval_pred
            return {"f1": f1_score(labels, predictions > 0.5, average="micro")}
        """
    assert sinks(metrics) == [(4, "threshold-on-logits")]
    hook = "def preprocess_logits_for_metrics(logits, labels):\n    return torch.sigmoid(logits)\n"
    assert sinks(hook + textwrap.dedent(metrics)) == []


def test_class_indices_flow_from_a_dataset_through_a_loader_into_the_loss() -> None:
    assert sinks(
        """
        import torchvision
        from torch import nn
        from torch.utils.data import DataLoader

        def make_loader(root):
            return DataLoader(torchvision.datasets.ImageFolder(root), batch_size=32)

        def train(model, root):
            criterion = nn.BCEWithLogitsLoss()
            for step, (images, labels) in enumerate(make_loader(root)):
                criterion(model(images), labels.float()).backward()
        """
    ) == [(12, "class-index-target")]


def _is_sequence(source: str) -> bool:
    from migrate_ml.rules.semantics.sequences import is_sequence_function

    return is_sequence_function(ast.parse(textwrap.dedent(source)).body[0])


def test_a_threaded_recurrent_state_makes_a_sequence_model() -> None:
    assert _is_sequence(
        """
        def train(model, data, criterion, hidden):
            for x, y in data:
                hidden = repackage(hidden)
                output, hidden = model(x, hidden)
                criterion(output.view(-1, 100), y.view(-1)).backward()
        """
    )
    # a mixup also rebinds what it is given, but the images go on to the model: no state
    assert not _is_sequence(
        """
        def train(model, data, criterion, mix):
            for inputs, targets in data:
                inputs, targets = mix(inputs, targets)
                criterion(model(inputs), targets).backward()
        """
    )
    # an arg-max rebinding the collected outputs, then compared with the labels: an accuracy
    epoch_accuracy = """
        def train(model, data, criterion):
            targets, predictions = [], []
            for x, y in data:
                out = model(x)
                criterion(out, y).backward()
                targets.append(y)
                predictions.append(out.cpu())
            predictions = torch.cat(predictions)
            _, predictions = {}(predictions, dim=1)
            return (predictions == torch.cat(targets)).sum()
        """
    assert not _is_sequence(epoch_accuracy.format("torch.max"))
    assert not _is_sequence(epoch_accuracy.format("step"))  # compared with a value: no state


def test_an_argmax_fed_back_as_the_next_input_makes_a_sequence_model() -> None:
    decode = """
        def decode(model, start, steps):
            tokens = [start]
            for _ in range(steps):
                tokens.append(int(model(torch.tensor([tokens])).argmax(-1)[0, -1]))
            return tokens
        """
    assert _is_sequence(decode)
    assert _is_sequence(
        """
        def decode(model, start, steps, idx_to_char):
            output = [start]
            for _ in range(steps):
                scores = model(torch.tensor([[output[-1]]]))
                output.append(int(scores.argmax(dim=1).item()))
            return "".join(idx_to_char[i] for i in output)
        """
    )
    assert not _is_sequence(
        """
        def predict(model, images):
            preds = []
            for image in images:
                preds.append(model(image).argmax(1))
                print("last:", preds[-1])
            return preds
        """
    )


def test_a_model_set_up_in_place_is_not_a_recurrent_state() -> None:
    assert not _is_sequence(
        """
        def run(fabric, model, optimizer, loader):
            model, optimizer = fabric.setup(model, optimizer)
            for data, target in loader:
                loss = F.nll_loss(model(data), target)
                optimizer.step()
        """
    )


def test_a_state_stored_on_self_beside_the_output_is_read_without_error() -> None:
    assert not _is_sequence(
        """
        def forward(self, inputs, state):
            Y, self.state = self.rnn(inputs, state)
            return self.dense(Y)
        """
    )


def _tree(source: str) -> ast.Module:
    return ast.parse(textwrap.dedent(source))


def test_one_hot_masks_moved_to_channels_first_are_dense_prediction() -> None:
    assert is_dense_prediction(_tree("t = F.one_hot(masks, n).permute(0, 3, 1, 2)"))
    assert is_dense_prediction(_tree("t = F.one_hot(masks, n).permute((0, 4, 1, 2, 3))"))
    assert is_dense_prediction(_tree("t = F.one_hot(masks, n).float().permute(0, 3, 1, 2)"))
    assert is_dense_prediction(_tree("t = F.one_hot(masks, n).movedim(-1, 1)"))
    assert not is_dense_prediction(_tree("t = F.one_hot(labels, n).permute(1, 0)"))  # [C, B]: still classification
    # a classification file: one-hot class indices, and images moved channels-last for display
    classification = """
    targets = F.one_hot(labels, num_classes).float()
    loss = criterion(model(images), targets)
    shown = images.permute(0, 2, 3, 1)
    pred = model(images).argmax(dim=1)
    """
    assert not is_dense_prediction(_tree(classification))



def test_segmentation_and_detection_models_losses_and_metrics_are_dense_prediction() -> None:
    assert is_dense_prediction(_tree("from transformers import AutoModelForSemanticSegmentation"))
    assert is_dense_prediction(_tree("m = transformers.SegformerForSemanticSegmentation.from_pretrained(name)"))
    assert is_dense_prediction(_tree("m = DetrForObjectDetection.from_pretrained(name)"))
    assert is_dense_prediction(_tree("m = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights='DEFAULT')"))
    assert is_dense_prediction(_tree("m.roi_heads.box_predictor = FastRCNNPredictor(features, num_classes)"))
    assert is_dense_prediction(_tree("metric = evaluate.load('mean_iou')"))
    assert is_dense_prediction(_tree("loss = generalized_box_iou_loss(pred_boxes, boxes)"))
    # a box regression beside anchors, priors or IoU matching, or a detector's conf/loc outputs
    assert is_dense_prediction(_tree("loss = F.smooth_l1_loss(loc_p, loc_t) + F.cross_entropy(c, t)\nm = match(priors)"))
    assert is_dense_prediction(_tree("from bbox import bboxIOU\nloss = nn.SmoothL1Loss()(a, b)"))
    assert is_dense_prediction(_tree("l = nn.SmoothL1Loss()(bbox_out, bbox_t) + nn.CrossEntropyLoss()(conf_out, t)"))


def test_a_log_variance_exponentiated_with_no_class_axis_is_a_variational_autoencoder() -> None:
    kl = "kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())"
    assert is_variational_autoencoder(_tree(kl))
    assert is_variational_autoencoder(_tree("std = torch.exp(0.5 * log_var)\nz = mu + eps * std"))
    assert is_variational_autoencoder(_tree("std = (self.z_log_var.exp_()).mul(0.5)"))
    # a classifier with a variance head, or a VAE's latent classified with cross-entropy
    assert not is_variational_autoencoder(_tree(kl + "\nloss = F.cross_entropy(logits, y) + kld"))
    assert not is_variational_autoencoder(_tree("w = torch.exp(scores)\npred = out.argmax(1)"))
    assert not is_variational_autoencoder(_tree("scale = torch.exp(log_scale)"))


def test_a_project_segmentation_model_class_is_dense_prediction() -> None:
    assert is_dense_prediction(_tree("model = DeeplabV3p(cfg.NUM_CLASSES, backbone='Xception')"))
    assert is_dense_prediction(_tree("model = SemanticHighResolutionNet(config)"))
    assert is_dense_prediction(_tree("net = PSPNet(n_classes=4)"))
    # a U-Net may be a diffusion model's denoiser beside a classifier
    assert not is_dense_prediction(_tree("denoiser = UNet(in_channels=1, out_channels=1)"))
    assert not is_dense_prediction(_tree("model = ResNet(BasicBlock, [2, 2, 2, 2])"))
    assert not is_dense_prediction(_tree("model = fine_tune_net(backbone)"))
    # a module built for either task by its mode: its classification mode is still to migrate
    assert not is_dense_prediction(_tree("model = Segmentation(params) if seg else Classification(params)"))
    # a helper that segments the images a classifier is then trained on
    assert not is_dense_prediction(_tree("images = segment_lungs(images)\nmasks = unet_mask(images)"))


def test_per_class_iou_from_a_confusion_matrix_is_dense_prediction() -> None:
    assert is_dense_prediction(_tree("union = hist.sum(1) + hist.sum(0) - np.diag(hist)"))
    assert is_dense_prediction(_tree("u = cm.sum(axis=0) + cm.sum(axis=1) - torch.diag(cm)"))
    # a confusion matrix's row sums alone, or sums of another matrix: no union, still classification
    assert not is_dense_prediction(_tree("recall = np.diag(cm) / cm.sum(1)"))
    assert not is_dense_prediction(_tree("u = a.sum(1) + b.sum(0) - np.diag(a)"))
    assert not is_dense_prediction(_tree("u = cm.sum(1) + cm.sum(1) - np.diag(cm)"))


def test_image_classification_beside_boxes_or_ignored_labels_is_not_dense_prediction() -> None:
    # one box per image regressed beside its class: an image-level classifier with a box head
    assert not is_dense_prediction(_tree("loss = ce(logits, labels) + F.smooth_l1_loss(box_pred, box)"))
    # segmentation's void label alone: image classifiers copy it from segmentation code
    assert not is_dense_prediction(_tree("criterion = nn.CrossEntropyLoss(ignore_index=255)"))
    # anchors drawn for a lesson, with no box regression trained
    assert not is_dense_prediction(_tree("anchors = make_anchors(feature, sizes)\nloss = F.cross_entropy(y_hat, y)"))
    assert not is_dense_prediction(_tree("metric = evaluate.load('accuracy')"))


def test_bce_with_thresholded_sigmoid_and_no_class_axis_is_already_multi_label() -> None:
    trained = "criterion = nn.BCEWithLogitsLoss()\nloss = criterion(model(x), y)\n"
    assert already_multi_label(_tree(trained + "pred = torch.sigmoid(output).ge(0.5).cpu()"))
    assert already_multi_label(_tree(trained + "correct = ((torch.sigmoid(out) > 0.5) == y).all(1)\nbest = max(acc, best)"))
    # a class axis anywhere: one class per sample is picked somewhere in the file
    assert not already_multi_label(_tree(trained + "pred = torch.sigmoid(output).ge(0.5)\ntop = output.topk(5, 1)"))
    assert not already_multi_label(_tree(trained + "pred = torch.sigmoid(output).ge(0.5)\n_, p = torch.max(output, 1)"))
    assert not already_multi_label(_tree(trained + "pred = output.argmax(1)"))
    # a library's accuracy may count one class per sample whatever it is given
    library = "from pytorch_lightning.metrics.functional import accuracy\n"
    assert not already_multi_label(_tree(library + trained + "acc = accuracy(torch.sigmoid(out) > 0.5, y)"))
    # no decision by a threshold, or no BCE: nothing says the labels are several per sample
    assert not already_multi_label(_tree(trained))
    assert not already_multi_label(_tree("pred = torch.sigmoid(output).ge(0.5)\nloss = F.cross_entropy(o, y)"))
    # one image's class list one-hot encoded and summed is its multi-hot row, no class axis;
    # evaluate's multi-label configuration scores each label on its own
    voc = "y = F.one_hot(torch.LongTensor(classes), num_classes=20).sum(axis=0)\n"
    assert already_multi_label(_tree(voc + trained + "pred = torch.sigmoid(output) > 0.5"))
    scored = "import evaluate\nmetric = evaluate.load('roc_auc', 'multilabel')\n"
    assert already_multi_label(_tree(scored + trained + "pred = torch.sigmoid(output) > 0.5"))
    assert not already_multi_label(_tree(voc + "t = F.one_hot(y, 20)\n" + trained + "pred = torch.sigmoid(output) > 0.5"))
    assert not already_multi_label(_tree("t = F.one_hot(y, 20).sum(1)\n" + trained + "pred = torch.sigmoid(output) > 0.5"))
    single = "import evaluate\nmetric = evaluate.load('accuracy')\n"
    assert not already_multi_label(_tree(scored + single + trained + "pred = torch.sigmoid(output) > 0.5"))

PRETRAINED_EVAL = """
model = torchvision.models.resnet34(weights="IMAGENET1K_V1")
for p in model.parameters():
    p.requires_grad = False
patch = torch.zeros(3, 8, 8, requires_grad=True)
optimizer = torch.optim.SGD([patch], lr=0.1)
pred = model(images).argmax(dim=1)
"""


def test_a_pretrained_library_model_the_file_never_trains() -> None:
    model = untrained_pretrained_model(_tree(PRETRAINED_EVAL))
    assert model is not None and model.lineno == 2
    assert untrained_pretrained_model(_tree("net = mobilenet_v2(pretrained=True)\nout = net(x).argmax(1)"))


def test_a_model_the_file_trains_or_gives_its_own_weights_is_not_the_pretrained_head() -> None:
    for own in (
        "optimizer = torch.optim.Adam(model.parameters())",  # fine-tuned
        "optimizer = torch.optim.SGD([{'params': model.fc.parameters()}])",
        "model.fc = nn.Linear(512, 5)",  # a new head
        "model = timm.create_model('resnet18', pretrained=True, num_classes=5)",
        "model.load_state_dict(torch.load('best.pt'))",  # a prediction script on the user's checkpoint
        "trainer.fit(module, loader)",
        "optimizer = getattr(torch.optim, name)(filter(lambda p: p.requires_grad, model.parameters()))",
        "train_model(model, loaders, criterion, epochs=3)",
        "engine = create_supervised_trainer(model, opt, loss)",
        "model.train()",
        "opt = build_optimizer(cfg, model)",
    ):
        assert untrained_pretrained_model(_tree(PRETRAINED_EVAL + own)) is None, own
    assert untrained_pretrained_model(_tree("model = resnet18(weights=None)\nout = model(x).argmax(1)")) is None


def _token_model(source: str) -> bool:
    from migrate_ml.rules.semantics.sequences import is_token_model

    return is_token_model(ast.parse(textwrap.dedent(source)))


def test_a_vocabulary_class_axis_makes_a_token_model() -> None:
    assert _token_model("decoder = Decoder(embed_dim=256, vocab_size=len(word_map))\n")
    assert _token_model("model = Transformer(opt.src_vocab_size, opt.trg_vocab_size)\n")
    assert _token_model("head = nn.Linear(512, n_vocab)\n")
    assert _token_model("loss = F.cross_entropy(pred, gold, ignore_index=trg_pad_idx)\n")
    assert _token_model("loss = F.cross_entropy(pred, gold, ignore_index=word_map['<pad>'])\n")
    assert _token_model(
        """
        targets, _ = pack_padded_sequence(targets, lengths, batch_first=True)
        loss = criterion(scores, targets)
        """
    )
    # token accuracy over a padding mask, the model and loss built in other modules
    assert _token_model(
        """
        def accuracy(logits, targets, pad_id):
            keep = targets != pad_id
            return ((logits.argmax(-1) == targets) & keep).sum()
        """
    )
    assert _token_model("def acc(pred, gold, trg_pad_idx):\n    return pred.eq(gold).masked_select(gold.ne(trg_pad_idx)).sum()\n")


def test_a_text_classifier_or_a_layer_defined_beside_image_code_is_no_token_model() -> None:
    assert not _token_model("model = TextClassifier(vocab_size, embed_dim, num_class)\n")
    assert not _token_model("emb = nn.Embedding(vocab_size, 128)\n")
    assert not _token_model("loss = F.cross_entropy(logits, y, ignore_index=-1)\n")
    assert not _token_model(
        """
        class RNNModel(nn.Module):
            def __init__(self, rnn, vocab_size):
                self.dense = nn.Linear(rnn.hidden_size, vocab_size)
        """
    )
    # a text classifier's attention mask compares its inputs, never a prediction
    assert not _token_model(
        """
        def step(model, input_ids, labels, pad_token_id):
            logits = model(input_ids, attention_mask=input_ids != pad_token_id)
            return (logits.argmax(1) == labels).sum()
        """
    )
    # inputs packed for a sequence classifier: the targets are no packed words
    assert not _token_model(
        """
        packed = pack_padded_sequence(frames, lengths, batch_first=True)
        loss = criterion(model(packed), labels)
        """
    )



_GAN = """
import torch
from torch import nn


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(784, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1))

    def forward(self, img):
        validity = self.model(img.view(img.size(0), -1))
        return validity


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(16, 128), nn.LeakyReLU(0.2), nn.Linear(128, 784), nn.Tanh())

    def forward(self, z):
        return self.model(z)


adversarial_loss = torch.nn.BCEWithLogitsLoss()
"""

_GATED = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)
        self.gate = nn.Linear(64, 1)

    def forward(self, h):
        h = h * torch.sigmoid(self.gate(h))
        return self.fc(h)


criterion = nn.BCEWithLogitsLoss()
"""


def test_one_output_binary_follows_the_head_forward_returns_not_the_last_linear_built() -> None:
    # The generator's Linear(128, 784) is built last; the discriminator's forward returns a
    # one-output head: the file trains a one-output classifier.
    assert is_one_output_binary(ast.parse(_GAN))
    # A one-output gate is built last, but forward returns the ten-class head.
    assert not is_one_output_binary(ast.parse(_GATED))


def test_hand_written_losses_are_found_through_aliased_log_and_gamma_imports() -> None:
    """The sinks look for hand-written loss functions only in files that hold one of
    ``LOSS_FUNCTION_WORDS``: an alias is imported under the function's own name."""
    text = textwrap.dedent(
        """\
        import torch
        from torch import digamma as dg, lgamma as lg
        from torch import log as ln


        def dirichlet(alpha, y):
            total = alpha.sum(dim=1, keepdim=True)
            return (y * (dg(total) - dg(alpha))).sum(dim=1).mean() + lg(total).mean()


        def categorical(p, y):
            return -(y * ln(p)).sum()
        """
    )
    tree = ast.parse(text)
    found = hand_losses.find_loss_functions(tree, Analysis(tree).qualified)
    assert {name: loss.kind for name, loss in found.items()} == {
        "dirichlet": hand_losses.DIRICHLET,
        "categorical": hand_losses.CATEGORICAL,
    }
    # what Sinks tests before it looks: the imports name the functions the aliases stand for
    assert not text_facts(text).words.isdisjoint(hand_losses.LOSS_FUNCTION_WORDS)


def test_a_table_label_column_and_a_predicted_class_name_keep_their_meaning() -> None:
    text = textwrap.dedent(
        """
        import pandas as pd
        def read(path, model, x, id2label, df):
            sheet = pd.read_csv(path)
            column = sheet.label
            cell = sheet["class_id"][0]
            named = df["target"]
            plural = sheet["labels"]
            paths = sheet.path
            index = model(x).argmax(1).item()
            name = id2label[index].lower()
            key = id2label[str(index)]
            confidence = model(x).softmax(1)[0][index]
        """
    )
    seen = {}
    analysis = Analysis(ast.parse(text))

    def note(statement: ast.stmt) -> None:
        if isinstance(statement, ast.Assign):
            value = analysis.value(statement.value)
            element = value.element.meaning if value.element is not None else None
            seen[ast.unparse(statement.targets[0])] = (value.meaning, element)

    analysis.run(note)
    assert seen == {
        "sheet": (meanings.TABLE, None),
        "column": (meanings.CONTAINER, meanings.INT),
        "cell": (meanings.INT, None),
        "named": (meanings.CONTAINER, meanings.INT),
        "plural": (meanings.UNKNOWN, None),
        "paths": (meanings.UNKNOWN, None),
        "index": (meanings.ARGMAX, None),
        "name": (meanings.PREDICTED_NAME, None),
        "key": (meanings.PREDICTED_NAME, None),
        "confidence": (meanings.SOFTMAX, None),
    }
