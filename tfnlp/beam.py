"""Batch prediction on Apache Beam: every row of a file answered by an export through RunInference.

    python -m tfnlp.predict savedmodels/icd10_seq2seq --input csv:certificates.csv --output answers.jsonl
        [--text-column RawText] [--id-column id] [--runner DirectRunner] [--direct_num_workers 2]
        [--min-batch-size 16] [--max-batch-size 256] [other Beam pipeline options]

The same pipeline runs on the DirectRunner here and on Dataflow, Flink or Spark by options (`--runner`,
`--project`, `--temp_location`, ...). Inputs: `csv:` / `tsv:` (a text column and an id column passed
through; without an id column, the row's line number), `jsonl:` (one object per line), `text:` (one text
per line, its line number as id) and `tfrecord:` (tf.Example records with a `text` bytes feature and an
optional `id`); a path may be a glob. Each output row is a JSON object: the input's `id` and the same
typed answer `tfnlp.load(...).predict(...)` gives (`tfnlp.answers.to_dict`); `.tfrecord` outputs hold
those JSON objects as records. A row that cannot be read (a malformed JSON line, a missing column, a
record without `text`) goes to `OUTPUT.deadletter.jsonl` with its file, line (or record) number and the
reason: nothing is dropped silently.

The model is loaded once per worker process and shared by its threads (`TfnlpModelHandler`);
RunInference batches the texts (`--min-batch-size`, `--max-batch-size`).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from tfnlp.errors import UserError

KINDS = ("csv", "tsv", "jsonl", "text", "tfrecord")
DEAD_LETTER_SUFFIX = ".deadletter.jsonl"


@dataclass(frozen=True)
class Source:
    """What to read: a kind of file, a path or glob, and the columns of tabular rows."""

    kind: str
    pattern: str
    text_column: str = "RawText"
    id_column: str = "id"


def parse_source(spec: str, text_column: str = "RawText", id_column: str = "id") -> Source:
    """`KIND:PATH` (`csv:`, `tsv:`, `jsonl:`, `text:`, `tfrecord:`), or a path whose suffix says its kind."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in KINDS:
        return Source(kind, rest, text_column, id_column)
    suffixes = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "text",
                ".tfrecord": "tfrecord", ".tfrecords": "tfrecord"}
    suffix = Path(spec).suffix.lower()
    if suffix not in suffixes:
        raise UserError(f"--input {spec}: say its kind: {', '.join(f'{kind}:PATH' for kind in KINDS)}")
    return Source(suffixes[suffix], spec, text_column, id_column)


def dead_letter(file: str, where: str, reason: str, content: str = "") -> dict:
    """A row that could not be read: its file, line or record, why, and (cut short) what it held."""
    return {"file": file, "at": where, "reason": reason, "content": content[:500]}


def text_rows(file: str, data: bytes, source: Source) -> Iterator[tuple[str, Any]]:
    """("row", (id, text)) for each readable row of a CSV / TSV / JSONL / text file, ("dead", dead_letter) else."""
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as error:
        yield "dead", dead_letter(file, f"byte {error.start}", "not UTF-8 (convert the file first)")
        return
    if source.kind == "text":
        for number, line in enumerate(content.splitlines(), start=1):
            if line.strip():
                yield "row", (str(number), line)
        return
    if source.kind == "jsonl":
        yield from _json_rows(file, content, source)
        return
    yield from _delimited_rows(file, content, source)


def _json_rows(file: str, content: str, source: Source) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield "dead", dead_letter(file, f"line {number}", f"not JSON ({error.msg})", line)
            continue
        yield _row_or_dead(file, f"line {number}", row, source, str(number), line)


