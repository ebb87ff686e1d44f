"""Train, evaluate and export one experiment.

    python -m tfnlp.train icd10_seq2seq [--data SRC] [--config run.toml] [--set k=v ...] [--workdir DIR]
                                        [--export_base DIR] [--tiny] [--print-config]
    python -m tfnlp.train --list

The last line printed is `exported: <path>` so that scripts can pick the model up.
Re-running an interrupted command resumes it: without --workdir, the newest unfinished run
of the same experiment and configuration is picked up again.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp import experiments
from tfnlp.errors import UserError, cli_main
from tfnlp.paths import writable_folder

BACKUP_FOLDER = "backup"
CONFIG_FILE = "config.json"
CONFIG_TOML = "config.toml"  # the same configuration, readable by --config
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
WARMUP_REQUESTS = 5  # validation texts written as TF Serving warmup requests


def make_strategy(name: str):
    """A tf.distribute strategy: `auto` picks TPU, then several GPUs, then the default strategy."""
    import tensorflow as tf

    # Before anything that starts TensorFlow's runtime (listing devices does).
    if name == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise UserError("train.strategy=multiworker reads the cluster from the TF_CONFIG environment variable, "
                            'which is not set (e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                            '"task": {"type": "worker", "index": 0}})')
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name in ("auto", "tpu"):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.NotFoundError) as error:
            if name == "tpu":
                raise UserError(f"train.strategy=tpu but no TPU was found ({error})") from None
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name.startswith("one_device:"):
        return tf.distribute.OneDeviceStrategy(name.partition(":")[2])
    if name in ("auto", "default"):
        return tf.distribute.get_strategy()
    raise UserError(f"train.strategy={name!r}: use auto, default, mirrored, multiworker, tpu or one_device:/gpu:0")


def worker_role(strategy) -> tuple[bool, int]:
    """(is this process the chief, its worker index): the chief is the `chief` task, else worker 0; a single
    process is its own chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    first_worker = not has_chief and resolver.task_type == "worker" and resolver.task_id == 0
    return resolver.task_type == "chief" or first_worker, int(resolver.task_id or 0)


def built_for_workers(model, dataset, strategy) -> None:
    """Build `model`'s layers, metrics, loss and optimizer from one local batch, and skip Keras's own build.

    Keras 3 (3.15) builds a model under a strategy by averaging the first distributed batch across the
    replicas (`_maybe_symbolic_build`); raw-string inputs cannot be averaged, so under several workers it
    fails before the first step. The build only needs shapes and dtypes: one local batch gives them.
    """
    import tensorflow as tf

    batch = next(iter(dataset))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    # Keras 3 (3.15) then averages each step's scalar logs across workers over axis 0, which a scalar lacks;
    # a step that returns them as [1] vectors averages to the same scalar.
    for name in ("train_step", "test_step"):
        step = getattr(model, name)
        setattr(model, name, lambda data, step=step: {key: tf.reshape(value, [1]) for key, value in step(data).items()})


def sharded(dataset, multiworker: bool):
    """`dataset` with an explicit auto-shard policy under several workers: in-memory data has no files to shard,
    so each worker keeps its share of the elements (DATA)."""
    if not multiworker:
        return dataset
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@contextlib.contextmanager
def precision_policy(name: str):
    """Keras's global dtype policy set to `name` while models are built, then put back."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; with `deterministic`, make TensorFlow's kernels deterministic
    too, so that the same seeded run on the same machine and software gives the same numbers."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def resolve_workdir(experiment: config_lib.Experiment, workdir: str | None) -> Path:
    """The given workdir, else the newest unfinished run with the same config, else a new one."""
    if workdir:
        return Path(workdir)
    root = Path("runs") / experiment.name
    wanted = config_lib.to_dict(experiment)
    if root.is_dir():
        for run in sorted(root.iterdir(), reverse=True):
            if (run / METRICS_FILE).exists() or not (run / CONFIG_FILE).exists():
                continue
            config = _read_config(run / CONFIG_FILE)
            if config == wanted:
                print(f"resuming the unfinished run in {run}")
                return run
    return root / datetime.now().strftime("%Y%m%d-%H%M%S")


def _read_config(path: Path) -> dict | None:
    """A run folder's config.json, or None (with a warning) when it cannot be read: that run is left alone."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        print(f"warning: skipping {path.parent}: its {path.name} cannot be read ({error})", file=sys.stderr)
        return None


