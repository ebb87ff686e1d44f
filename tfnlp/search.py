"""Hyperparameter search with Optuna: each trial one `tfnlp.train` run, scored on the validation split.

    python -m tfnlp.search EXPERIMENT --trials N [--space space.toml] [--storage sqlite:///runs/search.db]
                           [--study NAME] [--timeout S] [--sampler tpe|random] [--tiny] [--resume]
                           [--train-best] [--data SRC] [--config run.toml] [--set k=v ...]

The objective is the experiment's monitored validation value (`train.monitor`: maximised, or minimised
for a loss), the best epoch's, as early stopping keeps it; the test split is never read. Unpromising
trials stop early (Optuna's median pruner on the per-epoch value, through optuna-integration's Keras
callback). `--trials N` is the study's total: `--resume` carries an interrupted study on until it holds
N finished trials (complete, pruned or failed; trials an interrupted search left running are marked
failed first: `--resume` assumes no other process works on the study). A new study's first trial is the
configuration as given, so the leaderboard shows what the search gained. A failed trial (an impossible
combination, out of memory) is recorded with its reason and the study goes on.

A space file maps `section.key` to a range or a list:

    "train.learning_rate" = {low = 1e-4, high = 1e-2, log = true}
    "model.units" = {low = 64, high = 256, step = 64}
    "train.batch_size" = [32, 64, 128]

Several processes may run trials of one study at once: the first creates it, the others `--join` it
with the same `--storage` (a database they all reach) and `--study`; `--trials` is the study's total
for each of them, and the leaderboard reads every trial.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfnlp import config as config_lib
from tfnlp import run as run_lib
from tfnlp.cli import add_experiment_options, experiment_from_args
from tfnlp.errors import UserError, cli_main

Space = dict[str, Any]  # "section.key" -> {"low", "high", "log"?, "step"?} or a list of choices



def default_space(experiment: config_lib.Experiment) -> Space:
    """The default space of the experiment's task for its model family (`Task.search_space`)."""
    from tfnlp.tasks import task_class

    space = task_class(experiment.task).search_space(experiment)
    if not space:
        raise UserError(f"{experiment.name}: no default search space; give one with --space")
    return space


def read_space(path: str, experiment: config_lib.Experiment) -> Space:
    """A TOML space file, each key checked against the experiment's configuration and each domain against what
    Optuna can sample (`check_space`)."""
    raw = config_lib.read_toml(path)
    check_space(raw, experiment, str(path))
    return raw


def check_space(space: Space, experiment: config_lib.Experiment, where: str) -> None:
    """Refuse, before any study is created, a key the experiment does not read, and a domain no trial could sample:
    an empty list, a choice of the wrong type, bounds that are not numbers of the key's type, an empty range, a log
    range from 0 or below, a step that is not positive."""
    for key, domain in space.items():
        section, _, name = key.partition(".")
        value_type = config_lib.checked_type(experiment, section, name, where)
        if isinstance(domain, list):
            if not domain:
                raise UserError(f"{where}: {key}: an empty list of choices")
            for choice in domain:
                try:
                    config_lib.typed_value(choice, value_type)
                except ValueError as error:
                    raise UserError(f"{where}: {key}: choice {choice!r} is not a {value_type.__name__} ({error})"
                                    ) from None
            continue
        if not (isinstance(domain, dict) and {"low", "high"} <= set(domain) <= {"low", "high", "log", "step"}):
            raise UserError(f"{where}: {key}: give a list of choices or {{low = ..., high = ...[, log = true]"
                            "[, step = ...]}")
        if value_type not in (int, float):
            raise UserError(f"{where}: {key} takes a {value_type.__name__}: give a list of choices, not a range")
        for bound in ("low", "high", *(("step",) if "step" in domain else ())):
            try:
                config_lib.typed_value(domain[bound], value_type)
            except ValueError as error:
                raise UserError(f"{where}: {key}: {bound} must be a {value_type.__name__} ({error})") from None
        if domain["low"] > domain["high"]:
            raise UserError(f"{where}: {key}: an empty range (low {domain['low']} > high {domain['high']})")
        if domain.get("log") and domain["low"] <= 0:
            raise UserError(f"{where}: {key}: a log range starts above 0 (low = {domain['low']})")
        if "step" in domain and domain["step"] <= 0:
            raise UserError(f"{where}: {key}: step must be above 0 (step = {domain['step']})")
        if "step" in domain and domain.get("log"):
            raise UserError(f"{where}: {key}: a log range takes no step")


def suggest(trial, space: Space, experiment: config_lib.Experiment) -> list[str]:
    """The trial's `section.key=value` overrides, one per entry of `space`."""
    overrides = []
    for key, domain in space.items():
        section, _, name = key.partition(".")
        value_type = config_lib.checked_type(experiment, section, name, "search space")
        if isinstance(domain, list):
            value = trial.suggest_categorical(key, domain)
        elif value_type is int:
            value = trial.suggest_int(key, domain["low"], domain["high"], step=domain.get("step", 1),
                                      log=domain.get("log", False))
        else:
            value = trial.suggest_float(key, domain["low"], domain["high"], step=domain.get("step"),
                                        log=domain.get("log", False))
        overrides.append(f"{key}={value}")
    return overrides


