"""CoNLL / BIO reader on files the test writes, and on the NCBI disease corpus when it is there."""

import pytest

from tests.helpers import NCBI
from tfnlp.data.conll import read_conll, to_bio2
from tfnlp.errors import UserError


def test_reads_sentences_skips_docstart_and_repairs_iob1(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("-DOCSTART-\tO\n\nColon\tB-Disease\ncancer\tI-Disease\nis\tO\n\n"
                    "APC\tI-Gene\nmutation causes\tO\n\n\nend O\n")
    sentences, repaired = read_conll(path)
    assert [sentence.tokens for sentence in sentences] == [("Colon", "cancer", "is"), ("APC", "mutation causes"),
                                                           ("end",)]
    assert sentences[1].tags == ("B-Gene", "O") and repaired == 1
    assert sentences[0].entity_types() == {"Disease"}


def test_to_bio2():
    assert to_bio2(["I-A", "I-A", "I-B", "O", "I-A", "B-A", "I-A"]) == (
        ["B-A", "I-A", "B-B", "O", "B-A", "B-A", "I-A"], 3)


@pytest.mark.parametrize("content, message", [
    ("Colon\tB-Disease\ncancer\n", ":2: expected a token and a tag"),
    ("Colon\tB-Disease\ncancer\tI-Disease\textra\n", ":2: expected a token and a tag"),
    ("Colon\tDisease\n", ":1: tag 'Disease' is not O, B-TYPE or I-TYPE"),
])
def test_malformed_lines_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_conll(path)


@pytest.mark.skipif(not NCBI.is_dir(), reason=f"NCBI disease corpus not found at {NCBI}")
def test_ncbi_disease_conll():
    sentences, repaired = read_conll(NCBI / "conll" / "train.tsv")
    assert len(sentences) == 5432 and sum(len(sentence.tokens) for sentence in sentences) == 136086
    assert {entity for sentence in sentences for entity in sentence.entity_types()} == {"Disease"}
    assert repaired == 0
