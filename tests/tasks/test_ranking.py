"""What every ranked export shares: which texts are answered, and what an unanswered one gives."""

import numpy as np
import tensorflow as tf

from tfnlp.calibration import RankCalibration
from tfnlp.tasks import ranking


def test_a_text_with_no_letter_or_digit_is_not_answered():
    texts = ["", "   ", "\t\n", "!!! ...", "a", "12", "Ωμέγα", "急性心肌梗死", " x "]
    assert ranking.has_words(tf.constant(texts)).numpy().tolist() == [False] * 4 + [True] * 5


def test_an_unanswered_text_has_no_candidate_no_confidence_and_needs_review():
    ranked = tf.constant([["I500", "I509"], ["J45", "J450"]])
    confidence = tf.constant([[0.9, 0.05], [0.9, 0.05]])
    answered = tf.constant([True, False])
    kept, kept_confidence = ranking.withheld(ranked, confidence, answered)
    assert kept.numpy().tolist() == [[b"I500", b"I509"], [b"", b""]]
    np.testing.assert_allclose(kept_confidence.numpy(), [[0.9, 0.05], [0.0, 0.0]])
    variables = ranking.calibration_variables("t", RankCalibration("temperature", threshold=0.5))
    flags = ranking.needs_review(tf.constant([0.9, 0.9, 0.2]), variables, tf.constant([True, False, True]))
    assert flags.numpy().tolist() == [False, True, True]


def test_the_graph_gives_the_isotonic_confidences_fitted_on_validation_even_for_confident_answers():
    from tfnlp import calibration as cal

    # Beams whose best answer is 1 - 1e-9 .. 1 - 1e-12 sure: 1.0 in float32. Right when its margin is wide.
    rng = np.random.default_rng(0)
    best = rng.uniform(-6.0, -1.0, 400)
    margin = rng.uniform(10.0, 30.0, 400)
    scores = np.stack([best, best - margin, best - margin - 5.0], axis=1)
    right = np.zeros_like(scores, bool)
    right[:, 0] = margin + rng.normal(0.0, 3.0, 400) > 20.0
    fitted, _, calibrated = cal.fit_ranked(scores, right, "isotonic")
    variables = ranking.calibration_variables("iso", fitted)
    graph = ranking.confidences(tf.constant(scores, tf.float32), variables).numpy()
    np.testing.assert_allclose(graph, calibrated, atol=1e-4)
    assert calibrated[:, 0].min() < 0.3 and calibrated[:, 0].max() > 0.7  # the map does tell them apart
