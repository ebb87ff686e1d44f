from tfnlp.bench import icd10
from tfnlp.bench.rerank import load_run
from tfnlp.tasks.seq2seq import decode


def test_every_decoding_variant_of_a_run_codes_and_the_default_is_the_runs_own(tiny_run):
    task, model = load_run(tiny_run["workdir"])
    texts = [record.text for record in task.splits.test[:24]]
    systems = icd10.variants(task, model, svm_seconds=5.0)
    assert list(systems) == ["model (greedy)", "beam 2, category-head rerank", "beam 2, category-head prior",
                             "beam 2, TF-IDF SVM prior", "beam 2, both priors, 2 codes per category (default)"]
    codes = {}
    for name, (serving, seconds) in systems.items():
        function = serving.serve if serving.beam_size > 1 else serving.greedy
        codes[name] = decode(function, texts)
        assert len(codes[name]) == len(texts) and all(codes[name])
        assert seconds == (5.0 if "SVM" in name or "both" in name else 0.0)
    assert codes["beam 2, both priors, 2 codes per category (default)"] == decode(task.serving(model).serve, texts)


def test_the_table_puts_languages_in_order_and_hides_exact_match_on_reworded_text():
    row = {"chapter_accuracy": 0.9, "category_accuracy": 0.7, "exact_match": 0.4, "seconds": 10.0}
    rows = [{**row, "lang": "en", "set": "reworded", "system": "a", "texts_per_second": float("nan")},
            {**row, "lang": "en", "set": "test", "system": "a", "texts_per_second": 100.0},
            {**row, "lang": "fr", "set": "test", "system": "a", "texts_per_second": 100.0}]
    lines = icd10.table(rows).splitlines()
    assert [line.split(" | ")[:2] for line in lines[2:]] == [["| en", "test"], ["| en", "reworded"], ["| fr", "test"]]
    assert lines[3].endswith("| - | 10 | - |") and lines[2].endswith("| 0.400 | 10 | 100 |")


def test_answer_scores_count_ranked_hits_calibration_and_review_by_hand():
    answered = [{"code": "I500", "top_codes": ["I500", "I509"], "confidence": 0.9, "needs_review": False},
                {"code": "J189", "top_codes": ["J189", "J180"], "confidence": 0.6, "needs_review": True},
                {"code": "E119", "top_codes": ["E119", ""], "confidence": 0.8, "needs_review": False}]
    truth = ["I500", "J180", "E110"]
    scores = icd10.answer_scores(truth, answered, raw=[1.0, 1.0, 1.0])
    assert (scores["top_k_exact"], scores["top_k_category"], scores["top_k_chapter"]) == (2 / 3, 1.0, 1.0)
    assert scores["k"] == 2 and scores["answered"] == 2 / 3
    assert scores["answered_category_precision"] == 1.0  # I50 and E11 are both right categories
    # Right 1 time in 3: overconfident raw scores (all 1.0) miscalibrated by 2/3.
    assert abs(scores["ece_before"] - 2 / 3) < 1e-9 and scores["ece_after"] < scores["ece_before"]


def test_en_plus_cm_trains_with_icd10cm_terms_and_fewer_when_quick():
    assert icd10.source_of("en+cm", quick=False) == "cim10:lang=en,icd10cm_terms=10000"
    assert icd10.source_of("en+cm", quick=True) == "cim10:lang=en,icd10cm_terms=300"
    assert icd10.source_of("fr", quick=True) == "cim10"
