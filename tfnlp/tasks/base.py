"""The contract every task implements, and the steps written once for all of them.

A task turns one experiment's split records into a trained, exportable model. What differs from
task to task is small and abstract here:

- `record_type`: `Record` (text, target) or `TaggedSentence`;
- `make_model`: the Keras model, uncompiled (the factory call);
- `loss`: the loss and metrics `compile` takes;
- `dataset`: records -> a batched tf.data.Dataset;
- `serving`: the exportable `ServingModule` around a model;
- `truth`, `predict`, `score`: what is right, what the served graph says, and how they compare.

Everything else is written once here: the datasets, compiling with the optimizer, fitting, the
per-epoch validation scores that early stopping, checkpoints, TensorBoard and the search read,
evaluation with baselines and examples, and the lean inference copy of a trained model that is
exported (no optimizer state).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from tfnlp.config import Experiment, TrainConfig
from tfnlp.data.records import Record, Splits, TaggedSentence
from tfnlp.errors import UserError

STATE_FILE = "state.json"
VALIDATION_FILE = "validation.jsonl"
TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")
TAGGING_SOURCES = "conll:PATH, pubtator:PATH or wnut16"
# The default search space of fine-tuned transformers: smaller learning rates and batches.
TRANSFORMER_SPACE = {"train.learning_rate": {"low": 1e-5, "high": 1e-4, "log": True}, "train.batch_size": [8, 16, 32],
                     "model.dropout": {"low": 0.0, "high": 0.3}, "train.weight_decay": [0.0, 0.01]}
EXAMPLES_SHOWN = 8  # test examples printed after a run and kept in metrics.json


def record_row(record: Record | TaggedSentence) -> dict:
    """A record as JSON-ready data (`record_from_row` reads it back)."""
    if isinstance(record, Record):
        return record._asdict()
    return dataclasses.asdict(record)


def record_from_row(row: dict) -> Record | TaggedSentence:
    """The record `record_row` wrote."""
    if "tokens" not in row:
        return Record(row["text"], row["target"])
    return TaggedSentence(tuple(row["tokens"]), tuple(row["tags"]), row.get("text", ""),
                          tuple(tuple(pair) for pair in row.get("offsets", ())))


def fingerprints(splits: Splits) -> dict[str, dict]:
    """Each split's record count and a sha256 of its records, in order: what tells whether data read again is the
    data a run was trained on."""
    prints = {}
    for part in ("train", "validation", "test"):
        digest = hashlib.sha256()
        for record in getattr(splits, part):
            digest.update(json.dumps(record_row(record), ensure_ascii=False, sort_keys=True).encode("utf-8"))
        prints[part] = {"records": len(getattr(splits, part)), "sha256": digest.hexdigest()}
    return prints


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    """Consecutive slices of `items` of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def predict_strings(function: Callable, texts: Sequence[str], output: str, batch_size: int = 512) -> list[str]:
    """One string output of a serving function (a `ServingModule` signature or a loaded SavedModel's) for each
    text, called in batches."""
    values: list[str] = []
    for chunk in batches(list(texts), batch_size):
        values += [value.decode("utf-8") for value in function(text=tf.constant(chunk, dtype=tf.string))[output]
                   .numpy()]
    return values


@keras.saving.register_keras_serializable(package="tfnlp")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warm-up from 0 to `peak` over `warmup_steps`, then `constant`, `linear` or `cosine` decay to
    `final_fraction` x `peak` at `total_steps`."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, shape: str = "cosine",
                 final_fraction: float = 0.0) -> None:
        self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps
        self.shape, self.final_fraction = shape, final_fraction

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.cast(self.warmup_steps, tf.float32)
        progress = tf.clip_by_value((step - warmup) / tf.maximum(float(self.total_steps) - warmup, 1.0), 0.0, 1.0)
        if self.shape == "constant":
            decay = tf.ones_like(progress)
        elif self.shape == "linear":
            decay = 1.0 - progress
        else:
            decay = 0.5 * (1.0 + tf.cos(np.pi * progress))
        decayed = self.peak * (self.final_fraction + (1.0 - self.final_fraction) * decay)
        warming = self.peak * (step + 1.0) / tf.maximum(warmup, 1.0)
        return tf.where(step < warmup, warming, decayed)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "shape": self.shape, "final_fraction": self.final_fraction}


