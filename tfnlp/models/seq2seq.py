"""Character-level encoder-decoder with additive (Bahdanau) attention and masking.

The encoder reads words (plus hashed character n-grams of each word) with a bidirectional
LSTM; the decoder writes the code one character at a time with an LSTM whose output queries
the encoder through additive attention, as in TensorFlow's "NMT with attention" tutorial.
Training uses teacher forcing over the whole target at once; inference calls the same
decoder one step at a time (see `tfnlp.models.decoding`).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfnlp.model_settings import Seq2SeqCoderSettings

NEG_INF = -1e9
# Decoder token ids shared by training targets, decoding and export.
PAD, START, END = 0, 1, 2


@keras.saving.register_keras_serializable(package="tfnlp")
class BahdanauAttention(keras.layers.Layer):
    """Additive attention: score(q, k) = v . tanh(W_q q + W_k k); padded keys get weight exactly 0.

    Args:
        units: size of the shared projection space.
    """

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        # The keys arrive with the encoder's Keras mask attached; it is passed on explicitly as `mask`.
        self.supports_masking = True
        self.units = units
        # The projections compute in the layer's own dtype (float32 in the decoder, whatever the global policy).
        self.query_projection = keras.layers.Dense(units, use_bias=False, name="query_projection",
                                                   dtype=self.dtype_policy)
        self.key_projection = keras.layers.Dense(units, use_bias=False, name="key_projection", dtype=self.dtype_policy)
        self.score = keras.layers.Dense(1, use_bias=False, name="score", dtype=self.dtype_policy)

    def call(self, query, keys, mask=None, projected_keys=None):
        """Attend from each query step over the keys.

        Args:
            query: [B, Tq, Dq] decoder outputs.
            keys: [B, Tk, Dk] encoder outputs (also the values).
            mask: [B, Tk] bool, True for real positions.
            projected_keys: [B, Tk, units], `key_projection(keys)` computed once per text when decoding.

        Returns:
            context [B, Tq, Dk] and weights [B, Tq, Tk] (rows sum to 1 over unmasked keys).
        """
        if projected_keys is None:
            projected_keys = self.key_projection(keys)
        projected_query = self.query_projection(query)
        # [B, Tq, 1, U] + [B, 1, Tk, U] -> [B, Tq, Tk, U] -> [B, Tq, Tk]
        scores = tf.squeeze(self.score(tf.tanh(projected_query[:, :, None, :] + projected_keys[:, None, :, :])), -1)
        if mask is not None:
            keep = tf.cast(mask, scores.dtype)[:, None, :]
            # Finite -1e9 (not -inf) keeps gradients clean; multiplying by `keep` makes the padded
            # weights exactly 0, also for a text with no real position at all.
            weights = tf.nn.softmax(scores + (1.0 - keep) * NEG_INF, axis=-1) * keep
        else:
            weights = tf.nn.softmax(scores, axis=-1)
        context = tf.einsum("bqk,bkd->bqd", weights, keys)
        return context, weights

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="tfnlp")
class MeanSubwordEmbedding(keras.layers.Layer):
    """Mean embedding of each word's hashed character n-grams: ids [B, T, N] (0 = none) -> [B, T, D].

    A sparse lookup touches only the n-grams present; gathering a dense [B, T, N, D] block
    first made a training step about three times slower on CPU.
    """

    def __init__(self, buckets: int, output_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.buckets, self.output_dim = buckets, output_dim

    def build(self, input_shape) -> None:
        self.embeddings = self.add_weight(shape=(self.buckets + 1, self.output_dim), initializer="uniform",
                                          name="embeddings")

    def call(self, subword_ids):
        subword_ids = tf.cast(subword_ids, tf.int32)  # Keras may trace the model with float inputs
        shape = tf.shape(subword_ids)
        flat = tf.reshape(subword_ids, [-1, shape[2]])  # [B*T, N]
        present = tf.where(tf.not_equal(flat, 0))  # [K, 2]: (word row, n-gram slot) of each real n-gram
        vectors = tf.gather(self.embeddings, tf.gather_nd(flat, present))  # [K, D]
        # Rows (words) with no n-gram, i.e. padding, get a zero vector.
        means = tf.math.unsorted_segment_mean(vectors, present[:, 0], num_segments=shape[0] * shape[1])
        return tf.reshape(means, [shape[0], shape[1], self.output_dim])

    def get_config(self) -> dict:
        return {**super().get_config(), "buckets": self.buckets, "output_dim": self.output_dim}


@keras.saving.register_keras_serializable(package="tfnlp")
class Seq2SeqEncoder(keras.layers.Layer):
    """Word embedding (+ mean of character n-gram embeddings), dropout, bidirectional LSTM.

    Returns the encoder outputs, their mask and the decoder's initial LSTM state.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, subword_buckets: int, units: int,
                 decoder_units: int, dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab_size, self.embedding_dim, self.subword_buckets = vocab_size, embedding_dim, subword_buckets
        self.units, self.decoder_units, self.dropout_rate = units, decoder_units, dropout
        self.word_embedding = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="word_embedding")
        self.subword_embedding = (MeanSubwordEmbedding(subword_buckets, embedding_dim, name="subword_embedding")
                                  if subword_buckets else None)
        self.dropout = keras.layers.Dropout(dropout)
        self.rnn = keras.layers.Bidirectional(
            keras.layers.LSTM(units, return_sequences=True, return_state=True), name="bilstm")
        self.initial_h = keras.layers.Dense(decoder_units, activation="tanh", name="initial_h")
        self.initial_c = keras.layers.Dense(decoder_units, name="initial_c")

    def call(self, token_ids, subword_ids=None, training=None):
        """token_ids [B, T], subword_ids [B, T, N] -> outputs [B, T, 2u], mask [B, T], [h, c]."""
        embedded = self.word_embedding(token_ids)
        mask = self.word_embedding.compute_mask(token_ids)
        if self.subword_embedding is not None:
            embedded += self.subword_embedding(subword_ids)
        embedded = self.dropout(embedded, training=training)
        outputs, forward_h, forward_c, backward_h, backward_c = self.rnn(embedded, mask=mask, training=training)
        outputs = self.dropout(outputs, training=training)
        state = [self.initial_h(tf.concat([forward_h, backward_h], -1)),
                 self.initial_c(tf.concat([forward_c, backward_c], -1))]
        return outputs, mask, state

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "subword_buckets": self.subword_buckets, "units": self.units,
                "decoder_units": self.decoder_units, "dropout": self.dropout_rate}


