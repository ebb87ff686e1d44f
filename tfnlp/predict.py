"""Answer texts with an export: what a person reads, or JSON; locally, or in batch on Apache Beam.

    python -m tfnlp.predict EXPORT_OR_RUN "Insuffisance cardiaque congestive" ["texte" ...]
    python -m tfnlp.predict EXPORT_OR_RUN --input texts.txt [--output answers.jsonl] [--json] [--top-k K]
    python -m tfnlp.predict EXPORT_OR_RUN --input csv:rows.csv --output answers.jsonl [--runner DirectRunner]
                            [--text-column RawText] [--id-column id] [Beam pipeline options]

`EXPORT_OR_RUN` is an exported version folder (`savedmodels/icd10_seq2seq/3`), a model base folder
(its newest version) or a training run's folder (the version it exported). The command prints, for
each text, what a person reads (ranked codes with labels, confidences and the review flag; a text
with its entities marked; ranked labels); `--json` prints one JSON object per text instead, as
`--output` writes them. From Python: `tfnlp.load(path).predict(texts)` (`tfnlp.predictor`).

With a tabular, JSONL or TFRecord `--input` (or `--runner`), the same answers are computed in batch on
Apache Beam's RunInference (`tfnlp.beam`: DirectRunner here; Dataflow, Flink or Spark by options), each
output row with its input's id, unreadable rows in OUTPUT.deadletter.jsonl (`pip install "tfnlp[beam]"`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tfnlp import answers
from tfnlp.errors import UserError, cli_main
from tfnlp.logs import drop_root_notices
from tfnlp.predictor import load, resolve_version

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
    drop_root_notices("apache_beam")
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
    texts = read_texts(args.texts, args.input, "--input")
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
