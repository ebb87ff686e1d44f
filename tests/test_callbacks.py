"""ResumableBackup and NonFiniteLoss on a tiny Keras model: what a kill or a bad value leaves, and what comes back."""

import json

import keras
import numpy as np

from tfnlp.callbacks import LATEST, NonFiniteLoss, ResumableBackup

X, Y = np.arange(16, dtype="float32").reshape(8, 2), np.arange(8, dtype="float32").reshape(8, 1)


def compiled(learning_rate: float = 0.01) -> keras.Model:
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def monitors():
    return [keras.callbacks.ModelCheckpoint("unused.weights.h5", save_best_only=True, save_weights_only=True),
            keras.callbacks.EarlyStopping(patience=3)]


def backed_up(folder, stopped=False):
    """A model trained two epochs, its monitors part-way, and its state saved after epoch 2."""
    model, watched = compiled(), monitors()
    model.fit(X, Y, epochs=2, verbose=0)
    watched[0].best, watched[1].best, watched[1].wait, watched[1].best_epoch = 0.25, 0.25, 1, 1
    backup = ResumableBackup(folder, watched)
    backup.set_model(model)
    backup.save(2, stopped=stopped)
    return model


def restored(folder, epochs=5):
    model, watched = compiled(), monitors()
    for callback in watched:
        callback.set_model(model)
        callback.on_train_begin()  # they reset themselves here, before the backup restores them
    backup = ResumableBackup(folder, watched)
    backup.set_model(model)
    backup.set_params({"epochs": epochs})
    backup.on_train_begin()
    return model, watched, backup


def test_a_resumed_run_gets_the_weights_optimizer_epoch_and_monitors_back(tmp_path):
    original = backed_up(tmp_path / "backup")
    model, (checkpoint, stopping), backup = restored(tmp_path / "backup")
    for mine, theirs in zip(model.weights, original.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert int(model.optimizer.iterations.numpy()) == int(original.optimizer.iterations.numpy()) == 2
    assert backup.restored_epoch == model._initial_epoch == 2
    assert (checkpoint.best, stopping.best, stopping.wait, stopping.best_epoch) == (0.25, 0.25, 1, 1)


def test_a_run_early_stopping_ended_does_not_train_again(tmp_path):
    backed_up(tmp_path / "backup", stopped=True)
    assert restored(tmp_path / "backup", epochs=5)[2].restored_epoch == 5


def test_a_kill_while_writing_leaves_the_previous_state(tmp_path):
    backed_up(tmp_path / "backup")
    # What a kill during the next save leaves: a partial folder, never named in `latest`.
    partial = tmp_path / "backup" / ".epoch-0003.partial"
    partial.mkdir()
    (partial / "training.weights.h5").write_bytes(b"\x89HDF half written")
    assert restored(tmp_path / "backup")[2].restored_epoch == 2


def test_an_unreadable_backup_is_set_aside_with_a_message_and_training_starts_over(tmp_path, capsys):
    backed_up(tmp_path / "backup")
    latest = (tmp_path / "backup" / LATEST).read_text().strip()
    (tmp_path / "backup" / latest / "training.weights.h5").write_bytes(b"not an HDF5 file")
    model, _, backup = restored(tmp_path / "backup")
    assert backup.restored_epoch == 0 and not (tmp_path / "backup").exists()
    aside = [path for path in tmp_path.iterdir() if path.name.startswith("backup.unreadable-")]
    assert len(aside) == 1 and "cannot be read" in capsys.readouterr().err
    (tmp_path / "other" / "backup").mkdir(parents=True)
    (tmp_path / "other" / "backup" / LATEST).write_text("epoch-0009\n")  # names a folder that is not there
    assert restored(tmp_path / "other" / "backup")[2].restored_epoch == 0


def test_each_save_keeps_one_state(tmp_path):
    model = compiled()
    backup = ResumableBackup(tmp_path, monitors())
    backup.set_model(model)
    for epoch in (1, 2, 3):
        backup.save(epoch, stopped=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["epoch-0003", LATEST]
    assert json.loads((tmp_path / "epoch-0003" / "state.json").read_text())["epoch"] == 3


def test_non_finite_loss_stops_training_and_says_where():
    guard = NonFiniteLoss()
    big = np.full((64, 2), 1e20, dtype="float32")
    compiled(1e30).fit(big, np.full((64, 1), 1e20, "float32"), epochs=3, batch_size=8, verbose=0,
                                callbacks=[guard])
    assert guard.found and "epoch 1, batch" in guard.found and ("nan" in guard.found or "inf" in guard.found)
