"""Transformer token taggers (keras-hub BERT and GPT-2): sub-tokens, windows, the first-piece rule.

Words are cut into sub-tokens by the model's keras-hub tokenizer. A word's tag is taught on its
first sub-token and read from it; the word's other sub-tokens weigh nothing in the loss, unless
`model.label_all_subtokens`, which teaches them the word's `I-` tag.

Texts longer than a window (`model.max_input_tokens` sub-tokens, special tokens included) are cut
into several windows at word boundaries, never truncated. To cut them in the graph without a loop,
a word keeps at most `max_word_pieces` sub-tokens (the dropped tail of a very long word carries no
label) and window k takes the words whose first piece is in [k * step, k * step + span), with
`span = room - max_word_pieces + 1`: a window then never holds more than `room` sub-tokens. By
default `step = span` (each word in one window); `model.window_stride` below it makes windows
overlap, and each word is read from the window where it has the most context on both sides. The
same code cuts the training windows (an overlapped word is taught in each of its windows), the
evaluation windows and the served ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfnlp.data.records import TaggedSentence
from tfnlp.errors import UserError
from tfnlp.model_settings import TransformerTaggerSettings
from tfnlp.models.layers import at_least_one_step
from tfnlp.models.taggers import TOKEN_WORDS
from tfnlp.tasks.base import bucket_by_length, epoch_shuffle

MAX_WORD_PIECES = 16


class Windows(NamedTuple):
    """Sub-tokens of a batch of texts cut into windows.

    Attributes:
        pieces: sub-token ids per window, [windows, (pieces)], special tokens not yet added.
        piece_word: the (flat) word index of each sub-token, in window order.
        piece_is_first: whether each sub-token is its word's first.
        word_window: the window of each (flat) word.
        word_position: the position of each word's first sub-token in its window.
    """

    pieces: tf.RaggedTensor
    piece_word: tf.Tensor
    piece_is_first: tf.Tensor
    word_window: tf.Tensor
    word_position: tf.Tensor


class SubwordTokenizer(tf.Module):
    """A keras-hub tokenizer applied word by word, with the special tokens its backbone expects.

    Call its methods inside a graph (`tf.function`, tf.data): eagerly, keras-hub tokenizers take a
    pure-Python path that returns lists.

    Args:
        tokenizer: a keras-hub `BertTokenizer` or `GPT2Tokenizer`.
        kind: `bert` (`[CLS] ... [SEP]`, segment ids) or `gpt` (no special tokens; words after a
            space are tokenised with that space, as GPT-2 saw them in pretraining).
        window: sub-tokens per window, special tokens included.
    """

    def __init__(self, tokenizer, kind: str, window: int, window_stride: int = 0) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.kind = kind
        if kind == "bert":
            self.specials = (tokenizer.cls_token_id, tokenizer.sep_token_id)
            self.unknown_id, self.pad_id = tokenizer.token_to_id("[UNK]"), tokenizer.pad_token_id
        else:
            self.specials, self.unknown_id, self.pad_id = (), tokenizer.end_token_id, 0
        room = window - len(self.specials)
        if room < 2:
            raise UserError(f"model.max_input_tokens={window} leaves no room for sub-tokens; use 16 or more")
        self.max_word_pieces = min(MAX_WORD_PIECES, max(room // 2, 1))
        self.span = room - self.max_word_pieces + 1  # first-piece positions a window holds
        if window_stride > self.span:
            raise UserError(f"model.window_stride={window_stride}: windows of model.max_input_tokens={window} "
                            f"hold the words starting in {self.span} sub-token positions; a stride above that "
                            "would skip words")
        self.step = window_stride or self.span

    def word_pieces(self, words: tf.RaggedTensor, spaced: tf.RaggedTensor) -> tf.RaggedTensor:
        """Words [B, (T)] -> sub-token ids per (flat) word, [B*T, (1..max_word_pieces)].

        A word the tokenizer returns nothing for reads as the unknown token, so every word has a first piece.
        """
        flat = words.flat_values
        if self.kind == "gpt":
            flat = tf.where(spaced.flat_values, tf.strings.join([" ", flat]), flat)
        pieces = tf.cast(self.tokenizer(flat), tf.int32)
        filler = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(flat)[0], 1], tf.constant(self.unknown_id, tf.int32)))
        padded = tf.concat([pieces, filler], axis=1)
        keep = tf.clip_by_value(pieces.row_lengths(), 1, self.max_word_pieces)
        return tf.ragged.boolean_mask(padded, tf.ragged.range(padded.row_lengths()) < keep[:, None])

    def windows(self, words: tf.RaggedTensor, spaced: tf.RaggedTensor) -> Windows:
        """Cut the sub-tokens of each text [B, (T)] into windows at word boundaries (see the module docstring).

        Window k of a text holds the words whose first piece sits in [k * step, k * step + span): one window
        per word when `step == span` (the default), several overlapping ones when `window_stride` is smaller.
        A word is read from the window where it has the most context (the most pieces on its shorter side).
        """
        pieces = self.word_pieces(words, spaced)
        counts = pieces.row_lengths()
        word_text = words.value_rowids()
        # Position of each word's first piece within its text, and each text's piece count.
        before = tf.cumsum(counts, exclusive=True)
        text_offset = tf.gather(tf.concat([before, [0]], axis=0), words.row_starts())
        first_position = before - tf.gather(text_offset, word_text)
        # Every (word, window) pair: the windows whose range holds the word's first piece.
        last = first_position // self.step
        first = tf.maximum((first_position - self.span) // self.step + 1, 0)
        pair_k = tf.ragged.range(first, last + 1)
        pair_word = pair_k.value_rowids()
        windows_per_text = tf.maximum(tf.math.unsorted_segment_max(last, word_text, words.nrows()), -1) + 1
        window_base = tf.cumsum(windows_per_text, exclusive=True)
        pair_window = tf.gather(tf.gather(window_base, word_text), pair_word) + pair_k.flat_values
        # Windows in order, words in text order within each (a stable sort keeps the pairs' word order).
        order = tf.argsort(pair_window, stable=True)
        sorted_word, sorted_window = tf.gather(pair_word, order), tf.gather(pair_window, order)
        chosen = tf.gather(pieces, sorted_word)
        window_count = tf.reduce_sum(windows_per_text)
        windowed = tf.RaggedTensor.from_value_rowids(
            chosen.flat_values, tf.repeat(sorted_window, chosen.row_lengths()), nrows=window_count)
        piece_word = tf.repeat(sorted_word, chosen.row_lengths())
        piece_is_first = tf.ragged.range(chosen.row_lengths()).flat_values == 0
        # The pair each word is read from: the most context on its shorter side, the earliest window on ties.
        # Context: the window's pieces before the word and after its last piece.
        position, size = tf.gather(first_position, sorted_word), tf.gather(counts, sorted_word)
        window_first = tf.math.unsorted_segment_min(position, sorted_window, window_count)
        window_end = tf.math.unsorted_segment_max(position + size, sorted_window, window_count)
        context = tf.minimum(position - tf.gather(window_first, sorted_window),
                             tf.gather(window_end, sorted_window) - position - size)
        word_count = tf.shape(first_position, out_type=tf.int64)[0]
        best = tf.math.unsorted_segment_max(context, sorted_word, word_count)
        rank = tf.range(tf.shape(sorted_word, out_type=tf.int64)[0])
        candidates = tf.where(context == tf.gather(best, sorted_word), rank, tf.int64.max)
        read_from = tf.math.unsorted_segment_min(candidates, sorted_word, word_count)
        word_window = tf.gather(sorted_window, read_from)
        word_position = tf.gather(chosen.row_starts(), read_from) - tf.gather(windowed.row_starts(), word_window)
        return Windows(windowed, piece_word, piece_is_first, word_window, word_position)

    def model_inputs(self, pieces: tf.RaggedTensor, words: tf.RaggedTensor | None = None) -> dict[str, tf.Tensor]:
        """Windows of sub-tokens [W, (P)] -> the backbone's padded inputs, special tokens added; with `words` (the
        word of each sub-token, `piece_words`), the model's `token_words` too."""
        return _inputs(self.kind, self.with_specials(pieces, *self.specials).to_tensor(self.pad_id),
                       self.with_specials(tf.ones_like(pieces), 1, 1).to_tensor(0),
                       None if words is None else self.with_specials(words, "", "").to_tensor(""))

    def with_specials(self, values: tf.RaggedTensor, start=None, end=None) -> tf.RaggedTensor:
        """Per-sub-token values [W, (P)] with `start` / `end` where the model's special tokens go (BERT)."""
        if not self.specials:
            return values
        rows = values.nrows()
        column = [tf.RaggedTensor.from_tensor(tf.fill([rows, 1], tf.constant(value, values.dtype)))
                  for value in (start, end)]
        return tf.concat([column[0], values, column[1]], axis=1)

    @property
    def vocabulary_size(self) -> int:
        """Sub-tokens the backbone's embedding needs rows for."""
        return int(self.tokenizer.vocabulary_size())

    @property
    def prefix(self) -> int:
        """Special tokens before a window's first sub-token."""
        return len(self.specials) // 2


