"""Text -> ICD-10 code, character by character: the task (model, losses, decoding systems, baselines).

The inputs and targets are `seq2seq_inputs`'s; the export is `seq2seq_serving`'s. Selection and
early stopping follow decoded (greedy) validation accuracies, not teacher-forced loss.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfnlp.config import Experiment
from tfnlp.data.icd10 import category, chapter, normalise_code
from tfnlp.data.records import Record, Splits
from tfnlp.errors import UserError
from tfnlp.metrics import code_accuracies
from tfnlp.models.decoding import CodeTrie
from tfnlp.models.seq2seq import char_seq2seq, masked_accuracy, masked_loss
from tfnlp.models.tfidf import TfidfLinear
from tfnlp.tasks.base import ServingModule, Task, predict_strings
from tfnlp.tasks.seq2seq_inputs import Seq2SeqPreprocessor
from tfnlp.tasks.seq2seq_serving import (
    Answers,
    CategoryFusion,
    RankCalibration,
    Seq2SeqServing,
    each_category_confidence,
)

TFIDF_FILE = "tfidf.npz"
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
        """The task with the source's code set and labels, when it has them (constrained decoding writes only its
        codes; answers show their labels)."""
        return cls(experiment, loaded.splits, loaded.codes, labels=loaded.labels)

    def __init__(self, experiment: Experiment, splits: Splits, codes: frozenset[str] | None = None,
                 preprocessor: Seq2SeqPreprocessor | None = None, labels: dict[str, str] | None = None) -> None:
        super().__init__(experiment, splits)
        self.splits = Splits(*(_normalised(part) for part in (splits.train, splits.validation, splits.test)))
        training_codes = {record.target for record in self.splits.train}
        self.codes = sorted({normalise_code(code) for code in codes} if codes else training_codes)
        self.labels = code_labels(self.codes, labels, self.splits.train)
        self.preprocessor = preprocessor or Seq2SeqPreprocessor.adapt(self.splits.train, self.codes, experiment.model)
        alphabet = self.preprocessor.alphabet
        self.trie = (CodeTrie.from_codes(self.codes, alphabet) if experiment.model.constrain
                     else CodeTrie.unconstrained(alphabet))

    def fitted_state(self, folder: Path) -> dict:
        """The code set and the preprocessor; the in-graph TF-IDF model's tables in `tfidf.npz`."""
        if self.tfidf_category_graph is not None:
            np.savez_compressed(folder / TFIDF_FILE, **self.tfidf_category_graph.state())
        return {"codes": self.codes, "labels": self.labels, "preprocessor": self.preprocessor.state()}

    @classmethod
    def from_state(cls, experiment: Experiment, splits: Splits, fitted: dict, folder: Path) -> Seq2SeqTask:
        preprocessor = Seq2SeqPreprocessor.from_state(fitted["preprocessor"])
        task = cls(experiment, splits, frozenset(fitted["codes"]), preprocessor, fitted.get("labels"))
        if (folder / TFIDF_FILE).exists():
            with np.load(folder / TFIDF_FILE) as arrays:
                task.tfidf_category_graph = TfidfLinear.from_state(arrays)
        return task

    slice_by = "chapter"
    served_metrics = ("chapter_accuracy", "category_accuracy", "exact_match")

    @classmethod
    def search_space(cls, experiment: Experiment) -> dict:
        return {"train.learning_rate": {"low": 5e-4, "high": 5e-3, "log": True}, "train.batch_size": [32, 64, 128],
                "model.units": [128, 256], "model.dropout": {"low": 0.1, "high": 0.4},
                "model.category_loss_weight": {"low": 0.25, "high": 1.0}}

    headline = "category_accuracy"

    @classmethod
    def limitations(cls, experiment: Experiment, test: dict[str, dict[str, float]]) -> list[str]:
        lines = super().limitations(experiment, test)
        model = experiment.model
        scores = test.get("model_beam", test.get("model", {}))
        if "exact_match" in scores:
            lines.append(f"The full code is right for {scores['exact_match']:.0%} of the test texts and the category "
                         f"(3 characters) for {scores.get('category_accuracy', 0.0):.0%}: a person should check the "
                         "code's last character.")
        lines.append("It writes only codes of the code set it was trained with (constrained decoding)."
                     if model.constrain else "Unconstrained decoding (model.constrain=false): it may write codes "
                     "that do not exist.")
        return lines

    @classmethod
    def served_truth(cls, experiment: Experiment, records: Sequence[Record]) -> list[str]:
        return [normalise_code(record.target) for record in records]

    @classmethod
    def served_prediction(cls, answer) -> str:
        return answer.code

    @classmethod
    def served_score(cls, truth: list[str], predicted: list[str]) -> dict[str, float]:
        return code_accuracies(truth, predicted)

    @classmethod
    def slice_of(cls, truth: str) -> str:
        return chapter(truth)

    def make_model(self) -> keras.Model:
        model = char_seq2seq(self.experiment.model, self.preprocessor.vectorizer.vocabulary_size(),
                             len(self.preprocessor.alphabet), len(self.preprocessor.categories))
        # Build the weights now: BackupAndRestore and set_weights need a built model.
        model(self.preprocessor.model_inputs((self.splits.train or self.splits.validation)[:2]))
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
                              fusion, Answers(config.top_k, self.labels), config.codes_per_category)

    def calibrate(self, serving: Seq2SeqServing) -> dict:
        """Fit each signature's confidences and review threshold on the validation split and fold them into
        `serving`; the report: calibration error (ECE, exact code) before and after, and the share of texts answered
        without review with their category precision."""
        config = self.experiment.model
        texts = [record.text for record in self.splits.validation]
        truth = [record.target for record in self.splits.validation]
        report = {}
        for name, width in (("beam", serving.beam_size), ("greedy", 1)):
            ranked = serving.ranked_scores(texts, width)
            fitted, summary = fit_rank_calibration(ranked.codes, ranked.scores, truth, config.calibration,
                                                   config.review_precision, min(config.top_k, width),
                                                   ranked.evidence if width > 1 else None)
            serving.set_calibration(name, fitted)
            report[name] = summary
        return report

    @functools.cached_property
    def tfidf_category_model(self):
        """The TF-IDF linear SVM over categories, fitted once on the training split: the `baseline_tfidf_linear`
        row and, compiled into the graph, the dictionary side of the beam's fusion."""
        from tfnlp import progress
        from tfnlp.baselines import LinearTextModel

        if not self.splits.train:
            raise UserError("the TF-IDF SVM is fitted on the training split, which a task restored from a run's state "
                            "does not hold")
        with progress.step(f"fitting the TF-IDF linear SVM over categories ({len(self.splits.train)} texts)"):
            return LinearTextModel.categories_svm(self.splits.train, self.experiment.train.seed)

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


