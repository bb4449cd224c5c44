"""File discovery, error isolation and parallel processing."""

from __future__ import annotations

import libcst as cst

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
    assert str(bad_outcome.error) == f"{bad}:1:1: error: internal error: KeyError: 'boom'; file left unchanged"
    assert bad.read_text() == "y = legacy_call(1)\n"
    assert good_outcome.error is None


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


def test_findings_follow_the_text_the_user_gets(make_rule):
    make_rule("ML923", rename)
    make_rule("ML924", None, message="legacy_call seen")
    data = b"import os\n\nx = legacy_call(1)\n"
    reported = process_file("-", Settings(select=("ML924",)), write=True, data=data)
    assert [f.line for f in reported.findings] == [3]