def space_before(words_starts: tf.RaggedTensor, texts: tf.Tensor) -> tf.RaggedTensor:
    """Whether each word (given by its character start in its text) follows whitespace."""
    rows = tf.gather(texts, words_starts.value_rowids())
    starts = words_starts.flat_values
    position = tf.maximum(starts - 1, 0)
    previous = tf.strings.substr(rows, position, tf.ones_like(position), unit="UTF8_CHAR")
    spaced = (starts > 0) & tf.strings.regex_full_match(previous, r"\s")
    return words_starts.with_flat_values(spaced)


def sentence_spacing(sentences: Sequence[TaggedSentence]) -> list[list[bool]]:
    """Per word of each sentence: does whitespace precede it in the sentence's text (all but the first when the
    offsets are unknown)."""
    spacing = []
    for sentence in sentences:
        if sentence.offsets and sentence.text:
            spacing.append([start > 0 and sentence.text[start - 1].isspace() for start, _ in sentence.offsets])
        else:
            spacing.append([index > 0 for index in range(len(sentence.tokens))])
    return spacing


def make_tokenizer(config: TransformerTaggerSettings, training_texts: Sequence[str]) -> SubwordTokenizer:
    """The sub-word tokenizer of `config.name`: BERT's word pieces from the minilm asset or `model.preset`; GPT-2's
    byte-level BPE from `model.preset`, or learnt from `training_texts` (`model.bpe_merges` merges) when none is
    given."""
    import keras_hub

    from tfnlp.data import bpe
    from tfnlp.models.classifiers import bert_preset, checked_preset

    if config.name == "bert_tagger":
        tokenizer = keras_hub.models.BertTokenizer.from_preset(bert_preset(config.preset))
    elif config.preset:
        tokenizer = keras_hub.models.GPT2Tokenizer.from_preset(checked_preset(config.preset))
    else:
        vocabulary, merges = bpe.learn_merges(bpe.pre_split(training_texts), config.bpe_merges)
        tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=merges)
    return SubwordTokenizer(tokenizer, "bert" if config.name == "bert_tagger" else "gpt", config.max_input_tokens,
                            config.window_stride)


