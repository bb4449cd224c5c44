"""Where a single-label meaning does harm: losses, metrics, thresholds, logging.

Each check looks at one statement (its own expressions, not the bodies it holds) where the
walk of :mod:`summaries` has the meanings of its names, and reports what it proves.

``core`` holds the walk (:class:`Sinks`, its dispatch and file-wide checks); the checks are
grouped by concern beside it: ``losses``, ``targets``, ``multi_hot_targets``, ``label_tables``,
``dataset_labels``, ``scores``, ``metrics`` and ``annotations``, with what they share in ``common``.
"""

from __future__ import annotations

from migrate_ml.rules.semantics.sinks.common import Sink
from migrate_ml.rules.semantics.sinks.core import KINDS, Sinks

__all__ = ["KINDS", "Sink", "Sinks"]
