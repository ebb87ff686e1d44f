"""The seq2seq's inputs and targets: raw texts -> word and character n-gram ids; codes -> decoder characters.

Inputs are words (a TextVectorization adapted on the training split, `[UNK]` for unknown words)
plus hashed character n-grams of each word; targets are the code's characters framed by a start
and an end token. Everything that touches a raw string runs in the graph, so the exported
signature repeats it exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnlp.config import TrainConfig
from tfnlp.data import text
from tfnlp.data.icd10 import category
from tfnlp.data.records import Record
from tfnlp.data.vocabulary import Vocabulary
from tfnlp.model_settings import Seq2SeqCoderSettings
from tfnlp.models.layers import at_least_one_step, word_vectorizer
from tfnlp.models.seq2seq import END, PAD, START
from tfnlp.tasks.base import bucket_by_length, shuffled

SPECIAL_TOKENS = ("", "<s>", "</s>")  # ids PAD, START, END
LENGTH_BUCKETS = (5, 7, 9, 12, 16, 24)  # word-count boundaries of the training batches


def alphabet_of(codes: Iterable[str]) -> Vocabulary:
    """The decoder's tokens: padding, start and end, then the characters `codes` use."""
    return Vocabulary.sorted((character for code in codes for character in code), SPECIAL_TOKENS, default=PAD)


class Seq2SeqPreprocessor:
    """Turns raw texts into model inputs and codes into decoder sequences.

    Args:
        vectorizer: TextVectorization adapted on the training texts (ragged word ids).
        alphabet: the decoder's tokens (`alphabet_of`).
        max_input_tokens: words kept from a text.
        subword_buckets: hash buckets of the character n-gram features.
        max_output_length: most characters of a code.
        categories: the category head's classes (empty: no head).
    """

    def __init__(self, vectorizer: keras.layers.TextVectorization, alphabet: Vocabulary, max_input_tokens: int,
                 subword_buckets: int, max_output_length: int, categories: tuple[str, ...] = ()) -> None:
        self.vectorizer = vectorizer
        self.alphabet = alphabet
        self.categories = categories
        self.max_input_tokens = max_input_tokens
        self.subword_buckets = subword_buckets
        self.max_output_length = max_output_length

    @classmethod
    def adapt(cls, train: Sequence[Record], codes: Iterable[str], config: Seq2SeqCoderSettings) -> Seq2SeqPreprocessor:
        """Fit the word vocabulary on the training texts only; the alphabet on all known codes."""
        vectorizer = word_vectorizer([record.text for record in train], config.vocab_size, ragged=True)
        codes = [record.target for record in train] + list(codes)
        longest = max(len(code) for code in codes)
        categories = tuple(sorted({category(code) for code in codes})) if config.category_loss_weight else ()
        return cls(vectorizer, alphabet_of(codes), config.max_input_tokens, config.subword_buckets,
                   config.max_output_length or longest, categories)

    def state(self) -> dict:
        """What `from_state` needs (JSON-ready): the adapted word vocabulary, the alphabet, the categories and the
        lengths."""
        return {"vocabulary": self.vectorizer.get_vocabulary(include_special_tokens=False),
                "alphabet": list(self.alphabet.tokens), "categories": list(self.categories),
                "max_input_tokens": self.max_input_tokens, "subword_buckets": self.subword_buckets,
                "max_output_length": self.max_output_length}

    @classmethod
    def from_state(cls, state: dict) -> Seq2SeqPreprocessor:
        """The preprocessor `state` describes, without its training texts."""
        vectorizer = word_vectorizer([], 0, vocabulary=state["vocabulary"], ragged=True)
        return cls(vectorizer, Vocabulary(tuple(state["alphabet"]), default=PAD), state["max_input_tokens"],
                   state["subword_buckets"], state["max_output_length"], tuple(state["categories"]))

    @property
    def decoder_length(self) -> int:
        """Decoder steps: the longest code plus the end token."""
        return self.max_output_length + 1

    def input_tokens(self, texts: tf.Tensor) -> tf.Tensor:
        """The words the model reads, padded with "": [B] -> [B, T]."""
        return at_least_one_step(text.split_words(texts, self.max_input_tokens).to_tensor(""))

    def encode_texts(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        """Raw texts [B] -> {"token_ids": [B, T], "subword_ids": [B, T, N]} (0 = padding)."""
        token_ids = self.vectorizer(texts)[:, :self.max_input_tokens]
        inputs = {"token_ids": at_least_one_step(tf.cast(token_ids.to_tensor(0), tf.int32))}
        if self.subword_buckets:
            words = text.split_words(texts, self.max_input_tokens)
            subwords = text.subword_ids(words, self.subword_buckets).to_tensor(0)
            inputs["subword_ids"] = at_least_one_step(tf.cast(subwords, tf.int32))
        return inputs

    def encode_codes(self, codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Teacher-forcing pairs: decoder input `<s> c1 .. cn` and target `c1 .. cn </s>`, padded."""
        length = self.decoder_length
        inputs = np.zeros((len(codes), length), dtype=np.int32)
        targets = np.zeros((len(codes), length), dtype=np.int32)
        for row, code in enumerate(codes):
            ids = self.alphabet.ids(code[:self.max_output_length]).tolist()
            inputs[row, :len(ids) + 1] = [START] + ids
            targets[row, :len(ids) + 1] = ids + [END]
        return inputs, targets

    def category_ids(self, codes: Sequence[str]) -> np.ndarray:
        """Category-head class of each code; -1 (ignored by the loss) for a category it does not know."""
        index = {name: i for i, name in enumerate(self.categories)}
        return np.array([index.get(category(code), -1) for code in codes], dtype=np.int32)

    def model_inputs(self, records: Sequence[Record]) -> dict[str, tf.Tensor]:
        """Teacher-forced model inputs of `records` in one batch (to build a model's weights)."""
        inputs = self.encode_texts(tf.constant([record.text for record in records]))
        inputs["decoder_input"] = tf.constant(self.encode_codes([record.target for record in records])[0])
        return inputs

    def dataset(self, records: Sequence[Record], train: TrainConfig, training: bool,
                epoch: tf.Variable | None = None) -> tf.data.Dataset:
        """Batched ({inputs}, targets) pairs of texts of similar length; shuffled each epoch when `training`."""
        codes = [record.target for record in records]
        decoder_input, decoder_target = self.encode_codes(codes)
        targets = {"chars": decoder_target, **({"category": self.category_ids(codes)} if self.categories else {})}
        texts = tf.constant([record.text for record in records])
        # Word counts (approximate: before standardisation) only choose a length bucket.
        lengths = np.array([min(len(record.text.split()), self.max_input_tokens) for record in records], np.int32)
        dataset = shuffled(tf.data.Dataset.from_tensor_slices((texts, decoder_input, targets, lengths)), len(records),
                           train, training, epoch)
        # Batches of texts of similar length waste less time on padding (about 2x faster on CPU).
        dataset = bucket_by_length(dataset, lengths, LENGTH_BUCKETS, train.batch_size, lambda *element: element[-1])

        def to_model_inputs(batch_texts, batch_decoder_input, batch_targets, _):
            inputs = self.encode_texts(batch_texts)
            inputs["decoder_input"] = batch_decoder_input
            return inputs, batch_targets

        return dataset.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
