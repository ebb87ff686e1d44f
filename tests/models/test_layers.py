"""Shared layers at tiny size: what they compute, and their config round trips."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnlp.models.layers import AtLeastOneStep, Lowercase, MaskedMean, at_least_one_step, word_vectorizer


def round_trip(layer: keras.layers.Layer) -> keras.layers.Layer:
    """The layer rebuilt from its serialised config, as a saved model would rebuild it."""
    return keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))


@pytest.mark.parametrize("shape, expected", [((3, 0), (3, 1)), ((0, 0), (0, 1)), ((2, 4), (2, 4)),
                                             ((2, 0, 0), (2, 1, 1)), ((2, 3, 0), (2, 3, 1))])
def test_at_least_one_step_pads_empty_axes_only(shape, expected):
    dense = tf.ones(shape, tf.int32)
    padded = at_least_one_step(dense)
    assert tuple(padded.shape) == expected
    assert int(tf.reduce_sum(padded)) == int(np.prod(shape))  # padding is zeros, the values are kept
    assert tuple(round_trip(AtLeastOneStep())(dense).shape) == expected


def test_masked_mean_ignores_masked_steps_and_gives_zeros_for_none():
    values = tf.constant([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 5.0], [6.0, 6.0], [7.0, 7.0]]])
    mask = tf.constant([[True, True, False], [False, False, False]])
    for layer in (MaskedMean(), round_trip(MaskedMean())):
        np.testing.assert_allclose(layer(values, mask=mask).numpy(), [[2.0, 3.0], [0.0, 0.0]])


def test_lowercase_is_unicode_aware():
    for layer in (Lowercase(), round_trip(Lowercase())):
        assert layer(tf.constant(["ÉCOLE", "Ωμέγα"])).numpy().tolist() == ["école".encode(), "ωμέγα".encode()]


def test_word_vectorizer_standardises_and_ranks_by_frequency():
    vectorizer = word_vectorizer(["Asthme aigu", "asthme, grave!", "Toux"], max_tokens=10)
    assert vectorizer.get_vocabulary()[:3] == ["", "[UNK]", "asthme"]
    ids = vectorizer(tf.constant(["ASTHME inconnu"])).numpy().tolist()
    assert ids == [[2, 1]]
    fixed = word_vectorizer([], max_tokens=0, vocabulary=["chat", "chien"])
    assert fixed(tf.constant(["Chien!"])).numpy().tolist() == [[3]]
    restored = round_trip(vectorizer)  # possible because `standardize` is registered
    restored.set_vocabulary(vectorizer.get_vocabulary())
    toux = vectorizer.get_vocabulary().index("toux")
    assert restored(tf.constant(["asthme, Toux"])).numpy().tolist() == [[2, toux]]
