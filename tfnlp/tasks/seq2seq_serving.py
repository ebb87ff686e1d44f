"""The seq2seq export: raw texts in, ICD-10 codes decoded in the graph, ranked, labelled and with a calibrated
confidence, with scores and attention.

`serve` (the `serving_default` signature) decodes with the configured beam width, reranked by
the category head; `greedy` with width 1. Both answer what a person reads: `top_codes`,
`display_code`, `top_labels` and `top_confidences` [B, k] (k = `model.top_k`, 1 for `greedy`),
`code`, `label`, `confidence`, `category_confidence` and `needs_review` [B] for the best code. A confidence is the
hypothesis' final (fused) score turned into a probability by a softmax over the beam with a
temperature and a "none of these" logit fitted on the validation split (`RankCalibration`), or
by an isotonic map. `category_confidence` is how likely the best code's category is right: the summed confidences of
the listed codes in it, combined (beam search with category models) with the category head's and the TF-IDF model's
probabilities of that category by a logistic regression fitted on the validation split (on every listed category,
right or wrong). `needs_review` is true
when the best code's confidence, or its category's (whichever answered more validation texts at the category
precision asked), is below the threshold chosen on validation. A text with no letter or
digit gets no code (`code` and `top_codes` empty, confidences 0) and `needs_review`.
`encode` and `decode_step` expose single steps for step-by-step callers such as the decode
benchmark.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfnlp.calibration import RankCalibration
from tfnlp.data.icd10 import CATEGORY_LENGTH
from tfnlp.models.decoding import CodeTrie, PrefixPrior, beam_search, select
from tfnlp.models.seq2seq import END, NEG_INF
from tfnlp.models.tfidf import TfidfLinear
from tfnlp.tasks import ranking
from tfnlp.tasks.base import TEXT_SPEC, ServingModule
from tfnlp.tasks.seq2seq_inputs import Seq2SeqPreprocessor

DECODE_CHUNK = 128  # texts decoded together after sorting a request by length
# The category models whose probability of a ranked code's category is evidence beside the beam's own
# (`category_evidence`); a model the export lacks gives 0.5, whose log-odds are 0.
EVIDENCE_MODELS = ("head", "tfidf")
NO_EVIDENCE = 0.5


class RankedScores(NamedTuple):
    """What calibration is fitted on: the ranked codes [N][K], their final scores [N, K] (before calibration) and
    the category models' probabilities of each ranked code's category [N, K, len(EVIDENCE_MODELS)]."""

    codes: list[list[str]]
    scores: np.ndarray
    evidence: np.ndarray


@dataclass(frozen=True)
class Answers:
    """What the export's ranked answers need besides the model.

    Attributes:
        top_k: codes ranked by `serve` (`model.top_k`).
        labels: each code's label in the code set (the parent category's where a code has none).
        calibration: `beam` and `greedy` -> `RankCalibration` (fitted on validation after training).
    """

    top_k: int = 5
    labels: dict[str, str] = field(default_factory=dict)
    calibration: dict[str, RankCalibration] = field(default_factory=dict)


def display_codes(codes: tf.Tensor) -> tf.Tensor:
    """ICD-10 codes in their dotted form: `I500` -> `I50.0`; categories and empty strings stay as they are."""
    length = tf.strings.length(codes)
    rest = tf.strings.substr(codes, tf.minimum(length, 3), tf.maximum(length - 3, 0))  # past the end: an error
    dotted = tf.strings.join([tf.strings.substr(codes, 0, 3), ".", rest])
    return tf.where(length > 3, dotted, codes)


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


def each_category_confidence(codes: tf.Tensor, confidence: tf.Tensor) -> tf.Tensor:
    """[B, k]: how likely each ranked code's category is right: the summed confidences of the ranked codes ([B, k],
    best first, with their confidences [B, k]) in that category (0 for no code). The codes are distinct answers of
    which at most one is right, so their confidences add up; a coder's second choice is often a sibling of its
    first."""
    categories = tf.strings.substr(codes, 0, CATEGORY_LENGTH)
    listed = tf.not_equal(codes, "")
    same = tf.equal(categories[:, :, None], categories[:, None, :]) & listed[:, None, :]
    return tf.where(listed, tf.reduce_sum(tf.where(same, confidence[:, None, :], 0.0), axis=2), 0.0)


def category_confidences(codes: tf.Tensor, confidence: tf.Tensor) -> tf.Tensor:
    """[B]: how likely the best code's category is right (`each_category_confidence` of the best code)."""
    return each_category_confidence(codes, confidence)[:, 0]


