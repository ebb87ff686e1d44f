"""Answers from an export: `tfnlp.load(path).predict(texts)`, and the command that prints them.

    python -m tfnlp.predict EXPORT_OR_RUN "Insuffisance cardiaque congestive" ["texte" ...]
    python -m tfnlp.predict EXPORT_OR_RUN --input texts.txt [--output answers.jsonl] [--json] [--top-k K]
    python -m tfnlp.predict EXPORT_OR_RUN --input csv:rows.csv --output answers.jsonl [--runner DirectRunner]
                            [--text-column RawText] [--id-column id] [Beam pipeline options]

`EXPORT_OR_RUN` is an exported version folder (`savedmodels/icd10_seq2seq/3`), a model base folder
(its newest version) or a training run's folder (the version it exported). The export is all that is
needed: no training data, no assets. The command prints, for each text, what a person reads (ranked
codes with labels, confidences and the review flag; a text with its entities marked; ranked labels);
`--json` prints one JSON object per text instead, as `--output` writes them.

With a tabular, JSONL or TFRecord `--input` (or `--runner`), the same answers are computed in batch on
Apache Beam's RunInference (`tfnlp.beam`: DirectRunner here; Dataflow, Flink or Spark by options), each
output row with its input's id, unreadable rows in OUTPUT.deadletter.jsonl (`pip install "tfnlp[beam]"`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tfnlp import answers
from tfnlp.errors import UserError, cli_main
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


BATCH_KINDS = ("csv", "tsv", "jsonl", "text", "tfrecord")
BATCH_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".tfrecord", ".tfrecords")


def is_batch_input(spec: str | None) -> bool:
    """Whether an `--input` asks for batch prediction on Beam (a tabular, JSONL or TFRecord source, or an explicit
    `KIND:PATH`) rather than a plain file of texts answered in this process."""
    if not spec:
        return False
    kind, sep, _ = spec.partition(":")
    return (bool(sep) and kind in BATCH_KINDS) or Path(spec).suffix.lower() in BATCH_SUFFIXES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.predict", description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an exported version folder, a model base folder or a training run's folder")
    parser.add_argument("texts", nargs="*", help="texts to answer")
    parser.add_argument("--input", help="a text file, one text per line; or a batch source: csv:, tsv:, jsonl:, "
                        "text:, tfrecord: (a path or glob)")
    parser.add_argument("--output", help="write one JSON answer per line to this file (.tfrecord in batch form)")
    parser.add_argument("--json", action="store_true", help="print one JSON answer per line instead of text")
    parser.add_argument("--top-k", type=int, default=None, help="candidates shown per answer (default: all)")
    batch = parser.add_argument_group("batch prediction on Apache Beam (other options go to Beam)")
    batch.add_argument("--runner", help="Beam runner (default DirectRunner; DataflowRunner, FlinkRunner, SparkRunner)")
    batch.add_argument("--text-column", default="RawText", help="the text column of tabular / JSONL rows")
    batch.add_argument("--id-column", default="id", help="the id column passed through (default: the line number)")
    batch.add_argument("--min-batch-size", type=int, default=16, help="RunInference's smallest batch")
    batch.add_argument("--max-batch-size", type=int, default=256, help="RunInference's largest batch")
    return parser


def run_batch(args: argparse.Namespace, beam_options: Sequence[str]) -> int:
    """The batch form: a Beam pipeline over `--input`; prints what it wrote."""
    if not args.input or not args.output:
        raise UserError("batch prediction needs --input SOURCE and --output FILE")
    if args.min_batch_size < 1 or args.max_batch_size < args.min_batch_size:
        raise UserError(f"--min-batch-size {args.min_batch_size} / --max-batch-size {args.max_batch_size}: need "
                        "1 <= min <= max")
    if "://" not in args.model:
        resolve_version(args.model)  # a wrong path fails before Beam loads
    try:
        from tfnlp import beam
    except ImportError:
        raise UserError('batch prediction runs on Apache Beam: pip install "tfnlp[beam]"') from None
    source = beam.parse_source(args.input, args.text_column, args.id_column)
    options = [*beam_options, *([f"--runner={args.runner}"] if args.runner else [])]
    counts = beam.run(args.model, source, args.output, options, args.min_batch_size, args.max_batch_size)
    print(f"{args.output}: {counts['answers']} answers; {counts['dead_letters']} unreadable rows in "
          f"{args.output}{beam.DEAD_LETTER_SUFFIX}")
    return 0


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    from tfnlp.cli import read_texts

    args, beam_options = build_parser().parse_known_args(argv)
    if args.runner or is_batch_input(args.input):
        return run_batch(args, beam_options)
    if beam_options:
        raise UserError(f"unknown options {' '.join(beam_options)} (Beam options go with a batch --input)")
    if args.top_k is not None and args.top_k < 1:
        raise UserError(f"--top-k {args.top_k}: must be at least 1")
    texts = read_texts(args.texts, args.input)
    resolve_version(args.model)  # a wrong path fails before TensorFlow loads
    results = load(args.model).predict(texts)
    rows = [json.dumps(answers.to_dict(answer), ensure_ascii=False) for answer in results]
    if args.output:
        Path(args.output).write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    for answer, row in zip(results, rows, strict=True):
        print(row if args.json else answers.render(answer, args.top_k) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
