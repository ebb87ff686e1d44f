"""An experiment's settings: data, the model family's settings, training; `--set section.key=value` and TOML.

`[model]` is the settings dataclass of the family `model.name` belongs to (`tfnlp.model_settings`):
a key that family does not read is refused, as is a training option the family cannot honour,
and an unknown key gets the closest known one suggested. Every field carries a one-line help
(`--print-config` writes it as TOML comments) and its bounds (`validate`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfnlp import model_settings
from tfnlp.errors import UserError
from tfnlp.model_settings import ModelSettings, setting

LOSSES = ("ce", "weighted", "focal", "balanced_focal")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
LR_SCHEDULES = ("cosine", "linear", "constant", "plateau")
# `[data]` keys a task does not read (the others are read by every task's sources).
UNREAD_DATA = {"seq2seq": ("label_length", "preprocess", "types"),
               "classification": ("types",),
               "tagging": ("label_length", "preprocess", "text_column", "label_column")}


@dataclass(frozen=True)
class DataConfig:
    """Where records come from and how they are split."""

    source: str = setting("cim10", "data source: cim10, cim10:lang=es, icd10cm, movie-reviews, wnut16, csv:PATH, "
                                   "conll:PATH, pubtator:PATH, ...")
    text_column: str = setting("RawText", "column holding the text in tabular sources")
    label_column: str = setting("ICD10", "column holding the target in tabular sources")
    validation_fraction: float = setting(0.1, "share of records held out for model selection", low=0.0, below=1.0)
    test_fraction: float = setting(0.1, "share of records held out for the final report", low=0.0, below=1.0)
    seed: int = setting(42, "seed of the split", low=0)
    max_records: int = setting(0, "keep at most this many records (0: all); data that comes split keeps this many "
                                  "in all, each part its share", low=0)
    label_length: int = setting(0, "cut each target to this many characters (1: ICD-10 chapter, 3: category; "
                                   "0: whole)", low=0)
    preprocess: str = setting("", "lemma: lemmatise words (spaCy's French pipeline, compiled into the graph); "
                                  "empty: none", choices=("", "lemma"))
    types: str = setting("", "PubTator entity types to keep, A,B or renamed A=X,B=X (empty: all)")
    encoding: str = setting("utf-8", "text encoding of the user's CSV / TSV / JSONL files")
    deidentify: bool = setting(False, "replace names, e-mails, URLs, IPs and phone numbers with placeholders in "
                                      "every split; the export scrubs the pattern kinds of served texts too")
    deidentify_lang: str = setting("fr", "language of the texts for person names", choices=("fr", "en"))


@dataclass(frozen=True)
class TrainConfig:
    """How the model is fitted."""

    epochs: int = setting(18, "most epochs to train", low=1)
    batch_size: int = setting(64, "global batch size (split across replicas)", low=1, below=2 ** 31)
    learning_rate: float = setting(2e-3, "Adam's learning rate", low=1e-12)
    patience: int = setting(4, "epochs without improvement of train.monitor before stopping", low=0)
    lr_schedule: str = setting("cosine", "cosine or linear decay to lr_final_fraction, constant (each after an "
                                         "optional warm-up), or plateau", choices=LR_SCHEDULES)
    lr_final_fraction: float = setting(0.05, "cosine / linear: the last learning rate as a fraction of the first",
                                       low=0.0)
    warmup_steps: int = setting(0, "optimizer steps of linear warm-up (0: none)", low=0)
    warmup_fraction: float = setting(0.0, "the warm-up as a fraction of the run's steps (when warmup_steps is 0)",
                                     low=0.0, below=1.0)
    weight_decay: float = setting(0.0, "decoupled weight decay (AdamW); 0 uses Adam", low=0.0)
    grad_accum_steps: int = setting(1, "batches whose gradients are averaged before each update", low=1)
    ema_momentum: float = setting(0.0, "weight averaging: at each epoch's end the weights become their exponential "
                                       "moving average over the epoch's updates, at this momentum (0: off)",
                                  low=0.0, below=1.0)
    precision: str = setting("float32", "Keras's dtype policy: float32, mixed_float16 or mixed_bfloat16",
                             choices=PRECISIONS)
    jit_compile: bool = setting(False, "compile the training step with XLA")
    lr_patience: int = setting(2, "plateau: epochs without improvement before the learning rate decays", low=0)
    lr_factor: float = setting(0.5, "plateau: the decay factor", low=0.0)
    strategy: str = setting("auto", "auto, default, mirrored, multiworker (TF_CONFIG), tpu or one_device:/gpu:0")
    seed: int = setting(1234, "seed of weights, shuffling, dropout and the baselines", low=0)
    deterministic: bool = setting(True, "deterministic TensorFlow kernels: a seeded run repeats exactly")
    shuffle_buffer: int = setting(20000, "tf.data shuffle buffer", low=1)
    monitor: str = setting("val_exact_match", "the epoch log value early stopping and checkpoints follow")
    baselines: bool = setting(True, "also fit the scikit-learn baselines on the same split")
    loss: str = setting("ce", "ce, weighted (balanced class weights), focal or balanced_focal", choices=LOSSES)
    focal_gamma: float = setting(2.0, "focal loss focusing parameter", low=0.0)
    focal_alpha: float = setting(0.25, "focal's scalar alpha", low=0.0)
    focal_beta: float = setting(0.999, "balanced_focal's effective-number beta", low=0.0, below=1.0)


@dataclass(frozen=True)
class Experiment:
    """Everything one training run needs; built by a registered experiment function.

    Attributes:
        name: the experiment's registered name.
        task: `seq2seq`, `classification` or `tagging`.
        description: one line.
        data, model, train: the settings; `model` is the family's dataclass of `model.name`.
    """

    name: str
    task: str
    description: str
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSettings = field(default_factory=model_settings.Seq2SeqCoderSettings)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.model.task != self.task:
            raise ValueError(f"{self.name}: model {self.model.name!r} is not a {self.task} model")


SECTIONS = ("data", "model", "train")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_value(text: str, target_type: Any) -> Any:
    """Parse `text` as `target_type` (bool, int, float or str)."""
    if target_type is bool:
        return _parse_bool(text)
    if target_type is int:
        return int(text)
    if target_type is float:
        return float(text)
    if target_type is str:
        return text
    raise ValueError(f"cannot parse a value of type {target_type}")


def field_types(section_class: type) -> dict[str, Any]:
    """A settings dataclass's field names and their types."""
    hints = typing.get_type_hints(section_class)
    return {item.name: hints[item.name] for item in dataclasses.fields(section_class)}


