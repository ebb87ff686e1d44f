"""Token tagging (named entities): tag vocabulary, tf.data, fit, seqeval evaluation, export.

The BiLSTM tagger lives here; the transformer taggers' sub-tokens and windows in `subword_tagging`.
Training and evaluation read the corpus's own tokens; the exported signature takes raw text,
tokenises it in the graph (`tagging_graph.tokenize_with_offsets`, the PubTator reader's rule)
and answers `tokens`, `tags` and the entities with character offsets into the text.

Per-token weights carry the padding mask and, for `train.loss=weighted`, the class weights
(Keras refuses `class_weight` for sequences); `focal` and `balanced_focal` apply per token.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfnlp.config import Experiment
from tfnlp.data.conll import TaggedSentence
from tfnlp.data.splits import Splits
from tfnlp.errors import UserError
from tfnlp.losses import make_loss
from tfnlp.tasks import keras_fit, learning_rate, require_records, subword_tagging
from tfnlp.tasks.subword_tagging import SUBWORD_TAGGERS, SubwordTokenizer
from tfnlp.tasks.tagging_graph import entities_from_tags, padded_length, tokenize_with_offsets

TAGGERS = ("bilstm_tagger", *SUBWORD_TAGGERS)
TAGGING_METRICS = ("entity_precision", "entity_recall", "entity_f1", "token_accuracy")


class TagVocabulary:
    """`O`, then `B-X` and `I-X` for each entity type of the training split, sorted."""

    def __init__(self, sentences: Sequence[TaggedSentence]) -> None:
        types = sorted({kind for sentence in sentences for kind in sentence.entity_types()})
        self.tags = ("O", *(f"{prefix}-{kind}" for kind in types for prefix in "BI"))
        self._index = {tag: index for index, tag in enumerate(self.tags)}

    def __len__(self) -> int:
        return len(self.tags)

    def ids(self, tags: Sequence[str]) -> list[int]:
        """Tag ids; a type unseen in training reads as `O`."""
        return [self._index.get(tag, 0) for tag in tags]


@keras.saving.register_keras_serializable(package="tfnlp")
class Lowercase(keras.layers.Layer):
    """Unicode lower-casing of string tensors (the tagger's vocabulary is lower-cased)."""

    def call(self, tokens):
        return tf.strings.lower(tokens, encoding="utf-8")

    def compute_output_shape(self, input_shape):
        return input_shape


def bilstm_tagger(config, vocabulary: Sequence[str], num_tags: int,
                  initial_embeddings: np.ndarray | None = None) -> keras.Model:
    """Tokens [B, T] (strings, "" padding) -> lower-cased word ids -> embedding -> BiLSTM -> softmax per token.

    `initial_embeddings` (rows: padding, unknown, then `vocabulary`) starts the embedding from
    pretrained vectors; it is fine-tuned with the rest.
    """
    tokens = keras.Input(shape=(None,), dtype="string", name="tokens")
    lookup = keras.layers.StringLookup(vocabulary=list(vocabulary), mask_token="", name="words")
    ids = lookup(Lowercase(name="lowercase")(tokens))
    if initial_embeddings is None:
        embedding = keras.layers.Embedding(lookup.vocabulary_size(), config.embedding_dim, mask_zero=True,
                                           name="embedding")
    else:
        embedding = keras.layers.Embedding(*initial_embeddings.shape, mask_zero=True, name="embedding",
                                           embeddings_initializer=keras.initializers.Constant(initial_embeddings))
    embedded = embedding(ids)
    states = keras.layers.Bidirectional(keras.layers.LSTM(config.units, return_sequences=True), name="bilstm")(
        keras.layers.Dropout(config.dropout)(embedded))
    probabilities = keras.layers.Dense(num_tags, activation="softmax", name="tags")(
        keras.layers.Dropout(config.dropout)(states))
    return keras.Model(tokens, probabilities, name="bilstm_tagger")


RAGGED_WORDS = tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1, row_splits_dtype=tf.int64)
RAGGED_SPACING = tf.RaggedTensorSpec([None, None], tf.bool, ragged_rank=1, row_splits_dtype=tf.int64)


