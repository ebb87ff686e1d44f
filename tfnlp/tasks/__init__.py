"""Task modules: preprocessing, tf.data, metrics and serving signature for one kind of task."""

from __future__ import annotations


def keras_fit(model, train_data, validation_data, epochs: int, callbacks: list, verbose: int):
    """`model.fit` as every Keras task runs it (the datasets shuffle themselves); returns the model."""
    model.fit(train_data, validation_data=validation_data, epochs=epochs, callbacks=callbacks, shuffle=False,
              verbose=verbose)
    return model
