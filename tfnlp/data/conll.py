"""Token-tagged sentences: the CoNLL / BIO two-column reader, and BIO2 repair.

A CoNLL file holds one `token<TAB>tag` (or space separated) line per token and a blank line
between sentences; `-DOCSTART-` lines are ignored. Tags are `O`, `B-TYPE` or `I-TYPE`. An
`I-TYPE` that does not continue an entity of the same type (IOB1 style) is rewritten as
`B-TYPE` (strict BIO2, as seqeval's strict mode scores it), and counted.
"""

from __future__ import annotations

import re
from pathlib import Path

from tfnlp.data.records import TaggedSentence
from tfnlp.errors import UserError

TAG = re.compile(r"^(O|[BI]-\S+)$")


def joined_sentence(tokens: list[str], tags: list[str]) -> TaggedSentence:
    """A pre-tokenised sentence with `text` = its tokens joined by single spaces, and their offsets in it."""
    offsets, position = [], 0
    for token in tokens:
        offsets.append((position, position + len(token)))
        position += len(token) + 1
    return TaggedSentence(tuple(tokens), tuple(tags), " ".join(tokens), tuple(offsets))


def to_bio2(tags: list[str]) -> tuple[list[str], int]:
    """Tags in strict BIO2, and how many `I-` tags had to become `B-`."""
    repaired, changes, previous = [], 0, "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag, changes = "B-" + tag[2:], changes + 1
        repaired.append(tag)
        previous = tag
    return repaired, changes


def read_conll(path: str | Path) -> tuple[list[TaggedSentence], int]:
    """Sentences of a CoNLL / BIO file and the number of tags repaired to BIO2.

    Raises:
        UserError: a line without exactly a token and a tag, or a tag that is not O / B-X / I-X
            (file and line named).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read a CoNLL file ({error})") from None
    sentences, tokens, tags, repaired = [], [], [], 0

    def close() -> None:
        nonlocal tokens, tags, repaired
        if tokens:
            fixed, changes = to_bio2(tags)
            repaired += changes
            sentences.append(joined_sentence(tokens, fixed))
        tokens, tags = [], []

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            close()
            continue
        if line.startswith("-DOCSTART-"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2 or not parts[0].strip():
            raise UserError(f"{path}:{number}: expected a token and a tag (two columns), got {line!r}")
        if not TAG.match(parts[1].strip()):
            raise UserError(f"{path}:{number}: tag {parts[1]!r} is not O, B-TYPE or I-TYPE")
        tokens.append(parts[0].strip())
        tags.append(parts[1].strip())
    close()
    return sentences, repaired
