import json

import pytest

from tfnlp.config import DataConfig
from tfnlp.data import sources, tabular
from tfnlp.data.records import Record
from tfnlp.errors import UserError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_tsv_and_jsonl_read_the_default_cepidc_columns(tmp_path):
    expected = [Record("douleur thoracique", "R074"), Record("infarctus, aigu", "I219")]
    csv_path = write(tmp_path / "a.csv", 'RawText,ICD10\ndouleur thoracique,R074\n"infarctus, aigu",I219\n')
    tsv_path = write(tmp_path / "a.tsv", "RawText\tICD10\ndouleur thoracique\tR074\ninfarctus, aigu\tI219\n")
    jsonl_path = write(tmp_path / "a.jsonl", "".join(json.dumps({"RawText": r.text, "ICD10": r.target}) + "\n"
                                                     for r in expected))
    for path in (csv_path, tsv_path, jsonl_path):
        assert tabular.read_records(path, "RawText", "ICD10") == expected


def test_other_column_names_are_chosen_by_config(tmp_path):
    path = write(tmp_path / "a.csv", "cause,code\nsepsis,A419\n")
    assert tabular.read_records(path, "cause", "code") == [Record("sepsis", "A419")]


@pytest.mark.parametrize("name, content, message", [
    ("a.csv", "text,ICD10\nx,A00\n", r"a.csv:1: no column 'RawText'; the header has .*data.text_column"),
    ("a.csv", "text,ICD10\n", r"a.csv:1: no column 'RawText'"),  # found in the header, not as "no records"
    ("a.csv", "RawText,ICD10\nx,A00\ny,A01,extra\n", r"a.csv:3: more fields than the header"),
    ("a.csv", "RawText,ICD10\nx\n", r"a.csv:2: row has fewer fields"),
    ("a.csv", "RawText,ICD10\nx,\n", r"a.csv:2: empty 'ICD10'"),
    ("a.csv", "", r"a.csv:1: empty file"),
    ("a.jsonl", '{"RawText": "x", "ICD10": "A00"}\n{not json}\n', r"a.jsonl:2: not a JSON object"),
    ("a.jsonl", '["x", "A00"]\n', r"a.jsonl:1: expected a JSON object, got list"),
    ("a.xlsx", "x", r"unknown file type '.xlsx'"),
])
def test_malformed_files_name_file_line_and_fix(tmp_path, name, content, message):
    path = write(tmp_path / name, content)
    with pytest.raises(UserError, match=message):
        tabular.read_records(path, "RawText", "ICD10")


def rows(n, offset=0):
    return "RawText,ICD10\n" + "".join(f"texte {i},A{i % 10:02d}\n" for i in range(offset, offset + n))


def test_a_folder_with_three_parts_is_used_as_given(tmp_path):
    write(tmp_path / "train.csv", rows(8))
    write(tmp_path / "dev.csv", rows(3, 100))
    write(tmp_path / "test.csv", rows(2, 200))
    loaded = sources.load(f"csv:{tmp_path}", DataConfig())
    assert loaded.splits.sizes() == {"train": 8, "validation": 3, "test": 2}
    assert loaded.codes is None


def test_three_comma_separated_files_and_a_single_file(tmp_path):
    paths = [write(tmp_path / f"{name}.tsv", rows(n).replace(",", "\t")) for name, n in
             (("a", 6), ("b", 2), ("c", 3))]
    loaded = sources.load("tsv:" + ",".join(map(str, paths)), DataConfig())
    assert loaded.splits.sizes() == {"train": 6, "validation": 2, "test": 3}
    single = sources.load(f"csv:{write(tmp_path / 'all.csv', rows(100))}", DataConfig())
    assert sum(single.splits.sizes().values()) == 100


def test_source_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown data source 'excel'; known: aclimdb, cim10, conll, csv"):
        sources.load("excel:x", DataConfig())
    with pytest.raises(UserError, match="no such file"):
        sources.load(f"csv:{tmp_path / 'missing.csv'}", DataConfig())
    with pytest.raises(UserError, match="no train file"):
        sources.load(f"csv:{tmp_path}", DataConfig())
    with pytest.raises(UserError, match="unknown option 'language=es'; options: lang"):
        sources.load("cim10:language=es", DataConfig())