def _callbacks(task_callbacks: list, workdir: Path, train: config_lib.TrainConfig, backup: Path) -> list:
    import keras

    from tfnlp.callbacks import NonFiniteLoss, ResumableBackup

    mode = "min" if train.monitor.endswith("loss") else "max"
    monitors = [keras.callbacks.ModelCheckpoint(str(workdir / "checkpoints" / "best.weights.h5"),
                                                monitor=train.monitor, mode=mode, save_best_only=True,
                                                save_weights_only=True)]
    if train.lr_schedule == "plateau" and train.lr_factor < 1.0:
        monitors.append(keras.callbacks.ReduceLROnPlateau(monitor=train.monitor, mode=mode, factor=train.lr_factor,
                                                          patience=train.lr_patience, min_delta=1e-3, min_lr=1e-5,
                                                          verbose=1))
    # No min_delta: early stopping must name the same best epoch as the checkpoint that is evaluated.
    monitors.append(keras.callbacks.EarlyStopping(monitor=train.monitor, mode=mode, patience=train.patience,
                                                  restore_best_weights=True, verbose=1))
    return [NonFiniteLoss(), *task_callbacks, *monitors,  # task callbacks first: they add what the monitors read
            keras.callbacks.TensorBoard(str(workdir / "tensorboard"), histogram_freq=1, write_graph=True),
            keras.callbacks.CSVLogger(str(workdir / HISTORY_FILE), append=True),
            ResumableBackup(backup, monitors)]  # last: it saves what the others decided


def parameter_counts(trained, exported) -> dict[str, int]:
    """Weights the run trained (`trainable`) out of the trained model's `total`, and the exported model's weights
    (`exported`) and the bytes they take (`weight_bytes`: what the export's `model/` holds). With LoRA, `trainable`
    is the adapters and head, and `exported` the merged model without adapters."""
    import numpy as np

    def count(weights) -> int:
        return int(sum(np.prod(weight.shape) for weight in weights))

    return {"trainable": count(trained.trainable_weights), "total": count(trained.weights),
            "exported": count(exported.weights),
            "weight_bytes": int(sum(np.prod(weight.shape) * np.dtype(weight.dtype).itemsize
                                    for weight in exported.weights))}


def read_history(path: Path) -> dict[str, list[float]]:
    """The per-epoch logs that CSVLogger wrote, as {name: values}."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {name: [float(row[name]) for row in rows] for name in (rows[0] if rows else {}) if name != "epoch"}


def write_run_summary(workdir: Path, experiment: config_lib.Experiment, results: dict[str, dict[str, float]],
                      serving_function) -> None:
    """Learning curves as a PNG; for TensorBoard, the serving graph and the config with its test metrics.

    The graph is the exported one (preprocessing, model and decoding loop): Keras writes no
    graph for a subclassed model.
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hparams_api

    from tfnlp.plots import learning_curves

    if (workdir / HISTORY_FILE).exists():
        learning_curves(read_history(workdir / HISTORY_FILE), workdir / "learning_curves.png")
    with tf.summary.create_file_writer(str(workdir / "tensorboard" / "graph")).as_default():
        tf.summary.graph(serving_function.get_concrete_function().graph)
    config = config_lib.to_dict(experiment)
    flat = {f"{section}.{key}": value for section in config_lib.SECTIONS for key, value in config[section].items()}
    with tf.summary.create_file_writer(str(workdir / "tensorboard" / "hparams")).as_default():
        hparams_api.hparams({"experiment": experiment.name, **flat}, trial_id=workdir.name)
        for system, scores in results.items():
            for metric, value in scores.items():
                tf.summary.scalar(f"test/{system}/{metric}", value, step=0)


