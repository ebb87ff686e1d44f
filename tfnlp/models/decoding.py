"""Batched in-graph decoding for `CharSeq2Seq`: beam search, with greedy as beam width 1.

Runs as one TensorFlow graph (`tf.range` loop + `TensorArray`s), so a SavedModel decodes a
whole batch without Python in the loop. An optional prefix trie (`CodeTrie` tables) masks
every step, so that the decoder can only write codes of the classification.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from tfnlp.data.vocabulary import Vocabulary
from tfnlp.models.seq2seq import END, NEG_INF, PAD, START, CharSeq2Seq


@dataclass(frozen=True)
class CodeTrie:
    """A prefix trie of allowed codes as two dense tables the decoder indexes in the graph.

    Attributes:
        allowed: bool [nodes, alphabet size]: which tokens may follow the prefix a node stands for.
        next_node: int32 [nodes, alphabet size]: the node reached by emitting a token.
    """

    allowed: np.ndarray
    next_node: np.ndarray

    @classmethod
    def from_codes(cls, codes: Iterable[str], alphabet: Vocabulary) -> CodeTrie:
        """A trie that lets the decoder write exactly the given codes."""
        index = {character: i for i, character in enumerate(alphabet.tokens)}
        children: list[dict[int, int]] = [{}]
        for code in sorted(set(codes)):
            if any(character not in index for character in code):
                continue
            node = 0
            for character in code:
                token = index[character]
                if token not in children[node]:
                    children[node][token] = len(children)
                    children.append({})
                node = children[node][token]
            children[node][END] = node
        allowed = np.zeros((len(children), len(alphabet)), dtype=bool)
        next_node = np.zeros((len(children), len(alphabet)), dtype=np.int32)
        for node, edges in enumerate(children):
            for token, child in edges.items():
                allowed[node, token] = True
                next_node[node, token] = child
        return cls(allowed, next_node)

    @classmethod
    def unconstrained(cls, alphabet: Vocabulary) -> CodeTrie:
        """One node that allows every character and the end token."""
        allowed = np.ones((1, len(alphabet)), dtype=bool)
        allowed[0, PAD] = allowed[0, START] = False
        return cls(allowed, np.zeros((1, len(alphabet)), dtype=np.int32))

    def longest_code(self) -> int | None:
        """Characters in the trie's longest code; None when a path loops (`unconstrained`), i.e. no bound."""
        level, seen, depth = [0], {0}, 0
        while True:
            children = [int(self.next_node[node, token]) for node in level
                        for token in np.flatnonzero(self.allowed[node]) if token != END]
            if not children:
                return depth
            if any(child in seen for child in children):
                return None
            seen.update(children)
            level, depth = children, depth + 1

    def prefixes(self, alphabet: Vocabulary, depth: int) -> tuple[np.ndarray, list[str]]:
        """The trie's prefixes of at most `depth` characters, and each node's ancestor among them.

        Returns:
            anchor: int32 [nodes]: for each node, the index in `prefixes` of its prefix cut to `depth`
                characters (0, the empty prefix, for the root).
            prefixes: the distinct prefixes of up to `depth` characters, "" first.
        """
        anchor = np.zeros(len(self.allowed), dtype=np.int32)
        prefixes = [""]
        frontier = [(0, "")]
        while frontier:
            node, prefix = frontier.pop()
            for token in np.flatnonzero(self.allowed[node]):
                if token == END:  # the end token loops back to its node
                    continue
                child = int(self.next_node[node, token])
                text = prefix + alphabet.tokens[token]
                if len(text) <= depth:
                    anchor[child] = len(prefixes)
                    prefixes.append(text)
                else:
                    anchor[child] = anchor[node]
                frontier.append((child, text))
        return anchor, prefixes


PRIOR_FLOOR = 1e-6  # the probability a category model gives what none of its classes covers


