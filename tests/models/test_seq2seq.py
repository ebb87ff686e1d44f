import keras
import numpy as np
import tensorflow as tf

from tfnlp.model_settings import Seq2SeqCoderSettings
from tfnlp.models.seq2seq import (
    BahdanauAttention,
    CharSeq2Seq,
    Seq2SeqDecoder,
    Seq2SeqEncoder,
    char_seq2seq,
    masked_accuracy,
    masked_loss,
)

TINY = Seq2SeqCoderSettings(embedding_dim=8, subword_buckets=50, units=4, decoder_units=8, char_embedding_dim=4,
                   attention_units=4, dropout=0.0)


def test_attention_gives_padded_keys_exactly_zero_weight():
    keras.utils.set_random_seed(0)
    attention = BahdanauAttention(6)
    query = tf.random.normal([3, 2, 5])
    keys = tf.random.normal([3, 4, 7]) * 10.0
    mask = tf.constant([[True, True, False, False], [True, True, True, True], [False, False, False, False]])
    context, weights = attention(query, keys, mask=mask)
    weights = weights.numpy()
    assert context.shape == (3, 2, 7) and weights.shape == (3, 2, 4)
    assert np.all(weights[0, :, 2:] == 0.0) and np.all(weights[2] == 0.0)  # exactly zero, even if all padded
    np.testing.assert_allclose(weights[:2].sum(-1), 1.0, rtol=1e-6)
    # Changing what sits in padded positions changes nothing.
    other_keys = tf.concat([keys[:, :2], tf.random.normal([3, 2, 7]) * 100.0], axis=1)
    other_context, _ = attention(query, other_keys, mask=mask)
    np.testing.assert_allclose(other_context[0].numpy(), context[0].numpy(), rtol=1e-5, atol=1e-5)


def test_layers_and_model_round_trip_through_their_config():
    for layer in (BahdanauAttention(3), Seq2SeqEncoder(20, 4, 10, 3, 5, 0.1), Seq2SeqDecoder(9, 4, 5, 3, 0.1)):
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    model = char_seq2seq(TINY, vocab_size=30, alphabet_size=12, num_categories=5)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(clone, CharSeq2Seq) and clone.encoder.get_config() == model.encoder.get_config()
    assert clone.num_categories == 5


def test_padding_after_a_text_does_not_change_the_logits():
    keras.utils.set_random_seed(1)
    model = char_seq2seq(TINY, vocab_size=30, alphabet_size=12, num_categories=7)
    inputs = {"token_ids": tf.constant([[5, 6, 7]]), "subword_ids": tf.constant([[[1, 2], [3, 0], [4, 5]]]),
              "decoder_input": tf.constant([[1, 4, 5]])}
    padded = {"token_ids": tf.constant([[5, 6, 7, 0, 0]]),
              "subword_ids": tf.constant([[[1, 2], [3, 0], [4, 5], [0, 0], [0, 0]]]),
              "decoder_input": inputs["decoder_input"]}
    for name in ("chars", "category"):
        np.testing.assert_allclose(model(inputs)[name].numpy(), model(padded)[name].numpy(), rtol=1e-5, atol=1e-6)


def test_masked_loss_and_accuracy_ignore_padding():
    logits = tf.constant([[[0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [9.0, 0.0, 0.0]]])
    targets = tf.constant([[1, 1, 0]])
    assert float(masked_accuracy(targets, logits)) == 0.5
    full = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets[:, :2], logits=logits[:, :2])
    np.testing.assert_allclose(float(masked_loss(targets, logits)), float(tf.reduce_mean(full)), rtol=1e-6)


def test_a_decoder_step_equals_the_layer_on_a_one_token_sequence():
    keras.utils.set_random_seed(2)
    decoder = Seq2SeqDecoder(9, 4, 5, 3, 0.0)
    state = [tf.random.normal([3, 5]), tf.random.normal([3, 5])]
    keys = tf.random.normal([3, 4, 6])
    mask = tf.constant([[True, True, False, False]] * 3)
    previous = tf.constant([1, 4, 7])
    logits, weights, (h, c) = decoder(previous[:, None], state, keys, mask)
    step_logits, step_weights, (step_h, step_c) = decoder.step(previous, state, keys, mask)
    for whole, single in ((logits[:, 0], step_logits), (weights[:, 0], step_weights), (h, step_h), (c, step_c)):
        np.testing.assert_allclose(whole.numpy(), single.numpy(), rtol=1e-5, atol=1e-6)