def format_table(results: dict[str, dict[str, float]], row_header: str = "system", digits: int = 3) -> str:
    """A markdown table: one row a system (or slice), one column a metric (the first row's metrics); floats with
    `digits` decimals, counts as they are."""
    names = list(next(iter(results.values()))) if results else []
    lines = [f"| {row_header} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for system, scores in results.items():
        cells = (f"{scores[name]:.{digits}f}" if isinstance(scores[name], float) else str(scores[name])
                 for name in names)
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(experiment: config_lib.Experiment, workdir: Path, export_base: Path, loaded=None, strategy=None,
        extra_callbacks: Sequence = (), evaluate: bool = True) -> Path | None:
    """Train, evaluate on the test split beside the baselines, export; returns the version folder.

    Args:
        experiment: the configuration.
        workdir: the run folder; export_base: the export root.
        loaded: the experiment's data (`sources.load`) when the caller has read it already.
        strategy: a tf.distribute strategy made at program start (`multiworker` must be); None makes
            `train.strategy`'s.
        extra_callbacks: more Keras callbacks, after the task's (they see its validation scores in the logs).
        evaluate: evaluate on the test split and export after training; False stops after training (a search
            trial: its value is in the run's history, the test split is never read).

    Returns:
        The exported version, or None without `evaluate` or on a worker that is not the chief (it trains, then
        deletes its scratch folder: only the chief writes checkpoints, logs, reports and the export).
    """
    from tfnlp import export
    from tfnlp.data import sources
    from tfnlp.tasks import task_class

    seed_everything(experiment.train.seed, experiment.train.deterministic)
    strategy = strategy or make_strategy(experiment.train.strategy)
    chief, worker = worker_role(strategy)
    multiworker = experiment.train.strategy == "multiworker"
    # Each worker keeps its own backup, so a restarted worker resumes; the rest of a non-chief's output is scratch.
    backup = workdir / BACKUP_FOLDER / f"worker-{worker}" if multiworker else workdir / BACKUP_FOLDER
    scratch = None if chief else Path(tempfile.mkdtemp(prefix=f"tfnlp-worker{worker}-"))
    workdir = workdir if chief else scratch
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / CONFIG_FILE).write_text(json.dumps(config_lib.to_dict(experiment), indent=2))
    (workdir / CONFIG_TOML).write_text(config_lib.to_toml(experiment), encoding="utf-8")
    print(f"workdir: {workdir}\nwatch it: tensorboard --logdir {workdir / 'tensorboard'}")
    loaded = loaded or sources.load(experiment.data.source, experiment.data)
    task = task_class(experiment.task).from_data(experiment, loaded)
    print(f"data: {experiment.data.source} {task.splits.sizes()}")

    train_data, validation_data = (sharded(data, multiworker) for data in task.datasets())
    steps = int(train_data.cardinality())
    with strategy.scope(), precision_policy(experiment.train.precision):
        model = task.build_model(steps_per_epoch=steps)
    fit_steps = {}
    if multiworker:
        # Several workers must take the same number of steps: the data repeats and each epoch is counted in steps.
        fit_steps = {"steps_per_epoch": steps, "validation_steps": int(validation_data.cardinality())}
        built_for_workers(model, train_data, strategy)
        train_data = train_data.repeat()
    started = time.perf_counter()
    callbacks = _callbacks([*task.callbacks(task.serving(model), str(workdir / "tensorboard")), *extra_callbacks],
                           workdir, experiment.train, backup)
    try:
        # A progress bar on a terminal, a line per epoch in logs.
        model = task.fit(model, train_data, validation_data, experiment.train.epochs, callbacks,
                         verbose=1 if sys.stdout.isatty() else 2, **fit_steps)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    train_seconds = time.perf_counter() - started
    if callbacks[0].found:
        raise UserError(f"{callbacks[0].found}; nothing was exported. Lower train.learning_rate (now "
                        f"{experiment.train.learning_rate:g}) or check the data; the run's logs are in {workdir}")
    if not (chief and evaluate):
        shutil.rmtree(backup, ignore_errors=True)  # it finished: nothing to resume
        return None
    best = workdir / "checkpoints" / "best.weights.h5"
    if best.exists():
        model.load_weights(str(best))
    with precision_policy(experiment.train.precision):
        inference = task.inference_model(model)  # what is exported carries no optimizer state
    serving = task.serving(inference)

    results, examples, predicted = task.evaluate(serving, task.splits.test, with_baselines=experiment.train.baselines)
    parameters = parameter_counts(model, inference)
    print(f"\ntest split ({len(task.splits.test)} texts), trained {train_seconds:.0f} s, "
          f"{parameters['trainable']:,} of {parameters['total']:,} parameters trained:\n{format_table(results)}")
    for example in examples:
        print(f"  {example['true']:>6} -> {example['predicted']:<6} {example['text']}")
    reports = task.write_reports(predicted, workdir, str(workdir / "tensorboard" / "report"))

    write_run_summary(workdir, experiment, results, serving.serve)
    version = export.export_savedmodel(
        serving, export_base, experiment.name, serving.signatures(scrub_patterns=experiment.data.deidentify),
        {"experiment": config_lib.to_dict(experiment), "test": results, "workdir": str(workdir)},
        warmup_texts=[record.text for record in task.splits.validation[:WARMUP_REQUESTS]])
    (workdir / METRICS_FILE).write_text(json.dumps({
        "test": results, "examples": examples, "sizes": task.splits.sizes(),
        "train_seconds": round(train_seconds, 1), "parameters": parameters,
        "exported": str(version), **reports}, indent=2,
        ensure_ascii=False))
    shutil.rmtree(workdir / BACKUP_FOLDER, ignore_errors=True)  # the run is complete: nothing to resume
    return version


