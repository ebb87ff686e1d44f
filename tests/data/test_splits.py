import pytest

from tfnlp.data.records import Record
from tfnlp.data.splits import split_records
from tfnlp.errors import UserError

RECORDS = [Record(f"t{i}", f"{'ABC'[i % 3]}{i:03d}") for i in range(300)]


def by_chapter(record):
    return record.target[0]


def test_split_is_reproducible_complete_and_disjoint():
    first = split_records(RECORDS, 0.1, 0.1, seed=7, stratify=by_chapter)
    again = split_records(RECORDS, 0.1, 0.1, seed=7, stratify=by_chapter)
    other = split_records(RECORDS, 0.1, 0.1, seed=8, stratify=by_chapter)
    assert first == again and first.test != other.test
    parts = [set(first.train), set(first.validation), set(first.test)]
    assert sum(map(len, parts)) == len(RECORDS) and set().union(*parts) == set(RECORDS)
    assert first.sizes() == {"train": 240, "validation": 30, "test": 30}


def test_split_keeps_each_chapter_share():
    splits = split_records(RECORDS, 0.1, 0.1, seed=1, stratify=by_chapter)
    for chapter in "ABC":
        assert sum(by_chapter(r) == chapter for r in splits.test) == 10


def test_bad_fractions_are_refused():
    with pytest.raises(UserError, match="sum to less than 1"):
        split_records(RECORDS, 0.6, 0.5, seed=1)
