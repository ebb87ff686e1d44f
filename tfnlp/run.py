"""The library's training run: `train(...)` fits, evaluates and exports one experiment and returns a `Run`.

    import tfnlp
    run = tfnlp.train("icd10_chapter_lstm", tiny=True, workdir="w", export_base="e")
    run.test["model"]["accuracy"], run.export

A run folder (`workdir`) holds the configuration (`config.json`, `config.toml`), the per-epoch history
(`history.csv`), the best checkpoint, TensorBoard logs, the task's fitted state (`state/`: vocabularies,
label tables, code set, TF-IDF tables, the validation records and fingerprints of each split) and
`metrics.json` (with the environment it ran in: packages, CPU, kernel settings); `Run.load(workdir)` reads
them back without the training data. Re-running an interrupted run resumes it: without a workdir, the newest
unfinished run of the same experiment and configuration is picked up again, with a warning when the
environment differs from the one it began in.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp import environment as environment_lib
from tfnlp import progress
from tfnlp.calibration import answered_phrase, review_basis
from tfnlp.errors import UserError
from tfnlp.paths import writable_folder
from tfnlp.tables import format_table

BACKUP_FOLDER = "backup"
CONFIG_FILE = "config.json"
CONFIG_TOML = "config.toml"  # the same configuration, readable by --config
ENVIRONMENT_FILE = "environment.json"  # the environment the run began in (tfnlp.environment.describe)
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
STATE_FOLDER = "state"  # the task's fitted state: what reloading the run needs besides the weights
WARMUP_REQUESTS = 5  # validation texts written as TF Serving warmup requests


@dataclass
class Run:
    """A finished (or, without `export`, a search trial's) training run.

    Attributes:
        experiment: the configuration it ran.
        workdir: its run folder.
        export: the exported version folder; None for a run that stopped after training (a search trial, a
            worker that is not the chief).
        test: the test split's scores by system (`model`, `model_beam`, baselines), as printed.
        history: the per-epoch logs (`loss`, `val_...`) by name.
        train_seconds: seconds spent fitting.
        parameters: `trainable`, `total`, `exported` weights and the exported `weight_bytes`.
        sizes: records in each split.
        examples: a few test examples with their truth and prediction.
        reports: what the task's reports added (files, counts).
        environment: what it ran on (`tfnlp.environment.describe`); {} for a run recorded before it was kept.
    """

    experiment: config_lib.Experiment
    workdir: Path
    export: Path | None = None
    test: dict[str, dict[str, float]] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    parameters: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)
    reports: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)

    @classmethod
    def load(cls, workdir: str | Path) -> Run:
        """The run in `workdir`, read from its files (no data, no TensorFlow).

        Raises:
            UserError: `workdir` is not a run folder, or its files cannot be read.
        """
        workdir = Path(workdir)
        config_path = workdir / CONFIG_FILE
        if not config_path.is_file():
            raise UserError(f"{workdir}: not a run folder (no {CONFIG_FILE}); give the --workdir of a training run")
        experiment = config_lib.from_dict(_read_json(config_path))
        history = read_history(workdir / HISTORY_FILE) if (workdir / HISTORY_FILE).exists() else {}
        if not (workdir / METRICS_FILE).exists():
            return cls(experiment, workdir, history=history)
        metrics = _read_json(workdir / METRICS_FILE)
        known = {"test", "examples", "sizes", "train_seconds", "parameters", "exported", "environment"}
        return cls(experiment, workdir, Path(metrics["exported"]) if metrics.get("exported") else None,
                   metrics.get("test", {}), history, metrics.get("train_seconds", 0.0), metrics.get("parameters", {}),
                   metrics.get("sizes", {}), metrics.get("examples", []),
                   {key: value for key, value in metrics.items() if key not in known}, metrics.get("environment", {}))

    def table(self) -> str:
        """The test split's scores as a markdown table."""
        return format_table(self.test)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: cannot be read ({error})") from None


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


@contextlib.contextmanager
def out_of_space(what: str, folder: Path):
    """A full disk while writing `what` under `folder` (TensorFlow's, h5py's or the OS's own error) as a UserError:
    `error: ... no space left on device ...`, exit 2. Writers stage their files, so nothing half-written is left."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - only a full disk is translated; anything else goes on up as it was
        if getattr(error, "errno", None) != errno.ENOSPC and "No space left on device" not in str(error):
            raise
        raise UserError(f"{folder}: no space left on device while writing {what}; free some space and run again "
                        "(a training run resumes after its last complete epoch)") from None


def wait_for_every_worker(strategy) -> None:
    """Return once every worker has reached this point (a collective sum): a worker must not exit while the chief
    still calibrates, evaluates and exports, or the coordination service reports the task lost and fails the chief."""
    import tensorflow as tf

    @tf.function
    def everyone():
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)

    everyone()


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


def record_environment(run_folder: Path) -> dict:
    """This process's environment, written to the run folder when the run begins.

    A resumed run keeps the file it began with and is warned when this process's differs: its
    epochs then come from two environments, and its figures may not repeat in either.
    """
    now = environment_lib.describe()
    path = run_folder / ENVIRONMENT_FILE
    try:
        began = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # a new run, or a file cut short: this process's environment is the record
        began = None
    if not isinstance(began, dict):
        path.write_text(json.dumps(now, indent=2))
    elif changes := environment_lib.differences(began, now):
        print(f"warning: this run began in another environment ({'; '.join(changes)}): its figures may not "
              "repeat in either", file=sys.stderr)
    return now


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


def train(experiment: str | config_lib.Experiment, *, data: str | None = None, overrides: Sequence[str] = (),
          config: str | Path | None = None, tiny: bool = False, workdir: str | Path | None = None,
          export_base: str | Path = "savedmodels") -> Run:
    """Train, evaluate on the test split beside the baselines, and export one experiment.

    Args:
        experiment: a registered experiment's name (`icd10_seq2seq`, `ner_bilstm`, ...) or an `Experiment`.
        data: a data source replacing the experiment's (`csv:PATH`, `conll:DIR`, `pubtator:FILE`, ...).
        overrides: `section.key=value` settings, e.g. `["train.epochs=3"]`.
        config: a TOML file of `[data]`, `[model]`, `[train]` settings (applied before `overrides`).
        tiny: the experiment's tiny variant (seconds).
        workdir: the run folder (default: the newest unfinished run of the same configuration under
            `runs/<experiment>/`, else a new timestamped one).
        export_base: the export root; the model goes to `<export_base>/<experiment>/<version>/`.

    Returns:
        The finished `Run`: its export, test scores, history and timings.

    Raises:
        UserError: a bad name, setting, path or data, before anything is trained.
    """
    from tfnlp import experiments

    experiment = experiments.configure(experiment, data=data, config=config, overrides=overrides, tiny=tiny)
    # Collective ops are configured before anything else runs on TensorFlow.
    strategy = make_strategy("multiworker") if experiment.train.strategy == "multiworker" else None
    # Fail now, not after training, when a folder cannot be written.
    export_base = writable_folder(export_base, "export_base")
    workdir = writable_folder(resolve_workdir(experiment, workdir), "workdir")
    return run_experiment(experiment, workdir, export_base, strategy=strategy)


def calibration_summary(calibration: dict) -> str:
    """A line per signature: the calibration error before and after, and the answers given without review."""
    return "\n".join(
        f"calibration ({name}, {report['method']}, validation): ECE {report['ece_before']:.3f} -> "
        f"{report['ece_after']:.3f}; {answered_phrase(report)}{review_basis(report)}"
        for name, report in calibration.items())


def served_evaluation(serving, experiment: config_lib.Experiment, task) -> dict | None:
    """The serving graph scored as its export will be (`tfnlp.evaluation`), before it is exported; None when the test
    records cannot be scored that way (tagged sentences without character offsets)."""
    from tfnlp.evaluation import evaluate_predictor
    from tfnlp.predictor import Predictor

    try:
        return evaluate_predictor(Predictor(serving.serve), experiment, task.splits)
    except UserError as error:
        print(f"note: the export is not scored on raw texts ({error})")
        return None


def run_experiment(experiment: config_lib.Experiment, workdir: Path, export_base: Path, loaded=None, strategy=None,
                   extra_callbacks: Sequence = (), evaluate: bool = True) -> Run:
    """Train, evaluate on the test split beside the baselines, export; the `Run`.

    Args:
        experiment: the configuration, validated.
        workdir: the run folder; export_base: the export root.
        loaded: the experiment's data (`sources.load`) when the caller has read it already.
        strategy: a tf.distribute strategy made at program start (`multiworker` must be); None makes
            `train.strategy`'s.
        extra_callbacks: more Keras callbacks, after the task's (they see its validation scores in the logs).
        evaluate: evaluate on the test split and export after training; False stops after training (a search
            trial: its value is in the run's history, the test split is never read).

    Returns:
        The run; its `export` is None without `evaluate` or on a worker that is not the chief (it trains, then
        deletes its scratch folder: only the chief writes checkpoints, logs, reports and the export).
    """
    from tfnlp import export, model_card
    from tfnlp.data import sources
    from tfnlp.tasks import task_class

    seed_everything(experiment.train.seed, experiment.train.deterministic)
    strategy = strategy or make_strategy(experiment.train.strategy)
    chief, worker = worker_role(strategy)
    multiworker = experiment.train.strategy == "multiworker"
    # Each worker keeps its own backup, so a restarted worker resumes; the rest of a non-chief's output is scratch.
    backup = workdir / BACKUP_FOLDER / f"worker-{worker}" if multiworker else workdir / BACKUP_FOLDER
    scratch = None if chief else Path(tempfile.mkdtemp(prefix=f"tfnlp-worker{worker}-"))
    run_folder = workdir if chief else scratch
    if loaded is None:
        with progress.step(f"reading {experiment.data.source}"):
            loaded = sources.load(experiment.data.source, experiment.data)
    with progress.step("fitting the task's vocabularies and tables on the training split"):
        task = task_class(experiment.task).from_data(experiment, loaded)
    # The data read and the task fitted: only now does the run folder appear (a data error leaves none).
    run_folder.mkdir(parents=True, exist_ok=True)
    (run_folder / CONFIG_FILE).write_text(json.dumps(config_lib.to_dict(experiment), indent=2))
    (run_folder / CONFIG_TOML).write_text(config_lib.to_toml(experiment), encoding="utf-8")
    environment = record_environment(run_folder)
    print(f"workdir: {run_folder}\nwatch it: tensorboard --logdir {run_folder / 'tensorboard'}")
    print(f"data: {experiment.data.source} {task.splits.sizes()}")

    with progress.step("building the datasets and the model"):
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
    callbacks = _callbacks([*task.callbacks(task.serving(model), str(run_folder / "tensorboard")),
                            *extra_callbacks], run_folder, experiment.train, backup)
    try:
        # A progress bar on a terminal, a line per epoch in logs.
        with out_of_space("checkpoints, backups and logs", run_folder):
            model = task.fit(model, train_data, validation_data, experiment.train.epochs, callbacks,
                             verbose=1 if sys.stdout.isatty() else 2, **fit_steps)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    train_seconds = time.perf_counter() - started
    if callbacks[0].found:
        raise UserError(f"{callbacks[0].found}; nothing was exported. Lower train.learning_rate (now "
                        f"{experiment.train.learning_rate:g}) or check the data; the run's logs are in {workdir}")
    history = read_history(workdir / HISTORY_FILE) if chief and (workdir / HISTORY_FILE).exists() else {}
    if not (chief and evaluate):
        shutil.rmtree(backup, ignore_errors=True)  # it finished: nothing to resume
        if multiworker:
            wait_for_every_worker(strategy)
        return Run(experiment, workdir, history=history, train_seconds=train_seconds)
    task.save_state(workdir / STATE_FOLDER)
    best = workdir / "checkpoints" / "best.weights.h5"
    if best.exists():
        model.load_weights(str(best))
    with precision_policy(experiment.train.precision):
        inference = task.inference_model(model)  # what is exported carries no optimizer state
    serving = task.serving(inference)
    with progress.step(f"calibrating confidences on the validation split ({len(task.splits.validation)} records)"):
        calibration = task.calibrate(serving)
    with progress.step(f"evaluating on the test split ({len(task.splits.test)} records)"
                       + (" beside the baselines" if experiment.train.baselines else "")):
        results, examples, predicted = task.evaluate(serving, task.splits.test,
                                                     with_baselines=experiment.train.baselines)
    parameters = parameter_counts(model, inference)
    print(f"\ntest split ({len(task.splits.test)} texts), trained {train_seconds:.0f} s, "
          f"{parameters['trainable']:,} of {parameters['total']:,} parameters trained:\n{format_table(results)}")
    for example in examples:
        print(f"  {example['true']:>6} -> {example['predicted']:<6} {example['text']}")
    reports = task.write_reports(predicted, workdir, str(workdir / "tensorboard" / "report"))

    write_run_summary(workdir, experiment, results, serving.serve)
    if calibration:
        reports["calibration"] = calibration
        print(calibration_summary(calibration))
    reports.update(task.validation_choices())
    run = Run(experiment, workdir, None, results, history, round(train_seconds, 1), parameters,
              task.splits.sizes(), examples, reports, environment)
    with progress.step("scoring the serving graph on raw test texts, for the model card"):
        served = served_evaluation(serving, experiment, task)
    card = model_card.build(experiment, run, served, task.limitations(experiment, results))
    with progress.step(f"exporting to {export_base / experiment.name}"), out_of_space("the export", export_base):
        version = export.export_savedmodel(
            serving, export_base, experiment.name, serving.signatures(scrub_patterns=experiment.data.deidentify),
            {model_card.CARD_JSON: json.dumps(card, indent=2, ensure_ascii=False, default=str) + "\n",
             model_card.CARD_MARKDOWN: model_card.markdown(card, str(export_base / experiment.name))},
            warmup_texts=[record.text for record in task.splits.validation[:WARMUP_REQUESTS]])
    run.export = version
    (workdir / METRICS_FILE).write_text(json.dumps({
        "test": results, "examples": examples, "sizes": run.sizes, "train_seconds": run.train_seconds,
        "parameters": parameters, "exported": str(version), "environment": environment, **reports}, indent=2,
        ensure_ascii=False))
    shutil.rmtree(workdir / BACKUP_FOLDER, ignore_errors=True)  # the run is complete: nothing to resume
    if multiworker:
        wait_for_every_worker(strategy)
    return run
