"""The classification task end to end on tiny configs: real training, real SavedModels, real report files."""

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import assert_lean_export, assert_picture, run_tiny, served_in_fresh_process, tiny_bert_preset
from tfnlp import train
from tfnlp.answers import LabelAnswer, render
from tfnlp.config import DataConfig
from tfnlp.data.records import Record, Splits
from tfnlp.data.vocabulary import Vocabulary
from tfnlp.experiments import get
from tfnlp.tasks.classification import (
    UNKNOWN_LABEL,
    ClassificationTask,
    ClassifierServing,
    _fitted_layers,
    cut_label,
    label_descriptions,
)

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "movie", "plot", "the", "a"]


def vectors_file(folder):
    """A GloVe-form text file (no header) with 8-d vectors: positive words near +1, negative near -1."""
    rng = np.random.default_rng(0)
    lines = []
    for word in WORDS:
        sign = 1.0 if word in ("good", "great", "fine") else -1.0 if word in ("bad", "awful", "poor") else 0.0
        vector = sign + 0.1 * rng.normal(size=8)
        lines.append(word + " " + " ".join(f"{value:.4f}" for value in vector))
    path = folder / "vectors.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def polarity_csv(folder, count=240):
    rng = np.random.default_rng(1)
    rows = ["text,label"]
    for index in range(count):
        positive = index % 2 == 0
        words = rng.choice(["good", "great", "fine"] if positive else ["bad", "awful", "poor"], size=2)
        rows.append(f"the movie {' '.join(words)} plot {index % 7},{'positive' if positive else 'negative'}")
    path = folder / "polarity.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_chapter_lstm_trains_reports_and_exports(tiny_classifier_run):
    workdir, version = tiny_classifier_run.workdir, tiny_classifier_run.export
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert set(metrics["test"]) == {"model", "baseline_tfidf_logreg"}
    from tfnlp.metrics import CLASSIFICATION_METRICS

    assert tuple(metrics["test"]["model"]) == CLASSIFICATION_METRICS
    report = workdir / "report"
    for name in ("confusion_matrix.png", "f1_vs_support.png", "class_distribution.png"):
        assert_picture(report / name)
    with open(report / "per_class.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(int(row["support"]) for row in rows) == metrics["sizes"]["test"]
    assert all(len(row["label"]) == 1 for row in rows)  # chapter letters
    texts = ["Choléra", "", "Asthme aigu grave chez l'enfant"]
    local = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(texts))
    served = served_in_fresh_process(version, texts)
    assert served["label"] == [label.decode() for label in local["label"].numpy()]
    np.testing.assert_allclose(np.sum(served["probabilities"], axis=1), 1.0, rtol=1e-5)
    # The score is the calibrated confidence of the label, the top of the ranked scores; the probabilities the model's.
    assert served["label"] == [labels[0] for labels in served["top_labels"]]
    assert served["score"] == [scores[0] for scores in served["top_scores"]]
    assert all(0.0 <= s <= 1.0 for s in served["score"]) and len(served["needs_review"]) == 3
    # The empty text is not answered: no label, scores 0, and a person should look.
    assert served["label"][1] == "" and set(served["top_labels"][1]) == {""} and served["needs_review"][1]
    assert served["score"][1] == 0.0 and set(served["top_scores"][1]) == {0.0}
    assert all(served["label"][index] and served["score"][index] > 0 for index in (0, 2))
    assert "<UNK>" not in served["label"] and all("<UNK>" not in row for row in served["top_labels"])  # never answered
    assert_lean_export(version, metrics)


# The logistic regression (about 24 s) and the BiLSTM (about 30 s) over static vectors with -m slow: the vector
# lookup and export path are the MLP's too.
@pytest.mark.parametrize("experiment", [pytest.param("sentiment_glove_logreg", marks=pytest.mark.slow),
                                        "sentiment_glove_mlp",
                                        pytest.param("sentiment_glove_bilstm", marks=pytest.mark.slow)])
def test_vector_classifiers_learn_polarity_and_export(experiment, tmp_path):
    vectors, data = vectors_file(tmp_path), polarity_csv(tmp_path)
    # scikit-learn fits the mean-vector models: they take no epochs or learning rate.
    keras_fit = ["train.epochs=8", "train.learning_rate=0.01", "train.patience=8"] if "bilstm" in experiment else []
    metrics = run_tiny(experiment, tmp_path, "--data", f"csv:{data}", "--set", f"model.vectors={vectors}",
                       "data.text_column=text", "data.label_column=label", "train.baselines=false", *keras_fit)
    assert metrics["test"]["model"]["accuracy"] >= 0.9  # the vectors separate the two classes
    coverage = metrics["vector_coverage"]  # every word but "a" occurs in training; the digits 0-6 have no vector
    assert (coverage["training_words_found"], coverage["training_words_missing"]) == (9, 7)
    version = tmp_path / "export" / experiment / "1"
    assert served_in_fresh_process(version, ["a great movie", "an awful plot", ""])["label"][:2] == ["positive",
                                                                                                   "negative"]


