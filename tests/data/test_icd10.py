import zlib

import pytest

from tfnlp.data import icd10
from tfnlp.data.records import Record
from tfnlp.errors import UserError

PO = '''#
msgid ""
msgstr "Content-Type: text/plain; charset=utf-8\\n"

msgctxt "model:gnuhealth.pathology,name:A00"
msgid "Cholera"
msgstr "Choléra"

msgctxt "model:gnuhealth.pathology,name:A000"
msgid "Cholera due to Vibrio cholerae 01"
msgstr "A Vibrio cholerae 01"

msgctxt "model:gnuhealth.pathology,name:A009"
msgid "Cholera, unspecified"
msgstr "Choléra, sans précision"

msgctxt "model:gnuhealth.pathology,name:W00"
msgid "Fall on ice"
msgstr "Chute due à la glace"

msgctxt "model:gnuhealth.pathology,name:W000"
msgid "Fall on ice, home"
msgstr "chute due à la glace | domicile"

msgctxt "model:gnuhealth.pathology,name:A01"
msgid "Typhoid"
msgstr ""
"Fièvres typhoïde et "
"paratyphoïde \\"longues\\""

msgctxt "model:gnuhealth.pathology,name:A010"
msgid "Untranslated"
msgstr ""

#, fuzzy
msgctxt "model:gnuhealth.pathology,name:A011"
msgid "Fuzzy"
msgstr "Paratyphoïde A"

msgctxt "model:gnuhealth.pathology.category,name:1"
msgid "Chapter"
msgstr "Chapitre"
'''


def test_po_labels_join_continuations_skip_fuzzy_and_complete_fragments(tmp_path):
    path = tmp_path / "fr.po"
    path.write_text(PO, encoding="utf-8")
    labels = icd10.labels_from_po(path)
    assert labels == {
        "A00": "Choléra",
        "A000": "Choléra a Vibrio cholerae 01",  # a fragment of its parent's label, completed
        "A009": "Choléra, sans précision",        # a full label, left alone
        "W00": "Chute due à la glace",
        "W000": "chute due à la glace | domicile",  # already repeats its parent's label: whole
        "A01": 'Fièvres typhoïde et paratyphoïde "longues"',
    }


def test_a_malformed_po_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.po"
    path.write_text('msgctxt "x"\nmsgid "y"\nmsgstr "z\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.po:3: expected a quoted PO string"):
        icd10.parse_po(path)
    path.write_text('msgctxt "x"\nbogus "y"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.po:2: unknown PO keyword 'bogus'"):
        icd10.parse_po(path)


def test_codes_are_normalised_and_cut_into_chapter_and_category():
    assert icd10.normalise_code(" s06.2 ") == "S062"
    assert icd10.chapter("S062") == "S" and icd10.category("S062") == "S06"


def test_icd10cm_xml_gives_descriptions_and_inclusion_terms(tmp_path):
    path = tmp_path / "tabular.xml"
    path.write_text("""<ICD10CM.tabular><chapter><section><diag><name>A00</name><desc>Cholera</desc>
        <diag><name>A00.0</name><desc>Cholera due to Vibrio cholerae 01, biovar cholerae</desc>
        <inclusionTerm><note>Classical cholera</note></inclusionTerm></diag></diag></section></chapter>
        </ICD10CM.tabular>""", encoding="utf-8")
    assert icd10.terms_from_tabular_xml(path) == [
        Record("Cholera", "A00"),
        Record("Cholera due to Vibrio cholerae 01, biovar cholerae", "A000"),
        Record("Classical cholera", "A000"),
    ]
    path.write_text("<diag><name>A00</name>", encoding="utf-8")
    with pytest.raises(UserError, match="tabular.xml:1: not well-formed XML"):
        icd10.terms_from_tabular_xml(path)


def test_the_packaged_french_labels_load_with_fragments_completed():
    labels = icd10.cim10_labels("fr")
    assert len(labels) > 13000
    assert labels["A000"].startswith("Choléra ")
    with pytest.raises(UserError, match="no language 'xx'.*fr"):
        icd10.cim10_labels("xx")


def test_english_source_labels_are_the_msgids_of_translated_entries(tmp_path):
    path = tmp_path / "fr.po"
    path.write_text(PO, encoding="utf-8")
    assert icd10.labels_from_po(path, field="msgid") == {
        "A00": "Cholera", "A000": "Cholera due to Vibrio cholerae 01", "A009": "Cholera, unspecified",
        "W00": "Fall on ice", "W000": "Fall on ice, home", "A01": "Typhoid"}
    labels = icd10.cim10_labels("en")
    assert labels["A00"] == "Cholera" and len(labels) > 13000


def test_reworded_terms_keep_other_wordings_of_known_categories_once(monkeypatch):
    terms = [Record("Cholera", "A00"), Record("CHOLERA, unspecified!", "A009"), Record("Classical cholera", "A000"),
             Record("classical cholera", "A001"), Record("Zika virus disease", "A925"), Record("Typhoid", "A010")]
    monkeypatch.setattr(icd10, "icd10cm_terms", lambda: terms)
    labels = {"A00": "Cholera", "A009": "Cholera, unspecified", "A01": "Typhoid"}
    # Equal texts (case and punctuation aside) go, A92 is not a category of `labels`, duplicates count once.
    assert icd10.reworded_terms(labels) == [Record("Classical cholera", "A000")]


def test_held_out_codes_keep_every_term_on_one_side():
    terms = [Record(f"term {index} of {code}", code) for code in ("A000", "A001", "A0100", "B200", "J841", "T636",
                                                                    "V29", "S42201A") for index in range(3)]
    trainable, held = icd10.reworded_partition(terms)
    assert sorted(trainable + held, key=terms.index) == terms
    assert {term.target for term in trainable}.isdisjoint({term.target for term in held})
    # A stable hash, not Python's salted one: the same codes are held out in every process.
    assert icd10.held_out("A000") == (zlib.crc32(b"A000") % icd10.HELD_OUT_SHARE == 0)


def test_icd10cm_codes_map_to_their_nearest_who_code():
    codes = {"A01", "A010", "V29", "T63"}
    assert icd10.nearest_code("A0100", codes) == "A010"
    assert icd10.nearest_code("V2900XA", codes) == "V29"
    assert icd10.nearest_code("A010", codes) == "A010"
    assert icd10.nearest_code("Z999", codes) is None


def test_training_terms_are_mapped_and_never_held_out(monkeypatch):
    codes = [f"A0{digit}{sub}" for digit in range(10) for sub in range(10)]
    terms = [Record(f"other wording of {code}", code + "0") for code in codes]
    monkeypatch.setattr(icd10, "icd10cm_terms", lambda: terms)
    labels = {**{f"A0{digit}": f"label {digit}" for digit in range(10)}, **{code: f"label {code}" for code in codes}}
    trained = icd10.training_terms(labels)
    held = {term.text for term in terms if icd10.held_out(term.target)}
    assert held and trained and not held & {term.text for term in trained}
    assert all(term.target == term.text.rsplit(" ", 1)[1] for term in trained)  # A0120 -> A012
