"""Settings of a classifier compared by k-fold cross-validation on its training and validation texts.

    python -m tfnlp.bench folds sentiment_bilstm [--folds 4] [--variant NAME KEY=VALUE ...] ... [--quick]

One validation split of a few hundred texts cannot tell two settings apart when each run picks its epoch and its
TF-IDF fusion weight on it. Here the experiment's training and validation texts are pooled (its test split is left
out, never read) and cut into `--folds` parts; each part is held out in turn, the next validation-sized slice of the
rest chooses the epoch and the fusion weight, and the remainder trains. Each variant (its `--set` overrides on the
experiment's defaults; `defaults` is always run) is scored by its accuracy on the held-out parts beside the run's
own TF-IDF + logistic-regression baseline, fold by fold and on average. `--quick`: the tiny variant, two folds.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tfnlp.data.records import Splits
from tfnlp.errors import UserError

DEFAULTS = "defaults"


def fold_splits(splits: Splits, folds: int, index: int, seed: int = 0) -> Splits:
    """The `index`-th of `folds` cross-validation splits of `splits`' training and validation records: that part
    held out (as the test split), as many records as `splits.validation` has for validation, the rest for training.

    Raises:
        UserError: fewer than two folds, or too few records for a fold, a validation slice and some training.
    """
    if folds < 2:
        raise UserError(f"--folds {folds}: cross-validation needs at least 2 folds")
    pool = list(splits.train) + list(splits.validation)
    random.Random(seed).shuffle(pool)
    size = len(pool) // folds
    if size == 0 or len(pool) - size <= len(splits.validation):
        raise UserError(f"--folds {folds}: {len(pool)} training and validation records leave too few for each "
                        f"fold's held-out part, a validation slice of {len(splits.validation)} and training")
    held_out = pool[index * size:(index + 1) * size]
    rest = pool[:index * size] + pool[(index + 1) * size:]
    return Splits(rest[len(splits.validation):], rest[:len(splits.validation)], held_out)


def run_fold(experiment, loaded, folder: Path) -> dict:
    """One fold's run: held-out accuracy of the export's model and of the run's TF-IDF baseline, the fusion weight
    the run chose (1: the export answers with its TF-IDF model alone) and the fused validation accuracy it chose
    it on."""
    from tfnlp.run import run_experiment

    finished = run_experiment(experiment, folder / "work", folder / "export", loaded)
    fusion = finished.reports.get("tfidf_fusion") or {}
    return {"held_out": finished.test["model"]["accuracy"],
            "baseline": finished.test["baseline_tfidf_logreg"]["accuracy"],
            "validation": fusion.get("validation_accuracy", {}).get("fused", float("nan")),
            "tfidf_weight": fusion.get("tfidf_weight")}


def variant_experiments(name: str, variants: Sequence[Sequence[str]], quick: bool) -> dict:
    """`defaults` and each `--variant NAME KEY=VALUE ...` as configured experiments (validated before any run),
    with the run's own baselines on (the TF-IDF model is scored on each held-out part)."""
    from tfnlp import config as config_lib
    from tfnlp import experiments

    base = experiments.get(name, tiny=quick)
    if base.task != "classification":
        raise UserError(f"{name} is a {base.task} experiment; bench folds compares classifiers")
    base = config_lib.validate(dataclasses.replace(base, train=dataclasses.replace(base.train, baselines=True)))
    configured = {DEFAULTS: base}
    for label, *overrides in variants:
        if label in configured:
            raise UserError(f"--variant {label}: named twice (or {DEFAULTS!r}, which is always run)")
        configured[label] = config_lib.validate(config_lib.apply_overrides(base, overrides))
    return configured


def table(scores: dict[str, list[dict]]) -> str:
    """A row per variant: each fold's held-out accuracy, their mean, the baseline's, the difference, the fused
    validation accuracy's mean and each fold's TF-IDF weight (variants whose weights are all 1 answer alike: with
    the TF-IDF model alone)."""
    folds = len(next(iter(scores.values())))
    lines = ["| variant | " + " | ".join(f"fold {index}" for index in range(folds))
             + " | held out | baseline | difference | fused validation | TF-IDF weights |", "|---" * (folds + 6) + "|"]
    for label, runs in scores.items():
        held_out = statistics.mean(run["held_out"] for run in runs)
        baseline = statistics.mean(run["baseline"] for run in runs)
        validation = statistics.mean(run["validation"] for run in runs)
        lines.append(f"| {label} | " + " | ".join(f"{run['held_out']:.3f}" for run in runs)
                     + f" | {held_out:.3f} | {baseline:.3f} | {held_out - baseline:+.3f} | {validation:.3f} | "
                     + ", ".join("-" if run["tfidf_weight"] is None else f"{run['tfidf_weight']:g}" for run in runs)
                     + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.bench folds`."""
    from tfnlp.data import sources

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench folds", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="a classification experiment (python -m tfnlp.train --list)")
    parser.add_argument("--folds", type=int, default=None, help="parts held out in turn (default 4; 2 with --quick)")
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar="NAME [KEY=VALUE ...]",
                        help="a variant: its name, then its --set overrides; repeat for more")
    parser.add_argument("--seed", type=int, default=0, help="how the pooled records are shuffled into folds")
    parser.add_argument("--quick", action="store_true", help="the tiny variant, 2 folds: to see the bench work")
    args = parser.parse_args(argv)
    folds = args.folds or (2 if args.quick else 4)
    configured = variant_experiments(args.experiment, args.variant, args.quick)
    data = configured[DEFAULTS].data
    loaded = sources.load(data.source, data)
    parts = [fold_splits(loaded.splits, folds, index, args.seed) for index in range(folds)]
    scores: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, experiment in configured.items():
            scores[label] = [run_fold(experiment, dataclasses.replace(loaded, splits=part),
                                      Path(scratch) / f"{label}-{index}") for index, part in enumerate(parts)]
    print(f"\n{args.experiment}, {folds}-fold cross-validation on its {len(loaded.splits.train)} training and "
          f"{len(loaded.splits.validation)} validation texts (test split not read), accuracy on the held-out parts:")
    print(table(scores))
    best = max(scores, key=lambda label: statistics.mean(run["held_out"] for run in scores[label]))
    print(f"headline: best held-out accuracy: {best}")
    return 0
