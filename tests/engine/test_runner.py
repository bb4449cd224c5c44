"""File discovery, error isolation and parallel processing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import libcst as cst
import pytest

from migrate_ml.engine import source
from migrate_ml.engine.report import verbose_lines
from migrate_ml.engine.runner import discover, process_file, process_files
from migrate_ml.engine.transform import Settings


def rename(call: cst.Call) -> cst.Call:
    return call.with_changes(func=cst.Name("modern_call"))


def _tree(root, files):
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")


def test_discover_skips_what_is_not_the_users_code(tmp_path, monkeypatch):
    _tree(tmp_path, [
        "train.py", "pkg/model.py", "pkg/notes.txt",
        ".git/hooks/x.py", ".hidden/x.py", "__pycache__/x.py", "build/x.py", "dist/x.py",
        "venv/x.py", "myenv/lib/x.py", "condaenv/lib/x.py", "node_modules/x.py",
        "generated/x.py", "pkg/skip_me.py",
    ])
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "condaenv" / "conda-meta").mkdir()
    monkeypatch.chdir(tmp_path)
    found = list(discover(["."], exclude=["generated", "skip_*.py"]))
    assert found == ["train.py", "pkg/model.py"]  # a folder's files, then its subfolders


def test_named_files_are_kept_and_duplicates_dropped(tmp_path, monkeypatch):
    _tree(tmp_path, ["a.py", "build/b.py"])
    monkeypatch.chdir(tmp_path)
    found = list(discover(["a.py", ".", "build/b.py", "./a.py", "missing.py"], exclude=["a.py"]))
    assert found == ["a.py", "build/b.py", "missing.py"]


def test_a_crashing_rule_fails_its_file_only(tmp_path, make_rule):
    def crash(call):
        raise KeyError("boom")

    make_rule("ML921", crash)
    bad = tmp_path / "bad.py"
    bad.write_text("y = legacy_call(1)\n")
    good = tmp_path / "good.py"
    good.write_text("y = 2\n")
    bad_outcome, good_outcome = process_files([str(bad), str(good)], Settings(), write=True)
    assert str(bad_outcome.error) == (
        f"{bad}:1:1: error: internal error in ML921: KeyError: 'boom'; file left unchanged. This is a bug in "
        "migrate-ml 0.1.0: please report it with the command you ran, this file and this message (-v prints the traceback)"
    )
    assert bad.read_text() == "y = legacy_call(1)\n"
    assert good_outcome.error is None


def test_an_internal_error_names_the_rule_and_line_it_was_detecting_at(tmp_path, make_rule):
    rule = make_rule("ML923", None)

    def visit_Call(self, node):  # LibCST dispatches on the method's name
        if isinstance(node.func, cst.Name) and node.func.value == "legacy_call":
            return node.func.endswith("x")  # a node taken for a string: the ML105 bug

    rule.visit_Call = visit_Call
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\nz = [legacy_call(1)]\n")
    outcome = process_file(str(bad), Settings(), write=False)
    assert str(outcome.error).startswith(f"{bad}:4:1: error: internal error in ML923: AttributeError: 'Name' object has no attribute 'endswith'")
    # --verbose prints the traceback below the file's line, down to the rule's own frame.
    assert "in visit_Call" in outcome.traceback and outcome.traceback.rstrip().endswith("AttributeError: 'Name' object has no attribute 'endswith'")
    lines = verbose_lines([outcome], 0.1, 1)
    assert lines[0] == f"migrate-ml: {bad}: could not be processed ({outcome.seconds:.3f} s)"
    assert lines[1] == "migrate-ml:   Traceback (most recent call last):"
    assert any("in visit_Call" in line for line in lines)


def test_parallel_results_match_serial_ones_in_input_order(tmp_path, make_rule):
    make_rule("ML922", rename)
    paths = []
    for index in range(12):
        path = tmp_path / f"f{index:02}.py"
        # Different sizes, so that the largest-first schedule differs from the input order.
        body = "legacy_call(1)\n" if index % 3 == 0 else "x = 1\n"
        path.write_text("# pad\n" * (index * 7 % 11) + body)
        paths.append(str(path))
    paths.append(str(tmp_path / "missing.py"))
    serial = process_files(paths, Settings(), write=False, jobs=1)
    parallel = process_files(paths, Settings(), write=False, jobs=2)
    assert [o.path for o in parallel] == paths
    summary = lambda outcomes: [(o.path, o.changed, [c.code for c in o.changes], str(o.error)) for o in outcomes]
    assert summary(parallel) == summary(serial)
    assert [o.changed for o in serial].count(True) == 4


def test_without_fork_files_are_processed_in_this_process(tmp_path, make_rule, monkeypatch):
    make_rule("ML929", rename)
    paths = []
    for index in range(3):
        path = tmp_path / f"f{index}.py"
        path.write_text("y = legacy_call(1)\n" if index else "x = 1\n")
        paths.append(str(path))
    monkeypatch.delattr(os, "fork")
    outcomes = process_files(paths, Settings(), write=True, jobs=2)
    assert [o.written for o in outcomes] == [False, True, True]
    assert (tmp_path / "f1.py").read_text() == "y = modern_call(1)\n"


def test_findings_follow_the_text_the_user_gets(make_rule):
    make_rule("ML923", rename)
    make_rule("ML924", None, message="legacy_call seen")
    data = b"import os\n\nx = legacy_call(1)\n"
    reported = process_file("-", Settings(select=("ML924",)), write=True, data=data)
    assert [f.line for f in reported.findings] == [3]


DEEP = "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\nx = " + "[" * 5000 + "]" * 5000 + "\n"
"""Passes the pre-filter, then makes LibCST's native parser overflow its stack (SIGSEGV)."""


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_parser_crash_fails_its_file_only(tmp_path, jobs):
    deep = tmp_path / "deep.py"
    deep.write_text(DEEP)
    paths = [str(deep)]
    for index in range(3):
        path = tmp_path / f"train{index}.py"
        path.write_text("import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n")
        paths.append(str(path))
    outcomes = process_files(paths, Settings(), write=True, jobs=jobs)
    assert str(outcomes[0].error) == f"{deep}: error: the parser crashed on this file (SIGSEGV); file left unchanged"
    assert deep.read_text() == DEEP
    assert [o.written for o in outcomes[1:]] == [True, True, True]
    assert all("BCEWithLogitsLoss" in Path(path).read_text() for path in paths[1:])
    assert [pid for pid in _children(os.getpid()) if _alive(pid)] == []  # every worker was reaped