def test_fitted_layers_reproduce_scikit_learn_probabilities():
    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from tfnlp.models.classifiers import dense_head

    rng = np.random.default_rng(0)
    features = (3 + 2 * rng.normal(size=(120, 6))).astype("float32")
    scaler = StandardScaler().fit(features)
    for labels in (rng.integers(1, 3, size=120), rng.integers(1, 5, size=120)):  # binary and 4 classes; 0 unused
        for estimator in (LogisticRegression(max_iter=500), MLPClassifier((8,), max_iter=500, random_state=0)):
            estimator.fit(scaler.transform(features), labels)
            inputs = keras.Input(shape=(6,))
            head = dense_head(keras.Model(inputs, inputs), _fitted_layers(estimator, 5, scaler), "head")
            probabilities = head(features).numpy()
            np.testing.assert_allclose(probabilities[:, estimator.classes_],
                                       estimator.predict_proba(scaler.transform(features)), atol=1e-5)
            assert probabilities[:, 0].max() < 1e-6


def test_labels_unseen_in_training_map_to_unk_and_are_counted(tmp_path):
    experiment = get("icd10_code_bilstm_conv", tiny=True)
    train_records = [Record(f"texte {i}", code) for i, code in enumerate(["A00.1", "A01", "B20"] * 4)]
    test_records = [Record("autre", "C99.9"), Record("texte", "A00")]
    task = ClassificationTask(experiment, Splits(train_records, test_records, test_records))
    assert task.labels.tokens == (UNKNOWN_LABEL, "A00", "A01", "B20")
    assert task.truth(task.splits.test) == [UNKNOWN_LABEL, "A00"]
    assert Vocabulary.sorted(["y", "x"], (UNKNOWN_LABEL,)).ids(["y", "z"]).tolist() == [2, 0]
    assert cut_label("S06.21", 4) == "S062" and cut_label("positive", 0) == "positive"


def test_icd10_categories_answer_with_their_label_in_the_code_set():
    labels = (UNKNOWN_LABEL, "A00", "I50", "S72")
    code_set = {"A00": "Choléra", "I50": "Insuffisance cardiaque", "I500": "Insuffisance cardiaque congestive"}
    descriptions = label_descriptions(labels, code_set)
    assert descriptions == ["", "Choléra", "Insuffisance cardiaque", ""]  # S72 has none in this code set

    def model(text, training=False):  # I50, then S72, then A00, for every text
        return tf.tile(tf.constant([[0.0, 0.1, 0.6, 0.3]]), [tf.shape(text)[0], 1])

    serving = ClassifierServing(model, labels, top_k=2, descriptions=descriptions)  # kept: serve holds it weakly
    served = serving.serve(tf.constant(["insuffisance cardiaque", ""]))
    rows = [{name: value[index] for name, value in {k: v.numpy().tolist() for k, v in served.items()}.items()}
            for index in range(2)]
    assert rows[0]["top_labels"] == [b"I50", b"S72"] and rows[0]["top_descriptions"] == [b"Insuffisance cardiaque", b""]
    assert rows[0]["description"] == b"Insuffisance cardiaque"
    assert rows[1]["description"] == b"" and rows[1]["top_descriptions"] == [b"", b""]  # nothing to read, no answer
    answer = LabelAnswer.from_outputs("insuffisance cardiaque", rows[0])
    assert answer.description == "Insuffisance cardiaque" and answer.ranked[0].description == "Insuffisance cardiaque"
    assert "-> I50 Insuffisance cardiaque" in render(answer) and "S72" in render(answer)
    # A code-level classifier (data.label_length=4) shows its codes dotted, as the coder does; the object keeps them.
    code_level = LabelAnswer.from_outputs("x", {"label": "I500", "score": 0.8, "top_labels": ["I500", "I10"],
                                                "top_scores": [0.8, 0.1], "description": "Insuffisance cardiaque "
                                                "congestive", "top_descriptions": ["Insuffisance cardiaque congestive",
                                                                                   "Hypertension essentielle"]})
    assert code_level.label == "I500" and "-> I50.0 Insuffisance cardiaque congestive" in render(code_level)
    assert "     1  I50.0   0.80  Insuffisance" in render(code_level)
    # Chapter letters and sentiment have no descriptions: the export keeps its outputs as they were.
    assert label_descriptions((UNKNOWN_LABEL, "A", "I"), code_set) is None
    plain_serving = ClassifierServing(model, labels, top_k=2)
    plain = plain_serving.serve(tf.constant(["x"]))
    assert "description" not in plain and "top_descriptions" not in plain


