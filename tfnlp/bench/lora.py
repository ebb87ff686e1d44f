"""Full fine-tuning against LoRA of several ranks, on sentiment_bert (movie-reviews) and ner_bert (NCBI disease).

    python -m tfnlp.bench lora [--quick] [--ranks 0,4,8,16,32] [--experiments sentiment_bert,ner_bert]
                               [--epochs N] [--max-records N] [--lora-learning-rate 1e-3]

Rank 0 is full fine-tuning at the experiment's own learning rate; LoRA ranks train at
`--lora-learning-rate` (adapters start at zero and need a larger step; a stated setting, not a
tuned one). Each run is its own process (`tfnlp.train`), so its peak memory (the process's
maximum resident set) is its own. The table: validation and test score (accuracy, or entity F1),
trained and total parameters, training seconds, peak memory and export size.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tfnlp.bench.ner import NCBI_CONLL, chosen
from tfnlp.errors import UserError

EXPERIMENTS = {"sentiment_bert": ("movie-reviews", "accuracy", "val_accuracy"),
               "ner_bert": (f"conll:{NCBI_CONLL}", "entity_f1", "val_entity_f1")}
RANKS = (0, 4, 8, 16, 32)
# ner_bert's defaults read a frozen backbone; full fine-tuning and LoRA are compared on its fine-tuned form (the
# defaults before 2026-12-04): the last layer, a dense head, constrained decoding, 4 epochs at 1e-4.
FINE_TUNED = {"ner_bert": ["model.freeze_backbone=false", "model.backbone_layers=1", "model.lstm_units=0",
                           "model.char_filters=0", "model.vectors=", "model.decoder=constrained", "model.dropout=0.1",
                           "train.epochs=4", "train.batch_size=16", "train.learning_rate=1e-4", "train.patience=2"]}
CHILD = """
import json, resource, sys
from tfnlp import train
code = train.main(sys.argv[1:])
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def run_one(experiment: str, rank: int, folder: Path, quick: bool, epochs: int, lora_learning_rate: float,
            max_records: int = 0) -> dict:
    """One training process; its test / validation scores, parameters, seconds, peak memory and export size."""
    from tfnlp.run import Run

    data, metric, monitor = EXPERIMENTS[experiment]
    settings = [*([] if quick else FINE_TUNED.get(experiment, [])), f"model.lora_rank={rank}"] + (
        [f"train.learning_rate={lora_learning_rate}"] if rank else []) + (
        [f"train.epochs={epochs}"] if epochs else []) + ([f"data.max_records={max_records}"] if max_records else [])
    argv = [experiment, "--data", data, "--workdir", str(folder / "work"), "--export_base", str(folder / "export"),
            *(["--tiny", "--set", "data.max_records=300"] if quick else ["--set"]), *settings]
    result = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True)
    if result.returncode != 0:
        raise UserError(f"{experiment} rank {rank} failed:\n{result.stderr[-3000:]}")
    peak_kb = int(result.stdout.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    finished = Run.load(folder / "work")
    validation = max(finished.history[monitor])
    export_bytes = sum(path.stat().st_size for path in finished.export.rglob("*") if path.is_file())
    return {"score": finished.test["model"][metric], "validation": validation, **finished.parameters,
            "train_seconds": finished.train_seconds, "peak_mb": peak_kb / 1024, "export_mb": export_bytes / 1e6}


def table(results: dict[tuple[str, int], dict]) -> str:
    """Markdown: one row per experiment and rank."""
    lines = ["| experiment | fine-tuning | val score | test score | trained parameters | of total | train s | "
             "peak memory MB | export MB |", "|---" * 9 + "|"]
    for (experiment, rank), row in results.items():
        metric = EXPERIMENTS[experiment][1]
        lines.append(f"| {experiment} ({metric}) | {'full' if rank == 0 else f'LoRA rank {rank}'} | "
                     f"{row['validation']:.3f} | {row['score']:.3f} | {row['trainable']:,} | {row['total']:,} | "
                     f"{row['train_seconds']:.0f} | {row['peak_mb']:.0f} | {row['export_mb']:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.bench lora`."""
    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench lora", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sentiment_bert on 300 records, ranks 0 and 4 (a check that the bench runs)")
    parser.add_argument("--ranks", default="", help="comma-separated ranks (0: full fine-tuning)")
    parser.add_argument("--experiments", default="", help="sentiment_bert, ner_bert (default: both; --quick: the "
                        "first)")
    parser.add_argument("--epochs", type=int, default=0, help="epochs of every run (default: each experiment's)")
    parser.add_argument("--lora-learning-rate", type=float, default=1e-3, help="learning rate of the LoRA runs")
    parser.add_argument("--max-records", type=int, default=0, help="records of each data set (0: all; a data set "
                        "that comes split keeps each part's share)")
    args = parser.parse_args(argv)
    experiments = chosen(args.experiments, list(EXPERIMENTS), "--experiments") or (
        ["sentiment_bert"] if args.quick else list(EXPERIMENTS))
    try:
        ranks = [int(rank) for rank in args.ranks.split(",") if rank] or ([0, 4] if args.quick else list(RANKS))
    except ValueError:
        raise UserError(f"--ranks {args.ranks!r}: comma-separated whole numbers (0: full fine-tuning)") from None
    if "ner_bert" in experiments and not NCBI_CONLL.is_dir():
        raise UserError(f"{NCBI_CONLL}: the NCBI disease corpus is not there (ner_bert reads it)")
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for experiment in experiments:
            for rank in ranks:
                folder = Path(scratch) / f"{experiment}-{rank}"
                results[(experiment, rank)] = run_one(experiment, rank, folder, args.quick, args.epochs,
                                                      args.lora_learning_rate, args.max_records)
                print(f"{experiment} rank {rank}: {results[(experiment, rank)]}", flush=True)
    print("\n" + table(results))
    return 0