def warmup_steps(train: TrainConfig, total_steps: int) -> int:
    """`train.warmup_steps`, or `train.warmup_fraction` of the run's optimizer steps."""
    return train.warmup_steps or int(round(train.warmup_fraction * total_steps))


def learning_rate(train: TrainConfig, steps_per_epoch: int):
    """The optimizer's learning rate: `cosine`, `linear` or `constant` after an optional linear warm-up, over
    the run's optimizer steps (decaying to `train.lr_final_fraction` of the start), or a constant that
    ReduceLROnPlateau decays (`plateau`). `train` is validated (`config.validate`)."""
    # With gradient accumulation the optimizer updates (and counts a step) once every grad_accum_steps batches.
    total = max(1, train.epochs * steps_per_epoch // train.grad_accum_steps)
    warmup = warmup_steps(train, total)
    if train.lr_schedule == "plateau":
        return train.learning_rate
    if train.lr_schedule == "cosine" and not warmup:
        return keras.optimizers.schedules.CosineDecay(train.learning_rate, total, alpha=train.lr_final_fraction)
    return WarmupDecay(train.learning_rate, total, warmup, train.lr_schedule, train.lr_final_fraction)


def make_optimizer(train: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam, or AdamW with `train.weight_decay`, on the configured schedule; Keras accumulates the gradients of
    `train.grad_accum_steps` batches before each update (the optimizers' own `gradient_accumulation_steps`). With
    `train.ema_momentum`, the optimizer keeps an exponential moving average of the weights and writes it into the
    model at each epoch's last step (Keras's `use_ema`), so that validation, checkpoints and the export read the
    averaged weights."""
    options = {"gradient_accumulation_steps": train.grad_accum_steps} if train.grad_accum_steps > 1 else {}
    if train.ema_momentum:
        options.update(use_ema=True, ema_momentum=train.ema_momentum, ema_overwrite_frequency=steps_per_epoch)
    rate = learning_rate(train, steps_per_epoch)
    if train.weight_decay:
        return keras.optimizers.AdamW(rate, weight_decay=train.weight_decay, **options)
    return keras.optimizers.Adam(rate, **options)


def shuffled(dataset: tf.data.Dataset, count: int, train: TrainConfig, training: bool,
             epoch: tf.Variable | None = None) -> tf.data.Dataset:
    """`dataset` cached, and reshuffled every epoch when `training` (see `epoch_shuffle`)."""
    dataset = dataset.cache()
    return epoch_shuffle(dataset, count, min(train.shuffle_buffer, count), train.seed, epoch) if training else dataset


def epoch_shuffle(dataset: tf.data.Dataset, count: int, buffer: int, seed: int,
                  epoch: tf.Variable | None) -> tf.data.Dataset:
    """`dataset` (of `count` elements) in a new order each epoch, the order a function of (`seed`, epoch).

    The epoch is read from `epoch` (set by `EpochCounter` as each epoch begins) when an epoch's
    iterator starts, so a run resumed after epoch k shuffles epoch k+1 as the uninterrupted run
    did; tf.data's own reshuffling counts iterators, and starts again at 0 on resume. Without
    `epoch`, tf.data's reshuffling.
    """
    buffer = max(buffer, 1)
    if epoch is None:
        return dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    base_seed = tf.constant(seed, tf.int64) * 1_000_003

    def one_epoch(_):
        if tf.compat.v1.get_default_graph().seed == 0:
            # TensorFlow checks a global seed of 0 and an op seed for (0, 0) as Python values, which fails on a tensor
            # seed (`train.seed=0` crashed here): inside this function only, seed 0 reads as no global seed.
            tf.random.set_seed(None)
        return dataset.shuffle(buffer, seed=base_seed + epoch.read_value(), reshuffle_each_iteration=False)

    return tf.data.Dataset.range(1).flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(count))


class EpochCounter(keras.callbacks.Callback):
    """Sets the epoch variable the training datasets' shuffles read (`epoch_shuffle`) as each epoch begins."""

    def __init__(self, epoch: tf.Variable) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.assign(epoch)


def bucket_by_length(dataset: tf.data.Dataset, lengths: np.ndarray, boundaries: Sequence[int], batch_size: int,
                     element_length: Callable, padding_values: Any = None) -> tf.data.Dataset:
    """Batches of elements of similar length (less padding), with the batch count asserted.

    Bucket sizes do not depend on the order of the elements, so the number of batches is known
    in advance (a learning-rate schedule over the run needs it). An element of length L goes to
    bucket i where boundaries[i-1] <= L < boundaries[i], as `bucket_by_sequence_length` does.
    """
    buckets = np.searchsorted(np.asarray(boundaries), np.asarray(lengths), side="right")
    batch_count = int(sum(-(-count // batch_size) for count in np.bincount(buckets, minlength=len(boundaries) + 1)))
    dataset = dataset.bucket_by_sequence_length(element_length, list(boundaries),
                                                [batch_size] * (len(boundaries) + 1), padding_values=padding_values)
    return dataset.apply(tf.data.experimental.assert_cardinality(batch_count))


def _reads_strings(model: keras.Model) -> bool:
    """Whether a model takes string inputs (a functional model's declared inputs; a subclassed one's build)."""
    inputs = getattr(model, "inputs", None) or []
    return any(getattr(tensor, "dtype", None) in ("string", tf.string) for tensor in inputs)


class ServingModule(tf.Module):
    """What is exported: `serve` takes raw strings (`text`: tf.string [None]) and returns named outputs, with all
    preprocessing in the graph. Subclasses decorate `serve` (and any extra signature) with
    `tf.function(input_signature=[TEXT_SPEC])`."""

    def serve(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def extra_signatures(self) -> dict[str, Callable]:
        """Signatures besides `serving_default` (name -> tf.function)."""
        return {}

    def signatures(self, scrub_patterns: bool = False) -> dict[str, Callable]:
        """Every signature to write into the SavedModel. Those taking texts first refuse a text that is not valid
        UTF-8 or holds a NUL character (`checked_texts`); with `scrub_patterns` (`data.deidentify`), they then
        replace e-mails, URLs, IPs and phone numbers in them (`tfnlp.data.deidentify.scrub_graph`)."""
        signatures = {"serving_default": self.serve, **self.extra_signatures()}
        return {name: _guarded(function, scrub_patterns) if tuple(function.input_signature or ()) == (TEXT_SPEC,)
                else function for name, function in signatures.items()}


def checked_texts(text: tf.Tensor) -> tf.Tensor:
    """`text` [B], after an assertion (INVALID_ARGUMENT in TensorFlow and in TF Serving alike) that every text is valid
    UTF-8 without a NUL character, naming the first row that is not: a text model cannot read such a text, and a
    text silently cut at the NUL or stripped of its bad bytes answers another question."""
    decoded = tf.strings.unicode_decode(text, "UTF-8", errors="ignore")
    valid = tf.equal(tf.strings.length(tf.strings.unicode_encode(decoded, "UTF-8")), tf.strings.length(text))
    no_nul = tf.logical_not(tf.reduce_any(tf.equal(decoded, 0), axis=1))
    bad = tf.where(tf.logical_not(valid & no_nul))[:, 0]
    first = tf.cond(tf.size(bad) > 0, lambda: bad[0], lambda: tf.constant(-1, tf.int64))
    message = tf.strings.format("text row {} is not valid UTF-8 or holds a NUL character: send UTF-8 text without "
                                "NUL", first)
    check = tf.debugging.Assert(tf.equal(first, -1), [message])
    with tf.control_dependencies([check]):
        return tf.identity(text)


def _guarded(function: Callable, scrub_patterns: bool) -> Callable:
    """`function` (texts -> outputs) behind `checked_texts` (and the de-identification patterns), as one signature."""
    from tfnlp.data.deidentify import scrub_graph

    @tf.function(input_signature=[TEXT_SPEC])
    def guarded(text):
        text = checked_texts(text)
        return function(scrub_graph(text) if scrub_patterns else text)

    return guarded


class ValidationScores(keras.callbacks.Callback):
    """Adds the task's validation scores (`val_exact_match`, `val_entity_f1`, ...) to each epoch's logs, where
    early stopping, checkpointing, TensorBoard and the CSV history read them: run it before those."""

    def __init__(self, task: Task, serving: ServingModule) -> None:
        super().__init__()
        self.task, self.serving = task, serving

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs.update(self.task.validation_logs(self.serving))


class Task(abc.ABC):
    """One run's data side, from split records to an exportable model.

    Args:
        experiment: the run's configuration.
        splits: train / validation / test records of `record_type`.
    """

    record_type: ClassVar[type] = Record

    @classmethod
    def restore(cls, experiment: Experiment, folder: Path) -> Task:
        """The task a run saved (`save_state`), without its data: its fitted state and its validation records.

        Raises:
            UserError: the folder holds no saved state, or this task cannot be rebuilt from one.
        """
        path = Path(folder) / STATE_FILE
        if not path.is_file():
            raise UserError(f"{folder}: no saved task state ({STATE_FILE}); the run predates saved states or did "
                            "not finish")
        state = json.loads(path.read_text(encoding="utf-8"))
        lines = (Path(folder) / VALIDATION_FILE).read_text(encoding="utf-8").splitlines()
        splits = Splits([], [record_from_row(json.loads(line)) for line in lines if line], [])
        task = cls.from_state(experiment, splits, state["fitted"], Path(folder))
        task.saved_fingerprints = state["fingerprints"]
        return task

    @classmethod
    def from_state(cls, experiment: Experiment, splits: Splits, fitted: dict, folder: Path) -> Task:
        """The task with `fitted` (what `fitted_state` wrote) instead of fitting on a training split."""
        raise UserError(f"{experiment.name}: a {experiment.task} run is reloaded through its export "
                        "(tfnlp.load(workdir)), not rebuilt from its state")

    def fitted_state(self, folder: Path) -> dict:
        """What was fitted on the training split, JSON-ready; large arrays may be written into `folder`."""
        return {}

    def save_state(self, folder: Path) -> None:
        """Save what reloading the run needs besides its weights: the fitted state, the validation records and the
        fingerprints of every split (`restore` reads them)."""
        folder.mkdir(parents=True, exist_ok=True)
        rows = (json.dumps(record_row(record), ensure_ascii=False) for record in self.splits.validation)
        (folder / VALIDATION_FILE).write_text("".join(f"{row}\n" for row in rows), encoding="utf-8")
        state = {"task": self.experiment.task, "fingerprints": fingerprints(self.splits),
                 "fitted": self.fitted_state(folder)}
        (folder / STATE_FILE).write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def from_data(cls, experiment: Experiment, loaded) -> Task:
        """The task for a source's data (`sources.load`); a task that needs the source's code set takes it here."""
        return cls(experiment, loaded.splits)

    def __init__(self, experiment: Experiment, splits: Splits) -> None:
        self.experiment = experiment
        self._require_records(splits)
        self.splits = splits
        # The epoch the training data is shuffled for (EpochCounter sets it): a resumed run reshuffles as before.
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")

    # How a served model is scored (`tfnlp.evaluation`): texts into an export, its answers against the truth. These
    # are class-level: an export is scored without fitting a task.

    slice_by: ClassVar[str] = "label"  # what the evaluation's slices are
    served_metrics: ClassVar[tuple[str, ...]] = ()  # the names `served_score` gives

    @classmethod
    def served_truth(cls, experiment: Experiment, records: Sequence) -> list:
        """What a perfect export answers for each record, in the form `served_prediction` gives."""
        raise NotImplementedError

    @classmethod
    def served_prediction(cls, answer) -> Any:
        """The comparable part of an export's typed answer (`tfnlp.answers`)."""
        raise NotImplementedError

    @classmethod
    def served_score(cls, truth: list, predicted: list) -> dict[str, float]:
        """The served model's metrics."""
        raise NotImplementedError

    @classmethod
    def slice_of(cls, truth: Any) -> str:
        """The slice one record's truth belongs to."""
        return str(truth)

    @classmethod
    def served_slices(cls, truth: list, predicted: list) -> dict[str, dict]:
        """The metrics of each slice of the records (with its support), slice names sorted."""
        slices = {}
        for name in sorted({cls.slice_of(item) for item in truth}):
            rows = [index for index, item in enumerate(truth) if cls.slice_of(item) == name]
            slices[name] = {**cls.served_score([truth[i] for i in rows], [predicted[i] for i in rows]),
                            "support": len(rows)}
        return slices

    @classmethod
    def search_space(cls, experiment: Experiment) -> dict[str, Any]:
        """The default hyperparameter search space (`tfnlp.search`): `section.key` -> {low, high[, log][, step]} or a
        list of choices; only keys the experiment's model family and task read."""
        return {}

    headline: ClassVar[str] = "accuracy"  # the test metric limitations and cards quote first

    @classmethod
    def limitations(cls, experiment: Experiment, test: dict[str, dict[str, float]]) -> list[str]:
        """What a user of the model should know it cannot do, from its settings and the run's measured test table
        (`test`: system -> metrics, as `evaluate` gives it). Tasks add their own lines to these."""
        lines = [f"Trained and tested on `{experiment.data.source}` only: texts unlike its training texts (other "
                 "wording, other institutions, other languages) were not measured."]
        model = test.get("model_beam", test.get("model"))
        baselines = {name: scores for name, scores in test.items() if name.startswith("baseline")}
        if model and baselines and cls.headline in model:
            name, best = max(baselines.items(), key=lambda item: item[1].get(cls.headline, -1.0))
            value, theirs = model[cls.headline], best.get(cls.headline)
            if theirs is not None and theirs >= value:
                lines.append(f"On its test split the simpler `{name}` scores {cls.headline} {theirs:.3f}, at least the "
                             f"model's {value:.3f}: prefer the baseline where its cost matters.")
            elif theirs is not None:
                lines.append(f"Test {cls.headline} {value:.3f}, above its strongest baseline (`{name}`, {theirs:.3f}).")
        return lines

    @classmethod
    def trivial_predictions(cls, experiment: Experiment, train: Sequence, count: int) -> list:
        """The simplest baseline's answers: the most frequent training truth, for every record."""
        common = Counter(cls.served_truth(experiment, train)).most_common(1)
        return [common[0][0] if common else ""] * count

    # What each task provides.

    @abc.abstractmethod
    def make_model(self) -> keras.Model:
        """A new, built, uncompiled model (the same architecture every call)."""

    @abc.abstractmethod
    def loss(self, model: keras.Model) -> dict[str, Any]:
        """`compile` arguments besides the optimizer: loss, metrics, loss weights, for `model` (`make_model`'s: a
        loss may read its layers)."""

    @abc.abstractmethod
    def dataset(self, records: Sequence, training: bool) -> tf.data.Dataset:
        """Batched model inputs and targets of `records`; shuffled each epoch when `training`."""

    @abc.abstractmethod
    def serving(self, model: keras.Model) -> ServingModule:
        """The exportable module around `model`."""

    @abc.abstractmethod
    def truth(self, records: Sequence) -> list:
        """What a perfect model would answer for each record."""

    @abc.abstractmethod
    def predict(self, serving: ServingModule, records: Sequence) -> list:
        """What the served graph answers for each record (the same form as `truth`)."""

    @abc.abstractmethod
    def score(self, truth: list, predicted: list) -> dict[str, float]:
        """The task's metrics of `predicted` against `truth`."""

    # Steps a task may refine.

    def systems(self, serving: ServingModule) -> dict[str, Callable[[Sequence], list]]:
        """The predictors evaluated on the test split, by name (the last one's predictions are reported)."""
        return {"model": lambda records: self.predict(serving, records)}

    def baselines(self, records: Sequence) -> dict[str, list]:
        """Predictions of the baselines fitted on the training split, by name."""
        return {}

    def extra_callbacks(self, serving: ServingModule, tensorboard_dir: str) -> list[keras.callbacks.Callback]:
        """Callbacks besides the validation scores (images for TensorBoard, ...)."""
        return []

    def validation_logs(self, serving: ServingModule) -> dict[str, float]:
        """The epoch-log values of the validation split (`val_` + each score)."""
        records = self.splits.validation
        scores = self.score(self.truth(records), self.predict(serving, records))
        return {f"val_{name}": value for name, value in scores.items()}

    def example(self, record, truth, predicted) -> dict:
        """One printed example of the test split."""
        return {"text": record.text, "true": truth, "predicted": predicted}

    def calibrate(self, serving: ServingModule) -> dict:
        """Fit the export's confidences and review threshold on the validation split and fold them into `serving`
        (before it is first called); what was fitted and measured, for metrics.json and the model card."""
        return {}

    def validation_choices(self) -> dict:
        """Other settings `calibrate` chose on the validation split, and what they were chosen on, by name (for
        metrics.json and the model card)."""
        return {}

    def write_reports(self, predicted: list, workdir: Path, tensorboard_dir: str) -> dict:
        """Report files of the test split (`predicted`: as `evaluate` gave them); what to add to metrics.json."""
        return {}

    # The steps written once.

    def _require_records(self, splits: Splits) -> None:
        """Refuse a source whose records are not the task's `record_type`, naming the sources that fit."""
        first = splits.first()
        if first is None or isinstance(first, self.record_type):
            return
        source = self.experiment.data.source
        if self.record_type is TaggedSentence:
            raise UserError(f"data source {source!r} gives texts with labels, not tagged tokens; a tagger needs "
                            f"{TAGGING_SOURCES}")
        raise UserError(f"data source {source!r} gives tagged tokens ({TAGGING_SOURCES}); this experiment needs texts "
                        "with labels (cim10, movie-reviews, csv:PATH, ...)")

    def datasets(self) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        """Training (shuffled) and validation datasets."""
        return self.dataset(self.splits.train, True), self.dataset(self.splits.validation, False)

    def build_model(self, steps_per_epoch: int) -> keras.Model:
        """A model compiled with `make_optimizer`'s optimizer; call inside the strategy's scope.

        Args:
            steps_per_epoch: training batches per epoch, for the learning-rate schedule.
        """
        train = self.experiment.train
        model = self.make_model()
        if train.jit_compile and _reads_strings(model):
            raise UserError(f"train.jit_compile=true: {self.experiment.name} reads raw strings inside the model "
                            "(vectorisation, lookups), which XLA cannot compile; leave train.jit_compile=false")
        # Under a mixed policy Keras wraps the optimizer in a LossScaleOptimizer itself (mixed_float16).
        model.compile(optimizer=make_optimizer(train, steps_per_epoch), jit_compile=train.jit_compile,
                      **self.loss(model))
        return model

    def fit(self, model: keras.Model, train_data: tf.data.Dataset, validation_data: tf.data.Dataset, epochs: int,
            callbacks: list, verbose: int, **steps: int) -> keras.Model:
        """`model.fit` (the datasets shuffle themselves); returns the trained model. `steps`: `steps_per_epoch`
        and `validation_steps` where the data repeats (several workers)."""
        model.fit(train_data, validation_data=validation_data, epochs=epochs, callbacks=callbacks, shuffle=False,
                  verbose=verbose, **steps)
        return model

    def callbacks(self, serving: ServingModule, tensorboard_dir: str) -> list[keras.callbacks.Callback]:
        """The validation scores first (they add to the epoch logs the others read), then the task's own."""
        return [EpochCounter(self.epoch), ValidationScores(self, serving), *self.extra_callbacks(serving,
                                                                                                 tensorboard_dir)]

    def inference_model(self, trained: keras.Model) -> keras.Model:
        """A copy of `trained` for export: the same architecture with the trained weights, and no optimizer, loss
        or metric state (TF Serving loads every variable of a SavedModel into memory). A LoRA model's copy is the
        plain architecture with the merged weights: Keras saves a LoRA layer's kernel as kernel + A·B·alpha/rank,
        so the export computes what the trained model does, with no adapter matrices."""
        if not getattr(self.experiment.model, "lora_rank", 0):
            model = self.make_model()
            model.set_weights(trained.get_weights())
            return model
        with self._without_lora(), tempfile.TemporaryDirectory() as folder:
            model = self.make_model()
            merged = Path(folder) / "merged.weights.h5"
            trained.save_weights(str(merged))
            model.load_weights(str(merged))
        return model

    @contextlib.contextmanager
    def _without_lora(self):
        """Build models with `model.lora_rank=0` inside the block."""
        kept = self.experiment
        self.experiment = dataclasses.replace(kept, model=dataclasses.replace(kept.model, lora_rank=0))
        try:
            yield
        finally:
            self.experiment = kept

    def evaluate(self, serving: ServingModule, records: Sequence,
                 with_baselines: bool = False) -> tuple[dict[str, dict[str, float]], list[dict], list]:
        """Scores of each system (and of the baselines) on `records`, a few examples, and the last system's
        predictions."""
        truth = self.truth(records)
        results: dict[str, dict[str, float]] = {}
        predicted: list = []
        for system, predictor in self.systems(serving).items():
            predicted = predictor(records)
            results[system] = self.score(truth, predicted)
        for name, guesses in (self.baselines(records).items() if with_baselines else ()):
            results[name] = self.score(truth, guesses)
        shown = zip(records[:EXAMPLES_SHOWN], truth[:EXAMPLES_SHOWN], predicted[:EXAMPLES_SHOWN], strict=True)
        return results, [self.example(*row) for row in shown], predicted
