"""Whole-file facts that say a file is not single-label classification training to migrate.

Some files read like image classification but are not the migration's business:

* **dense prediction** (segmentation): the file builds a segmentation model (torchvision's
  ``deeplabv3_*``/``fcn_*``/``lraspp_*`` and their heads, a ``segmentation_models_pytorch`` model),
  or a model class of the project named for a segmentation architecture (``DeeplabV3p``, ``PSPNet``,
  ``SemanticHighResolutionNet``; not a U-Net, which diffusion models use too; a module named only ``Segmentation`` may hold a classification mode too),
  or its targets are masks with spatial dimensions, and the file proves it by moving a one-hot
  encoding's class axis from last to second, ``F.one_hot(masks, C).permute(0, 3, 1, 2)``
  (``[B, H, W, C]`` to ``[B, C, H, W]``, or the 3-D ``(0, 4, 1, 2, 3)``, or ``.movedim(-1, 1)``). One-hot class indices of images are ``[B, C]``: no permutation of four or
  more axes ever applies to them. Per-pixel softmax, cross-entropy and arg-max pick one class per
  pixel, which is the task itself: nothing in such a file is reported or rewritten. So are Hugging
  Face's dense models (``AutoModelForSemanticSegmentation``, ``SegformerForSemanticSegmentation``,
  ``DetrForObjectDetection``), the ``mean_iou`` metric of ``evaluate``, and a per-class IoU
  computed from a confusion matrix of pixels (its union ``hist.sum(1) + hist.sum(0) -
  np.diag(hist)``: an occupancy map's arg-max over the channels of ``[B, C, H, W]``, flattened and
  counted into it). (A cross-entropy with
  ``ignore_index=255``, segmentation's void label, is not enough: classifiers copy it too.)
* **object detection**: torchvision's detection builders and box predictors
  (``fasterrcnn_resnet50_fpn``, ``ssd300_vgg16``, ``FastRCNNPredictor``), a box-IoU loss
  (``generalized_box_iou_loss``), or a smooth-L1 box regression beside anchors, priors or IoU
  matching or a ``loc``/``conf`` pair (an SSD ``MultiBoxLoss``: cross-entropy over ``[N, C]``
  per-anchor logits with hard-negative mining, and ``[N]`` class targets). One class per anchor
  is the task: the loss stays as it is.
* **a pretrained library model the file never trains**: a constructor is given library weights
  (``pretrained=True``, ``weights='IMAGENET1K_V1'``, ``weights=ResNet34_Weights.DEFAULT``), no call
  sets a class count (``num_classes=``/``num_labels=``/``n_classes=``), no head is replaced
  (``model.fc = nn.Linear(...)``, ``reset_classifier``), no weights of the user's own are loaded
  (``load_state_dict``, ``load_from_checkpoint``), and nothing optimises a model's parameters:
  every optimizer is given a literal list of tensors (an adversarial patch, a perturbation), no
  call is handed ``X.parameters()``, and no function with a word of training in its name
  (``train``, ``model.train()``, ``create_supervised_trainer``, ``fit``, ``build_optimizer``) is
  called or defined. Its outputs are the library's single-label softmax head (ImageNet's 1000
  classes): its loss, arg-max and accuracy stay as they are. A prediction script that loads the
  user's own checkpoint is not one of these and keeps migrating.
* **a binary classifier with one output**: the file trains with a binary cross-entropy
  (``BCEWithLogitsLoss``, ``F.binary_cross_entropy*``), its model's head is proven to have one
  output (every class count given is a literal 1, ``num_classes=1``, or, with none given, a
  model class's head has ``out_features`` 1: the ``Linear`` whose output its ``forward`` returns,
  wherever the class defines it, ``return self.out(self.features(x))`` with ``self.out =
  nn.Linear(d, 1)``; where no ``forward`` of the file shows its head, the last ``Linear`` the file
  builds: ``model.fc = nn.Linear(in, 1)``; with no head in the file, every BCE call takes logits
  squeezed to one value or a target made a ``[B, 1]`` column, ``y.float().unsqueeze(1)``), and nothing
  of a class axis is in it (no cross-entropy or NLL loss, softmax, one-hot or arg-max). Its outputs
  are ``[B, 1]``: ``torch.round(torch.sigmoid(out)) == y.unsqueeze(1)`` is one decision per image and
  its 0/1 target column is no class index. Its test script, with no loss, shows the one output by
  ``torch.sigmoid(output).item()`` (one number per image); its 2 x 2 confusion matrix and the class
  name its 0/1 prediction looks up are already what a per-label decision is.
* **a variational autoencoder** (:func:`is_variational_autoencoder`): the file exponentiates a
  log-variance (``logvar.exp()``, ``torch.exp(0.5 * log_var)``: the reparameterisation or the KL
  term towards a standard normal) and has nothing of a class axis (no cross-entropy or NLL loss,
  softmax, one-hot or arg-max). Its loss compares a reconstruction with the input; the labels of
  the dataset it reads (``datasets.MNIST``) only title or colour its plots.
* **already multi-label** (:func:`already_multi_label`, asked by the engine of the file as written,
  never of a rewrite, which reads the same once the rules ran): the file trains with a
  binary cross-entropy, decides by a thresholded sigmoid (``torch.sigmoid(output).ge(0.5)``,
  ``torch.sigmoid(logits) > t``) and has nothing of a class axis (no cross-entropy, softmax,
  one-hot, arg-max, ``topk`` or ``max`` over a dimension; a one-hot summed over its first axis,
  ``F.one_hot(torch.LongTensor(class_list), C).sum(axis=0)``, is an image's multi-hot row), and it
  scores with its own code, not a metrics library's (whose accuracy may default to one class per
  sample; ``evaluate``'s multi-label configuration, ``evaluate.load('roc_auc', 'multilabel')``, is
  per label). The accuracy it keeps
  the best of is computed from per-label decisions already (a precision of the thresholded labels,
  an exact match): no rule has anything to migrate in it.
"""

