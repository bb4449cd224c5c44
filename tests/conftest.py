import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``migrate-ml`` in-process; returns (exit code, stdout, stderr)."""
    from migrate_ml.cli import main

    def run(*argv: str, stdin: bytes | None = None):
        if stdin is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
