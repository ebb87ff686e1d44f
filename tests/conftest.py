"""Shared fixtures: tiny runs trained and exported once per test session, whatever the number of xdist workers."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """`root/name`, where `build(folder)` ran once for the whole session: the first xdist worker to ask builds it under
    a file lock, the others wait and read it (each worker would otherwise train the same model again)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict:
    """The tiny seq2seq trained for one epoch through the CLI entry point; its paths and metrics."""
    from tfnlp import run as run_lib
    from tfnlp import train

    def build(root: Path) -> None:
        argv = ["icd10_seq2seq", "--tiny", "--workdir", str(root / "work"), "--export_base", str(root / "savedmodels")]
        assert train.main(argv) == 0

    root = built_once(tmp_path_factory, "tiny_run", build)
    workdir, export_base = root / "work", root / "savedmodels"
    version = export_base / "icd10_seq2seq" / "1"
    return {"workdir": workdir, "export_base": export_base, "version": version,
            "metrics": json.loads((workdir / run_lib.METRICS_FILE).read_text())}


@pytest.fixture(scope="session")
def tiny_classifier_run(tmp_path_factory):
    """The tiny chapter classifier (icd10_chapter_lstm), trained once per session, baselines included; its Run."""
    import tfnlp

    def build(root: Path) -> None:
        tfnlp.train("icd10_chapter_lstm", tiny=True, workdir=root / "work", export_base=root / "export")

    return tfnlp.Run.load(built_once(tmp_path_factory, "tiny_classifier", build) / "work")


@pytest.fixture(scope="session")
def conll_tagger_run(tmp_path_factory):
    """The BiLSTM-CNN-CRF tagger trained on a small CoNLL corpus of disease mentions it learns well (12 epochs), once
    per session; its Run."""
    import tfnlp
    from tests.helpers import write_conll

    def build(root: Path) -> None:
        tfnlp.train("ner_bilstm", tiny=True, data=f"conll:{write_conll(root)}", workdir=root / "work",
                    export_base=root / "export",
                    overrides=["train.epochs=12", "train.patience=12", "train.learning_rate=0.01"])

    return tfnlp.Run.load(built_once(tmp_path_factory, "conll_tagger", build) / "work")
