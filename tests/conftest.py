"""Shared fixtures: one tiny icd10_seq2seq run, trained and exported once per session."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict:
    """Train the tiny seq2seq for one epoch through the CLI entry point; return its paths and metrics."""
    from tfnlp import run as run_lib
    from tfnlp import train

    root = tmp_path_factory.mktemp("tiny_run")
    workdir, export_base = root / "work", root / "savedmodels"
    assert train.main(["icd10_seq2seq", "--tiny", "--workdir", str(workdir), "--export_base", str(export_base)]) == 0
    version = export_base / "icd10_seq2seq" / "1"
    return {"workdir": workdir, "export_base": export_base, "version": version,
            "metrics": json.loads((workdir / run_lib.METRICS_FILE).read_text())}


@pytest.fixture(scope="session")
def tiny_classifier_run(tmp_path_factory):
    """The tiny chapter classifier (icd10_chapter_lstm), trained once per session, baselines included; its Run."""
    import tfnlp

    root = tmp_path_factory.mktemp("tiny_classifier")
    return tfnlp.train("icd10_chapter_lstm", tiny=True, workdir=root / "work", export_base=root / "export")


@pytest.fixture(scope="session")
def conll_tagger_run(tmp_path_factory):
    """The BiLSTM-CNN-CRF tagger trained on a small CoNLL corpus of disease mentions it learns well (12 epochs), once
    per session; its Run."""
    import tfnlp
    from tests.helpers import write_conll

    root = tmp_path_factory.mktemp("conll_tagger")
    data = write_conll(root)
    return tfnlp.train("ner_bilstm", tiny=True, data=f"conll:{data}", workdir=root / "work",
                       export_base=root / "export",
                       overrides=["train.epochs=12", "train.patience=12", "train.learning_rate=0.01"])