def unread_keys(experiment: Experiment, section_name: str) -> tuple[str, ...]:
    """The `[data]` / `[train]` keys this experiment's task and model family do not read."""
    if section_name == "train":
        return type(experiment.model).unread_train
    if section_name == "data":
        return UNREAD_DATA.get(experiment.task, ())
    return ()


def _suggestion(name: str, known: Iterable[str], section_name: str) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {section_name}.{close[0]}?" if close else ""


def checked_type(experiment: Experiment, section_name: str, field_name: str, where: str) -> Any:
    """The type of `section.key` for this experiment; UserError naming `where` for an unknown section or key, a model
    key the experiment's family does not read, or an option its task or family cannot honour."""
    if section_name not in SECTIONS:
        raise UserError(f"{where}: unknown section {section_name!r}; known: {', '.join(SECTIONS)}")
    section = getattr(experiment, section_name)
    types = field_types(type(section))
    unread = unread_keys(experiment, section_name)
    if field_name in types and field_name not in unread:
        return types[field_name]
    key = f"{section_name}.{field_name}"
    if section_name == "model":
        family = type(section)
        settings = ", ".join(types)
        if any(field_name in field_types(other) for other in model_settings.FAMILIES):
            raise UserError(f"{where}: {key} is not read by {family.describe()}, the model of {experiment.name}; "
                            f"its settings: {settings}")
        raise UserError(f"{where}: unknown key '{key}'{_suggestion(field_name, types, section_name)}; "
                        f"{family.describe()} reads: {settings}")
    if field_name in unread:
        reader = (f"{type(experiment.model).describe()}" if section_name == "train"
                  else f"the {experiment.task} task")
        raise UserError(f"{where}: {key} has no effect on {experiment.name}: {reader} does not read it")
    known = [name for name in types if name not in unread]
    raise UserError(f"{where}: unknown key '{key}'{_suggestion(field_name, known, section_name)}; known: "
                    + ", ".join(f"{section_name}.{name}" for name in known))


