"""Confidences a person can trust: calibration fitted on the validation split, its error, the review threshold.

- `expected_calibration_error`: ECE over equal-width bins (15 by default) of the best answer's confidence
  against whether it was right.
- `fit_softmax_with_none`: temperature scaling of ranked answers' scores, with one more logit for "the right
  answer is none of these" (so confidences sum to at most 1); fitted by maximum likelihood of where the truth is.
- `fit_isotonic`: a non-decreasing map from raw to calibrated confidence (scikit-learn's isotonic regression).
- `fit_evidence`: a logistic regression combining several confidences in one answer (the coder's category: its
  beam's and its category models'), by `combined`'s formula.
- `review_threshold`: the lowest confidence above which the answered texts reach a target precision, with 90%
  assurance from the validation split, so that as many texts as possible are answered without review.

Pure NumPy / SciPy / scikit-learn on numbers: the serving graphs fold the fitted values in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ECE_BINS = 15
# How sure the validation split must make us that the texts answered without review reach the precision target.
REVIEW_ASSURANCE = 0.9
NEG_INF = -1e9
# A log-probability is read as at most this far below 0 for its log-odds: a probability of exactly 1 has none.
LOG_ODDS_EPSILON = 1e-12
# Probabilities are clipped this far inside (0, 1) before their log-odds are combined (`combined`): float32 holds it.
EVIDENCE_EPSILON = 1e-6


@dataclass(frozen=True)
class RankCalibration:
    """How one signature turns its hypotheses' final scores s [K] into confidences, and when it asks for review.

    `temperature`: c_i = exp(s_i / T) / (exp(b) + sum_j exp(s_j / T)), T = `temperature`, b = `none_logit` (the
    mass left for "the right code is none of these"). `isotonic`: the raw confidences' log-odds (of a plain softmax
    over the beam; with one hypothesis, of the decoder's probability of its code) mapped through the non-decreasing
    piecewise-linear function (`points_x`, `points_y`); `none`: the raw confidences themselves. Either way the
    confidences of a text are non-increasing along the ranking and sum to at most 1.

    Attributes:
        method: `temperature`, `isotonic` or `none`.
        temperature, none_logit: the softmax's parameters.
        points_x, points_y: the isotonic map's breakpoints (increasing x).
        threshold: answers whose review confidence is below this need review (1.0 + tiny: every answer).
        review_by: which confidence the review goes by: `best` (the best answer's) or `category` (the coder's best
            code's category's: its listed codes' confidences summed, or their combination with the category models'
            beliefs by `evidence_weights`), whichever answers more texts on validation.
        evidence_weights, evidence_bias: the coder's category confidence is `combined(evidence, weights, bias)` of
            its evidence (the summed confidences, then each category model's probability of that category); the
            defaults keep the summed confidences as they are.
    """

    method: str = "temperature"
    temperature: float = 1.0
    none_logit: float = NEG_INF
    points_x: tuple[float, ...] = (0.0, 1.0)
    points_y: tuple[float, ...] = (0.0, 1.0)
    threshold: float = 0.0
    review_by: str = "best"
    evidence_weights: tuple[float, ...] = (1.0,)
    evidence_bias: float = 0.0


def raw_confidences(scores: np.ndarray) -> np.ndarray:
    """Uncalibrated confidences of ranked answers' scores [N, K]: a softmax over them; one answer's own probability
    (exp of its log-score) when K is 1."""
    scores = np.asarray(scores, float)
    return np.exp(np.minimum(scores, 0.0)) if scores.shape[1] == 1 else softmax_with_none(scores)


def raw_log_odds(scores: np.ndarray) -> np.ndarray:
    """The log-odds [N, K] of the raw confidences (`raw_confidences`) of ranked answers' scores [N, K], computed from
    the scores: the isotonic map reads them, here and in the serving graph. A confident answer's raw confidence is 1
    to float32's precision (0.9999999 and 0.99999999 are both 1.0 in the graph), its log-odds are not (16 and 18)."""
    from scipy.special import logsumexp

    scores = np.asarray(scores, float)
    if scores.shape[1] == 1:
        own = np.minimum(scores, -LOG_ODDS_EPSILON)  # the decoder's own log-probability: log(p / (1 - p))
        return own - np.log(-np.expm1(own))
    others = np.where(np.eye(scores.shape[1], dtype=bool)[None], -np.inf, scores[:, None, :])
    return scores - logsumexp(others, axis=2)


def fit_ranked(scores: np.ndarray, right: np.ndarray, method: str) -> tuple[RankCalibration, np.ndarray, np.ndarray]:
    """Calibrate ranked answers by `method` (`temperature`, `isotonic` or `none`).

    Args:
        scores: [N, K] the answers' final scores, best first (log-space).
        right: [N, K] whether each answer is the right one (at most one per row).
        method: how (`RankCalibration`).

    Returns:
        The fitted calibration (its threshold still 0), the raw confidences [N, K] and the calibrated ones [N, K].
    """
    scores, right = np.asarray(scores, float), np.asarray(right, bool)
    raw = raw_confidences(scores)
    if method == "temperature":
        truth_index = np.where(right.any(axis=1), right.argmax(axis=1), -1)
        temperature, none_logit = fit_softmax_with_none(scores, truth_index)
        return (RankCalibration("temperature", temperature, none_logit), raw,
                softmax_with_none(scores, temperature, none_logit))
    if method == "isotonic":
        log_odds = raw_log_odds(scores)
        points = fit_isotonic(log_odds, right)
        mapped = np.interp(log_odds, *points)
    else:
        points = ((0.0, 1.0), (0.0, 1.0))
        mapped = raw
    return (RankCalibration(method, points_x=points[0], points_y=points[1]), raw,
            mapped / np.maximum(mapped.sum(axis=1, keepdims=True), 1.0))


def combined(evidence: np.ndarray, weights: Sequence[float], bias: float) -> np.ndarray:
    """[N] sigmoid(bias + sum_i weights_i * logit(evidence_i)) of probabilities `evidence` [N, E], each clipped
    `EVIDENCE_EPSILON` inside (0, 1): with weights (1,) and bias 0, the first column itself (clipped). The serving
    graph computes the same (`tasks.ranking.combined`)."""
    logits = evidence_log_odds(np.asarray(evidence, float)[:, :len(weights)])
    return 1.0 / (1.0 + np.exp(-(bias + logits @ np.asarray(weights, float))))


def evidence_log_odds(evidence: np.ndarray) -> np.ndarray:
    """The log-odds of probabilities `evidence`, each clipped `EVIDENCE_EPSILON` inside (0, 1)."""
    clipped = np.clip(evidence, EVIDENCE_EPSILON, 1.0 - EVIDENCE_EPSILON)
    return np.log(clipped) - np.log1p(-clipped)


def fit_evidence(evidence: np.ndarray, correct: np.ndarray) -> tuple[tuple[float, ...], float]:
    """The weights and bias of `combined` that best predict `correct` [N] from `evidence` [N, E] (probabilities):
    an L2-regularised logistic regression on their log-odds. Answers that are all right or all wrong leave nothing to
    learn: the first column alone (weights (1, 0, ...), bias 0)."""
    from sklearn.linear_model import LogisticRegression

    evidence, correct = np.asarray(evidence, float), np.asarray(correct, bool)
    if correct.all() or not correct.any():
        return (1.0,) + (0.0,) * (evidence.shape[1] - 1), 0.0
    fitted = LogisticRegression(C=1.0, max_iter=1000).fit(evidence_log_odds(evidence), correct)
    return tuple(float(weight) for weight in fitted.coef_[0]), float(fitted.intercept_[0])


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the support-weighted mean |accuracy - mean confidence| over equal-width confidence bins.

    Args:
        confidence: [N] the best answer's confidence of each text, in [0, 1].
        correct: [N] whether that answer was right.
        bins: how many equal-width bins split [0, 1].
    """
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    if not len(confidence):
        return 0.0
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for index in range(bins):
        members = which == index
        if members.any():
            total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(confidence))


def softmax_with_none(scores: np.ndarray, temperature: float = 1.0, none_logit: float = NEG_INF) -> np.ndarray:
    """Confidences [N, K] of ranked answers' scores [N, K]: exp(s / T) / (exp(b) + sum exp(s / T)), as the graph."""
    logits = np.asarray(scores, float) / temperature
    full = np.concatenate([logits, np.full((len(logits), 1), none_logit)], axis=1)
    top = full.max(axis=1, keepdims=True)
    normaliser = top + np.log(np.exp(full - top).sum(axis=1, keepdims=True))
    return np.exp(logits - normaliser)


def fit_softmax_with_none(scores: np.ndarray, truth_index: np.ndarray) -> tuple[float, float]:
    """(temperature, none logit) maximising the likelihood of where the truth is among ranked answers.

    Args:
        scores: [N, K] the ranked answers' final scores (log-space; about NEG_INF for an empty slot).
        truth_index: [N] the position of the right answer among the K, or -1 when none of them is right.
    """
    from scipy.optimize import minimize

    scores, truth_index = np.asarray(scores, float), np.asarray(truth_index)
    scores = np.maximum(scores, -1e4)  # empty slots: far below any real score, without overflowing
    rows = np.arange(len(scores))
    found = truth_index >= 0

    def negative_log_likelihood(parameters: np.ndarray) -> float:
        temperature, none_logit = np.exp(parameters[0]), parameters[1]
        logits = np.concatenate([scores / temperature, np.full((len(scores), 1), none_logit)], axis=1)
        top = logits.max(axis=1)
        normaliser = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        chosen = np.where(found, logits[rows, np.maximum(truth_index, 0)], none_logit)
        return float(np.mean(normaliser - chosen))

    if not len(scores):
        return 1.0, NEG_INF
    best = min((minimize(negative_log_likelihood, np.array(start), method="L-BFGS-B",
                         bounds=[(np.log(0.05), np.log(50.0)), (-50.0, 50.0)]) for start in
                ([0.0, -5.0], [0.0, 0.0], [1.0, -2.0])), key=lambda result: result.fun)
    return float(np.exp(best.x[0])), float(best.x[1])


def fit_isotonic(raw: np.ndarray, correct: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The breakpoints (x, y) of a non-decreasing map from a raw score (the log-odds of a raw confidence) to the
    observed rate of right answers; a constant map at that rate when the scores do not differ."""
    from sklearn.isotonic import IsotonicRegression

    raw, correct = np.ravel(raw), np.ravel(correct).astype(float)
    if len(np.unique(raw)) < 2:
        rate = float(correct.mean()) if len(correct) else 0.0
        return (0.0, 1.0), (rate, rate)
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(raw, correct)
    return tuple(float(x) for x in fitted.X_thresholds_), tuple(float(y) for y in fitted.y_thresholds_)


@dataclass(frozen=True)
class ReviewThreshold:
    """A review threshold and what it gave on the texts it was chosen on.

    Attributes:
        threshold: answers whose confidence is below it need review (above 1: every answer does).
        answered: the share of texts answered without review.
        precision: the share of those answers that were right (0 when none is answered).
    """

    threshold: float
    answered: float
    precision: float


def review_threshold(confidence: np.ndarray, correct: np.ndarray, target: float,
                     assurance: float | None = REVIEW_ASSURANCE) -> ReviewThreshold:
    """The lowest confidence threshold at which the answers at or above it reach precision `target` with
    `assurance`: the one-sided Clopper-Pearson lower bound (at `assurance`) of their precision on these texts is at
    least `target`. As many texts as possible are answered without review, and new texts answered at that threshold
    still reach the target.

    The bound, not the precision measured here, because the threshold is chosen on the texts it is measured on: the
    lowest threshold whose measured precision just reaches the target lands where these texts happened to be right,
    and new texts answered at it fall short (the coder on cim10: 0.951 on validation, 0.929 on test; with the bound
    at 0.9, 0.961 and 0.957, answering 55% of the test texts instead of 64%).

    Args:
        confidence: [N] each text's best confidence.
        correct: [N] whether that answer was right (as the precision target counts it).
        target: the precision the answered texts must reach.
        assurance: how sure these texts must make us of it; None: the precision measured on them must reach it.
    """
    from scipy.stats import beta

    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    order = np.argsort(-confidence, kind="stable")
    hits, answered = np.cumsum(correct[order]), np.arange(1, len(order) + 1)
    precision = hits / answered
    lower = precision
    if assurance is not None:
        with np.errstate(invalid="ignore"):  # no right answer yet: a bound of 0
            lower = np.nan_to_num(beta.ppf(1.0 - assurance, hits, answered - hits + 1))
    # Only cut between different confidences: every text at the threshold is answered alike.
    distinct = np.append(np.diff(confidence[order]) != 0, True)
    reaching = np.nonzero((lower >= target) & distinct)[0]
    if not len(reaching):
        return ReviewThreshold(1.0 + 1e-6, 0.0, 0.0)
    last = int(reaching[-1])
    return ReviewThreshold(float(confidence[order][last]), (last + 1) / len(order), float(precision[last]))


def summary(raw: np.ndarray, calibrated: np.ndarray, right: np.ndarray, fitted: RankCalibration,
            review: ReviewThreshold, precision_of: str, target: float) -> dict:
    """What a calibration gave on the texts it was fitted on: the best answer's ECE before and after, its parameters,
    the review threshold and the share of texts answered without review with their precision (of `precision_of`:
    `category`, `label`, ...; the review aimed at `target`)."""
    right = np.asarray(right, float)
    return {"method": fitted.method, "texts": len(right),
            "ece_before": expected_calibration_error(raw[:, 0], right[:, 0]),
            "ece_after": expected_calibration_error(calibrated[:, 0], right[:, 0]),
            "temperature": fitted.temperature, "none_logit": fitted.none_logit, "review_threshold": review.threshold,
            "answered": review.answered, "precision_answered": review.precision, "precision_of": precision_of,
            "review_target": target}


def answered_phrase(report: dict) -> str:
    """What a calibration report's review left to the model, for a sentence: `60% of the validation texts answered
    without review, at category precision 0.961`, or, when no threshold reached the target, that none was (rather
    than a precision of 0 measured on no text)."""
    if not report["answered"]:
        target = f" {report['review_target']:g}" if "review_target" in report else ""
        return (f"no validation text answered without review (no threshold reaches {report['precision_of']} "
                f"precision{target} with {REVIEW_ASSURANCE:.0%} assurance)")
    return (f"{report['answered']:.0%} of the validation texts answered without review, at {report['precision_of']} "
            f"precision {report['precision_answered']:.3f}")


def review_basis(report: dict) -> str:
    """`, by ...`: which confidence a calibration report's review goes by, for a sentence about it ("" when the
    report does not say: a classifier's or a tagger's, always its best answer's)."""
    bases = {"best": "the best code's confidence", "category": "the best code's category confidence"}
    if "review_by" not in report:
        return ""
    combined_with = ""
    if report["review_by"] == "category" and "category_ece" in report:
        combined_with = (f" (the beam's, combined with the category models': ECE {report['category_ece_summed']:.3f}"
                         f" -> {report['category_ece']:.3f})")
    return f", by {bases[report['review_by']]}{combined_with}"
