"""Classifier and tagger factories at tiny size: output shapes, and `get_config` -> `from_config` round trips
that answer exactly like the original once given its weights (and its vocabulary, which is state, not config)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnlp.model_settings import BiLSTMTaggerSettings, WordClassifierSettings
from tfnlp.models.classifiers import CLASSIFIERS, dense_head, mean_vectors_features
from tfnlp.models.layers import word_vectorizer
from tfnlp.models.taggers import bilstm_tagger

CONFIG = WordClassifierSettings(vocab_size=40, embedding_dim=4, units=3, filters=4, kernel_size=2, max_input_tokens=5,
                     dropout=0.0)
TEXTS = tf.constant(["good movie", "", "a bad, bad plot with many more words than five", "inconnu"])


def rebuilt(model: keras.Model) -> keras.Model:
    copy = keras.Model.from_config(model.get_config())
    for layer in copy.layers:
        if isinstance(layer, keras.layers.TextVectorization):
            layer.set_vocabulary(model.get_layer(layer.name).get_vocabulary())
    copy.set_weights(model.get_weights())
    return copy


@pytest.mark.parametrize("name", ["lstm", "bilstm_conv", "glove_bilstm"])
def test_keras_classifiers_answer_probabilities_and_round_trip(name):
    vectorizer = word_vectorizer(["good movie", "bad plot", "good plot"], CONFIG.vocab_size)
    vectors = np.random.default_rng(0).normal(size=(vectorizer.vocabulary_size(), 6)).astype("float32")
    model = CLASSIFIERS.get(name)(CONFIG, vectorizer, 3, vectors if name == "glove_bilstm" else None)
    probabilities = model(TEXTS).numpy()
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(rebuilt(model)(TEXTS).numpy(), probabilities, rtol=1e-6)


def test_mean_vectors_features_average_known_words_only():
    vectorizer = word_vectorizer([], 0, vocabulary=["good", "bad"])
    vectors = np.array([[0, 0], [0, 0], [1.0, 3.0], [3.0, 5.0]], dtype="float32")  # padding, [UNK], good, bad
    features = mean_vectors_features(vectorizer, vectors, max_tokens=5)
    np.testing.assert_allclose(features(tf.constant(["good bad unknown", "", "bad"])).numpy(),
                               [[2.0, 4.0], [0.0, 0.0], [3.0, 5.0]])
    head = dense_head(features, [(np.eye(2, dtype="float32"), np.zeros(2, "float32"))], "head")
    np.testing.assert_allclose(rebuilt(head)(tf.constant(["good"])).numpy(), head(tf.constant(["good"])).numpy())


def test_bilstm_tagger_gives_a_distribution_per_token_and_round_trips():
    settings = BiLSTMTaggerSettings(vocab_size=40, embedding_dim=4, units=3, dropout=0.0, char_filters=0,
                                    decoder="argmax")
    tagger = bilstm_tagger(settings, ["the", "patient", "asthma"], ["O", "B-X", "I-X"])
    tokens = tf.constant([["The", "patient", "Asthma", ""], ["unknown", "", "", ""]])
    probabilities = tagger(tokens).numpy()
    assert probabilities.shape == (2, 4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(rebuilt(tagger)(tokens).numpy(), probabilities, rtol=1e-6)
