"""Every classifier side by side on one seeded split per task, beside TF-IDF + logistic regression.

    python -m tfnlp.bench classifiers [--quick] [--tasks chapter,category,movie-reviews]
    python -m tfnlp.bench losses [--quick]

`--quick` runs each experiment's tiny variant (small model, 600 records, one epoch), and only the
chapter task unless `--tasks` says otherwise: about a minute, to see the bench work, not to compare.

`classifiers`: for the cim10 chapter task (first character of the code), the cim10 category
task (three characters) and movie-review polarity, each classifier experiment is trained with
`tfnlp.train` (its own defaults; the data and label length replaced), evaluated on the test
split, and exported; inference speed is measured through the exported SavedModel's serving
signature on the test texts (batches of 256).

`losses`: the category task's BiLSTM + Conv1D with each `train.loss` (ce, weighted, focal,
balanced_focal), the imbalance comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp import experiments
from tfnlp.errors import UserError

# task -> (source, label length, experiments); the vectors experiments use the language's vectors.
TASKS = {
    "chapter": ("cim10", 1, ("icd10_chapter_lstm", "icd10_code_bilstm_conv", "icd10_glove_logreg", "icd10_glove_mlp",
                            "icd10_glove_bilstm")),
    "category": ("cim10", 3, ("icd10_chapter_lstm", "icd10_code_bilstm_conv", "icd10_glove_logreg",
                              "icd10_glove_mlp", "icd10_glove_bilstm")),
    "movie-reviews": ("movie-reviews", 0, ("icd10_chapter_lstm", "sentiment_bilstm", "sentiment_glove_logreg",
                                           "sentiment_glove_mlp", "sentiment_glove_bilstm", "sentiment_bert")),
}
LOSS_EXPERIMENT = "icd10_code_bilstm_conv"
BASELINE = "tfidf_logreg (baseline)"
PLAIN_NETWORK = "icd10_chapter_lstm"  # a classifier that reads no vectors: its settings build the baseline's task


def configured(name: str, source: str, label_length: int | None, quick: bool, overrides: Sequence[str] = ()):
    """The experiment (its tiny variant when `quick`) on `source`, targets cut to `label_length` (None keeps the
    experiment's), without the run's own baselines."""
    experiment = experiments.get(name, tiny=quick)
    data = dataclasses.replace(experiment.data, source=source,
                               label_length=experiment.data.label_length if label_length is None else label_length)
    train = dataclasses.replace(experiment.train, baselines=False)
    experiment = dataclasses.replace(experiment, data=data, train=train)
    return config_lib.validate(config_lib.apply_overrides(experiment, overrides))


def serving_signature(version: Path):
    """The SavedModel's `serving_default` signature, loaded in this process."""
    import tensorflow as tf

    return tf.saved_model.load(str(version)).signatures["serving_default"]


def outputs_in_batches(signature, texts: Sequence[str], batch_size: int = 256) -> Iterator[dict]:
    """The signature's outputs for `texts`, one call per batch of `batch_size`."""
    from tfnlp.bench.speed import text_batches

    for batch in text_batches(texts, batch_size):
        yield signature(text=batch)


def texts_per_second(signature, texts: Sequence[str], batch_size: int = 256, passes: int = 3) -> float:
    """Texts per second through a SavedModel's serving signature: the median of `passes` timed passes over `texts`
    after an untimed one (a single pass is at the mercy of this machine's wandering speed)."""
    import numpy as np

    from tfnlp.bench.speed import text_batches, timed_passes

    batches = text_batches(texts, batch_size)
    for batch in batches:
        signature(text=batch)
    return float(np.median(timed_passes({"export": signature}, batches, passes)["export"]))


def run_one(experiment, folder: Path, tokens_of=None) -> dict:
    """Train, evaluate and export one experiment under `folder`; its test scores, seconds and speed.

    Args:
        experiment: the configured experiment.
        folder: scratch folder for its workdir and export.
        tokens_of: for taggers, a test record's token count: adds `tokens_per_second`.
    """
    from tfnlp.data import sources
    from tfnlp.run import run_experiment

    loaded = sources.load(experiment.data.source, experiment.data)
    finished = run_experiment(experiment, folder / "work", folder / "export", loaded)
    test = loaded.splits.test
    texts = [record.text for record in test]
    signature = serving_signature(finished.export)
    speed = texts_per_second(signature, texts)
    tokens = {"tokens_per_second": speed * sum(map(tokens_of, test)) / len(test)} if tokens_of else {}
    correct = {}
    if experiment.task == "classification":  # right or wrong on each test text, for the paired comparison
        from tfnlp.tasks.classification import cut_label

        answers = [label.decode("utf-8") for outputs in outputs_in_batches(signature, texts)
                   for label in outputs["label"].numpy()]
        truth = [cut_label(record.target, experiment.data.label_length) for record in test]
        correct = {"correct": [answer == label for answer, label in zip(answers, truth, strict=True)]}
    return {**finished.test["model"], "train_seconds": finished.train_seconds, "texts_per_second": speed,
            **tokens, **correct, "per_type": finished.reports.get("per_type", []), "systems": finished.test}


def baseline(experiment) -> dict:
    """TF-IDF + logistic regression on the same split and labels (fitted on train, scored on test)."""
    from tfnlp.data import sources
    from tfnlp.metrics import classification_scores
    from tfnlp.tasks.classification import ClassificationTask

    loaded = sources.load(experiment.data.source, experiment.data)
    # The baseline needs the split and the labels only: a model family that reads no vectors spares loading them
    # (a static-vector family refuses to run without any).
    plain = dataclasses.replace(experiment, model=experiments.get(PLAIN_NETWORK).model)
    task = ClassificationTask(plain, loaded.splits)
    started = time.perf_counter()
    predicted = task.baselines(task.splits.test)["baseline_tfidf_logreg"]
    truth = task.truth(task.splits.test)
    return {**classification_scores(truth, predicted), "train_seconds": time.perf_counter() - started,
            "texts_per_second": float("nan"),
            "correct": [answer == label for answer, label in zip(predicted, truth, strict=True)]}


def describe(experiment) -> str:
    """`model factory [+ vectors] (experiment)`."""
    vectors = f" + {experiment.model.vectors}" if getattr(experiment.model, "vectors", "") else ""
    return f"{experiment.model.name}{vectors} ({experiment.name})"


def rate_cell(texts_per_second: float) -> str:
    """A speed for a table: `-` where none was measured (NaN)."""
    return "-" if texts_per_second != texts_per_second else f"{texts_per_second:.0f}"


def difference_cell(scores: dict) -> str:
    """The accuracy difference from the task's baseline with its 95% paired bootstrap interval, or `-`."""
    compared = scores.get("vs_baseline")
    if not compared:
        return "-"
    return f"{compared['difference']:+.3f} [{compared['low']:+.3f}, {compared['high']:+.3f}]"


def compare_with_baselines(rows: list[tuple[str, str, dict]]) -> None:
    """Add `vs_baseline` to each classifier row that has a baseline row of its task with per-text answers."""
    from tfnlp.metrics import paired_accuracy_difference

    baselines = {task: scores["correct"] for task, name, scores in rows if name == BASELINE and "correct" in scores}
    for task, name, scores in rows:
        if name != BASELINE and "correct" in scores and task in baselines:
            scores["vs_baseline"] = paired_accuracy_difference(scores["correct"], baselines[task])


def table(rows: list[tuple[str, str, dict]]) -> str:
    lines = ["| task | classifier | accuracy | vs baseline [95% CI] | macro-F1 | train s | texts/s (SavedModel) |",
             "|---" * 7 + "|"]
    for task, name, scores in rows:
        lines.append(f"| {task} | {name} | {scores['accuracy']:.3f} | {difference_cell(scores)} | "
                     f"{scores['macro_f1']:.3f} | {scores['train_seconds']:.0f} | "
                     f"{rate_cell(scores['texts_per_second'])} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.bench classifiers`."""
    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench classifiers", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny variants; the chapter task unless --tasks")
    parser.add_argument("--tasks", help=f"comma-separated, of {', '.join(TASKS)} (default: all)")
    parser.add_argument("--only", default="", help="comma-separated experiment names to keep")
    args = parser.parse_args(argv)
    args.tasks = args.tasks or ("chapter" if args.quick else ",".join(TASKS))
    unknown = sorted(set(args.tasks.split(",")) - set(TASKS))
    if unknown:
        raise UserError(f"unknown tasks {unknown}; known: {', '.join(TASKS)}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for task_name in args.tasks.split(","):
            source, length, names = TASKS[task_name]
            names = [name for name in names if not args.only or name in args.only.split(",")]
            for index, name in enumerate(names):
                experiment = configured(name, source, length, args.quick)
                if index == 0:
                    rows.append((task_name, BASELINE, baseline(experiment)))
                scores = run_one(experiment, Path(scratch) / f"{task_name}-{name}")
                rows.append((task_name, describe(experiment), scores))
    compare_with_baselines(rows)
    print("\n" + table(rows))
    best = max((row for row in rows if row[0] == rows[-1][0]), key=lambda row: row[2]["macro_f1"])
    print(f"headline: best macro-F1 on {best[0]}: {best[1]} {best[2]['macro_f1']:.3f}")
    return 0


def losses_main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.bench losses`: train.loss options on the category task."""
    from tfnlp.losses import LOSSES

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench losses", description="train.loss compared")
    parser.add_argument("--quick", action="store_true", help="the tiny variant (600 records, one epoch)")
    parser.add_argument("--experiment", default=LOSS_EXPERIMENT)
    args = parser.parse_args(argv)
    source, length, _ = TASKS["category"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for loss in LOSSES:
            experiment = configured(args.experiment, source, length, args.quick, [f"train.loss={loss}"])
            rows.append(("category", f"{args.experiment} loss={loss}", run_one(experiment, Path(scratch) / loss)))
    print("\n" + table(rows))
    best = max(rows, key=lambda row: row[2]["macro_f1"])
    print(f"headline: best macro-F1 on the category task: {best[1]} {best[2]['macro_f1']:.3f}")
    return 0
