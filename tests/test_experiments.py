"""Every registered experiment's tiny variant: trained, exported lean, and answering a raw string in a fresh
process."""

import pytest

from tests.helpers import assert_lean_export, run_tiny, served_in_fresh_process
from tfnlp import experiments

# Tiny variants whose data or weights are assets the rest of the default suite does not fetch (tens of MB each):
# they run with `-m slow`.
HEAVY_ASSETS = {"sentiment_bilstm": "movie-reviews, glove-6b-50d", "sentiment_glove_logreg": "glove-6b-50d",
                "sentiment_glove_mlp": "glove-6b-50d", "sentiment_glove_bilstm": "glove-6b-50d",
                "sentiment_bert": "minilm", "ner_bert": "minilm"}  # tiny ner_bert fine-tunes, without GloVe
# Factories the default suite already trains, exports lean and serves end to end in tests/tasks: here with -m slow.
COVERED_ELSEWHERE = {"icd10_chapter_lstm", "icd10_code_bilstm_conv", "icd10_glove_logreg", "icd10_glove_mlp",
                     "icd10_glove_bilstm", "ner_bilstm", "ner_gpt"}
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
    examples = metrics["examples"]
    texts = [example["text"] for example in examples] + ["Asthme aigu chez un patient", ""]
    out = served_in_fresh_process(version, texts)
    assert OUTPUTS[experiment.task] <= set(out) and all(len(out[output]) == len(texts)
                                                        for output in OUTPUTS[experiment.task])
    # The export answers what the task itself predicted for the same test texts during the run.
    shown = {name: values[:len(examples)] for name, values in out.items() if not name.startswith("__")}
    served = served_examples(experiment.task, texts[:len(examples)], shown)
    compared = [(example["predicted"], answer) for example, answer in zip(examples, served, strict=True)
                if answer is not None]
    assert compared and all(predicted == answer for predicted, answer in compared)


def served_examples(task: str, texts: list[str], out: dict) -> list:
    """The examples' `predicted` as the export gives them: the code, the label, or `type: words; ...` of the entities
    (None where the served tokenizer cuts the text otherwise than at its spaces, which the corpus's tokens follow)."""
    if task == "seq2seq":
        return out["code"]
    if task == "classification":
        return out["label"]
    answers = []
    for text, tokens, kinds, entities in zip(texts, out["tokens"], out["entity_type"], out["entity_text"],
                                             strict=True):
        if [token for token in tokens if token] != text.split():
            answers.append(None)
            continue
        shown = "; ".join(f"{kind}: {' '.join(entity.split())}" for kind, entity in zip(kinds, entities, strict=True)
                          if entity)
        answers.append(shown or "-")
    return answers
