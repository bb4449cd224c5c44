"""A torchmetrics ``Metric`` whose state is never reset between epochs.

Its value at the end of the second epoch mixes in the first epoch's updates, so it differs from the
reference on that epoch's outputs, and the metric row alone would blame the logging line with a
hint about the measure. Here each ``Metric`` is followed: the harness marks the start of every
epoch (and every call); a metric that was updated and computed, is carried into the next epoch
without ``reset()``, then computed again is reported at that ``compute`` line, with its ``update``
line, and the failing metric rows of that call get the reset hint instead.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from .core import user_site

RESET_HINT = ("call .reset() on the metric after compute() at the end of each epoch (or at the start of the next); "
              "Lightning resets a Metric it logs as an object: self.log(name, metric)")


RUNNING_BEST = frozenset({"MaxMetric", "MinMetric"})
"""Kept across epochs by design (the best validation score so far): never resetting them is right."""


@dataclass
class _State:
    name: str
    updated: bool = False
    computed: bool = False
    carried: bool = False
    update_line: int | None = None
    compute_line: int | None = None
    reported: bool = field(default=False)


class MetricStates:
    """Follows every ``torchmetrics.Metric`` created after :meth:`install` (user metrics are)."""

    def __init__(self, user_files: set[str]) -> None:
        self.user_files = user_files
        # Keyed by id, not by the metric: a torchmetrics Metric hashes its state tensors, which
        # forward() replaces, so a metric updated by calling it would no longer be found.
        self.states: dict[int, _State] = {}
        self.flagged: list[_State] = []
        self._inside_forward = 0

    def install(self) -> None:
        from torchmetrics import Metric

        tracker = self
        wrap_update, wrap_compute, reset, forward = Metric._wrap_update, Metric._wrap_compute, Metric.reset, Metric.forward

        def _wrap_update(metric, update):
            inner = wrap_update(metric, update)

            def updated(*args, **kwargs):
                tracker._event(metric, "update")
                return inner(*args, **kwargs)
            return updated

        def _wrap_compute(metric, compute):
            inner = wrap_compute(metric, compute)

            def computed(*args, **kwargs):
                tracker._event(metric, "compute")
                return inner(*args, **kwargs)
            return computed

        def reset_(metric):
            tracker._event(metric, "reset")
            return reset(metric)

        def forward_(metric, *args, **kwargs):
            # forward resets, updates and computes internally, then merges the batch into the kept state: an update
            tracker._event(metric, "update")
            tracker._inside_forward += 1
            try:
                return forward(metric, *args, **kwargs)
            finally:
                tracker._inside_forward -= 1

        Metric._wrap_update, Metric._wrap_compute, Metric.reset, Metric.forward = (
            _wrap_update, _wrap_compute, reset_, forward_)

    def mark(self) -> None:
        """A new epoch or call starts: state updated and computed before now is carried over unless reset."""
        for state in self.states.values():
            state.carried = state.updated and state.computed

    def take(self) -> list[_State]:
        """The metrics computed on carried-over state since the last call."""
        flagged, self.flagged = self.flagged, []
        return flagged

    def _event(self, metric, event: str) -> None:
        if self._inside_forward or type(metric).__name__ in RUNNING_BEST:
            return
        state = self.states.get(id(metric))
        if state is None:
            state = self.states[id(metric)] = _State(type(metric).__name__)
            weakref.finalize(metric, self.states.pop, id(metric), None)  # an id is reused once its metric is gone
        line = self._line()
        if event == "reset":
            state.updated = state.computed = state.carried = False
        elif event == "update":
            state.updated = True
            state.update_line = state.update_line or line
        elif event == "compute" and state.updated:
            state.computed = True
            state.compute_line = line
            if state.carried and not state.reported:
                state.reported = True
                self.flagged.append(state)

    def _line(self) -> int | None:
        return user_site(self.user_files)[1]


def never_reset_reason(state: _State) -> str:
    where = f" (updated at line {state.update_line})" if state.update_line else ""
    return (f"{state.name} is computed with the updates of earlier epochs: its state is never reset{where}, so the value "
            "mixes epochs")


def amend(flagged: list[_State], status: str, reason: str, code: str | None, hint: str,
          line: int | None) -> tuple[str | None, str, str, int | None]:
    """A failing metric row of a call whose metric was never reset: blamed at ``compute`` with the reset hint."""
    if status != "FAIL" or not flagged:
        return code, reason, hint, line
    state = flagged[0]
    return None, f"{reason}; {never_reset_reason(state)}", RESET_HINT, state.compute_line or line
