"""Text classifier factories: raw strings in, class probabilities out.

Every factory builds a functional Keras model whose input is a batch of raw texts
(`tf.string`, shape [None]) and whose output is a softmax over the classes. The word
vocabulary (a `TextVectorization` adapted on the training texts, or fixed by pretrained
vectors) is the model's first layer, so training and serving share one preprocessing.

- `lstm`: embedding (masked) -> dropout -> LSTM -> dropout -> softmax.
- `bilstm_conv`: embedding -> bidirectional LSTM -> Conv1D -> masked global average -> softmax.
- `glove_bilstm`: `bilstm_conv` on a frozen embedding initialised from pretrained vectors.
- `lstm` and `bilstm_conv` may start their embedding from pretrained vectors (`model.vectors`, frozen unless
  `model.fine_tune_vectors`) and add each word's character n-grams to it (`model.subword_buckets`).
- `mean_vectors_linear`, `mean_vectors_mlp`: the average of the words' pretrained vectors fed to
  dense layers whose weights scikit-learn fits (LogisticRegression, MLPClassifier); see
  `tfnlp.tasks.classification`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from tfnlp.model_settings import (
    TransformerClassifierSettings,
    TransformerTaggerSettings,
    WordClassifierSettings,
)
from tfnlp.models.layers import AtLeastOneStep, DropMask, MaskedMean
from tfnlp.registry import Registry

Factory = Callable[..., keras.Model]
Layer = keras.layers.Layer
CLASSIFIERS: Registry[Factory] = Registry("classifier")


@keras.saving.register_keras_serializable(package="tfnlp")
class WordSubwordIds(keras.layers.Layer):
    """Raw texts [B] -> each word's hashed character n-grams [B, T, N] (0 = padding; `tfnlp.data.text.subword_ids`),
    for the same words, in the same steps, as the word vocabulary's ids (standardised, split on spaces, at most
    `max_tokens`, at least one step)."""

    def __init__(self, buckets: int, max_tokens: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.buckets, self.max_tokens = buckets, max_tokens

    def call(self, texts):
        import tensorflow as tf

        from tfnlp.data.text import split_words, subword_ids
        from tfnlp.models.layers import at_least_one_step

        words = split_words(texts, self.max_tokens)
        return at_least_one_step(tf.cast(subword_ids(words, self.buckets).to_tensor(0), tf.int32))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, None)

    def get_config(self) -> dict:
        return {**super().get_config(), "buckets": self.buckets, "max_tokens": self.max_tokens}


def _token_ids(vectorizer: keras.layers.TextVectorization, max_tokens: int,
               preprocess: Layer | None = None) -> tuple:
    """The text input and its word ids [B, T]: at most `max_tokens` words, and at least one (padded) step, so that
    a batch of empty texts still has a time step. `preprocess` (e.g. `Lemmatize`) runs first."""
    text = keras.Input(shape=(), dtype="string", name="text")
    ids = vectorizer(preprocess(text) if preprocess is not None else text)[:, :max_tokens]
    return text, AtLeastOneStep(name="at_least_one_word")(ids)


def _embedded_words(config: WordClassifierSettings, vectorizer: keras.layers.TextVectorization, text, ids,
                    vectors: np.ndarray | None, preprocess: Layer | None):
    """Each word's embedding [B, T, D] (masked), plus the mean embedding of its character n-grams when
    `model.subword_buckets` is set: a word the vocabulary lacks, or seen rarely, still reads as its pieces."""
    embedded = _embedding(config, vectorizer, vectors)(ids)
    if not config.subword_buckets:
        return embedded
    from tfnlp.models.seq2seq import MeanSubwordEmbedding

    subwords = WordSubwordIds(config.subword_buckets, config.max_input_tokens, name="subword_ids")(
        preprocess(text) if preprocess is not None else text)
    pieces = MeanSubwordEmbedding(config.subword_buckets, embedded.shape[-1], name="subword_embedding")(subwords)
    return keras.layers.Add(name="word_and_subwords")([embedded, pieces])


def _softmax(features, num_classes: int, dropout: float):
    return keras.layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(
        keras.layers.Dropout(dropout)(features))


@CLASSIFIERS.register("lstm")
def lstm_classifier(config: WordClassifierSettings, vectorizer: keras.layers.TextVectorization, num_classes: int,
                    vectors: np.ndarray | None = None, preprocess: Layer | None = None) -> keras.Model:
    """Embedding with masking, dropout, one LSTM layer, dropout, softmax."""
    text, ids = _token_ids(vectorizer, config.max_input_tokens, preprocess)
    embedded = _embedded_words(config, vectorizer, text, ids, vectors, preprocess)
    encoded = keras.layers.LSTM(config.units, name="lstm")(keras.layers.Dropout(config.dropout)(embedded))
    return keras.Model(text, _softmax(encoded, num_classes, config.dropout), name="lstm_classifier")


@CLASSIFIERS.register("bilstm_conv")
def bilstm_conv_classifier(config: WordClassifierSettings, vectorizer: keras.layers.TextVectorization, num_classes: int,
                           vectors: np.ndarray | None = None, preprocess: Layer | None = None) -> keras.Model:
    """Embedding, bidirectional LSTM, Conv1D over its states, global average over the real words, softmax."""
    text, ids = _token_ids(vectorizer, config.max_input_tokens, preprocess)
    embedded = keras.layers.Dropout(config.dropout)(_embedded_words(config, vectorizer, text, ids, vectors,
                                                                    preprocess))
    states = keras.layers.Bidirectional(keras.layers.LSTM(config.units, return_sequences=True), name="bilstm")(embedded)
    # Conv1D cannot read Keras masks: the mask is dropped before it, and the mean pools with the word mask
    # explicitly so that padding never enters it.
    convolved = keras.layers.Conv1D(config.filters, config.kernel_size, padding="same", activation="relu",
                                    name="conv")(DropMask(name="drop_mask")(states))
    pooled = MaskedMean(name="mean_over_words")(convolved, mask=ops.greater(ids, 0))
    return keras.Model(text, _softmax(pooled, num_classes, config.dropout), name="bilstm_conv_classifier")


@CLASSIFIERS.register("glove_bilstm")
def glove_bilstm_classifier(config: WordClassifierSettings, vectorizer: keras.layers.TextVectorization,
                            num_classes: int, vectors: np.ndarray | None = None,
                            preprocess: Layer | None = None) -> keras.Model:
    """`bilstm_conv` on a frozen embedding initialised from pretrained vectors."""
    if vectors is None:
        raise ValueError("glove_bilstm needs pretrained vectors")
    return bilstm_conv_classifier(config, vectorizer, num_classes, vectors, preprocess)


def _embedding(config: WordClassifierSettings, vectorizer: keras.layers.TextVectorization,
               vectors: np.ndarray | None) -> keras.layers.Embedding:
    if vectors is None:
        return keras.layers.Embedding(vectorizer.vocabulary_size(), config.embedding_dim, mask_zero=True,
                                      name="embedding")
    # glove_bilstm is the frozen-vector model by name; the others train the vectors when asked to.
    trainable = config.fine_tune_vectors and config.name != "glove_bilstm"
    return keras.layers.Embedding(vectors.shape[0], vectors.shape[1], mask_zero=True, trainable=trainable,
                                  embeddings_initializer=keras.initializers.Constant(vectors), name="embedding")


def mean_vectors_features(vectorizer: keras.layers.TextVectorization, vectors: np.ndarray, max_tokens: int,
                          preprocess: Layer | None = None) -> keras.Model:
    """Raw texts -> the mean of their known words' vectors ([B, D]); unknown words are left out of the mean."""
    text, ids = _token_ids(vectorizer, max_tokens, preprocess)
    embedded = keras.layers.Embedding(vectors.shape[0], vectors.shape[1], trainable=False,
                                      embeddings_initializer=keras.initializers.Constant(vectors),
                                      name="vectors")(ids)
    # Id 0 is padding and id 1 the out-of-vocabulary word: neither has a vector.
    return keras.Model(text, MaskedMean(name="mean_vector")(embedded, mask=ops.greater(ids, 1)), name="mean_vectors")