@keras.saving.register_keras_serializable(package="tfnlp")
class Seq2SeqDecoder(keras.layers.Layer):
    """Character embedding -> LSTM -> Bahdanau attention over the encoder -> next-character logits."""

    def __init__(self, alphabet_size: int, char_embedding_dim: int, units: int, attention_units: int,
                 dropout: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.alphabet_size, self.char_embedding_dim, self.units = alphabet_size, char_embedding_dim, units
        self.attention_units, self.dropout_rate = attention_units, dropout
        self.embedding = keras.layers.Embedding(alphabet_size, char_embedding_dim, name="char_embedding")
        self.rnn = keras.layers.LSTM(units, return_sequences=True, return_state=True, name="lstm")
        # Attention scores and the output logits in float32 under a mixed-precision policy.
        self.attention = BahdanauAttention(attention_units, name="attention", dtype="float32")
        self.combine = keras.layers.Dense(units, activation="tanh", name="combine")
        self.dropout = keras.layers.Dropout(dropout)
        self.logits = keras.layers.Dense(alphabet_size, name="logits", dtype="float32")

    def call(self, previous_tokens, state, encoder_outputs, encoder_mask, projected_keys=None, training=None):
        """previous_tokens [B, L] -> logits [B, L, V], attention weights [B, L, T], new state [h, c]."""
        embedded = self.embedding(previous_tokens)
        rnn_outputs, h, c = self.rnn(embedded, initial_state=state, training=training)
        logits, weights = self._attend_and_predict(rnn_outputs, encoder_outputs, encoder_mask, projected_keys,
                                                   training)
        return logits, weights, [h, c]

    def step(self, previous_token, state, encoder_outputs, encoder_mask, projected_keys=None):
        """One inference step through the LSTM cell, without the layer's time loop.

        previous_token [B * K] -> logits [B * K, V], attention weights [B * K, T], new state [h, c], for K
        hypotheses of each of B texts (a text's rows together; K = 1 without a beam). The encoder's outputs
        [B, T, D], mask [B, T] and `projected_keys` [B, T, units] come once per text: a text's K hypotheses attend
        as K query steps of one sequence, so nothing is repeated K times. Same weights and result as `call` on a
        length-1 sequence, with less overhead per step.
        """
        output, state = self.rnn.cell(self.embedding(previous_token), state, training=False)
        queries = tf.reshape(output, [tf.shape(encoder_outputs)[0], -1, output.shape[-1]])  # [B, K, units]
        logits, weights = self._attend_and_predict(queries, encoder_outputs, encoder_mask, projected_keys,
                                                   training=False)
        return (tf.reshape(logits, [-1, logits.shape[-1]]), tf.reshape(weights, [-1, tf.shape(weights)[-1]]),
                list(state))

    def _attend_and_predict(self, rnn_outputs, encoder_outputs, encoder_mask, projected_keys, training):
        context, weights = self.attention(rnn_outputs, encoder_outputs, mask=encoder_mask,
                                          projected_keys=projected_keys)
        combined = self.combine(tf.concat([rnn_outputs, tf.cast(context, rnn_outputs.dtype)], axis=-1))
        return self.logits(self.dropout(combined, training=training)), weights

    def get_config(self) -> dict:
        return {**super().get_config(), "alphabet_size": self.alphabet_size,
                "char_embedding_dim": self.char_embedding_dim, "units": self.units,
                "attention_units": self.attention_units, "dropout": self.dropout_rate}


@keras.saving.register_keras_serializable(package="tfnlp")
class CharSeq2Seq(keras.Model):
    """The teacher-forced training model.

    {token_ids, subword_ids, decoder_input} -> {"chars": logits [B, L, V]} and, with a category
    head, {"category": logits [B, C]} from the masked mean of the encoder outputs. The head
    gives the encoder a direct signal for the code's category (few examples per category make
    the character-by-character signal weak) and lets decoding rerank its beam.

    Args:
        encoder: the encoder layer.
        decoder: the decoder layer.
        num_categories: size of the category head's output; 0 for no head.
    """

    def __init__(self, encoder: Seq2SeqEncoder, decoder: Seq2SeqDecoder, num_categories: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.num_categories = num_categories
        self.category_head = (keras.layers.Dense(num_categories, name="category_head", dtype="float32")
                              if num_categories else None)

    def category_logits(self, encoder_outputs, mask):
        """Category logits [B, C] from the masked mean of encoder outputs [B, T, D]."""
        weights = tf.cast(mask, encoder_outputs.dtype)[:, :, None]
        pooled = tf.reduce_sum(encoder_outputs * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)
        return self.category_head(pooled)

    def call(self, inputs, training=None):
        outputs, mask, state = self.encoder(inputs["token_ids"], inputs.get("subword_ids"), training=training)
        logits, _, _ = self.decoder(inputs["decoder_input"], state, outputs, mask, training=training)
        if self.category_head is None:
            return {"chars": logits}
        return {"chars": logits, "category": self.category_logits(outputs, mask)}

    def get_config(self) -> dict:
        return {**super().get_config(), "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder), "num_categories": self.num_categories}

    @classmethod
    def from_config(cls, config: dict) -> CharSeq2Seq:
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def char_seq2seq(config: Seq2SeqCoderSettings, vocab_size: int, alphabet_size: int,
                 num_categories: int = 0) -> CharSeq2Seq:
    """Build the character seq2seq model from its config and the sizes the data fixed."""
    encoder = Seq2SeqEncoder(vocab_size, config.embedding_dim, config.subword_buckets, config.units,
                             config.decoder_units, config.dropout, name="encoder")
    decoder = Seq2SeqDecoder(alphabet_size, config.char_embedding_dim, config.decoder_units,
                             config.attention_units, config.dropout, name="decoder")
    return CharSeq2Seq(encoder, decoder, num_categories, name="char_seq2seq")


def masked_loss(y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy over real target positions (padding, id 0, is ignored)."""
    mask = tf.cast(tf.not_equal(y_true, 0), logits.dtype)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(y_true, tf.int32), logits=logits)
    return tf.reduce_sum(losses * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)


def masked_accuracy(y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Teacher-forced character accuracy over real target positions."""
    y_true = tf.cast(y_true, tf.int32)
    mask = tf.cast(tf.not_equal(y_true, 0), tf.float32)
    hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y_true), tf.float32)
    return tf.reduce_sum(hits * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
