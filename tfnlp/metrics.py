"""Task scores and reports: ICD-10 code accuracies; classification scores with a per-class CSV, confusion matrix,
F1 vs support and class distribution; seqeval entity scores per type."""

from __future__ import annotations

import csv
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from tfnlp.data.icd10 import category, chapter

CLASSIFICATION_METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
                          "weighted_recall", "weighted_f1")


def classification_scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro and support-weighted precision / recall / F1 (over the classes of truth and predictions)."""
    macro = precision_recall_fscore_support(truth, predicted, average="macro", zero_division=0)
    weighted = precision_recall_fscore_support(truth, predicted, average="weighted", zero_division=0)
    return {"accuracy": float(accuracy_score(truth, predicted)), "macro_precision": float(macro[0]),
            "macro_recall": float(macro[1]), "macro_f1": float(macro[2]), "weighted_precision": float(weighted[0]),
            "weighted_recall": float(weighted[1]), "weighted_f1": float(weighted[2])}


def paired_accuracy_difference(first: Sequence[bool], second: Sequence[bool], draws: int = 2000, level: float = 0.95,
                               seed: int = 0) -> dict[str, float]:
    """The accuracy of `first` minus that of `second`, both right or wrong on the same texts, with a paired bootstrap
    interval: the texts are resampled with replacement `draws` times, and the interval holds the central `level` of
    the differences. On a few hundred texts two systems a point apart cannot be told apart; this says so.

    Returns:
        `difference`, `low`, `high`.
    """
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1 or not len(first):
        raise ValueError(f"two equal, non-empty lists of right / wrong needed (got {first.shape} and {second.shape})")
    per_text = first - second
    samples = np.random.default_rng(seed).integers(0, len(per_text), size=(draws, len(per_text)))
    differences = per_text[samples].mean(axis=1)
    tail = (1.0 - level) / 2
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return {"difference": float(per_text.mean()), "low": float(low), "high": float(high)}


def code_accuracies(true_codes: Sequence[str], predicted_codes: Sequence[str]) -> dict[str, float]:
    """Chapter (first character), category (first three) and exact-code accuracy."""
    if len(true_codes) != len(predicted_codes):
        raise ValueError(f"{len(true_codes)} true codes but {len(predicted_codes)} predictions")
    total = max(len(true_codes), 1)
    pairs = list(zip(true_codes, predicted_codes, strict=True))
    return {
        "chapter_accuracy": sum(chapter(t) == chapter(p) for t, p in pairs) / total,
        "category_accuracy": sum(category(t) == category(p) for t, p in pairs) / total,
        "exact_match": sum(t == p for t, p in pairs) / total,
    }


def ranked_accuracy(ranked: Sequence[Sequence[str]], truth: Sequence[str], cut=lambda code: code) -> float:
    """Share of texts whose ranked codes (empty strings: no code) include the truth, compared after `cut` (`chapter`,
    `category`, or the code itself)."""
    hits = sum(any(cut(code) == cut(target) for code in codes if code) for codes, target in zip(ranked, truth,
                                                                                                 strict=True))
    return hits / max(len(truth), 1)


def entity_scores(truth: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """seqeval's strict BIO2 entity precision / recall / F1 (micro over entities) and token accuracy."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    flat_truth = [tag for row in truth for tag in row]
    flat_predicted = [tag for row in predicted for tag in row]
    options = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    return {"entity_precision": float(precision_score(truth, predicted, **options)),
            "entity_recall": float(recall_score(truth, predicted, **options)),
            "entity_f1": float(f1_score(truth, predicted, **options)),
            "token_accuracy": float(np.mean([a == b for a, b in zip(flat_truth, flat_predicted, strict=True)]))}


def span_scores(gold: list[set], predicted: list[set], kind: str | None = None) -> dict:
    """Exact-span entity precision / recall / F1 on character offsets (what a served tagger's spans score, through its
    own tokenizer: `span_*`, not seqeval's `entity_*` on the corpus's tokens), for one type or all; and the support."""
    keep = (lambda entities: entities) if kind is None else (lambda entities: {e for e in entities if e[0] == kind})
    hits = sum(len(keep(g) & keep(p)) for g, p in zip(gold, predicted, strict=True))
    found, wanted = sum(len(keep(p)) for p in predicted), sum(len(keep(g)) for g in gold)
    precision, recall = hits / found if found else 0.0, hits / wanted if wanted else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"span_precision": precision, "span_recall": recall, "span_f1": f1, "support": wanted}


def per_type_rows(truth: list[list[str]], predicted: list[list[str]]) -> list[dict]:
    """Per entity type: precision, recall, F1, support (seqeval strict BIO2)."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    report = classification_report(truth, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    return [{"type": kind, "precision": float(values["precision"]), "recall": float(values["recall"]),
             "f1": float(values["f1-score"]), "support": int(values["support"])}
            for kind, values in sorted(report.items()) if not kind.endswith(" avg")]


def write_rows_csv(path: Path, rows: list[dict]) -> Path:
    """Rows of one report table as a CSV with a header (the first row's keys); the folder is created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    return path


def per_class_rows(truth: Sequence[str], predicted: Sequence[str]) -> list[dict]:
    """One row per class of the truth or the predictions: precision, recall, F1, support; by support."""
    labels = sorted(set(truth) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                                     zero_division=0)
    rows = [{"label": label, "precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4),
             "support": int(s)} for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)]
    return sorted(rows, key=lambda row: (-row["support"], row["label"]))


def write_classification_report(truth: Sequence[str], predicted: Sequence[str], train_labels: Sequence[str],
                                folder: Path, top_classes: int = 20, tensorboard_dir: str | None = None) -> dict:
    """Write `per_class.csv`, `confusion_matrix.png`, `f1_vs_support.png` and `class_distribution.png` under
    `folder` (and the figures as TensorBoard images); return the per-class rows.

    Args:
        truth: the true labels of the evaluated texts.
        predicted: the predicted labels.
        train_labels: the training texts' labels (for the class distribution).
        folder: where the files go.
        top_classes: the confusion matrix shows this many classes, the most frequent in `truth`.
        tensorboard_dir: also log the figures there as images, when given.
    """
    from tfnlp.plots import (
        class_distribution_figure,
        confusion_matrix_figure,
        f1_support_figure,
        save_figure,
    )

    rows = per_class_rows(truth, predicted)
    write_rows_csv(folder / "per_class.csv", rows)
    shown = [label for label, _ in Counter(truth).most_common(top_classes)]
    with warnings.catch_warnings():
        # One class in the test split (or in a tiny run's) gives a 1 x 1 matrix, which is right: no warning to print.
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        matrix = confusion_matrix(truth, predicted, labels=shown)
    figures = {
        "confusion_matrix": confusion_matrix_figure(matrix, shown),
        "f1_vs_support": f1_support_figure([row["f1"] for row in rows], np.array([row["support"] for row in rows]),
                                           [row["label"] for row in rows]),
        "class_distribution": class_distribution_figure(Counter(train_labels)),
    }
    written = {name: save_figure(figure, folder / f"{name}.png") for name, figure in figures.items()}
    if tensorboard_dir:
        _log_images({name: path.read_bytes() for name, path in written.items()}, tensorboard_dir)
    return {"per_class": rows}


def _log_images(images: dict[str, bytes], tensorboard_dir: str) -> None:
    import tensorflow as tf

    with tf.summary.create_file_writer(tensorboard_dir).as_default():
        for name, png in images.items():
            tf.summary.image(f"report/{name}", tf.io.decode_png(png)[None], step=0)
