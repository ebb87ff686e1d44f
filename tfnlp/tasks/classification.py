"""Text classification: labels, vocabulary, tf.data, the model's fit, evaluation and the serving signature.

One task serves every classifier of `tfnlp.models.classifiers`. Keras classifiers train with
`model.fit` (loss from `train.loss`: cross-entropy, class-weighted, focal or class-balanced
focal); the `mean_vectors_*` models are fitted by scikit-learn (LogisticRegression,
MLPClassifier) on mean word vectors computed by the same Keras featuriser that serves them, and
their fitted weights become dense layers, so every classifier exports the same way.

Labels that occur only in validation or test map to `<UNK>`, which the model never predicts;
the report counts them.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfnlp.config import Experiment
from tfnlp.data import Record
from tfnlp.data import text as text_lib
from tfnlp.data.splits import Splits
from tfnlp.errors import UserError
from tfnlp.losses import make_loss
from tfnlp.metrics import classification_scores, write_classification_report
from tfnlp.models.classifiers import CLASSIFIERS, dense_head, mean_vectors_features
from tfnlp.tasks import keras_fit, learning_rate, require_records

UNKNOWN_LABEL = "<UNK>"
SKLEARN_MODELS = ("mean_vectors_linear", "mean_vectors_mlp")
WORDPIECE_MODELS = ("bert",)  # they bring their own tokenizer: no word vocabulary
VECTOR_MODELS = ("glove_bilstm",)  # Keras classifiers that need pretrained vectors


def cut_label(target: str, length: int) -> str:
    """The target cut to `length` characters (0 keeps it whole); ICD-10 dots removed first when cutting."""
    return target.replace(".", "")[:length] if length else target


class LabelVocabulary:
    """`<UNK>` (index 0) and the training labels, sorted."""

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = (UNKNOWN_LABEL, *sorted(set(labels) - {UNKNOWN_LABEL}))
        self._index = {label: index for index, label in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def ids(self, labels: Sequence[str]) -> np.ndarray:
        return np.array([self._index.get(label, 0) for label in labels], dtype=np.int32)

    def known(self, labels: Sequence[str]) -> list[str]:
        """Each label, or `<UNK>` when training never saw it."""
        return [label if label in self._index else UNKNOWN_LABEL for label in labels]

    def counts(self, labels: Sequence[str]) -> np.ndarray:
        return np.bincount(self.ids(labels), minlength=len(self.labels))


class ClassifierServing(tf.Module):
    """The export: raw texts -> `label`, `score` (its probability), `probabilities` [B, C]; and, as signature
    `tokens`, the words the model reads (after standardisation and `data.preprocess`)."""

    def __init__(self, model: keras.Model, labels: Sequence[str], preprocess: keras.layers.Layer | None = None,
                 word_level: bool = True) -> None:
        super().__init__()
        self.model = model
        self.labels = tf.constant(list(labels))
        self.preprocess = preprocess
        self.word_level = word_level

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        probabilities = self.model(text, training=False)
        best = tf.argmax(probabilities, axis=-1)
        return {"label": tf.gather(self.labels, best), "score": tf.reduce_max(probabilities, axis=-1),
                "probabilities": probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokens(self, text):
        prepared = self.preprocess(text) if self.preprocess is not None else text_lib.standardize(text)
        return {"tokens": tf.strings.split(prepared).to_tensor("")}

    def signatures(self) -> dict:
        return {"serving_default": self.serve, **({"tokens": self.tokens} if self.word_level else {})}

    def predict_labels(self, texts: Sequence[str], batch_size: int = 512) -> list[str]:
        labels: list[str] = []
        for start in range(0, len(texts), batch_size):
            outputs = self.serve(tf.constant(list(texts[start:start + batch_size])))
            labels += [label.decode() for label in outputs["label"].numpy()]
        return labels


class ClassificationTask:
    """One classification run's data side.

    Args:
        experiment: the run's configuration (`data.label_length` cuts targets).
        splits: train / validation / test records.
        classification: unused (classifiers learn the labels they see in training).
    """

    def __init__(self, experiment: Experiment, splits: Splits, classification=None) -> None:
        self.experiment = experiment
        _check_model_name(experiment.model)
        require_records(splits, tagged=False, source=experiment.data.source)
        length = experiment.data.label_length
        self.splits = Splits(*([Record(record.text, cut_label(record.target, length)) for record in part]
                               for part in (splits.train, splits.validation, splits.test)))
        self.label_vocabulary = LabelVocabulary([record.target for record in self.splits.train])
        self.preprocess = self._preprocess_layer()
        self.vectors = self._load_vectors()
        self.vectorizer = None if experiment.model.name in WORDPIECE_MODELS else self._vectorizer()

    def _preprocess_layer(self) -> keras.layers.Layer | None:
        """`Lemmatize` for `data.preprocess=lemma` (its table built with spaCy on the training texts)."""
        if self.experiment.data.preprocess != "lemma":
            return None
        from tfnlp.data.lemmas import Lemmatize, lemma_table

        table = lemma_table(self._texts(self.splits.train))
        print(f"lemmas: {len(table)} training words map to another lemma (spaCy fr_core_news_md)")
        return Lemmatize(table, name="lemmatize")

    def training_words(self, texts: Sequence[str]) -> list[list[str]]:
        """The words the training pipeline feeds the vectorizer for `texts`."""
        prepared = (self.preprocess(tf.constant(list(texts))) if self.preprocess is not None
                    else text_lib.standardize(tf.constant(list(texts))))
        return [line.decode().split() for line in prepared.numpy()]

    def _load_vectors(self):
        if not self.experiment.model.vectors:
            return None
        from tfnlp.data.vectors import load_vectors

        words = {word for line in self.training_words(self._texts(self.splits.train)) for word in line}
        vectors = load_vectors(self.experiment.model.vectors, self.experiment.model.vocab_size, words)
        found, missing = vectors.coverage(words)
        self.coverage = {"vectors": self.experiment.model.vectors, "training_words_found": found,
                         "training_words_missing": missing}
        print(f"vectors {self.experiment.model.vectors}: {len(vectors.words)} words of {vectors.dim} dimensions; "
              f"training vocabulary coverage {found}/{found + missing} ({found / max(found + missing, 1):.1%})")
        return vectors

    def _vectorizer(self) -> keras.layers.TextVectorization:
        """Words of the pretrained vectors when there are some, else the training vocabulary."""
        if self.vectors is not None:
            return keras.layers.TextVectorization(standardize=text_lib.standardize, split="whitespace",
                                                  vocabulary=list(self.vectors.words), name="words")
        vectorizer = keras.layers.TextVectorization(max_tokens=self.experiment.model.vocab_size,
                                                    standardize=text_lib.standardize, split="whitespace", name="words")
        texts = tf.data.Dataset.from_tensor_slices(tf.constant(self._texts(self.splits.train))).batch(1024)
        vectorizer.adapt(texts.map(self.preprocess) if self.preprocess is not None else texts)
        return vectorizer

    def embedding_matrix(self) -> np.ndarray | None:
        """Rows for the vectorizer's ids: 0 padding and 1 unknown are zeros, then the vectors in order."""
        if self.vectors is None:
            return None
        return np.concatenate([np.zeros((2, self.vectors.dim), np.float32), self.vectors.matrix])

    @staticmethod
    def _texts(records: Sequence[Record]) -> list[str]:
        return [record.text for record in records]

    @functools.cached_property
    def train_counts(self) -> np.ndarray:
        """Training texts per label index (for class weights and class-balanced alpha)."""
        return self.label_vocabulary.counts(self._targets(self.splits.train))

    def _targets(self, records: Sequence[Record]) -> list[str]:
        return self.label_vocabulary.known([record.target for record in records])

    def build_model(self, steps_per_epoch: int) -> keras.Model:
        """A compiled Keras classifier, or the featuriser of a scikit-learn one (fitted in `fit`)."""
        config = self.experiment.model
        if config.name in SKLEARN_MODELS:
            return mean_vectors_features(self.vectorizer, self.embedding_matrix(), config.max_input_tokens,
                                         self.preprocess)
        model = CLASSIFIERS.get(config.name)(config, self.vectorizer, len(self.label_vocabulary),
                                             self.embedding_matrix(), self.preprocess)
        train = self.experiment.train
        loss, _ = make_loss(train.loss, self.train_counts, train.focal_gamma, train.focal_alpha, train.focal_beta)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate(train, steps_per_epoch)), loss=loss,
                      metrics=["accuracy"])
        return model

    def dataset(self, records: Sequence[Record], training: bool) -> tf.data.Dataset:
        """(text, label id[, sample weight]) batches; class weights as sample weights for `train.loss=weighted`."""
        train = self.experiment.train
        labels = self.label_vocabulary.ids(self._targets(records))
        columns = (tf.constant(self._texts(records)), labels)
        _, class_weights = make_loss(train.loss, self.train_counts)
        if class_weights is not None and training:
            columns += (class_weights[labels].astype(np.float32),)
        dataset = tf.data.Dataset.from_tensor_slices(columns).cache()
        if training:
            dataset = dataset.shuffle(min(train.shuffle_buffer, len(records)), seed=train.seed,
                                      reshuffle_each_iteration=True)
        return dataset.batch(train.batch_size).prefetch(tf.data.AUTOTUNE)

    def datasets(self) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        return self.dataset(self.splits.train, True), self.dataset(self.splits.validation, False)

    def fit(self, model: keras.Model, train_data, validation_data, epochs: int, callbacks: list,
            verbose: int) -> keras.Model:
        """The trained classifier: Keras fit, or for the scikit-learn models, the featuriser followed by the
        dense layers that scikit-learn fitted on its vectors."""
        if self.experiment.model.name not in SKLEARN_MODELS:
            return keras_fit(model, train_data, validation_data, epochs, callbacks, verbose)
        return self._fit_sklearn(model)

    def _fit_sklearn(self, features: keras.Model) -> keras.Model:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier
        from sklearn.preprocessing import StandardScaler

        config, seed = self.experiment.model, self.experiment.train.seed
        matrix = features.predict(tf.constant(self._texts(self.splits.train)), batch_size=1024, verbose=0)
        labels = self.label_vocabulary.ids(self._targets(self.splits.train))
        # Standardised features: the MLP needs them to train well; the scaling is folded into the first layer.
        scaler = StandardScaler().fit(matrix)
        if config.name == "mean_vectors_linear":
            estimator = LogisticRegression(max_iter=2000, C=1.0)
        else:
            estimator = MLPClassifier(hidden_layer_sizes=(config.hidden_units,), early_stopping=True,
                                      random_state=seed, max_iter=300)
        estimator.fit(scaler.transform(matrix), labels)
        layers = _fitted_layers(estimator, len(self.label_vocabulary), scaler)
        return dense_head(features, layers, name=config.name)

    def serving(self, model: keras.Model) -> ClassifierServing:
        return ClassifierServing(model, self.label_vocabulary.labels, self.preprocess,
                                 word_level=self.experiment.model.name not in WORDPIECE_MODELS)

    def callbacks(self, serving, tensorboard_dir: str) -> list:
        return []

    def evaluate(self, serving: ClassifierServing, records: Sequence[Record],
                 with_baselines: bool) -> tuple[dict, list[dict], list[str]]:
        """Scores of the model (and the TF-IDF + logistic regression baseline) on `records`, a few examples, and
        the model's predicted labels."""
        texts, truth = self._texts(records), self._targets(records)
        predicted = serving.predict_labels(texts)
        results = {"model": classification_scores(truth, predicted)}
        if with_baselines:
            results["baseline_tfidf_logreg"] = classification_scores(truth, self.tfidf_logreg(texts))
        examples = [{"text": text_, "true": true, "predicted": guess}
                    for text_, true, guess in zip(texts[:8], truth[:8], predicted[:8], strict=True)]
        return results, examples, predicted

    def tfidf_logreg(self, texts: Sequence[str]) -> list[str]:
        """TF-IDF (word 1-2 and char 2-5 grams) + logistic regression fitted on the training split.

        One-vs-rest liblinear: a multinomial fit over the ~2,000 ICD-10 categories would hold
        features x classes weights in every L-BFGS history vector (tens of GB).
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        from tfnlp.baselines import tfidf_features

        features = tfidf_features()
        matrix = features.fit_transform(self._texts(self.splits.train)).tocsr()
        matrix.sort_indices()  # the parallel workers get it read-only: liblinear's checks must not sort it
        classifier = OneVsRestClassifier(LogisticRegression(solver="liblinear", C=10.0), n_jobs=-1)
        classifier.fit(matrix, self._targets(self.splits.train))
        return classifier.predict(features.transform(list(texts))).tolist()

    def write_reports(self, predicted: Sequence[str], workdir: Path, tensorboard_dir: str) -> dict:
        """Per-class CSV and figures of the test split (`predicted`: its labels as `evaluate` gave them) under
        `workdir/report`; counts of unseen labels."""
        truth = self._targets(self.splits.test)
        write_classification_report(truth, predicted, self._targets(self.splits.train), workdir / "report",
                                    tensorboard_dir=tensorboard_dir)
        unseen = Counter(truth)[UNKNOWN_LABEL]
        print(f"report: {workdir / 'report'}; {unseen} of {len(truth)} test texts have a label unseen in training")
        return {"unseen_test_labels": unseen, "classes": len(self.label_vocabulary) - 1,
                **({"vector_coverage": self.coverage} if self.vectors is not None else {})}


def _check_model_name(config) -> None:
    """A classifier name the task can build, with the pretrained vectors it needs; UserError otherwise."""
    known = sorted((*CLASSIFIERS.names(), *SKLEARN_MODELS))
    if config.name not in known:
        raise UserError(f"model.name={config.name!r}: not a classifier; known: {', '.join(known)}")
    if config.name in (*SKLEARN_MODELS, *VECTOR_MODELS) and not config.vectors:
        raise UserError(f"model.name={config.name} needs pretrained vectors: --set model.vectors=glove-6b-50d "
                        "(or fr-vectors, or a GloVe / word2vec / fastText file)")


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
