"""Text -> ICD-10 code, character by character: the task (model, losses, decoding systems, baselines).

The inputs and targets are `seq2seq_inputs`'s; the export is `seq2seq_serving`'s. Selection and
early stopping follow decoded (greedy) validation accuracies, not teacher-forced loss.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from tfnlp.config import Experiment
from tfnlp.data.icd10 import normalise_code
from tfnlp.data.records import Record, Splits
from tfnlp.metrics import code_accuracies
from tfnlp.models.decoding import CodeTrie
from tfnlp.models.seq2seq import char_seq2seq, masked_accuracy, masked_loss
from tfnlp.models.tfidf import TfidfLinear
from tfnlp.tasks.base import ServingModule, Task, predict_strings
from tfnlp.tasks.seq2seq_inputs import Seq2SeqPreprocessor
from tfnlp.tasks.seq2seq_serving import CategoryFusion, Seq2SeqServing

DECODE_BATCH = 1024  # texts per call of the serving graph when evaluating
ATTENTION_TEXTS = 4  # validation texts whose attention TensorBoard shows each epoch


def decode(function: Callable, texts: Sequence[str], batch_size: int = DECODE_BATCH) -> list[str]:
    """Codes for `texts` from a serving function (`Seq2SeqServing.greedy` or `.serve`, or a loaded SavedModel's
    signature)."""
    return predict_strings(function, texts, "code", batch_size)


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


class Seq2SeqTask(Task):
    """Character-by-character ICD-10 coding.

    Args:
        experiment: the run's configuration.
        splits: train / validation / test records (targets are normalised to codes without dots).
        codes: every valid code, for constrained decoding; None uses the training codes.
    """

    @classmethod
    def from_data(cls, experiment: Experiment, loaded) -> Seq2SeqTask:
        """The task with the source's code set, when it has one (constrained decoding writes only its codes)."""
        return cls(experiment, loaded.splits, loaded.codes)

    def __init__(self, experiment: Experiment, splits: Splits, codes: frozenset[str] | None = None) -> None:
        super().__init__(experiment, splits)
        self.splits = Splits(*(_normalised(part) for part in (splits.train, splits.validation, splits.test)))
        training_codes = {record.target for record in self.splits.train}
        self.codes = sorted({normalise_code(code) for code in codes} if codes else training_codes)
        self.preprocessor = Seq2SeqPreprocessor.adapt(self.splits.train, self.codes, experiment.model)
        alphabet = self.preprocessor.alphabet
        self.trie = (CodeTrie.from_codes(self.codes, alphabet) if experiment.model.constrain
                     else CodeTrie.unconstrained(alphabet))

    def make_model(self) -> keras.Model:
        model = char_seq2seq(self.experiment.model, self.preprocessor.vectorizer.vocabulary_size(),
                             len(self.preprocessor.alphabet), len(self.preprocessor.categories))
        # Build the weights now: BackupAndRestore and set_weights need a built model.
        model(self.preprocessor.model_inputs(self.splits.train[:2]))
        return model

    def loss(self, model: keras.Model) -> dict:
        losses, weights, metrics = {"chars": masked_loss}, {"chars": 1.0}, {"chars": [masked_accuracy]}
        if self.preprocessor.categories:
            losses["category"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
            weights["category"] = self.experiment.model.category_loss_weight
            # Logged as category_head_accuracy: `val_category_accuracy` is the decoded one.
            metrics["category"] = [keras.metrics.SparseCategoricalAccuracy(name="head_accuracy")]
        return {"loss": losses, "loss_weights": weights, "metrics": metrics}

    def dataset(self, records: Sequence[Record], training: bool) -> tf.data.Dataset:
        return self.preprocessor.dataset(records, self.experiment.train, training, self.epoch)

    def serving(self, model: keras.Model) -> Seq2SeqServing:
        config = self.experiment.model
        fusion = CategoryFusion(config.category_prior_weight, self.tfidf_category_graph, config.tfidf_prior_weight,
                                config.tfidf_prior_sharpness)
        return Seq2SeqServing(self.preprocessor, model, self.trie, config.beam_size, config.category_rerank_weight,
                              fusion)

    @functools.cached_property
    def tfidf_category_model(self):
        """The TF-IDF linear SVM over categories, fitted once on the training split: the `baseline_tfidf_linear`
        row and, compiled into the graph, the dictionary side of the beam's fusion."""
        from tfnlp.baselines import LinearCategoryModel

        return LinearCategoryModel.fit(self.splits.train, self.experiment.train.seed)

    @functools.cached_property
    def tfidf_category_graph(self) -> TfidfLinear | None:
        """`tfidf_category_model` as a graph module, when the fusion uses it (and beam search is on)."""
        config = self.experiment.model
        if not (config.tfidf_prior_weight and config.beam_size > 1):
            return None
        fitted = self.tfidf_category_model
        return TfidfLinear.from_sklearn(fitted.features, fitted.classes, *fitted.weights(), config.tfidf_min_weight)

    def truth(self, records: Sequence[Record]) -> list[str]:
        return [record.target for record in records]

    def predict(self, serving: ServingModule, records: Sequence[Record]) -> list[str]:
        """Greedy constrained codes: what validation scores each epoch."""
        return decode(serving.greedy, [record.text for record in records])

    def score(self, truth: list[str], predicted: list[str]) -> dict[str, float]:
        return code_accuracies(truth, predicted)

    def systems(self, serving: ServingModule) -> dict[str, Callable]:
        """`model` (greedy) and `model_beam` when beam search is on."""
        systems = super().systems(serving)
        if serving.beam_size > 1:
            systems["model_beam"] = lambda records: decode(serving.serve, [record.text for record in records])
        return systems

    def baselines(self, records: Sequence[Record]) -> dict[str, list[str]]:
        from tfnlp import baselines

        texts = [record.text for record in records]
        return {"baseline_tfidf_nn": baselines.tfidf_nearest_neighbour(self.splits.train, texts),
                "baseline_tfidf_linear": self.tfidf_category_model.predict(texts)}

    def extra_callbacks(self, serving: ServingModule, tensorboard_dir: str) -> list[keras.callbacks.Callback]:
        """Attention images of a few validation texts."""
        shown = [record.text for record in self.splits.validation[:ATTENTION_TEXTS]]
        return [AttentionImages(serving, shown, f"{tensorboard_dir}/attention")]


def _normalised(records: Sequence[Record]) -> list[Record]:
    """Records with their targets as codes without dots (`S06.2` -> `S062`)."""
    return [Record(record.text, normalise_code(record.target)) for record in records]
