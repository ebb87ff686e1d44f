"""scikit-learn's TF-IDF features and a linear model's decision function, rebuilt in the TensorFlow graph.

`TfidfLinear.from_sklearn` folds a fitted `baselines.tfidf_features()` union (word 1-2 grams,
`char_wb` 2-5 grams, sublinear TF, L2 norm per block) and one-vs-rest linear weights into
lookup tables, IDF vectors and a sparse weight matrix, so that a SavedModel computes the same
scores from raw strings with TensorFlow alone. The analyzers follow scikit-learn's:
lower-casing, words of two or more word characters (`(?u)\\b\\w\\w+\\b`), and for `char_wb`
every n-gram of each whitespace-separated word padded with one space on each side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

WORD_CHARACTERS = r"[^\pL\pN_]+"  # Python's \w: letters, digits (all scripts), underscore
SPACES = r"[\s\pZ]+"


def word_ngrams(texts: tf.Tensor, widths: tuple[int, int]) -> tf.RaggedTensor:
    """scikit-learn's `analyzer="word"` n-grams of lower-cased texts: [B] -> [B, (N)]."""
    words = tf.strings.split(tf.strings.strip(tf.strings.regex_replace(texts, WORD_CHARACTERS, " ")))
    words = tf.ragged.boolean_mask(words, tf.strings.length(words, unit="UTF8_CHAR") >= 2)
    return tf.strings.ngrams(words, ngram_width=tuple(range(widths[0], widths[1] + 1)), separator=" ")


def char_wb_ngrams(texts: tf.Tensor, widths: tuple[int, int]) -> tf.RaggedTensor:
    """scikit-learn's `analyzer="char_wb"` n-grams of lower-cased texts: [B] -> [B, (N)].

    Each padded word gives its n-grams of every width up to its length; a padded word at most
    `widths[1]` long is thus counted whole exactly once, as scikit-learn counts it.
    """
    words = tf.strings.split(tf.strings.strip(tf.strings.regex_replace(texts, SPACES, " ")))
    padded = tf.strings.join([" ", words.flat_values, " "])
    characters = tf.strings.unicode_split(padded, "UTF-8")
    grams = tf.strings.ngrams(characters, ngram_width=tuple(range(widths[0], widths[1] + 1)), separator="")
    return tf.RaggedTensor.from_row_splits(grams.flat_values, tf.gather(grams.row_splits, words.row_splits))


ANALYZERS = {"word": word_ngrams, "char_wb": char_wb_ngrams}


