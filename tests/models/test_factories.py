"""Classifier and tagger factories at tiny size: output shapes, and `get_config` -> `from_config` round trips
that answer exactly like the original once given its weights (and its vocabulary, which is state, not config)."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_bert_preset
from tfnlp.errors import UserError
from tfnlp.model_settings import BiLSTMTaggerSettings, TransformerTaggerSettings, WordClassifierSettings
from tfnlp.models.classifiers import CLASSIFIERS, dense_head, mean_vectors_features
from tfnlp.models.layers import word_vectorizer
from tfnlp.models.taggers import bilstm_tagger, transformer_tagger

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
    with warnings.catch_warnings(record=True) as caught:  # e.g. Conv1D dropping the embedding's mask, said each build
        warnings.simplefilter("always")
        model = CLASSIFIERS.get(name)(CONFIG, vectorizer, 3, vectors if name == "glove_bilstm" else None)
        probabilities = model(TEXTS).numpy()
    assert [str(warning.message) for warning in caught] == []
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(rebuilt(model)(TEXTS).numpy(), probabilities, rtol=1e-6)


@pytest.mark.parametrize("name, fine_tune, trained", [("bilstm_conv", False, False), ("bilstm_conv", True, True),
                                                      ("lstm", True, True), ("glove_bilstm", False, False)])
def test_pretrained_vectors_train_only_when_asked(name, fine_tune, trained):
    import dataclasses

    vectorizer = word_vectorizer(["good movie", "bad plot"], CONFIG.vocab_size)
    vectors = np.random.default_rng(0).normal(size=(vectorizer.vocabulary_size(), 6)).astype("float32")
    config = dataclasses.replace(CONFIG, name=name, fine_tune_vectors=fine_tune)
    embedding = CLASSIFIERS.get(name)(config, vectorizer, 2, vectors).get_layer("embedding")
    np.testing.assert_array_equal(embedding.get_weights()[0], vectors)  # the vectors are where it starts
    assert embedding.trainable is trained


@pytest.mark.parametrize("name", ["lstm", "bilstm_conv"])
def test_subwords_let_words_outside_the_vocabulary_read_differently(name):
    import dataclasses

    vectorizer = word_vectorizer(["good movie", "bad plot"], CONFIG.vocab_size)
    unknown = tf.constant(["zorglub", "qwerty", ""])  # both outside the vocabulary: the same word id

    def probabilities(buckets: int):
        keras.utils.set_random_seed(0)
        model = CLASSIFIERS.get(name)(dataclasses.replace(CONFIG, subword_buckets=buckets), vectorizer, 3)
        return model, model(unknown).numpy()

    _, alone = probabilities(0)
    np.testing.assert_allclose(alone[0], alone[1])
    model, with_subwords = probabilities(50)
    assert not np.allclose(with_subwords[0], with_subwords[1])
    np.testing.assert_allclose(rebuilt(model)(unknown).numpy(), with_subwords, rtol=1e-6)


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


def test_transformer_tagger_bilstm_reads_real_sub_tokens_only(tmp_path):
    """`model.lstm_units`: a BiLSTM over the backbone's states; what the padding holds does not reach real sub-tokens
    (the backward direction starts at the text's last real sub-token), and the model round-trips."""

    preset = tiny_bert_preset(tmp_path / "preset", ["crohn", "disease", "the"], hidden_dim=8)
    settings = TransformerTaggerSettings(preset=str(preset), max_input_tokens=8, dropout=0.0, lstm_units=3)
    model = transformer_tagger(settings, 0, ["O", "B-X", "I-X"])
    assert model.get_layer("bilstm").forward_layer.units == 3
    ids = np.array([[2, 5, 6, 3, 0, 0], [2, 5, 6, 3, 7, 7]], dtype="int32")  # the same text, other padding ids
    inputs = {"token_ids": ids, "segment_ids": np.zeros_like(ids),
              "padding_mask": np.array([[1, 1, 1, 1, 0, 0]] * 2, dtype="int32")}
    scores = keras.ops.convert_to_numpy(model(inputs))
    assert scores.shape == (2, 6, 3)
    np.testing.assert_allclose(scores[0, :4], scores[1, :4], atol=1e-5)
    path = tmp_path / "tagger.keras"
    model.save(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.models.load_model(path)(inputs)), scores, atol=1e-5)


def test_transformer_tagger_with_a_frozen_backbone_trains_its_head_alone(tmp_path):
    """`model.freeze_backbone`: only the BiLSTM and the tag scores learn; LoRA beside it is refused."""

    preset = str(tiny_bert_preset(tmp_path / "preset", ["crohn", "disease"], hidden_dim=8))
    tags = ["O", "B-X", "I-X"]
    frozen = transformer_tagger(TransformerTaggerSettings(preset=preset, max_input_tokens=8, lstm_units=3,
                                                          freeze_backbone=True), 0, tags)
    head = frozen.get_layer("bilstm").trainable_weights + frozen.get_layer("tags").trainable_weights
    assert {id(weight) for weight in frozen.trainable_weights} == {id(weight) for weight in head}
    whole = transformer_tagger(TransformerTaggerSettings(preset=preset, max_input_tokens=8, lstm_units=3), 0, tags)
    assert len(whole.trainable_weights) > len(head)
    with pytest.raises(UserError, match="freeze_backbone"):
        transformer_tagger(TransformerTaggerSettings(preset=preset, max_input_tokens=8, freeze_backbone=True,
                                                     lora_rank=2), 0, tags)


def test_transformer_tagger_reads_the_last_backbone_layers_side_by_side(tmp_path):

    preset = str(tiny_bert_preset(tmp_path / "preset", ["crohn", "disease"], hidden_dim=8))  # 2 layers
    model = transformer_tagger(TransformerTaggerSettings(preset=preset, max_input_tokens=8, backbone_layers=2), 0,
                               ["O", "B-X", "I-X"])
    assert model.get_layer("backbone_layers").output.shape[-1] == 16
    assert model.get_layer("tags").kernel.shape == (16, 3)
    with pytest.raises(UserError, match="backbone_layers=3 is over the backbone's 2 layers"):
        transformer_tagger(TransformerTaggerSettings(preset=preset, max_input_tokens=8, backbone_layers=3), 0, ["O"])
