"""spaCy lemmatisation compiled into the graph: a word -> lemma table built on the training texts.

spaCy cannot run inside a TensorFlow graph, so `lemma_table` runs the French pipeline of the
fr-vectors asset over the training texts once, and keeps each word's most frequent lemma.
`Lemmatize` applies that table in the graph (a `tf.lookup.StaticHashTable`; unknown words pass
through unchanged), in training and in the exported model alike.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import keras
import tensorflow as tf

from tfnlp.data import spacy_pipelines, text


def lemma_table(texts: Sequence[str], language: str = "fr") -> dict[str, str]:
    """{standardised word: its most frequent standardised lemma} over `texts`, for words whose lemma differs."""
    nlp = spacy_pipelines.load(language, purpose="data.preprocess=lemma")
    pairs = [(token.text, token.lemma_) for doc in nlp.pipe(texts, batch_size=256) for token in doc]
    if not pairs:
        return {}
    # Both sides go through the graph's own standardisation, so keys match what the graph looks up.
    words = text.standardize(tf.constant([word for word, _ in pairs])).numpy()
    lemmas = text.standardize(tf.constant([lemma for _, lemma in pairs])).numpy()
    counts: dict[str, Counter] = defaultdict(Counter)
    for word, lemma in zip(words, lemmas, strict=True):
        word, lemma = word.decode(), lemma.decode()
        if word and lemma and " " not in word and " " not in lemma and word != lemma:
            counts[word][lemma] += 1
    return {word: counter.most_common(1)[0][0] for word, counter in sorted(counts.items())}


@keras.saving.register_keras_serializable(package="tfnlp")
class Lemmatize(keras.layers.Layer):
    """Raw texts [B] -> standardised, lemmatised texts [B] (words joined by spaces)."""

    def __init__(self, table: dict[str, str], **kwargs) -> None:
        super().__init__(trainable=False, **kwargs)
        self.table_items = dict(table)
        keys = list(self.table_items) or [""]
        values = list(self.table_items.values()) or [""]
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(values)), default_value="")

    def call(self, texts):
        words = tf.strings.split(text.standardize(texts))
        lemmas = self.table.lookup(words.flat_values)
        replaced = tf.where(tf.equal(lemmas, ""), words.flat_values, lemmas)
        return tf.strings.reduce_join(words.with_flat_values(replaced), axis=-1, separator=" ")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "table": self.table_items}