def best_value(history: dict[str, list[float]], monitor: str) -> float:
    """The best per-epoch value of `monitor` in a run's history (what early stopping kept)."""
    values = [value for value in history.get(monitor, []) if math.isfinite(value)]
    if not values:
        raise RuntimeError(f"no finite {monitor} in the run's history")
    return min(values) if monitor.endswith("loss") else max(values)


class Objective:
    """One trial: the experiment with the trial's overrides, trained in its own workdir, pruned by epoch."""

    def __init__(self, experiment: config_lib.Experiment, space: Space, root: Path, loaded) -> None:
        self.experiment, self.space, self.root, self.loaded = experiment, space, root, loaded

    def __call__(self, trial) -> float:
        import optuna

        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:
            trial.set_user_attr("failure", f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:200]}")
            raise

    def _run(self, trial) -> float:
        from optuna_integration.keras import KerasPruningCallback

        overrides = suggest(trial, self.space, self.experiment)
        trial.set_user_attr("overrides", overrides)
        try:
            experiment = config_lib.validate(config_lib.apply_overrides(self.experiment, overrides))
        except UserError as error:
            raise ValueError(f"impossible combination: {error}") from None
        workdir = self.root / f"trial-{trial.number:04d}"
        trial.set_user_attr("workdir", str(workdir))
        monitor = experiment.train.monitor
        # The data is read once for all trials, unless the space changes how it is read.
        shared = self.loaded if not any(key.startswith("data.") for key in self.space) else None
        trial_run = run_lib.run_experiment(experiment, workdir, workdir / "export", loaded=shared,
                                           extra_callbacks=[KerasPruningCallback(trial, monitor)], evaluate=False)
        return best_value(trial_run.history, monitor)


def open_study(args, experiment: config_lib.Experiment, space: Space):
    """The study named by `--study` in `--storage`: created, or with `--resume` loaded and its interrupted
    trials marked failed."""
    import optuna

    direction = "minimize" if experiment.train.monitor.endswith("loss") else "maximize"
    # A process joining a study samples with its own seed: the same seed everywhere would suggest the same points.
    seed = experiment.train.seed + (os.getpid() if args.join else 0)
    sampler = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}[args.sampler](seed=seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    try:
        exists = args.study in optuna.study.get_all_study_names(args.storage)
    except Exception as error:  # noqa: BLE001 - any storage backend's error: bad URL, unreachable database
        raise UserError(f"--storage {args.storage}: cannot be opened ({str(error).splitlines()[0]})") from None
    if exists and not (args.resume or args.join):
        raise UserError(f"study {args.study!r} already exists in {args.storage}: --resume to carry it on, or "
                        "--study NAME for a new one")
    if (args.resume or args.join) and not exists:
        raise UserError(f"--resume / --join: no study {args.study!r} in {args.storage}")
    study = optuna.create_study(storage=args.storage, study_name=args.study, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)) if args.resume else []
    for trial in running:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        study.set_user_attr(f"failure-{trial.number}", "interrupted (marked by --resume)")
    if not exists:
        study.enqueue_trial(given_values(space, experiment))
    study.set_user_attr("experiment", experiment.name)
    return study


def given_values(space: Space, experiment: config_lib.Experiment) -> dict[str, Any]:
    """The experiment's own values of the space's keys that lie in their domain: a new study's first trial is the
    configuration as given (the rest of its keys sampled), so the leaderboard shows what the search gained."""
    values = {}
    for key, domain in space.items():
        section, _, name = key.partition(".")
        value = getattr(getattr(experiment, section), name)
        inside = value in domain if isinstance(domain, list) else domain["low"] <= value <= domain["high"]
        if inside:
            values[key] = value
    return values



def finished(study) -> list:
    return [trial for trial in study.get_trials(deepcopy=False) if trial.state.is_finished()]


def leaderboard(study) -> str:
    """Trials best first (complete ones by value, then pruned, then failed): value, state, seconds, overrides."""
    import optuna

    sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
    order = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2, "RUNNING": 3, "WAITING": 4}

    def rank(trial):
        # A pruned trial ranks by the last value it reported.
        reported = trial.intermediate_values
        value = trial.value if trial.value is not None else reported[max(reported)] if reported else None
        return order[trial.state.name], sign * value if value is not None else math.inf

    lines = ["| trial | value | state | seconds | parameters |", "|---|---|---|---|---|"]
    for trial in sorted(study.get_trials(deepcopy=False), key=rank):
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete else 0
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        detail = " ".join(trial.user_attrs.get("overrides", []))
        reason = trial.user_attrs.get("failure") or study.user_attrs.get(f"failure-{trial.number}", "")
        if trial.state.name == "FAIL" and reason:
            detail += f" (failed: {reason})"
        lines.append(f"| {trial.number} | {value} | {trial.state.name.lower()} | {seconds:.0f} | {detail} |")
    return "\n".join(lines)


def best_overrides(study) -> list[str]:
    return list(study.best_trial.user_attrs["overrides"])


