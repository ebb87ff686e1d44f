"""A byte-level BPE vocabulary (GPT-2's form) learnt from a corpus, for keras-hub's `GPT2Tokenizer`.

GPT-2 maps every byte to a printable character (`byte_symbols`), so a word starting with a
space begins with `Ġ`; merges are learnt (by Hugging Face `tokenizers`) over the pieces GPT-2's own
pre-splitting makes (keras-hub's `split_strings_for_bpe`), so the tokenizer meets exactly the
pieces it was learnt on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

END_OF_TEXT = "<|endoftext|>"


def byte_symbols() -> dict[int, str]:
    """GPT-2's byte -> character table: printable bytes map to themselves, the others to chr(256 + n)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def pre_split(texts: Iterable[str]) -> Counter:
    """How often each GPT-2 pre-split piece occurs in `texts` (the pieces the tokenizer merges within)."""
    import tensorflow as tf
    from keras_hub.src.tokenizers.byte_pair_tokenizer import split_strings_for_bpe

    texts = list(texts)
    counts: Counter = Counter()
    for start in range(0, len(texts), 4096):
        pieces = split_strings_for_bpe(tf.constant(texts[start:start + 4096])).flat_values.numpy()
        counts.update(piece.decode("utf-8", "replace") for piece in pieces)
    return counts


def learn_merges(piece_counts: Counter, merges: int) -> tuple[dict[str, int], list[str]]:
    """Byte-level BPE learnt by Hugging Face `tokenizers` (`BpeTrainer`) over GPT-2's pre-split pieces.

    The pieces come from keras-hub's own pre-splitting (`pre_split`), and `tokenizers`' `ByteLevel`
    pre-tokenizer runs without its regex (`use_regex=False`): it maps each piece's bytes to GPT-2's
    symbols and splits nothing, so the merges are learnt on exactly the pieces keras-hub's tokenizer
    meets (its regex and `tokenizers`' differ on some Unicode classes).

    Args:
        piece_counts: pre-split pieces and their counts (`pre_split`).
        merges: how many merges to learn (fewer when no pair occurs twice).

    Returns:
        (vocabulary token -> id with `<|endoftext|>` at 0, then the 256 byte symbols, then one token
        per merge; merges as `"a b"` strings in rank order), as `GPT2Tokenizer` takes them.
    """
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=1 + len(alphabet) + merges, min_frequency=2,
                                  special_tokens=[END_OF_TEXT], initial_alphabet=alphabet, show_progress=False)
    tokenizer.train_from_iterator(([piece] * count for piece, count in piece_counts.items()), trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    learnt = [merge if isinstance(merge, str) else " ".join(merge) for merge in model["merges"]][:merges]
    vocabulary = {END_OF_TEXT: 0}
    for token in [*byte_symbols().values(), *(merge.replace(" ", "") for merge in learnt)]:
        vocabulary.setdefault(token, len(vocabulary))
    return vocabulary, learnt
