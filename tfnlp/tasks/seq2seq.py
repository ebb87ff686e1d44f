"""Text -> ICD-10 code, character by character: preprocessing, tf.data and metrics.

Inputs are words (TextVectorization adapted on the training split, OOV for unknown words)
plus hashed character n-grams of each word; targets are the code's characters framed by a
start and an end token. Everything that touches a raw string runs in the graph, so the
exported signature repeats it exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfnlp.config import Experiment, ModelConfig
from tfnlp.data import Record, text
from tfnlp.data.icd10 import CATEGORY_LENGTH, category, chapter, normalise_code
from tfnlp.data.splits import Splits
from tfnlp.models.decoding import beam_search, select
from tfnlp.models.seq2seq import END, PAD, START, char_seq2seq, masked_accuracy, masked_loss
from tfnlp.tasks import keras_fit, learning_rate, require_records

SPECIAL_TOKENS = ("", "<s>", "</s>")
LENGTH_BUCKETS = (5, 7, 9, 12, 16, 24)  # word-count boundaries of the training batches
DECODE_CHUNK = 128  # texts decoded together after sorting a request by length


@dataclass(frozen=True)
class Alphabet:
    """The decoder's characters; ids 0, 1, 2 are padding, start and end."""

    characters: tuple[str, ...]

    @classmethod
    def from_codes(cls, codes: Iterable[str]) -> Alphabet:
        """The sorted set of characters used by `codes`."""
        return cls(tuple(sorted({character for code in codes for character in code})))

    @property
    def tokens(self) -> tuple[str, ...]:
        """Token strings indexed by id."""
        return SPECIAL_TOKENS + self.characters

    @property
    def size(self) -> int:
        """Number of decoder tokens, special ones included."""
        return len(self.tokens)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}

    def ids(self, code: str) -> list[int]:
        """Character ids of `code`; a character outside the alphabet becomes padding (ignored by the loss)."""
        return [self._index.get(character, PAD) for character in code]


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
    def from_codes(cls, codes: Iterable[str], alphabet: Alphabet) -> CodeTrie:
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
        allowed = np.zeros((len(children), alphabet.size), dtype=bool)
        next_node = np.zeros((len(children), alphabet.size), dtype=np.int32)
        for node, edges in enumerate(children):
            for token, child in edges.items():
                allowed[node, token] = True
                next_node[node, token] = child
        return cls(allowed, next_node)

    @classmethod
    def unconstrained(cls, alphabet: Alphabet) -> CodeTrie:
        """One node that allows every character and the end token."""
        allowed = np.ones((1, alphabet.size), dtype=bool)
        allowed[0, PAD] = allowed[0, START] = False
        return cls(allowed, np.zeros((1, alphabet.size), dtype=np.int32))


def _at_least_one(dense: tf.Tensor) -> tf.Tensor:
    """Pad every axis after the first to length >= 1, so an empty batch still has a time step."""
    shape = tf.shape(dense)
    padding = [[0, 0]] + [[0, tf.maximum(0, 1 - shape[axis])] for axis in range(1, len(dense.shape))]
    return tf.pad(dense, padding)


