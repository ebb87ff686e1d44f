"""Structured tag decoding: BIO2 constraints, a linear-chain CRF and Viterbi decoding.

- `bio_allowed`: which tag may follow which under BIO2 (no `I-X` after `O`, after the start or
  after a tag of another type), with an implicit start and end state as tensorflow_text wants it.
- `viterbi`: the best allowed tag sequence of each text, by tensorflow_text's
  `viterbi_constrained_sequence` (a kept C++ op, so the serving graph runs it too).
- `CRF` + `CRFLoss`: a linear-chain CRF over a tagger's per-token scores: transition, start and end
  scores learnt with the emissions, trained on the sentence's negative log-likelihood (the forward
  algorithm, written with `tf.scan`: TensorFlow Addons, which had one, is end-of-life). The
  BIO2 constraints are part of the CRF (forbidden transitions score `FORBIDDEN`), so training and
  decoding agree on which sequences exist.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

FORBIDDEN = -1e4  # the score of a transition BIO2 forbids (finite: exp() underflows to 0, gradients stay finite)


def bio_allowed(tags: Sequence[str]) -> np.ndarray:
    """[K+1, K+1] booleans: `allowed[i, j]` when tag j may follow tag i; row and column K are the start and end.

    `I-X` may only follow `B-X` or `I-X`; every tag may end a sequence; tags outside BIO (`O` and any
    other) may follow anything.
    """
    count = len(tags)
    allowed = np.ones((count + 1, count + 1), dtype=bool)
    for j, tag in enumerate(tags):
        if tag.startswith("I-"):
            kind = tag[2:]
            allowed[:, j] = [previous in (f"B-{kind}", f"I-{kind}") for previous in tags] + [False]
    return allowed


def full_transitions(transitions: tf.Tensor, start: tf.Tensor, end: tf.Tensor) -> tf.Tensor:
    """[K+1, K+1] transition scores with the start state as row K and the end state as column K."""
    top = tf.concat([transitions, end[:, None]], axis=1)
    bottom = tf.concat([start, tf.zeros([1], start.dtype)], axis=0)[None, :]
    return tf.concat([top, bottom], axis=0)


def viterbi(scores: tf.Tensor, lengths: tf.Tensor, allowed: np.ndarray, weights: tf.Tensor | None = None) -> tf.Tensor:
    """The best allowed tag sequence of each row: ids [B, T], 0 past each row's length.

    Args:
        scores: per-step tag scores in log space [B, T, K] (log-probabilities or CRF emissions).
        lengths: steps of each row [B].
        allowed: `bio_allowed`'s [K+1, K+1] matrix.
        weights: [K+1, K+1] transition scores added to the path's (`full_transitions`); None for zeros.
    """
    import tensorflow_text as tf_text

    scores = tf.cast(scores, tf.float32)
    if weights is None:
        weights = tf.zeros(allowed.shape, tf.float32)
    best = tf_text.viterbi_constrained_sequence(scores, tf.cast(lengths, tf.int32), allowed_transitions=allowed,
                                                transition_weights=weights, use_log_space=True,
                                                use_start_and_end_states=True)
    return tf.cast(best.to_tensor(0, shape=tf.shape(scores, tf.int64)[:2]), tf.int32)


def compressed(values: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The steps of each row where `mask` holds, moved to the front: (values [B, T', ...], lengths [B])."""
    kept = tf.ragged.boolean_mask(values, mask)
    return kept.to_tensor(), kept.row_lengths()


def sequence_log_likelihood(emissions: tf.Tensor, tags: tf.Tensor, lengths: tf.Tensor, transitions: tf.Tensor,
                            start: tf.Tensor, end: tf.Tensor) -> tf.Tensor:
    """log P(tags | emissions) under a linear-chain CRF, per row [B]; a row of length 0 scores 0.

    Args:
        emissions: [B, T, K] per-step scores.
        tags: [B, T] gold tag ids (steps past a row's length are ignored).
        lengths: [B] steps of each row.
        transitions: [K, K] score of tag j after tag i; `start` / `end` [K]: of the first / last tag.
    """
    emissions = tf.cast(emissions, tf.float32)
    tags = tf.cast(tags, tf.int32)
    steps = tf.shape(emissions)[1]
    mask = tf.sequence_mask(lengths, steps, dtype=tf.float32)
    last = tf.cast(tf.maximum(lengths - 1, 0), tf.int32)
    present = tf.cast(lengths > 0, tf.float32)
    # The gold path's score.
    emitted = tf.reduce_sum(tf.gather(emissions, tags, batch_dims=2) * mask, axis=1)
    pairs = tf.stack([tags[:, :-1], tags[:, 1:]], axis=-1)
    moved = tf.reduce_sum(tf.gather_nd(transitions, pairs) * mask[:, 1:], axis=1)
    first_tag, last_tag = tags[:, 0], tf.gather(tags, last, batch_dims=1)
    gold = emitted + moved + (tf.gather(start, first_tag) + tf.gather(end, last_tag)) * present
    return gold - log_partition(emissions, mask, transitions, start, end) * present


