"""Evaluate an exported version through its SavedModel, overall and by slice, as TFMA does.

The candidate of a pipeline and the version in service are scored the same way: raw test texts
into the serving signature, its answers against the truth. So a version pushed by hand, or one
trained on another split, is compared on this split. Slices: the ICD-10 chapter of the true code
(seq2seq), the true label (classification), the entity type (tagging). Each evaluation also
scores the simplest baseline of the task: the most frequent training code or label for every
text, or no entity at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tfnlp.data.records import Record, Splits, TaggedSentence, entity_spans
from tfnlp.errors import UserError

BATCH = 256
SLICES = {"seq2seq": "chapter", "classification": "label", "tagging": "entity_type"}


def evaluate_version(version: Path, task: str, splits: Splits, label_length: int = 0) -> dict:
    """Scores of `version` on `splits.test`: {"overall", "slices", "baseline", "slice_by"}.

    Args:
        version: a version folder (a SavedModel taking `text`).
        task: the experiment's task (`seq2seq`, `classification`, `tagging`).
        splits: the data; the training split gives the baseline.
        label_length: classification: targets cut to this many characters, as the experiment cuts them.
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the ops of the tagger and BERT exports

    try:
        serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as error:
        raise UserError(f"{version}: not a loadable SavedModel with a serving_default signature ({error})") from None
    if task == "tagging":
        return _tagging(serve, splits)
    return _labels(serve, task, splits, label_length)


def _rows(serve, texts: Sequence[str]) -> list[dict]:
    """Every output of the serving signature, one dict per text (called in batches)."""
    import tensorflow as tf

    from tfnlp.tasks.base import batches

    rows: list[dict] = []
    for chunk in batches(list(texts), BATCH):
        columns = {name: value.numpy().tolist()
                   for name, value in serve(text=tf.constant(chunk, dtype=tf.string)).items()}
        rows += [{name: values[row] for name, values in columns.items()} for row in range(len(chunk))]
    return rows


def _labels(serve, task: str, splits: Splits, label_length: int) -> dict:
    from tfnlp.data.icd10 import chapter, normalise_code
    from tfnlp.metrics import classification_scores, code_accuracies
    from tfnlp.tasks.base import predict_strings
    from tfnlp.tasks.classification import cut_label

    target = normalise_code if task == "seq2seq" else (lambda label: cut_label(label, label_length))
    score = code_accuracies if task == "seq2seq" else classification_scores
    slice_of = chapter if task == "seq2seq" else (lambda label: label)
    records: list[Record] = splits.test
    truth = [target(record.target) for record in records]
    output = "code" if task == "seq2seq" else "label"
    predicted = predict_strings(serve, [record.text for record in records], output, BATCH)
    common = Counter(target(record.target) for record in splits.train).most_common(1)
    baseline = [common[0][0] if common else ""] * len(truth)
    slices = {}
    for name in sorted({slice_of(label) for label in truth}):
        rows = [index for index, label in enumerate(truth) if slice_of(label) == name]
        slices[name] = {**score([truth[i] for i in rows], [predicted[i] for i in rows]), "support": len(rows)}
    return {"overall": score(truth, predicted), "slices": slices, "baseline": score(truth, baseline),
            "slice_by": SLICES[task]}


def gold_entities(sentence: TaggedSentence) -> set[tuple[str, int, int]]:
    """(type, start, end) of a sentence's entities, in characters of its text."""
    if not sentence.offsets:
        raise UserError("tagged sentences without character offsets cannot be scored through a SavedModel")
    return {(kind, sentence.offsets[positions[0]][0], sentence.offsets[positions[-1]][1])
            for kind, positions in entity_spans(list(range(len(sentence.tokens))), sentence.tags)}


def _tagging(serve, splits: Splits) -> dict:
    sentences: list[TaggedSentence] = splits.test
    gold = [gold_entities(sentence) for sentence in sentences]
    predicted = []
    for row in _rows(serve, [sentence.text for sentence in sentences]):
        predicted.append({(kind.decode("utf-8"), start, end) for kind, start, end in
                          zip(row["entity_type"], row["entity_start"], row["entity_end"], strict=True) if start >= 0})
    types = sorted({kind for entities in gold for kind, _, _ in entities})
    slices = {kind: span_scores(gold, predicted, kind) for kind in types}
    nothing = [set() for _ in sentences]
    return {"overall": span_scores(gold, predicted), "slices": slices, "baseline": span_scores(gold, nothing),
            "slice_by": SLICES["tagging"]}


def span_scores(gold: list[set], predicted: list[set], kind: str | None = None) -> dict:
    """Exact-span entity precision / recall / F1 (character offsets), for one type or all."""
    keep = (lambda entities: entities) if kind is None else (lambda entities: {e for e in entities if e[0] == kind})
    hits = sum(len(keep(g) & keep(p)) for g, p in zip(gold, predicted, strict=True))
    found, wanted = sum(len(keep(p)) for p in predicted), sum(len(keep(g)) for g in gold)
    precision, recall = hits / found if found else 0.0, hits / wanted if wanted else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"entity_precision": precision, "entity_recall": recall, "entity_f1": f1, "support": wanted}