def _with_model(experiment: Experiment, name: Any, where: str) -> Experiment:
    """`experiment` with `model.name` set: another model of the same family, or of another family of the same task
    (its defaults, keeping the settings both families have)."""
    if not isinstance(name, str):
        raise UserError(f"{where}: model.name takes a string, got {name!r}")
    known = model_settings.task_models(experiment.task)
    if name not in model_settings.MODEL_FAMILIES:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise UserError(f"{where}: model.name={name!r} is not a model{hint}; {experiment.name} ({experiment.task}) "
                        f"can use: {', '.join(known)}")
    family = model_settings.family_of(name)
    if family.task != experiment.task:
        raise UserError(f"{where}: model.name={name} is a {family.task} model; {experiment.name} is a "
                        f"{experiment.task} experiment, whose models are: {', '.join(known)}")
    return dataclasses.replace(experiment, model=model_settings.carried_over(experiment.model, name))


Setting = tuple[str, str, Any, str]  # section, key, value (text from --set, typed from TOML), where it was given


def _apply(experiment: Experiment, items: list[Setting], convert) -> Experiment:
    """`experiment` with each setting applied; `model.name` first, since it chooses the family the others belong to.
    `convert(value, type)` turns a given value into the field's type (ValueError when it cannot)."""
    for section_name, field_name, value, where in items:
        if (section_name, field_name) == ("model", "name"):
            experiment = _with_model(experiment, convert(value, str), where)
    changes: dict[str, dict[str, Any]] = {}
    for section_name, field_name, value, where in items:
        if (section_name, field_name) == ("model", "name"):
            continue
        value_type = checked_type(experiment, section_name, field_name, where)
        try:
            changes.setdefault(section_name, {})[field_name] = convert(value, value_type)
        except ValueError as error:
            raise UserError(f"{where}: {section_name}.{field_name} takes a {value_type.__name__} ({error})") from None
    for section_name, values in changes.items():
        section = dataclasses.replace(getattr(experiment, section_name), **values)
        experiment = dataclasses.replace(experiment, **{section_name: section})
    return experiment


def _from_text(value: str, value_type: Any) -> Any:
    return parse_value(value.strip(), value_type)


def apply_overrides(experiment: Experiment, overrides: Iterable[str]) -> Experiment:
    """Return a copy of `experiment` with `section.key=value` overrides applied.

    Args:
        experiment: the configuration to start from.
        overrides: strings such as `train.epochs=3` or `model.units=64`.

    Raises:
        UserError: for a malformed override, an unknown key (with the closest known one), a key the experiment's
            model family or task does not read, or a value of the wrong type.
    """
    items: list[Setting] = []
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        section_name, dot, field_name = key.strip().partition(".")
        if not sep or not dot:
            raise UserError(f"override {override!r} should look like section.key=value, e.g. train.epochs=3")
        items.append((section_name, field_name, raw_value, f"override {override!r}"))
    return _apply(experiment, items, _from_text)


def apply_data_overrides(data: DataConfig, overrides: Iterable[str]) -> DataConfig:
    """`data` with `data.key=value` overrides applied (for commands that read data without training a model).

    Raises:
        UserError: a malformed override, another section, an unknown key (with the closest known one), a bad value.
    """
    types, changes = field_types(DataConfig), {}
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        section_name, _, field_name = key.strip().partition(".")
        if not sep or section_name != "data":
            raise UserError(f"override {override!r}: give data.key=value (e.g. data.max_records=100)")
        if field_name not in types:
            raise UserError(f"override {override!r}: unknown key 'data.{field_name}'"
                            f"{_suggestion(field_name, types, 'data')}; known: " + ", ".join(types))
        try:
            changes[field_name] = _from_text(raw_value, types[field_name])
        except ValueError as error:
            raise UserError(f"override {override!r}: data.{field_name} takes a {types[field_name].__name__} "
                            f"({error})") from None
    data = dataclasses.replace(data, **changes)
    _check_bounds("data", data)
    return data


def typed_value(value: Any, value_type: Any) -> Any:
    """A TOML value as `value_type`; ValueError when it is another kind (an int is a valid float)."""
    if value_type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not value_type:
        raise ValueError(f"got {type(value).__name__} {value!r}")
    return value


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's tables; UserError naming the file when it cannot be read or parsed."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML ({error})") from None


def apply_tables(experiment: Experiment, tables: dict[str, Any], where: str) -> Experiment:
    """`experiment` with the values of `[data]`, `[model]` and `[train]` tables (as TOML reads them)."""
    items: list[Setting] = []
    for section_name, values in tables.items():
        if not isinstance(values, dict):
            raise UserError(f"{where}: {section_name!r} must be a table ([data], [model] or [train])")
        items += [(section_name, field_name, value, where) for field_name, value in values.items()]
    return _apply(experiment, items, typed_value)


