"""Shared fixtures: tiny runs trained and exported once per test session, whatever the number of xdist workers
(tests/session_builds.py), and built ahead of the workers' need when the whole suite runs on several."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests import session_builds

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

AHEAD = pytest.StashKey[tuple]()  # (the shared folder, the build processes) in the controlling process
SESSION_RUNS = {"tiny_run", "tiny_classifier_run", "conll_tagger_run"}


def runs_on_several_workers(config) -> bool:
    workers = config.getoption("numprocesses", default=None)
    return bool(workers) and workers > 1


def runs_the_default_suite(config) -> bool:
    """Building every run ahead only pays when the session will need them all."""
    whole = all(Path(arg).resolve() in (config.rootpath, config.rootpath / "tests") for arg in config.args)
    return whole and not config.option.keyword and config.option.markexpr in ("", "not slow", "not slow and not e2e")


def pytest_configure(config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER") or not runs_on_several_workers(config):
        return
    # The workers (and the processes they start) already share the cores: TensorFlow's per-process pools, each sized
    # to every core, oversubscribe them and spin. One intra-op thread each: -n 2 took 560 s instead of 601 s here.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    if not runs_the_default_suite(config):
        return
    root = Path(tempfile.mkdtemp(prefix="tfnlp-tests-"))
    os.environ[session_builds.SHARED_FOLDER_ENV] = str(root)  # the workers, started after this, inherit it
    config.stash[AHEAD] = (root, session_builds.start_ahead(root))


def pytest_collection_modifyitems(config, items) -> None:
    """With the runs building ahead, the tests that need none go first (each worker collects the same order): the
    workers keep the cores busy meanwhile instead of waiting on a build's lock."""
    if os.environ.get(session_builds.SHARED_FOLDER_ENV):
        items.sort(key=lambda item: bool(SESSION_RUNS.intersection(item.fixturenames)))


def pytest_unconfigure(config) -> None:
    root, processes = config.stash.get(AHEAD, (None, []))
    for process in processes:
        process.kill()
        process.wait()
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


def built_once(tmp_path_factory, name: str) -> Path:
    """The folder of the session's run `name`: in the folder shared with the builds started ahead, else in the
    session's temporary folder (which xdist workers share through its parent)."""
    shared = os.environ.get(session_builds.SHARED_FOLDER_ENV)
    base = tmp_path_factory.getbasetemp()
    root = Path(shared) if shared else base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return session_builds.build_locked(root, name)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict:
    """The tiny seq2seq trained for one epoch through the CLI entry point; its paths and metrics."""
    from tfnlp import run as run_lib

    root = built_once(tmp_path_factory, "tiny_run")
    workdir, export_base = root / "work", root / "savedmodels"
    version = export_base / "icd10_seq2seq" / "1"
    return {"workdir": workdir, "export_base": export_base, "version": version,
            "metrics": json.loads((workdir / run_lib.METRICS_FILE).read_text())}


@pytest.fixture(scope="session")
def tiny_classifier_run(tmp_path_factory):
    """The tiny chapter classifier (icd10_chapter_lstm), trained once per session, baselines included; its Run."""
    import tfnlp

    return tfnlp.Run.load(built_once(tmp_path_factory, "tiny_classifier") / "work")


@pytest.fixture(scope="session")
def conll_tagger_run(tmp_path_factory):
    """The BiLSTM-CNN-CRF tagger trained on a small CoNLL corpus of disease mentions it learns well (12 epochs), once
    per session; its Run."""
    import tfnlp

    return tfnlp.Run.load(built_once(tmp_path_factory, "conll_tagger") / "work")