def _delimited_rows(file: str, content: str, source: Source) -> Iterator[tuple[str, Any]]:
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter="," if source.kind == "csv" else "\t")
    if source.text_column not in (reader.fieldnames or []):
        yield "dead", dead_letter(file, "line 1", f"no column {source.text_column!r} (columns: {reader.fieldnames}); "
                                                  "--text-column names it")
        return
    try:
        for row in reader:
            where = f"line {reader.line_num}"
            if None in row or any(value is None for value in row.values()):
                yield "dead", dead_letter(file, where, f"{len(row) - (None in row)} fields where the header has "
                                                       f"{len(reader.fieldnames)}", json.dumps(row, default=str))
                continue
            yield _row_or_dead(file, where, row, source, str(reader.line_num))
    except csv.Error as error:
        yield "dead", dead_letter(file, f"line {reader.line_num}", f"malformed CSV ({error}); rows after it not read")


def _row_or_dead(file: str, where: str, row: Any, source: Source, number: str, raw: str = "") -> tuple[str, Any]:
    if not isinstance(row, dict):
        return "dead", dead_letter(file, where, "not a JSON object", raw)
    text = row.get(source.text_column)
    if not isinstance(text, str):
        reason = (f"no {source.text_column!r} field" if text is None
                  else f"{source.text_column!r} is {type(text).__name__}, not text")
        return "dead", dead_letter(file, where, reason, raw or json.dumps(row, default=str, ensure_ascii=False))
    identifier = row.get(source.id_column, number)
    return "row", (str(identifier) if identifier is not None else number, text)


