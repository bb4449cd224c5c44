"""What the safety net reports: :class:`SingleLabelConstruct` and its :data:`KINDS`, and the
record of a construct while the walk goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate_ml.rules.semantics import KINDS as MEANING_KINDS

KINDS = (
    "single-label-loss",
    "argmax-prediction",
    "argmax-compared",
    "argmax-metric",
    "softmax-class-dim",
    "class-index-metric",
    "per-element-accuracy",
    "prediction-item",
    "target-argmax",
    "topk-accuracy",
    "pretrained-untrained",
    "single-label-helper",
    *MEANING_KINDS,
)
"""The stable ids of what the detector finds (``SingleLabelConstruct.kind``)."""


@dataclass(frozen=True)
class SingleLabelConstruct:
    """One construct that still assumes one label per image."""

    line: int
    """1-based line of the construct's start."""
    column: int
    """1-based column (in characters) of the construct's start."""
    kind: str
    """A stable short id, one of :data:`KINDS`."""
    message: str
    """What is still single-label."""
    suggestion: str
    """The concrete fix to make."""
    related_lines: tuple[int, ...] = field(default=(), compare=False)
    """Other lines the construct is built from (the arg-max a comparison uses) and the lines of
    the ``def``/``class`` statements around it."""
    covering_lines: tuple[int, ...] = field(default=(), compare=False)
    """The related lines where a finding reports this construct as a whole: the ``def``/``class``
    around it (a hand-written loss, a top-k helper), and the source of class-index labels that
    reach a loss (a new dataset fixes both). A finding on another related line reports only the
    part the construct is built on, so the construct still gets a finding at its own line."""


@dataclass
class _Record:
    """A construct while the walk goes on: its uses further down add related lines."""

    line: int
    column: int
    kind: str
    message: str
    suggestion: str
    related: set[int]
    scopes: frozenset[int] = frozenset()
    """The enclosing ``def``/``class`` lines (also in ``related``)."""
    bound_to: str = ""
    used: bool = False
    followed: bool = True
    """Whether the name it is assigned to is followed (a layer built into a model is not)."""
    model_output: bool = False
    """A model that ends in softmax: the one construct model code alone can hold."""
