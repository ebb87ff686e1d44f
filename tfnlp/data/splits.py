"""Seeded, reproducible train / validation / test splits, stratified where possible."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from tfnlp.data.records import Record, Splits
from tfnlp.errors import UserError


def split_records(
    records: Sequence[Record],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: Callable[[Record], str] | None = None,
) -> Splits:
    """Split records reproducibly; within each stratum the fractions are kept.

    Strata too small to give a record to every part give what rounding allows, which is the
    "where possible" of stratification: every record lands in exactly one part.

    Args:
        records: the records to split.
        validation_fraction: share for validation, in [0, 1).
        test_fraction: share for test, in [0, 1).
        seed: the split's seed; the same seed and records give the same split.
        stratify: maps a record to its stratum (e.g. the ICD chapter); None for one stratum.
    """
    if not (0 <= validation_fraction < 1 and 0 <= test_fraction < 1 and validation_fraction + test_fraction < 1):
        raise UserError(
            f"data.validation_fraction={validation_fraction} and data.test_fraction={test_fraction} "
            "must each be in [0, 1) and sum to less than 1"
        )
    strata: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        strata[stratify(record) if stratify else ""].append(record)
    rng = random.Random(seed)
    train, validation, test = [], [], []
    for key in sorted(strata):
        members = list(strata[key])
        rng.shuffle(members)
        n_test = round(len(members) * test_fraction)
        n_validation = round(len(members) * validation_fraction)
        test += members[:n_test]
        validation += members[n_test:n_test + n_validation]
        train += members[n_test + n_validation:]
    for part in (train, validation, test):
        rng.shuffle(part)
    return Splits(train, validation, test)


def split_multilabel(items: Sequence, labels: Callable[[object], Iterable[str]], validation_fraction: float,
                     test_fraction: float, seed: int) -> Splits:
    """Split items that carry several labels each (a sentence's entity types) by iterative stratification
    (Sechidis et al., 2011; the `iterative-stratification` package), so every label reaches every part
    when it has enough items: test first, then validation from the rest.

    With fewer than two labels (one entity type, or none) there is nothing to stratify over, and the
    stratifier refuses: the split is then a plain seeded one (by whether an item has a label), with a
    warning. Fewer items than parts is a UserError.
    """
    import sys

    import numpy as np
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    parts = 1 + (validation_fraction > 0) + (test_fraction > 0)
    if len(items) < parts:
        raise UserError(f"{len(items)} sentence(s) cannot be split into {parts} parts: give at least {parts}, or "
                        "separate train, devel and test files")
    names = sorted({label for item in items for label in labels(item)})
    if len(names) < 2:
        print(f"warning: {len(names)} entity type(s) ({', '.join(names) or 'none'}): a plain seeded split instead "
              "of iterative stratification, which needs two or more", file=sys.stderr)
        return split_records(items, validation_fraction, test_fraction, seed,
                             stratify=lambda item: ",".join(sorted(labels(item))))
    matrix = np.zeros((len(items), max(len(names), 1)), dtype=np.int8)
    index = {name: column for column, name in enumerate(names)}
    for row, item in enumerate(items):
        for label in labels(item):
            matrix[row, index[label]] = 1

    def cut(rows: np.ndarray, fraction: float, salt: int) -> tuple[np.ndarray, np.ndarray]:
        if fraction <= 0 or len(rows) < 2:
            return rows, rows[:0]
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed + salt)
        keep, held = next(splitter.split(np.zeros(len(rows)), matrix[rows]))
        return rows[keep], rows[held]

    rest, test = cut(np.arange(len(items)), test_fraction, 0)
    train, validation = cut(rest, validation_fraction / max(1.0 - test_fraction, 1e-9), 1)
    return Splits(*([items[row] for row in sorted(part)] for part in (train, validation, test)))