class Seq2SeqPreprocessor:
    """Turns raw texts into model inputs and codes into decoder sequences.

    Args:
        vectorizer: TextVectorization adapted on the training texts (standardised already).
        alphabet: the decoder's characters.
        max_input_tokens: words kept from a text.
        subword_buckets: hash buckets of the character n-gram features.
        max_output_length: most characters of a code.
        categories: the category head's classes (empty: no head).
    """

    def __init__(self, vectorizer: keras.layers.TextVectorization, alphabet: Alphabet, max_input_tokens: int,
                 subword_buckets: int, max_output_length: int, categories: tuple[str, ...] = ()) -> None:
        self.vectorizer = vectorizer
        self.alphabet = alphabet
        self.categories = categories
        self.max_input_tokens = max_input_tokens
        self.subword_buckets = subword_buckets
        self.max_output_length = max_output_length

    @classmethod
    def adapt(cls, train: Sequence[Record], classification: Iterable[str], config: ModelConfig) -> Seq2SeqPreprocessor:
        """Fit the word vocabulary on the training texts only; the alphabet on all known codes."""
        vectorizer = keras.layers.TextVectorization(
            max_tokens=config.vocab_size, standardize=None, split="whitespace", ragged=True, name="words")
        texts = tf.data.Dataset.from_tensor_slices(tf.constant([record.text for record in train]))
        vectorizer.adapt(texts.batch(1024).map(text.standardize))
        codes = [record.target for record in train] + list(classification)
        longest = max(len(code) for code in codes)
        categories = tuple(sorted({category(code) for code in codes})) if config.category_loss_weight else ()
        return cls(vectorizer, Alphabet.from_codes(codes), config.max_input_tokens, config.subword_buckets,
                   config.max_output_length or longest, categories)

    @property
    def decoder_length(self) -> int:
        """Decoder steps: the longest code plus the end token."""
        return self.max_output_length + 1

    def input_tokens(self, texts: tf.Tensor) -> tf.Tensor:
        """The words the model reads, padded with "": [B] -> [B, T]."""
        return _at_least_one(text.split_words(texts, self.max_input_tokens).to_tensor(""))

    def encode_texts(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        """Raw texts [B] -> {"token_ids": [B, T], "subword_ids": [B, T, N]} (0 = padding)."""
        token_ids = self.vectorizer(text.standardize(texts))[:, :self.max_input_tokens]
        inputs = {"token_ids": _at_least_one(tf.cast(token_ids.to_tensor(0), tf.int32))}
        if self.subword_buckets:
            words = text.split_words(texts, self.max_input_tokens)
            subwords = text.subword_ids(words, self.subword_buckets).to_tensor(0)
            inputs["subword_ids"] = _at_least_one(tf.cast(subwords, tf.int32))
        return inputs

    def encode_codes(self, codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Teacher-forcing pairs: decoder input `<s> c1 .. cn` and target `c1 .. cn </s>`, padded."""
        length = self.decoder_length
        inputs = np.zeros((len(codes), length), dtype=np.int32)
        targets = np.zeros((len(codes), length), dtype=np.int32)
        for row, code in enumerate(codes):
            ids = self.alphabet.ids(code[:self.max_output_length])
            inputs[row, :len(ids) + 1] = [START] + ids
            targets[row, :len(ids) + 1] = ids + [END]
        return inputs, targets

    def category_ids(self, codes: Sequence[str]) -> np.ndarray:
        """Category-head class of each code; -1 (ignored by the loss) for a category it does not know."""
        index = {name: i for i, name in enumerate(self.categories)}
        return np.array([index.get(category(code), -1) for code in codes], dtype=np.int32)

    def dataset(self, records: Sequence[Record], batch_size: int, training: bool, seed: int,
                shuffle_buffer: int = 20000) -> tf.data.Dataset:
        """Batched ({inputs}, target) pairs; shuffled each epoch when `training`."""
        codes = [record.target for record in records]
        decoder_input, decoder_target = self.encode_codes(codes)
        targets = {"chars": decoder_target, **({"category": self.category_ids(codes)} if self.categories else {})}
        texts = tf.constant([record.text for record in records])
        # Word counts (approximate: before standardisation) only choose a length bucket.
        lengths = tf.constant([min(len(record.text.split()), self.max_input_tokens) for record in records])
        dataset = tf.data.Dataset.from_tensor_slices((texts, decoder_input, targets, lengths)).cache()
        if training:
            dataset = dataset.shuffle(min(shuffle_buffer, len(records)), seed=seed, reshuffle_each_iteration=True)
        # Batches of texts of similar length waste less time on padding (about 2x faster on CPU).
        dataset = dataset.bucket_by_sequence_length(
            lambda *element: element[-1], bucket_boundaries=list(LENGTH_BUCKETS),
            bucket_batch_sizes=[batch_size] * (len(LENGTH_BUCKETS) + 1))
        buckets = np.bincount(np.digitize(lengths.numpy(), LENGTH_BUCKETS), minlength=len(LENGTH_BUCKETS) + 1)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(int(np.sum(-(-buckets // batch_size)))))

        def to_model_inputs(batch_texts, batch_decoder_input, batch_targets, _):
            inputs = self.encode_texts(batch_texts)
            inputs["decoder_input"] = batch_decoder_input
            return inputs, batch_targets

        return dataset.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def code_accuracies(true_codes: Sequence[str], predicted_codes: Sequence[str]) -> dict[str, float]:
    """Chapter (first character), category (first three) and exact-code accuracy."""
    if len(true_codes) != len(predicted_codes):
        raise ValueError(f"{len(true_codes)} true codes but {len(predicted_codes)} predictions")
    total = max(len(true_codes), 1)
    pairs = list(zip(true_codes, predicted_codes, strict=True))
    return {
        "chapter_accuracy": sum(chapter(t) == chapter(p) for t, p in pairs) / total,
        "category_accuracy": sum(category(t) == category(p) for t, p in pairs) / total,
        "exact_match": sum(t == p for t, p in pairs) / total,
    }


TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")


class Seq2SeqServing(tf.Module):
    """What is exported: raw strings in, named outputs out, all preprocessing in the graph.

    `serve` (the `serving_default` signature) decodes with the configured beam width, `greedy`
    with width 1. `encode` and `decode_step` expose single steps for step-by-step callers
    such as the decode benchmark. `allowed` / `next_node` hold the prefix trie.
    """

    def __init__(self, preprocessor: Seq2SeqPreprocessor, model: keras.Model, trie: CodeTrie, beam_size: int,
                 rerank_weight: float = 0.0) -> None:
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
        hypotheses = beam_search(self.model, self._preprocessor.encode_texts(text), self.allowed, self.next_node,
                                 self.decoder_length, beam_size)
        scores = hypotheses["log_prob"]
        if beam_size > 1 and self.rerank_weight:
            scores += self.rerank_weight * self._category_log_prob(hypotheses)
        return select(hypotheses, scores)

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

    def signatures(self) -> dict:
        """Signatures to write into the SavedModel."""
        return {"serving_default": self.serve, "greedy": self.greedy}


class DecodedValidation(keras.callbacks.Callback):
    """Adds decoded validation accuracies (`val_exact_match`, ...) to each epoch's logs.

    Teacher-forced validation loss is a poor guide to decoded accuracy on this task (it rose
    while exact-code accuracy kept improving, see FINDINGS.md), so selection and early
    stopping can monitor what is reported instead. Put it before the callbacks that read logs.
    """

    def __init__(self, serving: Seq2SeqServing, records: Sequence[Record]) -> None:
        super().__init__()
        self.serving, self.records = serving, records

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        predicted = decode(self.serving.greedy, [record.text for record in self.records])
        scores = code_accuracies([record.target for record in self.records], predicted)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in scores.items()})


class AttentionImages(keras.callbacks.Callback):
    """Writes attention heatmaps of a few fixed validation texts to TensorBoard after each epoch.

    Args:
        serving: the serving module around the model being trained.
        texts: the texts to show (the same ones every epoch, so epochs compare).
        log_dir: TensorBoard folder for the images.
    """

    def __init__(self, serving: Seq2SeqServing, texts: Sequence[str], log_dir: str) -> None:
        super().__init__()
        self.serving, self.texts, self.log_dir = serving, list(texts), log_dir
        self._writer = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from tfnlp.attention import alignments_from_outputs
        from tfnlp.plots import attention_figure, figure_png

        outputs = {name: value.numpy() for name, value in self.serving.greedy(text=tf.constant(self.texts)).items()}
        image = tf.io.decode_png(figure_png(attention_figure(alignments_from_outputs(self.texts, outputs))))
        self._writer = self._writer or tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default():
            tf.summary.image("attention", image[None], step=epoch)
        self._writer.flush()


class Seq2SeqTask:
    """One seq2seq run's data side: preprocessing, datasets, model, decoding and evaluation.

    Args:
        experiment: the run's configuration.
        splits: train / validation / test records (targets are normalised to codes without dots).
        classification: every valid code, for constrained decoding; None uses the training codes.
    """

    def __init__(self, experiment: Experiment, splits: Splits, classification: Iterable[str] | None) -> None:
        require_records(splits, tagged=False, source=experiment.data.source)
        self.experiment = experiment
        self.splits = Splits(*(_normalised(part) for part in (splits.train, splits.validation, splits.test)))
        codes = {record.target for record in self.splits.train}
        self.classification = sorted({normalise_code(code) for code in classification} if classification else codes)
        self.preprocessor = Seq2SeqPreprocessor.adapt(self.splits.train, self.classification, experiment.model)
        alphabet = self.preprocessor.alphabet
        self.trie = (CodeTrie.from_codes(self.classification, alphabet) if experiment.model.constrain
                     else CodeTrie.unconstrained(alphabet))

    def build_model(self, steps_per_epoch: int) -> keras.Model:
        """A compiled model; call inside the distribution strategy's scope.

        Args:
            steps_per_epoch: training batches per epoch, for the learning-rate schedule.
        """
        config = self.experiment.model
        categories = self.preprocessor.categories
        model = char_seq2seq(config, self.preprocessor.vectorizer.vocabulary_size(), self.preprocessor.alphabet.size,
                             len(categories))
        # Build the weights now: BackupAndRestore needs a built model to restore into.
        sample = self.splits.train[:2]
        inputs = self.preprocessor.encode_texts(tf.constant([record.text for record in sample]))
        inputs["decoder_input"] = tf.constant(self.preprocessor.encode_codes([record.target for record in sample])[0])
        model(inputs)
        losses = {"chars": masked_loss}
        weights = {"chars": 1.0}
        metrics = {"chars": [masked_accuracy]}
        if categories:
            losses["category"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
            weights["category"] = config.category_loss_weight
            # Logged as category_head_accuracy: `val_category_accuracy` is the decoded one.
            metrics["category"] = [keras.metrics.SparseCategoricalAccuracy(name="head_accuracy")]
        model.compile(optimizer=keras.optimizers.Adam(learning_rate(self.experiment.train, steps_per_epoch)),
                      loss=losses, loss_weights=weights, metrics=metrics)
        return model

    def datasets(self) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        """Training (shuffled) and validation datasets."""
        train = self.experiment.train
        return (self.preprocessor.dataset(self.splits.train, train.batch_size, True, train.seed, train.shuffle_buffer),
                self.preprocessor.dataset(self.splits.validation, train.batch_size, False, train.seed))

    def serving(self, model: keras.Model) -> Seq2SeqServing:
        """The exportable module around `model`."""
        config = self.experiment.model
        return Seq2SeqServing(self.preprocessor, model, self.trie, config.beam_size, config.category_rerank_weight)

    def callbacks(self, serving: Seq2SeqServing, tensorboard_dir: str) -> list[keras.callbacks.Callback]:
        """Task callbacks: decoded validation metrics (they add to the epoch logs: run them first) and
        attention images of four validation texts."""
        shown = [record.text for record in self.splits.validation[:4]]
        return [DecodedValidation(serving, self.splits.validation),
                AttentionImages(serving, shown, f"{tensorboard_dir}/attention")]

    def systems(self, serving: Seq2SeqServing) -> dict[str, Callable]:
        """Decoders to report: `model` (greedy) and `model_beam` when beam search is on."""
        return {"model": serving.greedy, **({"model_beam": serving.serve} if serving.beam_size > 1 else {})}

    def fit(self, model: keras.Model, train_data, validation_data, epochs: int, callbacks: list,
            verbose: int) -> keras.Model:
        """Keras fit; returns the model."""
        return keras_fit(model, train_data, validation_data, epochs, callbacks, verbose)

    def evaluate(self, serving: Seq2SeqServing, records: Sequence[Record],
                 with_baselines: bool = False) -> tuple[dict, list[dict], list[str]]:
        """Accuracies of each decoding system (and of the scikit-learn baselines fitted on the training split)
        on `records`, a few examples of the last decoding system, and its codes."""
        from tfnlp import baselines

        texts = [record.text for record in records]
        truth = [record.target for record in records]
        results, predicted = {}, []
        for system, function in self.systems(serving).items():
            predicted = decode(function, texts)
            results[system] = code_accuracies(truth, predicted)
        for name, baseline in (baselines.BASELINES.items() if with_baselines else ()):
            results[name] = code_accuracies(truth, baseline(self.splits.train, texts))
        shown = zip(texts[:8], truth[:8], predicted[:8], strict=True)
        examples = [{"text": text_, "true": true, "predicted": guess} for text_, true, guess in shown]
        return results, examples, predicted

    def write_reports(self, predicted: Sequence[str], workdir, tensorboard_dir: str) -> dict:
        """Nothing more to write: the seq2seq's figures are the attention images (a callback) and the
        learning curves (`train.write_run_summary`)."""
        return {}

def _normalised(records: Sequence[Record]) -> list[Record]:
    """Records with their targets as codes without dots (`S06.2` -> `S062`)."""
    return [Record(record.text, normalise_code(record.target)) for record in records]


def decode(function: Callable, texts: Sequence[str], batch_size: int = 1024) -> list[str]:
    """Codes for `texts` from a serving function, in batches.

    Args:
        function: `Seq2SeqServing.greedy` or `.serve`, or a loaded SavedModel's signature.
        texts: raw texts.
        batch_size: texts per call.
    """
    codes: list[str] = []
    for start in range(0, len(texts), batch_size):
        outputs = function(text=tf.constant(list(texts[start:start + batch_size]), dtype=tf.string))
        codes += [code.decode("utf-8") for code in outputs["code"].numpy()]
    return codes