def apply_toml(experiment: Experiment, path: str | Path) -> Experiment:
    """Return a copy of `experiment` with the values of a TOML file's `[data]`, `[model]` and `[train]` tables.

    Raises:
        UserError: `<path>: ...` for a missing or malformed file, an unknown table or key, a value of the wrong type.
    """
    return apply_tables(experiment, read_toml(path), str(path))


def toml_value(value: Any) -> str:
    """A scalar as TOML writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def to_toml(experiment: Experiment) -> str:
    """The experiment's `[data]`, `[model]` and `[train]` tables as TOML, each key under its help as a comment:
    exactly the keys this experiment reads (what `apply_toml` reads back)."""
    lines = [f"# {experiment.name}: {experiment.description}",
             f"# model family: {type(experiment.model).describe()}"]
    for section_name in SECTIONS:
        section = getattr(experiment, section_name)
        lines.append(f"\n[{section_name}]")
        unread = unread_keys(experiment, section_name)
        for item in dataclasses.fields(section):
            if item.name in unread:
                continue
            lines += [f"# {item.metadata['help']}", f"{item.name} = {toml_value(getattr(section, item.name))}"]
    return "\n".join(lines) + "\n"


def to_dict(experiment: Experiment) -> dict[str, Any]:
    """The experiment as plain JSON-ready data."""
    return dataclasses.asdict(experiment)


def from_dict(raw: dict[str, Any]) -> Experiment:
    """The experiment that `to_dict` wrote (a run's config.json). A run written before the model families (one flat
    model table) keeps the settings its family reads."""
    model = dict(raw["model"])
    family = model_settings.family_of(model.get("name", ""))
    sections = {"data": DataConfig(**raw.get("data", {})), "train": TrainConfig(**raw.get("train", {})),
                "model": family(**{key: value for key, value in model.items() if key in family.fields()})}
    return Experiment(**{key: value for key, value in raw.items() if key not in SECTIONS}, **sections)


def _check_bounds(section_name: str, section: Any) -> None:
    for item in dataclasses.fields(section):
        value, meta = getattr(section, item.name), item.metadata
        key = f"{section_name}.{item.name}"
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{key}={value}: must be a finite number")
        if meta.get("choices") and value not in meta["choices"]:
            shown = ", ".join(choice or "an empty string" for choice in meta["choices"])
            raise UserError(f"{key}={value!r}: use one of {shown}")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if meta.get("low") is not None and value < meta["low"]:
            raise UserError(f"{key}={value}: must be at least {meta['low']}")
        if meta.get("below") is not None and not value < meta["below"]:
            raise UserError(f"{key}={value}: must be below {meta['below']:g}")
        if meta.get("high") is not None and value > meta["high"]:
            raise UserError(f"{key}={value}: must be at most {meta['high']:,}")


def _check_decoder(experiment: Experiment) -> None:
    """A CRF trains on the plain sentence likelihood, one tag per word."""
    model = experiment.model
    if getattr(model, "decoder", "") != "crf":
        return
    if experiment.train.loss != "ce":
        raise UserError(f"model.decoder=crf trains on the sentence's log-likelihood: "
                        f"train.loss={experiment.train.loss} (per-token weights or focusing) does not apply; leave "
                        "train.loss=ce or use model.decoder=constrained")
    if getattr(model, "label_all_subtokens", False):
        raise UserError("model.decoder=crf reads one tag per word (its first sub-token): it cannot be combined with "
                        "model.label_all_subtokens=true")


def validate(experiment: Experiment) -> Experiment:
    """Refuse values no run can use, naming the key (`model.beam_size=0`, `train.epochs=0`, `nan`, ...)."""
    for section_name in SECTIONS:
        _check_bounds(section_name, getattr(experiment, section_name))
    train = experiment.train
    if train.lr_schedule == "plateau" and (train.warmup_steps or train.warmup_fraction):
        raise UserError("train.lr_schedule=plateau takes no warm-up (train.warmup_steps / warmup_fraction): "
                        "use cosine, linear or constant with a warm-up")
    if train.ema_momentum and train.grad_accum_steps > 1:
        raise UserError("train.ema_momentum averages the weights after every update, train.grad_accum_steps "
                        "updates once every few batches: Keras's optimizers cannot do both; give one of them")
    _check_decoder(experiment)
    model = experiment.model
    if getattr(model, "top_k", 0) > getattr(model, "beam_size", float("inf")):
        raise UserError(f"model.top_k={model.top_k}: the beam holds model.beam_size={model.beam_size} codes; rank at "
                        "most that many, or widen the beam")
    return experiment
