"""In-graph pieces of a token tagger's export: tokens with character offsets, and BIO tags -> entities.

Both run inside the serving signature, so a served tagger takes raw text and answers entities
with character offsets into that text. The token pattern is the PubTator reader's
(`tfnlp.data.pubtator.TOKEN`: runs of letters and digits, or one other character), so a model
trained on PubTator sentences reads served text the same way.
"""

from __future__ import annotations

import tensorflow as tf

# tfnlp.data.pubtator.TOKEN in RE2 syntax: letters/digits runs, or any single non-space character.
TOKEN_PATTERN = r"[\pL\pN]+|[^\pL\pN\s]"


def tokenize_with_offsets(texts: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor, tf.RaggedTensor]:
    """Raw texts [B] -> tokens, character starts and character ends, each [B, (T)].

    Offsets count Unicode characters (not bytes), as Python's `str` slicing does.
    """
    import tensorflow_text as tf_text

    # Split on whitespace and keep every token the pattern matches as its own piece.
    tokens, byte_starts, byte_ends = tf_text.regex_split_with_offsets(texts, r"\s+|" + TOKEN_PATTERN, TOKEN_PATTERN)
    characters = tf.strings.unicode_split_with_offsets(texts, "UTF-8")[1]  # byte offset of each character
    starts = _byte_to_char(characters, byte_starts)
    ends = _byte_to_char(characters, byte_ends)
    return tokens, starts, ends


def _byte_to_char(character_bytes: tf.RaggedTensor, byte_offsets: tf.RaggedTensor) -> tf.RaggedTensor:
    """Character index of each byte offset (a byte offset at the end of the text maps to its length)."""
    table = character_bytes.to_tensor(default_value=tf.int64.max)
    found = tf.searchsorted(table, byte_offsets.to_tensor(default_value=0), side="left")
    return tf.RaggedTensor.from_tensor(found, lengths=byte_offsets.row_lengths())


def entities_from_tags(tags: tf.Tensor, starts: tf.Tensor, ends: tf.Tensor, texts: tf.Tensor, lengths: tf.Tensor,
                       token_scores: tuple[tf.Tensor, tf.Tensor, tf.Tensor] | None = None) -> dict[str, tf.Tensor]:
    """BIO tags [B, T] (strings) -> padded entities of each text: type, start, end (characters) and text.

    An entity starts at `B-X`, or at an `I-X` that does not continue an `X` entity (lenient
    IOB1 reading), and runs over the following `I-X` tags. Padding: type and text "", offsets -1.
    With `token_scores` (first, inner, last) [B, T] each, also `entity_log_score` [B, E]: first at the
    entity's first token + inner at its other tokens + last at its last token (a span's log probability:
    `tfnlp.models.crf.span_log_scores`, or the sum of its tokens' log-probabilities); 0 for padding.
    """
    batch, steps = tf.shape(tags)[0], tf.shape(tags)[1]
    valid = tf.sequence_mask(lengths, steps)
    tagged = valid & tf.strings.regex_full_match(tags, r"[BI]-.+")
    kind = tf.where(tagged, tf.strings.regex_replace(tags, r"^[BI]-", ""), "")
    previous = tf.pad(kind[:, :-1], [[0, 0], [1, 0]])
    begins = (kind != "") & (tf.strings.substr(tags, 0, 1) == "B") | ((kind != "") & (kind != previous))
    inside = kind != ""
    # Entity number of each token: a running count of begins, kept only on tokens inside an entity.
    number = tf.where(inside, tf.cumsum(tf.cast(begins, tf.int32), axis=1) - 1, -1)
    count = tf.reduce_max(number, axis=1) + 1
    width = tf.maximum(tf.reduce_max(count), 0)
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(number))
    flat = tf.boolean_mask(tf.stack([rows, number], axis=-1), inside)
    segment = flat[:, 0] * width + flat[:, 1]
    total = batch * width
    entity_start = tf.math.unsorted_segment_min(tf.boolean_mask(starts, inside), segment, total)
    entity_end = tf.math.unsorted_segment_max(tf.boolean_mask(ends, inside), segment, total)
    first_kind = tf.boolean_mask(kind, begins & inside)
    begin_flat = tf.boolean_mask(tf.stack([rows, number], axis=-1), begins & inside)
    entity_type = tf.scatter_nd(begin_flat, first_kind, tf.stack([batch, width]))
    present = tf.sequence_mask(count, width)
    scored = {}
    if token_scores is not None:
        first, inner, last_scores = token_scores
        following = tf.pad(number[:, 1:], [[0, 0], [0, 1]], constant_values=-1)
        ends_entity = inside & tf.not_equal(following, number)
        values = tf.where(begins, first, inner) + tf.where(ends_entity, last_scores, 0.0)
        summed = tf.math.unsorted_segment_sum(tf.boolean_mask(values, inside), segment, total)
        scored["entity_log_score"] = tf.where(present, tf.reshape(summed, [batch, width]), 0.0)
    entity_start = tf.where(present, tf.reshape(entity_start, [batch, width]), -1)
    entity_end = tf.where(present, tf.reshape(entity_end, [batch, width]), -1)
    text_rows = tf.broadcast_to(texts[:, None], tf.shape(entity_start))
    entity_text = tf.where(present, tf.strings.substr(text_rows, tf.maximum(entity_start, 0),
                                                      tf.maximum(entity_end - entity_start, 0), unit="UTF8_CHAR"), "")
    return {"entity_type": entity_type, "entity_start": entity_start, "entity_end": entity_end,
            "entity_text": entity_text, **scored}
