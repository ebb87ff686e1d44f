"""Answers from an export: `tfnlp.load(path).predict(texts)` (the command is `python -m tfnlp.predict`).

A `Predictor` loads an exported version folder, a model base folder (its newest version) or a training
run's folder (the version it exported). The export is all that is needed: no training data, no assets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from tfnlp import answers
from tfnlp.errors import UserError
from tfnlp.parsing import ascii_number

BATCH = 256  # texts per call of the serving signature
CARDS = ("model_card.json", "tfnlp_model_card.json")  # in assets.extra/: the card, or an older export's


def resolve_version(path: str | Path) -> Path:
    """The exported version folder `path` names: a version folder, a model base (its newest version) or a run folder
    (the version its metrics.json names).

    Raises:
        UserError: nothing loadable there, with what the path should be.
    """
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    if (path / "metrics.json").is_file():
        exported = json.loads((path / "metrics.json").read_text(encoding="utf-8")).get("exported")
        if not exported or not (Path(exported) / "saved_model.pb").is_file():
            raise UserError(f"{path}: the run's export {exported} is not there (moved or deleted?); give the version "
                            "folder instead")
        return Path(exported)
    versions = sorted((int(child.name), child) for child in path.iterdir()
                      if child.is_dir() and ascii_number(child.name)) if path.is_dir() else []
    if versions and (versions[-1][1] / "saved_model.pb").is_file():
        return versions[-1][1]
    if (path / "config.json").is_file():
        raise UserError(f"{path}: a run folder whose training did not finish (no metrics.json): nothing was exported")
    raise UserError(f"{path}: not an export; give a version folder (savedmodels/NAME/N), a model base folder "
                    "(savedmodels/NAME) or a training run's folder")


def served_rows(function: Callable, texts: Sequence[str], batch_size: int = BATCH) -> list[dict]:
    """Every output of a serving function for each text, as plain Python values (called in batches)."""
    import tensorflow as tf

    rows: list[dict] = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start:start + batch_size])
        columns = {name: _plain(value.numpy().tolist())
                   for name, value in function(text=tf.constant(chunk, dtype=tf.string)).items()}
        rows += [{name: values[row] for name, values in columns.items()} for row in range(len(chunk))]
    return rows


def _plain(value):
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value.decode("utf-8") if isinstance(value, bytes) else value


class Predictor:
    """A tfnlp model's serving signature answering texts: an export loaded once (`load`), or a serving function in
    memory (a run evaluates its model this way before exporting it).

    Args:
        signature: a function taking `text` (tf.string [None]) and returning a tfnlp export's named outputs.
        version: the exported version folder it was loaded from, if any.
        card: what the export says about itself (its experiment's settings, test scores), or {}.

    Attributes:
        version, card: as given.
        answer_type: `CodeAnswer`, `LabelAnswer` or `TaggedAnswer`.
    """

    def __init__(self, signature: Callable, version: Path | None = None, card: dict | None = None) -> None:
        self._signature, self.version, self.card = signature, version, card or {}
        outputs = getattr(signature, "structured_outputs", None) or signature.get_concrete_function().structured_outputs
        try:
            self.answer_type = answers.answer_type(list(outputs))
        except ValueError as error:
            raise UserError(f"{version or 'the model'}: {error}") from None

    @classmethod
    def from_export(cls, path: str | Path) -> Predictor:
        """The export at `path` (`resolve_version`), loaded with TensorFlow and tensorflow_text alone."""
        import tensorflow as tf
        import tensorflow_text  # noqa: F401 - registers the ops of the tagger and BERT exports

        version = resolve_version(path)
        try:
            signature = tf.saved_model.load(str(version)).signatures["serving_default"]
        except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
            raise UserError(f"{version}: not a loadable SavedModel with a serving_default signature "
                            f"({str(error).splitlines()[0]})") from None
        card = next((version / "assets.extra" / name for name in CARDS
                     if (version / "assets.extra" / name).is_file()), None)
        return cls(signature, version, json.loads(card.read_text(encoding="utf-8")) if card else {})

    @property
    def experiment(self) -> str:
        """The experiment the export was trained by (from its card; the model folder's name otherwise)."""
        name = self.card.get("experiment", {}).get("name")
        return name or (self.version.parent.name if self.version else "")

    def outputs(self, texts: Sequence[str], batch_size: int = BATCH) -> list[dict]:
        """The signature's named outputs for each text, as plain Python values."""
        return served_rows(self._signature, _checked(texts), batch_size)

    def predict(self, texts: str | Sequence[str], batch_size: int = BATCH) -> list[answers.Answer]:
        """One typed answer per text (`CodeAnswer`, `LabelAnswer` or `TaggedAnswer`), in order.

        Args:
            texts: the texts (a single string is one text).
            batch_size: texts per call of the model.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        return [self.answer_type.from_outputs(text, row) for text, row in zip(texts, self.outputs(texts, batch_size),
                                                                                strict=True)]


def _checked(texts: Sequence[str]) -> list[str]:
    texts = [texts] if isinstance(texts, str) else list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise UserError(f"text {index}: expected a string, got {type(text).__name__}")
    return texts


def load(path: str | Path) -> Predictor:
    """The export at `path` (a version folder, a model base folder or a run folder), ready to `predict`."""
    return Predictor.from_export(path)


