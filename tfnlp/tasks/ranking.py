"""Ranked answers in the serving graph: calibrated confidences of ranked hypotheses or classes, and review flags.

One piece of graph code for every export that ranks answers (the coder's beam, a classifier's labels):
a signature's fitted `tfnlp.calibration.RankCalibration` lives in variables (`calibration_variables`,
set by `assign` after training), and `confidences` turns final scores [B, K], best first, into
confidences that are non-increasing along K and sum to at most 1. A text with no letter or digit (empty, blank,
punctuation only) is not answered: no candidate, confidence 0, and flagged for review (`withheld`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfnlp.calibration import EVIDENCE_EPSILON, LOG_ODDS_EPSILON, NEG_INF, RankCalibration

UNCALIBRATED = RankCalibration("none")  # the raw confidences, until a calibration is fitted


def calibration_variables(name: str, calibration: RankCalibration = UNCALIBRATED) -> dict[str, tf.Variable]:
    """A signature's calibration as variables (`assign` sets them to a fitted one before export)."""
    def variable(value, dtype, suffix, shape=None):
        return tf.Variable(value, trainable=False, dtype=dtype, shape=shape, name=f"{name}_{suffix}")

    return {"temperature": variable(calibration.temperature, tf.float32, "temperature"),
            "none_logit": variable(calibration.none_logit, tf.float32, "none_logit"),
            "isotonic": variable(calibration.method != "temperature", tf.bool, "isotonic"),
            "log_odds": variable(calibration.method == "isotonic", tf.bool, "log_odds"),
            "points_x": variable(calibration.points_x, tf.float32, "points_x", tf.TensorShape([None])),
            "points_y": variable(calibration.points_y, tf.float32, "points_y", tf.TensorShape([None])),
            "threshold": variable(calibration.threshold, tf.float32, "threshold"),
            "review_by_category": variable(calibration.review_by == "category", tf.bool, "review_by_category"),
            "evidence_weights": variable(calibration.evidence_weights, tf.float32, "evidence_weights",
                                         tf.TensorShape([None])),
            "evidence_bias": variable(calibration.evidence_bias, tf.float32, "evidence_bias")}


def confidences(scores: tf.Tensor, calibration: dict[str, tf.Variable]) -> tf.Tensor:
    """Calibrated confidences [B, K] of hypotheses' final scores [B, K] sorted best first (`RankCalibration`)."""
    def softmax_with_none(temperature, none_logit):
        logits = scores / temperature
        none = tf.fill([tf.shape(scores)[0], 1], none_logit)
        return tf.exp(logits - tf.reduce_logsumexp(tf.concat([logits, none], axis=1), axis=1, keepdims=True))

    def isotonic():
        # One hypothesis (greedy): its own probability; several: a softmax over them. The isotonic map reads their
        # log-odds (`log_odds`); `none` (the same branch, identity points) the probabilities themselves.
        raw = tf.exp(scores) if scores.shape[1] == 1 else softmax_with_none(1.0, NEG_INF)
        read = tf.where(calibration["log_odds"], log_odds(scores), raw)
        mapped = interpolate(read, calibration["points_x"], calibration["points_y"])
        return mapped / tf.maximum(tf.reduce_sum(mapped, axis=1, keepdims=True), 1.0)  # at most 1 in all

    return tf.cond(calibration["isotonic"], isotonic,
                   lambda: softmax_with_none(calibration["temperature"], calibration["none_logit"]))


def log_odds(scores: tf.Tensor) -> tf.Tensor:
    """The log-odds [B, K] of the raw confidences of final scores [B, K], from the scores (`calibration.raw_log_odds`,
    which the isotonic map is fitted on): a confident answer's softmax is 1.0 in float32, its log-odds are not."""
    if scores.shape[1] == 1:
        own = tf.minimum(scores, -LOG_ODDS_EPSILON)
        return own - tf.math.log(-tf.math.expm1(own))
    others = tf.where(tf.eye(tf.shape(scores)[1], dtype=tf.bool)[None], -np.inf, scores[:, None, :])
    return scores - tf.reduce_logsumexp(others, axis=2)


def combined(evidence: tf.Tensor, calibration: dict[str, tf.Variable]) -> tf.Tensor:
    """[B] the probabilities `evidence` [B, E] combined by the fitted logistic regression
    (`calibration.combined`, whose weights read the first columns)."""
    weights = calibration["evidence_weights"]
    clipped = tf.clip_by_value(evidence[:, :tf.shape(weights)[0]], EVIDENCE_EPSILON, 1.0 - EVIDENCE_EPSILON)
    logits = tf.math.log(clipped) - tf.math.log1p(-clipped)
    return tf.sigmoid(calibration["evidence_bias"] + tf.linalg.matvec(logits, weights))


def has_words(text: tf.Tensor) -> tf.Tensor:
    """bool [B]: whether each raw text holds a letter or a digit, something a model can read."""
    return tf.logical_not(tf.strings.regex_full_match(text, r"[^\pL\pN]*"))


def withheld(ranked: tf.Tensor, confidence: tf.Tensor, answered: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Ranked candidates [B, K] (strings) and their confidences [B, K], emptied ("" and 0) for the texts that are not
    answered (`answered` [B] false): a model that read nothing would answer from its prior alone."""
    return tf.where(answered[:, None], ranked, ""), tf.where(answered[:, None], confidence, 0.0)


def needs_review(confidence: tf.Tensor, calibration: dict[str, tf.Variable], answered: tf.Tensor) -> tf.Tensor:
    """bool [B]: the confidence the review goes by ([B]: the best candidate's, or the coder's in its category) is below
    the threshold chosen on validation, or the text is not answered."""
    return tf.logical_or(confidence < calibration["threshold"], tf.logical_not(answered))


def interpolate(values: tf.Tensor, points_x: tf.Tensor, points_y: tf.Tensor) -> tf.Tensor:
    """The piecewise-linear function through (points_x, points_y) (increasing x; flat beyond its ends) at `values`."""
    flat = tf.reshape(values, [-1])
    right = tf.clip_by_value(tf.searchsorted(points_x, flat, side="right"), 1, tf.shape(points_x)[0] - 1)
    x0, x1 = tf.gather(points_x, right - 1), tf.gather(points_x, right)
    y0, y1 = tf.gather(points_y, right - 1), tf.gather(points_y, right)
    share = tf.clip_by_value((flat - x0) / tf.maximum(x1 - x0, 1e-12), 0.0, 1.0)
    return tf.reshape(y0 + share * (y1 - y0), tf.shape(values))


def assign(variables: dict[str, tf.Variable], calibration: RankCalibration) -> None:
    """Set a signature's calibration variables to a fitted calibration."""
    variables["temperature"].assign(calibration.temperature)
    variables["none_logit"].assign(calibration.none_logit)
    variables["isotonic"].assign(calibration.method != "temperature")
    variables["log_odds"].assign(calibration.method == "isotonic")
    variables["points_x"].assign(calibration.points_x)
    variables["points_y"].assign(calibration.points_y)
    variables["threshold"].assign(calibration.threshold)
    variables["review_by_category"].assign(calibration.review_by == "category")
    variables["evidence_weights"].assign(calibration.evidence_weights)
    variables["evidence_bias"].assign(calibration.evidence_bias)
