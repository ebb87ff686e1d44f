"""`python -m tfnlp.bench folds`: the cross-validation parts, the variants, and a quick run."""

import re

import pytest

from tfnlp.bench.folds import fold_splits, variant_experiments
from tfnlp.data.records import Record, Splits
from tfnlp.errors import UserError

SPLITS = Splits([Record(f"train {index}", "A") for index in range(30)],
                [Record(f"valid {index}", "B") for index in range(6)],
                [Record(f"test {index}", "A") for index in range(5)])


def test_each_fold_holds_out_its_own_part_and_never_reads_the_test_split():
    pool = {record.text for record in SPLITS.train + SPLITS.validation}
    parts = [fold_splits(SPLITS, 4, index, seed=3) for index in range(4)]
    held_out = [{record.text for record in part.test} for part in parts]
    assert all(len(texts) == 36 // 4 for texts in held_out)
    assert set.union(*held_out) == pool and sum(map(len, held_out)) == len(pool)  # disjoint, every record once
    for part, texts in zip(parts, held_out, strict=True):
        used = [record.text for record in part.train + part.validation + part.test]
        assert len(part.validation) == 6 and sorted(used) == sorted(pool)  # each record in one role
        assert not texts & {record.text for record in part.train + part.validation}
        assert not set(used) & {record.text for record in SPLITS.test}
    assert fold_splits(SPLITS, 4, 1, seed=3) == parts[1] and fold_splits(SPLITS, 4, 1, seed=4) != parts[1]


@pytest.mark.parametrize("folds", [1, 40, 5])
def test_too_few_folds_or_records_is_a_user_error(folds):
    with pytest.raises(UserError, match=f"--folds {folds}"):
        fold_splits(Splits(SPLITS.train[:1], SPLITS.validation, []) if folds == 5 else SPLITS, folds, 0)


def test_variants_are_validated_before_anything_runs():
    configured = variant_experiments("icd10_chapter_lstm", [["small", "model.units=8"]], quick=True)
    assert list(configured) == ["defaults", "small"] and configured["small"].model.units == 8
    assert configured["defaults"].train.baselines  # each fold scores the run's own TF-IDF model on its part
    with pytest.raises(UserError, match="model.unit"):
        variant_experiments("icd10_chapter_lstm", [["typo", "model.unit=8"]], quick=True)
    with pytest.raises(UserError, match="named twice"):
        variant_experiments("icd10_chapter_lstm", [["defaults", "model.units=8"]], quick=True)
    with pytest.raises(UserError, match="compares classifiers"):
        variant_experiments("ner_bilstm", [], quick=True)


@pytest.mark.slow  # two tiny trainings
def test_a_quick_run_tabulates_each_fold_beside_the_baseline(capsys):
    from tfnlp.bench import __main__ as bench

    assert bench.main(["folds", "icd10_chapter_lstm", "--quick"]) == 0
    out = capsys.readouterr().out
    row = re.search(r"^\| defaults \| (\S+) \| (\S+) \| (\S+) \| (\S+) \| ([+-]\S+) \| (\S+) \| (.+) \|$", out,
                    re.M)
    first, second, held_out, baseline, difference, _ = (float(value) for value in row.groups()[:6])
    assert all(0 <= float(weight) <= 1 for weight in row.group(7).split(", "))  # each fold's chosen TF-IDF weight
    assert 0 <= first <= 1 and 0 <= second <= 1 and held_out == pytest.approx((first + second) / 2, abs=1e-3)
    assert difference == pytest.approx(held_out - baseline, abs=2e-3)
    assert "test split not read" in out and "headline: best held-out accuracy: defaults" in out
