"""Time budget of one file's run: per-entry-point limits from a first timed step, and progress for the CLI.

``--timeout`` bounds the first step (one epoch, one call) of every entry point from the moment its code
is called, so a hang is still caught there; the sample arguments built for it before get ``--timeout`` of
their own. Once that step has finished, the entry point's limit is derived from it: the steps it
has left, each allowed :data:`STEP_FACTOR` times the first one's duration, so a ResNet-18 that needs
40 s an epoch on two cores is not cut off by a 60 s default. The file's deadline never moves past
:data:`MAX_EXTENSION` times ``--timeout`` from its import; what the harness prepares before that (the
sample data) is bounded by that allowance alone.

The child writes where it is (``progress.json``: entry point, line, step, deadline) to its unit
folder. The parent reads the deadline from it, the CLI shows it while the run goes on, and a
timeout row names the entry point and step it was in even when the stack at the deadline shows no
frame of the user's file.
"""

from __future__ import annotations

import faulthandler
import json
import os
import time

STEP_FACTOR = 3.0
MAX_EXTENSION = 8.0
PROGRESS_FILE = "progress.json"
FAULTHANDLER_MAX_S = 2.0**31
"""faulthandler counts in nanoseconds: a --timeout of 1e10 overflowed it and the child died silently."""


class Budget:
    """The child's side: arms faulthandler's deadline and moves it as entry points report their steps."""

    def __init__(self, folder: str, timeout: float, stack) -> None:
        self.path = os.path.join(folder, PROGRESS_FILE)
        self.timeout = timeout
        self.stack = stack
        self.started = time.time()
        # Until the file's code starts, the harness prepares (patches builders, makes the sample data): seconds
        # on a busy machine, which no --timeout of the user's code pays for; the file's whole allowance bounds it.
        self.deadline = self.started + MAX_EXTENSION * timeout
        self.state: dict = {"entry": "", "line": None, "step": "", "deadline": self.deadline,
                            "limit_s": MAX_EXTENSION * timeout}
        self._first_step: float | None = None
        self._steps = self._done = 0
        self._step_started = self._entry_started = self.started
        self._preparing = True
        faulthandler.dump_traceback_later(min(MAX_EXTENSION * timeout, FAULTHANDLER_MAX_S), exit=True, file=stack)
        self._write()

    def entry(self, name: str, line: int | None, steps: int, labels: str = "") -> None:
        """An entry point starts; it runs ``steps`` steps (epochs or calls)."""
        self._first_step = None
        self._steps = steps
        self._done = 0
        self.state.update(entry=name, line=line, labels=labels, step=f"step 1 of {steps}" if steps > 1 else "")
        self.state.pop("first_step_s", None)
        self._step_started = self._entry_started = time.time()
        self._move(self._step_started + self.timeout)

    def user_code_starts(self) -> None:
        """The user's code is called now (the file's import, an entry point's first step): the limit of what runs
        from here is ``--timeout``. What the harness did before (the sample data, the reference model, the sample
        loader) may take seconds on a busy machine; counted in, it could leave the user's code no time, and the
        stack at the deadline would hold no frame of it to name."""
        self._step_started = self._entry_started = time.time()
        if self._preparing:  # the file's own time, which MAX_EXTENSION bounds, starts with its import
            self.started, self._preparing = self._step_started, False
        self._move(self._step_started + self.timeout)

    def step_done(self) -> None:
        """A step finished: after the first, the rest of the entry point is allowed STEP_FACTOR times its pace."""
        now = time.time()
        self._done += 1
        if self._first_step is None:
            self._first_step = now - self._step_started
            self.state["first_step_s"] = round(self._first_step, 1)
        left = self._steps - self._done
        self.state["step"] = f"step {self._done + 1} of {self._steps}" if left > 0 else ""
        self._step_started = now
        self._move(now + max(self.timeout, STEP_FACTOR * self._first_step * max(left, 1)))

    def _move(self, deadline: float) -> None:
        self.deadline = min(max(deadline, self.started + self.timeout), self.started + MAX_EXTENSION * self.timeout)
        self.state["deadline"] = self.deadline
        self.state["limit_s"] = round(self.deadline - self._entry_started, 1)
        faulthandler.dump_traceback_later(min(max(self.deadline - time.time(), 0.1), FAULTHANDLER_MAX_S), exit=True, file=self.stack)
        self._write()

    def _write(self) -> None:
        temporary = f"{self.path}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(self.state, handle)
        os.replace(temporary, self.path)


def read_progress(folder: str) -> dict:
    """What the child last wrote (empty before it started)."""
    try:
        with open(os.path.join(folder, PROGRESS_FILE), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def parent_deadline(folder: str, started_wall: float, started_monotonic: float, timeout: float, grace: float) -> float:
    """The parent's kill deadline (monotonic clock): the child's own deadline plus ``grace``."""
    deadline = read_progress(folder).get("deadline")
    if not isinstance(deadline, (int, float)):
        return started_monotonic + timeout + grace
    return started_monotonic + (deadline - started_wall) + grace


def where(progress: dict, path: str) -> str:
    """``train_one_epoch (train.py:31), step 2 of 3 (int64 labels)``: the entry point a timed-out child was in."""
    if not progress.get("entry"):
        return ""
    line = f" ({os.path.basename(path)}:{progress['line']})" if progress.get("line") else ""
    step = f", {progress['step']}" if progress.get("step") else ""
    labels = f" ({progress['labels']})" if progress.get("labels") else ""
    first = f"; its first step took {progress['first_step_s']:g} s" if "first_step_s" in progress else ""
    return f"{progress['entry']}{line}{step}{labels}{first}"
