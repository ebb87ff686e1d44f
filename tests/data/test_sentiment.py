"""Sentiment sources: aclImdb folders the test writes, the mixed-encoding tweets file, movie-review errors."""

import pytest

from tfnlp.config import DataConfig
from tfnlp.data import sources
from tfnlp.data.sentiment import _decoded_lines
from tfnlp.errors import UserError


def write_aclimdb(root, per_folder=10):
    for part in ("train", "test"):
        for name in ("pos", "neg"):
            folder = root / part / name
            folder.mkdir(parents=True)
            for index in range(per_folder):
                (folder / f"{index}_7.txt").write_text(f"{name} review {index}<br /><br />second line")


def test_aclimdb_folder_keeps_test_and_carves_validation_from_train(tmp_path):
    write_aclimdb(tmp_path)
    splits = sources.load(f"aclimdb:{tmp_path}", DataConfig(validation_fraction=0.2)).splits
    assert splits.sizes() == {"train": 16, "validation": 4, "test": 20}
    assert {record.target for record in splits.validation} == {"positive", "negative"}
    assert splits.test[0].text == "pos review 0 second line"


def test_aclimdb_errors(tmp_path):
    with pytest.raises(UserError, match="aclimdb:PATH"):
        sources.load("aclimdb", DataConfig())
    (tmp_path / "train" / "pos").mkdir(parents=True)
    with pytest.raises(UserError, match="no review files"):
        sources.load(f"aclimdb:{tmp_path}", DataConfig())


def test_mixed_encoding_lines_are_each_decoded():
    raw = "café,1\n".encode() + "caf\xe9,2\n".encode("cp1252")
    assert _decoded_lines(raw) == ["café,1", "café,2"]


def test_source_options_are_checked():
    with pytest.raises(UserError, match="min_confidence='high'"):
        sources.load("tweets:min_confidence=high", DataConfig())
    with pytest.raises(UserError, match="unknown option"):
        sources.load("tweets:lang=fr", DataConfig())


def test_tweets_asset_has_three_classes_and_every_tweet():
    from tfnlp.data.sentiment import load_tweets

    records = load_tweets()
    assert len(records) == 38158 and {record.target for record in records} == {"negative", "neutral", "positive"}
    assert len(load_tweets(0.3)) < len(records)