from __future__ import annotations

import ast
import functools
import re

from migrate_ml.rules._prefilter import nodes_of, walk
from migrate_ml.rules.semantics import sources

_OPTIMIZERS = frozenset(
    {
        "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam",
        "LBFGS", "ASGD", "Rprop", "SparseAdam", "Lamb", "LAMB", "Lion", "Adafactor",
    }
)
"""Optimizer classes (torch.optim and the common extra ones)."""
_CLASS_COUNTS = frozenset({"num_classes", "num_labels", "n_classes", "nb_classes", "out_features"})
_OWN_WEIGHTS = frozenset({"load_state_dict", "load_from_checkpoint", "load_checkpoint", "reset_classifier"})
"""Calls that load the user's weights or give the model a new head."""
_TRAINING_WORD = re.compile(r"^(?:train(?:er|ing|s)?|fit|optim\w*)$")
"""A word of a function that trains or builds what trains: ``train``, ``model.train()``,
``create_supervised_trainer``, ``fit_one_cycle``, ``build_optimizer``, ``configure_optimizers``."""
_BINARY_LOSSES = frozenset({"BCEWithLogitsLoss", "BCELoss", "binary_cross_entropy_with_logits", "binary_cross_entropy"})
_CLASS_AXIS = frozenset(
    {
        "CrossEntropyLoss", "cross_entropy", "NLLLoss", "nll_loss", "softmax", "Softmax", "log_softmax",
        "LogSoftmax", "one_hot", "argmax",
    }
)
"""Calls that only make sense with several classes on an axis."""
_HEAD_LAYERS = frozenset({"Linear", "LazyLinear", "Conv2d", "Sequential", "Identity"})
_CASTS = frozenset({"float", "long", "half", "to", "type", "contiguous", "cuda"})