def piece_words(words: tf.RaggedTensor, windows: Windows) -> tf.RaggedTensor:
    """The word each sub-token of `windows` comes from: [W, (P)] strings."""
    return windows.pieces.with_flat_values(tf.gather(words.flat_values, windows.piece_word))


def reads_words(model: keras.Model) -> bool:
    """Whether a transformer tagger also reads each sub-token's word (`model.char_filters`, `model.vectors`)."""
    return isinstance(model.input, dict) and TOKEN_WORDS in model.input


def word_scores(model: keras.Model, tokenizer: SubwordTokenizer, words: tf.RaggedTensor,
                spaced: tf.RaggedTensor) -> tf.Tensor:
    """Tag scores of each word, read on its first sub-token: [B, T, tags], T >= 1, zeros past a text's end."""
    windows = tokenizer.windows(words, spaced)
    scores = model(tokenizer.model_inputs(windows.pieces, piece_words(words, windows) if reads_words(model) else None),
                   training=False)
    at = tf.stack([windows.word_window, windows.word_position + tokenizer.prefix], axis=-1)
    per_word = words.with_flat_values(tf.gather_nd(scores, at))
    return at_least_one_step(per_word.to_tensor(0.0))


def training_windows(tokenizer: SubwordTokenizer, words: tf.RaggedTensor, spaced: tf.RaggedTensor,
                     tags: tf.RaggedTensor, weights: tf.RaggedTensor, inside: tf.Tensor,
                     label_all_subtokens: bool) -> tuple[tf.RaggedTensor, ...]:
    """Windows of sub-token ids with their labels, weights and words ([W, (P)] each, special tokens not yet added).

    `inside` maps each tag id to the tag later sub-tokens learn with `label_all_subtokens` (B-X -> I-X).
    """
    windows = tokenizer.windows(words, spaced)
    word_tags = tf.gather(tags.flat_values, windows.piece_word)
    word_weights = tf.gather(weights.flat_values, windows.piece_word)
    if label_all_subtokens:
        labels = tf.where(windows.piece_is_first, word_tags, tf.gather(inside, word_tags))
        piece_weights = word_weights
    else:
        labels = tf.where(windows.piece_is_first, word_tags, 0)
        piece_weights = tf.where(windows.piece_is_first, word_weights, 0.0)
    return (windows.pieces, windows.pieces.with_flat_values(labels), windows.pieces.with_flat_values(piece_weights),
            piece_words(words, windows))