class PrefixPrior(tf.Module):
    """Log-probability of each code prefix (up to a category) under a distribution over categories.

    A category model's P(category) factorises over the category's characters: the prefix `E1`
    gets the mass of every category starting with it. Added to the beam's score step by step
    as log P(new prefix) - log P(old prefix), it adds log P(category) in all by the time the
    category is written (shallow fusion), so that the beam keeps the categories the model
    believes in instead of finding them too late to rerank.

    Args:
        prefixes: the trie's prefixes (`CodeTrie.prefixes`), "" first.
        classes: the category model's classes.
        floor: the probability given to a prefix none of the classes starts with.
    """

    def __init__(self, prefixes: Sequence[str], classes: Sequence[str], floor: float = PRIOR_FLOOR) -> None:
        super().__init__()
        index = {prefix: i for i, prefix in enumerate(prefixes)}
        pairs = [(index[name[:length]], column) for column, name in enumerate(classes)
                 for length in range(1, len(name) + 1) if name[:length] in index]
        nodes, columns = zip(*pairs, strict=True) if pairs else ((), ())
        self.pair_nodes = tf.constant(np.array(nodes, np.int32))
        self.pair_columns = tf.constant(np.array(columns, np.int32))
        self.size = len(prefixes)
        self.floor = floor

    def __call__(self, log_probs: tf.Tensor) -> tf.Tensor:
        """[B, classes] log-probabilities -> [B, prefixes] log-probabilities (0 for the empty prefix)."""
        # Classes first: gathering whole rows of B values is several times faster than gathering along axis 1, and
        # the segment sum adds rows too.
        class_probs = tf.transpose(tf.exp(log_probs))  # [classes, B]
        mass = tf.math.unsorted_segment_sum(tf.gather(class_probs, self.pair_columns), self.pair_nodes, self.size)
        prior = tf.math.log(tf.maximum(tf.transpose(mass), self.floor))
        return tf.concat([tf.zeros_like(prior[:, :1]), prior[:, 1:]], axis=1)


def _repeat_beams(tensor: tf.Tensor, beam_size: int) -> tf.Tensor:
    """[B, ...] -> [B * K, ...], each row repeated K times in place."""
    return tf.repeat(tensor, beam_size, axis=0)


def rank_within_group(groups: tf.Tensor) -> tf.Tensor:
    """For each position of `groups` [B, N] (int, in score order), how many earlier positions of its row share its
    group: 0 for the best of each group, 1 for the second, ..."""
    batch, size = tf.shape(groups)[0], tf.shape(groups)[1]
    order = tf.argsort(groups, axis=1, stable=True)  # by group; within a group, still in score order
    sorted_groups = tf.gather(groups, order, batch_dims=1)
    starts = tf.concat([tf.ones([batch, 1], tf.bool), sorted_groups[:, 1:] != sorted_groups[:, :-1]], axis=1)
    segment = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1 + tf.range(batch)[:, None] * size
    positions = tf.broadcast_to(tf.range(size)[None, :], [batch, size])
    first = tf.math.unsorted_segment_min(tf.reshape(positions, [-1]), tf.reshape(segment, [-1]), batch * size)
    rank_sorted = positions - tf.gather(first, segment)
    return tf.gather(rank_sorted, tf.argsort(order, axis=1), batch_dims=1)


