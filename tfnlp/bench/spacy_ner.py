"""spaCy's own NER trained on the same split: the row a user would pick instead of a tfnlp tagger.

spaCy's default English NER configuration (`spacy init config --lang en --pipeline ner --optimize
efficiency`, CPU: a hash-embedding CNN `tok2vec` and a transition-based parser for entities) is
trained with spaCy's own `train` on the training sentences, its best model chosen on the
validation sentences (spaCy's `ents_f`), then read on the test sentences' own tokens and scored with
the same seqeval scorer as the taggers. Its speed is spaCy's `nlp.pipe` on the test sentences, in
process (there is no SavedModel to serve).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from tfnlp.data.records import Splits, TaggedSentence
from tfnlp.metrics import entity_scores, per_type_rows

QUICK_STEPS = 300  # spaCy's `training.max_steps` under --quick (its default, 20,000, stops on patience 1,600)


def spacy_description() -> str:
    """`spaCy X.Y.Z, en ner efficiency (CPU)`: the version and configuration of the row."""
    import spacy

    return f"spaCy {spacy.__version__}, default en ner config (efficiency, CPU)"


def _docs(nlp, sentences: Sequence[TaggedSentence], with_entities: bool) -> list:
    """spaCy Docs on the sentences' own tokens (and spacing), with their BIO entities when asked."""
    from spacy.tokens import Doc

    from tfnlp.data.conll import to_bio2
    from tfnlp.tasks.subword_tagging import sentence_spacing

    docs = []
    for sentence, spacing in zip(sentences, sentence_spacing(sentences), strict=True):
        spaces = [*spacing[1:], False]  # spaCy: whitespace after each token; ours: before it
        entities = {"ents": to_bio2(list(sentence.tags))[0]} if with_entities else {}
        docs.append(Doc(nlp.vocab, words=list(sentence.tokens), spaces=spaces, **entities))
    return docs


def _tags(doc) -> list[str]:
    return [f"{token.ent_iob_}-{token.ent_type_}" if token.ent_iob_ in ("B", "I") else "O" for token in doc]


def train_and_score(splits: Splits, folder: Path, quick: bool = False) -> dict:
    """Train spaCy's NER on `splits.train` (selected on `splits.validation`) and score it on `splits.test`.

    Returns:
        seqeval entity scores and token accuracy, `train_seconds`, `tokens_per_second` (nlp.pipe) and `per_type`.
    """
    import spacy
    from spacy.cli.init_config import init_config
    from spacy.cli.train import train
    from spacy.tokens import DocBin

    folder.mkdir(parents=True, exist_ok=True)
    blank = spacy.blank("en")
    for name, sentences in (("train", splits.train), ("dev", splits.validation)):
        DocBin(docs=_docs(blank, sentences, with_entities=True)).to_disk(folder / f"{name}.spacy")
    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency", gpu=False)
    config.to_disk(folder / "config.cfg")
    overrides = {"paths.train": str(folder / "train.spacy"), "paths.dev": str(folder / "dev.spacy"),
                 **({"training.max_steps": QUICK_STEPS} if quick else {})}
    started = time.perf_counter()
    train(folder / "config.cfg", folder / "model", use_gpu=-1, overrides=overrides)
    train_seconds = time.perf_counter() - started
    nlp = spacy.load(folder / "model" / "model-best")
    test_docs = _docs(nlp, splits.test, with_entities=False)
    started = time.perf_counter()
    predicted = [_tags(doc) for doc in nlp.pipe(test_docs)]
    seconds = time.perf_counter() - started
    truth = [list(sentence.tags) for sentence in splits.test]
    return {**entity_scores(truth, predicted), "train_seconds": train_seconds,
            "tokens_per_second": sum(map(len, truth)) / seconds, "per_type": per_type_rows(truth, predicted)}