def test_weighted_loss_gives_rare_classes_larger_sample_weights():
    experiment = get("icd10_chapter_lstm", tiny=True)
    from tfnlp.config import apply_overrides

    experiment = apply_overrides(experiment, ["train.loss=weighted"])
    records = [Record("a", "A")] * 9 + [Record("b", "B")]
    task = ClassificationTask(experiment, Splits(records, records[:2], records[:2]))
    _, labels, weights = next(iter(task.dataset(records, training=True).unbatch().batch(10)))
    by_label = dict(zip(labels.numpy().tolist(), weights.numpy().tolist(), strict=False))
    np.testing.assert_allclose([by_label[1], by_label[2]], [10 / (2 * 9), 10 / (2 * 1)], rtol=1e-6)


@pytest.mark.parametrize("spec, message", [
    ("movie-reviews:form=books", "form='books'"),
    ("movie-reviews:lang=fr", "unknown option 'lang=fr'; options: form"),
    ("tweets:min_confidence=high", "min_confidence='high' is not a number"),
    ("aclimdb", "aclimdb needs the folder"),
    ("csv:", "a tabular source needs a path"),
    ("parquet:x.parquet", "unknown data source 'parquet'"),
])
def test_sentiment_and_tabular_sources_refuse_what_they_cannot_read(spec, message):
    from tfnlp.data import sources
    from tfnlp.errors import UserError

    with pytest.raises(UserError, match=message):
        sources.load(spec, DataConfig())


def test_an_aclimdb_folder_without_its_parts_is_a_user_error(tmp_path):
    from tfnlp.data import sources
    from tfnlp.errors import UserError

    (tmp_path / "train" / "pos").mkdir(parents=True)
    with pytest.raises(UserError) as error:
        sources.load(f"aclimdb:{tmp_path}", DataConfig())
    assert str(tmp_path) in str(error.value)


@pytest.mark.slow  # about 25 s (spaCy's French pipeline over the tiny corpus); data.preprocess=lemma is opt-in
def test_lemma_preprocessing_is_the_same_in_training_and_in_the_served_model(tmp_path):
    from tfnlp.data import sources
    from tfnlp.data import text as text_lib

    # What is compared is the words, not what the network learnt from them: one epoch, no TF-IDF fusion.
    run_tiny("icd10_chapter_lstm", tmp_path, "--set", "data.preprocess=lemma", "train.baselines=false",
             "train.epochs=1", "model.tfidf_fusion=off")
    experiment = train.configure(["icd10_chapter_lstm", "--tiny", "--set", "data.preprocess=lemma"])[0]
    loaded = sources.load(experiment.data.source, experiment.data)
    task = ClassificationTask(experiment, loaded.splits)
    texts = [record.text for record in task.splits.train[:40]] + ["Fractures multiples", ""]
    version = tmp_path / "export" / "icd10_chapter_lstm" / "1"
    tokens = served_in_fresh_process(version, texts, "tokens")["tokens"]
    served = [[word for word in row if word] for row in tokens]
    assert served == task.training_words(texts)
    plain = [line.decode().split() for line in text_lib.standardize(tf.constant(texts)).numpy()]
    assert served != plain  # some training words were lemmatised (e.g. plural nouns)
    assert task.training_words(["des"]) == [["de"]]


# With -m slow (about 40 s): the BERT backbone, word pieces and export path run in the default suite through
# tests/tasks/test_lora.py's tagger; this is the classifier head on top.
@pytest.mark.slow
def test_bert_classifier_trains_and_exports_a_raw_string_savedmodel(tmp_path):
    preset, data = tiny_bert_preset(tmp_path / "preset", [*WORDS, "an"]), polarity_csv(tmp_path)
    metrics = run_tiny("sentiment_bert", tmp_path, "--data", f"csv:{data}", "--set", f"model.preset={preset}",
                       "data.text_column=text", "data.label_column=label", "train.epochs=12", "train.patience=12",
                       "train.learning_rate=0.003", "train.baselines=false")
    assert metrics["test"]["model"]["accuracy"] >= 0.9
    version = tmp_path / "export" / "sentiment_bert" / "1"
    assert_lean_export(version, metrics)
    texts = ["a great movie", "an awful plot", ""]
    # tensorflow_text registers the word-piece tokenizer's ops.
    assert served_in_fresh_process(version, texts)["label"][:2] == ["positive", "negative"]