def test_a_parser_crash_exits_2_and_names_the_file(tmp_path, monkeypatch, run_cli):
    (tmp_path / "deep.py").write_text(DEEP)
    (tmp_path / "train.py").write_text("import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("rewrite", "-j1", ".")
    assert code == 2
    assert "deep.py: error: the parser crashed on this file (SIGSEGV); file left unchanged" in out
    assert "Traceback" not in out + err
    assert "BCEWithLogitsLoss" in (tmp_path / "train.py").read_text()
    assert sorted(os.listdir(tmp_path)) == ["deep.py", "train.py"]  # no core file, no temporary file


def test_a_parser_crash_on_stdin_is_one_error_line(run_cli):
    code, out, err = run_cli("rewrite", "--stdin-filename", "deep.py", "-", stdin=DEEP.encode())
    assert code == 2
    assert "deep.py: error: the parser crashed on this file (SIGSEGV); file left unchanged" in out + err
    assert "Traceback" not in out + err


def test_unchanged_stdin_code_is_echoed_back_from_its_worker(run_cli):
    code, out, _ = run_cli("rewrite", "-", stdin=b"import torch.nn as nn\nloss = nn.BCEWithLogitsLoss()\n")
    assert code == 0
    assert out == "import torch.nn as nn\nloss = nn.BCEWithLogitsLoss()\n"


def test_review_reports_a_parser_crash_and_goes_on(tmp_path, monkeypatch, run_cli):
    (tmp_path / "a_deep.py").write_text(DEEP)
    (tmp_path / "b_train.py").write_text("import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("review", "a_deep.py", "b_train.py", stdin=b"y\n")
    assert code == 2
    assert "a_deep.py: error: the parser crashed on this file (SIGSEGV); file left unchanged" in out + err
    assert "BCEWithLogitsLoss" in (tmp_path / "b_train.py").read_text()
    assert (tmp_path / "a_deep.py").read_text() == DEEP
    assert sorted(os.listdir(tmp_path)) == ["a_deep.py", "b_train.py"]


def test_fifos_and_devices_among_inputs_are_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "train.py").write_text("import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\n")
    done = subprocess.run(
        [sys.executable, "-m", "migrate_ml", "rewrite", "-j2", ".", "/dev/zero"], cwd=tmp_path,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "pipe.py: error: not a regular file (a FIFO); only regular files are read" in done.stdout
    assert "/dev/zero: error: not a regular file (a character device)" in done.stdout
    assert "BCEWithLogitsLoss" in (tmp_path / "train.py").read_text()


def test_a_file_edited_during_the_run_is_left_alone(tmp_path, make_rule):
    path = tmp_path / "train.py"
    edited = "y = legacy_call(1)  # saved from the editor meanwhile\n"

    def edit_meanwhile(call):
        path.write_text(edited)
        return rename(call)

    make_rule("ML925", edit_meanwhile)
    path.write_text("y = legacy_call(1)\n")
    outcome = process_file(str(path), Settings(), write=True)
    assert str(outcome.error) == f"{path}: error: changed while migrate-ml was running; run again"
    assert not outcome.written
    assert path.read_text() == edited


def test_an_edit_during_the_run_fails_the_command(tmp_path, make_rule, run_cli):
    path = tmp_path / "train.py"

    def edit_meanwhile(call):
        path.write_text("y = legacy_call(2)\n")
        return rename(call)

    make_rule("ML926", edit_meanwhile)
    path.write_text("y = legacy_call(1)\n")
    code, out, err = run_cli("rewrite", "--select", "ML926", str(path))
    assert code == 2
    assert f"{path}: error: changed while migrate-ml was running; run again" in out + err
    assert path.read_text() == "y = legacy_call(2)\n"


def test_an_edit_while_review_waits_for_an_answer_is_not_overwritten(tmp_path, make_rule):
    from migrate_ml.commands.review import review_file
    from migrate_ml.engine.transform import FileTransformer

    rule = make_rule("ML927", rename)
    path = tmp_path / "train.py"
    path.write_text("y = legacy_call(1)\n")

    class EditingReviewer:
        def for_file(self, name):
            def answer(proposal):
                path.write_text("y = legacy_call(1)  # the user kept typing\n")
                return True

            return answer

    outcome = review_file(str(path), FileTransformer([rule], Settings()), EditingReviewer())
    assert str(outcome.error) == f"{path}: error: changed while migrate-ml was running; run again"
    assert path.read_text() == "y = legacy_call(1)  # the user kept typing\n"


def test_a_read_only_file_reports_cannot_write(tmp_path, make_rule, monkeypatch):
    make_rule("ML928", rename)
    path = tmp_path / "train.py"
    path.write_text("y = legacy_call(1)\n")
    path.chmod(0o444)
    monkeypatch.setattr(source.os, "access", lambda *args, **kwargs: False)  # as a non-root user is told
    outcome = process_file(str(path), Settings(), write=True)
    assert str(outcome.error) == f"{path}:1:1: error: cannot write: Permission denied; file left unchanged"
    assert path.read_text() == "y = legacy_call(1)\n"


def test_sigterm_stops_the_workers(tmp_path):
    for index in range(60):
        (tmp_path / f"train{index:02}.py").write_text(SLOW_FILE)
    run = subprocess.Popen(
        [sys.executable, "-m", "migrate_ml", "rewrite", "--check", "-j2", "."], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    workers = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline and run.poll() is None:
        workers = _children(run.pid)
        time.sleep(0.01)
    assert len(workers) == 2, "the run ended before both workers started: make it longer"
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=30) == -signal.SIGTERM
    time.sleep(0.5)
    assert [pid for pid in workers if _alive(pid)] == []


SLOW_FILE = "import torch.nn as nn\n\ncriterion = nn.CrossEntropyLoss()\n\n\n" + "".join(
    f"def step{n}(model, images, labels):\n    out = model(images)\n    loss = criterion(out, labels)\n"
    f"    return loss + {n}\n\n\n" for n in range(150)
)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:
        pytest.skip("needs Linux /proc to find the worker processes")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


CR_ONLY = b"import torch.nn as nn\rcriterion = nn.CrossEntropyLoss()\rloss = criterion(out, labels)\r"


def test_cr_only_line_endings_give_a_patch_git_applies_and_keep_the_last_break(tmp_path, monkeypatch, run_cli):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "train.py").write_bytes(CR_ONLY)
    (tmp_path / "rewritten.py").write_bytes(CR_ONLY)
    monkeypatch.chdir(tmp_path)
    code, patch, _ = run_cli("rewrite", "--diff", "train.py")
    assert code == 1
    subprocess.run(["git", "apply", "-"], cwd=tmp_path, input=patch.encode(), check=True, capture_output=True)
    assert run_cli("rewrite", "rewritten.py")[0] == 0
    expected = CR_ONLY.replace(b"CrossEntropyLoss", b"BCEWithLogitsLoss").replace(b"labels)", b"labels.float())")
    assert (tmp_path / "rewritten.py").read_bytes() == expected
    assert (tmp_path / "train.py").read_bytes() == expected