def overrides_toml(overrides: Sequence[str], experiment: config_lib.Experiment) -> str:
    """The overrides as `[section]` tables, readable by `python -m tfnlp.train --config`."""
    tuned = config_lib.apply_overrides(experiment, overrides)
    tables: dict[str, list[str]] = {}
    for override in overrides:
        key = override.partition("=")[0]
        section, _, name = key.partition(".")
        value = getattr(getattr(tuned, section), name)
        tables.setdefault(section, []).append(f"{name} = {config_lib.toml_value(value)}")
    return "".join(f"[{section}]\n" + "\n".join(lines) + "\n\n" for section, lines in tables.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.search", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="experiment name (python -m tfnlp.train --list)")
    parser.add_argument("--trials", type=int, required=True, help="finished trials the study should hold")
    parser.add_argument("--space", help="TOML search space (default: the task family's)")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite:///<root>/<study>/study.db)")
    parser.add_argument("--study", help="study name (default: the experiment's, -tiny with --tiny)")
    parser.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    parser.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    parser.add_argument("--resume", action="store_true", help="carry an interrupted study on")
    parser.add_argument("--join", action="store_true",
                        help="run trials of a study other processes are running too (shared --storage)")
    parser.add_argument("--train-best", action="store_true", help="then train and export the best configuration")
    add_experiment_options(parser)
    parser.add_argument("--root", default="runs/search", help="folder of the trials' runs (default: runs/search)")
    parser.add_argument("--export_base", default="savedmodels", help="export root for --train-best")
    return parser


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    import optuna

    from tfnlp.paths import writable_folder

    args = build_parser().parse_args(argv)
    if args.trials < 1:
        raise UserError(f"--trials {args.trials}: must be at least 1")
    experiment = experiment_from_args(args.experiment, args)
    space = read_space(args.space, experiment) if args.space else default_space(experiment)
    args.study = args.study or experiment.name + ("-tiny" if args.tiny else "")
    root = writable_folder(Path(args.root) / args.study, "--root")
    root.mkdir(parents=True, exist_ok=True)
    args.storage = args.storage or f"sqlite:///{root / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with storage_limits(args.storage):
        study = open_study(args, experiment, space)
        best_run = optimize(study, args, experiment, space, root)
    if best_run is not None:
        print(f"exported: {best_run.export}")
    sys.stdout.flush()
    return 0


@contextlib.contextmanager
def storage_limits(storage: str):
    """SQLite's whole-file lock, when several processes write at once, as a UserError saying what serves better."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - only the lock is translated
        if "database is locked" not in str(error):
            raise
        raise UserError(f"--storage {storage}: SQLite's lock is the limit here (several processes writing the study "
                        "at once); run it on a database server: --storage postgresql+psycopg://USER:PASSWORD@HOST/DB"
                        ) from None


def optimize(study, args: argparse.Namespace, experiment: config_lib.Experiment, space: Space, root: Path):
    """Run the study's remaining trials, print the leaderboard and the best configuration (and with --train-best,
    train and export it: its Run)."""
    import optuna

    from tfnlp.data import sources
    from tfnlp.paths import writable_folder

    remaining = args.trials - len(finished(study))
    print(f"study {args.study!r} in {args.storage}: {len(finished(study))} finished trials, {max(remaining, 0)} to run")
    if remaining > 0:
        loaded = sources.load(experiment.data.source, experiment.data)  # read once, shared by the trials
        started = time.perf_counter()
        # --trials is the study's total: whichever process finishes the last trial stops the others' loops too.
        # (A trial another process has in flight when the total is reached still finishes.)
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
        total = optuna.study.MaxTrialsCallback(args.trials, states=states)
        before = len(finished(study))
        study.optimize(Objective(experiment, space, root, loaded), n_trials=remaining, timeout=args.timeout,
                       catch=(Exception,), gc_after_trial=True, callbacks=[total])
        print(f"the study holds {len(finished(study))} finished trials ({len(finished(study)) - before} new) after "
              f"{time.perf_counter() - started:.0f} s")
    print("\n" + leaderboard(study))
    if not any(trial.state.name == "COMPLETE" for trial in study.trials):
        raise UserError("no trial completed: see the failures above")
    overrides = best_overrides(study)
    best_file = root / "best.toml"
    best_file.write_text(overrides_toml(overrides, experiment), encoding="utf-8")
    (root / "best.json").write_text(json.dumps({"trial": study.best_trial.number, "value": study.best_value,
                                                "overrides": overrides}, indent=2))
    print(f"\nbest: trial {study.best_trial.number}, {experiment.train.monitor} {study.best_value:.4f}")
    print(f"best as --set: --set {' '.join(overrides)}")
    print(f"best as a config file: {best_file} (python -m tfnlp.train {args.experiment} --config {best_file})")
    if args.train_best:
        best = config_lib.validate(config_lib.apply_overrides(experiment, overrides))
        workdir = writable_folder(root / "best", "--root")
        return run_lib.run_experiment(best, workdir, writable_folder(args.export_base, "--export_base"))
    return None


if __name__ == "__main__":
    raise SystemExit(main())
