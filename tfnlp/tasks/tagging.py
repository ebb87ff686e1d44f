"""Token tagging (named entities): tag vocabulary, tf.data, seqeval evaluation, the raw-text export.

The factories are `tfnlp.models.taggers`'; the transformer taggers' sub-tokens and windows are
`subword_tagging`'s. Training and evaluation read the corpus's own tokens; the exported signature
takes raw text, tokenises it in the graph (`tagging_graph.tokenize_with_offsets`, the PubTator
reader's rule) and answers `tokens`, `tags` and the entities with character offsets into the text.

Per-token weights carry the padding mask and, for `train.loss=weighted`, the class weights
(Keras refuses `class_weight` for sequences); `focal` and `balanced_focal` apply per token. A CRF
(`model.decoder=crf`) reads the weights as its sequence's mask. Tags are read by the decoder the
experiment names (`tfnlp.models.crf`), in evaluation and in the export alike.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfnlp.config import Experiment
from tfnlp.data.conll import to_bio2
from tfnlp.data.records import Splits, TaggedSentence, entity_offsets, entity_spans
from tfnlp.data.vectors import RESERVED_WORDS, pretrained_embeddings
from tfnlp.data.vocabulary import Vocabulary, most_frequent
from tfnlp.errors import UserError
from tfnlp.losses import make_loss
from tfnlp.metrics import entity_scores, per_type_rows, span_scores, write_rows_csv
from tfnlp.model_settings import TransformerTaggerSettings
from tfnlp.models.crf import CRF, CRFLoss, bio_allowed, decoder_layer, viterbi
from tfnlp.models.layers import at_least_one_step
from tfnlp.models.taggers import bilstm_tagger, reads_words_of, transformer_tagger
from tfnlp.tasks import ranking, subword_tagging
from tfnlp.tasks.base import TEXT_SPEC, TRANSFORMER_SPACE, ServingModule, Task, batches, shuffled
from tfnlp.tasks.subword_tagging import SubwordTokenizer
from tfnlp.tasks.tagging_graph import entities_from_tags, tokenize_with_offsets

RAGGED_WORDS = tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1, row_splits_dtype=tf.int64)
RAGGED_SPACING = tf.RaggedTensorSpec([None, None], tf.bool, ragged_rank=1, row_splits_dtype=tf.int64)
PREDICT_BATCH = 64  # sentences per call when evaluating (sorted by length: little padding)
# A transformer tagger's word vectors (`model.vectors`): its training words, then the vectors' most frequent words.
VECTOR_WORDS = 30000
MAX_CHARACTERS = 500  # the character CNN's alphabet: the training text's most frequent characters


def tag_vocabulary(sentences: Sequence[TaggedSentence]) -> Vocabulary:
    """`O`, then `B-X` and `I-X` for each entity type of `sentences`, sorted; an unseen tag reads as `O`."""
    types = sorted({kind for sentence in sentences for kind in sentence.entity_types()})
    return Vocabulary(("O", *(f"{prefix}-{kind}" for kind in types for prefix in "BI")))


class TaggerServing(ServingModule):
    """The export: raw texts -> tokens, tags and padded entities with character offsets.

    Args:
        model: the tagger: word strings [B, T] -> tag scores, or (with `tokenizer`) a transformer over
            sub-tokens.
        tags: tag names by id.
        tokenizer: the sub-word tokenizer of a transformer tagger; None for word taggers.
        decoder: `model.decoder`: `argmax`, `constrained` (Viterbi under BIO2) or `crf` (the model's CRF layer).
    """

    def __init__(self, model: keras.Model, tags: Sequence[str], tokenizer: SubwordTokenizer | None = None,
                 decoder: str = "argmax") -> None:
        super().__init__()
        self.model = model
        self.tag_names = tf.constant(list(tags))
        self.tokenizer = tokenizer
        self.decoder = decoder
        self.allowed = bio_allowed(list(tags))
        self.calibration = ranking.calibration_variables("entities")
        if (decoder == "crf") != (self.crf is not None):
            raise UserError(f"model.decoder={decoder} does not match the model (CRF layer: {self.crf is not None})")

    @property
    def crf(self) -> CRF | None:
        """The model's CRF layer (looked up, not kept: its variables stay under the export's `model/`)."""
        return decoder_layer(self.model)

    def word_scores(self, words: tf.RaggedTensor, spaced: tf.RaggedTensor) -> tf.Tensor:
        """Words [B, (T)] (and whether whitespace precedes each) -> tag scores [B, max(T, 1), tags]."""
        if self.tokenizer is not None:
            return subword_tagging.word_scores(self.model, self.tokenizer, words, spaced)
        return self.model(at_least_one_step(words.to_tensor("")), training=False)

    def decode(self, scores: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """Tag ids [B, T] from the scores of each text's first `lengths` words (0 past them)."""
        if self.decoder == "crf":
            return self.crf.decode(scores, lengths)
        if self.decoder == "constrained":
            return viterbi(tf.math.log(tf.maximum(scores, 1e-12)), lengths, self.allowed)
        return tf.cast(tf.argmax(scores, axis=-1), tf.int32)

    def word_tags(self, words: tf.RaggedTensor, spaced: tf.RaggedTensor) -> tf.Tensor:
        """Words [B, (T)] -> decoded tag ids [B, max(T, 1)]."""
        return self.decode(self.word_scores(words, spaced), words.row_lengths())

    @tf.function(input_signature=[RAGGED_WORDS, RAGGED_SPACING])
    def predict_words(self, words, spaced):
        """`word_tags` as one graph (evaluation calls it on the corpus's own tokens)."""
        return self.word_tags(words, spaced)

    @tf.function(input_signature=[RAGGED_WORDS, RAGGED_SPACING])
    def predict_argmax(self, words, spaced):
        """Each word's own best tag, whatever the decoder (the structured decoders' point of comparison)."""
        return tf.cast(tf.argmax(self.word_scores(words, spaced), axis=-1), tf.int32)

    def token_log_scores(self, scores: tf.Tensor, ids: tf.Tensor, lengths: tf.Tensor):
        """(first, inner, last) [B, T] whose sums over an entity's tokens give the log probability of its tags: the
        CRF's span marginal (forward-backward), or the product of the tokens' own probabilities."""
        if self.decoder == "crf":
            return self.crf.span_log_scores(scores, ids, lengths)
        own = tf.math.log(tf.maximum(tf.gather(scores, ids, batch_dims=2), 1e-30))
        return own, own, tf.zeros_like(own)

    def answer(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Raw texts -> tokens, tags and entities with their uncalibrated log scores (`entity_log_score`)."""
        tokens, starts, ends = tokenize_with_offsets(text)
        scores = self.word_scores(tokens, subword_tagging.space_before(starts, text))
        lengths = tokens.row_lengths()
        ids = self.decode(scores, lengths)
        shape = tf.shape(ids, tf.int64)[:2]
        mask = tf.sequence_mask(lengths, shape[1])
        tags = tf.where(mask, tf.gather(self.tag_names, ids), "")
        entities = entities_from_tags(tags, starts.to_tensor(-1, shape=shape), ends.to_tensor(-1, shape=shape), text,
                                      lengths, self.token_log_scores(scores, ids, lengths))
        return {"tokens": tokens.to_tensor("", shape=shape), "tags": tags, **entities}

    @tf.function(input_signature=[TEXT_SPEC])
    def serve(self, text):
        answer = self.answer(text)
        log_scores = answer.pop("entity_log_score")
        present = answer["entity_start"] >= 0
        calibrated = ranking.confidences(tf.reshape(log_scores, [-1, 1]), self.calibration)
        confidence = tf.where(present, tf.reshape(calibrated, tf.shape(log_scores)), 0.0)
        doubtful = present & (confidence < self.calibration["threshold"])
        return {**answer, "entity_confidence": confidence, "needs_review": tf.reduce_any(doubtful, axis=1)}


class TaggingTask(Task):
    """One tagging run: a word tagger (`bilstm_tagger`) or a transformer one (`bert_tagger`, `gpt_tagger`).

    Args:
        experiment: the run's configuration.
        splits: train / validation / test TaggedSentences.
    """

    record_type = TaggedSentence

    def __init__(self, experiment: Experiment, splits: Splits) -> None:
        super().__init__(experiment, splits)
        config = experiment.model
        self.transformer = isinstance(config, TransformerTaggerSettings)
        self.tags = tag_vocabulary(splits.train)
        self.vocabulary, self.initial_embeddings = [], None
        if not self.transformer or config.vectors:  # a word embedding: the BiLSTM's, or word vectors beside BERT
            words = (token.lower() for sentence in splits.train for token in sentence.tokens)
            self.vocabulary = most_frequent(words, VECTOR_WORDS if self.transformer
                                            else max(config.vocab_size - RESERVED_WORDS, 1))
        if config.vectors:
            self.vocabulary, self.initial_embeddings, _ = pretrained_embeddings(
                config.vectors, self.vocabulary, VECTOR_WORDS if self.transformer else config.vocab_size,
                experiment.train.seed)
        characters = (character for sentence in splits.train for token in sentence.tokens for character in token)
        self.characters = most_frequent(characters, MAX_CHARACTERS)

    slice_by = "entity_type"
    served_metrics = ("span_precision", "span_recall", "span_f1")

    @classmethod
    def search_space(cls, experiment: Experiment) -> dict:
        model = experiment.model
        if isinstance(model, TransformerTaggerSettings) and not model.freeze_backbone:
            return TRANSFORMER_SPACE
        head = {"train.learning_rate": {"low": 3e-4, "high": 1e-2, "log": True}, "train.batch_size": [16, 32, 64],
                "model.dropout": {"low": 0.0, "high": 0.5}}
        # A frozen backbone leaves a head to train, at a BiLSTM's rates (no BiLSTM, no units to search).
        if isinstance(model, TransformerTaggerSettings):
            return {**head, **({"model.lstm_units": [64, 128, 256]} if model.lstm_units else {})}
        return {**head, "model.units": [64, 128, 256]}

    headline = "entity_f1"

    @classmethod
    def limitations(cls, experiment: Experiment, test: dict[str, dict[str, float]]) -> list[str]:
        lines = super().limitations(experiment, test)
        decoder = experiment.model.decoder
        lines.append({"argmax": "Tags are read token by token (model.decoder=argmax): an entity may start with I-, "
                                "which is read leniently as a start.",
                      "constrained": "Tags are read by Viterbi under BIO2 constraints: every entity is well formed.",
                      "crf": "Tags are read by the CRF's Viterbi path under BIO2 constraints: every entity is well "
                             "formed."}[decoder])
        lines.append("The served tokenizer (runs of letters or digits, other characters alone) may cut words "
                     "differently from the training corpus's tokens: the export's span scores (span_f1) can differ "
                     "from the test table's entity_f1 (seqeval on the corpus's tokens).")
        return lines

    @classmethod
    def served_truth(cls, experiment: Experiment, records: Sequence[TaggedSentence]) -> list[set]:
        """Each sentence's entities as (type, start, end) character spans of its text."""
        return [entity_offsets(sentence) for sentence in records]

    @classmethod
    def served_prediction(cls, answer) -> set[tuple[str, int, int]]:
        return {(entity.type, entity.start, entity.end) for entity in answer.entities}

    @classmethod
    def served_score(cls, truth: list[set], predicted: list[set]) -> dict[str, float]:
        return span_scores(truth, predicted)

    @classmethod
    def served_slices(cls, truth: list[set], predicted: list[set]) -> dict[str, dict]:
        """Span scores of each entity type of the truth."""
        types = sorted({kind for entities in truth for kind, _, _ in entities})
        return {kind: span_scores(truth, predicted, kind) for kind in types}

    @classmethod
    def trivial_predictions(cls, experiment: Experiment, train: Sequence, count: int) -> list[set]:
        """No entity at all."""
        return [set() for _ in range(count)]

    @functools.cached_property
    def tag_counts(self) -> np.ndarray:
        """Training tokens per tag index (for class weights and class-balanced alpha)."""
        return self.tags.counts(tag for sentence in self.splits.train for tag in sentence.tags)

    @functools.cached_property
    def tokenizer(self) -> SubwordTokenizer | None:
        """The transformer tagger's sub-word tokenizer (GPT-2's BPE is learnt on the training texts); None for
        word taggers."""
        if not self.transformer:
            return None
        return subword_tagging.make_tokenizer(self.experiment.model, [sentence.text for sentence in self.splits.train])

    def make_model(self) -> keras.Model:
        if self.transformer:
            return transformer_tagger(self.experiment.model, self.tokenizer.vocabulary_size, self.tags.tokens,
                                      self.characters, self.vocabulary, self.initial_embeddings)
        return bilstm_tagger(self.experiment.model, self.vocabulary, self.tags.tokens, self.initial_embeddings,
                             self.characters)

    def loss(self, model: keras.Model) -> dict:
        """Per-token cross-entropy / focal loss, or (`model.decoder=crf`) the CRF's sentence likelihood."""
        train = self.experiment.train
        crf = decoder_layer(model)
        if crf is not None:
            loss = CRFLoss(crf)
        else:
            loss, _ = make_loss(train.loss, self.tag_counts, train.focal_gamma, train.focal_alpha, train.focal_beta)
        return {"loss": loss, "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")]}

    def dataset(self, sentences: Sequence[TaggedSentence], training: bool) -> tf.data.Dataset:
        """(tokens [B, T], tag ids [B, T], per-token weights [B, T]); padding weighs 0. For a transformer tagger,
        (backbone inputs, labels, weights) per window of sub-tokens (`subword_tagging.window_dataset`)."""
        train = self.experiment.train
        _, class_weights = make_loss(train.loss, self.tag_counts)
        weights_of = class_weights if class_weights is not None else np.ones(len(self.tags))
        # A CRF scores the gold path: an ill-formed one (I-X after O) would score FORBIDDEN, so it learns BIO2's.
        repair = (lambda tags: to_bio2(list(tags))[0]) if self.experiment.model.decoder == "crf" else list
        ids = [self.tags.ids(repair(sentence.tags)).tolist() for sentence in sentences]
        token_weights = [[float(weights_of[tag]) for tag in row] for row in ids]
        if self.transformer:
            return subword_tagging.window_dataset(
                self.tokenizer, sentences, ids, token_weights, subword_tagging.inside_tags(self.tags.tokens),
                self.experiment.model.label_all_subtokens, train.batch_size, train.seed if training else None,
                self.epoch, with_words=reads_words_of(self.experiment.model))
        tokens = tf.ragged.constant([list(sentence.tokens) for sentence in sentences], dtype=tf.string)
        tags = tf.ragged.constant(ids, dtype=tf.int32)
        weights = tf.ragged.constant(token_weights, dtype=tf.float32)
        dataset = shuffled(tf.data.Dataset.from_tensor_slices((tokens, tags, weights)), len(sentences), train,
                           training, self.epoch)
        return dataset.ragged_batch(train.batch_size).map(
            lambda t, y, w: (t.to_tensor(""), y.to_tensor(0), w.to_tensor(0.0))).prefetch(tf.data.AUTOTUNE)

    def serving(self, model: keras.Model) -> TaggerServing:
        return TaggerServing(model, self.tags.tokens, self.tokenizer, self.experiment.model.decoder)

    def truth(self, sentences: Sequence[TaggedSentence]) -> list[list[str]]:
        return [list(sentence.tags) for sentence in sentences]

    def systems(self, serving: ServingModule) -> dict[str, Callable[[Sequence], list]]:
        """`model` (the configured decoder) and, for a structured decoder, `model_argmax`: the same scores read one
        token at a time."""
        systems = super().systems(serving)
        if self.experiment.model.decoder != "argmax":
            systems = {"model_argmax": lambda sentences: self.predict(serving, sentences, argmax=True), **systems}
        return systems

    def predict(self, serving: ServingModule, sentences: Sequence[TaggedSentence],
                argmax: bool = False) -> list[list[str]]:
        """Predicted tags on the corpus's own tokens (batched by length: less padding); `argmax`: each token's best
        tag instead of the configured decoder's sequence."""
        predictor = serving.predict_argmax if argmax else serving.predict_words
        order = sorted(range(len(sentences)), key=lambda index: len(sentences[index].tokens))
        spacing = subword_tagging.sentence_spacing(sentences)
        predicted: list[list[str]] = [[] for _ in sentences]
        for chunk in batches(order, PREDICT_BATCH):
            words = tf.ragged.constant([list(sentences[index].tokens) for index in chunk], dtype=tf.string)
            spaced = tf.ragged.constant([spacing[index] for index in chunk], dtype=tf.bool)
            best = predictor(words, spaced).numpy()
            for row, index in zip(best, chunk, strict=True):
                predicted[index] = [self.tags.tokens[i] for i in row[:len(sentences[index].tokens)]]
        return predicted

    def score(self, truth: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
        """seqeval strict-BIO2 entity precision / recall / F1 and token accuracy."""
        return entity_scores(truth, predicted)

    def validation_logs(self, serving: ServingModule) -> dict[str, float]:
        """Validation entity scores (token accuracy is Keras's own `val_token_accuracy`), overall and F1 per type
        (`val_entity_f1_Disease`, ...: every type of the validation truth, every epoch)."""
        sentences = self.splits.validation
        truth, predicted = self.truth(sentences), self.predict(serving, sentences)
        scores = {f"val_{name}": value for name, value in self.score(truth, predicted).items()
                  if name.startswith("entity")}
        return {**scores, **{f"val_entity_f1_{row['type']}": row["f1"] for row in per_type_rows(truth, predicted)}}

    def example(self, sentence: TaggedSentence, truth: list[str], predicted: list[str]) -> dict:
        return {"text": sentence.text, "true": _spans(sentence.tokens, truth),
                "predicted": _spans(sentence.tokens, predicted)}

    def calibrate(self, serving: TaggerServing) -> dict:
        """Fit the entities' confidences and the review threshold (entity precision) on the validation split."""
        from tfnlp import calibration as cal

        sentences = self.splits.validation
        if not sentences or not all(sentence.offsets for sentence in sentences):
            return {}  # no character offsets: served entities cannot be checked against the truth
        answer = tf.function(serving.answer, input_signature=[TEXT_SPEC])  # one trace, whatever the batch size
        scores, right = [], []
        for chunk in batches(sentences, PREDICT_BATCH):
            found = {name: value.numpy() for name, value in answer(tf.constant([s.text for s in chunk])).items()}
            for row, sentence in enumerate(chunk):
                gold = entity_offsets(sentence)
                for kind, start, end, score in zip(found["entity_type"][row], found["entity_start"][row],
                                                   found["entity_end"][row], found["entity_log_score"][row],
                                                   strict=True):
                    if start >= 0:
                        scores.append(score)
                        right.append((kind.decode("utf-8"), int(start), int(end)) in gold)
        if not scores:
            return {}
        scores, right = np.array(scores, np.float32)[:, None], np.array(right)[:, None]
        fitted, raw, calibrated = cal.fit_ranked(scores, right, self.experiment.model.calibration)
        review = cal.review_threshold(calibrated[:, 0], right[:, 0], self.experiment.model.review_precision)
        fitted = dataclasses.replace(fitted, threshold=review.threshold)
        ranking.assign(serving.calibration, fitted)
        target = self.experiment.model.review_precision
        return {"entities": cal.summary(raw, calibrated, right, fitted, review, "entity", target)}

    def write_reports(self, predicted: list[list[str]], workdir: Path, tensorboard_dir: str) -> dict:
        """`report/per_type.csv` and `report/f1_vs_support.png` for the test split."""
        from tfnlp.plots import f1_support_figure, save_figure

        rows = per_type_rows(self.truth(self.splits.test), predicted)
        folder = workdir / "report"
        write_rows_csv(folder / "per_type.csv", rows)
        save_figure(f1_support_figure([row["f1"] for row in rows], np.array([row["support"] for row in rows]),
                                      [row["type"] for row in rows]), folder / "f1_vs_support.png")
        return {"per_type": rows}


def _spans(tokens: Sequence[str], tags: Sequence[str]) -> str:
    """`type: words; ...` of the entities, for the printed examples."""
    return "; ".join(f"{kind}: {' '.join(words)}" for kind, words in entity_spans(tokens, tags)) or "-"
