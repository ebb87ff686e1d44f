"""Layers and graph helpers shared by the model factories and the serving graphs."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops


def at_least_one_step(dense: tf.Tensor) -> tf.Tensor:
    """`dense` [B, T, ...] padded (with its zero value) to length >= 1 on every axis after the first, so that a
    batch of empty texts (or an empty batch) still has a time step for the layers that need one."""
    shape = tf.shape(dense)
    padding = [[0, 0]] + [[0, tf.maximum(0, 1 - shape[axis])] for axis in range(1, len(dense.shape))]
    return tf.pad(dense, padding)


@keras.saving.register_keras_serializable(package="tfnlp")
class AtLeastOneStep(keras.layers.Layer):
    """`at_least_one_step` as a layer, for functional models."""

    def call(self, inputs):
        return at_least_one_step(inputs)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(None for _ in input_shape[1:]))


@keras.saving.register_keras_serializable(package="tfnlp")
class MaskedMean(keras.layers.Layer):
    """Mean over the time steps where `mask` is true; zeros for a row with none (an empty text)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True  # it consumes the mask it is given

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs, mask):
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        return ops.sum(inputs * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="tfnlp")
class DropMask(keras.layers.Layer):
    """Its input unchanged, without the Keras mask: before a layer that cannot read one (Conv1D), which would
    otherwise warn on every build that it drops it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, inputs, mask=None):
        # A new tensor: eager tensors carry their mask as an attribute, which the input itself would keep.
        return tf.identity(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="tfnlp")
class Lowercase(keras.layers.Layer):
    """Unicode lower-casing of string tensors."""

    def call(self, tokens):
        return tf.strings.lower(tokens, encoding="utf-8")

    def compute_output_shape(self, input_shape):
        return input_shape


def word_vectorizer(texts: Sequence[str], max_tokens: int, preprocess: keras.layers.Layer | None = None,
                    vocabulary: Sequence[str] | None = None, ragged: bool = False) -> keras.layers.TextVectorization:
    """The word vocabulary every word-level model reads: `tfnlp.data.text.standardize`, then whitespace words.

    Args:
        texts: the training texts it is adapted on (ignored when `vocabulary` is given).
        max_tokens: the vocabulary's size, padding and `[UNK]` included.
        preprocess: a layer applied to the texts before adapting (e.g. `Lemmatize`); the model applies it too.
        vocabulary: a fixed vocabulary (the words of pretrained vectors) instead of adapting.
        ragged: return ragged word ids rather than padded ones.
    """
    from tfnlp.data.text import standardize

    vectorizer = keras.layers.TextVectorization(
        max_tokens=None if vocabulary is not None else max_tokens, standardize=standardize, split="whitespace",
        vocabulary=list(vocabulary) if vocabulary is not None else None, ragged=ragged, name="words")
    if vocabulary is None:
        dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), dtype=tf.string)).batch(1024)
        vectorizer.adapt(dataset.map(preprocess) if preprocess is not None else dataset)
    return vectorizer
