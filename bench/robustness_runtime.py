"""The runtime side of the adversarial robustness sweep: ``migrate-ml reference``, ``sample-data``
and ``verify`` under the attacks of the second adversarial pass (issue 21, items 5-12 and 15-19).

Each attack is a :class:`Case`: a command and what it must do: its exit status, the text its
output must hold (the one error line naming the path, or the report row), nothing written into
the trees it must keep (every byte of every file and link compared), nothing created where
nothing may be, no traceback, no process of the run left behind (each case's processes carry a
marker in their environment), nothing left in its ``TMPDIR``, and all of it within a time limit.
The inputs are built by the product itself where it can (``sample-data``, a two-step
``reference train``) and otherwise kept tiny, so the section runs in a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from migrate_ml.verify.contain import kill_marked, marked_processes

REPO = Path(__file__).resolve().parents[1]
CONTAINMENT = REPO / "tests" / "fixtures" / "verify" / "containment"
SMALL = ["--n-train", "64", "--n-val", "32", "--n-test", "32", "--batch-size", "32", "--epochs", "1", "--threads", "1",
         "--workers", "0", "--image-size", "16"]
"""A training run of seconds; ``--model-kwarg depth=1`` is added where the case does not set its own."""
TINY_MODEL = ["--model-kwarg", "depth=1"]
MARKER = "MIGRATE_ML_SWEEP_MARKER"
OWN_CODE = re.compile(r"/(migrate_ml|migrate_ml_reference)/|^" + re.escape(str(REPO / "reference")) + "/")
"""Frames of migrate-ml itself: a traceback through one is a crash. verify quotes the user code's own
traceback in its rows (the MemoryError of code that asked for too much): that is its report."""
LIBRARY_CACHES = ("torchinductor_",)
"""What libraries keep in TMPDIR on purpose, across runs (torch's compile cache)."""
NOBODY = 65534
CROSS_ENTROPY = "import torch.nn as nn\ncriterion = nn.CrossEntropyLoss()\nloss = criterion(out, labels)\n"
DEEP = "[" * 5000 + "]" * 5000
GOOD = "import torch.nn.functional as F\n\n\ndef loss_of(logits, targets):\n    return F.binary_cross_entropy_with_logits(logits, targets.float())\n"


@dataclass
class Case:
    name: str
    argv: list[str]
    code: int
    """The expected exit status; a negative one is death by that signal."""
    says: tuple[str, ...]
    """Texts the output (stdout and stderr) must hold: the error naming the path, the report row."""
    one_line: bool = True
    """stderr is one line and nothing more (a refusal)."""
    own_notes: tuple[str, ...] = ()
    """When set, every stderr line starts with one of these: the command's own notes, nothing from a library."""
    keep: tuple[Path, ...] = ()
    """Files and folders that must come out byte-identical (links compared by target)."""
    absent: tuple[Path, ...] = ()
    """Paths the command must not create."""
    limit: float = 60.0
    stop: int | None = None
    """A signal sent to the CLI once the user code's own processes run (verify killed mid-run)."""
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    case: Case
    seconds: float
    problems: list[str]
    lost_bytes: int = 0
    tracebacks: int = 0
    hung: bool = False

    @property
    def held(self) -> bool:
        return not self.problems


def snapshot(path: Path) -> dict[str, bytes | str]:
    """{relative name: bytes, or the target of a link}, never following a link."""
    if path.is_symlink():
        return {"": os.readlink(path)}
    if path.is_file():
        return {"": path.read_bytes()}
    found: dict[str, bytes | str] = {}
    for folder, folders, files in os.walk(path):
        for name in folders + files:
            entry = Path(folder) / name
            relative = str(entry.relative_to(path))
            if entry.is_symlink():
                found[relative] = os.readlink(entry)
            elif entry.is_file():
                found[relative] = entry.read_bytes()
    return found


def _lost(before: dict[str, bytes | str], after: dict[str, bytes | str]) -> tuple[int, list[str]]:
    """Bytes of the kept entries changed or removed, and every entry changed, removed or added."""
    lost = sum(len(value) for name, value in before.items() if after.get(name) != value)
    changed = sorted({name for name in before.keys() | after.keys() if before.get(name) != after.get(name)})
    return lost, changed


def _settled(marked: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := marked_processes(marked)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def run_case(case: Case, tmp: Path) -> Outcome:
    """Run one attack in a session of its own, with its own marker and ``TMPDIR``; judge it."""
    token = uuid.uuid4().hex
    marked = f"{MARKER}={token}"
    tmp.mkdir(parents=True)
    tmp.chmod(0o777)  # a case run as another user writes its temporary files here too
    env = {**os.environ, "COLUMNS": "200", "TMPDIR": str(tmp), MARKER: token, **case.env}
    before = {path: snapshot(path) for path in case.keep}
    started = time.monotonic()
    process = subprocess.Popen(case.argv, cwd=case.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    outcome = Outcome(case, 0.0, [])
    try:
        if case.stop is not None:
            # The CLI, the harness and the user code's sleep, forked loop and daemon all carry the marker.
            while len(marked_processes(marked)) < 7 and process.poll() is None and time.monotonic() - started < case.limit:
                time.sleep(0.2)
            if process.poll() is not None:
                outcome.problems.append("finished before it could be stopped")
            else:
                process.send_signal(case.stop)
        stdout, stderr = process.communicate(timeout=max(1.0, case.limit - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        outcome.hung = True
        outcome.problems.append(f"still running after {case.limit:.0f} s")
        kill_marked(token, MARKER)  # the command and whatever it started, wherever it went
        stdout, stderr = process.communicate()
    outcome.seconds = time.monotonic() - started
    left = _settled(marked)
    if left:
        outcome.problems.append(f"{len(left)} processes outlived the command")
        kill_marked(token, MARKER)
    text = (stdout + stderr).decode("utf-8", "replace")
    errors = stderr.decode("utf-8", "replace").strip().splitlines()
    outcome.tracebacks = own_tracebacks(text)
    if outcome.tracebacks:
        outcome.problems.append("traceback")
    if not outcome.hung and process.returncode != case.code:
        outcome.problems.append(f"exit {process.returncode}, expected {case.code}")
    outcome.problems += [f"output lacks {needle!r}" for needle in case.says if needle not in text]
    if case.one_line and len(errors) != 1:
        outcome.problems.append(f"{len(errors)} lines on stderr, expected one")
    if case.own_notes:
        outcome.problems += [f"stderr holds {line[:80]!r}" for line in errors if not line.startswith(case.own_notes)]
    for path, kept in before.items():
        lost, changed = _lost(kept, snapshot(path))
        outcome.lost_bytes += lost
        if changed:
            outcome.problems.append(f"{path}: changed {', '.join(changed[:3]) or 'itself'}")
    outcome.problems += [f"{path}: created" for path in case.absent if os.path.lexists(path)]
    left_behind = sorted(name for name in os.listdir(tmp) if not name.startswith(LIBRARY_CACHES))
    if left_behind:
        outcome.problems.append(f"left in TMPDIR: {', '.join(left_behind[:3])}")
    if outcome.problems:
        outcome.problems.append(f"output: {text.strip()[-300:]!r}")
    return outcome


def own_tracebacks(text: str) -> int:
    """Tracebacks with a frame of migrate-ml itself, or none to tell (a crash either way)."""
    count = 0
    for block in text.split("Traceback (most recent call last):")[1:]:
        lines = block.splitlines()[1:]
        frames = [re.search(r'File "([^"]+)"', line) for line in lines[:next(
            (i for i, line in enumerate(lines) if not line.startswith(" ")), len(lines))]]
        files = [frame[1] for frame in frames if frame]
        count += not files or any(OWN_CODE.search(name) for name in files)
    return count


# Inputs ------------------------------------------------------------------------------------------


def migrate_ml_command() -> list[str]:
    beside = Path(sys.executable).parent / "migrate-ml"
    return [str(beside)] if beside.exists() else [shutil.which("migrate-ml") or "migrate-ml"]


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def _line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def prepare(root: Path) -> tuple[Path, Path]:
    """The data and the run the attacks aim at, made by the product: (a dataset folder, a run folder)."""
    tool = migrate_ml_command()
    own, run = root / "own", root / "run"
    jobs = [subprocess.Popen([*tool, "sample-data", "--n", "20", "--image-size", "16", str(own)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE),
            subprocess.Popen([*tool, "reference", "train", *SMALL, *TINY_MODEL, "--sample", "shapes", "--out", str(run)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
    for job in jobs:
        _, stderr = job.communicate()
        if job.returncode:
            sys.exit(f"the sweep could not build its inputs: {stderr.decode()[-500:]}")
    # A dataset's own files under the names a run writes: a BOM in classes.txt, its own metrics.json.
    (own / "classes.txt").write_bytes(b"\xef\xbb\xbf" + (own / "classes.txt").read_bytes())
    (own / "metrics.json").write_text('{"mine": true}\n')
    return own, run


def reference_cases(root: Path, own: Path, run: Path) -> list[Case]:
    """Items 5, 9, 11, 15, 17, 18 and 19: the reference runtime and sample-data."""
    tool = migrate_ml_command()
    train = [*tool, "reference", "train", *SMALL]
    checkpoint = str(run / "checkpoint.pt")
    cases = [
        Case("train --out the data folder --overwrite (5)", [*train, *TINY_MODEL, "--data", str(own), "--out", str(own),
                                                              "--overwrite"],
             2, ("the output folder holds the data", str(own)), keep=(own,)),
        Case("train --out a folder inside the images (5)", [*train, *TINY_MODEL, "--data", str(own / "labels.csv"),
                                                             "--out", str(own / "images" / "run"), "--overwrite"],
             2, ("the output folder holds the data",), keep=(own,), absent=(own / "images" / "run",)),
    ]
    for link in ("images", "labels.csv"):
        folder, outside = root / f"linked-{link}", root / f"outside-{link}"
        victim = outside / "victim"
        if link == "images":
            _write(victim / "keep.txt", "keep")
        else:
            _write(victim, "keep")
        folder.mkdir()
        (folder / link).symlink_to(victim)
        cases.append(Case(f"sample-data --overwrite through a {link} symlink (5)",
                          [*tool, "sample-data", "--n", "10", "--image-size", "16", "--overwrite", str(folder)],
                          2, (f"{folder / link}: a symlink to {victim}", "refused"), keep=(outside, folder)))

    coco = root / "coco" / "big.json"
    annotations = [{"id": k, "image_id": 1, "category_id": 1, "bbox": [1.5, 2.5, 30.25, 40.75]} for k in range(40_000)]
    annotations.append({"id": 40_000, "image_id": 1, "category_id": 9})
    text = json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "annotations": annotations,
                       "categories": [{"id": 1, "name": "x"}]}, indent=1)
    _write(coco, text)
    _write(coco.parent / "images" / "a.png", next((own / "images").iterdir()).read_bytes())
    rows = {f"img{k:05d}.png": ["x"] for k in range(60_000)}
    labels_json = _write(root / "labels-json" / "labels.json", json.dumps(rows, indent=1))
    shutil.copytree(own / "images", labels_json.parent / "images")
    # The quadratic line mapping this replaced took 26 s on 4 MB (and 100 s on 8 MB); 30 s leaves a
    # linear pass and torch's import room on a loaded machine, and the old mapping none.
    bad_line = _line_of(text, '"category_id": 9')
    cases += [
        Case("COCO file of 4 MB, the bad annotation last (9)", [*train, *TINY_MODEL, "--data", str(coco), "--out",
                                                                 str(root / "coco-run")],
             2, (f"{coco}:{bad_line}:",), keep=(coco.parent,), absent=(root / "coco-run",),
             limit=30),
        Case("labels.json of 60,000 rows (9)", [*train, *TINY_MODEL, "--data", str(labels_json), "--out",
                                                str(root / "json-run")],
             2, (f"{labels_json}:2: missing image 'img00000.png'",), keep=(labels_json.parent,),
             absent=(root / "json-run",), limit=30),
    ]

    fifo_labels = _fifo(root / "fifo" / "labels.csv")
    fifo_thresholds = _fifo(root / "fifo" / "t.json")
    fifo_checkpoint = _fifo(root / "fifo" / "c.pt")
    cases += [
        Case("--data on a FIFO (11)", [*train, *TINY_MODEL, "--data", str(fifo_labels), "--out", str(root / "fifo-run")],
             2, (f"{fifo_labels}: is a FIFO (named pipe), not a regular file",), absent=(root / "fifo-run",)),
        Case("predict --thresholds on a FIFO (11)", [*tool, "reference", "predict", "--checkpoint", checkpoint,
                                                     "--thresholds", str(fifo_thresholds), str(run)],
             2, (f"{fifo_thresholds}: thresholds file is a FIFO",)),
        Case("eval --checkpoint on a FIFO (11)", [*tool, "reference", "eval", "--checkpoint", str(fifo_checkpoint)],
             2, (f"{fifo_checkpoint}: checkpoint is a FIFO",)),
    ]

    wide = _write(root / "wide" / "labels.csv", "file,labels\na.png," + "x" * 140_000 + "\n")
    nul = _write(root / "nul" / "c.json", '{"images": [\n{"id": 1, "file_name": "a\\u0000.png"}],\n "annotations": [],\n'
                                          ' "categories": [{"id": 1, "name": "x"}]}')
    (root / "nul" / "images").mkdir()
    cases += [
        Case("a CSV field of 140,000 characters (15)", [*train, *TINY_MODEL, "--data", str(wide), "--out",
                                                        str(root / "wide-run")],
             2, (f"{wide}:2: cannot read as CSV: field larger than field limit",), keep=(wide,),
             absent=(root / "wide-run",)),
        Case("a COCO file_name holding NUL (17)", [*train, *TINY_MODEL, "--data", str(nul), "--out", str(root / "nul-run")],
             2, (f"{nul}:2: image name 'a\\x00.png' holds a NUL character",), absent=(root / "nul-run",)),
    ]

    for other, change, says in (
        ("class count", ["--sample", "digits", *TINY_MODEL], "the checkpoint was trained on 7 classes, this run has 10"),
        ("--model", ["--sample", "shapes", "--model", "resnet18"],
         "the checkpoint holds a 'vit_tiny_patch16_224' model, this run asks for 'resnet18'"),
    ):
        copy = root / f"resume-{change[1]}-{change[-1]}"
        shutil.copytree(run, copy)
        cases.append(Case(f"--resume with another {other} (15)", [*train, *change, "--out", str(copy), "--resume",
                                                                   "--epochs", "2"],
                          2, (f"{copy / 'last.pt'}: {says}",), keep=(copy,)))
    for kwarg, says in (("img_size=7", "cannot take 16 px images"), ("num_heads=3", "dim should be divisible by num_heads"), ("act_layer='nope'", "unknown name 'nope'")):
        out = root / f"kwarg-{kwarg.split('=')[0]}"
        cases.append(Case(f"--model-kwarg {kwarg} (15)", [*train, *TINY_MODEL, "--model-kwarg", kwarg, "--out", str(out)],
                          2, ("model 'vit_tiny_patch16_224'", says), absent=(out / "checkpoint.pt",)))

    thresholds = json.loads((run / "thresholds.json").read_text())
    thresholds["thresholds"][-1] = float("nan")
    nan = _write(root / "nan" / "t.json", json.dumps(thresholds))
    text_checkpoint = _write(root / "text" / "c.pt", "epoch 3\n")
    folder_checkpoint = root / "folder" / "c.pt"
    folder_checkpoint.mkdir(parents=True)
    odd = root / "odd-names"
    odd.mkdir()
    for name in ("plain.png", os.fsdecode(b"caf\xe9.png")):
        shutil.copy(next((own / "images").iterdir()), odd / name)
    cases += [
        Case("a NaN threshold (17)", [*tool, "reference", "eval", "--checkpoint", checkpoint, "--thresholds", str(nan)],
             2, (str(nan), "is nan: expected a number in [0, 1]"), keep=(nan,)),
        Case("a text file as --checkpoint (17, 18)", [*tool, "reference", "eval", "--checkpoint", str(text_checkpoint)],
             2, (f"{text_checkpoint}: not a PyTorch checkpoint",)),
        Case("a folder as --checkpoint (17)", [*tool, "reference", "eval", "--checkpoint", str(folder_checkpoint)],
             2, (f"{folder_checkpoint}: a folder without a checkpoint.pt",)),
        Case("predict on a file name that is not UTF-8 (17)", [*tool, "reference", "predict", "--checkpoint", checkpoint,
                                                               str(odd)],
             0, (f"{odd}/caf\\xe9.png,", f"{odd}/plain.png,"), one_line=False, keep=(odd,)),
    ]

    cjk = root / "cjk"
    names = ["猫", "犬", "鳥"]
    images = sorted((own / "images").iterdir())
    for i, image in enumerate(images):
        _write(cjk / "images" / f"{i}.png", image.read_bytes())
    _write(cjk / "labels.csv", "file,labels\n" + "".join(
        f"{i}.png," + " ".join(n for j, n in enumerate(names) if (i >> j) & 1 or j == i % 3) + "\n"
        for i in range(len(images))))
    cases.append(Case("class names no font has glyphs for, without -v (18)",
                      [*train, *TINY_MODEL, "--batch-size", "4", "--max-steps", "1", "--data", str(cjk), "--out",
                       str(root / "cjk-run")],
                      0, ("run folder:",), one_line=False, own_notes=("warning: ",), keep=(cjk,)))

    # Loaded as training would load them: the darkest pixel 0, the brightest 255, mid-grey mid-grey.
    probe = ("import sys, numpy as np\nfrom migrate_ml_reference.images import load_image\n"
             "p = np.asarray(load_image(sys.argv[1]))[..., 0]\nprint(p.min(), p.max(), p.reshape(-1)[128])\n")
    from PIL import Image
    import numpy as np

    for dtype, scale, mode in (("float32", 1.0, "F"), ("int32", 1.0, "I")):
        tiff = root / "tiff" / f"{mode}.tif"
        tiff.parent.mkdir(exist_ok=True)
        Image.fromarray((np.arange(256).reshape(16, 16) * scale).astype(dtype)).save(tiff)
        cases.append(Case(f"an {mode}-mode TIFF of 8-bit values (19)", [sys.executable, "-c", probe, str(tiff)],
                          0, ("0 255 128",), one_line=False))
    return cases


def verify_cases(root: Path) -> list[Case]:
    """Items 6, 7 and 8: verify on input too deep to parse, killed mid-run, out of memory."""
    tool = migrate_ml_command()
    deep = _write(root / "verify" / "deep.py", f"x = {DEEP}\n")
    recursive = _write(root / "verify" / "rec.py", "x = " + " + ".join(["1"] * 3000) + "\n")
    notebook = _write(root / "verify" / "deep.ipynb", "[" * 100_000 + "]" * 100_000)
    good = _write(root / "verify" / "good.py", GOOD)
    cases = [
        Case(f"verify {path.name} good.py (6)", [*tool, "verify", "--static-only", str(path), str(good)],
             2, (f"{path.name} static: parse", reason, "good.py static: re-scan"), one_line=False, keep=(path, good))
        for path, reason in ((deep, "the parser crashed on this file"), (recursive, "too deeply nested to process"),
                             (notebook, "the parser crashed on this file"))
    ]
    leaves_processes = [*tool, "verify", str(CONTAINMENT / "processes" / "leaves_processes.py"), "--timeout", "60",
                        "--epochs", "1"]
    # Its Popen sleep, forked loop and setsid daemon must not outlive even a run that passes.
    cases.append(Case("verify passing code that leaves a daemon behind (7)", leaves_processes, 0,
                      ("all checks passed",), one_line=False, limit=150))
    for stop, code, says in ((signal.SIGKILL, -signal.SIGKILL, ()), (signal.SIGHUP, 130, ("interrupted",))):
        cases.append(Case(f"verify killed by {stop.name} mid-run (7)", leaves_processes, code, says, one_line=False,
                          stop=stop, limit=150, env={"MIGRATE_ML_TEST_HOLD": "1"}))
    cases.append(Case("verify --memory 2G on code asking for 3 GB (8)",
                      [*tool, "verify", str(CONTAINMENT / "memory" / "hog.py"), "--epochs", "1", "--memory", "2G"],
                      1, ("MemoryError: out of the memory verify allows (--memory)",), one_line=False, limit=120))
    return cases


def walk_cases(root: Path) -> list[Case]:
    """Items 12 and 15: the file discovery rewrite, review and verify share, on symbolic-link loops
    and folders its user cannot read."""
    tool = migrate_ml_command()
    links = root / "links"
    _write(links / "victim.py", CROSS_ENTROPY)
    (links / "loop.py").symlink_to("loop.py")
    loop = "cannot read: Too many levels of symbolic links"
    cases = [
        Case(f"{' '.join(command)} on a symlink loop (15)", [*tool, *command, "loop.py"], 2, (says,),
             one_line=False, keep=(links,), cwd=links)
        for command, says in ((("rewrite",), f"loop.py:1:1: error: {loop}"), (("review",), f"loop.py:1:1: error: {loop}"),
                              (("verify", "--static-only"), f"FAIL loop.py:1 read: {loop}"))
    ]
    cases.append(Case("rewrite --stdin-filename on a symlink loop (15)",
                      ["sh", "-c", f"{' '.join(tool)} rewrite --stdin-filename loop.py < victim.py"],
                      0, ("BCEWithLogitsLoss",), one_line=False, keep=(links,), cwd=links))

    unreadable = _unreadable_folder(root / "unreadable")
    if unreadable is not None:
        project, prefix = unreadable
        says = "secret: error: cannot read folder: permission denied; no file in it was checked"
        cases += [
            Case("rewrite --check on an unreadable subfolder (12)", [*prefix, *tool, "rewrite", "--check", "proj"],
                 2, (f"proj/{says}",), one_line=False, keep=(project,), cwd=project.parent),
            Case("verify on an unreadable subfolder (12)", [*prefix, *tool, "verify", "--static-only", "proj"],
                 2, ("proj/secret:1 read: cannot read folder: permission denied",), one_line=False, keep=(project,),
                 cwd=project.parent),
        ]
    return cases


def _unreadable_folder(root: Path) -> tuple[Path, list[str]] | None:
    """A project with a subfolder its user cannot read, and the command prefix that runs as that
    user: root reads every folder, so as root the cases run as nobody (``setpriv``); None without it."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return None
        prefix = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    project = root / "proj"
    _write(project / "secret" / "train.py", CROSS_ENTROPY)
    _write(project / "ok.py", "x = 1\n")
    (project / "secret").chmod(0)
    return project, prefix


def release(root: Path) -> None:
    """Lets the scratch folder be removed: the unreadable folder is made readable again."""
    secret = root / "unreadable" / "proj" / "secret"
    if secret.exists():
        secret.chmod(0o755)


def runtime_sweep(scratch: Path, jobs: int) -> dict[str, list[Outcome]]:
    """{section: outcomes}: the reference runtime's cases and verify's, run ``jobs`` at a time."""
    root = scratch / "runtime"
    root.mkdir()
    scratch.chmod(0o755)  # a private temporary folder: the unreadable-folder cases run as another user below it
    try:
        own, run = prepare(root)
        sections = {"reference": reference_cases(root, own, run), "verify": verify_cases(root),
                    "walk": walk_cases(root)}
        numbered = [(section, case) for section, cases in sections.items() for case in cases]
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            outcomes = list(pool.map(lambda item: run_case(item[1][1], scratch / "tmp" / str(item[0])),
                                     enumerate(numbered)))
    finally:
        release(root)
    by_section: dict[str, list[Outcome]] = {section: [] for section in sections}
    for (section, _), outcome in zip(numbered, outcomes):
        by_section[section].append(outcome)
    return by_section


def as_json(outcome: Outcome) -> dict:
    return {"case": outcome.case.name, "held": outcome.held, "seconds": round(outcome.seconds, 1),
            "lost_bytes": outcome.lost_bytes, "tracebacks": outcome.tracebacks, "hung": outcome.hung,
            "problems": outcome.problems}
