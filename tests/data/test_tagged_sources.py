"""Token-tagging sources (conll:, pubtator:, wnut16) and the multi-label stratified split."""

from collections import Counter

import pytest

from tests.helpers import NCBI
from tfnlp.config import DataConfig
from tfnlp.data import sources
from tfnlp.data.records import TaggedSentence
from tfnlp.data.splits import split_multilabel
from tfnlp.errors import UserError


def sentence(*types):
    tags = tuple(f"B-{kind}" for kind in types) or ("O",)
    return TaggedSentence(tuple(f"w{i}" for i in range(len(tags))), tags)


def test_stratified_split_puts_every_type_in_every_part():
    sentences = [sentence("A")] * 60 + [sentence("B")] * 12 + [sentence("A", "C")] * 10 + [sentence()] * 100
    splits = split_multilabel(sentences, lambda item: item.entity_types(), 0.1, 0.1, seed=3)
    assert sum(splits.sizes().values()) == len(sentences)
    for part in (splits.train, splits.validation, splits.test):
        assert {"A", "B", "C"} <= {kind for item in part for kind in item.entity_types()}
    assert splits == split_multilabel(sentences, lambda item: item.entity_types(), 0.1, 0.1, seed=3)


def test_conll_folder_and_single_file(tmp_path):
    for part in ("train", "devel", "test"):
        (tmp_path / f"{part}.tsv").write_text("Colon\tB-Disease\ncancer\tI-Disease\n\nfine\tO\n")
    loaded = sources.load(f"conll:{tmp_path}", DataConfig())
    assert loaded.splits.sizes() == {"train": 2, "validation": 2, "test": 2}
    single = tmp_path / "all.bio"
    single.write_text("".join(f"w{i}\tB-{'AB'[i % 2]}\n\n" for i in range(40)))
    splits = sources.load(f"conll:{single}", DataConfig()).splits
    assert splits.sizes() == {"train": 32, "validation": 4, "test": 4}
    assert sources.type_distribution(splits)["test"] == {"A": 2, "B": 2}


def test_tagged_source_errors(tmp_path):
    (tmp_path / "train.tsv").write_text("a\tO\n")
    with pytest.raises(UserError, match="expected train, devel"):
        sources.load(f"conll:{tmp_path}", DataConfig())
    with pytest.raises(UserError, match="no such file"):
        sources.load(f"pubtator:{tmp_path / 'missing'}", DataConfig())
    with pytest.raises(UserError, match="conll needs a path"):
        sources.load("conll", DataConfig())


@pytest.mark.skipif(not NCBI.is_dir(), reason=f"NCBI disease corpus not found at {NCBI}")
def test_ncbi_pubtator_single_file_split_keeps_all_four_types_everywhere():
    splits = sources.load(f"pubtator:{NCBI / 'pubtator' / 'train.txt'}", DataConfig()).splits
    distribution = sources.type_distribution(splits)
    for part, counts in distribution.items():
        assert set(counts) == {"SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention"}, part
    merged = sources.load(f"pubtator:{NCBI / 'pubtator'}", DataConfig(types="SpecificDisease=Disease,DiseaseClass"))
    assert set(sources.type_distribution(merged.splits)["test"]) == {"Disease", "DiseaseClass"}


def test_wnut16_asset_has_ten_types():
    splits = sources.load("wnut16", DataConfig()).splits
    types = Counter(kind for part in splits.sizes() for item in getattr(splits, part) for kind in item.entity_types())
    assert len(types) == 10


def test_a_file_with_one_entity_type_or_too_few_sentences(tmp_path, capsys):
    one_type = [sentence("A")] * 20 + [sentence()] * 20
    splits = split_multilabel(one_type, lambda item: item.entity_types(), 0.1, 0.1, seed=3)
    assert splits.sizes() == {"train": 32, "validation": 4, "test": 4}
    assert all(any(item.entity_types() for item in part) for part in (splits.train, splits.validation, splits.test))
    assert "a plain seeded split" in capsys.readouterr().err
    single = tmp_path / "one.bio"
    single.write_text("Colon\tB-Disease\ncancer\tI-Disease\n")
    with pytest.raises(UserError, match="1 sentence\\(s\\) cannot be split into 3 parts"):
        sources.load(f"conll:{single}", DataConfig())


def test_max_records_cuts_a_folder_that_comes_split(tmp_path):
    from tests.helpers import write_conll

    write_conll(tmp_path, count=160)  # 160 / 30 / 30
    loaded = sources.load(f"conll:{tmp_path}", DataConfig(max_records=110))
    assert loaded.splits.sizes() == {"train": 80, "validation": 15, "test": 15}
    assert sources.load(f"conll:{tmp_path}", DataConfig(max_records=0)).splits.sizes()["train"] == 160
