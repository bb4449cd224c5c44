"""The stable functional API of the reference runtime, for ``migrate-ml verify`` and users.

Everything here is importable without side effects (no files written, no threads set, nothing
downloaded). Names listed in ``__all__`` keep their signatures and semantics across patch
releases; see docs/reference.md.

Threshold convention: a label is positive when ``prob > threshold`` (strict), everywhere.
"""

from . import _API_NAMES
from .dataset import (
    ImageFiles,
    LabelTable,
    MultiLabelCsvDataset,
    MultiLabelJsonDataset,
    load_tensors,
    open_dataset,
    read_classes,
    read_labels,
)
from .errors import CheckpointError, DatasetFormatError, ImageReadError, InputError
from .metrics import (
    METRIC_KEYS,
    PER_CLASS_KEYS,
    MultilabelEvaluator,
    binarize,
    exact_match,
    multilabel_metrics,
    tune_thresholds,
)
from .model import DEFAULT_MODEL, DEFAULT_MODEL_KWARGS, create_reference_model
from .predictor import Predictor, load
from .sample import class_names, make_sample_tensors, write_sample_data

# The package lists the names (it must know them without importing torch); this module provides them.
__all__ = sorted(_API_NAMES)
