"""Frozen experiment configuration and `--set section.key=value` overrides."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from tfnlp.errors import UserError


@dataclass(frozen=True)
class DataConfig:
    """Where records come from and how they are split.

    Attributes:
        source: a source spec (`cim10`, `cim10:lang=es`, `icd10cm`, `csv:PATH`, ...).
        text_column: column holding the text in tabular sources.
        label_column: column holding the target in tabular sources.
        validation_fraction: share of records held out for model selection.
        test_fraction: share of records held out for the final report.
        seed: seed of the split.
        max_records: keep at most this many records before splitting (0 keeps all); data that comes
            split (train / devel / test files) keeps this many in all, each part its share.
        label_length: classification: cut each target to this many characters (1: the ICD-10 chapter
            letter, 3: the category); 0 keeps the whole target.
        preprocess: classification: `lemma` lemmatises words (spaCy's French pipeline, compiled into
            the graph as a word -> lemma table); empty for none.
        types: tagging (PubTator): entity types to keep, `A,B` or renamed `A=X,B=X`; empty keeps all.
        encoding: text encoding of the user's CSV / TSV / JSONL files (`latin-1`, `cp1252`, ...).
        deidentify: replace person names, e-mails, URLs, IPs and phone numbers with placeholders in every
            split before training (`tfnlp.data.deidentify`); the export scrubs the pattern kinds of served
            texts the same way, in its graph (names cannot run there).
        deidentify_lang: language of the texts for person names: `fr` or `en`.
    """

    source: str = "cim10"
    text_column: str = "RawText"
    label_column: str = "ICD10"
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 42
    max_records: int = 0
    label_length: int = 0
    preprocess: str = ""
    types: str = ""
    encoding: str = "utf-8"
    deidentify: bool = False
    deidentify_lang: str = "fr"


@dataclass(frozen=True)
class ModelConfig:
    """Model factory name and its hyper-parameters (not all factories use all of them).

    Attributes:
        name: model factory name.
        vocab_size: word vocabulary size of the TextVectorization layer.
        max_input_tokens: words kept from each text (longer texts are cut); for transformer taggers, the
            window in sub-tokens, special tokens included (longer texts are cut into windows).
        embedding_dim: word embedding size.
        subword_buckets: hash buckets of character n-gram features per word (0 turns them off).
        units: encoder LSTM units per direction.
        decoder_units: decoder LSTM units.
        char_embedding_dim: decoder character embedding size.
        attention_units: size of the additive attention projection.
        dropout: dropout rate on embeddings and encoder outputs.
        max_output_length: most characters the decoder writes before the end token.
        beam_size: beam width for `model_beam`; 1 means greedy decoding only.
        constrain: restrict decoding to codes of the classification (prefix trie).
        category_loss_weight: weight of the auxiliary category head's loss (0: no head).
        category_rerank_weight: with beam search, each final code scores log P(code) plus this
            times the category head's log P(category of the code); 0 keeps the best beam.
        category_prior_weight: beam search (`serve`) adds this times the category head's log P(category)
            as the code's first characters are written (shallow fusion; 0: off).
        tfidf_prior_weight: the same for a TF-IDF linear SVM over categories fitted on the training texts
            and compiled into the graph (the dictionary side of a dictionary + generator hybrid; 0: off).
        tfidf_prior_sharpness: the SVM's scores times this are softmaxed into P(category).
        tfidf_min_weight: SVM weights smaller in magnitude are left out of the export (0 keeps all).
        filters: Conv1D filters (bilstm_conv).
        kernel_size: Conv1D kernel width (bilstm_conv).
        vectors: pretrained word vectors: an asset (`glove-6b-50d`, `fr-vectors`) or a GloVe /
            word2vec / fastText file read with gensim; empty for none.
        hidden_units: hidden layer size of the mean-vector MLP.
        preset: keras-hub preset handle or local preset folder for BERT models (empty: the minilm asset);
            for the GPT-2 tagger, empty means a fresh small GPT-2 with a byte-level BPE vocabulary
            learnt from the training text.
        num_layers: transformer layers of a fresh (preset-less) GPT-2 tagger.
        label_all_subtokens: transformer taggers teach every sub-token of a word (later ones the
            word's `I-` tag) instead of the first one alone; tags are always read on the first.
        bpe_merges: merges of the byte-level BPE vocabulary learnt for a fresh GPT-2 tagger.
        lora_rank: keras-hub backbones (BERT classifier and taggers, GPT-2 tagger): low-rank adaptation of
            this rank (`backbone.enable_lora`): the backbone is frozen but for its LoRA matrices, the head
            trains; the export holds the merged weights. 0: full fine-tuning.
        lora_targets: comma-separated layer names LoRA adapts (empty: keras-hub's default, the attention's
            query and value projections).
        window_stride: transformer taggers: sub-token positions between the starts of a long text's
            windows; below the window's room for words they overlap and each word is read from the window
            where it has the most context (0: windows side by side).
        decoder: how a tagger reads tags: `argmax` (each token's most probable tag), `constrained`
            (Viterbi over the softmax under BIO2 constraints: only well-formed entities) or `crf` (a
            linear-chain CRF trained on the sentence likelihood, Viterbi-decoded under the same constraints).
        char_filters: `bilstm_tagger`'s character CNN filters per word (0: no character features); its
            characters are embedded in `char_embedding_dim` and read `kernel_size` at a time.
        sklearn_c: inverse regularisation strength of the scikit-learn logistic regression.
        sklearn_max_iter: most iterations of the scikit-learn estimator; 0 for tfnlp's defaults
            (`SKLEARN_MAX_ITER`: 2,000 for the logistic regression, 300 epochs for the MLP).
    """

    name: str = "char_seq2seq"
    vocab_size: int = 20000
    max_input_tokens: int = 48
    embedding_dim: int = 128
    subword_buckets: int = 20000
    units: int = 128
    decoder_units: int = 256
    char_embedding_dim: int = 32
    attention_units: int = 128
    dropout: float = 0.2
    max_output_length: int = 6
    beam_size: int = 8
    constrain: bool = True
    category_loss_weight: float = 0.5
    category_rerank_weight: float = 0.0
    category_prior_weight: float = 1.0
    tfidf_prior_weight: float = 2.0
    tfidf_prior_sharpness: float = 10.0
    tfidf_min_weight: float = 0.05
    filters: int = 128
    kernel_size: int = 3
    vectors: str = ""
    hidden_units: int = 256
    preset: str = ""
    num_layers: int = 4
    label_all_subtokens: bool = False
    bpe_merges: int = 4000
    lora_rank: int = 0
    lora_targets: str = ""
    window_stride: int = 0
    decoder: str = "argmax"
    char_filters: int = 0
    sklearn_c: float = 1.0
    sklearn_max_iter: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """How the model is fitted.

    Attributes:
        epochs: most epochs to train.
        batch_size: global batch size (split across replicas).
        learning_rate: Adam learning rate.
        patience: epochs without improvement of the monitored value before stopping.
        lr_schedule: `cosine` or `linear` (decay to `lr_final_fraction` of the start over `epochs`: a
            predictable run time), `constant`, each after an optional linear warm-up, or `plateau` (multiply
            by `lr_factor` after `lr_patience` epochs without improvement).
        lr_final_fraction: with `cosine` and `linear`, the learning rate at the end as a fraction of the start.
        warmup_steps: optimizer steps of linear warm-up from 0 to `learning_rate` (0: none).
        warmup_fraction: the warm-up as a fraction of the run's optimizer steps (when `warmup_steps` is 0).
        weight_decay: decoupled weight decay (AdamW); 0 uses Adam.
        grad_accum_steps: batches whose gradients are averaged before each update (the optimizer's own
            `gradient_accumulation_steps`): the effective batch is `batch_size` x this.
        precision: `float32`, `mixed_float16` (loss scaling) or `mixed_bfloat16`: Keras's mixed-precision
            policy for the layers; losses and exported outputs stay float32.
        jit_compile: compile the training step with XLA.
        lr_patience: with `plateau`, epochs without improvement before the learning rate decays.
        lr_factor: with `plateau`, the decay factor.
        strategy: `auto`, `default`, `mirrored`, `multiworker` (from `TF_CONFIG`), `tpu` or
            `one_device:/gpu:0`.
        seed: seed for weights, shuffling, dropout and the baselines.
        deterministic: make TensorFlow's kernels deterministic, so a seeded run repeats exactly on the
            same machine and software (`tf.config.experimental.enable_op_determinism`).
        shuffle_buffer: tf.data shuffle buffer size.
        monitor: the epoch log value that early stopping and checkpointing follow. Decoded
            validation exact-match by default: teacher-forced validation loss is a poor guide
            to decoded accuracy on ICD-10 coding (it rose from epoch 4 on while exact-match kept
            improving until epoch 15); `val_loss` is the alternative.
        baselines: also fit the scikit-learn baselines on the same split.
        loss: classification loss: `ce`, `weighted` (balanced class weights), `focal` or
            `balanced_focal` (tfnlp.losses).
        focal_gamma: focal loss focusing parameter.
        focal_alpha: `focal`'s scalar alpha.
        focal_beta: `balanced_focal`'s effective-number beta.
    """

    epochs: int = 18
    batch_size: int = 64
    learning_rate: float = 2e-3
    patience: int = 4
    lr_schedule: str = "cosine"
    lr_final_fraction: float = 0.05
    warmup_steps: int = 0
    warmup_fraction: float = 0.0
    weight_decay: float = 0.0
    grad_accum_steps: int = 1
    precision: str = "float32"
    jit_compile: bool = False
    lr_patience: int = 2
    lr_factor: float = 0.5
    strategy: str = "auto"
    seed: int = 1234
    deterministic: bool = True
    shuffle_buffer: int = 20000
    monitor: str = "val_exact_match"
    baselines: bool = True
    loss: str = "ce"
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    focal_beta: float = 0.999


@dataclass(frozen=True)
class Experiment:
    """Everything one training run needs; built by a registered experiment function."""

    name: str
    task: str
    description: str
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


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


def _field_types(section: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(type(section))
    return {f.name: hints[f.name] for f in dataclasses.fields(section)}


def apply_overrides(experiment: Experiment, overrides: Iterable[str]) -> Experiment:
    """Return a copy of `experiment` with `section.key=value` overrides applied.

    Args:
        experiment: the configuration to start from.
        overrides: strings such as `train.epochs=3` or `model.units=64`.

    Raises:
        UserError: for a malformed override, an unknown key or a value of the wrong type.
    """
    changes: dict[str, dict[str, Any]] = {}
    for override in overrides:
        key, sep, raw_value = override.partition("=")
        section_name, dot, field_name = key.strip().partition(".")
        if not sep or not dot:
            raise UserError(f"override {override!r} should look like section.key=value, e.g. train.epochs=3")
        where = f"override {override!r}"
        value_type = checked_type(experiment, section_name, field_name, where)
        try:
            value = parse_value(raw_value.strip(), value_type)
        except ValueError as error:
            raise UserError(f"{where}: {key.strip()} takes a {value_type.__name__} ({error})") from None
        changes.setdefault(section_name, {})[field_name] = value
    return _replaced(experiment, changes)


def checked_type(experiment: Experiment, section_name: str, field_name: str, where: str) -> Any:
    """The type of `section.key`, refusing an unknown section or key with a message naming `where`."""
    if section_name not in SECTIONS:
        raise UserError(f"{where}: unknown section {section_name!r}; known: {', '.join(SECTIONS)}")
    types = _field_types(getattr(experiment, section_name))
    if field_name not in types:
        known = ", ".join(f"{section_name}.{name}" for name in types)
        raise UserError(f"{where}: unknown key '{section_name}.{field_name}'; known: {known}")
    return types[field_name]


def _replaced(experiment: Experiment, changes: dict[str, dict[str, Any]]) -> Experiment:
    for section_name, values in changes.items():
        section = dataclasses.replace(getattr(experiment, section_name), **values)
        experiment = dataclasses.replace(experiment, **{section_name: section})
    return experiment


def _typed(value: Any, value_type: Any) -> Any:
    """A TOML value as `value_type`; ValueError when it is another kind (an int is a valid float)."""
    if value_type is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not value_type:
        raise ValueError(f"got {type(value).__name__} {value!r}")
    return value


def apply_toml(experiment: Experiment, path: str | Path) -> Experiment:
    """Return a copy of `experiment` with the values of a TOML file's `[data]`, `[model]` and `[train]` tables.

    Raises:
        UserError: `<path>: ...` for a missing or malformed file, an unknown table or key, a value of the wrong type.
    """
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML ({error})") from None
    changes: dict[str, dict[str, Any]] = {}
    for section_name, values in raw.items():
        if not isinstance(values, dict):
            raise UserError(f"{path}: {section_name!r} must be a table ([data], [model] or [train])")
        for field_name, value in values.items():
            value_type = checked_type(experiment, section_name, field_name, str(path))
            try:
                changes.setdefault(section_name, {})[field_name] = _typed(value, value_type)
            except ValueError as error:
                raise UserError(f"{path}: {section_name}.{field_name} takes a {value_type.__name__} ({error})"
                                ) from None
    return _replaced(experiment, changes)


def toml_value(value: Any) -> str:
    """A scalar as TOML writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def to_toml(experiment: Experiment) -> str:
    """The experiment's `[data]`, `[model]` and `[train]` tables as TOML (what `apply_toml` reads back)."""
    lines = [f"# {experiment.name}: {experiment.description}"]
    for section_name in SECTIONS:
        lines.append(f"\n[{section_name}]")
        lines += [f"{key} = {toml_value(value)}"
                  for key, value in dataclasses.asdict(getattr(experiment, section_name)).items()]
    return "\n".join(lines) + "\n"


def to_dict(experiment: Experiment) -> dict[str, Any]:
    """The experiment as plain JSON-ready data."""
    return dataclasses.asdict(experiment)


def from_dict(raw: dict[str, Any]) -> Experiment:
    """The experiment that `to_dict` wrote (e.g. a run's config.json)."""
    sections = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
    return Experiment(**{key: sections[key](**value) if key in sections else value for key, value in raw.items()})


# (section, key, smallest allowed value) of the settings that make no sense below a bound.
LOWER_BOUNDS = (
    ("model", "vocab_size", 3), ("model", "max_input_tokens", 1), ("model", "num_layers", 1),
    ("model", "embedding_dim", 1),
    ("model", "subword_buckets", 0), ("model", "units", 1), ("model", "decoder_units", 1),
    ("model", "char_embedding_dim", 1), ("model", "attention_units", 1), ("model", "max_output_length", 0),
    ("model", "beam_size", 1), ("model", "dropout", 0.0), ("model", "category_loss_weight", 0.0),
    ("model", "category_rerank_weight", 0.0), ("train", "epochs", 1), ("train", "batch_size", 1),
    ("train", "learning_rate", 1e-12), ("train", "patience", 0), ("train", "shuffle_buffer", 1),
    ("data", "max_records", 0), ("data", "label_length", 0), ("model", "filters", 1), ("model", "kernel_size", 1),
    ("model", "hidden_units", 1), ("train", "focal_gamma", 0.0), ("train", "seed", 0), ("data", "seed", 0),
    ("model", "bpe_merges", 0), ("model", "sklearn_c", 1e-12), ("model", "sklearn_max_iter", 0),
    ("train", "lr_final_fraction", 0.0), ("model", "category_prior_weight", 0.0),
    ("model", "tfidf_prior_weight", 0.0), ("model", "tfidf_prior_sharpness", 0.0), ("model", "tfidf_min_weight", 0.0),
    ("train", "warmup_steps", 0), ("train", "warmup_fraction", 0.0), ("train", "weight_decay", 0.0),
    ("train", "grad_accum_steps", 1), ("model", "char_filters", 0), ("model", "window_stride", 0),
    ("model", "lora_rank", 0),
)
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
LR_SCHEDULES = ("cosine", "linear", "constant", "plateau")
DECODERS = ("argmax", "constrained", "crf")


def _check_decoder(experiment: Experiment) -> None:
    """`model.decoder` is known, and a CRF trains on the plain sentence likelihood, one tag per word."""
    model = experiment.model
    if model.decoder not in DECODERS:
        raise UserError(f"model.decoder={model.decoder!r}: use {', '.join(DECODERS)}")
    if model.decoder != "crf":
        return
    if experiment.train.loss != "ce":
        raise UserError(f"model.decoder=crf trains on the sentence's log-likelihood: "
                        f"train.loss={experiment.train.loss} (per-token weights or focusing) does not apply; leave "
                        "train.loss=ce or use model.decoder=constrained")
    if model.label_all_subtokens:
        raise UserError("model.decoder=crf reads one tag per word (its first sub-token): it cannot be combined with "
                        "model.label_all_subtokens=true")


def validate(experiment: Experiment) -> Experiment:
    """Refuse values no run can use, naming the key (`model.beam_size=0`, `train.epochs=0`, `nan`, ...)."""
    import math

    for section in SECTIONS:
        for key, value in dataclasses.asdict(getattr(experiment, section)).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"{section}.{key}={value}: must be a finite number")
    for section, key, lowest in LOWER_BOUNDS:
        value = getattr(getattr(experiment, section), key)
        if value < lowest:
            raise UserError(f"{section}.{key}={value}: must be at least {lowest}")
    from tfnlp.losses import LOSSES

    if experiment.data.preprocess not in ("", "lemma"):
        raise UserError(f"data.preprocess={experiment.data.preprocess!r}: use lemma, or leave it empty")
    if experiment.train.loss not in LOSSES:
        raise UserError(f"train.loss={experiment.train.loss!r}: use one of {', '.join(LOSSES)}")
    if experiment.train.precision not in PRECISIONS:
        raise UserError(f"train.precision={experiment.train.precision!r}: use one of {', '.join(PRECISIONS)}")
    train = experiment.train
    if train.lr_schedule not in LR_SCHEDULES:
        raise UserError(f"train.lr_schedule={train.lr_schedule!r}: use {', '.join(LR_SCHEDULES)}")
    if train.lr_schedule == "plateau" and (train.warmup_steps or train.warmup_fraction):
        raise UserError("train.lr_schedule=plateau takes no warm-up (train.warmup_steps / warmup_fraction): "
                        "use cosine, linear or constant with a warm-up")
    if not experiment.train.warmup_fraction < 1.0:
        raise UserError(f"train.warmup_fraction={experiment.train.warmup_fraction}: must be below 1")
    _check_decoder(experiment)
    if experiment.data.deidentify_lang not in ("fr", "en"):
        raise UserError(f"data.deidentify_lang={experiment.data.deidentify_lang!r}: use fr or en")
    if not experiment.model.dropout < 1.0:
        raise UserError(f"model.dropout={experiment.model.dropout}: must be below 1")
    return experiment
