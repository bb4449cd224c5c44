"""What verify runs stays contained: no process outlives the run, output costs bounded memory,
the network is cut off (issue 13, items 10-12)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from migrate_ml.verify.contain import marked_processes
from verify_helpers import GENEROUS_TIMEOUT, REPO, VERIFY_FIXTURES, failures, rows_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

PROCESSES = VERIFY_FIXTURES / "containment" / "processes"
MEMORY_HOG = VERIFY_FIXTURES / "containment" / "memory" / "hog.py"

# verify runs in-process here so its own peak memory can be read. VmHWM, not ru_maxrss: Linux
# carries ru_maxrss over exec from the forked parent (pytest, possibly with torch loaded).
RUN_AND_MEASURE = (
    "import re, sys\n"
    "from migrate_ml.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
    "print(code, peak, file=sys.stderr)\n"
)


def _marked(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (everything the run started inherits it)."""
    return marked_processes(f"MIGRATE_ML_TEST_MARKER={marker}")


def _settled(marker: str, seconds: float = 30.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _measured_verify(paths: list[str], env: dict, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN_AND_MEASURE, "verify", *paths, *options, "--epochs", "1", "--output-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )


@pytest.fixture(scope="module")
def contained_run():
    """Two verify runs at once under one marker: the hang with a 10 s --timeout (the limit it tests), the
    other files (and the memory hog, under --memory 2G) with a generous one, so that a busy machine does not
    turn their verdicts into timeouts."""
    marker = uuid.uuid4().hex
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    env = {**os.environ, "MIGRATE_ML_TEST_MARKER": marker, "MIGRATE_ML_TEST_PORT": str(server.getsockname()[1])}
    hang = str(PROCESSES / "hangs_after_spawning.py")
    others = [*sorted(str(p) for p in PROCESSES.glob("*.py") if str(p) != hang), str(MEMORY_HOG)]
    started = time.monotonic()
    runs = []
    try:
        runs = [_measured_verify(others, env, "--timeout", GENEROUS_TIMEOUT, "--memory", "2G"),
                _measured_verify([hang], env, "--timeout", "10")]
        outputs = [run.communicate(timeout=600) for run in runs]
    finally:
        elapsed = time.monotonic() - started
        for run in runs:
            if run.poll() is None:
                run.kill()
        left = _settled(marker)
        _kill(left)
    try:
        connection, _ = server.accept()
        connection.close()
        connected = True
    except BlockingIOError:
        connected = False
    finally:
        server.close()
    report = {"checks": [check for stdout, _ in outputs for check in json.loads(stdout)["checks"]]}
    code, peak_kib = map(int, outputs[0][1].split()[-2:])  # the run with prints_a_lot.py and hog.py
    return report, elapsed, left, connected, code, peak_kib


def test_no_process_outlives_the_run(contained_run):
    report, elapsed, left, *_ = contained_run
    assert left == [], "processes started by user code outlived verify"
    # The sleeps last 900 s: the run must not wait for them (the margin is for a busy machine).
    assert elapsed < 600
    assert rows_for(report, "leaves_processes.py")


def test_a_file_that_finishes_but_leaves_processes_is_judged_on_its_own_result(contained_run):
    report, *_ = contained_run
    rows = rows_for(report, "leaves_processes.py")
    assert [c for c in rows if c["phase"] == "dynamic" and c["status"] == "FAIL"] == []
    assert any(c["check"].startswith("metric") and c["status"] == "PASS" for c in rows)


def test_timeout_is_a_failure_and_its_processes_are_killed(contained_run):
    report, *_ = contained_run
    rows = failures(report, "hangs_after_spawning.py", phase="dynamic")
    assert [c["check"] for c in rows] == ["run"]
    assert rows[0]["reason"].startswith("timed out after 10 s")


def test_the_network_is_cut_off_below_the_socket_module(contained_run):
    connected = contained_run[3]
    assert not connected, "user code connected through _socket"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGHUP, signal.SIGKILL], ids=["ctrl-c", "hangup", "kill"])