def log_partition(emissions: tf.Tensor, mask: tf.Tensor, transitions: tf.Tensor, start: tf.Tensor,
                  end: tf.Tensor) -> tf.Tensor:
    """log of the summed exp-scores of every tag sequence of each row (the forward algorithm) [B]."""
    alpha = start[None, :] + emissions[:, 0]

    def step(alpha, inputs):
        scores, present = inputs
        moved = tf.reduce_logsumexp(alpha[:, :, None] + transitions[None], axis=1) + scores
        return tf.where(present[:, None] > 0, moved, alpha)

    time_major = (tf.transpose(emissions[:, 1:], [1, 0, 2]), tf.transpose(mask[:, 1:]))
    final = tf.scan(step, time_major, initializer=alpha)
    alpha = tf.cond(tf.shape(emissions)[1] > 1, lambda: final[-1], lambda: alpha)
    return tf.reduce_logsumexp(alpha + end[None, :], axis=1)


def forward_backward(emissions: tf.Tensor, lengths: tf.Tensor, transitions: tf.Tensor, start: tf.Tensor,
                     end: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The forward and backward log-scores of a linear-chain CRF, and the log-partition.

    Returns:
        alpha [B, T, K]: log of the summed scores of every path of steps 0..t ending in tag k (step t's emission
        included); beta [B, T, K]: of every continuation after step t from tag k to the end (`end` at a row's last
        step); log_z [B]. Steps past a row's length hold copies, to be ignored.
    """
    emissions = tf.cast(emissions, tf.float32)
    batch, steps = tf.shape(emissions)[0], tf.shape(emissions)[1]
    live = tf.range(steps)[None, :] < tf.cast(lengths, tf.int32)[:, None]  # [B, T]
    first = start[None, :] + emissions[:, 0]

    def forward(alpha, inputs):
        scores, present = inputs
        moved = tf.reduce_logsumexp(alpha[:, :, None] + transitions[None], axis=1) + scores
        return tf.where(present[:, None], moved, alpha)

    def backward(beta_next, inputs):
        scores_next, inside = inputs  # step t + 1's emissions; whether step t + 1 is in the row
        moved = tf.reduce_logsumexp(transitions[None] + (scores_next + beta_next)[:, None, :], axis=2)
        return tf.where(inside[:, None], moved, tf.broadcast_to(end[None, :], tf.shape(moved)))

    rest = tf.scan(forward, (tf.transpose(emissions[:, 1:], [1, 0, 2]), tf.transpose(live[:, 1:])),
                   initializer=first)
    alpha = tf.concat([first[:, None], tf.transpose(rest, [1, 0, 2])], axis=1)
    following = tf.pad(emissions[:, 1:], [[0, 0], [0, 1], [0, 0]])  # step t + 1's emissions at step t
    inside_next = tf.pad(live[:, 1:], [[0, 0], [0, 1]])
    ending = tf.broadcast_to(end[None, :], tf.stack([batch, tf.shape(end)[0]]))
    reversed_beta = tf.scan(backward, (tf.reverse(tf.transpose(following, [1, 0, 2]), [0]),
                                       tf.reverse(tf.transpose(inside_next), [0])), initializer=ending)
    beta = tf.transpose(tf.reverse(reversed_beta, [0]), [1, 0, 2])
    last = tf.maximum(tf.cast(lengths, tf.int32) - 1, 0)
    log_z = tf.reduce_logsumexp(tf.gather(alpha, last, batch_dims=1) + end[None, :], axis=1)
    return alpha, beta, log_z


def span_log_scores(emissions: tf.Tensor, tags: tf.Tensor, lengths: tf.Tensor, transitions: tf.Tensor,
                    start: tf.Tensor, end: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Per-step pieces of the log marginal probability that a span of steps s..e carries the tags `tags` [B, T]:
    (first [B, T], inner [B, T], last [B, T]) such that log P(y_s..y_e | x) = first[s] + sum(inner[s+1..e]) +
    last[e] (forward-backward)."""
    alpha, beta, log_z = forward_backward(emissions, lengths, transitions, start, end)
    tags = tf.cast(tags, tf.int32)
    first = tf.gather(alpha, tags, batch_dims=2)
    moves = tf.gather_nd(transitions, tf.stack([tags[:, :-1], tags[:, 1:]], axis=-1))
    inner = tf.pad(moves, [[0, 0], [1, 0]]) + tf.gather(tf.cast(emissions, tf.float32), tags, batch_dims=2)
    last = tf.gather(beta, tags, batch_dims=2) - log_z[:, None]
    return first, inner, last


@keras.saving.register_keras_serializable(package="tfnlp")
class CRF(keras.layers.Layer):
    """A linear-chain CRF's transition, start and end scores over a tagger's emissions.

    The layer passes the emissions through (the model's output stays [B, T, K] scores); `CRFLoss`
    trains it, `decode` reads the best well-formed sequence. Transitions BIO2 forbids score
    `FORBIDDEN` on top of the learnt ones.

    Args:
        tags: the tag names, in id order.
    """

    def __init__(self, tags: Sequence[str], **kwargs) -> None:
        super().__init__(dtype="float32", **{key: value for key, value in kwargs.items() if key != "dtype"})
        self.supports_masking = True  # the padding mask passes through to the loss's weights unchanged
        self.tags = list(tags)
        self.allowed = bio_allowed(self.tags)
        count = len(self.tags)
        self.transitions = self.add_weight(shape=(count, count), initializer="zeros", name="transitions")
        self.start = self.add_weight(shape=(count,), initializer="zeros", name="start")
        self.end = self.add_weight(shape=(count,), initializer="zeros", name="end")

    def call(self, emissions):
        return tf.cast(emissions, tf.float32)

    def compute_output_shape(self, input_shape):
        return input_shape

    def constrained_scores(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Transition, start and end scores with BIO2's forbidden moves at `FORBIDDEN`."""
        forbidden = tf.constant(np.where(self.allowed, 0.0, FORBIDDEN), tf.float32)
        return (tf.convert_to_tensor(self.transitions) + forbidden[:-1, :-1],
                tf.convert_to_tensor(self.start) + forbidden[-1, :-1], tf.convert_to_tensor(self.end))

    def log_likelihood(self, emissions: tf.Tensor, tags: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """log P(tags | emissions) [B] over the steps where `mask` holds (gaps closed up: a word tagger over
        sub-tokens scores its first pieces as one sequence)."""
        kept_emissions, lengths = compressed(emissions, mask)
        kept_tags, _ = compressed(tags, mask)
        return sequence_log_likelihood(kept_emissions, kept_tags, lengths, *self.constrained_scores())

    def span_log_scores(self, emissions: tf.Tensor, tags: tf.Tensor, lengths: tf.Tensor):
        """`span_log_scores` under the learnt (BIO2-constrained) scores."""
        return span_log_scores(emissions, tags, lengths, *self.constrained_scores())

    def decode(self, emissions: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """The best well-formed tag ids [B, T] under the learnt transitions."""
        return viterbi(emissions, lengths, self.allowed, full_transitions(*self.constrained_scores()))

    def get_config(self) -> dict:
        return {**super().get_config(), "tags": self.tags}


class CRFLoss(keras.losses.Loss):
    """The mean negative log-likelihood per sentence of a `CRF` layer; steps with sample weight 0 (padding,
    later sub-tokens) are left out of the sequence."""

    def __init__(self, crf: CRF, name: str = "crf_nll") -> None:
        super().__init__(name=name)
        self.crf = crf

    def __call__(self, y_true, y_pred, sample_weight=None):
        mask = tf.ones(tf.shape(y_true), tf.bool) if sample_weight is None else sample_weight > 0
        return -tf.reduce_mean(self.crf.log_likelihood(y_pred, y_true, mask))

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)


def decoder_layer(model: keras.Model) -> CRF | None:
    """The model's CRF layer, if it has one."""
    return next((layer for layer in model.layers if isinstance(layer, CRF)), None)
