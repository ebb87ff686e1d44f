"""Versioned, atomic export on a tiny tf.Module (no training): layout, model card, warmup file, failure."""


import pytest
import tensorflow as tf

from tests.helpers import upper_module
from tfnlp import export


def test_versions_count_up_whole_with_card_and_warmup(tmp_path):
    module = upper_module()
    first = export.export_savedmodel(module, tmp_path, "echo", {"serving_default": module.serve}, {"card.json": "1"},
                                     warmup_texts=["a", "b"])
    second = export.export_savedmodel(module, tmp_path, "echo", {"serving_default": module.serve}, {"card.json": "2"})
    assert (first.name, second.name) == ("1", "2")
    assert sorted(path.name for path in (tmp_path / "echo").iterdir()) == ["1", "2"]  # no staging folder left
    assert (second / "assets.extra" / "card.json").read_text() == "2"
    records = list(tf.data.TFRecordDataset(str(first / "assets.extra" / export.WARMUP_FILE)))
    assert len(records) == 2 and not (second / "assets.extra" / export.WARMUP_FILE).exists()
    loaded = tf.saved_model.load(str(second)).signatures["serving_default"]
    assert loaded(text=tf.constant(["abc"]))["upper"].numpy().tolist() == [b"ABC"]
    assert export.latest_version(tmp_path / "echo") == second


def test_a_failed_save_leaves_no_version_and_no_staging_folder(tmp_path, monkeypatch):
    module = upper_module()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export.export_savedmodel(module, tmp_path, "echo", {"serving_default": module.serve}, {})
    assert list((tmp_path / "echo").iterdir()) == []


def test_existing_versions_ignores_other_entries(tmp_path):
    for name in ("3", "10", ".tmp-x", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file, not a version")
    assert export.existing_versions(tmp_path) == [3, 10]
    assert export.existing_versions(tmp_path / "missing") == [] and export.latest_version(tmp_path / "missing") is None


def test_stale_staging_folders_go_and_versions_are_readable_by_others(tmp_path):
    import os
    import time

    module = upper_module()
    model_dir = tmp_path / "echo"
    (model_dir / ".tmp-killed").mkdir(parents=True)
    (model_dir / ".tmp-running").mkdir()
    old = time.time() - export.STALE_STAGING_SECONDS - 60
    os.utime(model_dir / ".tmp-killed", (old, old))
    version = export.export_savedmodel(module, tmp_path, "echo", {"serving_default": module.serve}, {})
    assert sorted(path.name for path in model_dir.iterdir()) == [".tmp-running", "1"]  # a recent one may be live
    assert version.stat().st_mode & 0o777 == export.VERSION_MODE
    assert (version / "saved_model.pb").stat().st_mode & 0o004  # files readable by others


def test_only_ascii_number_folders_are_versions(tmp_path):
    from tfnlp import pipeline
    from tfnlp.predictor import resolve_version

    model = tmp_path / "echo"
    for name in ("1", "²", "٧", "12", ".tmp-x", "v3"):
        (model / name).mkdir(parents=True)
    (model / "12" / "saved_model.pb").write_bytes(b"")
    assert export.existing_versions(model) == [1, 12]  # "٧" is not version 7, "²" not 2; nothing raises
    assert export.latest_version(model) == model / "12" and resolve_version(model) == model / "12"
    assert [line.split(":")[0] for line in pipeline.status(tmp_path)] == ["echo 12", "echo 1"]
