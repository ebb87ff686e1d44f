"""Batched in-graph decoding for `CharSeq2Seq`: beam search, with greedy as beam width 1.

Runs as one TensorFlow graph (`tf.range` loop + `TensorArray`s), so a SavedModel decodes a
whole batch without Python in the loop. An optional prefix trie (`CodeTrie` tables) masks
every step, so that the decoder can only write codes of the classification.
"""

from __future__ import annotations

import tensorflow as tf

from tfnlp.models.seq2seq import END, NEG_INF, PAD, START, CharSeq2Seq


def _repeat_beams(tensor: tf.Tensor, beam_size: int) -> tf.Tensor:
    """[B, ...] -> [B * K, ...], each row repeated K times in place."""
    return tf.repeat(tensor, beam_size, axis=0)


def beam_decode(model: CharSeq2Seq, inputs: dict[str, tf.Tensor], allowed: tf.Tensor, next_node: tf.Tensor,
                steps: int, beam_size: int = 1) -> dict[str, tf.Tensor]:
    """Decode a batch with beam search (greedy when `beam_size` is 1).

    Args:
        model: the trained encoder-decoder.
        inputs: {"token_ids": [B, T], "subword_ids": [B, T, N]} from the preprocessor.
        allowed: bool [nodes, V]: tokens allowed after each trie node.
        next_node: int32 [nodes, V]: trie transitions.
        steps: decoder steps (longest code + 1 for the end token); the last step may only end.
        beam_size: hypotheses kept per text.

    Returns:
        tokens [B, steps] int32 (end token, then padding), log_prob [B], attention [B, steps, T].
    """
    encoder_outputs, mask, state = model.encoder(inputs["token_ids"], inputs.get("subword_ids"), training=False)
    batch = tf.shape(encoder_outputs)[0]
    vocab = tf.shape(allowed)[1]
    encoder_outputs = _repeat_beams(encoder_outputs, beam_size)
    mask = _repeat_beams(mask, beam_size)
    state = [_repeat_beams(part, beam_size) for part in state]
    projected_keys = model.decoder.attention.key_projection(encoder_outputs)

    # Only the first beam of each text is live at the start, so the K beams do not repeat each other.
    first_beam = tf.one_hot(0, beam_size, on_value=0.0, off_value=NEG_INF)
    log_prob = tf.reshape(tf.tile(first_beam[None, :], [batch, 1]), [-1])  # [B*K]
    node = tf.zeros([batch * beam_size], tf.int32)
    finished = tf.zeros([batch * beam_size], tf.bool)
    previous = tf.fill([batch * beam_size, 1], START)
    beam_offsets = (tf.range(batch) * beam_size)[:, None]  # [B, 1]
    pad_only = tf.one_hot(PAD, vocab, on_value=0.0, off_value=NEG_INF)  # a finished beam only pads, at no cost
    end_only = tf.one_hot(END, vocab, on_value=True, off_value=False)

    tokens_ta = tf.TensorArray(tf.int32, size=steps)
    parents_ta = tf.TensorArray(tf.int32, size=steps)
    attention_ta = tf.TensorArray(tf.float32, size=steps)
    for step in tf.range(steps):
        logits, weights, state = model.decoder(previous, state, encoder_outputs, mask,
                                               projected_keys=projected_keys, training=False)
        step_log_prob = tf.nn.log_softmax(logits[:, 0, :])  # [B*K, V]
        step_allowed = tf.gather(allowed, node)
        step_allowed = tf.logical_and(step_allowed, tf.logical_or(step < steps - 1, end_only)[None, :])
        step_log_prob = tf.where(step_allowed, step_log_prob, NEG_INF)
        step_log_prob = tf.where(finished[:, None], pad_only[None, :], step_log_prob)

        candidates = tf.reshape(log_prob[:, None] + step_log_prob, [batch, beam_size * vocab])
        best, index = tf.math.top_k(candidates, k=beam_size)  # [B, K], sorted best first
        parent = tf.reshape(index // vocab + beam_offsets, [-1])  # rows of [B*K]
        token = tf.reshape(index % vocab, [-1])

        state = [tf.gather(part, parent) for part in state]
        node = tf.gather_nd(next_node, tf.stack([tf.gather(node, parent), token], axis=1))
        finished = tf.logical_or(tf.gather(finished, parent), tf.equal(token, END))
        log_prob = tf.reshape(best, [-1])
        previous = token[:, None]
        tokens_ta = tokens_ta.write(step, tf.reshape(token, [batch, beam_size]))
        parents_ta = parents_ta.write(step, tf.reshape(parent, [batch, beam_size]) - beam_offsets)
        attention_ta = attention_ta.write(step, tf.reshape(tf.gather(weights[:, 0, :], parent),
                                                           [batch, beam_size, -1]))
    return _backtrack(tokens_ta.stack(), parents_ta.stack(), attention_ta.stack(),
                      tf.reshape(log_prob, [batch, beam_size]), steps)


def _backtrack(tokens, parents, attention, log_prob, steps):
    """Follow parent pointers back from the best final beam (index 0: top_k sorts).

    tokens, parents: [S, B, K]; attention: [S, B, K, T]; log_prob: [B, K].
    """
    batch = tf.shape(log_prob)[0]
    rows = tf.range(batch)
    beam = tf.zeros([batch], tf.int32)
    best_tokens = tf.TensorArray(tf.int32, size=steps)
    best_attention = tf.TensorArray(tf.float32, size=steps)
    for step in tf.range(steps - 1, -1, -1):
        where = tf.stack([rows, beam], axis=1)
        best_tokens = best_tokens.write(step, tf.gather_nd(tokens[step], where))
        best_attention = best_attention.write(step, tf.gather_nd(attention[step], where))
        beam = tf.gather_nd(parents[step], where)
    return {
        "tokens": tf.transpose(best_tokens.stack()),                   # [B, S]
        "log_prob": log_prob[:, 0],                                     # [B]
        "attention": tf.transpose(best_attention.stack(), [1, 0, 2]),  # [B, S, T]
    }
