"""scikit-learn baselines, fitted on the same split as the neural model.

- `baseline_tfidf_nn`: TF-IDF (word 1-2 and character 2-5 n-grams) nearest neighbour, the
  dictionary look-up that won CLEF eHealth 2016. It can only answer codes seen in training.
- `baseline_tfidf_linear` (`LinearTextModel.categories_svm`): a linear SVM on the same features predicting the
  category (three characters); its "code" is that category. The seq2seq's beam also reads it, in the graph.
- `baseline_tfidf_logreg` (`LinearTextModel.logistic_regression`): TF-IDF + one-vs-rest logistic regression, for any
  classification. The classifiers fuse it, in the graph, with their network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC

from tfnlp.data.icd10 import category
from tfnlp.data.records import Record


def tfidf_features() -> FeatureUnion:
    """Word 1-2 grams and character 2-5 grams (within word boundaries), sublinear TF."""
    return FeatureUnion([
        ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
    ])


def tfidf_nearest_neighbour(train: Sequence[Record], texts: Sequence[str], batch_size: int = 2048) -> list[str]:
    """The code of each text's most similar training text (cosine on TF-IDF)."""
    features = tfidf_features().fit([record.text for record in train])
    train_matrix = normalize(features.transform([record.text for record in train]))
    codes = np.array([record.target for record in train])
    predicted: list[str] = []
    for start in range(0, len(texts), batch_size):
        query = normalize(features.transform(texts[start:start + batch_size]))
        predicted += codes[np.asarray((query @ train_matrix.T).argmax(axis=1)).ravel()].tolist()
    return predicted


@dataclass(frozen=True)
class LinearTextModel:
    """A fitted TF-IDF (`tfidf_features()`) + one-vs-rest linear model over text labels.

    Attributes:
        features: the fitted `tfidf_features()` union.
        classifier: the fitted one-vs-rest linear estimator (LinearSVC or LogisticRegression).
    """

    features: FeatureUnion
    classifier: OneVsRestClassifier

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], estimator) -> LinearTextModel:
        """Fit `estimator` one-vs-rest, on every core, on the TF-IDF features of `texts`."""
        features = tfidf_features()
        matrix = features.fit_transform(list(texts)).tocsr()
        matrix.sort_indices()  # the parallel workers get it read-only: liblinear's checks must not sort it
        classifier = OneVsRestClassifier(estimator, n_jobs=-1)
        classifier.fit(matrix, list(labels))
        return cls(features, classifier)

    @classmethod
    def categories_svm(cls, train: Sequence[Record], seed: int = 0) -> LinearTextModel:
        """A linear SVM over the codes' categories (three characters): `baseline_tfidf_linear`. One binary SVM per
        category (about 2,000 on cim10): the slow part of a coder's run."""
        return cls.fit([record.text for record in train], [category(record.target) for record in train],
                       LinearSVC(C=1.0, random_state=seed))

    @classmethod
    def logistic_regression(cls, texts: Sequence[str], labels: Sequence[str], seed: int = 0) -> LinearTextModel:
        """Logistic regression (liblinear, C=10): `baseline_tfidf_logreg`. One-vs-rest: a multinomial fit over the
        ~2,000 ICD-10 categories would hold features x classes weights in every L-BFGS history vector (tens of GB)."""
        from sklearn.linear_model import LogisticRegression

        return cls.fit(texts, labels, LogisticRegression(solver="liblinear", C=10.0, random_state=seed))

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most likely label of each text."""
        return self.classifier.predict(self.features.transform(list(texts))).tolist()

    @property
    def classes(self) -> list[str]:
        return [str(name) for name in self.classifier.classes_]

    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients [classes, features] and intercepts [classes] whose scores rank the classes as the
        classifier does: with two classes the one binary model's score goes to the second class, its negation
        to the first; a single class gets a constant score."""
        estimators = self.classifier.estimators_
        if len(self.classes) == 1:
            return np.zeros((1, self.features.transform([""]).shape[1])), np.zeros(1)
        coef = np.vstack([estimator.coef_ for estimator in estimators])
        intercept = np.array([np.ravel(estimator.intercept_)[0] for estimator in estimators])
        if len(self.classes) == 2:
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        return coef, intercept


def tfidf_logistic_regression(train_texts: Sequence[str], train_labels: Sequence[str], texts: Sequence[str],
                              seed: int = 0) -> list[str]:
    """`LinearTextModel.logistic_regression` fitted on the training texts: a label for each of `texts`."""
    return LinearTextModel.logistic_regression(train_texts, train_labels, seed).predict(texts)
