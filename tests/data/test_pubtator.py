"""PubTator reader: sentences, tokens with offsets, BIO2 tags, type mapping, misaligned and malformed input."""

import pytest

from tests.helpers import NCBI
from tfnlp.data.pubtator import parse_types, read_pubtator, sentence_spans, tokenize
from tfnlp.errors import UserError

TITLE = "Colon cancer in APC carriers."
ABSTRACT = "Familial adenomatous polyposis (FAP) is rare. Its cause: APC-mutations e.g. in mice."


def document(pmid="1", mentions=()):
    text = f"{TITLE} {ABSTRACT}"
    lines = [f"{pmid}|t|{TITLE}", f"{pmid}|a|{ABSTRACT}"]
    for mention, kind in mentions:
        start = text.index(mention)
        lines.append(f"{pmid}\t{start}\t{start + len(mention)}\t{mention}\t{kind}\tD0001")
    return "\n".join(lines) + "\n\n"


def test_sentences_tokens_offsets_and_tags(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(document(mentions=[("Colon cancer", "DiseaseClass"),
                                       ("Familial adenomatous polyposis", "SpecificDisease"),
                                       ("FAP", "SpecificDisease")]))
    sentences, stats = read_pubtator(path)
    assert len(sentences) == 3 and stats.mentions == 3 and stats.misaligned == 0
    first = sentences[0]
    assert first.tokens[:3] == ("Colon", "cancer", "in") and first.tags[:3] == ("B-DiseaseClass", "I-DiseaseClass",
                                                                                  "O")
    for sentence in sentences:
        for token, (start, end) in zip(sentence.tokens, sentence.offsets, strict=True):
            assert sentence.text[start:end] == token
    assert first.text.startswith("Colon cancer") and sentences[1].text not in first.text  # its own sentence only
    assert stats.types == {"DiseaseClass": 1, "SpecificDisease": 2}


def test_type_mapping_and_filtering(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(document(mentions=[("Colon cancer", "DiseaseClass"), ("FAP", "SpecificDisease"),
                                       ("APC carriers", "Modifier")]))
    sentences, stats = read_pubtator(path, "SpecificDisease=Disease,DiseaseClass=Disease")
    assert stats.types == {"Disease": 2} and stats.ignored_type == 1
    assert {tag for sentence in sentences for tag in sentence.tags} == {"O", "B-Disease", "I-Disease"}
    assert parse_types("") is None and parse_types("A, B=C") == {"A": "A", "B": "C"}


def test_misaligned_and_overlapping_mentions_are_counted_not_tagged(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(document(mentions=[("olon canc", "DiseaseClass"), ("APC", "Gene"), ("APC carriers", "Gene")]))
    sentences, stats = read_pubtator(path)
    assert stats.misaligned == 2 and stats.mentions == 1  # "olon canc" cuts words; "APC carriers" overlaps "APC"


def test_repeated_document_keeps_the_first_copy(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(document(mentions=[("FAP", "SpecificDisease")]) + document(mentions=[("FAP", "SpecificDisease")])
                    + document(pmid="2"))
    _, stats = read_pubtator(path)
    assert (stats.documents, stats.duplicate_documents, stats.mentions) == (2, 1, 1)


@pytest.mark.parametrize("content, message", [
    ("1|t|Title\n1\t0\tx\tTitle\tDisease\tD1\n", ":2: expected"),
    ("1|t|Title\n2\t0\t5\tTitle\tDisease\tD1\n", ":2: expected"),
    ("1|t|Title here\n1\t0\t5\tThing\tDisease\tD1\n", ":2: mention 'Thing' does not match"),
    ("garbage line\n", ":1: expected"),
    ("1|t|Title here\n1\t6\t3\t\tDisease\tD1\n", ":2: mention '' at 6-3 is empty"),
    ("1|t|Title here\n1\t5\t5\t\tDisease\tD1\n", ":2: mention '' at 5-5 is empty"),
])
def test_malformed_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_pubtator(path)


def test_tokenize_and_sentence_spans():
    assert [token for token, _, _ in tokenize("APC-mutations (e.g. 5%)")] == [
        "APC", "-", "mutations", "(", "e", ".", "g", ".", "5", "%", ")"]
    text = "It is rare. Dr. No. Next one."
    assert [text[a:b].strip() for a, b in sentence_spans(text, [])] == ["It is rare.", "Dr.", "No.", "Next one."]


@pytest.mark.skipif(not NCBI.is_dir(), reason=f"NCBI disease corpus not found at {NCBI}")
def test_ncbi_disease_pubtator():
    sentences, stats = read_pubtator(NCBI / "pubtator" / "train.txt")
    assert stats.duplicate_documents == 1 and stats.documents == 592
    assert set(stats.types) == {"SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention"}
    assert stats.misaligned / (stats.mentions + stats.misaligned) < 0.02
    assert len(sentences) > 4000
