"""What a value means for a migration to multi-label: a small lattice.

Each expression of a file gets one meaning. Meanings that differ join upwards: two kinds of
scores give ``SCORES``, two kinds of labels ``LABELS``, anything else ``UNKNOWN`` (the top:
nothing is claimed about it). A construct is reported only on a meaning proven below the top.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

# Labels.
CLASS_INDEX = "class-index"
"""One class per sample, as a label: ``class_to_idx[name]``, an ``enumerate`` index over the classes."""
INDEX_LIST = "class-index-list"
"""A list of class indices per sample (several labels, not yet multi-hot)."""
INT = "python-int"
"""A Python ``int`` (``int(row[1])``): a class index when it is returned as the label."""
MULTI_HOT = "multi-hot"
ONE_HOT = "one-hot-of-index"
"""``F.one_hot(y, C)`` of class indices, smoothed or mixed: still one class per sample."""
LABELS = "labels"

# Scores.
LOGITS = "logits"
SIGMOID = "sigmoid-probabilities"
SOFTMAX = "softmax-probabilities"
LOG_PROB = "log-probabilities"
EXP = "exponentiated"
"""``x.exp()`` and its sums: divided by its own sum over the classes it is a softmax."""
SCORES = "scores"
"""A model's output when it is not known whether it ends in raw logits or in probabilities."""

# Predictions.
ARGMAX = "argmax-prediction"
"""One predicted class per sample: an arg-max, ``max(dim)[1]``, a top-k index, their one-hot."""
THRESHOLDED = "thresholded-prediction"
PREDICTED_NAME = "predicted-class-name"
"""The name of an arg-max's class (``id2label[pred]``): one class per sample, spelled as a name.
ML106 reports the lookup itself; the metrics that score a list of them are reported too."""
PREDICTIONS = "predictions"

MODEL = "model"
"""An ``nn.Module`` the file defines, built (``cnn = CNN()``): calling it gives its output."""
METRIC = "metric-value"
LOSS_FN = "loss-function"
"""A criterion object; ``LOGITS_LOSS_FN`` one that applies the sigmoid itself."""
LOGITS_LOSS_FN = "logits-loss-function"
LABEL_ENCODER = "label-encoder"
"""``sklearn.preprocessing.LabelEncoder()``: its ``fit_transform`` gives one class index per row."""
STRATIFIED_SPLITTER = "stratified-splitter"
"""``StratifiedKFold(...)``: its ``split(X, y)`` balances one class label per sample across folds."""
CONTAINER = "container"
"""A list or dict whose elements have the meaning of ``Value.element``."""
TABLE_ROW = "table-row"
"""One row of a table (``df.iloc[i]``, ``df.values[i]``): each of its cells is one scalar per sample."""
TABLE_CELL = "table-cell"
"""One cell of a table's column not named as a label (``self.df["breed_id"][idx]``): one scalar per
row, the label only where a dataset returns it as one."""
TABLE = "table"
"""A table read by pandas (``pd.read_csv(path)``): its label column holds one scalar per row."""
UNKNOWN = "unknown"

_PARENT = {
    CLASS_INDEX: LABELS, INDEX_LIST: LABELS, INT: LABELS, MULTI_HOT: LABELS, ONE_HOT: LABELS,
    LOGITS: SCORES, SIGMOID: SCORES, SOFTMAX: SCORES, LOG_PROB: SCORES,
    ARGMAX: PREDICTIONS, THRESHOLDED: PREDICTIONS, PREDICTED_NAME: PREDICTIONS,
    LOGITS_LOSS_FN: LOSS_FN,
}

SCORE_MEANINGS = frozenset({LOGITS, SIGMOID, SOFTMAX, LOG_PROB, SCORES})


def join(first: str, second: str) -> str:
    """The least meaning both values have (what a name holds after either branch)."""
    if first == second:
        return first
    up_first, up_second = _PARENT.get(first, first), _PARENT.get(second, second)
    if up_first == up_second or up_first == second:
        return up_first
    if up_second == first:
        return first
    return UNKNOWN


@dataclass(frozen=True)
class Value:
    """The meaning of one value, the line it got it on, and what it is made of."""

    meaning: str = UNKNOWN
    line: int = 0
    items: tuple[Value, ...] = ()
    """For a tuple: the meaning of each item (``image, label``; ``(values, indices)``)."""
    element: Value | None = None
    """For a list or a dict: the meaning of its elements (``samples.append((path, idx))``)."""
    node: ast.AST | None = field(default=None, compare=False)
    """The expression it was computed by (a ``.view(-1, 1)`` is a fact of shape, not of meaning)."""


NOTHING = Value()