def _name(node: ast.AST) -> str:
    """The last name of a called or referenced ``a.b.c`` (``c``), or ``""``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


_SEGMENTATION_MODELS = re.compile(
    r"^(?:(?:deeplabv3|fcn)_resnet\d+|(?:deeplabv3|lraspp)_mobilenet_v3_large|DeepLabHead|FCNHead|LRASPPHead)$"
)
"""torchvision's segmentation builders and heads (``deeplabv3_resnet101``, ``DeepLabHead``)."""
_SEGMENTATION_LIBRARIES = ("segmentation_models_pytorch",)
_DENSE_MODELS = re.compile(
    r"^\w+For(?:Semantic|Instance|Universal|Panoptic)Segmentation$|^\w+ForObjectDetection$|^\w+ForMaskGeneration$"
    r"|^(?:fasterrcnn|maskrcnn|keypointrcnn|retinanet|fcos)_\w+$|^ssd(?:lite)?\d+_\w+$"
    r"|^(?:FastRCNN|MaskRCNN|KeypointRCNN)Predictor$"
)
"""Hugging Face's segmentation and detection models, torchvision's detection builders and box
predictors: one class per pixel, mask or box."""
_PROJECT_SEGMENTATION_MODELS = re.compile(r"(?i)deeplab|pspnet|segnet|segformer|^semantic")
"""Segmentation architectures by the names projects give their own classes (``DeeplabV3p``,
``PSPNet``, ``SemanticHighResolutionNet``; capitalised, so a helper such as ``segment_lungs()``
run before a classifier does not count): one class per pixel. Not a U-Net: diffusion models
beside a classifier are built on one too."""
_BOX_IOU_LOSSES = frozenset({"generalized_box_iou_loss", "complete_box_iou_loss", "distance_box_iou_loss"})
_BOX_REGRESSION = frozenset({"SmoothL1Loss", "smooth_l1_loss"})
_ANCHOR_WORDS = frozenset({"anchor", "anchors", "prior", "priors", "iou", "ious", "nms", "dbox", "dboxes"})
"""Words of names that match boxes to anchors: ``priors``, ``bboxIOU``, ``anchor_boxes``, ``nms``."""
_BOX_WORDS = frozenset({"loc", "bbox", "bboxes", "box", "boxes"})
"""Words of a detector's box outputs, which come with ``conf`` scores: ``loc_data``/``conf_data``,
``bboxOut``/``confOut``."""


@functools.lru_cache(maxsize=8)
def is_dense_prediction(tree: ast.Module) -> bool:
    """Whether the file builds a segmentation model, or one-hot encodes masks and moves the class
    axis to second place."""
    libraries = {
        alias.asname or alias.name for node in nodes_of(tree, ast.Import) for alias in node.names
        if alias.name.split(".")[0] in _SEGMENTATION_LIBRARIES
    }
    if any(_DENSE_MODELS.match(alias.name) for node in nodes_of(tree, ast.ImportFrom) for alias in node.names):
        return True
    box_regression = False
    for node in nodes_of(tree, ast.Call):
        called = _name(node.func)
        if (
            _SEGMENTATION_MODELS.match(called)
            or _DENSE_MODELS.match(called)
            or (called[:1].isupper() and _PROJECT_SEGMENTATION_MODELS.search(called) is not None)
            or called in _BOX_IOU_LOSSES
        ) or (
            isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and node.func.value.id in libraries
        ):
            return True  # its per-pixel cross-entropy and arg-max are the task
        if isinstance(node.func, ast.Attribute) and _DENSE_MODELS.match(_name(node.func.value)):
            return True  # `transformers.SegformerForSemanticSegmentation.from_pretrained(...)`
        if called == "load" and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == "mean_iou":
            return True  # evaluate.load("mean_iou"): a segmentation metric
        box_regression = box_regression or called in _BOX_REGRESSION
        if not (isinstance(node, ast.Call) and _name(node.func) in ("permute", "movedim")):
            continue
        if not (isinstance(node.func, ast.Attribute) and _of_one_hot(node.func.value)):
            continue
        axes = node.args[0].elts if len(node.args) == 1 and isinstance(node.args[0], (ast.Tuple, ast.List)) else node.args
        order = [_integer(axis) for axis in axes]
        if _name(node.func) == "movedim":
            if order == [-1, 1]:  # movedim(-1, 1): the last axis (classes) to second place
                return True
        elif None not in order and len(order) >= 4 and order[:2] == [0, len(order) - 1]:
            return True
    return any(_confusion_union(node) for node in nodes_of(tree, ast.BinOp)) or (box_regression and _matches_anchors(tree))


