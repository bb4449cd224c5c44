"""migrate-ml reference runtime: sample multi-label data, reference training, metrics, thresholds.

Installed as ``migrate_ml_reference`` (source folder ``reference/``). Importing the package is
cheap: torch and friends load only when one of the API names below is first used, e.g.
``from migrate_ml_reference import multilabel_metrics``. The names are those of
:mod:`migrate_ml_reference.api`.
"""

from __future__ import annotations

from typing import Any

_API_NAMES = frozenset(
    {
        "CheckpointError",
        "ImageFiles",
        "ImageReadError",
        "InputError",
        "LabelTable",
        "Predictor",
        "load",
        "read_labels",
        "DEFAULT_MODEL",
        "DEFAULT_MODEL_KWARGS",
        "METRIC_KEYS",
        "PER_CLASS_KEYS",
        "DatasetFormatError",
        "MultiLabelCsvDataset",
        "MultiLabelJsonDataset",
        "MultilabelEvaluator",
        "binarize",
        "class_names",
        "create_reference_model",
        "exact_match",
        "load_tensors",
        "make_sample_tensors",
        "multilabel_metrics",
        "open_dataset",
        "read_classes",
        "tune_thresholds",
        "write_sample_data",
    }
)

__all__ = sorted(_API_NAMES)


def __getattr__(name: str) -> Any:
    if name in _API_NAMES:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API_NAMES)
