"""Sparse focal cross-entropy and the class-weighting helpers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnlp.errors import UserError
from tfnlp.losses import (
    SparseFocalCrossentropy,
    balanced_class_weights,
    effective_number_alpha,
    make_loss,
)

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(16, 5)).astype("float32")
LABELS = RNG.integers(0, 5, size=16)


def test_gamma_zero_is_cross_entropy():
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, LOGITS)
    focal = SparseFocalCrossentropy(gamma=0.0, from_logits=True)(LABELS, LOGITS)
    np.testing.assert_allclose(focal, expected, rtol=1e-5)


@pytest.mark.parametrize("from_logits", [True, False])
def test_matches_keras_one_hot_focal(from_logits):
    predictions = LOGITS if from_logits else tf.nn.softmax(LOGITS).numpy()
    expected = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0, from_logits=from_logits)(
        keras.utils.to_categorical(LABELS, 5), predictions)
    focal = SparseFocalCrossentropy(gamma=2.0, alpha=0.25, from_logits=from_logits)(LABELS, predictions)
    np.testing.assert_allclose(focal, expected, rtol=1e-4)


def test_per_class_alpha_weights_each_example_by_its_class():
    alpha = [0.0, 1.0, 0.0, 0.0, 0.0]
    weighted = SparseFocalCrossentropy(gamma=1.0, alpha=alpha, from_logits=True, reduction=None)(LABELS, LOGITS)
    plain = SparseFocalCrossentropy(gamma=1.0, from_logits=True, reduction=None)(LABELS, LOGITS)
    np.testing.assert_allclose(weighted, np.where(LABELS == 1, plain, 0.0), rtol=1e-6)


def test_focal_down_weights_easy_examples():
    easy, hard = np.array([[8.0, 0.0]]), np.array([[0.5, 0.0]])
    loss = SparseFocalCrossentropy(gamma=2.0, from_logits=True, reduction=None)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    label = np.array([0])
    assert loss(label, easy)[0] / ce(label, easy)[0] < 0.01 < loss(label, hard)[0] / ce(label, hard)[0]


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_gradients_are_finite_with_zero_probability_classes(gamma):
    probabilities = tf.Variable([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = SparseFocalCrossentropy(gamma=gamma)([0, 2], probabilities)
    assert np.isfinite(loss.numpy()) and np.isfinite(tape.gradient(loss, probabilities).numpy()).all()


def test_per_token_targets():
    logits = RNG.normal(size=(2, 4, 3)).astype("float32")
    tags = RNG.integers(0, 3, size=(2, 4))
    expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(tags, logits)
    np.testing.assert_allclose(SparseFocalCrossentropy(gamma=0.0, from_logits=True)(tags, logits), expected,
                               rtol=1e-5)


def test_config_round_trip():
    loss = SparseFocalCrossentropy(gamma=1.5, alpha=[0.5, 2.0], from_logits=True)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (restored.gamma, restored.alpha, restored.from_logits) == (1.5, [0.5, 2.0], True)


def test_balanced_class_weights_are_sklearns_formula():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0] * 8 + [1] * 2 + [3] * 6)
    counts = np.bincount(labels, minlength=4)
    expected = compute_class_weight("balanced", classes=np.array([0, 1, 3]), y=labels)
    np.testing.assert_allclose(balanced_class_weights(counts), [expected[0], expected[1], 0.0, expected[2]])


def test_effective_number_alpha():
    alpha = effective_number_alpha([1000, 10, 0, 1], beta=0.999)
    assert alpha[2] == 0.0 and alpha[0] < alpha[1] < alpha[3]
    np.testing.assert_allclose(alpha[[0, 1, 3]].mean(), 1.0)
    np.testing.assert_allclose(effective_number_alpha([5, 50], beta=0.0), [1.0, 1.0])  # beta 0: no re-weighting


def test_make_loss_names_and_errors():
    assert make_loss("weighted", [3, 1])[1].tolist() == [2 / 3, 2.0]
    assert isinstance(make_loss("balanced_focal", [3, 1])[0], SparseFocalCrossentropy)
    with pytest.raises(UserError, match="train.loss='dice'"):
        make_loss("dice", [1])
    with pytest.raises(UserError, match="gamma"):
        SparseFocalCrossentropy(gamma=-1.0)
