from tfnlp.data.vocabulary import Vocabulary, most_frequent


def test_reserved_tokens_first_then_sorted_items_and_a_default_for_the_unknown():
    vocabulary = Vocabulary.sorted(["b", "a", "b", "<UNK>"], ("<UNK>",))
    assert vocabulary.tokens == ("<UNK>", "a", "b") and len(vocabulary) == 3
    assert vocabulary.ids(["b", "z", "a"]).tolist() == [2, 0, 1]
    assert vocabulary.known(["b", "z"]) == ["b", "<UNK>"]
    assert vocabulary.counts(["b", "b", "z"]).tolist() == [1, 0, 2]
    characters = Vocabulary.sorted("J45", ("", "<s>", "</s>"), default=0)
    assert characters.ids("J4?").tolist() == [5, 3, 0]


def test_most_frequent_breaks_ties_alphabetically():
    assert most_frequent(["b", "a", "c", "c", "b"], 2) == ["b", "c"]
    assert most_frequent(["x"], 0) == []
