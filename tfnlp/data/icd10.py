"""ICD-10 sources: French (and other) WHO labels from GNU Health, English ICD-10-CM.

Codes are normalised without the dot (`S06.2` -> `S062`). The chapter of a code, for
metrics and stratification, is its first character; its category its first three.
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ElementTree
import zlib
from pathlib import Path

from tfnlp import assets
from tfnlp.data.records import Record
from tfnlp.errors import UserError, located

PATHOLOGY_CONTEXT = re.compile(r"^model:gnuhealth\.pathology,name:(?P<code>[A-Z][0-9A-Z]{2,6})$")
# GNU Health's translators wrote many four-character labels as the tail of their parent's:
# A00.0 is "A Vibrio cholerae 01, biovar cholerae" under A00 "Choléra". A label is such a
# fragment when it starts lowercase or with a linking word; those get the parent label in
# front. Prefixing every child instead would leak the category name into the text.
FRAGMENT_START = re.compile(
    r"^(?:[a-zà-ÿ]|(?:A|À|Au|Aux|Avec|Sans|Par|De|Du|Des|D'|D’|En|Dans|Sur|Pour|Chez|Lors|Après|Au cours)\b)"
)


def normalise_code(code: str) -> str:
    """Upper-case, strip, and drop the dot: ` s06.2` -> `S062`."""
    return code.strip().upper().replace(".", "")


def chapter(code: str) -> str:
    """The chapter key used for metrics and stratification: the first character."""
    return code[:1]


CATEGORY_LENGTH = 3
CODE = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")


def looks_like_code(target: str) -> bool:
    """Whether `target` reads as an ICD-10 code (`S06.2`, `S062`, `E11`), not some other label."""
    return bool(CODE.match(normalise_code(target)))



def category(code: str) -> str:
    """The three-character category of a code."""
    return code[:CATEGORY_LENGTH]


def _po_string(path: Path, line_number: int, literal: str) -> str:
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        raise located(path, line_number, f"expected a quoted PO string, got {literal[:60]!r}") from None
    if not isinstance(value, str):
        raise located(path, line_number, f"expected a quoted PO string, got {literal[:60]!r}")
    return value


def parse_po(path: Path, field: str = "msgstr") -> dict[str, str]:
    """Read a gettext PO file into {msgctxt: msgstr} (or `field`: `msgid` for the source text), skipping fuzzy
    and untranslated entries.

    Raises:
        UserError: for a line that is not a comment, keyword or quoted continuation.
    """
    entries: dict[str, str] = {}
    current: dict[str, str] = {}
    key = None
    fuzzy = False

    def flush() -> None:
        if current.get("msgstr") and current.get(field) and "msgctxt" in current and not fuzzy:
            entries[current["msgctxt"]] = current[field]

    with open(path, encoding="utf-8") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line:
                flush()
                current, key, fuzzy = {}, None, False
            elif line.startswith("#"):
                fuzzy = fuzzy or (line.startswith("#,") and "fuzzy" in line)
            elif line.startswith('"'):
                if key is None:
                    raise located(path, line_number, "a quoted continuation line with no keyword before it")
                current[key] += _po_string(path, line_number, line)
            else:
                keyword, _, literal = line.partition(" ")
                if keyword not in ("msgctxt", "msgid", "msgstr", "msgid_plural") and not keyword.startswith("msgstr["):
                    raise located(path, line_number, f"unknown PO keyword {keyword!r}")
                key = keyword
                current[key] = _po_string(path, line_number, literal)
    flush()
    return entries


def complete_fragments(labels: dict[str, str]) -> dict[str, str]:
    """Prefix the parent's label to child labels that are fragments of it.

    Most lowercase child labels (external causes, W00.0 "chute de plain-pied due à la glace
    et la neige | domicile") already repeat the parent's label before a `|`: those are whole.
    """
    completed = {}
    for code, label in labels.items():
        parent = labels.get(category(code)) if len(code) > 3 else None
        if parent and FRAGMENT_START.match(label) and not label.lower().startswith(parent.lower()):
            label = f"{parent} {label[0].lower()}{label[1:]}"
        completed[code] = label
    return completed


def labels_from_po(path: Path, field: str = "msgstr") -> dict[str, str]:
    """{code: label} of the pathology entries of one GNU Health PO file, fragments completed; `field="msgid"`
    gives the English source labels (whole already)."""
    labels = {}
    for context, text in parse_po(path, field).items():
        match = PATHOLOGY_CONTEXT.match(context)
        if match:
            labels[normalise_code(match["code"])] = " ".join(text.split())
    return complete_fragments(labels) if field == "msgstr" else labels


def cim10_labels(lang: str = "fr") -> dict[str, str]:
    """WHO ICD-10 labels in `lang` from the cim10-fr asset, fragments completed.

    Args:
        lang: a locale the asset carries (fr, es, de, it_IT, pt_BR, ...), or `en` for the English labels the
            translations are made from (the French file's source texts).

    Returns:
        {code without dot: label}.
    """
    locale_dir = assets.find_file("cim10-fr", "*/locale/fr.po").parent
    if lang == "en":
        return labels_from_po(locale_dir / "fr.po", field="msgid")
    path = locale_dir / f"{lang}.po"
    if not path.exists():
        known = ", ".join(sorted(["en"] + [p.stem for p in locale_dir.glob("*.po")]))
        raise UserError(f"cim10: no language {lang!r} in the asset; known: {known}")
    return labels_from_po(path)


def load_cim10(lang: str = "fr", labels: dict[str, str] | None = None) -> list[Record]:
    """Records (label, code) of the WHO ICD-10 classification in `lang` (of `labels` when they are read already)."""
    return [Record(text, code) for code, text in sorted((labels or cim10_labels(lang)).items())]


def terms_from_tabular_xml(path: Path) -> list[Record]:
    """Descriptions and inclusion terms of an ICD-10-CM tabular XML file, each with its code."""
    try:
        tree = ElementTree.parse(path)
    except ElementTree.ParseError as error:
        raise located(path, error.position[0], f"not well-formed XML ({error})") from None
    records = []
    for diag in tree.iter("diag"):
        code = normalise_code(diag.findtext("name", ""))
        texts = [diag.findtext("desc", "")] + [note.text or "" for note in diag.findall("inclusionTerm/note")]
        records += [Record(" ".join(text.split()), code) for text in texts if text.strip()]
    return records


def icd10cm_terms() -> list[Record]:
    """English ICD-10-CM descriptions and inclusion terms from the icd10cm asset."""
    return terms_from_tabular_xml(assets.find_file("icd10cm", "*/icd10c-tabular-*.xml"))


def _comparable(text: str) -> str:
    """Lower-cased words only: texts that differ in case or punctuation compare equal."""
    return " ".join(re.findall(r"\w+", text.lower()))


def reworded_terms(labels: dict[str, str]) -> list[Record]:
    """ICD-10-CM descriptions and inclusion terms of the categories `labels` has, minus every text equal to one
    of `labels`' texts (ignoring case and punctuation), each text once: the same diseases in other people's
    wording, a robustness test for a model trained on `labels` (compare chapter and category: ICD-10-CM's
    subcodes are not WHO's).

    Args:
        labels: {code: label} of the training classification (`cim10_labels("en")`).
    """
    categories = {category(code) for code in labels}
    seen = {_comparable(text) for text in labels.values()}
    terms = []
    for record in icd10cm_terms():
        key = _comparable(record.text)
        if category(record.target) in categories and key not in seen:
            seen.add(key)
            terms.append(record)
    return terms


HELD_OUT_SHARE = 5  # one ICD-10-CM code in this many keeps its terms for evaluation only


def held_out(code: str) -> bool:
    """Whether the terms of ICD-10-CM code `code` are kept for evaluation (a stable hash of the code: every term
    of one code falls on the same side, so no description or inclusion term of a held-out code is trained on)."""
    return zlib.crc32(code.encode("ascii")) % HELD_OUT_SHARE == 0


def reworded_partition(terms: list[Record]) -> tuple[list[Record], list[Record]]:
    """`reworded_terms` split by code into (trainable, held out for evaluation)."""
    trainable = [term for term in terms if not held_out(term.target)]
    return trainable, [term for term in terms if held_out(term.target)]


def nearest_code(code: str, codes: frozenset[str] | set[str]) -> str | None:
    """The longest prefix of ICD-10-CM code `code` that is one of `codes` (WHO's), None when not even its category
    is: ICD-10-CM's sub-codes extend WHO's (A01.00 under A01.0)."""
    for end in range(len(code), CATEGORY_LENGTH - 1, -1):
        if code[:end] in codes:
            return code[:end]
    return None


def training_terms(labels: dict[str, str]) -> list[Record]:
    """The trainable part of `reworded_terms(labels)` with WHO codes as targets (`nearest_code`): extra English
    training texts in other people's wording, none of them a held-out code's term."""
    codes = frozenset(labels)
    trainable, _ = reworded_partition(reworded_terms(labels))
    mapped = ((term.text, nearest_code(term.target, codes)) for term in trainable)
    return [Record(text, code) for text, code in mapped if code]
