"""Token tagger factories: scores over the tags for every token (or sub-token).

- `bilstm_tagger`: tokens [B, T] (strings) -> lower-cased word ids -> embedding (+ a character CNN
  per word) -> BiLSTM -> tag scores.
- `transformer_tagger`: a keras-hub backbone (BERT, or GPT-2, causal) (-> BiLSTM) -> dropout -> tag scores
  per sub-token; `tfnlp.tasks.subword_tagging` cuts words into sub-tokens and windows for it.

The scores are probabilities (softmax) for `model.decoder=argmax|constrained`, and emissions
passed through a `tfnlp.models.crf.CRF` layer for `model.decoder=crf`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfnlp.errors import UserError
from tfnlp.model_settings import BiLSTMTaggerSettings, TransformerTaggerSettings
from tfnlp.models.crf import CRF
from tfnlp.models.layers import Lowercase

MAX_WORD_CHARACTERS = 24  # a word's characters the character CNN reads (the longest words' prefix)
TOKEN_WORDS = "token_words"  # a transformer tagger's input with the word of each sub-token (`model.char_filters`)


def _scores_per_step(sequence, tags: Sequence[str], config: BiLSTMTaggerSettings | TransformerTaggerSettings):
    """Dropout, then a softmax over the tags per step, or (`model.decoder=crf`) emissions through a CRF layer."""
    crf = config.decoder == "crf"
    dense = keras.layers.Dense(len(tags), activation=None if crf else "softmax", name="tags",
                               dtype="float32")  # float32 under mixed precision
    scores = dense(keras.layers.Dropout(config.dropout)(sequence))
    return CRF(tags, name="crf")(scores) if crf else scores


@keras.saving.register_keras_serializable(package="tfnlp")
class CharacterCNN(keras.layers.Layer):
    """Words [B, T] (strings) -> a vector per word from its characters: embedding, Conv1D, max over positions.

    The characters keep their case (the word embedding is lower-cased): capitals, digits and
    suffixes are what a tagger learns from them. Unknown characters share one id.

    Args:
        characters: the known characters.
        embedding_dim: size of a character's embedding.
        filters: convolution filters (the word vector's size).
        kernel_size: characters read at a time.
    """

    def __init__(self, characters: Sequence[str], embedding_dim: int, filters: int, kernel_size: int,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.characters = list(characters)
        self.embedding_dim, self.filters, self.kernel_size = embedding_dim, filters, kernel_size
        # No characters at all (no training words): a space, which no token holds, keeps the lookup valid.
        self.lookup = keras.layers.StringLookup(vocabulary=self.characters or [" "], mask_token="")
        self.embedding = keras.layers.Embedding(self.lookup.vocabulary_size(), embedding_dim)
        self.convolution = keras.layers.Conv1D(filters, kernel_size, padding="same", activation="relu")

    def build(self, input_shape) -> None:
        self.embedding.build((None, MAX_WORD_CHARACTERS))
        self.convolution.build((None, MAX_WORD_CHARACTERS, self.embedding_dim))

    def call(self, words):
        shape = tf.shape(words)
        characters = tf.strings.unicode_split(tf.reshape(words, [-1]), "UTF-8", errors="replace")
        padded = characters.to_tensor("", shape=[None, MAX_WORD_CHARACTERS])
        ids = self.lookup(padded)
        features = self.convolution(self.embedding(ids))
        present = tf.cast(ids != 0, features.dtype)[:, :, None]
        # Max over the word's own characters (ReLU outputs: 0 is the floor, padding cannot win).
        pooled = tf.reduce_max(features * present, axis=1)
        return tf.reshape(pooled, tf.concat([shape, [self.filters]], axis=0))

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.filters)

    def get_config(self) -> dict:
        return {**super().get_config(), "characters": self.characters, "embedding_dim": self.embedding_dim,
                "filters": self.filters, "kernel_size": self.kernel_size}


def bilstm_tagger(config: BiLSTMTaggerSettings, vocabulary: Sequence[str], tags: Sequence[str],
                  initial_embeddings: np.ndarray | None = None,
                  characters: Sequence[str] = ()) -> keras.Model:
    """Tokens [B, T] (strings, "" padding) -> lower-cased word ids -> embedding (+ character CNN) -> BiLSTM ->
    tag scores per token.

    Args:
        config: `embedding_dim`, `units`, `dropout`, `decoder`; `char_filters` (0: no character features),
            `char_embedding_dim`, `kernel_size` for the character CNN.
        vocabulary: the known lower-cased words (padding and `[UNK]` come first).
        tags: the tag names in id order.
        initial_embeddings: rows for padding, unknown, then `vocabulary`: the embedding starts from
            pretrained vectors and is fine-tuned with the rest.
        characters: the characters the character CNN knows (with `config.char_filters`).
    """
    tokens = keras.Input(shape=(None,), dtype="string", name="tokens")
    lookup = keras.layers.StringLookup(vocabulary=list(vocabulary), mask_token="", name="words")
    ids = lookup(Lowercase(name="lowercase")(tokens))
    if initial_embeddings is None:
        embedding = keras.layers.Embedding(lookup.vocabulary_size(), config.embedding_dim, mask_zero=True,
                                           name="embedding")
    else:
        embedding = keras.layers.Embedding(*initial_embeddings.shape, mask_zero=True, name="embedding",
                                           embeddings_initializer=keras.initializers.Constant(initial_embeddings))
    words = embedding(ids)
    if config.char_filters:
        spelling = CharacterCNN(characters, config.char_embedding_dim, config.char_filters, config.kernel_size,
                                name="characters")(tokens)
        words = keras.layers.Concatenate(name="word_features")([words, spelling])
    states = keras.layers.Bidirectional(keras.layers.LSTM(config.units, return_sequences=True), name="bilstm")(
        keras.layers.Dropout(config.dropout)(words))
    return keras.Model(tokens, _scores_per_step(states, tags, config), name="bilstm_tagger")


def reads_words_of(config: TransformerTaggerSettings) -> bool:
    """Whether a transformer tagger of these settings reads each sub-token's word (`token_words`)."""
    return bool(config.char_filters or config.vectors)


def transformer_tagger(config: TransformerTaggerSettings, vocabulary_size: int, tags: Sequence[str],
                       characters: Sequence[str] = (), vocabulary: Sequence[str] = (),
                       initial_embeddings: np.ndarray | None = None) -> keras.Model:
    """A keras-hub backbone (+ a character CNN and word vectors of each sub-token's word) -> dropout -> tag scores
    per sub-token.

    `bert_tagger`: BertBackbone from the minilm asset or `model.preset`. `gpt_tagger`: GPT2Backbone
    (causal: a word's tag sees only the words before it) from `model.preset`, or a fresh GPT-2 of
    `model.num_layers` layers, `model.embedding_dim` wide, over `vocabulary_size` sub-tokens. With
    `model.char_filters`, the model also reads `token_words` [B, P] (strings: the word each sub-token
    comes from, "" for special tokens and padding) and puts that word's character CNN vector beside
    the backbone's state: the spelling an uncased sub-word vocabulary loses (capitals, digits). With
    `model.vectors`, the word's pretrained vector (`initial_embeddings`, rows for padding, unknown, then
    `vocabulary`; fine-tuned with the rest) goes beside it too. With `model.lstm_units`, a BiLSTM reads
    those features across the text before the tag scores (BERT-BiLSTM-CRF taggers). With
    `model.freeze_backbone`, the backbone's weights stay as pretrained: only what reads its states learns.
    `model.backbone_layers=N` reads the last N transformer layers' states side by side.
    """
    import keras_hub

    from tfnlp.models.classifiers import adapted, bert_preset, checked_preset

    if config.freeze_backbone and config.lora_rank:  # refused before the backbone's weights are read
        raise UserError("model.freeze_backbone keeps every backbone weight as it is, model.lora_rank adapts some: "
                        "give one of them")
    if config.name == "bert_tagger":
        backbone = keras_hub.models.BertBackbone.from_preset(bert_preset(config.preset))
    elif config.preset:
        backbone = keras_hub.models.GPT2Backbone.from_preset(checked_preset(config.preset))
    else:
        if config.lora_rank:
            raise UserError("model.lora_rank adapts a pretrained backbone; ner_gpt without model.preset is a fresh "
                            "GPT-2 trained from scratch (LoRA would freeze random weights): give model.preset=DIR "
                            "or leave model.lora_rank=0")
        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=vocabulary_size, num_layers=config.num_layers,
            num_heads=max(config.embedding_dim // 64, 1), hidden_dim=config.embedding_dim,
            intermediate_dim=4 * config.embedding_dim, dropout=config.dropout,
            max_sequence_length=config.max_input_tokens)
    backbone = adapted(backbone, config)
    if config.freeze_backbone:
        backbone.trainable = False
    if config.max_input_tokens > backbone.max_sequence_length:
        raise UserError(f"model.max_input_tokens={config.max_input_tokens} is over the backbone's "
                        f"{backbone.max_sequence_length} positions")
    sequence = _backbone_states(backbone, config.backbone_layers)
    inputs = backbone.input
    if reads_words_of(config):
        words = keras.Input(shape=(None,), dtype="string", name=TOKEN_WORDS)
        features = [sequence]
        if config.char_filters:
            features.append(CharacterCNN(characters, config.char_embedding_dim, config.char_filters,
                                         config.kernel_size, name="characters")(words))
        if config.vectors:
            features.append(_word_vectors(words, vocabulary, initial_embeddings))
        sequence = keras.layers.Concatenate(name="piece_features")(
            [features[0], *(keras.ops.cast(feature, sequence.dtype) for feature in features[1:])])
        inputs = {**backbone.input, TOKEN_WORDS: words}
    if config.lstm_units:
        # Padding sub-tokens are masked: the backward direction starts from a text's last sub-token.
        mask = keras.ops.cast(backbone.input["padding_mask"], "bool")
        sequence = keras.layers.Bidirectional(keras.layers.LSTM(config.lstm_units, return_sequences=True),
                                              name="bilstm")(keras.layers.Dropout(config.dropout)(sequence), mask=mask)
    return keras.Model(inputs, _scores_per_step(sequence, tags, config), name=config.name)


def _backbone_states(backbone, layers: int):
    """The backbone's output, or (`layers` > 1) its last `layers` transformer layers' states side by side: a
    backbone pretrained for sentence embeddings shapes its last layer for pooling, and the layers below keep more
    of each token (BERT's feature-based NER read its last four)."""
    if layers == 1:
        return backbone.output["sequence_output"] if isinstance(backbone.output, dict) else backbone.output
    if layers > backbone.num_layers:
        raise UserError(f"model.backbone_layers={layers} is over the backbone's {backbone.num_layers} layers")
    states = [backbone.get_layer(f"transformer_layer_{index}").output
              for index in range(backbone.num_layers - layers, backbone.num_layers)]
    return keras.layers.Concatenate(name="backbone_layers")(states)


def _word_vectors(words, vocabulary: Sequence[str], initial_embeddings: np.ndarray):
    """Words [B, T] (strings) -> their lower-cased word's embedding [B, T, D], started from pretrained vectors."""
    lookup = keras.layers.StringLookup(vocabulary=list(vocabulary), mask_token="", name="vector_words")
    embedding = keras.layers.Embedding(*initial_embeddings.shape, name="word_vectors",
                                       embeddings_initializer=keras.initializers.Constant(initial_embeddings))
    return embedding(lookup(Lowercase(name="vector_lowercase")(words)))