class TaggerServing(tf.Module):
    """The export: raw texts -> tokens, tags and padded entities with character offsets.

    Args:
        model: the tagger: word strings [B, T] -> tag probabilities, or (with `tokenizer`) a
            transformer over sub-tokens.
        tags: tag names by id.
        tokenizer: the sub-word tokenizer of a transformer tagger; None for word taggers.
    """

    def __init__(self, model: keras.Model, tags: Sequence[str], tokenizer: SubwordTokenizer | None = None) -> None:
        super().__init__()
        self.model = model
        self.tag_names = tf.constant(list(tags))
        self.tokenizer = tokenizer

    def word_probabilities(self, words: tf.RaggedTensor, spaced: tf.RaggedTensor) -> tf.Tensor:
        """Words [B, (T)] (and whether whitespace precedes each) -> tag probabilities [B, max(T, 1), tags]."""
        if self.tokenizer is not None:
            return subword_tagging.word_probabilities(self.model, self.tokenizer, words, spaced)
        return self.model(words.to_tensor("", shape=tf.stack([words.nrows(), padded_length(words)])), training=False)

    @tf.function(input_signature=[RAGGED_WORDS, RAGGED_SPACING])
    def predict_words(self, words, spaced):
        """`word_probabilities` as one graph (evaluation calls it on the corpus's own tokens)."""
        return self.word_probabilities(words, spaced)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        tokens, starts, ends = tokenize_with_offsets(text)
        probabilities = self.word_probabilities(tokens, subword_tagging.space_before(starts, text))
        shape = tf.shape(probabilities, tf.int64)[:2]
        lengths = tokens.row_lengths()
        mask = tf.sequence_mask(lengths, shape[1])
        tags = tf.where(mask, tf.gather(self.tag_names, tf.argmax(probabilities, axis=-1)), "")
        entities = entities_from_tags(tags, starts.to_tensor(-1, shape=shape), ends.to_tensor(-1, shape=shape), text,
                                      lengths)
        return {"tokens": tokens.to_tensor("", shape=shape), "tags": tags, **entities}

    def signatures(self) -> dict:
        return {"serving_default": self.serve}


