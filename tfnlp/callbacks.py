"""Callbacks that keep a run's work safe: a backup a kill cannot break, and a stop at the first non-finite loss.

Training that survives being killed: an atomic backup of the whole training state after every epoch.

Keras's `BackupAndRestore` rewrites one weights file in place (a kill during the write leaves a file
that never loads again) and does not keep the monitors' state (a resumed run forgets the best value
so far, and can overwrite the best checkpoint with a worse epoch). `ResumableBackup` instead writes
each epoch's state into a new folder and then points `latest` at it with an atomic rename, so a kill
at any instant leaves the previous state or the new one; the state holds the model's and optimizer's
variables, the epoch, whether early stopping ended the run, and the monitors' values (best so far,
epochs without improvement). A state that cannot be read is set aside with a message.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import keras

LATEST = "latest"  # a small file naming the folder of the newest complete state
STATE_FILE = "state.json"
WEIGHTS_FILE = "training.weights.h5"  # model and optimizer variables
# What ModelCheckpoint, EarlyStopping and ReduceLROnPlateau remember from epoch to epoch.
MONITOR_STATE = ("best", "wait", "best_epoch", "cooldown_counter")


class ResumableBackup(keras.callbacks.Callback):
    """Backs up the training state after every epoch and restores it when training starts again.

    Put it after the callbacks it backs up (`monitors`), so that it saves what they decided this epoch.

    Args:
        folder: where the states go (one sub-folder per epoch, the newest named in `latest`).
        monitors: the callbacks whose state (`MONITOR_STATE` attributes) must survive a restart.

    With the seed generators' states (dropout) restored here, and each epoch's shuffle order a
    function of the seed and the epoch (`tasks.base.epoch_shuffle`), a deterministic run killed and
    resumed exports the same weights as the same run uninterrupted.
    """

    def __init__(self, folder: str | Path, monitors: list[keras.callbacks.Callback]) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.monitors = monitors
        self.restored_epoch = 0

    def saved_state(self) -> dict | None:
        """The newest complete state, or None when there is none; an unreadable one is set aside (renamed) with a
        message, and the run starts over."""
        pointer = self.folder / LATEST
        if not pointer.exists():
            return None
        try:
            epoch_folder = self.folder / pointer.read_text().strip()
            state = json.loads((epoch_folder / STATE_FILE).read_text())
            state["weights"] = str(epoch_folder / WEIGHTS_FILE)
            if not Path(state["weights"]).is_file():
                raise OSError(f"{state['weights']} is missing")
            return state
        except (OSError, ValueError, KeyError) as error:
            self._set_aside(error)
            return None

    def _set_aside(self, error: Exception) -> None:
        aside = self.folder.with_name(f"{self.folder.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        print(f"warning: the training backup in {self.folder} cannot be read ({error}); it is kept as {aside} and "
              "training starts from the first epoch", file=sys.stderr)
        os.replace(self.folder, aside)

    def on_train_begin(self, logs: dict | None = None) -> None:
        state = self.saved_state()
        if state is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its variables must exist to be loaded
        try:
            self.model.load_weights(state["weights"])
        except (OSError, ValueError) as error:
            self._set_aside(error)
            return
        for monitor, values in zip(self.monitors, state["monitors"], strict=True):
            for name, value in values.items():
                setattr(monitor, name, value)
        # By position: the same architecture creates them in the same order (their paths carry layer names that
        # Keras numbers per process).
        for variable, value in zip(_random_states(self.model), state["random_states"], strict=True):
            variable.assign(value)
        # A run that early stopping ended trains no further; otherwise it goes on after the saved epoch.
        self.restored_epoch = self.params["epochs"] if state["stopped"] else state["epoch"]
        self.model._initial_epoch = self.restored_epoch  # what Keras's own BackupAndRestore sets
        print(f"resumed after epoch {state['epoch']} from {self.folder}" + (" (early stopping had ended it)"
                                                                            if state["stopped"] else ""))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.save(epoch + 1, stopped=bool(self.model.stop_training))

    def save(self, epoch: int, stopped: bool) -> Path:
        """Write the state after `epoch` epochs into a new folder, then point `latest` at it; older folders go."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch:04d}"
        staging = self.folder / f".{name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        self.model.save_weights(str(staging / WEIGHTS_FILE))
        monitors = [{key: _plain(getattr(monitor, key)) for key in MONITOR_STATE if hasattr(monitor, key)}
                    for monitor in self.monitors]
        random_states = [variable.numpy().tolist() for variable in _random_states(self.model)]
        (staging / STATE_FILE).write_text(json.dumps({"epoch": epoch, "stopped": stopped, "monitors": monitors,
                                                      "random_states": random_states}))
        shutil.rmtree(self.folder / name, ignore_errors=True)
        os.replace(staging, self.folder / name)
        pointer = self.folder / f".{LATEST}.partial"
        pointer.write_text(name + "\n")
        os.replace(pointer, self.folder / LATEST)  # the instant the new state becomes the one to resume from
        for old in self.folder.iterdir():
            if old.is_dir() and old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return self.folder / name


def _random_states(model: keras.Model) -> list:
    """The model's variables that are not weights: the seed generators' states (dropout masks), which weight files
    leave out; restoring them gives a resumed run the dropout masks of an uninterrupted one."""
    weights = {id(weight) for weight in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


def _plain(value):
    """A monitor's value as JSON can hold it (numpy and tensor scalars become floats or ints; inf stays inf)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    number = float(value)
    return int(number) if number.is_integer() and "int" in str(getattr(value, "dtype", "")) else number


class NonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is nan or infinite, and remembers where."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch, self.found = 0, None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.found = f"the training loss became {float(loss)} at epoch {self.epoch + 1}, batch {batch + 1}"
            self.model.stop_training = True
