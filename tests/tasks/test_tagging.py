"""The BiLSTM tagger end to end on a CoNLL folder the test writes: training, seqeval scores, raw-text export."""

import json

import numpy as np

from tests.helpers import assert_lean_export, entities_found, served_in_fresh_process
from tfnlp import run as run_lib
from tfnlp.config import apply_overrides
from tfnlp.data.conll import joined_sentence
from tfnlp.data.records import Splits
from tfnlp.experiments import get
from tfnlp.tasks.tagging import TaggingTask, tag_vocabulary


def test_bilstm_tagger_learns_and_its_export_returns_entity_offsets(conll_tagger_run):
    workdir, version = conll_tagger_run.workdir, conll_tagger_run.export
    metrics = json.loads((workdir / run_lib.METRICS_FILE).read_text())
    assert metrics["test"]["model"]["entity_f1"] >= 0.9
    assert [row["type"] for row in metrics["per_type"]] == ["Disease"]
    assert (workdir / "report" / "per_type.csv").exists()
    history = run_lib.read_history(workdir / run_lib.HISTORY_FILE)
    assert len(history["val_entity_f1"]) == 12 and max(history["val_entity_f1"]) >= 0.9  # selected on it
    assert np.allclose(history["val_entity_f1_Disease"], history["val_entity_f1"])  # one type: per-type F1 = overall
    # The training sentences never end on a disease: a CRF learns that, so the third text goes on after it.
    texts = ["The patient has severe Crohn disease today.", "", "asthma was treated"]
    out = served_in_fresh_process(version, texts)
    found = entities_found(texts, out)
    assert ("Crohn disease", "Disease", "Crohn disease") in found and ("asthma", "Disease", "asthma") in found
    assert all(sliced == entity for sliced, _, entity in found)
    assert out["tokens"][0][:3] == ["The", "patient", "has"] and out["tags"][1] == [""] * len(out["tags"][1])
    assert_lean_export(version, metrics)
    # Each entity has a calibrated confidence (the CRF's span marginal), 0 for padding; a text gets a review flag.
    calibration = metrics["calibration"]["entities"]
    assert calibration["texts"] > 0 and 0.0 <= calibration["ece_after"] <= 1.0
    for starts, confidences in zip(out["entity_start"], out["entity_confidence"], strict=True):
        assert all((0.0 < c <= 1.0) if start >= 0 else c == 0.0 for start, c in zip(starts, confidences, strict=True))
    assert len(out["needs_review"]) == 3 and not out["needs_review"][1]  # an empty text has nothing to doubt


def test_weighted_loss_gives_per_token_weights_and_padding_weighs_nothing():
    experiment = apply_overrides(get("ner_bilstm", tiny=True), ["train.loss=weighted"])
    sentences = [joined_sentence(["a", "b", "c"], ["B-X", "O", "O"]), joined_sentence(["d"], ["O"])]
    task = TaggingTask(experiment, Splits(sentences, sentences, sentences))
    _, tags, weights = next(iter(task.dataset(sentences, training=False)))
    assert tags.numpy().tolist() == [[1, 0, 0], [0, 0, 0]]
    np.testing.assert_allclose(weights.numpy(), [[4 / 2, 4 / 6, 4 / 6], [4 / 6, 0, 0]], rtol=1e-6)
    assert tag_vocabulary(sentences).tokens == ("O", "B-X", "I-X")


def test_a_source_of_the_wrong_kind_is_a_user_error():
    import pytest

    from tfnlp.data.records import Record
    from tfnlp.errors import UserError
    from tfnlp.tasks.classification import ClassificationTask

    records = [Record("a text", "label")]
    with pytest.raises(UserError, match="not tagged tokens; a tagger needs conll:PATH"):
        TaggingTask(get("ner_bilstm", tiny=True), Splits(records, records, records))
    sentences = [joined_sentence(["a"], ["O"])]
    with pytest.raises(UserError, match="gives tagged tokens"):
        ClassificationTask(get("icd10_chapter_lstm", tiny=True), Splits(sentences, sentences, sentences))


def test_pretrained_vectors_start_the_bilstm_embedding(tmp_path):
    from tfnlp.data.vectors import pretrained_embeddings
    from tfnlp.models.taggers import bilstm_tagger

    vector_file = tmp_path / "vectors.txt"  # GloVe text form, most frequent word first
    vector_file.write_text("the 1 0 0\nasthma 0 1 0\ncrohn 0 0 1\nrare 1 1 1\n")
    vocabulary, matrix, coverage = pretrained_embeddings(str(vector_file), ["the", "patient", "asthma"],
                                                         vector_words=3)
    assert (coverage["training_words_found"], coverage["training_words_missing"]) == (2, 1)
    assert vocabulary == ["the", "patient", "asthma", "crohn"]  # test words with a vector are kept
    assert matrix.shape == (2 + 4, 3) and not matrix[:2].any()
    assert matrix[2].tolist() == [1, 0, 0] and matrix[4].tolist() == [0, 1, 0] and matrix[5].tolist() == [0, 0, 1]
    assert matrix[3].any()  # "patient" has no vector: a small random one
    experiment = apply_overrides(get("ner_bilstm", tiny=True), [])
    model = bilstm_tagger(experiment.model, vocabulary, ["O", "B-X", "I-X"], matrix)
    assert np.array_equal(model.get_layer("embedding").get_weights()[0], matrix)


def test_the_search_space_fits_what_trains():
    """A fine-tuned backbone searches small rates; a frozen one leaves a head to train at a BiLSTM's rates."""
    from tfnlp.tasks.base import TRANSFORMER_SPACE

    frozen = TaggingTask.search_space(get("ner_bert"))
    assert frozen["train.learning_rate"]["high"] == 1e-2 and frozen["model.lstm_units"] == [64, 128, 256]
    fine_tuned = apply_overrides(get("ner_bert"), ["model.freeze_backbone=false"])
    assert TaggingTask.search_space(fine_tuned) is TRANSFORMER_SPACE
    no_bilstm = apply_overrides(get("ner_bert"), ["model.lstm_units=0"])
    assert "model.lstm_units" not in TaggingTask.search_space(no_bilstm)
    assert "model.units" in TaggingTask.search_space(get("ner_bilstm"))