class TaggingTask:
    """One tagging run's data side.

    Args:
        experiment: the run's configuration.
        splits: train / validation / test TaggedSentences.
        classification: unused.
    """

    def __init__(self, experiment: Experiment, splits: Splits, classification=None) -> None:
        self.experiment = experiment
        self.splits = splits
        require_records(splits, tagged=True, source=experiment.data.source)
        if experiment.model.name not in TAGGERS:
            raise UserError(f"model.name={experiment.model.name!r} is not a tagger; known: {', '.join(TAGGERS)}")
        self.transformer = experiment.model.name in SUBWORD_TAGGERS
        self.tag_vocabulary = TagVocabulary(splits.train)
        counts: dict[str, int] = {}
        for sentence in splits.train:
            for token in sentence.tokens:
                counts[token.lower()] = counts.get(token.lower(), 0) + 1
        ranked = sorted(counts, key=lambda word: (-counts[word], word))
        self.vocabulary = ranked[:max(experiment.model.vocab_size - 2, 1)]
        self.initial_embeddings = None
        if experiment.model.vectors and not self.transformer:
            self.vocabulary, self.initial_embeddings = pretrained_embeddings(experiment.model.vectors, self.vocabulary,
                                                                             experiment.model.vocab_size)

    @functools.cached_property
    def tag_counts(self) -> np.ndarray:
        """Training tokens per tag index (for class weights and class-balanced alpha)."""
        ids = [tag for sentence in self.splits.train for tag in self.tag_vocabulary.ids(sentence.tags)]
        return np.bincount(ids, minlength=len(self.tag_vocabulary))

    @functools.cached_property
    def tokenizer(self) -> SubwordTokenizer | None:
        """The transformer tagger's sub-word tokenizer (GPT-2's BPE is learnt on the training texts); None for
        word taggers."""
        if not self.transformer:
            return None
        return subword_tagging.make_tokenizer(self.experiment.model, [sentence.text for sentence in self.splits.train])

    def build_model(self, steps_per_epoch: int) -> keras.Model:
        train = self.experiment.train
        if self.transformer:
            model = subword_tagging.make_tagger(self.experiment.model, self.tokenizer, len(self.tag_vocabulary))
        else:
            model = bilstm_tagger(self.experiment.model, self.vocabulary, len(self.tag_vocabulary),
                                  self.initial_embeddings)
        loss, _ = make_loss(train.loss, self.tag_counts, train.focal_gamma, train.focal_alpha, train.focal_beta)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate(train, steps_per_epoch)), loss=loss,
                      weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")])
        return model

    def dataset(self, sentences: Sequence[TaggedSentence], training: bool) -> tf.data.Dataset:
        """(tokens [B, T], tag ids [B, T], per-token weights [B, T]); padding weighs 0. For a transformer tagger,
        (backbone inputs, labels, weights) per window of sub-tokens (`subword_tagging.window_dataset`)."""
        train = self.experiment.train
        _, class_weights = make_loss(train.loss, self.tag_counts)
        weights_of = class_weights if class_weights is not None else np.ones(len(self.tag_vocabulary))
        ids = [self.tag_vocabulary.ids(sentence.tags) for sentence in sentences]
        token_weights = [[float(weights_of[tag]) for tag in row] for row in ids]
        if self.transformer:
            return subword_tagging.window_dataset(
                self.tokenizer, sentences, ids, token_weights, subword_tagging.inside_tags(self.tag_vocabulary.tags),
                self.experiment.model.label_all_subtokens, train.batch_size, train.seed if training else None)
        tokens = tf.ragged.constant([list(sentence.tokens) for sentence in sentences], dtype=tf.string)
        tags = tf.ragged.constant(ids, dtype=tf.int32)
        weights = tf.ragged.constant(token_weights, dtype=tf.float32)
        dataset = tf.data.Dataset.from_tensor_slices((tokens, tags, weights)).cache()
        if training:
            dataset = dataset.shuffle(min(train.shuffle_buffer, len(sentences)), seed=train.seed,
                                      reshuffle_each_iteration=True)
        return dataset.ragged_batch(train.batch_size).map(
            lambda t, y, w: (t.to_tensor(""), y.to_tensor(0), w.to_tensor(0.0))).prefetch(tf.data.AUTOTUNE)

    def datasets(self) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        return self.dataset(self.splits.train, True), self.dataset(self.splits.validation, False)

    def fit(self, model, train_data, validation_data, epochs: int, callbacks: list, verbose: int) -> keras.Model:
        return keras_fit(model, train_data, validation_data, epochs, callbacks, verbose)

    def serving(self, model: keras.Model) -> TaggerServing:
        return TaggerServing(model, self.tag_vocabulary.tags, self.tokenizer)

    def callbacks(self, serving: TaggerServing, tensorboard_dir: str) -> list:
        """Entity-level validation scores in the epoch logs (`val_entity_f1`, ...): what to select on."""
        return [EntityValidation(self, serving)]

    def predict_tags(self, serving: TaggerServing, sentences: Sequence[TaggedSentence],
                     batch_size: int = 64) -> list[list[str]]:
        """Predicted tags on the corpus's own tokens (batched by length: less padding)."""
        order = sorted(range(len(sentences)), key=lambda index: len(sentences[index].tokens))
        spacing = subword_tagging.sentence_spacing(sentences)
        predicted: list[list[str]] = [[] for _ in sentences]
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            words = tf.ragged.constant([list(sentences[index].tokens) for index in chunk], dtype=tf.string)
            spaced = tf.ragged.constant([spacing[index] for index in chunk], dtype=tf.bool)
            best = np.argmax(serving.predict_words(words, spaced).numpy(), axis=-1)
            for row, index in zip(best, chunk, strict=True):
                predicted[index] = [self.tag_vocabulary.tags[i] for i in row[:len(sentences[index].tokens)]]
        return predicted

    def evaluate(self, serving: TaggerServing, sentences: Sequence[TaggedSentence],
                 with_baselines: bool = False) -> tuple[dict, list[dict], list[list[str]]]:
        """Entity-level precision / recall / F1 (seqeval, strict BIO2) and token accuracy, a few examples, and
        the predicted tags."""
        truth = [list(sentence.tags) for sentence in sentences]
        predicted = self.predict_tags(serving, sentences)
        results = {"model": entity_scores(truth, predicted)}
        examples = [{"text": sentence.text, "true": _spans(sentence.tokens, gold), "predicted": _spans(sentence.tokens,
                                                                                                      guess)}
                    for sentence, gold, guess in zip(sentences[:8], truth[:8], predicted[:8], strict=True)]
        return results, examples, predicted

    def write_reports(self, predicted: list[list[str]], workdir: Path, tensorboard_dir: str) -> dict:
        """`report/per_type.csv` and `report/f1_vs_support.png` for the test split (`predicted`: its tags as
        `evaluate` gave them)."""
        from tfnlp.plots import f1_support_figure, save_figure

        truth = [list(sentence.tags) for sentence in self.splits.test]
        rows = per_type_rows(truth, predicted)
        folder = workdir / "report"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "per_type.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["type", "precision", "recall", "f1", "support"])
            writer.writeheader()
            writer.writerows(rows)
        save_figure(f1_support_figure([row["f1"] for row in rows], np.array([row["support"] for row in rows]),
                                      [row["type"] for row in rows]), folder / "f1_vs_support.png")
        return {"per_type": rows}