def _confusion_union(node: ast.BinOp) -> bool:
    """``hist.sum(1) + hist.sum(0) - np.diag(hist)`` (either order of the sums, ``axis=``, or
    ``torch.diag``): the union of each class's predicted and true pixels, segmentation's IoU."""
    if not (isinstance(node.op, ast.Sub) and isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Add)):
        return False
    diagonal = node.right
    if not (isinstance(diagonal, ast.Call) and _name(diagonal.func) == "diag" and len(diagonal.args) == 1):
        return False
    matrix = ast.dump(diagonal.args[0])
    axes = set()
    for total in (node.left.left, node.left.right):
        if not (isinstance(total, ast.Call) and _name(total.func) == "sum" and isinstance(total.func, ast.Attribute)):
            return False
        if ast.dump(total.func.value) != matrix:
            return False
        given = [*total.args, *(keyword.value for keyword in total.keywords if keyword.arg in ("axis", "dim"))]
        axes.add(_integer(given[0]) if len(given) == 1 else None)
    return axes == {0, 1}


def _matches_anchors(tree: ast.Module) -> bool:
    """Whether the file's names speak of anchors, priors or IoU matching (``priors``, ``bboxIOU``),
    or of a detector's ``conf`` scores beside its boxes (``conf_data``/``loc_data``): its box
    regression is a detector's, not a classifier's single box."""
    names = [alias.asname or alias.name for node in nodes_of(tree, ast.ImportFrom) for alias in node.names]
    for node in nodes_of(tree, ast.Name, ast.Attribute, ast.arg, ast.FunctionDef):
        names.append(
            node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute)
            else node.arg if isinstance(node, ast.arg) else node.name
        )
    words = {word for name in names for word in re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().split("_")}
    return bool(words & _ANCHOR_WORDS) or ("conf" in words and bool(words & _BOX_WORDS))


