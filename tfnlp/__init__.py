"""tfnlp: a Keras 3 / TensorFlow toolkit that takes a text task from data to a served model."""

__version__ = "0.1.0"