def inside_tags(tags: Sequence[str]) -> np.ndarray:
    """Tag id -> the id later sub-tokens of a word so tagged learn: `B-X` -> `I-X`, others unchanged."""
    index = {tag: position for position, tag in enumerate(tags)}
    return np.array([index.get("I-" + tag[2:], position) if tag.startswith("B-") else position
                     for position, tag in enumerate(tags)], dtype=np.int32)


BUCKET_BOUNDARIES = (16, 24, 32, 48, 64, 96, 128, 192, 256)


def window_dataset(tokenizer: SubwordTokenizer, sentences: Sequence[TaggedSentence], tag_ids: list[list[int]],
                   token_weights: list[list[float]], inside: np.ndarray, label_all_subtokens: bool, batch_size: int,
                   shuffle_seed: int | None, epoch: tf.Variable | None = None,
                   with_words: bool = False) -> tf.data.Dataset:
    """Training or validation batches of windows: (backbone inputs, labels, weights), each [B, P].

    Windows of similar length are batched together (less padding: a transformer's cost grows with
    it); `shuffle_seed` None keeps the windows in order (validation). `with_words` adds each
    sub-token's word to the inputs (`token_words`, for `model.char_filters` and `model.vectors`).
    """
    words = tf.ragged.constant([list(sentence.tokens) for sentence in sentences], dtype=tf.string)
    spaced = tf.ragged.constant(sentence_spacing(sentences), dtype=tf.bool)
    tags = tf.ragged.constant(tag_ids, dtype=tf.int32)
    weights = tf.ragged.constant(token_weights, dtype=tf.float32)
    pieces, labels, piece_weights, words_of_pieces = tf.function(training_windows)(
        tokenizer, words, spaced, tags, weights, tf.constant(inside), label_all_subtokens)
    rows = [tokenizer.with_specials(pieces, *tokenizer.specials), tokenizer.with_specials(tf.ones_like(pieces), 1, 1),
            tokenizer.with_specials(labels, 0, 0), tokenizer.with_specials(piece_weights, 0.0, 0.0)]
    padding = [tokenizer.pad_id, 0, 0, 0.0]
    if with_words:  # carried through shuffling and batching only when the model reads them
        rows.append(tokenizer.with_specials(words_of_pieces, "", ""))
        padding.append("")
    lengths = rows[0].row_lengths().numpy()
    splits, values = rows[0].row_splits, [row.flat_values for row in rows]
    # Windows as dense rows of different lengths (padded_batch refuses ragged elements).
    dataset = tf.data.Dataset.range(len(lengths)).map(
        lambda index: tuple(value[splits[index]:splits[index + 1]] for value in values))
    if shuffle_seed is not None:
        dataset = epoch_shuffle(dataset, len(lengths), len(lengths), shuffle_seed, epoch)
    boundaries = [bound + 1 for bound in BUCKET_BOUNDARIES if bound < lengths.max(initial=1)]
    dataset = bucket_by_length(dataset, lengths, boundaries, batch_size, lambda ids, *_: tf.shape(ids)[0],
                               padding_values=tuple(padding))
    return dataset.map(
        lambda ids, mask, y, w, *words: (_inputs(tokenizer.kind, ids, mask, *words), y, w)).prefetch(tf.data.AUTOTUNE)


def _inputs(kind: str, token_ids: tf.Tensor, padding_mask: tf.Tensor,
            words: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    if kind == "bert":
        inputs["segment_ids"] = tf.zeros_like(token_ids)
    if words is not None:
        inputs[TOKEN_WORDS] = words
    return inputs
