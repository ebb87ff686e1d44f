"""Exact-span entity scoring of served taggers, on sentences and spans written here."""

import pytest

from tfnlp.data.conll import joined_sentence
from tfnlp.data.records import TaggedSentence, entity_offsets
from tfnlp.errors import UserError
from tfnlp.metrics import span_scores


def test_gold_entities_are_character_spans_of_the_text():
    sentence = joined_sentence(["Severe", "Crohn", "disease", "and", "asthma"], ["O", "B-D", "I-D", "O", "B-D"])
    spans = entity_offsets(sentence)
    assert {sentence.text[start:end] for _, start, end in spans} == {"Crohn disease", "asthma"}
    with pytest.raises(UserError, match="without character offsets"):
        entity_offsets(TaggedSentence(("a",), ("B-D",)))


def test_span_scores_count_exact_matches_per_type():
    gold = [{("D", 0, 5), ("C", 10, 12)}, {("D", 3, 4)}]
    predicted = [{("D", 0, 5), ("D", 10, 12)}, {("D", 3, 5)}]  # one right; a wrong type; a wrong end
    overall = span_scores(gold, predicted)
    assert (overall["span_precision"], overall["span_recall"], overall["support"]) == (1 / 3, 1 / 3, 3)
    assert span_scores(gold, predicted, "C") == {"span_precision": 0.0, "span_recall": 0.0, "span_f1": 0.0,
                                                  "support": 1}
    assert span_scores(gold, [set(), set()])["span_f1"] == 0.0
