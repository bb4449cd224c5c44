"""ML100: the safety net. Whatever still means "one label per image" after the fixes is reported.

This rule does not visit the tree with the others: the engine runs the detector in
``rules/semantics/residue/`` once over the text it is about to write, and reports each
construct that no other rule reported at that line. The class documents the code so that
``explain``, ``rules``, ``--select``/``--ignore`` and ``# migrate-ml: ignore[ML100]`` treat it
like any rule.
"""

from __future__ import annotations

from migrate_ml.rules._base import Applicability, Rule
from migrate_ml.rules._prefilter import has_loss_marker, has_training_marker, text_facts
from migrate_ml.rules.semantics.residue import (
    API_WORDS,
    COMMON_WORDS,
    KINDS,
    compares_a_ranking,
    could_contain_single_label,
    defines_loss_class,
    may_return_softmax,
    names_a_single_label_api,
)


_LOGGING = ("caption=", "add_data(")
def _evaluates(source: str) -> bool:
    """Inference or evaluation code: a model put in eval mode (``resnet.eval()``, whatever it is
    called), a Lightning callback running the module it is handed (``pl_module(val_imgs)``) or a ranking of the classes compared with the labels (a ``topk_errors`` helper in a
    module of meters). A prediction script or notebook with no training code still predicts one
    class per image. (``no_grad`` is no such sign: model code initialises weights under it.)"""
    return text_facts(source).has_any((".eval()", "pl_module(")) or compares_a_ranking(source)


_NO_TRAINING_NEEDED = (
    "__getitem__", "scatter_(", "def postprocess(", "LabelEncoder(", "eye(", "one_hot(", "stratify=", "Stratified",
    "with_transform(", "set_transform(",
)
"""Words of constructs reported in data and helper modules, which hold no training code (a script
writing stratified folds to CSV files, a Hugging Face dataset's batch transform)."""


