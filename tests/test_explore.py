"""The data report and its checks on small files the test writes: every anomaly found and counted, numbers equal to
counts made here independently, figures that are pictures, and exit 2 for what cannot be read."""

import base64
import json
import re
from collections import Counter

import pytest

from tests.helpers import NCBI, assert_picture
from tfnlp import explore
from tfnlp.config import DataConfig
from tfnlp.data.records import Record, Splits, TaggedSentence


def write_csv(path, rows):
    path.write_text("RawText,ICD10\n" + "".join(f"{text},{code}\n" for text, code in rows), encoding="utf-8")
    return path


def folder_with_anomalies(tmp_path):
    """train / valid / test CSVs holding one of each anomaly a text-label check looks for."""
    train = [("Asthme aigu", "J45"), ("Asthme aigu", "J46"),  # one text, two labels
             ("Toux chronique", "R05"), ("Toux chronique", "R05"),  # an exact duplicate
             ("", "R06"),  # an empty text
             ("Fièvre typhoïde", "A01"), ("Choléra", "A00"), ("mot " * 60, "Z00"),  # a very long text
             ("FiÃ¨vre mal dÃ©codÃ©e", "A02")]  # UTF-8 read as Latin-1
    valid = [("Grippe", "J11"), ("Choléra", "A00")]  # J11 is not in training; Choléra is also in training
    test = [("Choléra", "A00"), ("Rougeole", "B05")]
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        write_csv(tmp_path / f"{name}.csv", rows)
    return tmp_path, train, valid, test


def test_every_text_anomaly_is_found_and_counted(tmp_path):
    folder, train, valid, test = folder_with_anomalies(tmp_path)
    from tfnlp.data import sources

    found = {anomaly.name: anomaly for anomaly in explore.check(sources.load(f"csv:{folder}", DataConfig()).splits)}
    assert found["conflicting_labels"].count == 1 and "J45, J46" in found["conflicting_labels"].examples[0]
    assert found["duplicates"].count == 1
    assert found["empty_texts"].count == 1 and found["empty_texts"].severity == "warning"
    assert found["train_validation_overlap"].count == 1 and found["train_test_overlap"].count == 1
    assert found["labels_not_in_train"].count == 2  # J11 and B05
    assert found["long_texts"].count == 1 and found["encoding"].count == 1
    singles = [label for label, count in Counter(code for _, code in train).items() if count == 1]
    assert found["single_example_classes"].count == len(singles)


def test_nothing_usable_is_fatal():
    assert [a.severity for a in explore.check(Splits([], [], []))] == ["fatal"]
    blank = [Record("  ", "A")]
    assert "fatal" in {a.severity for a in explore.check(Splits(blank, blank, blank)) if a.name == "empty_texts"}


def test_tagged_anomalies():
    def sentence(tokens, tags):
        return TaggedSentence(tuple(tokens), tuple(tags))

    train = [sentence(["a", "b"], ["B-X", "I-X"]), sentence(["a", "b"], ["B-X", "I-X"]), sentence(["c"], ["I-Y"])]
    test = [sentence(["a", "b"], ["B-X", "I-X"]), sentence(["d"], ["B-Z"])]
    found = {a.name: a.count for a in explore.check(Splits(train, [], test))}
    assert found == {"duplicates": 1, "train_test_overlap": 1, "types_not_in_train": 1, "bio_breaks": 1}


def test_report_numbers_equal_independent_counts_and_the_html_holds_pictures(tmp_path, capsys):
    rows = [(f"texte {i} de {'A' if i % 3 else 'B'}", f"{'A' if i % 3 else 'B'}{i % 7:02d}") for i in range(200)]
    data = write_csv(tmp_path / "codes.csv", rows)
    assert explore.main([f"csv:{data}", "--out", str(tmp_path / "out"), "--html"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    from tfnlp.data import sources

    splits = sources.load(f"csv:{data}", DataConfig()).splits
    train_labels = Counter(record.target for record in splits.train)
    assert report["records"] == splits.sizes()
    assert report["labels"]["distinct_in_train"] == len(train_labels)
    assert report["labels"]["top"][0] == list(train_labels.most_common(1)[0])
    assert report["labels"]["share_with_at_most_5"] == round(sum(c <= 5 for c in train_labels.values()) /
                                                              len(train_labels), 4)
    chapters = Counter(record.target[0] for record in splits.test)
    assert report["icd10"]["chapters"]["test"] == dict(sorted(chapters.items()))
    assert report["length_words"]["train"]["max"] == max(len(record.text.split()) for record in splits.train)
    page = (tmp_path / "out" / "report.html").read_text()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 4  # the length histogram, labels per category, per chapter, rank / frequency
    lengths = Counter(len(record.text.split()) for record in splits.validation)
    assert report["length_words_histogram"]["validation"] == {str(n): c for n, c in sorted(lengths.items())}
    # Numbers as tables: the quantiles one row per split, no long list spelt out, every number in a folded block.
    assert "<th>median</th>" in page and page.count("<tr>") < 200 and "<details>" in page
    for index, image in enumerate(images):
        png = tmp_path / f"figure-{index}.png"
        png.write_bytes(base64.b64decode(image))
        assert_picture(png, min_width=300, min_height=200)
    assert "ICD-10" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["csv:/no/such/file.csv"], "no such file"),
    (["parquet:x"], "unknown data source 'parquet'"),
    (["cim10", "--set", "train.epochs=3"], "give data.key=value"),
])
def test_what_cannot_be_read_exits_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        explore.main([*argv, "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_malformed_line_exits_2_naming_it(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("RawText,ICD10\nok,A00\nbroken\n")
    with pytest.raises(SystemExit) as exit_info:
        explore.main([f"csv:{bad}", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2 and "bad.csv:3" in capsys.readouterr().err


@pytest.mark.skipif(not NCBI.is_dir(), reason=f"NCBI disease corpus not found at {NCBI}")
def test_the_ncbi_pubtator_report_counts_mentions_per_type_and_tags_them(tmp_path):
    report, anomalies = explore.explore(f"pubtator:{NCBI / 'pubtator'}", DataConfig(), tmp_path, False, "en", 48)
    from tfnlp.data.pubtator import read_pubtator

    sentences, _ = read_pubtator(NCBI / "pubtator" / "test.txt")
    expected = Counter(tag[2:] for sentence in sentences for tag in sentence.tags if tag.startswith("B-"))
    assert report["entities_per_type"]["test"] == dict(sorted(expected.items()))
    pos = report["pos_of_entity_tokens"]["counts"]["SpecificDisease"]
    assert max(pos, key=pos.get) in ("NOUN", "PROPN")  # disease names are nouns


def test_reader_repairs_are_reported(tmp_path):
    for part in ("train", "devel", "test"):
        (tmp_path / f"{part}.tsv").write_text("Colon\tI-Disease\ncancer\tI-Disease\n\nfine\tO\n")  # IOB1 start
    report, _ = explore.explore(f"conll:{tmp_path}", DataConfig(), tmp_path / "out", False, None, 48)
    assert report["reader"] == {name: {"bio_repairs": 1} for name in ("devel.tsv", "test.tsv", "train.tsv")}
