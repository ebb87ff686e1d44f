"""One vocabulary type for every discrete thing a task predicts or reads: labels, tags, decoder characters."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Vocabulary:
    """Tokens indexed by id; a token outside the vocabulary reads as id `default`.

    Attributes:
        tokens: the token of each id.
        default: the id of anything unknown (`<UNK>`, the `O` tag, decoder padding).
    """

    tokens: tuple[str, ...]
    default: int = 0

    @classmethod
    def sorted(cls, items: Iterable[str], reserved: Sequence[str] = (), default: int = 0) -> Vocabulary:
        """`reserved` tokens first (ids 0, 1, ...), then the distinct `items` in sorted order."""
        return cls((*reserved, *sorted(set(items) - set(reserved))), default)

    def __len__(self) -> int:
        return len(self.tokens)

    @functools.cached_property
    def _index(self) -> dict[str, int]:
        return {token: index for index, token in enumerate(self.tokens)}

    def ids(self, tokens: Iterable[str]) -> np.ndarray:
        """The id of each token (int32)."""
        return np.array([self._index.get(token, self.default) for token in tokens], dtype=np.int32)

    def known(self, tokens: Iterable[str]) -> list[str]:
        """Each token, or the default id's token when the vocabulary lacks it."""
        return [token if token in self._index else self.tokens[self.default] for token in tokens]

    def counts(self, tokens: Iterable[str]) -> np.ndarray:
        """How often each id occurs among `tokens`."""
        return np.bincount(self.ids(tokens), minlength=len(self.tokens))


def most_frequent(items: Iterable[str], size: int) -> list[str]:
    """The `size` most frequent distinct items, ties in alphabetical order."""
    counts = Counter(items)
    return sorted(counts, key=lambda item: (-counts[item], item))[:max(size, 0)]
