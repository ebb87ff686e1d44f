"""Losses for imbalanced labels: sparse focal cross-entropy, class weights, class-balanced alpha.

Keras ships focal loss only for one-hot targets (`CategoricalFocalCrossentropy`); these work on
integer labels, for one label per text ([batch] targets, [batch, C] predictions) and per token
([batch, T] targets, [batch, T, C] predictions) alike.

`train.loss` picks one:

- `ce`: sparse categorical cross-entropy;
- `weighted`: cross-entropy with scikit-learn's "balanced" class weights (n / (C * count));
- `focal`: focal loss, `-alpha_y (1 - p_y)^gamma log p_y` (Lin et al., 2017), scalar alpha;
- `balanced_focal`: focal loss with per-class alpha from the effective number of samples,
  `(1 - beta) / (1 - beta^count)` normalised to mean 1 (Cui et al., 2019).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from tfnlp.config import LOSSES
from tfnlp.errors import UserError

EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="tfnlp")
class SparseFocalCrossentropy(keras.losses.Loss):
    """Focal cross-entropy on integer labels.

    Args:
        gamma: focusing parameter; 0 gives (alpha-weighted) cross-entropy.
        alpha: None (1 for every class), a scalar, or one weight per class.
        from_logits: whether predictions are logits rather than probabilities.
    """

    def __init__(self, gamma: float = 2.0, alpha: float | Sequence[float] | None = None, from_logits: bool = False,
                 reduction: str = "sum_over_batch_size", name: str = "sparse_focal_crossentropy") -> None:
        super().__init__(reduction=reduction, name=name)
        if gamma < 0:
            raise UserError(f"focal loss gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else (float(alpha) if np.isscalar(alpha) else [float(a) for a in alpha])
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        if self.from_logits:
            log_probabilities = ops.log_softmax(y_pred, axis=-1)
        else:
            probabilities = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
            log_probabilities = ops.log(ops.clip(probabilities, EPSILON, 1.0 - EPSILON))
        log_p = ops.squeeze(ops.take_along_axis(log_probabilities, ops.expand_dims(y_true, -1), axis=-1), -1)
        # (1 - p)^gamma, kept off 0 so that its gradient stays finite for gamma < 1 when p reaches 1.
        modulating = ops.power(ops.maximum(1.0 - ops.exp(log_p), EPSILON), self.gamma)
        loss = -modulating * log_p
        if self.alpha is None:
            return loss
        if isinstance(self.alpha, float):
            return self.alpha * loss
        return ops.take(ops.convert_to_tensor(self.alpha, dtype=loss.dtype), y_true) * loss

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha, "from_logits": self.from_logits}


def balanced_class_weights(counts: Sequence[int]) -> np.ndarray:
    """scikit-learn's "balanced" weights, n / (C * count), over the classes that occur; 0 for absent ones."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def effective_number_alpha(counts: Sequence[int], beta: float = 0.999) -> np.ndarray:
    """Class-balanced alpha (Cui et al., 2019): inverse effective number of samples, mean 1 over present classes."""
    if not 0.0 <= beta < 1.0:
        raise UserError(f"train.focal_beta must be in [0, 1), got {beta}")
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    alpha = np.zeros_like(counts)
    alpha[present] = (1.0 - beta) / (1.0 - np.power(beta, counts[present]))
    return alpha * present.sum() / alpha[present].sum()


def make_loss(name: str, counts: Sequence[int], gamma: float = 2.0, alpha: float = 0.25, beta: float = 0.999,
              from_logits: bool = False) -> tuple[keras.losses.Loss, np.ndarray | None]:
    """The loss `train.loss` names, and the per-class weights to apply as sample weights (for `weighted`).

    Args:
        name: one of LOSSES.
        counts: training examples per class (label index order).
        gamma: focal focusing parameter.
        alpha: focal scalar alpha (`focal`).
        beta: effective-number beta (`balanced_focal`).
        from_logits: whether the model outputs logits.
    """
    if name == "ce" or name == "weighted":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        return loss, balanced_class_weights(counts) if name == "weighted" else None
    if name == "focal":
        return SparseFocalCrossentropy(gamma, alpha, from_logits), None
    if name == "balanced_focal":
        return SparseFocalCrossentropy(gamma, effective_number_alpha(counts, beta).tolist(), from_logits), None
    raise UserError(f"train.loss={name!r}: use one of {', '.join(LOSSES)}")