def code_labels(codes: Sequence[str], labels: dict[str, str] | None, train: Sequence[Record]) -> dict[str, str]:
    """Each code's label: the code set's (its category's where the code has none); for data without a code set, the
    most frequent training text of the code."""
    if labels:
        known = {normalise_code(code): label for code, label in labels.items()}
        return {code: known.get(code) or known.get(category(code), "") for code in codes}
    texts: dict[str, Counter] = {}
    for record in train:
        texts.setdefault(record.target, Counter())[record.text] += 1
    return {code: texts[code].most_common(1)[0][0] if code in texts else "" for code in codes}


def fit_rank_calibration(codes: list[list[str]], scores: np.ndarray, truth: Sequence[str], method: str,
                         target_precision: float, top_k: int | None = None,
                         evidence: np.ndarray | None = None) -> tuple[RankCalibration, dict]:
    """The calibration of ranked codes (`codes` [N][K] with their final `scores` [N, K]) against the `truth`, by
    `method`, and the review threshold reaching `target_precision` on category; with what it gave.

    The review goes by the best code's confidence or by its category's (summed over the `top_k` codes the export
    lists; all K: None), whichever answers more validation texts: with at most two codes per category the category's
    does (cim10: 56.7% against 55.1% at 0.95); with five siblings of one category listed, it is near 1 whether the
    category is right or not, and the best code's does. Given `evidence` [N, K, E] (the category models'
    probabilities of each ranked code's category, `Seq2SeqServing.ranked_scores`), the category's confidence is the
    summed one combined with them by a logistic regression fitted here (`calibration.fit_evidence`): two models that
    agree with the beam are evidence it does not hold (cim10 validation: 58.6% answered against 56.7%). It is
    fitted on every listed category (`listed_categories`), not only the best code's: the wrong alternatives show
    what the models' disagreement looks like (cim10 validation, thresholds chosen on held-out folds: 60.5% answered
    against 58.3% fitted on the best code's category alone; 59.2% against 58.9% with another training seed).
    """
    from tfnlp import calibration as cal

    right = np.array([[code == target for code in row] for row, target in zip(codes, truth, strict=True)], bool)
    fitted, raw, calibrated = cal.fit_ranked(scores, right, method)
    best_category_right = np.array([category(row[0]) == category(target) for row, target in zip(codes, truth,
                                                                                                strict=True)])
    listed = slice(0, top_k)
    listed_codes = [row[listed] for row in codes]
    by_code = each_category_confidence(tf.constant(listed_codes, tf.string),
                                       tf.constant(calibrated[:, listed], tf.float32)).numpy()
    summed = by_code[:, 0]
    category_report = {"category_ece_summed": cal.expected_calibration_error(summed, best_category_right)}
    columns = summed[:, None] if evidence is None else np.column_stack([summed, evidence[:, 0]])
    if evidence is not None:
        weights, bias = cal.fit_evidence(*listed_categories(listed_codes, by_code, evidence[:, listed], truth))
        fitted = dataclasses.replace(fitted, evidence_weights=weights, evidence_bias=bias)
    # As the graph computes it (clipped, combined; 0 where the beam found no code), so that its threshold holds there.
    in_category = np.where([bool(row[0]) for row in codes],
                           cal.combined(columns, fitted.evidence_weights, fitted.evidence_bias), 0.0)
    if evidence is not None:
        category_report.update(category_ece=cal.expected_calibration_error(in_category, best_category_right),
                               evidence_weights=list(fitted.evidence_weights), evidence_bias=fitted.evidence_bias)
    by_best = cal.review_threshold(calibrated[:, 0], best_category_right, target_precision)
    by_category = cal.review_threshold(in_category, best_category_right, target_precision)
    review, review_by = (by_category, "category") if by_category.answered > by_best.answered else (by_best, "best")
    return (dataclasses.replace(fitted, threshold=review.threshold, review_by=review_by),
            {**cal.summary(raw, calibrated, right, fitted, review, "category", target_precision),
             "review_by": review_by, **category_report})


def listed_categories(codes: list[list[str]], summed: np.ndarray, evidence: np.ndarray,
                      truth: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct category of each text's listed codes (`codes` [N][k]) as what the category confidence reads of
    it, its listed codes' summed confidence (`summed` [N, k], `each_category_confidence`) and the category models'
    probabilities of it (`evidence` [N, k, E]), [M, 1 + E]; and whether it is its text's category [M]."""
    rows, right = [], []
    for listed, sums, models, target in zip(codes, summed, evidence, truth, strict=True):
        first: dict[str, int] = {}  # a category's first listed code stands for it (all of its codes read the same)
        for index, code in enumerate(listed):
            if code:
                first.setdefault(category(code), index)
        for name, index in first.items():
            rows.append([sums[index], *models[index]])
            right.append(name == category(target))
    return np.array(rows, float).reshape(-1, 1 + evidence.shape[2]), np.array(right, bool)


def _normalised(records: Sequence[Record]) -> list[Record]:
    """Records with their targets as codes without dots (`S06.2` -> `S062`)."""
    return [Record(record.text, normalise_code(record.target)) for record in records]
