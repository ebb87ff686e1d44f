import numpy as np
import pytest
import tensorflow as tf

from tfnlp.baselines import LinearTextModel, tfidf_features
from tfnlp.data.records import Record
from tfnlp.models.tfidf import TfidfLinear

TRAIN = [Record("Choléra à Vibrio cholerae", "A000"), Record("Choléra, sans précision", "A009"),
         Record("Fièvre typhoïde", "A010"), Record("Fièvre paratyphoïde A", "A011"),
         Record("Asthme à prédominance allergique", "J450"), Record("Asthme, sans précision", "J459"),
         Record("Diabète sucré de type 2 avec coma", "E110"), Record("Diabète sucré insulino-dépendant", "E109"),
         Record("Hypertension essentielle (primitive)", "I10"), Record("Cardiopathie hypertensive", "I119")]
# Punctuation, case, repeated and short words, spaces of other kinds, non-Latin scripts, empty and blank texts.
QUERIES = ["Choléra", "FIÈVRE  typhoïde, fièvre typhoïde!", "a b c d", "diabète\u00a0sucré\tde type 2",
           "l'asthme d'effort", "急性心肌梗死 Ωμέγα", "", "   ", "hypertension " * 300, "x_y 2ème"]


def fitted() -> LinearTextModel:
    return LinearTextModel.categories_svm(TRAIN, seed=0)


def test_the_graph_reproduces_scikit_learns_decision_function_from_raw_strings():
    model = fitted()
    graph = TfidfLinear.from_sklearn(model.features, model.classes, *model.weights())
    expected = model.classifier.decision_function(model.features.transform(QUERIES))
    scores = graph.decision_function(tf.constant(QUERIES)).numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert [graph.classes[i] for i in scores.argmax(axis=1)] == model.predict(QUERIES)
    assert graph.decision_function(tf.constant([], tf.string)).shape == (0, len(model.classes))


def test_dropping_small_weights_keeps_the_large_ones_and_bounds_the_change():
    model = fitted()
    coef, intercept = model.weights()
    threshold = float(np.quantile(np.abs(coef[coef != 0]), 0.5))
    full = TfidfLinear.from_sklearn(model.features, model.classes, coef, intercept)
    pruned = TfidfLinear.from_sklearn(model.features, model.classes, coef, intercept, min_weight=threshold)
    assert pruned.weight_count == int((np.abs(coef) > threshold).sum()) < full.weight_count
    difference = np.abs(pruned.decision_function(tf.constant(QUERIES)).numpy()
                        - full.decision_function(tf.constant(QUERIES)).numpy())
    # Each TF-IDF block is L2-normalised: a text's dropped terms sum to at most threshold * sqrt(features) per block.
    assert difference.max() <= threshold * 2 * np.sqrt(full.features)
    assert difference.max() > 0


def test_a_cap_on_weights_keeps_the_largest():
    model = fitted()
    coef, intercept = model.weights()
    capped = TfidfLinear.from_sklearn(model.features, model.classes, coef, intercept, max_weights=100)
    assert capped.weight_count == 100
    kept = np.sort(np.abs(capped.weights()[2]))
    np.testing.assert_allclose(kept, np.sort(np.abs(coef[coef != 0]))[-100:], rtol=1e-6)


@pytest.mark.parametrize("targets", [["A00", "J45"], ["A00"]])
def test_two_classes_and_one_class_rank_as_the_classifier_does(targets):
    train = [Record(record.text, targets[i % len(targets)]) for i, record in enumerate(TRAIN)]
    model = LinearTextModel.categories_svm(train)
    graph = TfidfLinear.from_sklearn(model.features, model.classes, *model.weights())
    scores = graph.decision_function(tf.constant(QUERIES)).numpy()
    assert scores.shape == (len(QUERIES), len(targets))
    assert [graph.classes[i] for i in scores.argmax(axis=1)] == model.predict(QUERIES)


def test_unsupported_vectorizer_options_are_refused():
    model = fitted()
    model.features.transformer_list[0][1].set_params(sublinear_tf=False)
    with pytest.raises(ValueError, match="unsupported vectorizer options"):
        TfidfLinear.from_sklearn(model.features, model.classes, *model.weights())


def test_the_graph_model_rebuilt_from_its_saved_state_scores_the_same(tmp_path):
    texts = ["insuffisance cardiaque", "infarctus du myocarde", "asthme aigu", "cardiaque aigu"]
    union = tfidf_features().fit(texts)
    coef = np.random.default_rng(0).normal(size=(3, union.transform(texts).shape[1]))
    model = TfidfLinear.from_sklearn(union, ["A", "B", "C"], coef, np.array([0.1, -0.2, 0.3]))
    np.savez(tmp_path / "tfidf.npz", **model.state())
    again = TfidfLinear.from_state(np.load(tmp_path / "tfidf.npz"))
    assert again.classes == model.classes
    queries = tf.constant(texts + ["cardiaque inconnu", ""])
    np.testing.assert_allclose(again.decision_function(queries).numpy(), model.decision_function(queries).numpy(),
                               rtol=1e-6)


def test_dense_rows_and_sparse_weights_together_give_the_kept_weights_scores():
    model = fitted()
    coef, intercept = model.weights()
    threshold = float(np.quantile(np.abs(coef[coef != 0]), 0.6))  # leaves features with one to all classes' weights
    graph = TfidfLinear.from_sklearn(model.features, model.classes, coef, intercept, min_weight=threshold)
    dense_rows = int(graph.dense_weights.shape[0])
    assert 0 < dense_rows < graph.features and graph.weight_values.shape[0] > 0
    kept = np.where(np.abs(coef) > threshold, coef, 0.0)
    expected = model.features.transform(QUERIES) @ kept.T + intercept
    np.testing.assert_allclose(graph.decision_function(tf.constant(QUERIES)).numpy(), expected, atol=1e-5)
    classes, columns, values = graph.weights()
    np.testing.assert_allclose(values, coef[classes, columns])
    assert len(values) == graph.weight_count == int((np.abs(coef) > threshold).sum())
