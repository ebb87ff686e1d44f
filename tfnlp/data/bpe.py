"""A byte-level BPE vocabulary (GPT-2's form) learnt from a corpus, for keras-hub's `GPT2Tokenizer`.

GPT-2 maps every byte to a printable character (`byte_symbols`), so a word starting with a
space begins with `Ġ`; merges are learnt over the pieces GPT-2's own pre-splitting makes
(keras-hub's `split_strings_for_bpe`), so the tokenizer meets exactly the pieces it was learnt on.
"""

from __future__ import annotations

from collections import Counter, defaultdict
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
    """Byte-level BPE: the `merges` most frequent adjacent symbol pairs, merged greedily.

    Args:
        piece_counts: pre-split pieces and their counts (`pre_split`).
        merges: how many merges to learn (fewer when no pair occurs twice).

    Returns:
        (vocabulary token -> id with `<|endoftext|>` at 0, then the 256 byte symbols, then one token
        per merge; merges as `"a b"` strings in rank order), as `GPT2Tokenizer` takes them.
    """
    table = byte_symbols()
    words = [[table[byte] for byte in piece.encode("utf-8")] for piece in piece_counts]
    frequency = list(piece_counts.values())
    pairs: Counter = Counter()
    where: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for index, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:], strict=False):
            pairs[pair] += frequency[index]
            where[pair].add(index)
    learnt: list[str] = []
    while len(learnt) < merges and pairs:
        best, count = max(pairs.items(), key=lambda item: (item[1], item[0]))
        if count < 2:
            break
        learnt.append(f"{best[0]} {best[1]}")
        for index in list(where[best]):
            _merge_in_word(words, index, best, frequency[index], pairs, where)
    vocabulary = {END_OF_TEXT: 0}
    for token in [*table.values(), *(merge.replace(" ", "") for merge in learnt)]:
        vocabulary.setdefault(token, len(vocabulary))
    return vocabulary, learnt


def _merge_in_word(words: list[list[str]], index: int, pair: tuple[str, str], weight: int, pairs: Counter,
                   where: defaultdict) -> None:
    """Merge `pair` everywhere in word `index`, keeping the pair counts and the pair -> words index exact."""
    symbols = words[index]
    for old in zip(symbols, symbols[1:], strict=False):
        pairs[old] -= weight
        if pairs[old] <= 0:
            del pairs[old]
        where[old].discard(index)
    merged, position = [], 0
    while position < len(symbols):
        if position + 1 < len(symbols) and (symbols[position], symbols[position + 1]) == pair:
            merged.append(symbols[position] + symbols[position + 1])
            position += 2
        else:
            merged.append(symbols[position])
            position += 1
    words[index] = merged
    for new in zip(merged, merged[1:], strict=False):
        pairs[new] += weight
        where[new].add(index)