class TfidfBlock(tf.Module):
    """One fitted `TfidfVectorizer` (sublinear TF, L2 norm) as a vocabulary table and IDF weights."""

    def __init__(self, analyzer: str, widths: tuple[int, int], vocabulary: Sequence[str], idf: np.ndarray,
                 offset: int) -> None:
        super().__init__()
        self.analyzer, self.widths, self.size, self.offset = analyzer, widths, len(vocabulary), offset
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(list(vocabulary)),
                                                tf.range(offset, offset + len(vocabulary), dtype=tf.int64)), -1)
        self.idf = tf.Variable(np.asarray(idf, np.float32), trainable=False, name="idf")

    @classmethod
    def from_vectorizer(cls, vectorizer, offset: int) -> TfidfBlock:
        """Refuses the options this block does not reproduce."""
        supported = (vectorizer.analyzer in ANALYZERS and vectorizer.sublinear_tf and vectorizer.norm == "l2"
                     and vectorizer.lowercase and vectorizer.use_idf and vectorizer.strip_accents is None)
        if not supported:
            raise ValueError(f"TfidfBlock: unsupported vectorizer options {vectorizer.get_params()}")
        vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
        return cls(vectorizer.analyzer, vectorizer.ngram_range, vocabulary, vectorizer.idf_, offset)

    def vocabulary(self) -> np.ndarray:
        """The n-grams in feature order (read back from the lookup table)."""
        keys, columns = (tensor.numpy() for tensor in self.table.export())
        return np.array([key.decode("utf-8") for key in keys[np.argsort(columns)]], dtype=str)

    def features(self, lowered: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(row, column) of each known n-gram occurrence, columns offset into the union's feature space."""
        grams = ANALYZERS[self.analyzer](lowered, self.widths)
        ids = self.table.lookup(grams.flat_values)
        rows = grams.value_rowids()
        known = ids >= 0
        return tf.boolean_mask(rows, known), tf.boolean_mask(ids, known)

    def vectors(self, lowered: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The block's TF-IDF vectors as sparse (row, column, value) triples, L2-normalised per row."""
        rows, columns = self.features(lowered)
        batch = tf.shape(lowered, out_type=tf.int64)[0]
        # Count each (row, column) pair once: unique over a combined key.
        keys, position = tf.unique(rows * (1 << 32) + columns)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(position, tf.float32), position, tf.shape(keys)[0])
        key_rows, key_columns = keys // (1 << 32), keys % (1 << 32)
        values = (1.0 + tf.math.log(counts)) * tf.gather(self.idf, key_columns - self.offset)
        norms = tf.sqrt(tf.math.unsorted_segment_sum(values ** 2, key_rows, batch))
        values = values / tf.gather(tf.maximum(norms, 1e-12), key_rows)
        return key_rows, key_columns, values


DENSE_SHARE = 32  # a feature with weights for at least 1/DENSE_SHARE of the classes is stored as a dense row


class TfidfLinear(tf.Module):
    """A linear model over scikit-learn TF-IDF features, computed from raw strings in the graph.

    The weights are stored in two parts. The features with weights for many classes (frequent
    character n-grams, a few percent of the features but most of the work: about 12,000 of a
    French text's 14,200 weight lookups on 1,968 categories) are dense rows, multiplied by the
    texts' dense [B, rows] TF-IDF values in one matmul; the others are stored by feature (CSR
    over the transposed matrix) and gathered, so that a text touches only its own features' weights.

    Args:
        blocks: the feature union's vectorizers, in order (their offsets laid end to end).
        classes: the class of each output column.
        weights: the non-zero weights of the [classes, features] matrix as (rows, columns, values).
        bias: float32 [classes].
    """

    def __init__(self, blocks: Sequence[TfidfBlock], classes: Sequence[str], weights: tuple, bias: np.ndarray
                 ) -> None:
        super().__init__(name="tfidf_linear")
        self.blocks = list(blocks)
        self.classes = tuple(classes)
        self.features = sum(block.size for block in self.blocks)
        rows, columns, values = (np.asarray(part) for part in weights)
        per_feature = np.bincount(columns.astype(np.int64), minlength=self.features)
        dense = np.flatnonzero(per_feature >= max(2, -(-len(self.classes) // DENSE_SHARE)))
        position = np.full(self.features, -1, np.int64)
        position[dense] = np.arange(len(dense))
        self.dense_position = tf.Variable(position, trainable=False, name="dense_position")
        in_dense = position[columns] >= 0
        matrix = np.zeros((len(dense), len(self.classes)), np.float32)
        matrix[position[columns[in_dense]], rows[in_dense]] = values[in_dense]
        self.dense_weights = tf.Variable(matrix, trainable=False, name="dense_weights")
        rows, columns, values = rows[~in_dense], columns[~in_dense], values[~in_dense]
        order = np.lexsort((rows, columns))
        self.feature_splits = tf.Variable(np.searchsorted(columns[order], np.arange(self.features + 1)),
                                          trainable=False, dtype=tf.int64, name="feature_splits")
        self.weight_classes = tf.Variable(rows[order].astype(np.int64), trainable=False, name="weight_classes")
        self.weight_values = tf.Variable(values[order].astype(np.float32), trainable=False, name="weight_values")
        self.bias = tf.Variable(np.asarray(bias, np.float32), trainable=False, name="bias")

    @classmethod
    def from_sklearn(cls, union, classes: Sequence[str], coef: np.ndarray, intercept: np.ndarray,
                     min_weight: float = 0.0, max_weights: int = 0) -> TfidfLinear:
        """Fold a fitted feature union and linear weights [classes, features] into the graph.

        Args:
            union: a fitted `sklearn.pipeline.FeatureUnion` of `TfidfVectorizer`s.
            classes: the class of each row of `coef`.
            coef: float [classes, features] weights; intercept: float [classes].
            min_weight: weights smaller in magnitude are dropped (0 keeps every non-zero weight): the
                decision function then differs from scikit-learn's by at most the dropped terms.
            max_weights: at most this many weights are kept, the largest in magnitude (0: no limit).
        """
        blocks, offset = [], 0
        for _, vectorizer in union.transformer_list:
            blocks.append(TfidfBlock.from_vectorizer(vectorizer, offset))
            offset += blocks[-1].size
        coef = np.asarray(coef)
        rows, columns = np.nonzero(np.abs(coef) > min_weight if min_weight else coef)
        if max_weights and len(rows) > max_weights:
            largest = np.argpartition(-np.abs(coef[rows, columns]), max_weights - 1)[:max_weights]
            rows, columns = rows[largest], columns[largest]
        return cls(blocks, classes, (rows, columns, coef[rows, columns]), np.asarray(intercept).ravel())

    def weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kept weights as (classes, features, values), the dense rows' and the others' together."""
        splits = self.feature_splits.numpy()
        sparse_columns = np.repeat(np.arange(len(splits) - 1), np.diff(splits))
        dense_features = np.flatnonzero(self.dense_position.numpy() >= 0)
        matrix = self.dense_weights.numpy()
        positions, dense_classes = np.nonzero(matrix)
        return (np.concatenate([self.weight_classes.numpy(), dense_classes]),
                np.concatenate([sparse_columns, dense_features[positions]]),
                np.concatenate([self.weight_values.numpy(), matrix[positions, dense_classes]]))

    def state(self) -> dict[str, np.ndarray]:
        """Everything `from_state` needs, as arrays (for `numpy.savez`): the blocks' vocabularies and IDF weights, the
        classes, the kept weights (by feature) and the bias."""
        classes, columns, values = self.weights()
        order = np.lexsort((classes, columns))
        arrays = {"classes": np.array(self.classes, dtype=str), "bias": self.bias.numpy(),
                  "feature_splits": np.searchsorted(columns[order], np.arange(self.features + 1)),
                  "weight_classes": classes[order], "weight_values": values[order],
                  "analyzers": np.array([block.analyzer for block in self.blocks], dtype=str),
                  "widths": np.array([block.widths for block in self.blocks], dtype=np.int64)}
        for index, block in enumerate(self.blocks):
            arrays[f"vocabulary_{index}"] = block.vocabulary()
            arrays[f"idf_{index}"] = block.idf.numpy()
        return arrays

    @classmethod
    def from_state(cls, arrays) -> TfidfLinear:
        """The module `state` describes (`arrays`: a mapping such as `numpy.load`'s)."""
        blocks, offset = [], 0
        for index, (analyzer, widths) in enumerate(zip(arrays["analyzers"], arrays["widths"], strict=True)):
            vocabulary = [str(gram) for gram in arrays[f"vocabulary_{index}"]]
            blocks.append(TfidfBlock(str(analyzer), (int(widths[0]), int(widths[1])), vocabulary,
                                     arrays[f"idf_{index}"], offset))
            offset += len(vocabulary)
        splits = arrays["feature_splits"]
        columns = np.repeat(np.arange(len(splits) - 1), np.diff(splits))
        return cls(blocks, [str(name) for name in arrays["classes"]],
                   (arrays["weight_classes"], columns, arrays["weight_values"]), arrays["bias"])

    @property
    def weight_count(self) -> int:
        """Non-zero weights kept."""
        return int(self.weight_values.shape[0]) + int(np.count_nonzero(self.dense_weights.numpy()))

    def decision_function(self, texts: tf.Tensor) -> tf.Tensor:
        """Scores [B, classes] of raw strings [B], as scikit-learn's `decision_function`."""
        lowered = tf.strings.lower(texts, encoding="utf-8")
        parts = [block.vectors(lowered) for block in self.blocks]
        rows, columns, values = (tf.concat(items, axis=0) for items in zip(*parts, strict=True))
        batch = tf.shape(texts, out_type=tf.int64)[0]
        position = tf.gather(self.dense_position, columns)
        in_dense = position >= 0
        # A dense [B, dense rows] matrix and one matmul: ten times faster here than `sparse_dense_matmul`.
        dense_part = tf.scatter_nd(tf.stack([rows[in_dense], position[in_dense]], axis=1), values[in_dense],
                                   tf.stack([batch, tf.shape(self.dense_weights, out_type=tf.int64)[0]]))
        scores = self._sparse_scores(rows[~in_dense], columns[~in_dense], values[~in_dense], batch)
        return scores + tf.matmul(dense_part, self.dense_weights) + self.bias

    def _sparse_scores(self, rows: tf.Tensor, columns: tf.Tensor, values: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        """Scores [B, classes] of the features stored by feature (without the bias)."""
        # Each known n-gram of a text adds its value times its feature's weights to that text's class scores.
        starts, limits = tf.gather(self.feature_splits, columns), tf.gather(self.feature_splits, columns + 1)
        positions = tf.ragged.range(starts, limits)
        weight_index, entry = positions.flat_values, positions.value_rowids()
        contributions = tf.gather(self.weight_values, weight_index) * tf.gather(values, entry)
        cells = tf.gather(self.weight_classes, weight_index) + tf.gather(rows, entry) * len(self.classes)
        scores = tf.math.unsorted_segment_sum(contributions, cells, batch * len(self.classes))
        return tf.reshape(scores, [batch, len(self.classes)])