def test_however_verify_is_stopped_nothing_the_run_started_is_left(tmp_path, stop):
    """Issue 21, item 7: a closed terminal (SIGHUP) and SIGKILL used to leave the user's processes
    under init and the scratch folder behind."""
    marker = uuid.uuid4().hex
    env = {**os.environ, "MIGRATE_ML_TEST_MARKER": marker, "MIGRATE_ML_TEST_PORT": "9", "MIGRATE_ML_TEST_HOLD": "1",
           "TMPDIR": str(tmp_path)}
    cli = subprocess.Popen(
        [sys.executable, "-m", "migrate_ml", "verify", str(PROCESSES / "leaves_processes.py"), "--timeout",
         GENEROUS_TIMEOUT],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        # A job started in the background of a non-interactive shell (a CI step) inherits SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        # The CLI and the harness carry the marker too; wait for the user code's own processes
        # (the sleep, the forked loop, the daemon).
        while len(_marked(marker)) < 7 and time.monotonic() < deadline and cli.poll() is None:
            time.sleep(0.2)
        assert cli.poll() is None, "verify finished before it could be stopped"
        cli.send_signal(stop)
        _, stderr = cli.communicate(timeout=120)
        left = _settled(marker)
    finally:
        if cli.poll() is None:
            cli.kill()
        _kill(_marked(marker))
    if stop == signal.SIGKILL:
        assert cli.returncode == -signal.SIGKILL
    else:
        assert cli.returncode == 130 and "interrupted" in stderr.decode()
    assert left == []
    assert list(tmp_path.glob("migrate-ml-verify-*")) == []


def test_output_of_user_code_costs_bounded_memory(contained_run):
    """200 MB printed by user code: the CLI keeps only the tail (it held it all before)."""
    report, *_, peak_kib = contained_run
    assert [c["status"] for c in rows_for(report, "prints_a_lot.py") if c["check"].startswith("call")] == ["PASS"] * 2
    assert peak_kib < 150 * 1024, f"verify's own peak memory was {peak_kib // 1024} MiB"


NON_ROOT_PROBE = """
import os, socket, sys
from migrate_ml_reference.harness.contain import _unshare_network
if not _unshare_network():
    sys.exit("no-namespace")
assert os.getuid() == 65534, os.getuid()  # the user namespace maps the caller's own id
try:
    socket.create_connection(("127.0.0.1", 9), timeout=2)
except OSError as error:
    print("refused", error.errno)
print(open(sys.argv[1]).read())
"""


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0 or not os.path.exists("/usr/bin/setpriv"),
                    reason="runs the probe as another user: needs root and setpriv")
def test_a_non_root_user_gets_its_own_network_namespace_and_keeps_its_file_access():
    folder = tempfile.mkdtemp(dir="/tmp")
    os.chmod(folder, 0o755)
    readable = os.path.join(folder, "data.txt")
    with open(readable, "w") as handle:
        handle.write("sample data")
    os.chmod(readable, 0o644)
    try:
        result = subprocess.run(
            ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
             NON_ROOT_PROBE, readable], capture_output=True, text=True, timeout=120, cwd="/",
        )
    finally:
        shutil.rmtree(folder)
    if "no-namespace" in result.stderr or "Permission denied" in result.stderr:
        pytest.skip(f"the other user cannot run this venv or gets no user namespace: {result.stderr.strip()[-200:]}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["refused 101", "sample data"]  # no route: loopback is down in the namespace


def test_memory_is_limited_per_file(contained_run):
    """Issue 21, item 8: user code had no memory limit at all; --memory bounds each file's process."""
    report, *_, code, _ = contained_run
    calls = [c for c in rows_for(report, "hog.py") if c["check"].startswith("call")]
    assert code == 1 and [c["status"] for c in calls] == ["FAIL", "FAIL"]
    assert "MemoryError: out of the memory verify allows (--memory)" in calls[0]["reason"]
    assert "raise --memory" in calls[0]["hint"]


@pytest.mark.parametrize("value", ["lots", "1M", "-2G"])
def test_memory_must_be_a_size_the_runtime_fits_in(tmp_path, capsys, value):
    from migrate_ml.cli import main

    (tmp_path / "fine.py").write_text("x = 1\n")
    with pytest.raises(SystemExit) as exited:  # argparse's usage error, before anything runs
        main(["verify", "--memory", value, str(tmp_path)])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    assert err.count("\n") == 1 and "argument --memory" in err
