"""Batch prediction throughput: Apache Beam's DirectRunner (one and several worker processes) against one Python
process answering the same rows with `tfnlp.load(...).predict(...)`.

    python -m tfnlp.bench beam [--quick] [--model savedmodels/icd10_seq2seq/N] [--rows 5000] [--workers 1,2]

Rows: the cim10 test labels repeated to `--rows`, written as a CSV with an id column. Each Beam row is one
`python -m tfnlp.predict MODEL --input csv:... --output ...` pipeline (`tfnlp.beam.run`), timed from start to
the answers written (model loading and the runner's start-up included, as a user pays them); the one-process
row loads the export and answers every text in batches of 256.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tfnlp.bench.decode import seq2seq_model_path
from tfnlp.errors import UserError
from tfnlp.parsing import ascii_number


def worker_counts(value: str) -> list[int]:
    """`--workers 1,2` as numbers of processes (UserError for anything else)."""
    counts = [part for part in value.split(",") if part]
    if not counts or not all(ascii_number(part) and int(part) >= 1 for part in counts):
        raise UserError(f"--workers {value!r}: comma-separated process counts, each at least 1")
    return [int(part) for part in counts]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table and the headline."""
    from tfnlp.logs import drop_root_notices

    drop_root_notices("apache_beam")
    from tfnlp import beam
    from tfnlp.config import DataConfig
    from tfnlp.data import sources
    from tfnlp.predictor import load

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench beam", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 rows, one worker: about a minute")
    parser.add_argument("--model", help="an exported coder version (default: newest savedmodels/icd10_seq2seq)")
    parser.add_argument("--rows", type=int, default=5000, help="rows to answer")
    parser.add_argument("--workers", default="1,2", help="comma-separated DirectRunner worker processes")
    args = parser.parse_args(argv)
    rows = 500 if args.quick else args.rows
    workers = [1] if args.quick else worker_counts(args.workers)
    scratch = Path(tempfile.mkdtemp(prefix="tfnlp-bench-beam-"))
    model = seq2seq_model_path(args.model, scratch)
    labels = [record.text for record in sources.load("cim10", DataConfig()).splits.test]
    texts = [labels[index % len(labels)] for index in range(rows)]
    data = scratch / "rows.csv"
    with open(data, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "RawText"])
        writer.writerows((str(index), text) for index, text in enumerate(texts))

    results = []
    started = time.perf_counter()
    answers = load(model).predict(texts)
    results.append(("one Python process (tfnlp.load(...).predict)", 1, len(answers), time.perf_counter() - started))
    for count in workers:
        options = ["--runner=DirectRunner", f"--direct_num_workers={count}",
                   f"--direct_running_mode={'in_memory' if count == 1 else 'multi_processing'}"]
        started = time.perf_counter()
        written = beam.run(str(model), beam.parse_source(f"csv:{data}"), str(scratch / f"out-{count}.jsonl"), options)
        results.append((f"Beam DirectRunner, {count} worker process{'es' if count > 1 else ''}", count,
                        written["answers"], time.perf_counter() - started))
    print(f"\n{rows} rows, model {model}\n")
    print("| path | processes | rows answered | seconds | rows/s |\n|---|---|---|---|---|")
    for name, count, answered, seconds in results:
        print(f"| {name} | {count} | {answered} | {seconds:.1f} | {answered / seconds:.0f} |")
    best = max(results[1:], key=lambda row: row[2] / row[3])
    print(f"headline: DirectRunner at best {best[2] / best[3]:.0f} rows/s ({best[1]} processes) against "
          f"{results[0][2] / results[0][3]:.0f} rows/s in one Python process")
    return 0
