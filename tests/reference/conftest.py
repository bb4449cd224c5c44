import pytest


@pytest.fixture
def one_line_error(capsys):
    """Checks that the command wrote one ``error: `` line (no traceback) holding each needle; returns it."""

    def check(*needles: str) -> str:
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        for needle in needles:
            assert needle in err, err
        return err

    return check