def pretrained_embeddings(spec: str, training_words: list[str], vector_words: int) -> tuple[list[str], np.ndarray]:
    """The tagger's vocabulary and first embedding from pretrained vectors (`model.vectors`).

    The vocabulary is the training words, then the `vector_words` most frequent words of the
    vectors not among them (so test words unseen in training still have a vector). Rows: padding
    and unknown (zeros), then each word's vector, or a small random one for training words the
    vectors lack.
    """
    from tfnlp.data.vectors import load_vectors

    vectors = load_vectors(spec, vector_words, training_words)
    found, missing = vectors.coverage(training_words)
    print(f"vectors {spec}: training vocabulary coverage {found}/{found + missing} "
          f"({found / max(found + missing, 1):.1%})")
    known = set(training_words)
    vocabulary = list(training_words) + [word for word in vectors.words if word not in known]
    row_of = {word: row for row, word in enumerate(vectors.words)}
    scale = float(vectors.matrix.std())
    rng = np.random.default_rng(0)
    rows = [vectors.matrix[row_of[word]] if word in row_of else rng.normal(0.0, scale, vectors.dim)
            for word in vocabulary]
    return vocabulary, np.vstack([np.zeros((2, vectors.dim)), *rows]).astype(np.float32)


class EntityValidation(keras.callbacks.Callback):
    """Adds seqeval's validation entity precision / recall / F1, overall and F1 per type, to each epoch's logs
    (and so to TensorBoard, the CSV history, early stopping and checkpointing)."""

    def __init__(self, task: TaggingTask, serving: TaggerServing) -> None:
        super().__init__()
        self.task = task
        self.serving = serving

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        sentences = self.task.splits.validation
        truth = [list(sentence.tags) for sentence in sentences]
        predicted = self.task.predict_tags(self.serving, sentences)
        scores = entity_scores(truth, predicted)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in scores.items() if name.startswith("entity")})
            # Per type too (`val_entity_f1_Disease`, ...): every type of the validation truth, every epoch.
            logs.update({f"val_entity_f1_{row['type']}": row["f1"] for row in per_type_rows(truth, predicted)})


def entity_scores(truth: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """seqeval's strict BIO2 entity precision / recall / F1 (micro over entities) and token accuracy."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    flat_truth = [tag for row in truth for tag in row]
    flat_predicted = [tag for row in predicted for tag in row]
    options = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    return {"entity_precision": float(precision_score(truth, predicted, **options)),
            "entity_recall": float(recall_score(truth, predicted, **options)),
            "entity_f1": float(f1_score(truth, predicted, **options)),
            "token_accuracy": float(np.mean([a == b for a, b in zip(flat_truth, flat_predicted, strict=True)]))}


def per_type_rows(truth: list[list[str]], predicted: list[list[str]]) -> list[dict]:
    """Per entity type: precision, recall, F1, support (seqeval strict BIO2)."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    report = classification_report(truth, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    return [{"type": kind, "precision": float(values["precision"]), "recall": float(values["recall"]),
             "f1": float(values["f1-score"]), "support": int(values["support"])}
            for kind, values in sorted(report.items()) if not kind.endswith(" avg")]


def _spans(tokens: Sequence[str], tags: Sequence[str]) -> str:
    """`type: words; ...` of the B-started entities, for the printed examples."""
    spans, current = [], None
    for token, tag in zip(tokens, tags, strict=True):
        if tag.startswith("B-") or (tag.startswith("I-") and (current is None or current[0] != tag[2:])):
            current = [tag[2:], token]
            spans.append(current)
        elif tag.startswith("I-") and current is not None:
            current.append(token)
        else:
            current = None
    return "; ".join(f"{span[0]}: {' '.join(span[1:])}" for span in spans) or "-"