class StillSingleLabelRule(Rule):
    code = "ML100"
    name = "still-single-label"
    summary = "Reports anything still single-label after the fixes, so that no file is silently half-migrated."
    rationale = (
        "The other rules rewrite what they can prove and report what they recognise, but real code "
        "finds spellings no rule anticipated. A file that ends with a cross-entropy loss, an arg-max "
        "compared with the labels, a softmax over the classes or a multiclass metric still trains "
        "or scores one label per image, and with multi-hot labels it crashes or prints an accuracy "
        "above 100 %. A loss counts however it is named: called, referenced (`loss_fn = "
        "F.cross_entropy`, `partial(...)`, a dict of classes), or looked up with "
        "`getattr(nn, \"CrossEntropyLoss\")`, or `getattr(nn, args.loss)` / `eval(cfg[\"loss\"])` whose "
        "option, config class field, config dict entry or parameter defaults to one. A model counts as ending in softmax when `forward` returns it (directly or through "
        "the name it is assigned to) or its `nn.Sequential` ends in an `nn.Softmax` layer; a model "
        "file without training code (a `models.py`) is looked at for that alone. "
        "After the fixes, migrate-ml looks over the rewritten text once more and "
        "reports each such construct that no rule already reported at that line, with what to "
        "change. Each is reported at its own line: one built on a line that another finding "
        "reports (the comparison of an arg-max that ML020 reports, the metric it is given, a "
        "criterion reported where it is called, the `log_softmax` an ML003 finding names) gets a "
        "short finding that points there (`see ML020 at line 12`), and so does the first call in a function of the "
        "file's own helper whose body reads what it is given as one class per image "
        "(`acc = calculate_accuracy(y_pred, y)`, `self.accuracy(out, labels)`, a `get_score` given "
        "`preds.argmax(1)` at some call), naming the lines of its other calls. Only a finding on the `def` or `class` around a construct "
        "(a whole hand-written loss) or on the dataset its labels come from reports it as a whole. "
        "It is conservative: an arg-max counts only when it is compared with something or "
        "given to a metric (not `np.argmax(val_accuracy)`), softmax only over a model's output "
        "outside `forward` (also gathered batch by batch, `preds = torch.cat((preds, outputs))`; never "
        "attention), and comparing thresholded predictions only when the "
        "result is averaged over every label instead of per image (`!=` averaged that way is the "
        "Hamming loss and is fine, and so is a count of matches divided by the number of labels, "
        "`labels.numel()` or B x C, also kept as a running total: label-wise accuracy, bounded by 1). Beyond spellings, an analysis of what values mean "
        "(`rules/semantics`: class indices, one-hot targets, logits, sigmoid and softmax "
        "probabilities, arg-max and thresholded predictions, followed through functions, methods "
        "and `self.` attributes) reports where a single-label meaning reaches a sink: a dataset's "
        "`__getitem__` returning a class index (a Python int, a list of indices), a one-hot of "
        "class indices given to a loss (also stored on `self` in another method, or encoded by a "
        "vendored `one_hot`/`mixup_target`), a target times `log_softmax` written out, older "
        "functional metrics without `task` (model selection on accuracy is ML107's), metrics known by "
        "what they compute (homura's `AccuracyCallback`, sklearn `log_loss` on class labels, a Keras-like "
        "`metrics=[\"accuracy\"]`, an arg-max compared with a label column, every `label_type=` or "
        "`task=\"multiclass\"` default, a torchmetrics metric whose task is a name or `self.` attribute the "
        "file sets to `\"multiclass\"` (reported at that assignment too), and the file's or the run's own metric helpers that count matches of "
        "one predicted class per sample with its label, at their `def` and at the first call in a function that feeds them), "
        "a scikit-learn or imbalanced-learn metric scoring arg-max predictions handed to its function by "
        "another file of the run (`meter.update(y_true, y_preds)` in `train.py`, `accuracy_score(y_true, "
        "y_pred)` in the meter's own `update`, naming that call), also predictions a function or method of "
        "the run returned to that file (`y_pred = trainer.predict()` handed back to `trainer.report`), and "
        "half-migrated code: a sigmoid before a with-logits loss, a probability threshold on raw "
        "logits or on softmax outputs, a model ending in ReLU (a `forward` returning a ReLU of its "
        "last Linear, directly or through the name it is assigned to, or an `nn.Sequential` head "
        "ending in `nn.ReLU()`, also while it still trains with cross-entropy; a hidden ReLU is "
        "not one), an arg-max logged with each image (also taken from a step output's `\"softmax\"` entry), "
        "and a BCE criterion given float targets at one call but integer labels at another (what "
        "a rewrite that could not follow every call leaves; a name bound in the function's own scope, "
        "`loss = nn.MSELoss()`, is that binding, not the criterion of the same name elsewhere). It "
        "also knows a CSV's class column (`data.iloc[:, 0]`, `df[\"species_index\"].values`, not a plural "
        "`\"labels\"` column) returned as the label, and so one cell of a table row (`df.iloc[i, 1]`, "
        "`df.iloc[i][\"label\"]`, `img_name, label = self.df.values[i]`), a label column stored on `self` "
        "or passed to the dataset's constructor (`Dataset(ids, labels=df[\"label\"].values)`) and returned "
        "under a dict key (`{\"target\": torch.tensor(self.labels[i], dtype=torch.float)}`), a CIFAR pickle "
        "batch's class list (`batch[b\"labels\"][i]`, `[\"fine_labels\"]`) returned as the label (first in the "
        "tuple too when it is named as one: `return label, name, img`), mixup, FMix or CutMix "
        "written over class indices (`target = rate * target + (1 - rate) * self.labels[ix]`), rows of the identity "
        "picked by class indices (`np.eye(C)[labels]`), demo labels drawn as one class per sample "
        "(`torch.randint(0, C, (N,))`, `torch.LongTensor(N).random_(C)`), per-class counts indexed by a class-index dataset's label "
        "(`count[ds[i][1]] += 1`), a label chosen between two ints "
        "(`1 if name == \"dog\" else 0`), label encodings (`LabelEncoder().fit_transform` stored as the "
        "label, `pd.get_dummies` of the label column, a label column mapped to class positions, a "
        "remap of class indices through an int-to-int dict), class counts from one label per sample "
        "(`counts[label] += 1`, `np.bincount`/`np.unique(return_counts=True)` of the labels; two sums "
        "by one label are ML105's per-class accuracy), a helper that one-hot encodes a label parameter "
        "(`torch.eye(n)[labels]`) and its calls, the `.samples`/`.targets` of a class-index dataset "
        "built in the file read per image (k-NN labels), an instance of "
        "the file's own `nn.Module` (its output, the first of a tuple), an arg-max printed as the "
        "prediction, an arg-max over the classes stored as a table's column (`test[\"label\"] = "
        "predictions.argmax(1)`: a submission, out-of-fold predictions), predictions collected batch by "
        "batch and written as one column of a table read or named as one (`test_df.label = preds`, also once "
        "they are thresholded rows), a criterion the file never binds (built by a cell run before it) called "
        "on labels it compares with an arg-max, the most probable class of "
        "an image's probabilities unpacked as its label (`prob, label = torch.max(probs, dim=0)`), a softmax written out (`X.exp() / X.exp().sum(1, keepdim=True)`) returned by "
        "the model function or taken over a model's output anywhere (`np.exp(z) / np.sum(np.exp(z))`, also of one "
        "image's scores `z = out.cpu().numpy()[0]` shifted by `np.max(z)`), a target tensor built from the "
        "model's own arg-max (`criterion(out, torch.LongTensor([pred]))`: a pseudo-label; a teacher's arg-max "
        "passed as it is is not reported), `-torch.log(y_hat.gather(1, y.view(-1, 1)))`, a log-softmax indexed at the "
        "label of every row (`log_p[rows, y]` with `rows = torch.arange(len(x))`: a focal loss's `log_pt`), a "
        "KL divergence between softmax distributions (distillation, also in a loss module with no training code), "
        "a loss class known by what its `forward` computes whatever it is called (a soft-target product with "
        "`log_softmax`, `log_softmax` then `nll_loss`, the labelled class picked, a one-hot of the class index, a KL "
        "between softmaxes, or a module calling one through `Function.apply`), reported at the class and where it is "
        "built, also in another file of the run that imports it, a one-hot of class indices given to a loss reported "
        "where it is encoded (a focal loss one-hot encoding targets that are not [B, C]), a per-class weight times a "
        "one-hot of the label summed over the classes (a class-balanced weight per sample), a probability threshold on "
        "a name whose sigmoid the same function takes into another name (`probs = torch.sigmoid(outputs); outputs > "
        "threshold`), an arg-max bound to a name later stored as a table's label column (`pred = pred.argmax(axis=1)`; "
        "`sample_sub[\"label\"] = pred`) and such a column read back into a metric (`preds = oof[\"preds\"].values; "
        "accuracy_score(labels, preds)`), an arg-max given to a meter class of the run whose `update` scores what it "
        "is given (`meter.update(y_true, np.argmax(a=probs, axis=1))` with an `AccuracyMeter` calling "
        "`accuracy_score`), per-class or confusion bookkeeping indexed by an arg-max class "
        "(`mis_indices[pred][true].append(i)`, `per_class[pred] += 1`), a top-k metric of another module known by its "
        "name (`meters.topk_errors(preds, labels, [1, 5])`), an `nn.Softmax` appended "
        "last to the layers of `nn.Sequential(*layers)`, an `nn.Softmax` module built under any name and "
        "applied to the model's output (`smax = nn.Softmax(); smax(y_pred)`, reported where it is built), the exp "
        "of a model's outputs taken on its own (`ps = torch.exp(logps)`: a log-softmax model's probabilities, "
        "competing), a per-class weight picked by the target class in a single-label loss's `forward` (a focal "
        "loss's `alpha.gather(0, target)` or `self.alpha[target]`), and a serving handler's `postprocess(data)`, "
        "which receives the model's output. Inference and evaluation code with no training in it "
        "(a model put in eval mode under any name, a module of meters, a Lightning callback calling "
        "`pl_module(x)`) is looked at too: "
        "a ranking of the classes (`topk(k)`, `sort(1, True)`) compared with the label is top-k "
        "accuracy, a per-class table of correct counts (`(predicted[y == c] == c).sum()`) is "
        "described as one, an arg-max a Lightning `predict_step` returns is what `trainer.predict` "
        "collects, an `if pred[0] == 0: ... elif pred[0] == 1:` chain shows one class per image, and so does one of "
        "two class names chosen by an arg-max or a softmax probability (`'dog' if p > 0.5 else 'cat'`), "
        "and an arg-max of logits along the class axis (`np.argmax(logits, 1)`) predicts "
        "one class whatever returned them, and so does an arg-max over a reported softmax bound to a name "
        "(`proba = F.softmax(logits, dim=-1); labels = torch.argmax(proba, dim=-1)` in a prediction helper). "
        "A softmax of literal tensors (a teaching demo) is not a "
        "model's output and is not reported. Code that runs a sequence model (a recurrent state "
        "threaded through the model, or an arg-max fed back as the next input: next-token "
        "prediction over a vocabulary) is not image classification and is not reported, nor is the "
        "log-softmax of a file that computes a CTC loss (`nn.CTCLoss`, `F.ctc_loss`: a distribution "
        "over an alphabet at each time step), nor a "
        "segmentation file (masks one-hot encoded with their class axis moved second, "
        "`F.one_hot(masks, C).permute(0, 3, 1, 2)`, a Hugging Face `*ForSemanticSegmentation` model, "
        "`evaluate.load(\"mean_iou\")`: one class per pixel is the task), nor a detection file (torchvision's detectors, a smooth-L1 box regression "
        "beside anchors, priors or `conf`/`loc` outputs: one class per anchor), nor a binary "
        "classifier with one output (a BCE loss, a head proven to give one output, `nn.Linear(d, 1)` "
        "last or `num_classes=1`, or, with the model built in another file, logits squeezed to one "
        "value per sample at every BCE call, `loss_fn(logits.squeeze(), y)`; and no cross-entropy, "
        "softmax, one-hot or arg-max: "
        "`torch.round(torch.sigmoid(out)) == y.unsqueeze(1)` is one decision per image). A file whose "
        "model is a library's with pretrained weights (`pretrained=True`, `weights='IMAGENET1K_V1'`) "
        "that it never trains (no new head or class count, no weights of its own loaded, no optimizer "
        "over a model's parameters: an adversarial attack, an out-of-distribution score) gets one "
        "`pretrained-untrained` finding at the model instead: its outputs are the library's "
        "single-label head, and ML001, ML002, ML020, ML021 and ML024 leave it alone. "
        f"What it finds, by kind: {', '.join(f'`{kind}`' for kind in KINDS)}."
    )
    applicability = Applicability.DISPLAY_ONLY
    example_before = (
        "preds = torch.sigmoid(logits) > THRESHOLD\n"
        "acc = (preds == labels).float().mean()\n"
    )
    example_after = (
        "preds = torch.sigmoid(logits) > THRESHOLD\n"
        "acc = (preds == labels.bool()).all(dim=1).float().mean()  # exact match: every label right\n"
    )
    triggers = (*API_WORDS, *COMMON_WORDS)

    @classmethod
    def could_apply(cls, source: str) -> bool:
        """A single-label loss or metric name anywhere; a common word (``argmax``, ``softmax``)
        only in training, evaluation or loss code, or model code that may end in softmax (a
        ``models.py`` holds no training code, yet its softmax output breaks BCE training)."""
        facts = text_facts(source)
        if names_a_single_label_api(source) or facts.has_any(_LOGGING):
            return True
        if facts.has_any(_NO_TRAINING_NEEDED):
            return True  # a dataset's labels, a hand-written one-hot, a serving hook, a label encoding: no training code needed
        if facts.has("setdefault(") and facts.has("enumerate(") and facts.has_any(("label", "target")):
            return True  # samples grouped by their label (a sampler, a curriculum callback): no training code needed
        if facts.has("Softmax(") or (facts.has("softmax") and facts.has("def forward") and may_return_softmax(source)):
            return True
        if facts.has("softmax") and facts.has("def forward") and defines_loss_class(source):
            return True  # a loss class whose forward takes a softmax over the classes, in a module of its own
        if facts.has_any(("lgamma(", "digamma(")) and facts.has("loss"):
            return True  # an evidential (Dirichlet) loss module: plain functions, no criterion or training code
        return could_contain_single_label(source) and (
            has_training_marker(source) or has_loss_marker(source) or _evaluates(source)
        )
