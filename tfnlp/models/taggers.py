"""Token tagger factories: a probability over the tags for every token (or sub-token).

- `bilstm_tagger`: tokens [B, T] (strings) -> lower-cased word ids -> embedding -> BiLSTM -> softmax.
- `transformer_tagger`: a keras-hub backbone (BERT, or GPT-2, causal) -> dropout -> softmax per
  sub-token; `tfnlp.tasks.subword_tagging` cuts words into sub-tokens and windows for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from tfnlp.config import ModelConfig
from tfnlp.errors import UserError
from tfnlp.models.layers import Lowercase

WORD_TAGGERS = ("bilstm_tagger",)
SUBWORD_TAGGERS = ("bert_tagger", "gpt_tagger")
TAGGERS = (*WORD_TAGGERS, *SUBWORD_TAGGERS)


def _softmax_per_step(sequence, num_tags: int, dropout: float):
    tags = keras.layers.Dense(num_tags, activation="softmax", name="tags", dtype="float32")  # float32 under mixed
    return tags(keras.layers.Dropout(dropout)(sequence))


def bilstm_tagger(config: ModelConfig, vocabulary: Sequence[str], num_tags: int,
                  initial_embeddings: np.ndarray | None = None) -> keras.Model:
    """Tokens [B, T] (strings, "" padding) -> lower-cased word ids -> embedding -> BiLSTM -> softmax per token.

    Args:
        config: `embedding_dim`, `units`, `dropout`.
        vocabulary: the known lower-cased words (padding and `[UNK]` come first).
        num_tags: the size of the tag vocabulary.
        initial_embeddings: rows for padding, unknown, then `vocabulary`: the embedding starts from
            pretrained vectors and is fine-tuned with the rest.
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
    states = keras.layers.Bidirectional(keras.layers.LSTM(config.units, return_sequences=True), name="bilstm")(
        keras.layers.Dropout(config.dropout)(embedding(ids)))
    return keras.Model(tokens, _softmax_per_step(states, num_tags, config.dropout), name="bilstm_tagger")


def transformer_tagger(config: ModelConfig, vocabulary_size: int, num_tags: int) -> keras.Model:
    """A keras-hub backbone -> dropout -> softmax per sub-token.

    `bert_tagger`: BertBackbone from the minilm asset or `model.preset`. `gpt_tagger`: GPT2Backbone
    (causal: a word's tag sees only the words before it) from `model.preset`, or a fresh GPT-2 of
    `model.num_layers` layers, `model.embedding_dim` wide, over `vocabulary_size` sub-tokens.
    """
    import keras_hub

    from tfnlp.models.classifiers import bert_preset, checked_preset

    if config.name == "bert_tagger":
        backbone = keras_hub.models.BertBackbone.from_preset(bert_preset(config.preset))
    elif config.preset:
        backbone = keras_hub.models.GPT2Backbone.from_preset(checked_preset(config.preset))
    else:
        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=vocabulary_size, num_layers=config.num_layers,
            num_heads=max(config.embedding_dim // 64, 1), hidden_dim=config.embedding_dim,
            intermediate_dim=4 * config.embedding_dim, dropout=config.dropout,
            max_sequence_length=config.max_input_tokens)
    if config.max_input_tokens > backbone.max_sequence_length:
        raise UserError(f"model.max_input_tokens={config.max_input_tokens} is over the backbone's "
                        f"{backbone.max_sequence_length} positions")
    sequence = backbone.output["sequence_output"] if isinstance(backbone.output, dict) else backbone.output
    return keras.Model(backbone.input, _softmax_per_step(sequence, num_tags, config.dropout), name=config.name)