def dense_head(features: keras.Model, layers: list[tuple[np.ndarray, np.ndarray]], name: str) -> keras.Model:
    """`features` followed by fitted dense layers (ReLU between them, softmax last), weights as given."""
    output = features.output
    for index, (kernel, bias) in enumerate(layers):
        last = index == len(layers) - 1
        dense = keras.layers.Dense(kernel.shape[1], activation="softmax" if last else "relu",
                                   dtype="float32" if last else None,
                                   name="probabilities" if last else f"hidden_{index}")
        output = dense(output)
        dense.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return keras.Model(features.input, output, name=name)


def checked_preset(preset: str) -> str:
    """`model.preset` as given, refused with a UserError when it names a local folder that is not there."""
    from pathlib import Path

    from tfnlp.errors import UserError

    looks_local = "://" not in preset and ("/" in preset or preset.startswith("."))
    if looks_local and not Path(preset).is_dir():
        raise UserError(f"model.preset={preset}: no such folder (give a keras-hub preset folder or handle)")
    return preset


def bert_preset(preset: str) -> str:
    """A keras-hub preset handle or local preset folder; empty means the minilm asset (uncased MiniLM BERT)."""
    if preset:
        return checked_preset(preset)
    from tfnlp import assets

    return str(assets.find_file("minilm", "*/model/config.json").parent)


def adapted(backbone, config: TransformerClassifierSettings | TransformerTaggerSettings):
    """`backbone` with LoRA of rank `model.lora_rank` on `model.lora_targets` (keras-hub's `enable_lora`: every
    other backbone weight frozen); unchanged when the rank is 0."""
    from tfnlp.errors import UserError

    if not config.lora_rank:
        return backbone
    targets = [name for name in config.lora_targets.split(",") if name]
    backbone.enable_lora(config.lora_rank, targets or None)
    if not backbone.trainable_weights:
        raise UserError(f"model.lora_targets={config.lora_targets!r}: no layer of the backbone has that name; "
                        f"keras-hub's defaults are {', '.join(backbone.default_lora_layer_names())}")
    return backbone


@CLASSIFIERS.register("bert")
def bert_classifier(config: TransformerClassifierSettings, vectorizer=None, num_classes: int = 2,
                    vectors: np.ndarray | None = None, preprocess: Layer | None = None) -> keras.Model:
    """keras-hub BERT (word pieces, `model.max_input_tokens` of them) -> pooled output -> dropout -> softmax.

    The word-piece tokenizer is the model's first layer (tensorflow_text ops: the export loads after
    `import tensorflow_text`).
    """
    import keras_hub

    preset = bert_preset(config.preset)
    backbone = adapted(keras_hub.models.BertBackbone.from_preset(preset), config)
    tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=config.max_input_tokens,
                                                                   name="wordpieces")
    text = keras.Input(shape=(), dtype="string", name="text")
    pooled = backbone(preprocessor(preprocess(text) if preprocess is not None else text))["pooled_output"]
    return keras.Model(text, _softmax(pooled, num_classes, config.dropout), name="bert_classifier")
