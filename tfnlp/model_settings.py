"""Each model family's settings: a typed dataclass per family, with a one-line help and bounds per field.

An experiment's `[model]` table is one of these, chosen by `model.name`: the settings a family's
factories read, and nothing else, so that a key with no effect is refused instead of ignored
(`config.apply_overrides`). The families, the tasks they serve and their model names:

| family | task | models |
|---|---|---|
| `Seq2SeqCoderSettings` | seq2seq | char_seq2seq |
| `WordClassifierSettings` | classification | lstm, bilstm_conv, glove_bilstm |
| `StaticVectorClassifierSettings` | classification | mean_vectors_linear, mean_vectors_mlp |
| `TransformerClassifierSettings` | classification | bert |
| `BiLSTMTaggerSettings` | tagging | bilstm_tagger |
| `TransformerTaggerSettings` | tagging | bert_tagger, gpt_tagger |

This module is cheap to import (no TensorFlow): commands check settings before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from tfnlp.registry import Registry


def setting(default: Any, help: str, low: float | None = None, below: float | None = None,
            high: float | None = None, choices: tuple = ()) -> Any:
    """A dataclass field with its help line and bounds (`low` <= value <= `high`, value < `below`, value in
    `choices`): sizes have a ceiling, so that a slip of the keyboard is an error, not an out-of-memory crash."""
    return dataclasses.field(default=default, metadata={"help": help, "low": low, "below": below, "high": high,
                                                        "choices": choices})


DECODERS = ("argmax", "constrained", "crf")
CALIBRATIONS = ("temperature", "isotonic", "none")


@dataclass(frozen=True)
class ModelSettings:
    """What every family has: the factory's name. Subclasses add their own settings."""

    family: ClassVar[str] = ""
    task: ClassVar[str] = ""
    models: ClassVar[tuple[str, ...]] = ()
    # Training options (`[train]` keys) this family's fitting does not read: setting one is refused.
    unread_train: ClassVar[tuple[str, ...]] = ()

    name: str = setting("", "the model factory")

    @classmethod
    def describe(cls) -> str:
        """`the <family> family (models a, b)` for messages."""
        return f"the {cls.family} family ({', '.join(cls.models)})"

    @classmethod
    def fields(cls) -> dict[str, dataclasses.Field]:
        return {field.name: field for field in dataclasses.fields(cls)}


FOCAL = ("focal_gamma", "focal_alpha", "focal_beta")


@dataclass(frozen=True)
class ClassifierSettings(ModelSettings):
    """What every classifier family has: how its ranked, calibrated answers are given."""

    top_k: int = setting(5, "ranked labels each answer gives (top_labels, top_scores)", low=1, high=256)
    calibration: str = setting("temperature", "how scores are calibrated on the validation split: temperature, "
                                              "isotonic or none", choices=CALIBRATIONS)
    review_precision: float = setting(0.95, "precision the answers given without review reach, with 90% assurance "
                                            "from the validation split (needs_review below the threshold)",
                                      low=0.0, high=1.0)
    tfidf_fusion: str = setting("validation", "fuse the network with the TF-IDF logistic regression compiled into "
                                              "the graph, its weight chosen on the validation split (validation), "
                                              "or the network alone (off)", choices=("validation", "off"))
    tfidf_min_weight: float = setting(0.02, "TF-IDF weights smaller in magnitude are left out of the export",
                                      low=0.0)
    tfidf_max_weights: int = setting(2_000_000, "at most this many TF-IDF weights are exported, the largest in "
                                                "magnitude (12 bytes each)", low=1, high=100_000_000)


@dataclass(frozen=True)
class TaggerSettings(ModelSettings):
    """What every tagger family has: how its entities' confidences are calibrated, when a text needs review, and the
    shape of a character CNN."""

    calibration: str = setting("temperature", "how entity confidences are calibrated on the validation split: "
                                              "temperature, isotonic or none", choices=CALIBRATIONS)
    review_precision: float = setting(0.95, "entity precision the texts given without review reach, with 90% "
                                            "assurance from the validation split (needs_review when an entity is "
                                            "below the threshold)",
                                      low=0.0, high=1.0)
    # The character CNN's shape, for the families that read words' characters (`model.char_filters` > 0).
    char_embedding_dim: int = setting(30, "size of a character's embedding in the character CNN", low=1, high=1024)
    kernel_size: int = setting(3, "characters the character CNN reads at a time", low=1, high=64)


