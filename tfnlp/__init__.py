"""tfnlp: a Keras 3 / TensorFlow toolkit that takes a text task from data to a served model.

The Python API (each name imports TensorFlow only when first used, so `import tfnlp` stays cheap):

- `tfnlp.train(experiment, *, data=None, overrides=(), config=None, tiny=False, workdir=None,
  export_base="savedmodels") -> Run` (`tfnlp.run.train`);
- `tfnlp.load(path) -> Predictor` for an exported version, a model base folder or a run folder
  (`tfnlp.predictor.load`); `Predictor.predict(texts)` returns one typed answer per text;
- `tfnlp.evaluate(path, data=...) -> Evaluation` (`tfnlp.evaluation.evaluate`).
"""

from __future__ import annotations

import importlib

from tfnlp import logs as _logs

__version__ = "0.1.0"
__all__ = ["Predictor", "Run", "evaluate", "load", "train"]

_API = {"load": ("tfnlp.predictor", "load"), "Predictor": ("tfnlp.predictor", "Predictor"),
        "evaluate": ("tfnlp.evaluation", "evaluate"), "Run": ("tfnlp.run", "Run")}

if _logs.is_command_start():  # a command's terminal shows no TensorFlow C++ log lines (tfnlp.logs)
    _logs.filter_native_logs()


def __getattr__(name: str):
    if name == "train":  # the command module, callable as tfnlp.run.train (see tfnlp/train.py)
        return importlib.import_module("tfnlp.train")
    if name in _API:
        module, attribute = _API[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'tfnlp' has no attribute {name!r}")
