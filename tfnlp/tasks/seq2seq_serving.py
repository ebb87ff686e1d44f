"""The seq2seq export: raw texts in, ICD-10 codes decoded in the graph, with scores and attention.

`serve` (the `serving_default` signature) decodes with the configured beam width, reranked by
the category head; `greedy` with width 1. `encode` and `decode_step` expose single steps for
step-by-step callers such as the decode benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from tfnlp.data.icd10 import CATEGORY_LENGTH
from tfnlp.models.decoding import CodeTrie, PrefixPrior, beam_search, select
from tfnlp.models.seq2seq import END
from tfnlp.models.tfidf import TfidfLinear
from tfnlp.tasks.base import TEXT_SPEC, ServingModule
from tfnlp.tasks.seq2seq_inputs import Seq2SeqPreprocessor

DECODE_CHUNK = 128  # texts decoded together after sorting a request by length


@dataclass(frozen=True)
class CategoryFusion:
    """Category models whose beliefs steer beam search as the code's category is written (`PrefixPrior`).

    Attributes:
        head_weight: weight of the model's own category head (0: not used).
        tfidf: the TF-IDF linear category model compiled into the graph, or None.
        tfidf_weight: its weight.
        tfidf_sharpness: its scores times this are softmaxed into probabilities.
    """

    head_weight: float = 0.0
    tfidf: TfidfLinear | None = None
    tfidf_weight: float = 0.0
    tfidf_sharpness: float = 1.0


class Seq2SeqServing(ServingModule):
    """What is exported: raw strings in, named outputs out, all preprocessing in the graph.

    `serve` (the `serving_default` signature) decodes with the configured beam width, `greedy`
    with width 1. `encode` and `decode_step` expose single steps for step-by-step callers
    such as the decode benchmark. `allowed` / `next_node` hold the prefix trie.
    """

    def __init__(self, preprocessor: Seq2SeqPreprocessor, model: keras.Model, trie: CodeTrie, beam_size: int,
                 rerank_weight: float = 0.0, fusion: CategoryFusion = CategoryFusion()) -> None:
        super().__init__(name="seq2seq_serving")
        self.model = model
        self.vectorizer = preprocessor.vectorizer
        self.allowed = tf.Variable(trie.allowed, trainable=False, name="allowed")
        self.next_node = tf.Variable(trie.next_node, trainable=False, name="next_node")
        self.token_strings = tf.Variable(list(preprocessor.alphabet.tokens), trainable=False, name="token_strings")
        self.beam_size = beam_size
        self.rerank_weight = rerank_weight if preprocessor.categories else 0.0
        self.category_table = (tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(preprocessor.categories), tf.range(len(preprocessor.categories))), default_value=-1)
            if self.rerank_weight else None)
        self.decoder_length = tf.Variable(preprocessor.decoder_length, trainable=False, name="decoder_length")
        self._preprocessor = preprocessor
        self._set_fusion(fusion, trie, preprocessor)

    def _set_fusion(self, fusion: CategoryFusion, trie: CodeTrie, preprocessor: Seq2SeqPreprocessor) -> None:
        """Prefix priors of the category models that steer `serve`'s beam (none when the fusion is off)."""
        self.head_weight = fusion.head_weight if preprocessor.categories else 0.0
        self.tfidf_weight = fusion.tfidf_weight if fusion.tfidf is not None else 0.0
        self.tfidf_sharpness = fusion.tfidf_sharpness
        if not (self.head_weight or self.tfidf_weight):
            return
        anchor, prefixes = trie.prefixes(preprocessor.alphabet, CATEGORY_LENGTH)
        self.anchor = tf.Variable(anchor, trainable=False, name="prefix_anchor")
        if self.head_weight:
            self.head_prior = PrefixPrior(prefixes, preprocessor.categories)
        if self.tfidf_weight:
            self.tfidf = fusion.tfidf
            self.tfidf_prior = PrefixPrior(prefixes, fusion.tfidf.classes)

    def predict(self, text: tf.Tensor, beam_size: int) -> dict[str, tf.Tensor]:
        """Decode raw texts [B] into the named outputs of the serving signature.

        Texts are sorted by length and decoded in chunks, each padded only to its own longest
        text, then put back in request order: the encoder's cost follows the words it reads,
        not the longest text of the request (about 1.6x the throughput on a request of 1,000 mixed-length texts).
        """
        input_tokens = self._preprocessor.input_tokens(text)
        order = tf.argsort(tf.reduce_sum(tf.cast(tf.not_equal(input_tokens, ""), tf.int32), axis=1), stable=True)
        sorted_text = tf.gather(text, order)
        width = tf.shape(input_tokens)[1]
        steps = self.decoder_length
        tokens_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None, None])
        log_prob_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None])
        attention_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False,
                                      element_shape=[None, None, None])
        chunks = (tf.shape(text)[0] + DECODE_CHUNK - 1) // DECODE_CHUNK
        for index in tf.range(chunks):
            decoded = self._decode_chunk(sorted_text[index * DECODE_CHUNK:(index + 1) * DECODE_CHUNK], beam_size)
            padding = [[0, 0], [0, 0], [0, width - tf.shape(decoded["attention"])[2]]]
            tokens_ta = tokens_ta.write(index, decoded["tokens"])
            log_prob_ta = log_prob_ta.write(index, decoded["log_prob"])
            attention_ta = attention_ta.write(index, tf.pad(decoded["attention"], padding))
        restore = tf.math.invert_permutation(order)
        # An empty request has no chunk: build its (empty) outputs from known shapes.
        empty = tf.equal(chunks, 0)
        tokens = tf.gather(tf.cond(empty, lambda: tf.zeros([0, steps], tf.int32), tokens_ta.concat), restore)
        log_prob = tf.gather(tf.cond(empty, lambda: tf.zeros([0]), log_prob_ta.concat), restore)
        attention = tf.gather(tf.cond(empty, lambda: tf.zeros([0, steps, width]), attention_ta.concat), restore)
        strings = tf.gather(self.token_strings, tokens)
        # Steps up to and including the first end token are real; the rest is padding.
        real = tf.equal(tf.cumsum(tf.cast(tf.equal(tokens, END), tf.int32), axis=1, exclusive=True), 0)
        return {
            "code": tf.strings.reduce_join(tf.where(tokens > END, strings, ""), axis=1),
            "score": tf.exp(log_prob),
            "attention": attention * tf.cast(real, tf.float32)[:, :, None],
            "input_tokens": input_tokens,
            "output_tokens": tf.where(real, strings, ""),
        }

    def _decode_chunk(self, text: tf.Tensor, beam_size: int) -> dict[str, tf.Tensor]:
        """Beam search (greedy at width 1) on a few texts, reranked by the category head if it has one."""
        fused = beam_size > 1 and (self.head_weight or self.tfidf_weight)
        hypotheses = beam_search(self.model, self._preprocessor.encode_texts(text), self.allowed, self.next_node,
                                 self.decoder_length, beam_size, prior=self._prior(text) if fused else None,
                                 anchor=self.anchor if fused else None)
        scores = hypotheses["search_score"]
        if beam_size > 1 and self.rerank_weight:
            scores += self.rerank_weight * self._category_log_prob(hypotheses)
        return select(hypotheses, scores)

    def _prior(self, text: tf.Tensor):
        """The weighted prefix log-priors of `text`'s category models, for `beam_search`."""

        def prior(encoder_outputs: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
            total = 0.0
            if self.head_weight:
                head = tf.nn.log_softmax(self.model.category_logits(encoder_outputs, mask))
                total += self.head_weight * self.head_prior(head)
            if self.tfidf_weight:
                scores = self.tfidf_sharpness * self.tfidf.decision_function(text)
                total += self.tfidf_weight * self.tfidf_prior(tf.nn.log_softmax(scores))
            return total

        return prior

    def _category_log_prob(self, hypotheses: dict[str, tf.Tensor]) -> tf.Tensor:
        """Category head's log-probability [B, K] of each hypothesis' category."""
        log_probs = tf.nn.log_softmax(self.model.category_logits(hypotheses["encoder_outputs"], hypotheses["mask"]))
        prefixes = tf.strings.reduce_join(
            tf.gather(self.token_strings, hypotheses["tokens"][:, :, :CATEGORY_LENGTH]), axis=-1)
        index = self.category_table.lookup(prefixes)
        known = tf.gather(log_probs, tf.maximum(index, 0), batch_dims=1)
        # A category the head never learned counts as its least likely one.
        return tf.where(index >= 0, known, tf.reduce_min(log_probs, axis=1, keepdims=True))

    @tf.function(input_signature=[TEXT_SPEC])
    def serve(self, text):
        return self.predict(text, self.beam_size)

    @tf.function(input_signature=[TEXT_SPEC])
    def greedy(self, text):
        return self.predict(text, 1)

    @tf.function(input_signature=[TEXT_SPEC])
    def encode(self, text):
        """Encoder outputs, mask, decoder initial state and projected attention keys of raw texts."""
        inputs = self._preprocessor.encode_texts(text)
        outputs, mask, (h, c) = self.model.encoder(inputs["token_ids"], inputs.get("subword_ids"), training=False)
        keys = self.model.decoder.attention.key_projection(outputs)
        return {"encoder_outputs": outputs, "mask": mask, "h": h, "c": c, "projected_keys": keys}

    @tf.function(input_signature=[
        tf.TensorSpec([None, 1], tf.int32, name="previous_token"),
        tf.TensorSpec([None, None], tf.float32, name="h"), tf.TensorSpec([None, None], tf.float32, name="c"),
        tf.TensorSpec([None, None, None], tf.float32, name="encoder_outputs"),
        tf.TensorSpec([None, None], tf.bool, name="mask"),
        tf.TensorSpec([None, None, None], tf.float32, name="projected_keys"),
    ])
    def decode_step(self, previous_token, h, c, encoder_outputs, mask, projected_keys):
        """One decoder step: next-token log-probabilities [B, V], new state and attention [B, T]."""
        logits, weights, (h, c) = self.model.decoder.step(previous_token[:, 0], [h, c], encoder_outputs, mask,
                                                          projected_keys=projected_keys)
        return {"log_probs": tf.nn.log_softmax(logits), "h": h, "c": c, "attention": weights}

    def extra_signatures(self) -> dict:
        return {"greedy": self.greedy}