def test_text_that_is_not_utf8_names_the_line_and_the_option(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("RawText,ICD10\ndouleur,R074\nfièvre,R509\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin.csv:3: not utf-8 text: byte 0xe8 .*data.encoding=latin-1"):
        tabular.read_records(path, "RawText", "ICD10")
    assert tabular.read_records(path, "RawText", "ICD10", "latin-1")[1] == Record("fièvre", "R509")
    loaded = sources.load(f"csv:{path}", DataConfig(encoding="latin-1", validation_fraction=0.0, test_fraction=0.0))
    assert sorted(record.text for record in loaded.splits.train) == ["douleur", "fièvre"]
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(b'{"RawText": "x", "ICD10": "A00"}\n\xff\xfe\x00binary\n')
    with pytest.raises(UserError, match=r"garbage.jsonl:2: not utf-8 text: byte 0xff"):
        tabular.read_records(garbage, "RawText", "ICD10")
    with pytest.raises(UserError, match="data.encoding='klingon': unknown encoding"):
        tabular.read_records(path, "RawText", "ICD10", "klingon")


@pytest.mark.parametrize("content", [
    'RawText,ICD10\nok,A00\n"broken,A01\nfine,A02\n"later",A03\nx,A04\n',  # the quote swallows lines 3-4
    'RawText,ICD10\nok,A00\n"broken,A01\nfine,A02\n',  # the file ends inside the quote
])
def test_a_broken_quote_names_the_line_where_its_row_starts(tmp_path, content):
    path = write(tmp_path / "quotes.csv", content)
    with pytest.raises(UserError, match=r"quotes.csv:3: unreadable row .*quoted field that starts in this row"):
        tabular.read_records(path, "RawText", "ICD10")


def test_a_quoted_field_may_hold_a_line_break(tmp_path):
    path = write(tmp_path / "multi.csv", 'RawText,ICD10\n"two\nlines",A00\nx,A01\n')
    assert tabular.read_records(path, "RawText", "ICD10") == [Record("two\nlines", "A00"), Record("x", "A01")]


def test_labels_that_are_not_icd10_codes_are_stratified_by_label(tmp_path):
    rows = ["RawText,ICD10"] + [f"text {i},{'cat' if i < 10 else 'cow'}" for i in range(100)]  # one letter
    loaded = sources.load(f"csv:{write(tmp_path / 'labels.csv', chr(10).join(rows) + chr(10))}", DataConfig())
    assert all(sum(record.target == "cat" for record in part) == 1 for part in (loaded.splits.validation,
                                                                                 loaded.splits.test))


def test_cim10_icd10cm_terms_go_to_the_training_split_only(monkeypatch):
    from tfnlp.data import icd10

    labels = {f"A{number:02d}": f"disease number {number}" for number in range(40)}
    terms = [Record(f"another name for disease {number}", f"A{number:02d}9") for number in range(40)]
    monkeypatch.setattr(icd10, "cim10_labels", lambda lang: labels)
    monkeypatch.setattr(icd10, "icd10cm_terms", lambda: terms)
    plain = sources.load("cim10:lang=en", DataConfig())
    extra = sources.load("cim10:lang=en,icd10cm_terms=5", DataConfig())
    assert (extra.splits.validation, extra.splits.test) == (plain.splits.validation, plain.splits.test)
    added = extra.splits.train[len(plain.splits.train):]
    assert extra.splits.train[:len(plain.splits.train)] == plain.splits.train and len(added) == 5
    code_of = {term.text: term.target for term in terms}
    assert all(record.target == code_of[record.text][:3] for record in added)  # A059 -> its WHO code A05
    assert len(sources.load("cim10:lang=en,icd10cm_terms=all", DataConfig()).splits.train) > len(extra.splits.train)
    with pytest.raises(UserError, match="needs lang=en"):
        sources.load("cim10:icd10cm_terms=5", DataConfig())
    with pytest.raises(UserError, match="a number of terms, or all"):
        sources.load("cim10:lang=en,icd10cm_terms=many", DataConfig())
