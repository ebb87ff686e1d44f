"""In-graph tokenisation with character offsets and BIO -> entity decoding."""

import tensorflow as tf

from tfnlp.data.pubtator import tokenize
from tfnlp.tasks.tagging_graph import entities_from_tags, tokenize_with_offsets

TEXTS = ["Familial adenomatous polyposis (FAP) in mice.", "Maladie de Crohn à 5 ans", ""]


def test_tokens_and_character_offsets_match_the_pubtator_tokenizer():
    tokens, starts, ends = tokenize_with_offsets(tf.constant(TEXTS))
    for row, text in enumerate(TEXTS):
        expected = tokenize(text)
        assert [token.decode() for token in tokens[row].numpy()] == [token for token, _, _ in expected]
        assert starts[row].numpy().tolist() == [start for _, start, _ in expected]
        assert ends[row].numpy().tolist() == [end for _, _, end in expected]


def test_entities_from_bio_tags_slice_the_text():
    texts = tf.constant(TEXTS[:2])
    tokens, starts, ends = tokenize_with_offsets(texts)
    tags = tf.constant([["B-Disease", "I-Disease", "I-Disease", "O", "B-Disease", "O", "O", "O", "O"],
                        ["B-Disease", "I-Disease", "I-Disease", "O", "I-Age", "I-Age", "O", "O", "O"]])
    lengths = tokens.row_lengths()
    out = entities_from_tags(tags, starts.to_tensor(-1), ends.to_tensor(-1), texts, lengths)
    assert [t.decode() for t in out["entity_text"][0].numpy()] == ["Familial adenomatous polyposis", "FAP"]
    assert [t.decode() for t in out["entity_text"][1].numpy()] == ["Maladie de Crohn", "5 ans"]
    assert [t.decode() for t in out["entity_type"][1].numpy()] == ["Disease", "Age"]
    assert out["entity_start"][0].numpy().tolist() == [0, 32]
    assert out["entity_end"][1].numpy().tolist() == [16, 24]


def test_no_entities_and_padding():
    texts = tf.constant(["rien", "Crohn"])
    tags = tf.constant([["O", "B-X"], ["B-Disease", "O"]])  # row 0's second tag is padding (length 1)
    out = entities_from_tags(tags, tf.constant([[0, -1], [0, -1]]), tf.constant([[4, -1], [5, -1]]), texts,
                             tf.constant([1, 1]))
    assert out["entity_start"].numpy().tolist() == [[-1], [0]]
    assert [t.decode() for t in out["entity_text"][:, 0].numpy()] == ["", "Crohn"]
