"""Calibration fitted on validation: ECE, temperature with a "none" logit, isotonic maps, review thresholds."""

import numpy as np
import pytest

from tfnlp import calibration as cal

pytestmark = pytest.mark.smoke


def test_expected_calibration_error_on_hand_counted_bins():
    # Two bins used: 0.95 (two answers, one right) and 0.25 (two answers, both wrong).
    confidence = np.array([0.95, 0.95, 0.25, 0.25])
    correct = np.array([1, 0, 0, 0])
    assert cal.expected_calibration_error(confidence, correct) == pytest.approx((2 * 0.45 + 2 * 0.25) / 4)
    assert cal.expected_calibration_error(np.array([1.0, 1.0]), np.array([1, 1])) == 0.0


def overconfident(seed: int = 0, texts: int = 3000, ranked: int = 5):
    """Ranked answers whose truth follows softmax(scores / 3) (and is none of them one time in five), while the raw
    confidences are softmax(scores): far too sure."""
    rng = np.random.default_rng(seed)
    scores = np.sort(rng.normal(0, 4, size=(texts, ranked)), axis=1)[:, ::-1]
    truth_probabilities = cal.softmax_with_none(scores, 3.0) * 0.8
    cumulative = np.cumsum(truth_probabilities, axis=1)
    draw = rng.random(texts)[:, None]
    truth_index = np.where(draw < cumulative[:, -1:], (draw >= cumulative).sum(axis=1, keepdims=True), -1)[:, 0]
    right = np.arange(ranked)[None, :] == truth_index[:, None]
    return scores, right


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_calibration_lowers_the_error_of_a_deliberately_overconfident_ranker(method):
    scores, right = overconfident()
    fitted, raw, _ = cal.fit_ranked(scores[:2000], right[:2000], method)
    assert fitted.method == method
    held_out_raw = cal.raw_confidences(scores[2000:])
    _, _, calibrated = cal.fit_ranked(scores[2000:], right[2000:], "none")
    assert np.allclose(calibrated, held_out_raw)  # "none" changes nothing
    if method == "temperature":
        assert fitted.temperature == pytest.approx(3.0, rel=0.25)
        after = cal.softmax_with_none(scores[2000:], fitted.temperature, fitted.none_logit)
    else:
        mapped = np.interp(cal.raw_log_odds(scores[2000:]), fitted.points_x, fitted.points_y)
        after = mapped / np.maximum(mapped.sum(axis=1, keepdims=True), 1.0)
    before_error = cal.expected_calibration_error(held_out_raw[:, 0], right[2000:, 0])
    after_error = cal.expected_calibration_error(after[:, 0], right[2000:, 0])
    assert before_error > 0.1 and after_error < before_error / 3
    # Confidences a person reads: in [0, 1], non-increasing along the ranking, at most 1 in all.
    assert (after >= 0).all() and (np.diff(after, axis=1) <= 1e-9).all() and (after.sum(axis=1) <= 1 + 1e-9).all()


def test_the_review_threshold_answers_as_many_texts_as_the_precision_target_allows():
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 0, 1, 0])
    review = cal.review_threshold(confidence, correct, 0.8, assurance=None)  # the measured precision alone
    assert (review.threshold, review.answered, review.precision) == (0.5, 5 / 6, 0.8)  # the top 5: 4 right in 5
    unreachable = cal.review_threshold(confidence, np.zeros(6), 0.5)
    assert unreachable.answered == 0.0 and unreachable.threshold > 1.0
    tied = cal.review_threshold(np.array([0.9, 0.9, 0.5]), np.array([1, 0, 1]), 0.6, assurance=None)
    assert tied.answered == 1.0  # the two tied at 0.9 are answered together (1 of 2 right): all 3 reach 2/3


def test_the_review_threshold_asks_the_validation_texts_to_make_the_precision_sure():
    # 400 texts by falling confidence: the first 200 right 98% of the time, the next 100 right 4 times in 5, the
    # last 100 never. Measured alone, the precision reaches 0.9 down to text 306; the bound stops at text 294.
    correct = np.array(([1] * 49 + [0]) * 4 + ([1] * 4 + [0]) * 20 + [0] * 100)
    confidence = np.linspace(1.0, 0.0, len(correct), endpoint=False)
    measured = cal.review_threshold(confidence, correct, 0.9, assurance=None)
    assured = cal.review_threshold(confidence, correct, 0.9)  # the one-sided 90% Clopper-Pearson bound
    assert measured.precision >= 0.9 and assured.precision >= 0.9
    assert 0.5 < assured.answered < measured.answered  # fewer texts answered, with a precision that holds
    hits = correct[:round(assured.answered * len(correct))].sum()
    from scipy.stats import beta

    assert beta.ppf(0.1, hits, assured.answered * len(correct) - hits + 1) >= 0.9
    assert cal.review_threshold(np.ones(10) * 0.9, np.ones(10), 0.95).answered == 0.0  # 10 right of 10 is not sure


def test_a_report_says_which_confidence_its_review_goes_by():
    from tfnlp.calibration import review_basis

    assert review_basis({"review_by": "category"}) == ", by the best code's category confidence"
    assert review_basis({"review_by": "best"}) == ", by the best code's confidence"
    combined = {"review_by": "category", "category_ece_summed": 0.1234, "category_ece": 0.0321}
    assert review_basis(combined) == (", by the best code's category confidence (the beam's, combined with the "
                                      "category models': ECE 0.123 -> 0.032)")
    assert review_basis({"answered": 0.5}) == ""


def test_a_report_with_no_answer_without_review_says_so_rather_than_a_precision_of_none():
    # Sentiment at 0.75 accuracy: no threshold reaches label precision 0.95, so every answer goes to review.
    confidence, correct = np.linspace(0.5, 0.99, 400), np.arange(400) % 4 != 0
    review = cal.review_threshold(confidence, correct, 0.95)
    raw = np.stack([confidence, 1 - confidence], axis=1)
    fitted = cal.fit_ranked(raw, np.stack([correct, ~correct], axis=1), "none")[0]
    report = cal.summary(raw, raw, np.stack([correct, ~correct], axis=1), fitted, review, "label", 0.95)
    assert review.answered == 0.0
    assert cal.answered_phrase(report) == ("no validation text answered without review (no threshold reaches label "
                                           "precision 0.95 with 90% assurance)")
    answered = {**report, "answered": 0.604, "precision_answered": 0.9512}
    assert cal.answered_phrase(answered) == ("60% of the validation texts answered without review, at label "
                                             "precision 0.951")


def test_log_odds_of_raw_confidences_tell_apart_what_float32_rounds_to_1():
    scores = np.array([[-5.0, -25.0, -30.0], [-5.0, -28.0, -30.0], [-1.0, -1.0, -40.0]])
    log_odds = cal.raw_log_odds(scores)
    raw = cal.raw_confidences(scores)
    assert np.allclose(1 / (1 + np.exp(-log_odds)), raw)  # the same confidences, read as log-odds
    assert np.float32(raw[0, 0]) == np.float32(raw[1, 0]) == 1.0 and log_odds[1, 0] - log_odds[0, 0] > 2.5
    one = np.array([[-1e-3], [0.0], [-5.0]])  # one hypothesis: its own log-probability
    assert np.allclose(1 / (1 + np.exp(-cal.raw_log_odds(one))), np.exp(np.minimum(one, -cal.LOG_ODDS_EPSILON)))