def example_row(file: str, number: int, record: bytes) -> tuple[str, Any]:
    """("row", (id, text)) of a tf.Example record with a `text` bytes feature (and an optional `id`), else dead."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.example import example_pb2

    try:
        example = example_pb2.Example.FromString(record)
    except DecodeError as error:
        return "dead", dead_letter(file, f"record {number}", f"not a tf.Example ({error})")
    features = example.features.feature
    values = features["text"].bytes_list.value if "text" in features else []
    if len(values) != 1:
        return "dead", dead_letter(file, f"record {number}", f"needs one `text` bytes value, found {len(values)}")
    try:
        text = values[0].decode("utf-8")
    except UnicodeDecodeError:
        return "dead", dead_letter(file, f"record {number}", "`text` is not UTF-8")
    identifier = features["id"].bytes_list.value[0].decode("utf-8", "replace") if (
        "id" in features and features["id"].bytes_list.value) else str(number)
    return "row", (identifier, text)


class TfnlpModelHandler(ModelHandler):
    """Loads a tfnlp export once per worker process (shared by its threads) and answers batches of texts with the
    typed answers of `tfnlp.load(...).predict(...)`, as dicts.

    Args:
        export: an exported version folder.
        min_batch_size, max_batch_size: the texts RunInference gives `run_inference` at a time.
    """

    def __init__(self, export: str, min_batch_size: int = 16, max_batch_size: int = 256) -> None:
        super().__init__()
        self.export, self.min_batch_size, self.max_batch_size = export, min_batch_size, max_batch_size

    def load_model(self):
        from tfnlp.predictor import Predictor

        return Predictor.from_export(self.export)

    def run_inference(self, batch: Sequence[str], model, inference_args=None) -> Iterable[PredictionResult]:
        from tfnlp.answers import to_dict

        for text, answer in zip(batch, model.predict(list(batch), batch_size=max(len(batch), 1)), strict=True):
            yield PredictionResult(text, to_dict(answer))

    def batch_elements_kwargs(self) -> dict:
        return {"min_batch_size": self.min_batch_size, "max_batch_size": self.max_batch_size}

    def get_metrics_namespace(self) -> str:
        return "tfnlp"


def build(pipeline, source: Source, export: str, output: str, min_batch_size: int = 16,
          max_batch_size: int = 256) -> None:
    """Add reading, inference and writing to a Beam pipeline: answers to `output` (JSONL, or `.tfrecord`) and rows
    that could not be read to `output` + `.deadletter.jsonl`."""
    if source.kind == "tfrecord":
        parsed = (pipeline | "Files" >> fileio.MatchFiles(source.pattern) | fileio.ReadMatches()
                  | "Records" >> beam.FlatMap(_tfrecord_rows))
    else:
        parsed = (pipeline | "Files" >> fileio.MatchFiles(source.pattern) | fileio.ReadMatches()
                  | "Rows" >> beam.FlatMap(lambda match: text_rows(match.metadata.path, match.read(), source)))
    rows = parsed | "Readable" >> beam.Filter(lambda item: item[0] == "row") | beam.Map(lambda item: item[1])
    dead = parsed | "Unreadable" >> beam.Filter(lambda item: item[0] == "dead") | "Letter" >> beam.Map(
        lambda item: json.dumps(item[1], ensure_ascii=False))
    answers = (rows | "Spread" >> beam.Reshuffle()
               | RunInference(KeyedModelHandler(TfnlpModelHandler(export, min_batch_size, max_batch_size)))
               | "Answer" >> beam.Map(lambda pair: {"id": pair[0], **pair[1].inference}))
    if output.endswith((".tfrecord", ".tfrecords")):
        _ = (answers | beam.Map(lambda row: json.dumps(row, ensure_ascii=False).encode("utf-8"))
             | beam.io.WriteToTFRecord(output, shard_name_template=""))
    else:
        _ = (answers | beam.Map(lambda row: json.dumps(row, ensure_ascii=False))
             | "Answers" >> beam.io.WriteToText(output, shard_name_template=""))
    _ = dead | "Dead letters" >> beam.io.WriteToText(output + DEAD_LETTER_SUFFIX, shard_name_template="")


def _tfrecord_rows(match) -> Iterator[tuple[str, Any]]:
    import tensorflow as tf

    path = match.metadata.path
    try:
        for number, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator(), start=1):
            yield example_row(path, number, record)
    except tf.errors.DataLossError as error:
        yield "dead", dead_letter(path, "after the last record read", f"truncated or not a TFRecord ({error.message})")


def run(export: str, source: Source, output: str, beam_options: Sequence[str] = (), min_batch_size: int = 16,
        max_batch_size: int = 256) -> dict[str, int]:
    """Run batch prediction to the end; the number of answers and of dead letters written.

    Args:
        export: an export as `tfnlp.load` takes it (resolved here, so a wrong path fails before the pipeline runs).
        source: what to read (`parse_source`).
        output: the answers' file (JSONL, or `.tfrecord`).
        beam_options: Beam pipeline options (`--runner=DataflowRunner`, `--direct_num_workers=2`, ...).
        min_batch_size, max_batch_size: RunInference's batching bounds.

    Raises:
        UserError: the export or the input cannot be found.
    """
    from tfnlp.predictor import resolve_version

    # A remote export (gs://, s3://) is read by the workers through TensorFlow's file systems: only a local one is
    # checked here.
    version = export if "://" in export else str(resolve_version(export))
    local = "://" not in source.pattern
    if local and not glob.glob(source.pattern):
        raise UserError(f"--input {source.pattern}: no such file")
    if "://" not in output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    options = PipelineOptions(quiet(beam_options))
    with beam.Pipeline(options=options) as pipeline:
        build(pipeline, source, version, output, min_batch_size, max_batch_size)
    return {"answers": _count(output), "dead_letters": _count(output + DEAD_LETTER_SUFFIX)}


def quiet(beam_options: Sequence[str]) -> list[str]:
    """The options with Beam's worker processes logging errors only, unless the options set their level
    (`--default_sdk_harness_log_level=INFO` brings the progress lines back); the driver's Beam loggers likewise. (Their
    warnings on a local run are about Google Cloud clients and resource modules it does not use.)"""
    options = list(beam_options)
    if not any(option.startswith("--default_sdk_harness_log_level") for option in options):
        options.append("--default_sdk_harness_log_level=ERROR")
        logging.getLogger("apache_beam").setLevel(logging.ERROR)
    return options


def _count(path: str) -> int:
    """Records of a local JSONL or TFRecord file written by the pipeline (-1 for a remote one)."""
    if "://" in path or not Path(path).exists():
        return -1 if "://" in path else 0
    if path.endswith((".tfrecord", ".tfrecords")):
        import tensorflow as tf

        return sum(1 for _ in tf.data.TFRecordDataset(path))
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())