@dataclass(frozen=True)
class Seq2SeqCoderSettings(ModelSettings):
    """The character-level ICD-10 coder: word + character n-gram encoder, Bahdanau attention, LSTM decoder."""

    family: ClassVar[str] = "seq2seq coder"
    task: ClassVar[str] = "seq2seq"
    models: ClassVar[tuple[str, ...]] = ("char_seq2seq",)
    # The coder trains on the characters' cross-entropy (and the category head's): no other loss applies.
    unread_train: ClassVar[tuple[str, ...]] = ("loss", *FOCAL)

    name: str = setting("char_seq2seq", "the model factory", choices=models)
    vocab_size: int = setting(20000, "words of the encoder's vocabulary (adapted on the training texts)",
                              low=3, high=10000000)
    max_input_tokens: int = setting(48, "words read from each text (longer texts are cut)", low=1, high=4096)
    embedding_dim: int = setting(128, "size of a word's learnt embedding", low=1, high=4096)
    subword_buckets: int = setting(20000, "hash buckets of each word's character n-grams (0: none)",
                                   low=0, high=10000000)
    units: int = setting(128, "encoder BiLSTM units per direction", low=1, high=8192)
    decoder_units: int = setting(256, "decoder LSTM units", low=1, high=8192)
    char_embedding_dim: int = setting(32, "size of a code character's embedding in the decoder", low=1, high=1024)
    attention_units: int = setting(128, "size of the additive (Bahdanau) attention's projection", low=1, high=8192)
    dropout: float = setting(0.2, "dropout on embeddings and encoder outputs", low=0.0, below=1.0)
    max_output_length: int = setting(6, "most characters of a code (0: the longest known code)", low=0, high=64)
    beam_size: int = setting(5, "beam width of serving_default (1: greedy decoding only)", low=1, high=256)
    constrain: bool = setting(True, "write only codes of the code set (a prefix trie in the graph)")
    category_loss_weight: float = setting(0.5, "weight of the auxiliary category head's loss (0: no head)", low=0.0)
    category_rerank_weight: float = setting(0.0, "final codes rescored by this times the head's log P(category)",
                                            low=0.0)
    category_prior_weight: float = setting(1.0, "the head's log P(category) added as the category is written",
                                           low=0.0)
    tfidf_prior_weight: float = setting(2.0, "the in-graph TF-IDF SVM's log P(category), likewise (0: off)", low=0.0)
    tfidf_prior_sharpness: float = setting(10.0, "the SVM's scores times this are softmaxed into P(category)",
                                           low=0.0)
    tfidf_min_weight: float = setting(0.05, "SVM weights smaller in magnitude are left out of the export", low=0.0)
    top_k: int = setting(5, "ranked codes serving_default answers (top_codes, top_labels, top_confidences); at most "
                            "model.beam_size", low=1, high=256)
    codes_per_category: int = setting(2, "at most this many of the beam's codes share a category, so that the ranked "
                                         "codes span several categories (0: no limit)", low=0, high=256)
    calibration: str = setting("temperature", "how the ranked codes' scores become confidences, fitted on the "
                                              "validation split: temperature, isotonic or none",
                               choices=CALIBRATIONS)
    review_precision: float = setting(0.95, "category precision the answers given without review reach, with 90% "
                                            "assurance from the validation split (needs_review below the threshold)",
                                      low=0.0, high=1.0)


@dataclass(frozen=True)
class WordClassifierSettings(ClassifierSettings):
    """Keras classifiers over a word vocabulary: LSTM, BiLSTM + Conv1D, or the latter on frozen static vectors."""

    family: ClassVar[str] = "word classifier"
    task: ClassVar[str] = "classification"
    models: ClassVar[tuple[str, ...]] = ("lstm", "bilstm_conv", "glove_bilstm")

    name: str = setting("lstm", "the model factory", choices=models)
    vocab_size: int = setting(20000, "words of the vocabulary (adapted on the training texts)", low=3, high=10000000)
    max_input_tokens: int = setting(48, "words read from each text (longer texts are cut)", low=1, high=4096)
    embedding_dim: int = setting(128, "size of a word's learnt embedding (pretrained vectors bring theirs)",
                                 low=1, high=4096)
    units: int = setting(128, "LSTM units (per direction for the BiLSTM)", low=1, high=8192)
    dropout: float = setting(0.2, "dropout on embeddings and before the softmax", low=0.0, below=1.0)
    filters: int = setting(128, "Conv1D filters (bilstm_conv, glove_bilstm)", low=1, high=8192)
    kernel_size: int = setting(3, "Conv1D kernel width (bilstm_conv, glove_bilstm)", low=1, high=64)
    vectors: str = setting("", "pretrained word vectors: glove-6b-50d, fr-vectors or a GloVe / word2vec / fastText "
                               "file (empty: learnt embeddings; glove_bilstm needs them)")
    fine_tune_vectors: bool = setting(False, "train the pretrained vectors with the rest of the network (lstm, "
                                             "bilstm_conv; glove_bilstm keeps them frozen)")
    subword_buckets: int = setting(0, "hash buckets of each word's character n-grams, whose mean embedding is added "
                                      "to the word's (0: none)", low=0, high=10000000)