def _of_one_hot(node: ast.expr) -> bool:
    """``F.one_hot(masks, C)``, also cast first: ``F.one_hot(masks, C).float()``."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _CASTS:
        node = node.func.value
    return isinstance(node, ast.Call) and _name(node.func) == "one_hot"


def _integer(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _integer(node.operand)
        return None if value is None else -value
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int else None


@functools.lru_cache(maxsize=8)
def untrained_pretrained_model(tree: ast.Module) -> ast.Call | None:
    """The first constructor of a library model with its pretrained head, when the file never
    trains it (``None`` otherwise)."""
    pretrained = None
    for node in walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _trains(node.name):
            return None
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and _replaces_head(node):
            return None
        if not isinstance(node, ast.Call):
            continue
        called = _name(node.func)
        if called in _OWN_WEIGHTS or _trains(called) or _hands_over_parameters(node):
            return None
        if called in _OPTIMIZERS and _optimizes_a_model(node):
            return None
        for keyword in node.keywords:
            if keyword.arg in _CLASS_COUNTS:
                return None
            library = keyword.arg == "pretrained" and isinstance(keyword.value, ast.Constant) and keyword.value.value is True
            if library or (keyword.arg == "weights" and _library_weights(keyword.value)):
                if pretrained is None or (node.lineno, node.col_offset) < (pretrained.lineno, pretrained.col_offset):
                    pretrained = node
    return pretrained


@functools.lru_cache(maxsize=8)
def is_one_output_binary(tree: ast.Module) -> bool:
    """Whether the file trains a binary classifier whose model has one output (module docstring)."""
    calls = list(nodes_of(tree, ast.Call))
    called = _called_names(tree)
    if called & _CLASS_AXIS:
        return False
    if not called & _BINARY_LOSSES:
        return _one_sigmoid_score(calls)
    counts = [
        keyword.value for node in calls if isinstance(node, ast.Call)
        for keyword in node.keywords if keyword.arg in _CLASS_COUNTS and keyword.arg != "out_features"
    ]
    if counts:
        return all(_integer(count) == 1 for count in counts)
    heads = _forward_heads(tree)
    if heads:
        # one model of the file with one output is the classifier: a GAN's generator beside its
        # discriminator has a wide head, and neither has a class axis
        return any(_out_features(head) == 1 for head in heads)
    linear = [node for node in calls if isinstance(node, ast.Call) and _name(node.func) == "Linear"]
    if not linear:
        return _squeezed_binary_logits(tree, calls) or _one_sigmoid_score(calls)
    return _out_features(max(linear, key=lambda node: (node.lineno, node.col_offset))) == 1


@functools.lru_cache(maxsize=8)
def _called_names(tree: ast.Module) -> frozenset[str]:
    """The last name of every callee of the file (``c`` of ``a.b.c(...)``)."""
    return frozenset(_name(node.func) for node in nodes_of(tree, ast.Call))


_LOG_VARIANCE = re.compile(r"(?i)^(?:z_)?log_?(?:var|variance|sigma2?|std)$")
"""The names a VAE gives its log-variance (``logvar``, ``log_var``, ``z_log_var``)."""


def is_variational_autoencoder(tree: ast.Module) -> bool:
    """Whether the file trains a variational autoencoder rather than a classifier (module docstring)."""
    if _called_names(tree) & _CLASS_AXIS:
        return False
    for node in nodes_of(tree, ast.Call):
        if _name(node.func) not in ("exp", "exp_"):
            continue
        argument = node.func.value if isinstance(node.func, ast.Attribute) and not node.args else (
            node.args[0] if node.args else None
        )
        if argument is not None and any(
            _LOG_VARIANCE.match(_name(part)) for part in ast.walk(argument) if isinstance(part, (ast.Name, ast.Attribute))
        ):
            return True
    return False


@functools.lru_cache(maxsize=8)
def already_multi_label(tree: ast.Module) -> bool:
    """Whether the file trains and decides multi-label already (module docstring)."""
    called = _called_names(tree)
    if "one_hot" in called and _every_one_hot_summed(tree):
        called = called - {"one_hot"}
    if called & _CLASS_AXIS or not called & _BINARY_LOSSES:
        return False
    calls = nodes_of(tree, ast.Call)
    if any(map(_over_a_dimension, calls)):
        return False
    if any(_metric_library(module) for module in _imported_modules(tree)) and not _every_metric_multilabel(tree):
        return False  # a library's accuracy may still count one class per sample (a "multiclass" default)
    return any(
        isinstance(node.func, ast.Attribute) and node.func.attr in ("ge", "gt") and _of_sigmoid(node.func.value)
        for node in calls
    ) or any(
        isinstance(node.ops[0], (ast.Gt, ast.GtE)) and _of_sigmoid(node.left) for node in nodes_of(tree, ast.Compare)
    )


def _every_one_hot_summed(tree: ast.Module) -> bool:
    """Every ``one_hot`` of the file is summed over its first axis where it is taken:
    ``F.one_hot(torch.LongTensor(class_list), num_classes=20).sum(axis=0)`` adds the one-hot rows
    of one image's class list into its multi-hot row, the multi-label target itself, not a class
    axis of one label per image."""
    summed = set()
    for node in nodes_of(tree, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr == "sum" and _name(getattr(node.func.value, "func", None)) == "one_hot":
            axes = [*node.args, *(keyword.value for keyword in node.keywords if keyword.arg in ("axis", "dim"))]
            if len(axes) == 1 and len(node.args) + len(node.keywords) == 1 and isinstance(axes[0], ast.Constant) and axes[0].value == 0:
                summed.add(id(node.func.value))
    return all(id(node) in summed for node in nodes_of(tree, ast.Call) if _name(node.func) == "one_hot")


def _every_metric_multilabel(tree: ast.Module) -> bool:
    """The only metrics library is ``evaluate`` and every metric it loads is its multi-label
    configuration (``evaluate.load('roc_auc', 'multilabel')``, ``config_name='multilabel'``): each
    label is scored on its own."""
    if any(_metric_library(module) and module.split(".")[0] != "evaluate" for module in _imported_modules(tree)):
        return False
    loads = [
        node for node in nodes_of(tree, ast.Call)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "load" and _name(node.func.value) == "evaluate"
    ]
    return bool(loads) and all(
        any(isinstance(config, ast.Constant) and config.value == "multilabel" for config in (
            *node.args[1:2], *(keyword.value for keyword in node.keywords if keyword.arg == "config_name")
        ))
        for node in loads
    )


def _imported_modules(tree: ast.Module):
    for node in nodes_of(tree, ast.Import, ast.ImportFrom):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif node.module:
            yield node.module


def _metric_library(module: str) -> bool:
    """``sklearn.metrics``, ``torchmetrics``, ``pytorch_lightning.metrics``, ``ignite.metrics``, ``evaluate``."""
    parts = module.split(".")
    return parts[0] == "evaluate" or any("metric" in part for part in parts)


def _over_a_dimension(call: ast.AST) -> bool:
    """``out.topk(k, 1)``, ``output.max(1)``, ``torch.max(out, dim=1)``: one class picked per sample
    (the builtin ``max(acc, best_acc)`` is not)."""
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
        return False
    if call.func.attr == "topk":
        return True
    return call.func.attr in ("max", "min") and bool(call.args or call.keywords)


def _of_sigmoid(node: ast.expr) -> bool:
    """``torch.sigmoid(output)``, also moved or cast first: ``torch.sigmoid(output).cpu()``."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MOVES | {"data"}:
        node = node.func.value
    return isinstance(node, ast.Call) and _name(node.func) == "sigmoid"


