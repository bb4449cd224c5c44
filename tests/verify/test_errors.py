"""User code that hangs, raises or fails to import is a failure with the user's traceback."""

from __future__ import annotations

import pytest

from verify_helpers import VERIFY_FIXTURES, failures, run_verify

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def errors():
    return run_verify(str(VERIFY_FIXTURES / "errors"), "--timeout", "8", "--epochs", "1")


def test_exit_code(errors):
    code, report = errors
    assert code == 1
    assert report["summary"]["failed"] >= 3


def test_timeout_names_the_user_line(errors):
    _, report = errors
    rows = failures(report, "times_out.py")
    assert len(rows) == 1
    assert rows[0]["reason"].startswith("timed out after 8 s in evaluate (times_out.py:")
    assert "times_out.py" in rows[0]["traceback"]


def test_exception_in_user_code(errors):
    _, report = errors
    rows = [c for c in failures(report, "raises.py") if c["check"].startswith("call")]
    assert rows and rows[0]["reason"] == "train raised RuntimeError: user bug: checkpoint folder missing"
    assert rows[0]["line"] == 9
    assert 'raises.py", line 9, in train' in rows[0]["traceback"]
    assert "migrate_ml_reference" not in rows[0]["traceback"] and "/harness/" not in rows[0]["traceback"]


def test_import_error(errors):
    _, report = errors
    rows = failures(report, "import_error.py")
    assert len(rows) == 1 and rows[0]["check"] == "import"
    assert "ModuleNotFoundError" in rows[0]["reason"] and rows[0]["line"] == 4
    assert "import_error.py" in rows[0]["traceback"]
    assert rows[0]["hint"].startswith("install package_that_does_not_exist_anywhere into the environment verify runs")


def test_import_of_a_name_the_installed_version_lacks(errors):
    _, report = errors
    rows = failures(report, "import_name_error.py")
    assert len(rows) == 1 and rows[0]["check"] == "import" and rows[0]["line"] == 3
    assert rows[0]["hint"].startswith("the installed torch lacks this name")


def test_script_alone_fails(tmp_path):
    """With nothing else exercised, a script without an entry point fails the run."""
    code, report = run_verify(str(VERIFY_FIXTURES / "script"), "--static-only")
    entry = [c for c in report["checks"] if c["check"] == "entry point"]
    assert code == 1 and entry[0]["status"] == "FAIL"
    assert "no callable entry point" in entry[0]["reason"]


def test_entry_point_verdict_is_the_same_with_and_without_static_only():
    paths = [str(VERIFY_FIXTURES / "script" / "module_level_script.py"),
             str(VERIFY_FIXTURES / "broken" / "good_migration.py")]
    verdicts = []
    for extra in ([], ["--static-only"]):
        _, report = run_verify(*paths, "--epochs", "1", *extra)
        verdicts.append([(c["file"], c["line"], c["status"]) for c in report["checks"] if c["check"] == "entry point"])
    assert verdicts[0] == verdicts[1] and verdicts[0][0][2] == "SKIP"


def test_metric_code_nested_in_main_is_an_entry_point_failure_not_nothing_to_run():
    code, report = run_verify(str(VERIFY_FIXTURES / "nested"), "--static-only")
    entry = [c for c in report["checks"] if c["check"] == "entry point"]
    assert code == 1 and len(entry) == 1 and entry[0]["status"] == "FAIL" and entry[0]["line"] == 10
    assert entry[0]["reason"].startswith("no callable entry point for the prediction code inside main()")


def test_a_model_class_verify_cannot_build_is_skipped_with_the_reason(tmp_path):
    source = tmp_path / "wrapper.py"
    source.write_text("import torch.nn as nn\n\n\nclass Wrapper(nn.Module):\n    def __init__(self, architecture):\n"
                      "        super().__init__()\n        self.architecture = architecture\n\n"
                      "    def forward(self, x):\n        return self.architecture(x)\n")
    code, report = run_verify(str(source))
    rows = [(c["check"], c["status"], c["line"], c["reason"]) for c in report["checks"] if c["phase"] == "dynamic"]
    assert rows == [("model Wrapper outputs", "SKIP", 4,
                     "not checked: Wrapper() needs `architecture`, which verify has no sample value for")]
    assert code == 0  # not "the harness wrote no result"


def test_crash_hints_point_to_the_way_out(errors):
    _, report = errors
    rows = {c["function"]: c for c in failures(report, "unknown_args_and_model_attributes.py") if c["check"].startswith("call")}
    args_row, model_row = rows["train_one_epoch"], rows["regularised_step"]
    assert args_row["line"] == 8 and "--bind args.accum_iter=VALUE" in args_row["hint"]
    assert model_row["line"] == 16
    assert model_row["reason"].endswith("AttributeError: verify's sample model has no attribute 'compute_reg'")
    assert "let a caller in the file build the model" in model_row["hint"]


KILLS_ITS_PARENT = """
import os
import signal

import torch


def evaluate(model, data_loader):
    os.kill(os.getppid(), signal.SIGKILL)  # the harness: in its PID namespace a signal it cannot get
    correct = total = 0
    for images, labels in data_loader:
        predicted = (torch.sigmoid(model(images)) > 0.5).float()
        correct += (predicted == labels).all(dim=1).sum().item()
        total += labels.size(0)
    return correct / total
"""


def test_a_huge_timeout_is_no_deadline_not_a_native_crash(tmp_path):
    """Issue 21, item 17: `--timeout 1e10` overflowed faulthandler and read "crashed in native code"."""
    (tmp_path / "kills.py").write_text(KILLS_ITS_PARENT)
    code, report = run_verify(str(tmp_path / "kills.py"), "--timeout", "1e10", "--epochs", "1")
    dynamic = [c for c in report["checks"] if c["phase"] == "dynamic"]
    assert [c["status"] for c in dynamic if c["check"].startswith("call")] == ["PASS", "PASS"], dynamic
    assert not any("native code" in c["reason"] for c in dynamic) and code == 0


def test_a_harness_killed_while_a_file_runs_blames_that_file_not_the_installation():
    """Issue 21, item 17: code that kills the harness (where no PID namespace protects it) got
    "check the runtime installation"."""
    from migrate_ml.verify.dynamic import _missing_result

    failure = "the verify harness was killed by SIGKILL:\nlast output"
    reason, hint = _missing_result(failure, -9, False, True)
    assert reason == "not run to the end: the verify harness was killed by SIGKILL while running this file"
    assert "the file's code may have killed it" in hint and "installation" not in hint
    reason, hint = _missing_result(failure, -9, False, False)
    assert reason.endswith("before this file") and "installation" not in hint
    assert "installation" in _missing_result("the verify harness exited with status 1:\nModuleNotFoundError: timm",
                                              1, False, True)[1]