# The options a scikit-learn fit does not read: it has no epochs, optimizer, schedule, loss or strategy.
SKLEARN_UNREAD = ("epochs", "batch_size", "learning_rate", "patience", "lr_schedule", "lr_final_fraction",
                  "warmup_steps", "warmup_fraction", "weight_decay", "grad_accum_steps", "ema_momentum", "precision",
                  "jit_compile", "lr_patience", "lr_factor", "strategy", "shuffle_buffer", "monitor", "loss", *FOCAL)


@dataclass(frozen=True)
class StaticVectorClassifierSettings(ClassifierSettings):
    """The mean of a text's pretrained word vectors, classified by a model scikit-learn fits."""

    family: ClassVar[str] = "static-vector classifier"
    task: ClassVar[str] = "classification"
    models: ClassVar[tuple[str, ...]] = ("mean_vectors_linear", "mean_vectors_mlp")
    unread_train: ClassVar[tuple[str, ...]] = SKLEARN_UNREAD

    name: str = setting("mean_vectors_linear", "the model factory", choices=models)
    vocab_size: int = setting(50000, "words kept from the pretrained vectors", low=3, high=10000000)
    max_input_tokens: int = setting(48, "words read from each text (longer texts are cut)", low=1, high=4096)
    vectors: str = setting("glove-6b-50d", "pretrained word vectors: glove-6b-50d, fr-vectors or a GloVe / word2vec /"
                                           " fastText file")
    hidden_units: int = setting(256, "hidden layer of the MLP (mean_vectors_mlp)", low=1, high=65536)
    sklearn_c: float = setting(1.0, "inverse regularisation strength of the logistic regression", low=1e-12)
    sklearn_max_iter: int = setting(0, "most iterations of the estimator (0: 2,000 for the logistic regression, "
                                       "300 epochs for the MLP)", low=0)


@dataclass(frozen=True)
class TransformerClassifierSettings(ClassifierSettings):
    """A keras-hub BERT fine-tuned with a softmax head on its pooled output."""

    family: ClassVar[str] = "transformer classifier"
    task: ClassVar[str] = "classification"
    models: ClassVar[tuple[str, ...]] = ("bert",)

    name: str = setting("bert", "the model factory", choices=models)
    max_input_tokens: int = setting(64, "word pieces read from each text, [CLS] and [SEP] included", low=4, high=4096)
    dropout: float = setting(0.1, "dropout before the softmax", low=0.0, below=1.0)
    preset: str = setting("", "keras-hub preset handle or local preset folder (empty: the minilm asset)")
    lora_rank: int = setting(0, "low-rank adaptation of this rank: the backbone frozen but for its LoRA matrices "
                                "(0: full fine-tuning)", low=0, high=1024)
    lora_targets: str = setting("", "comma-separated layers LoRA adapts (empty: keras-hub's default, query and value)")


@dataclass(frozen=True)
class BiLSTMTaggerSettings(TaggerSettings):
    """Words (lower-cased embedding + a character CNN) -> BiLSTM -> tags, read by argmax, Viterbi or a CRF."""

    family: ClassVar[str] = "BiLSTM tagger"
    task: ClassVar[str] = "tagging"
    models: ClassVar[tuple[str, ...]] = ("bilstm_tagger",)

    name: str = setting("bilstm_tagger", "the model factory", choices=models)
    vocab_size: int = setting(30000, "lower-cased words of the vocabulary (the training text's most frequent)",
                              low=3, high=10000000)
    embedding_dim: int = setting(50, "size of a word's embedding (pretrained vectors bring theirs)", low=1, high=4096)
    units: int = setting(128, "BiLSTM units per direction", low=1, high=8192)
    dropout: float = setting(0.3, "dropout on the word features and before the tag scores", low=0.0, below=1.0)
    vectors: str = setting("", "pretrained vectors the word embedding starts from (glove-6b-50d, fr-vectors, a file;"
                               " empty: random)")
    char_filters: int = setting(50, "filters of the character CNN per word (0: no character features)",
                                low=0, high=8192)
    decoder: str = setting("crf", "how tags are read: argmax, constrained (Viterbi under BIO2) or crf (a linear-chain"
                                  " CRF trained on the sentence likelihood)", choices=DECODERS)