_SQUEEZES = frozenset({"squeeze", "view", "reshape", "flatten"})
_MOVES = frozenset({"detach", "cpu", "cuda", "to", "float"})


def _squeezed_binary_logits(tree: ast.Module, calls: list[ast.Call]) -> bool:
    """Every BCE call of a file whose model is built elsewhere takes logits squeezed to one value
    per sample (``loss_fn(logits.squeeze(), y)``, or a name bound to ``model(x).squeeze()``):
    the model has one output. Multi-label logits are [B, C] rows, which a squeeze leaves alone."""
    criteria = {
        _name(target)
        for node in nodes_of(tree, ast.Assign)
        if isinstance(node.value, ast.Call) and _name(node.value.func) in _BINARY_LOSSES
        for target in node.targets
    }
    bound: dict[str, list[ast.expr]] = {}
    for node in nodes_of(tree, ast.Assign):
        for target in node.targets:
            if isinstance(target, ast.Name):
                bound.setdefault(target.id, []).append(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) and len(target.elts) == len(node.value.elts):
                # `images, labels = images.to(device), labels.float().unsqueeze(1)`
                for name, value in zip(target.elts, node.value.elts):
                    if isinstance(name, ast.Name):
                        bound.setdefault(name.id, []).append(value)
    losses = [
        node for node in calls
        if node.args and (_name(node.func) in criteria or _name(node.func) in _BINARY_LOSSES) and not _name(node.func)[:1].isupper()
    ]
    return bool(losses) and all(
        _squeezed(node.args[0], bound) or (len(node.args) > 1 and _column(node.args[1], bound)) for node in losses
    )


def _column(target: ast.expr, bound: dict[str, list[ast.expr]]) -> bool:
    """A BCE target made a ``[B, 1]`` column (``y.float().unsqueeze(1)``, ``y.view(-1, 1)``, or a name
    bound to one): it matches one output per sample. Multi-hot targets are ``[B, C]`` rows already."""
    calls = _shape_calls(target, bound)
    return calls is not None and all(
        (call.func.attr == "unsqueeze" and dims in ([1], [-1])) or (call.func.attr in ("view", "reshape") and dims == [-1, 1])
        for call, dims in calls
    )


def _shape_calls(value: ast.expr, bound: dict[str, list[ast.expr]]) -> list[tuple[ast.Call, list[int | None]]] | None:
    """The method call that shapes ``value`` (or each value a name is bound to), past device and dtype
    moves, with its integer arguments; None when there is none, or a value is not such a call."""
    values = bound.get(value.id, []) if isinstance(value, ast.Name) else [value]
    calls = []
    for value in values:
        while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in _MOVES:
            value = value.func.value
        if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
            return None
        calls.append((value, [_integer(arg) for arg in value.args]))
    return calls or None


def _one_sigmoid_score(calls: list[ast.Call]) -> bool:
    """``torch.sigmoid(output).item()``: one Python number out of a model's sigmoid, which only a one-element
    tensor gives. A multi-label score row of one image has C elements and raises there; a label's
    own score is picked first (``sigmoid(out[0, c])``), which is not this."""
    return any(
        isinstance(node.func, ast.Attribute) and node.func.attr == "item" and not node.args
        and isinstance(node.func.value, ast.Call) and _name(node.func.value.func) == "sigmoid"
        and len(node.func.value.args) == 1 and isinstance(node.func.value.args[0], (ast.Name, ast.Call))
        for node in calls
    )


