"""One verify check: a row of the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Check:
    file: str
    check: str
    status: str
    reason: str
    hint: str = ""
    line: int | None = None
    function: str | None = None
    code: str | None = None
    """The rule that fixes it, when one does."""
    traceback: str | None = None
    """The user's traceback, for crashes, import errors and timeouts."""
    phase: str = "dynamic"
    """``static`` (re-scan of the source) or ``dynamic`` (running the code on sample data)."""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_harness(cls, row: dict, display_path: str) -> "Check":
        return cls(
            file=display_path,
            check=row["check"],
            status=row["status"],
            reason=row["reason"],
            hint=row.get("hint") or "",
            line=row.get("line"),
            function=row.get("function"),
            code=row.get("code"),
            traceback=row.get("traceback"),
        )
