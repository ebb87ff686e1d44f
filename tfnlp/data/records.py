"""The record types every source yields, and the three parts of a data set.

- `Record`: one text and its target (an ICD-10 code, a label); classification and seq2seq.
- `TaggedSentence`: tokens and their BIO2 tags, with character offsets into the text when known;
  token tagging.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar


class Record(NamedTuple):
    """One example: the input text and its target (a code, a label, ...)."""

    text: str
    target: str


@dataclass(frozen=True)
class TaggedSentence:
    """Tokens and their BIO2 tags; `offsets` are (start, end) character offsets into `text` when known."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    text: str = ""
    offsets: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        # Every reader must give one tag (and one offset pair, when offsets are known) per token.
        if len(self.tags) != len(self.tokens) or (self.offsets and len(self.offsets) != len(self.tokens)):
            raise ValueError(f"{len(self.tokens)} tokens, {len(self.tags)} tags and {len(self.offsets)} offsets: "
                             f"{self.tokens[:5]}")

    def entity_types(self) -> frozenset[str]:
        """The entity types this sentence mentions."""
        return frozenset(tag[2:] for tag in self.tags if tag.startswith("B-"))


def entity_spans(tokens: Sequence[str], tags: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(type, tokens) of each entity of BIO tags, read leniently: an `I-X` that continues no `X` entity starts one
    (as the served graph reads predicted tags)."""
    spans: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] | None = None
    for token, tag in zip(tokens, tags, strict=True):
        if tag.startswith("B-") or (tag.startswith("I-") and (current is None or current[0] != tag[2:])):
            current = (tag[2:], [token])
            spans.append(current)
        elif tag.startswith("I-") and current is not None:
            current[1].append(token)
        else:
            current = None
    return spans


def entity_offsets(sentence: TaggedSentence) -> set[tuple[str, int, int]]:
    """(type, start, end) of a sentence's entities, in characters of its text.

    Raises:
        UserError: the sentence has no character offsets.
    """
    from tfnlp.errors import UserError

    if not sentence.offsets:
        raise UserError("tagged sentences without character offsets cannot be scored through a SavedModel")
    return {(kind, sentence.offsets[positions[0]][0], sentence.offsets[positions[-1]][1])
            for kind, positions in entity_spans(list(range(len(sentence.tokens))), sentence.tags)}


R = TypeVar("R", Record, TaggedSentence)


@dataclass(frozen=True)
class Splits(Generic[R]):
    """The three parts of a data set, of one record type."""

    train: list[R]
    validation: list[R]
    test: list[R]

    def sizes(self) -> dict[str, int]:
        """Number of records in each part."""
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def first(self) -> R | None:
        """The first record of any part (None for an empty data set): what kind of records these are."""
        return next((record for part in (self.train, self.validation, self.test) for record in part), None)