def beam_search(model: CharSeq2Seq, inputs: dict[str, tf.Tensor], allowed: tf.Tensor, next_node: tf.Tensor,
                steps: int, beam_size: int = 1, prior: Callable | None = None,
                anchor: tf.Tensor | None = None, per_category: int = 0,
                category_step: int = 2) -> dict[str, tf.Tensor]:
    """Decode a batch with beam search (greedy when `beam_size` is 1), keeping every final hypothesis.

    Args:
        model: the trained encoder-decoder.
        inputs: {"token_ids": [B, T], "subword_ids": [B, T, N]} from the preprocessor.
        allowed: bool [nodes, V]: tokens allowed after each trie node.
        next_node: int32 [nodes, V]: trie transitions.
        steps: decoder steps (longest code + 1 for the end token); the last step may only end.
        beam_size: hypotheses kept per text.
        prior: optional `(encoder_outputs, mask) -> [B, P]` log-prior of each prefix (`PrefixPrior`),
            added to the search score as each prefix is written; `anchor` [nodes] maps trie nodes to prefixes.
        per_category: at most this many hypotheses per category once categories are written (0: no limit), so that
            the K final codes span several categories instead of K sub-codes of one; needs `anchor` (the category
            of a node is its anchor).
        category_step: the step that writes a category's last character (the limit applies from there on).

    Returns:
        tokens [B, K, steps] int32 (end token, then padding), log_prob [B, K] (the decoder's alone),
        search_score [B, K] (with the prior; sorted best first),
        attention [B, K, steps, T], and the encoder's outputs [B, T, D] and mask [B, T].
    """
    text_outputs, text_mask, text_state = model.encoder(inputs["token_ids"], inputs.get("subword_ids"),
                                                       training=False)
    batch = tf.shape(text_outputs)[0]
    vocab = tf.shape(allowed)[1]
    # The keys are projected once per text, and a text's beams attend to them together (`Seq2SeqDecoder.step`);
    # the first step runs once per text too, since every beam of a text starts alike.
    text_keys = model.decoder.attention.key_projection(text_outputs)
    first_logits, first_weights, first_state = model.decoder.step(tf.fill([batch], START), text_state, text_outputs,
                                                                  text_mask, projected_keys=text_keys)
    first_logits, first_weights = _repeat_beams(first_logits, beam_size), _repeat_beams(first_weights, beam_size)
    first_state = [_repeat_beams(part, beam_size) for part in first_state]
    state = first_state

    # Only the first beam of each text is live at the start, so the K beams do not repeat each other.
    first_beam = tf.one_hot(0, beam_size, on_value=0.0, off_value=NEG_INF)
    log_prob = tf.reshape(tf.tile(first_beam[None, :], [batch, 1]), [-1])  # [B*K]
    node = tf.zeros([batch * beam_size], tf.int32)
    finished = tf.zeros([batch * beam_size], tf.bool)
    previous = tf.fill([batch * beam_size], START)
    beam_offsets = (tf.range(batch) * beam_size)[:, None]  # [B, 1]
    decoder_log_prob = tf.zeros([batch * beam_size])
    prefix_prior = None
    if prior is not None:
        prefix_prior = prior(text_outputs, text_mask)  # [B, P]
    pad_only = tf.one_hot(PAD, vocab, on_value=0.0, off_value=NEG_INF)  # a finished beam only pads, at no cost
    end_only = tf.one_hot(END, vocab, on_value=True, off_value=False)

    tokens_ta = tf.TensorArray(tf.int32, size=steps)
    parents_ta = tf.TensorArray(tf.int32, size=steps)
    attention_ta = tf.TensorArray(tf.float32, size=steps)
    for step in tf.range(steps):
        if step == 0:
            logits, weights, state = first_logits, first_weights, first_state
        else:
            logits, weights, state = model.decoder.step(previous, state, text_outputs, text_mask,
                                                        projected_keys=text_keys)
        step_log_prob = tf.nn.log_softmax(logits)  # [B*K, V]
        decoder_step = step_log_prob
        if prefix_prior is not None:
            # Each text's prior row, indexed by its beams' prefixes: old [B, K], new [B, K * V].
            old = tf.gather(prefix_prior, tf.reshape(tf.gather(anchor, node), [batch, beam_size]), batch_dims=1)
            new_nodes = tf.gather(anchor, tf.gather(next_node, node))  # [B*K, V]
            new = tf.gather(prefix_prior, tf.reshape(new_nodes, [batch, -1]), batch_dims=1)
            step_log_prob += tf.reshape(new, [-1, vocab]) - tf.reshape(old, [-1, 1])
        step_allowed = tf.gather(allowed, node)
        step_allowed = tf.logical_and(step_allowed, tf.logical_or(step < steps - 1, end_only)[None, :])
        step_log_prob = tf.where(step_allowed, step_log_prob, NEG_INF)
        step_log_prob = tf.where(finished[:, None], pad_only[None, :], step_log_prob)

        if 0 < per_category < beam_size:
            best, index = _best_within_category_limit(log_prob[:, None] + step_log_prob, node, finished, next_node,
                                                      anchor, beam_offsets, beam_size, per_category,
                                                      step >= category_step)
        else:
            candidates = tf.reshape(log_prob[:, None] + step_log_prob, [batch, beam_size * vocab])
            best, index = tf.math.top_k(candidates, k=beam_size)  # [B, K], sorted best first
        parent = tf.reshape(index // vocab + beam_offsets, [-1])  # rows of [B*K]
        token = tf.reshape(index % vocab, [-1])

        state = [tf.gather(part, parent) for part in state]
        decoder_step = tf.where(finished[:, None], 0.0, decoder_step)
        decoder_log_prob = tf.gather(decoder_log_prob, parent) + tf.gather_nd(
            tf.gather(decoder_step, parent), tf.stack([tf.range(batch * beam_size), token], axis=1))
        node = _reached_node(node, finished, next_node, parent, token)
        finished = tf.logical_or(tf.gather(finished, parent), tf.equal(token, END))
        log_prob = tf.reshape(best, [-1])
        previous = token
        tokens_ta = tokens_ta.write(step, tf.reshape(token, [batch, beam_size]))
        parents_ta = parents_ta.write(step, tf.reshape(parent, [batch, beam_size]) - beam_offsets)
        attention_ta = attention_ta.write(step, tf.reshape(tf.gather(weights, parent),
                                                           [batch, beam_size, -1]))
    tokens, attention = _backtrack(tokens_ta.stack(), parents_ta.stack(), attention_ta.stack(), steps)
    return {"tokens": tokens, "log_prob": tf.reshape(decoder_log_prob, [batch, beam_size]),
            "search_score": tf.reshape(log_prob, [batch, beam_size]), "attention": attention,
            "encoder_outputs": text_outputs, "mask": text_mask}


def _best_within_category_limit(scores: tf.Tensor, node: tf.Tensor, finished: tf.Tensor, next_node: tf.Tensor,
                                anchor: tf.Tensor, beam_offsets: tf.Tensor, beam_size: int, limit: int,
                                limit_applies: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The K best candidates of each text once at most `limit` (< K) are kept per category: their scores [B, K] and
    flat `beam * vocab + token` indices [B, K], best first.

    Args:
        scores: [B*K, V] score of every extension of every beam.
        limit_applies: bool scalar, false before the categories are written (then the K best, whatever their
            category).

    Only a beam's own K best extensions are looked at, K * K per text instead of K * V (the same result, at a
    fraction of the sorting): any other extension has K better ones from its own beam. Before the category step
    those outrank it; at the category step each candidate reaches a category of its own (the beams differ in their
    prefix), so those K all stay and outrank it; after it a beam's extensions all share its category, so those K
    put it past the limit. A candidate's category is the anchor of the node it reaches (`_reached_node`).
    """
    batch, vocab = tf.shape(beam_offsets)[0], tf.shape(scores)[1]
    per_beam = min(beam_size, scores.shape[1] or beam_size)
    beam_best, beam_token = tf.math.top_k(scores, k=per_beam)  # [B*K, k]
    beam_in_text = tf.range(batch * beam_size) % beam_size
    flat_index = tf.reshape(beam_token + beam_in_text[:, None] * vocab, [batch, beam_size * per_beam])
    candidates, position = tf.math.top_k(tf.reshape(beam_best, [batch, beam_size * per_beam]),
                                         k=beam_size * per_beam)
    order = tf.gather(flat_index, position, batch_dims=1)  # best first
    reached = _reached_node(node, finished, next_node, order // vocab + beam_offsets, order % vocab)
    kept = tf.logical_or(rank_within_group(tf.gather(anchor, reached)) < limit, tf.logical_not(limit_applies))
    best, chosen = tf.math.top_k(tf.where(kept, candidates, NEG_INF), k=beam_size)
    return best, tf.gather(order, chosen, batch_dims=1)


def _reached_node(node: tf.Tensor, finished: tf.Tensor, next_node: tf.Tensor, parent: tf.Tensor,
                  token: tf.Tensor) -> tf.Tensor:
    """The trie node each (parent beam, token) leads to, any shape; a finished beam stays on its code's node (its
    padding is no edge of the trie)."""
    parent_node = tf.gather(node, parent)
    reached = tf.gather_nd(next_node, tf.stack([parent_node, token], axis=-1))
    return tf.where(tf.gather(finished, parent), parent_node, reached)


def select(hypotheses: dict[str, tf.Tensor], scores: tf.Tensor) -> dict[str, tf.Tensor]:
    """The highest-scoring hypothesis of each text: tokens [B, S], log_prob [B], attention [B, S, T].

    Args:
        hypotheses: the output of `beam_search`.
        scores: [B, K] score of each hypothesis (its log_prob, or a reranked score).
    """
    chosen = tf.argmax(scores, axis=1, output_type=tf.int32)
    return {name: tf.gather(hypotheses[name], chosen, batch_dims=1) for name in ("tokens", "log_prob", "attention")}


def _backtrack(tokens, parents, attention, steps):
    """Follow parent pointers back from every final beam.

    Args:
        tokens, parents: [S, B, K] per-step tokens and parent beam of each beam.
        attention: [S, B, K, T].

    Returns:
        tokens [B, K, S] and attention [B, K, S, T] of each final hypothesis.
    """
    batch, beam_size = tf.shape(tokens)[1], tf.shape(tokens)[2]
    rows = tf.tile(tf.range(batch)[:, None], [1, beam_size])
    beam = tf.tile(tf.range(beam_size)[None, :], [batch, 1])
    path_tokens = tf.TensorArray(tf.int32, size=steps)
    path_attention = tf.TensorArray(tf.float32, size=steps)
    for step in tf.range(steps - 1, -1, -1):
        where = tf.stack([rows, beam], axis=-1)  # [B, K, 2]
        path_tokens = path_tokens.write(step, tf.gather_nd(tokens[step], where))
        path_attention = path_attention.write(step, tf.gather_nd(attention[step], where))
        beam = tf.gather_nd(parents[step], where)
    return tf.transpose(path_tokens.stack(), [1, 2, 0]), tf.transpose(path_attention.stack(), [1, 2, 0, 3])