@dataclass(frozen=True)
class TransformerTaggerSettings(TaggerSettings):
    """A keras-hub backbone over sub-tokens (BERT from the minilm asset, or GPT-2), tags read on first sub-tokens."""

    family: ClassVar[str] = "transformer tagger"
    task: ClassVar[str] = "tagging"
    models: ClassVar[tuple[str, ...]] = ("bert_tagger", "gpt_tagger")

    name: str = setting("bert_tagger", "the model factory", choices=models)
    max_input_tokens: int = setting(128, "sub-tokens per window, special tokens included (longer texts are cut into "
                                         "windows)", low=1, high=4096)
    window_stride: int = setting(0, "sub-tokens between the starts of a long text's windows; below a window's room "
                                    "they overlap (0: side by side)", low=0, high=4096)
    dropout: float = setting(0.1, "dropout before the tag scores (and inside a fresh GPT-2)", low=0.0, below=1.0)
    preset: str = setting("", "keras-hub preset handle or local folder (empty: the minilm asset for bert_tagger, a "
                              "fresh GPT-2 for gpt_tagger)")
    embedding_dim: int = setting(256, "a fresh GPT-2's hidden size (its token embeddings' width)", low=1, high=4096)
    num_layers: int = setting(4, "a fresh GPT-2's transformer layers", low=1, high=64)
    bpe_merges: int = setting(4000, "merges of the byte-level BPE learnt for a fresh GPT-2", low=0, high=1000000)
    label_all_subtokens: bool = setting(False, "teach every sub-token of a word (later ones its I- tag), not the "
                                               "first alone")
    lora_rank: int = setting(0, "low-rank adaptation of this rank (0: full fine-tuning)", low=0, high=1024)
    lora_targets: str = setting("", "comma-separated layers LoRA adapts (empty: keras-hub's default, query and value)")
    decoder: str = setting("constrained", "how tags are read: argmax, constrained (Viterbi under BIO2) or crf",
                           choices=DECODERS)
    char_filters: int = setting(0, "filters of a character CNN over each sub-token's word, beside the backbone's "
                                   "states (0: none)", low=0, high=4096)
    vectors: str = setting("", "pretrained vectors of each sub-token's word beside the backbone's states "
                               "(glove-6b-50d, fr-vectors, a file; empty: none)")
    freeze_backbone: bool = setting(False, "keep the backbone's pretrained weights as they are and train what reads "
                                           "its states alone (the backbone as a feature extractor)")
    backbone_layers: int = setting(1, "the backbone's last transformer layers whose states the tags are read from, "
                                      "side by side (1: its output)", low=1, high=64)
    lstm_units: int = setting(0, "a BiLSTM of this many units a direction over the sub-tokens' features before the "
                                 "tag scores (0: none)", low=0, high=4096)


FAMILIES: tuple[type[ModelSettings], ...] = (
    Seq2SeqCoderSettings, WordClassifierSettings, StaticVectorClassifierSettings, TransformerClassifierSettings,
    BiLSTMTaggerSettings, TransformerTaggerSettings)
MODEL_FAMILIES: Registry[type[ModelSettings]] = Registry("model")
for _family in FAMILIES:
    for _name in _family.models:
        MODEL_FAMILIES.add(_name, _family)


def family_of(name: str) -> type[ModelSettings]:
    """The settings class of model `name`; UserError listing the known models."""
    return MODEL_FAMILIES.get(name)


def task_models(task: str) -> list[str]:
    """Every model name a task can train."""
    return [name for family in FAMILIES if family.task == task for name in family.models]


def settings(name: str, **values: Any) -> ModelSettings:
    """The settings of model `name`: its family's defaults, with `values`."""
    return family_of(name)(name=name, **values)


def carried_over(current: ModelSettings, name: str) -> ModelSettings:
    """`current` switched to model `name` of the same task: its family's defaults, keeping the values of the settings
    both families have."""
    family = family_of(name)
    if isinstance(current, family):
        return dataclasses.replace(current, name=name)
    shared = {key: getattr(current, key) for key in family.fields() if key in current.fields() and key != "name"}
    return family(name=name, **shared)
