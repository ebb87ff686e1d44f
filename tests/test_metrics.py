"""Task scores against values computed by hand, and the report CSV."""

import csv

import numpy as np
import pytest

from tfnlp import metrics
from tfnlp.metrics import classification_scores, code_accuracies, entity_scores, per_type_rows, write_rows_csv


def test_code_accuracies_count_chapter_category_and_exact_matches():
    scores = code_accuracies(["A000", "J45", "E119"], ["A001", "J45", "I10"])
    assert scores == {"chapter_accuracy": 2 / 3, "category_accuracy": 2 / 3, "exact_match": 1 / 3}
    with pytest.raises(ValueError, match="3 true codes but 2 predictions"):
        code_accuracies(["A", "B", "C"], ["A", "B"])


def test_classification_scores_macro_and_weighted():
    truth, predicted = ["a", "a", "a", "b"], ["a", "a", "b", "b"]
    scores = classification_scores(truth, predicted)
    # a: precision 1, recall 2/3, F1 0.8; b: precision 1/2, recall 1, F1 2/3.
    assert scores["accuracy"] == 0.75
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert scores["weighted_f1"] == pytest.approx((3 * 0.8 + 2 / 3) / 4)
    assert scores["macro_precision"] == pytest.approx(0.75) and scores["macro_recall"] == pytest.approx(5 / 6)


def test_entity_scores_are_strict_bio2_and_per_type():
    truth = [["B-D", "I-D", "O", "B-C"], ["O", "B-D"]]
    predicted = [["B-D", "I-D", "O", "O"], ["O", "I-D"]]  # one D right; an I- start is no entity in strict BIO2
    scores = entity_scores(truth, predicted)
    assert scores["entity_precision"] == 1.0 and scores["entity_recall"] == pytest.approx(1 / 3)
    assert scores["token_accuracy"] == pytest.approx(4 / 6)
    rows = {row["type"]: row for row in per_type_rows(truth, predicted)}
    assert (rows["D"]["support"], rows["D"]["recall"], rows["C"]["f1"]) == (2, 0.5, 0.0)


def test_write_rows_csv_creates_the_folder_and_keeps_the_columns(tmp_path):
    path = write_rows_csv(tmp_path / "report" / "rows.csv", [{"type": "D", "f1": 0.5}, {"type": "C", "f1": 1.0}])
    with open(path, newline="") as handle:
        assert list(csv.DictReader(handle)) == [{"type": "D", "f1": "0.5"}, {"type": "C", "f1": "1.0"}]


def test_ranked_accuracy_counts_the_truth_anywhere_in_the_list_and_skips_blanks():
    from tfnlp.data.icd10 import category
    from tfnlp.metrics import ranked_accuracy

    ranked = [["I500", "I509"], ["J18", ""], ["", ""]]
    assert ranked_accuracy(ranked, ["I509", "J189", ""]) == pytest.approx(1 / 3)  # a blank is no answer
    assert ranked_accuracy(ranked, ["I509", "J189", "A00"], category) == pytest.approx(2 / 3)
    assert ranked_accuracy([], []) == 0.0


def test_the_paired_difference_interval_holds_zero_for_a_tie_and_excludes_it_for_a_clear_gap():
    rng = np.random.default_rng(1)
    noise = rng.random(400) < 0.7
    tie = metrics.paired_accuracy_difference(noise, np.roll(noise, 1))
    assert tie["low"] < 0 < tie["high"] and abs(tie["difference"]) < 0.02
    better = noise | (rng.random(400) < 0.5)  # right wherever the other is, and on about half of its errors
    gap = metrics.paired_accuracy_difference(better, noise)
    assert gap["difference"] == pytest.approx(better.mean() - noise.mean()) and 0 < gap["low"] < gap["high"]
    wider = metrics.paired_accuracy_difference(better[:100], noise[:100])
    assert wider["high"] - wider["low"] > gap["high"] - gap["low"]  # fewer texts, less certainty
    with pytest.raises(ValueError, match="equal, non-empty"):
        metrics.paired_accuracy_difference([True], [True, False])


def test_the_classification_report_writes_its_files_and_stays_quiet_for_a_single_class(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning here would reach the user's terminal
        report = metrics.write_classification_report(["I50", "I50"], ["I50", "J45"], ["I50", "J45", "J45"], tmp_path)
    assert [row["label"] for row in report["per_class"]] == ["I50", "J45"]
    for name in ("per_class.csv", "confusion_matrix.png", "f1_vs_support.png", "class_distribution.png"):
        assert (tmp_path / name).stat().st_size > 0
