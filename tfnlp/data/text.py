"""Text standardisation and word features that run inside the TensorFlow graph.

The same functions run in the tf.data pipeline and in the exported serving signature, so
training and serving see identical tokens. Only core TensorFlow ops are used: a SavedModel
built from them loads without tensorflow_text.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# Anything that is not a letter or a digit, in any script, separates words.
NON_WORD = r"[^\pL\pN]+"


# Registered so that a model whose TextVectorization uses it rebuilds from its config.
@keras.saving.register_keras_serializable(package="tfnlp")
def standardize(texts: tf.Tensor) -> tf.Tensor:
    """Lower-case (Unicode-aware) and replace punctuation with spaces: [B] string -> [B] string."""
    lowered = tf.strings.lower(texts, encoding="utf-8")
    return tf.strings.strip(tf.strings.regex_replace(lowered, NON_WORD, " "))


def split_words(texts: tf.Tensor, max_words: int) -> tf.RaggedTensor:
    """Standardised words of each text, at most `max_words` of them: [B] -> [B, (T)]."""
    return tf.strings.split(standardize(texts))[:, :max_words]


def subword_ids(words: tf.RaggedTensor, buckets: int, widths: tuple[int, ...] = (3, 4, 5)) -> tf.RaggedTensor:
    """Hashed character n-grams of each word, fastText style: [B, (T)] -> [B, (T), (N)] in [1, buckets].

    The word is wrapped in `<` and `>` so that prefixes and suffixes get n-grams of their own,
    and the whole wrapped word is one more feature. Id 0 is left free for padding.
    """
    wrapped = tf.strings.join(["<", words.flat_values, ">"])
    characters = tf.strings.unicode_split(wrapped, "UTF-8")
    grams = tf.strings.ngrams(characters, ngram_width=widths, separator="")
    whole_word = tf.RaggedTensor.from_tensor(tf.expand_dims(wrapped, 1))
    features = tf.concat([grams, whole_word], axis=1)
    hashed = tf.strings.to_hash_bucket_fast(features, buckets) + 1
    return words.with_flat_values(hashed)
