"""What the dynamic pass is running, shown on a terminal while it runs.

The harness's child for each file writes ``unit<N>/progress.json`` in the scratch folder (see
``migrate_ml_reference.harness.budget``): the entry point, its step and the deadline. This thread reads the
newest one every second and rewrites one status line on stderr; it prints nothing when stderr is
not a terminal (CI logs, pipes), where the rows at the end say everything.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import TextIO

POLL_S = 1.0


class ProgressLine(threading.Thread):
    def __init__(self, scratch: str, shown: list[str], stream: TextIO | None = None, enabled: bool | None = None) -> None:
        super().__init__(daemon=True)
        self.scratch = scratch
        self.shown = shown
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._stop = threading.Event()
        self._last = ""

    def __enter__(self) -> ProgressLine:
        if self.enabled:
            self.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        if self.is_alive():
            self.join()
        if self._last:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.show()

    def show(self) -> None:
        text = self.status()
        if text and text != self._last:
            self.stream.write(f"\r\x1b[K{text}")
            self.stream.flush()
            self._last = text

    def status(self) -> str:
        """``verify 2/3 train.py: train_one_epoch (int64 labels), step 2 of 3, 41 s left``, or '' before any file ran."""
        for index in reversed(range(len(self.shown))):
            try:
                with open(os.path.join(self.scratch, f"unit{index}", "progress.json"), encoding="utf-8") as handle:
                    progress = json.load(handle)
            except (OSError, ValueError):
                continue
            entry = progress.get("entry") or "importing"
            labels = f" ({progress['labels']})" if progress.get("labels") else ""
            step = f", {progress['step']}" if progress.get("step") else ""
            left = progress.get("deadline")
            left = f", {max(0, left - time.time()):.0f} s left" if isinstance(left, (int, float)) else ""
            return f"verify {index + 1}/{len(self.shown)} {self.shown[index]}: {entry}{labels}{step}{left}"
        return ""
