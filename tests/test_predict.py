"""`tfnlp.load(path).predict(texts)` for each kind of export, and `python -m tfnlp.predict`."""

import json

import pytest

import tfnlp
from tests.helpers import served_in_fresh_process
from tfnlp import predict
from tfnlp.answers import NO_ANSWER, CodeAnswer, LabelAnswer, TaggedAnswer, render
from tfnlp.errors import UserError
from tfnlp.predictor import resolve_version

TEXTS = ["Insuffisance cardiaque", "Choléra à Vibrio cholerae", ""]


@pytest.mark.smoke
def test_the_coder_answers_the_same_from_its_version_its_model_base_and_its_run(tiny_run):
    served = served_in_fresh_process(tiny_run["version"], TEXTS)
    for path in (tiny_run["export_base"] / "icd10_seq2seq", tiny_run["workdir"]):
        assert resolve_version(path) == tiny_run["version"]
    answers = tfnlp.load(tiny_run["workdir"]).predict(TEXTS)
    assert all(isinstance(answer, CodeAnswer) for answer in answers)
    assert [answer.code for answer in answers] == served["code"]
    assert [answer.text for answer in answers] == TEXTS
    assert [answer.ranked[0].code for answer in answers[:2]] == served["code"][:2] and answers[0].label
    # The empty text is answered with no code, confidence 0, and the review flag; a person reads that.
    empty = answers[2]
    assert (empty.code, empty.ranked, empty.confidence, empty.needs_review) == ("", (), 0.0, True)
    assert render(empty).splitlines() == ["", f"  -> {NO_ANSWER} (needs review)"]  # no table of no candidates
    single = tfnlp.load(tiny_run["version"]).predict("Insuffisance cardiaque")
    assert len(single) == 1 and single[0].code == served["code"][0]


def test_a_classifier_answers_labels_with_scores(tiny_classifier_run):
    classifier_run = tiny_classifier_run
    predictor = tfnlp.load(classifier_run.export)
    answers = predictor.predict(TEXTS * 200, batch_size=64)  # batched internally
    served = served_in_fresh_process(classifier_run.export, TEXTS)
    assert all(isinstance(answer, LabelAnswer) for answer in answers) and len(answers) == 600
    assert [answer.label for answer in answers[:3]] == served["label"]
    assert [answer.score for answer in answers[:3]] == pytest.approx(served["score"], rel=1e-5)
    assert answers[2].ranked == () and answers[2].needs_review and NO_ANSWER in render(answers[2])
    assert predictor.experiment == "icd10_chapter_lstm"


def test_a_tagger_answers_entities_at_their_character_offsets(conll_tagger_run):
    tagger_run = conll_tagger_run
    texts = ["The patient has severe Crohn disease today.", "Asthma and leukemia were treated."]
    answers = tfnlp.load(tagger_run.workdir).predict(texts)
    served = served_in_fresh_process(tagger_run.export, texts)
    assert all(isinstance(answer, TaggedAnswer) for answer in answers)
    for answer, starts, kinds in zip(answers, served["entity_start"], served["entity_type"], strict=True):
        assert [entity.start for entity in answer.entities] == [start for start in starts if start >= 0]
        assert [entity.type for entity in answer.entities] == [kind for kind in kinds if kind]
        assert all(answer.text[entity.start:entity.end] == entity.text for entity in answer.entities)
        assert all(0.0 < entity.confidence <= 1.0 for entity in answer.entities)
    assert [entity.text for entity in answers[0].entities] == ["Crohn disease"]


def test_what_cannot_be_loaded_is_a_user_error(tmp_path, tiny_run):
    with pytest.raises(UserError, match="not an export"):
        tfnlp.load(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="did not finish"):
        tfnlp.load(tmp_path)
    with pytest.raises(UserError, match="expected a string"):
        tfnlp.load(tiny_run["version"]).predict(["fine", 3])


def test_the_command_prints_readable_answers_or_json(tiny_run, tmp_path, capsys):
    inputs = tmp_path / "in.txt"
    inputs.write_text("Choléra\n\nFièvre typhoïde\n", encoding="utf-8")
    assert predict.main([str(tiny_run["version"]), "--input", str(inputs), "--output", str(tmp_path / "o.jsonl")]) == 0
    printed = capsys.readouterr().out
    codes = served_in_fresh_process(tiny_run["version"], ["Choléra", "Fièvre typhoïde"])["code"]
    assert "Choléra" in printed and "rank" in printed and "->" in printed
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["code"] for row in rows] == codes and rows[0]["kind"] == "code"
    assert predict.main([str(tiny_run["version"]), "Choléra", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["code"] == codes[0]
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(tmp_path / "nowhere"), "x"])
    assert exit_info.value.code == 2 and "not an export" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # the message names the option the user gave
        predict.main([str(tiny_run["version"]), "--input", str(tmp_path / "missing.txt")])
    assert exit_info.value.code == 2 and "no such file (--input takes" in capsys.readouterr().err


def test_evaluate_scores_each_kind_of_export_with_its_tasks_own_scorer(tiny_run, tiny_classifier_run,
                                                                       conll_tagger_run):
    classifier_run, tagger_run = tiny_classifier_run, conll_tagger_run
    card = json.loads((tiny_run["version"] / "assets.extra" / "model_card.json").read_text(encoding="utf-8"))
    coder = tfnlp.evaluate(tiny_run["version"])
    # The export read back scores what the run measured through its serving graph, on the same test split.
    assert coder["overall"] == card["metrics"]["served"]["overall"] and coder["slice_by"] == "chapter"
    assert sum(row["support"] for row in coder["slices"].values()) == coder["records"] == 60
    classifier = tfnlp.evaluate(classifier_run.workdir)
    assert classifier["slice_by"] == "label" and set(classifier["overall"]) >= {"accuracy", "macro_f1"}
    assert classifier["overall"]["accuracy"] == classifier_run.test["model"]["accuracy"]
    tagger = tfnlp.evaluate(tagger_run.export)
    assert tagger["slice_by"] == "entity_type" and set(tagger["overall"]) == {"span_precision", "span_recall",
                                                                              "span_f1", "support"}
    assert tagger["baseline"]["span_f1"] == 0.0  # the trivial tagger finds nothing
    with pytest.raises(UserError, match="unknown data source"):
        tfnlp.evaluate(tiny_run["version"], data="parquet:x")