def add_experiment_options(parser: argparse.ArgumentParser) -> None:
    """The options that configure an experiment, shared by `train` and `search`: --data, --config, --set, --tiny."""
    parser.add_argument("--data", help="data source replacing the experiment's (cim10, icd10cm, csv:PATH, ...)")
    parser.add_argument("--config", help="TOML file with [data], [model], [train] tables (applied before --set)")
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config values, e.g. train.epochs=3 model.units=64")
    parser.add_argument("--tiny", action="store_true", help="the experiment's tiny variant (seconds; for tests)")


def experiment_from_options(name: str, args: argparse.Namespace) -> config_lib.Experiment:
    """The registered experiment `name` with `add_experiment_options`' options applied (--config, then --data,
    then --set), validated."""
    experiment = experiments.get(name, tiny=args.tiny)
    if args.config:
        experiment = config_lib.apply_toml(experiment, args.config)
    if args.data:
        experiment = dataclasses.replace(experiment, data=dataclasses.replace(experiment.data, source=args.data))
    return config_lib.validate(config_lib.apply_overrides(experiment, args.overrides))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.train", description="Train, evaluate and export.")
    parser.add_argument("experiment", nargs="?", help="experiment name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    add_experiment_options(parser)
    parser.add_argument("--print-config", action="store_true", help="print the resolved experiment as TOML and exit")
    parser.add_argument("--workdir", help="run folder (default: runs/<experiment>/<timestamp>)")
    parser.add_argument("--export_base", default="savedmodels", help="export root (default: savedmodels)")
    return parser


def configure(argv: Sequence[str] | None = None) -> tuple[config_lib.Experiment | None, argparse.Namespace]:
    """Parse the command line into an experiment (None with --list)."""
    args = build_parser().parse_args(argv)
    if args.list:
        return None, args
    if not args.experiment:
        raise UserError("name an experiment; `python -m tfnlp.train --list` shows them")
    return experiment_from_options(args.experiment, args), args


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    experiment, args = configure(argv)
    if experiment is None:
        for name, description in experiments.describe():
            print(f"{name:28} {description}")
        return 0
    if args.print_config:
        print(config_lib.to_toml(experiment), end="")
        return 0
    # Collective ops are configured before anything else runs on TensorFlow.
    strategy = make_strategy("multiworker") if experiment.train.strategy == "multiworker" else None
    # Fail now, not after training, when a folder cannot be written.
    export_base = writable_folder(args.export_base, "--export_base")
    workdir = writable_folder(resolve_workdir(experiment, args.workdir), "--workdir")
    version = run(experiment, workdir, export_base, strategy=strategy)
    print(f"exported: {version}" if version else "trained (a worker: the chief evaluates and exports)")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