def class_table(classes: Sequence[str]) -> tf.lookup.StaticHashTable:
    """Class name -> its column (-1: unknown)."""
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(list(classes), tf.string), tf.range(len(classes))), default_value=-1)


def probability_of(log_probs: tf.Tensor, table: tf.lookup.StaticHashTable, names: tf.Tensor) -> tf.Tensor:
    """[B] or [B, K]: the probability of each class `names` ([B] or [B, K]) under its text's `log_probs`
    [B, classes]; 0 for a class the model does not know."""
    index = table.lookup(names)
    return tf.where(index >= 0, tf.exp(tf.gather(log_probs, tf.maximum(index, 0), batch_dims=1)), 0.0)


def head_log_probs(model: keras.Model, encoder_outputs: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """The coder's category head: log-probabilities [B, categories] of its encoded texts."""
    return tf.nn.log_softmax(model.category_logits(encoder_outputs, mask))


def tfidf_log_probs(tfidf: TfidfLinear, sharpness: float, text: tf.Tensor) -> tf.Tensor:
    """The TF-IDF linear category model: log-probabilities [B, classes] of raw texts, its scores times `sharpness`
    softmaxed."""
    return tf.nn.log_softmax(sharpness * tfidf.decision_function(text))


def _pad_steps(hypotheses: dict[str, tf.Tensor], steps: tf.Tensor) -> dict[str, tf.Tensor]:
    """`beam_search`'s tokens [B, K, S] and attention [B, K, S, T] padded to `steps` (the export's decoder length):
    the outputs keep one shape whatever the steps decoded."""
    missing = steps - tf.shape(hypotheses["tokens"])[2]
    return {**hypotheses, "tokens": tf.pad(hypotheses["tokens"], [[0, 0], [0, 0], [0, missing]]),
            "attention": tf.pad(hypotheses["attention"], [[0, 0], [0, 0], [0, missing], [0, 0]])}


class Seq2SeqServing(ServingModule):
    """What is exported: raw strings in, named outputs out, all preprocessing in the graph.

    `serve` (the `serving_default` signature) decodes with the configured beam width, `greedy`
    with width 1. `encode` and `decode_step` expose single steps for step-by-step callers
    such as the decode benchmark. `allowed` / `next_node` hold the prefix trie.
    """

    def __init__(self, preprocessor: Seq2SeqPreprocessor, model: keras.Model, trie: CodeTrie, beam_size: int,
                 rerank_weight: float = 0.0, fusion: CategoryFusion = CategoryFusion(), answers: Answers | None = None,
                 per_category: int = 0) -> None:
        super().__init__(name="seq2seq_serving")
        answers = answers or Answers()
        self.top_k = answers.top_k
        self.code_labels = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(answers.labels) or [""]), tf.constant(list(answers.labels.values()) or [""])), "")
        self.calibration = {name: ranking.calibration_variables(name, answers.calibration.get(name,
                                                                                              ranking.UNCALIBRATED))
                            for name in ("beam", "greedy")}
        self.model = model
        self.vectorizer = preprocessor.vectorizer
        self.allowed = tf.Variable(trie.allowed, trainable=False, name="allowed")
        self.next_node = tf.Variable(trie.next_node, trainable=False, name="next_node")
        self.token_strings = tf.Variable(list(preprocessor.alphabet.tokens), trainable=False, name="token_strings")
        self.beam_size = beam_size
        self.rerank_weight = rerank_weight if preprocessor.categories else 0.0
        # The category head's classes: for the rerank and as evidence of the best code's category.
        has_head = bool(preprocessor.categories) and getattr(model, "category_head", None) is not None
        self.category_table = class_table(preprocessor.categories) if has_head else None
        self.decoder_length = tf.Variable(preprocessor.decoder_length, trainable=False, name="decoder_length")
        # The trie's longest code (plus the end token) bounds the steps worth decoding: the code set's codes are
        # often shorter than `model.max_output_length` allows (4 characters against 6 for cim10: 5 steps of 7).
        longest = trie.longest_code()
        self.decode_steps = preprocessor.decoder_length if longest is None else min(preprocessor.decoder_length,
                                                                                     longest + 1)
        self._preprocessor = preprocessor
        # ranked_scores' traced function per beam width, in a plain object: a tf.Module would track a dict of
        # functions and save them into the export.
        self._ranked_functions = types.SimpleNamespace(by_width={})
        self.per_category = per_category
        self._set_fusion(fusion, trie, preprocessor)

    def _set_fusion(self, fusion: CategoryFusion, trie: CodeTrie, preprocessor: Seq2SeqPreprocessor) -> None:
        """Prefix priors of the category models that steer `serve`'s beam (none when the fusion is off)."""
        self.head_weight = fusion.head_weight if preprocessor.categories else 0.0
        self.tfidf_weight = fusion.tfidf_weight if fusion.tfidf is not None else 0.0
        self.tfidf_sharpness = fusion.tfidf_sharpness
        if not (self.head_weight or self.tfidf_weight or self.per_category):
            return
        anchor, prefixes = trie.prefixes(preprocessor.alphabet, CATEGORY_LENGTH)
        self.anchor = tf.Variable(anchor, trainable=False, name="prefix_anchor")
        if self.head_weight:
            self.head_prior = PrefixPrior(prefixes, preprocessor.categories)
        if self.tfidf_weight:
            self.tfidf = fusion.tfidf
            self.tfidf_prior = PrefixPrior(prefixes, fusion.tfidf.classes)
            self.tfidf_table = class_table(fusion.tfidf.classes)

    def set_calibration(self, name: str, calibration: RankCalibration) -> None:
        """Fold a fitted calibration into signature `name`'s (`beam` or `greedy`) variables."""
        ranking.assign(self.calibration[name], calibration)

    def ranked_scores(self, texts: Sequence[str], beam_size: int, batch_size: int = 256) -> RankedScores:
        """The ranked codes [N, K] of `texts`, their final scores [N, K] (before calibration) and the category
        models' evidence: what calibration is fitted on."""
        # One trace for every batch size (the last batch is smaller) and every call at this width (calibration and
        # the bench ask twice): no retracing, and no TensorFlow warning of it.
        function = self._ranked_functions.by_width.get(beam_size)
        if function is None:
            function = self._ranked_functions.by_width[beam_size] = tf.function(
                lambda text: self.predict(text, beam_size, beam_size, "raw"), input_signature=[TEXT_SPEC])
        codes, scores, evidence = [], [], []
        for start in range(0, len(texts), batch_size):
            outputs = function(tf.constant(list(texts[start:start + batch_size]), dtype=tf.string))
            codes += [[code.decode("utf-8") for code in row] for row in outputs["top_codes"].numpy()]
            scores.append(outputs["top_scores"].numpy())
            evidence.append(outputs["category_evidence"].numpy())
        if not scores:
            return RankedScores([], np.zeros((0, beam_size), np.float32),
                                np.zeros((0, beam_size, len(EVIDENCE_MODELS))))
        return RankedScores(codes, np.concatenate(scores), np.concatenate(evidence))

    def predict(self, text: tf.Tensor, beam_size: int, top_k: int, calibration: str) -> dict[str, tf.Tensor]:
        """Decode raw texts [B] into the named outputs of the serving signature: the best code and the `top_k` best,
        with confidences from `calibration` (`beam`, `greedy`, or `raw`: the final scores themselves, as
        `top_scores`).

        Texts are sorted by length and decoded in chunks, each padded only to its own longest
        text, then put back in request order: the encoder's cost follows the words it reads,
        not the longest text of the request (about 1.6x the throughput on a request of 1,000 mixed-length texts).
        """
        input_tokens = self._preprocessor.input_tokens(text)
        order = tf.argsort(tf.reduce_sum(tf.cast(tf.not_equal(input_tokens, ""), tf.int32), axis=1), stable=True)
        sorted_text = tf.gather(text, order)
        width = tf.shape(input_tokens)[1]
        steps = self.decoder_length
        top_k = min(top_k, beam_size)
        tokens_ta = tf.TensorArray(tf.int32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None, None])
        ranked_ta = tf.TensorArray(tf.string, size=0, dynamic_size=True, infer_shape=False, element_shape=[None, None])
        scores_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False,
                                   element_shape=[None, None])
        log_prob_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None])
        evidence_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False,
                                     element_shape=[None, None, len(EVIDENCE_MODELS)])
        attention_ta = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False,
                                      element_shape=[None, None, None])
        chunks = (tf.shape(text)[0] + DECODE_CHUNK - 1) // DECODE_CHUNK
        for index in tf.range(chunks):
            decoded = self._decode_chunk(sorted_text[index * DECODE_CHUNK:(index + 1) * DECODE_CHUNK], beam_size)
            padding = [[0, 0], [0, 0], [0, width - tf.shape(decoded["attention"])[2]]]
            tokens_ta = tokens_ta.write(index, decoded["tokens"])
            log_prob_ta = log_prob_ta.write(index, decoded["log_prob"])
            attention_ta = attention_ta.write(index, tf.pad(decoded["attention"], padding))
            ranked_ta = ranked_ta.write(index, decoded["ranked_codes"][:, :top_k])
            scores_ta = scores_ta.write(index, decoded["ranked_scores"])
            evidence_ta = evidence_ta.write(index, decoded["category_evidence"])
        restore = tf.math.invert_permutation(order)
        # An empty request has no chunk: build its (empty) outputs from known shapes.
        empty = tf.equal(chunks, 0)
        tokens = tf.gather(tf.cond(empty, lambda: tf.zeros([0, steps], tf.int32), tokens_ta.concat), restore)
        log_prob = tf.gather(tf.cond(empty, lambda: tf.zeros([0]), log_prob_ta.concat), restore)
        attention = tf.gather(tf.cond(empty, lambda: tf.zeros([0, steps, width]), attention_ta.concat), restore)
        ranked = tf.gather(tf.cond(empty, lambda: tf.zeros([0, top_k], tf.string), ranked_ta.concat), restore)
        scores = tf.gather(tf.cond(empty, lambda: tf.zeros([0, beam_size]), scores_ta.concat), restore)
        evidence = tf.gather(tf.cond(empty, lambda: tf.zeros([0, beam_size, len(EVIDENCE_MODELS)]),
                                     evidence_ta.concat), restore)
        strings = tf.gather(self.token_strings, tokens)
        # Steps up to and including the first end token are real; the rest is padding.
        real = tf.equal(tf.cumsum(tf.cast(tf.equal(tokens, END), tf.int32), axis=1, exclusive=True), 0)
        answered = ranking.has_words(text)
        outputs = {
            "code": tf.where(answered, tf.strings.reduce_join(tf.where(tokens > END, strings, ""), axis=1), ""),
            "score": tf.where(answered, tf.exp(log_prob), 0.0),
            "attention": attention * tf.cast(real, tf.float32)[:, :, None],
            "input_tokens": input_tokens,
            "output_tokens": tf.where(real & answered[:, None], strings, ""),
        }
        if calibration == "raw":
            return {**outputs, "top_codes": ranked, "top_scores": scores, "category_evidence": evidence}
        return {**outputs, **self._ranked_answer(ranked, scores, evidence, self.calibration[calibration], top_k,
                                                 answered)}

    def _ranked_answer(self, ranked: tf.Tensor, scores: tf.Tensor, evidence: tf.Tensor,
                       calibration: dict[str, tf.Variable], top_k: int, answered: tf.Tensor) -> dict[str, tf.Tensor]:
        """What a person reads: the top codes with their labels and calibrated confidences, the review flag."""
        ranked, confidence = ranking.withheld(ranked, ranking.confidences(scores, calibration)[:, :top_k], answered)
        confidence = tf.where(tf.equal(ranked, ""), 0.0, confidence)  # a beam that found no code
        labels = self.code_labels.lookup(ranked)
        in_category = ranking.combined(tf.concat([category_confidences(ranked, confidence)[:, None],
                                                  evidence[:, 0]], 1), calibration)
        in_category = tf.where(tf.equal(ranked[:, 0], ""), 0.0, in_category)
        review_by = tf.where(calibration["review_by_category"], in_category, confidence[:, 0])
        return {"top_codes": ranked, "display_code": display_codes(ranked), "top_labels": labels,
                "top_confidences": confidence, "label": labels[:, 0], "confidence": confidence[:, 0],
                "category_confidence": in_category, "needs_review": ranking.needs_review(review_by, calibration,
                                                                                         answered)}

    def _decode_chunk(self, text: tf.Tensor, beam_size: int) -> dict[str, tf.Tensor]:
        """Beam search (greedy at width 1) on a few texts, reranked by the category head if it has one: the best
        hypothesis, and every hypothesis' code and final score, best first (`ranked_codes`, `ranked_scores`)."""
        fused = beam_size > 1 and (self.head_weight or self.tfidf_weight)
        # Once per text: the beam's prior and the evidence of its best code's category both read it.
        tfidf = (tfidf_log_probs(self.tfidf, self.tfidf_sharpness, text) if beam_size > 1 and self.tfidf_weight
                 else None)
        head: dict[str, tf.Tensor] = {}  # the category head's log-probabilities, once: prior, rerank and evidence
        hypotheses = beam_search(self.model, self._preprocessor.encode_texts(text), self.allowed, self.next_node,
                                 self.decode_steps, beam_size, prior=self._prior(tfidf, head) if fused else None,
                                 anchor=self.anchor if fused or self.per_category else None,
                                 per_category=self.per_category, category_step=CATEGORY_LENGTH - 1)
        hypotheses = _pad_steps(hypotheses, self.decoder_length)
        scores = hypotheses["search_score"]
        if beam_size > 1 and self.rerank_weight:
            scores += self.rerank_weight * self._category_log_prob(hypotheses, head)
        order = tf.argsort(scores, axis=1, direction="DESCENDING", stable=True)
        tokens = tf.gather(hypotheses["tokens"], order, batch_dims=1)
        strings = tf.gather(self.token_strings, tokens)
        codes = tf.strings.reduce_join(tf.where(tokens > END, strings, ""), axis=-1)
        ranked_scores = tf.gather(scores, order, batch_dims=1)
        # A beam that never wrote a whole code (fewer allowed codes than beams) scores about NEG_INF: no code.
        codes = tf.where(ranked_scores > NEG_INF / 2, codes, "")
        evidence = (self._category_evidence(codes, hypotheses, tfidf, head) if beam_size > 1
                    else tf.fill(tf.concat([tf.shape(codes), [len(EVIDENCE_MODELS)]], 0), NO_EVIDENCE))
        return {**select(hypotheses, scores), "ranked_codes": codes, "ranked_scores": ranked_scores,
                "category_evidence": evidence}

    def _category_evidence(self, codes: tf.Tensor, hypotheses: dict[str, tf.Tensor], tfidf,
                           head: dict[str, tf.Tensor]) -> tf.Tensor:
        """[B, K, len(EVIDENCE_MODELS)]: the category head's and the TF-IDF model's probabilities of the category of
        each ranked code `codes` [B, K] (`NO_EVIDENCE` for a model the export lacks; 0 for no code). The answer reads
        its best code's; calibration is fitted on every listed category's."""
        categories = tf.strings.substr(codes, 0, CATEGORY_LENGTH)
        no_evidence = tf.fill(tf.shape(codes), NO_EVIDENCE)
        by_head = no_evidence if self.category_table is None else probability_of(
            self._head_log_probs(hypotheses["encoder_outputs"], hypotheses["mask"], head), self.category_table,
            categories)
        by_tfidf = no_evidence if tfidf is None else probability_of(tfidf, self.tfidf_table, categories)
        return tf.stack([by_head, by_tfidf], axis=2)

    def _head_log_probs(self, encoder_outputs: tf.Tensor, mask: tf.Tensor, head: dict[str, tf.Tensor]) -> tf.Tensor:
        """`head_log_probs` of a chunk's texts, computed once and kept in `head` (the beam's prior, the rerank and
        the evidence read the same encoder outputs)."""
        if "log_probs" not in head:
            head["log_probs"] = head_log_probs(self.model, encoder_outputs, mask)
        return head["log_probs"]

    def _prior(self, tfidf: tf.Tensor | None, head: dict[str, tf.Tensor]):
        """The weighted prefix log-priors of the category models, for `beam_search` (`tfidf`: the TF-IDF model's
        log-probabilities of the texts' categories; `head`: where the head's are kept for the chunk)."""

        def prior(encoder_outputs: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
            total = 0.0
            if self.head_weight:
                total += self.head_weight * self.head_prior(self._head_log_probs(encoder_outputs, mask, head))
            if self.tfidf_weight:
                total += self.tfidf_weight * self.tfidf_prior(tfidf)
            return total

        return prior

    def _category_log_prob(self, hypotheses: dict[str, tf.Tensor], head: dict[str, tf.Tensor]) -> tf.Tensor:
        """Category head's log-probability [B, K] of each hypothesis' category."""
        log_probs = self._head_log_probs(hypotheses["encoder_outputs"], hypotheses["mask"], head)
        prefixes = tf.strings.reduce_join(
            tf.gather(self.token_strings, hypotheses["tokens"][:, :, :CATEGORY_LENGTH]), axis=-1)
        index = self.category_table.lookup(prefixes)
        known = tf.gather(log_probs, tf.maximum(index, 0), batch_dims=1)
        # A category the head never learned counts as its least likely one.
        return tf.where(index >= 0, known, tf.reduce_min(log_probs, axis=1, keepdims=True))

    @tf.function(input_signature=[TEXT_SPEC])
    def serve(self, text):
        return self.predict(text, self.beam_size, self.top_k, "beam")

    @tf.function(input_signature=[TEXT_SPEC])
    def greedy(self, text):
        return self.predict(text, 1, 1, "greedy")

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
