"""PubTator documents (the NCBI disease and MedMentions form) -> BIO2-tagged sentences with offsets.

    PMID|t|title
    PMID|a|abstract
    PMID<TAB>start<TAB>end<TAB>mention text<TAB>type<TAB>concept id
    (blank line between documents)

Offsets are characters into `title + " " + abstract`. Each document is cut into sentences
(after `.`, `!` or `?` followed by a space and a capital or a digit, never inside a mention) and tokens (runs of letters
and digits, or single other characters) with their character offsets; a mention becomes B-/I-
tags on the tokens it covers. A mention whose ends do not fall on token boundaries, or that
overlaps another, is counted as misaligned and left untagged; it is reported, not silently
dropped. Types can be kept and renamed: `SpecificDisease,DiseaseClass` keeps two,
`SpecificDisease=Disease,DiseaseClass=Disease` merges them; other mentions are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tfnlp.data.records import TaggedSentence
from tfnlp.errors import UserError
from tfnlp.parsing import ascii_number

TOKEN = re.compile(r"[^\W_]+|[^\w\s]|_", re.UNICODE)
SENTENCE_END = re.compile(r"[.!?](?=\s+[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    text: str
    type: str
    concept: str


@dataclass
class Document:
    pmid: str
    title: str = ""
    abstract: str = ""
    mentions: list[Mention] = field(default_factory=list)

    @property
    def text(self) -> str:
        return f"{self.title} {self.abstract}" if self.abstract else self.title


@dataclass
class PubtatorStats:
    """What reading kept and what it could not use."""

    documents: int = 0
    duplicate_documents: int = 0
    mentions: int = 0
    ignored_type: int = 0
    misaligned: int = 0
    types: dict[str, int] = field(default_factory=dict)


def parse_types(spec: str) -> dict[str, str] | None:
    """`A,B=C` -> {"A": "A", "B": "C"}; empty keeps every type."""
    if not spec.strip():
        return None
    mapping = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        source, _, target = item.partition("=")
        mapping[source.strip()] = (target or source).strip()
    return mapping


def read_documents(path: str | Path) -> tuple[list[Document], int]:
    """Documents of a PubTator file (a repeated PMID keeps its first copy) and the number of repeats.

    Raises:
        UserError: a malformed line, or a mention whose text differs from the document at its offsets.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read a PubTator file ({error})") from None
    documents: dict[str, Document] = {}
    repeats, current, skipping = 0, None, False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            current = None
            continue
        title = re.match(r"^(\d+)\|([ta])\|(.*)$", line)
        if title:
            pmid, part, content = title.groups()
            if current is None or current.pmid != pmid:
                skipping = pmid in documents
                repeats += skipping and part == "t"
                current = documents.setdefault(pmid, Document(pmid)) if not skipping else Document(pmid)
            setattr(current, "title" if part == "t" else "abstract", content)
            continue
        parts = line.split("\t")
        if len(parts) < 5 or current is None or parts[0] != current.pmid or not (ascii_number(parts[1])
                                                                                 and ascii_number(parts[2])):
            raise UserError(f"{path}:{number}: expected `PMID|t|...`, `PMID|a|...` or a mention line "
                            f"`PMID<TAB>start<TAB>end<TAB>text<TAB>type[<TAB>concept]`, got {line[:80]!r}")
        mention = Mention(int(parts[1]), int(parts[2]), parts[3], parts[4], parts[5] if len(parts) > 5 else "")
        if mention.end <= mention.start or not mention.text.strip():
            raise UserError(f"{path}:{number}: mention {mention.text!r} at {mention.start}-{mention.end} is empty: a "
                            "mention needs start < end and a text")
        if current.text[mention.start:mention.end] != mention.text.strip():  # NCBI pads a few mention texts
            raise UserError(f"{path}:{number}: mention {mention.text!r} does not match the document text at "
                            f"{mention.start}-{mention.end} ({current.text[mention.start:mention.end]!r})")
        if not skipping:
            current.mentions.append(mention)
    return list(documents.values()), repeats


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[tuple[str, int, int]]:
    """(token, start, end) of `text[start:end]`, offsets into `text`."""
    end = len(text) if end is None else end
    return [(match.group(), match.start() + start, match.end() + start) for match in TOKEN.finditer(text[start:end])]


def sentence_spans(text: str, mentions: list[Mention]) -> list[tuple[int, int]]:
    """(start, end) of each sentence; a boundary inside a mention is not one."""
    inside = [(mention.start, mention.end) for mention in mentions]
    spans, start = [], 0
    for match in SENTENCE_END.finditer(text):
        cut = match.end()
        if any(left < cut < right for left, right in inside):
            continue
        if text[start:cut].strip():
            spans.append((start, cut))
        start = cut
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def tag_document(document: Document, types: dict[str, str] | None, stats: PubtatorStats) -> list[TaggedSentence]:
    """The document's sentences, tokens and BIO2 tags; counts in `stats`."""
    text = document.text
    kept = []
    for mention in document.mentions:
        if types is not None and mention.type not in types:
            stats.ignored_type += 1
            continue
        kept.append((mention, types[mention.type] if types else mention.type))
    sentences = []
    for left, right in sentence_spans(text, [mention for mention, _ in kept]):
        tokens = tokenize(text, left, right)
        starts = {start: index for index, (_, start, _) in enumerate(tokens)}
        ends = {end: index for index, (_, _, end) in enumerate(tokens)}
        tags = ["O"] * len(tokens)
        for mention, label in kept:
            if not (left <= mention.start < right):
                continue
            first, last = starts.get(mention.start), ends.get(mention.end)
            if first is None or last is None or any(tag != "O" for tag in tags[first:last + 1]):
                stats.misaligned += 1
                continue
            tags[first:last + 1] = [f"B-{label}"] + [f"I-{label}"] * (last - first)
            stats.mentions += 1
            stats.types[label] = stats.types.get(label, 0) + 1
        # The sentence's own text, offsets into it (a document's text per sentence would make every
        # consumer, the served model included, read the whole abstract for one sentence).
        sentences.append(TaggedSentence(tuple(token for token, _, _ in tokens), tuple(tags), text[left:right],
                                        tuple((start - left, end - left) for _, start, end in tokens)))
    return sentences


def read_pubtator(path: str | Path, types: str = "") -> tuple[list[TaggedSentence], PubtatorStats]:
    """Tagged sentences of a PubTator file, keeping (and renaming) the `types` given; with the reading counts."""
    documents, repeats = read_documents(path)
    stats = PubtatorStats(documents=len(documents), duplicate_documents=repeats)
    mapping = parse_types(types)
    sentences = [sentence for document in documents for sentence in tag_document(document, mapping, stats)]
    return sentences, stats
