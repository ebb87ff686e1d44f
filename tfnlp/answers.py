"""Typed answers a person (or a program) reads: built from one text's named outputs of any tfnlp export.

One module for every place answers come from (the Python API, `python -m tfnlp.predict`, the
serving client, batch prediction on Beam), so each shows the same thing:

- `CodeAnswer`: the coder's ranked codes with their labels, calibrated confidences and a review flag;
- `LabelAnswer`: a classifier's ranked labels with their scores and a review flag;
- `TaggedAnswer`: a tagger's entities with character offsets (and confidences where the export gives them).

Exports from before the ranked outputs give what they have (a bare code and its decoder score).
No TensorFlow here: answers are built from plain Python values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from tfnlp.data.icd10 import category

CODER_OUTPUTS = ("code",)
TAGGER_OUTPUTS = ("entity_text", "entity_type", "entity_start", "entity_end")
CLASSIFIER_OUTPUTS = ("label", "probabilities")
NO_ANSWER = "no answer (no letter or digit to read, or no candidate found)"


def display_code(code: str) -> str:
    """An ICD-10 code in its usual dotted form: `I500` -> `I50.0`; a category (3 characters) stays as it is."""
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 and "." not in code else code


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _flag(row: Mapping[str, Any]) -> bool | None:
    return bool(row["needs_review"]) if "needs_review" in row else None


@dataclass(frozen=True)
class RankedCode:
    """One candidate code: stored form, dotted form, its label in the code set, its calibrated confidence."""

    code: str
    display_code: str
    label: str
    confidence: float | None


@dataclass(frozen=True)
class CodeAnswer:
    """The coder's answer to one text.

    Attributes:
        text: the text asked about.
        code, display_code, label, confidence: the best code (`I500`, `I50.0`), its label and its calibrated
            confidence (None for an export without calibrated outputs).
        needs_review: True when the confidence the review goes by (the best code's or its category's, chosen on
            validation) is below the threshold chosen there (None: unknown).
        ranked: the candidates, best first (the best one included).
        score: the decoder's own probability of the best code (not calibrated).
        category_confidence: how likely the best code's category is right: the summed confidences of the candidates
            in it, combined with the coder's category models' beliefs (None for an export without it).
    """

    kind: ClassVar[str] = "code"
    text: str
    code: str
    display_code: str
    label: str
    confidence: float | None
    needs_review: bool | None
    ranked: tuple[RankedCode, ...]
    score: float
    category_confidence: float | None = None

    @classmethod
    def from_outputs(cls, text: str, row: Mapping[str, Any]) -> CodeAnswer:
        code = _text(row["code"])
        if "top_codes" in row:
            ranked = tuple(RankedCode(_text(c), _text(d), _text(label), float(confidence))
                           for c, d, label, confidence in zip(row["top_codes"], row["display_code"], row["top_labels"],
                                                              row["top_confidences"], strict=True) if _text(c))
        else:
            ranked = (RankedCode(code, display_code(code), "", None),)
        # No candidate: a text with nothing to read (confidence 0 where the export says so), or an old export's code.
        best = ranked[0] if ranked else RankedCode(code, display_code(code), "", float(row["confidence"])
                                                   if "confidence" in row else None)
        in_category = float(row["category_confidence"]) if "category_confidence" in row else None
        return cls(text, code, best.display_code, best.label, best.confidence, _flag(row), ranked,
                   float(row.get("score", 0.0)), in_category)


@dataclass(frozen=True)
class RankedLabel:
    """One candidate label, its (calibrated, where the export is) probability and its description ("" where the
    export has none; an ICD-10 category's label in the code set)."""

    label: str
    score: float
    description: str = ""


@dataclass(frozen=True)
class LabelAnswer:
    """A classifier's answer to one text: the best label, its score, the ranked labels, the review flag, and the best
    label's description where the export has them ("" otherwise)."""

    kind: ClassVar[str] = "label"
    text: str
    label: str
    score: float
    needs_review: bool | None
    ranked: tuple[RankedLabel, ...]
    description: str = ""

    @classmethod
    def from_outputs(cls, text: str, row: Mapping[str, Any]) -> LabelAnswer:
        if "top_labels" in row:
            descriptions = row.get("top_descriptions", [""] * len(row["top_labels"]))
            ranked = tuple(RankedLabel(_text(label), float(score), _text(description))
                           for label, score, description in zip(row["top_labels"], row["top_scores"], descriptions,
                                                                strict=True) if _text(label))
        else:
            ranked = (RankedLabel(_text(row["label"]), float(row["score"])),)
        return cls(text, _text(row["label"]), float(row["score"]), _flag(row), ranked,
                   _text(row.get("description", "")))


@dataclass(frozen=True)
class Entity:
    """One entity: its text, type and character offsets into the text [start, end), and its confidence."""

    text: str
    type: str
    start: int
    end: int
    confidence: float | None = None


@dataclass(frozen=True)
class TaggedAnswer:
    """A tagger's answer to one text: its entities in order, and the review flag."""

    kind: ClassVar[str] = "entities"
    text: str
    entities: tuple[Entity, ...]
    needs_review: bool | None = None

    @classmethod
    def from_outputs(cls, text: str, row: Mapping[str, Any]) -> TaggedAnswer:
        confidences = row.get("entity_confidence") or [None] * len(row["entity_start"])
        entities = tuple(Entity(_text(entity), _text(kind), int(start), int(end),
                                None if confidence is None else float(confidence))
                         for entity, kind, start, end, confidence in zip(
                             row["entity_text"], row["entity_type"], row["entity_start"], row["entity_end"],
                             confidences, strict=True) if int(start) >= 0)
        return cls(text, entities, _flag(row))


Answer = CodeAnswer | LabelAnswer | TaggedAnswer


def answer_type(output_names: Sequence[str]) -> type[CodeAnswer] | type[LabelAnswer] | type[TaggedAnswer]:
    """Which answer a signature's outputs make; ValueError for outputs no tfnlp export gives."""
    names = set(output_names)
    if set(TAGGER_OUTPUTS) <= names:
        return TaggedAnswer
    if set(CODER_OUTPUTS) <= names:
        return CodeAnswer
    if set(CLASSIFIER_OUTPUTS) <= names:
        return LabelAnswer
    raise ValueError(f"outputs {sorted(names)} are not a tfnlp coder's, classifier's or tagger's")


def to_dict(answer: Answer) -> dict[str, Any]:
    """The answer as JSON-ready data, with its `kind`."""
    return {"kind": answer.kind, **dataclasses.asdict(answer)}


def _confidence(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _review(flag: bool | None) -> str:
    return {True: "needs review", False: "no review needed", None: "review flag: not in this export"}[flag]


def render(answer: Answer, top_k: int | None = None) -> str:
    """The answer as a person reads it: a few lines of plain text."""
    if isinstance(answer, CodeAnswer):
        header = f"  {'rank':>4}  {'code':<7} {'confidence':>10}  label"
        lines = [answer.text, *([header] if answer.ranked else [])]
        for rank, candidate in enumerate(answer.ranked[:top_k], 1):
            lines.append(f"  {rank:>4}  {candidate.display_code:<7} {_confidence(candidate.confidence):>10}  "
                         f"{candidate.label}")
        best = f"{answer.display_code} {answer.label}".strip() if answer.code else NO_ANSWER
        sure = (f"category {category(answer.code)} at {answer.category_confidence:.2f}, "
                if answer.code and answer.category_confidence is not None else "")
        lines.append(f"  -> {best} ({sure}{_review(answer.needs_review)})")
        return "\n".join(lines)
    if isinstance(answer, LabelAnswer):
        review = _review(answer.needs_review)
        if not answer.label:
            return f"{answer.text}\n  -> {NO_ANSWER} ({review})"
        if answer.description:  # described labels are ICD-10 codes: read as the coder's ranked list, dotted
            width = max(len("label"), *(len(display_code(item.label)) for item in answer.ranked[:top_k]))
            lines = [answer.text, f"  {'rank':>4}  {'label':<{width}} {'score':>6}  description"]
            lines += [f"  {rank:>4}  {display_code(item.label):<{width}} {item.score:>6.2f}  {item.description}"
                      for rank, item in enumerate(answer.ranked[:top_k], 1)]
            return "\n".join([*lines, f"  -> {display_code(answer.label)} {answer.description} ({review})"])
        ranked = ", ".join(f"{item.label} {item.score:.2f}" for item in answer.ranked[:top_k])
        return f"{answer.text}\n  -> {answer.label} {answer.score:.2f} (ranked: {ranked}; {review})"
    return f"{marked_text(answer)}\n  {len(answer.entities)} entities ({_review(answer.needs_review)})"


def marked_text(answer: TaggedAnswer) -> str:
    """The text with each entity in brackets followed by its type (and confidence): `[Crohn disease](Disease 0.93)`."""
    pieces, at = [], 0
    for entity in sorted(answer.entities, key=lambda item: item.start):
        if entity.start < at:
            continue  # overlapping spans cannot both be marked inline
        confidence = "" if entity.confidence is None else f" {entity.confidence:.2f}"
        pieces += [answer.text[at:entity.start], f"[{answer.text[entity.start:entity.end]}]({entity.type}{confidence})"]
        at = entity.end
    return "".join(pieces + [answer.text[at:]])