def _squeezed(logits: ast.expr, bound: dict[str, list[ast.expr]]) -> bool:
    calls = _shape_calls(logits, bound)
    if calls is None:
        return False
    for call, dims in calls:
        attr = call.func.attr
        if attr not in _SQUEEZES:
            return False
        if attr in ("view", "reshape") and dims != [-1]:
            return False
        if attr == "squeeze" and any(dim not in (1, -1) for dim in dims):
            return False
        if attr == "flatten" and dims:
            return False  # `flatten(1)` keeps the rows
    return True


def _forward_heads(tree: ast.Module) -> list[ast.Call]:
    """The ``Linear`` each model class of the file gives its outputs through, where its ``forward``
    shows it (``return self.out(self.features(x))``; the last ``Linear`` of a returned
    ``Sequential``): the head, wherever the class defines it. A class built as a layer of another
    class of the file feeds that one and has no head of its own."""
    layers = sources.class_layers(tree)
    built = {_name(call.func) for owner in layers.values() for call in owner.values()}
    heads = []
    for cls in nodes_of(tree, ast.ClassDef):
        layer = sources.forward_layer(cls) if cls.name not in built else None
        call = layers.get(cls.name, {}).get(layer) if layer is not None else None
        if call is not None and _name(call.func) == "Sequential":
            call = next((arg for arg in reversed(call.args) if isinstance(arg, ast.Call) and _name(arg.func) == "Linear"), None)
        if call is not None and _name(call.func) == "Linear":
            heads.append(call)
    return heads


def _out_features(linear: ast.Call) -> int | None:
    """The literal ``out_features`` of ``nn.Linear(d, 1)`` / ``nn.Linear(d, out_features=1)``."""
    out = next((keyword.value for keyword in linear.keywords if keyword.arg == "out_features"), None)
    if out is None and len(linear.args) > 1:
        out = linear.args[1]
    return _integer(out) if out is not None else None


class ReadsTheTrainedHead:
    """A mixin for the rules whose edits read the model's head (ML001, ML002, ML020, ML021, ML024): none
    runs on a file whose model is a library's pretrained single-label head that it never trains."""

    @classmethod
    def could_apply_tree(cls, tree: ast.Module) -> bool:
        return untrained_pretrained_model(tree) is None


def _trains(name: str) -> bool:
    """Whether a function's name has a word of training (``pretrained_model`` has none)."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().split("_")
    return any(_TRAINING_WORD.match(word) for word in words)


def _hands_over_parameters(call: ast.Call) -> bool:
    """``make(model.parameters())``, ``f([{'params': model.fc.parameters()}])``: a model's parameters
    given to something, an optimizer by any other name. A loop over them (freezing, counting) is not."""
    pending: list[ast.AST] = [*call.args, *(keyword.value for keyword in call.keywords)]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Call) and _name(node.func) in ("parameters", "named_parameters"):
            return True
        if isinstance(node, ast.Call) and _name(node.func) in ("filter", "list"):
            pending.extend(node.args)
        elif isinstance(node, (ast.List, ast.Tuple)):
            pending.extend(node.elts)
        elif isinstance(node, ast.Dict):
            pending.extend(value for value in node.values if value is not None)
    return False


def _library_weights(value: ast.expr) -> bool:
    """``'IMAGENET1K_V1'``, ``'DEFAULT'`` or ``ResNet34_Weights.DEFAULT``: torchvision's weight enums."""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, str) and (value.value == "DEFAULT" or value.value.startswith("IMAGENET"))
    return isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id.endswith("_Weights")


def _optimizes_a_model(call: ast.Call) -> bool:
    """An optimizer given anything but a literal list of tensors (``[patch]``) may train a model."""
    params = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "params"), None)
    if isinstance(params, (ast.List, ast.Tuple)):
        return not all(isinstance(element, ast.Name) for element in params.elts)
    return True


def _replaces_head(assign: ast.Assign | ast.AnnAssign) -> bool:
    """``model.fc = nn.Linear(...)``, ``model.classifier[1] = ...``: a new head on the model."""
    targets = assign.targets if isinstance(assign, ast.Assign) else [assign.target]
    if not any(isinstance(target, (ast.Attribute, ast.Subscript)) for target in targets):
        return False
    return assign.value is not None and any(
        isinstance(node, ast.Call) and _name(node.func) in _HEAD_LAYERS for node in ast.walk(assign.value)
    )
