"""The tiny runs that many tests read, each built once per test session, and built ahead when the whole suite runs.

Each build is a tiny training (about a minute on one core for the coder). Under xdist the first worker to need a run
builds it while the other workers that need it wait on a file lock. When the whole suite runs on several workers,
`start_ahead` builds every run in processes of their own as the session starts, so that no worker sits idle waiting
for one: the workers run the tests that need no run meanwhile.

    python -m tests.session_builds NAME FOLDER   (started by tests/conftest.py; holds NAME's lock it inherited)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

SHARED_FOLDER_ENV = "TFNLP_TEST_SHARED_BUILDS"


def build_tiny_run(root: Path) -> None:
    """The tiny seq2seq trained for one epoch through the CLI entry point."""
    from tfnlp import train

    argv = ["icd10_seq2seq", "--tiny", "--workdir", str(root / "work"), "--export_base", str(root / "savedmodels")]
    assert train.main(argv) == 0


def build_tiny_classifier(root: Path) -> None:
    """The tiny chapter classifier (icd10_chapter_lstm), baselines included."""
    import tfnlp

    tfnlp.train("icd10_chapter_lstm", tiny=True, workdir=root / "work", export_base=root / "export")


def build_conll_tagger(root: Path) -> None:
    """The BiLSTM-CNN-CRF tagger trained on a small CoNLL corpus of disease mentions it learns well (12 epochs)."""
    import tfnlp
    from tests.helpers import write_conll

    tfnlp.train("ner_bilstm", tiny=True, data=f"conll:{write_conll(root)}", workdir=root / "work",
                export_base=root / "export",
                overrides=["train.epochs=12", "train.patience=12", "train.learning_rate=0.01"])


BUILDS: dict[str, Callable[[Path], None]] = {
    "tiny_run": build_tiny_run, "tiny_classifier": build_tiny_classifier, "conll_tagger": build_conll_tagger}


def lock_path(root: Path, name: str) -> Path:
    return root / f"{name}.lock"


def done_marker(root: Path, name: str) -> Path:
    return root / f"{name}.done"


def build(root: Path, name: str) -> None:
    """Build `root/name` afresh (whatever a failed build left is removed first), then mark it done."""
    folder = root / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    BUILDS[name](folder)
    done_marker(root, name).touch()


def build_locked(root: Path, name: str) -> Path:
    """`root/name` once built: built here unless an earlier holder of its lock built it."""
    with open(lock_path(root, name), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done_marker(root, name).exists():
            build(root, name)
    return root / name


def start_ahead(root: Path) -> list[subprocess.Popen]:
    """Start every build in a process of its own, each holding its lock from the start (taken here and inherited), so
    that a worker asking for a run waits for that build instead of starting a second one. A build that fails leaves
    no `.done`: the first worker to ask builds it again, and its test shows the failure."""
    processes = []
    for name in BUILDS:
        with open(lock_path(root, name), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            log = open(root / f"{name}.log", "w")  # noqa: SIM115 - the child writes to it
            with log:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "tests.session_builds", name, str(root), str(lock.fileno())],
                    pass_fds=[lock.fileno()], stdout=log, stderr=subprocess.STDOUT,
                    cwd=Path(__file__).resolve().parents[1],
                    env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}))
        # This process's copy of the lock closes here; the child's copy holds the lock until the child ends.
    return processes


def main(argv: list[str]) -> int:
    name, root, held_lock = argv[0], Path(argv[1]), int(argv[2])
    build(root, name)
    os.close(held_lock)  # the waiting workers go on
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