@pytest.mark.parametrize("overrides, message", [
    (["model.name=glove_bilstm"], "needs pretrained vectors"),
    (["model.name=mean_vectors_linear"], "needs pretrained vectors"),
    (["model.fine_tune_vectors=true"], "needs pretrained vectors to start from"),
    (["model.name=glove_bilstm", "model.vectors=glove-6b-50d", "model.fine_tune_vectors=true"],
     "glove_bilstm keeps its vectors frozen"),
])
def test_unusable_classifier_choices_are_user_errors(overrides, message):
    from tfnlp.config import apply_overrides
    from tfnlp.errors import UserError

    experiment = apply_overrides(get("icd10_chapter_lstm", tiny=True), overrides)
    records = [Record("texte", "A")]
    with pytest.raises(UserError, match=message):
        ClassificationTask(experiment, Splits(records, records, records))


def test_fine_tuned_vectors_give_every_training_word_a_row(tmp_path):
    from tfnlp.config import apply_overrides

    vector_file = tmp_path / "vectors.txt"  # GloVe text form
    vector_file.write_text("good 1 0 0\nmovie 0 1 0\nplot 0 0 1\n")
    records = [Record("good movie", "A"), Record("zorgly plot", "B")]

    def task(*overrides: str) -> ClassificationTask:
        experiment = apply_overrides(get("icd10_chapter_lstm", tiny=True), [f"model.vectors={vector_file}", *overrides])
        return ClassificationTask(experiment, Splits(records, records, records))

    # Frozen, a word without a vector reads as unknown; trained, it gets its own (small random) row to learn.
    assert "zorgly" not in task().vectorizer.get_vocabulary()
    tuned = task("model.fine_tune_vectors=true")
    vocabulary, matrix = tuned.vectorizer.get_vocabulary(), tuned.embedding_matrix()
    assert {"zorgly", "good", "movie", "plot"} <= set(vocabulary) and len(vocabulary) == len(matrix)
    assert matrix[vocabulary.index("zorgly")].any() and not matrix[:2].any()
    np.testing.assert_array_equal(matrix[vocabulary.index("plot")], [0, 0, 1])


def test_the_tfidf_fusion_is_chosen_on_validation_and_kept_in_the_export(tiny_classifier_run):
    from tfnlp.tasks.classification import FUSION_WEIGHTS

    fusion = tiny_classifier_run.reports["tfidf_fusion"]
    accuracy = fusion["validation_accuracy"]
    assert fusion["tfidf_weight"] in FUSION_WEIGHTS
    # Chosen on validation: never below either side alone (weights 0 and 1 are among the candidates).
    assert accuracy["fused"] >= max(accuracy["network"], accuracy["tfidf"])
    loaded = tf.saved_model.load(str(tiny_classifier_run.export))
    assert float(loaded.tfidf_weight.numpy()) == fusion["tfidf_weight"]
    card = (tiny_classifier_run.export / "assets.extra" / "model_card.md").read_text()
    assert f"at weight {fusion['tfidf_weight']:g} chosen on the validation split" in card


def test_the_fused_answers_are_the_networks_at_weight_0_and_scikit_learns_at_weight_1():
    from tfnlp.data import sources
    from tfnlp.tasks.classification import fused

    experiment = get("icd10_chapter_lstm", tiny=True)
    task = ClassificationTask(experiment, sources.load(experiment.data.source, experiment.data).splits)
    serving = task.serving(task.make_model())  # untrained: the TF-IDF side has to carry the answers
    task.calibrate(serving)
    accuracy = task.validation_choices()["tfidf_fusion"]["validation_accuracy"]
    assert accuracy["fused"] >= accuracy["tfidf"] > accuracy["network"]
    texts = tf.constant([record.text for record in task.splits.test[:60]])
    network, tfidf = serving.network_probabilities(texts), serving.tfidf_probabilities(texts)
    serving.tfidf_weight.assign(0.0)
    np.testing.assert_allclose(serving.serve(texts)["probabilities"].numpy(), network.numpy(), atol=1e-5)
    serving.tfidf_weight.assign(1.0)
    answered = [label.decode() for label in serving.serve(texts)["label"].numpy()]
    expected = task.tfidf_model.predict([text.decode() for text in texts.numpy()])
    assert np.mean([a == b for a, b in zip(answered, expected, strict=True)]) >= 0.95  # the smallest weights left out
    serving.tfidf_weight.assign(0.3)
    np.testing.assert_allclose(serving.serve(texts)["probabilities"].numpy(), fused(network, tfidf, 0.3).numpy(),
                               atol=1e-5)
