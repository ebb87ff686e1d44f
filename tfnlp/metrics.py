"""Classification scores and reports: per-class CSV, confusion matrix, F1 vs support, class distribution."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

CLASSIFICATION_METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
                          "weighted_recall", "weighted_f1")
REPORT_FILES = ("per_class.csv", "confusion_matrix.png", "f1_vs_support.png", "class_distribution.png")


def classification_scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy, macro and support-weighted precision / recall / F1 (over the classes of truth and predictions)."""
    macro = precision_recall_fscore_support(truth, predicted, average="macro", zero_division=0)
    weighted = precision_recall_fscore_support(truth, predicted, average="weighted", zero_division=0)
    return {"accuracy": float(accuracy_score(truth, predicted)), "macro_precision": float(macro[0]),
            "macro_recall": float(macro[1]), "macro_f1": float(macro[2]), "weighted_precision": float(weighted[0]),
            "weighted_recall": float(weighted[1]), "weighted_f1": float(weighted[2])}


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
    """Write REPORT_FILES under `folder` (and the figures as TensorBoard images); return the per-class rows.

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

    folder.mkdir(parents=True, exist_ok=True)
    rows = per_class_rows(truth, predicted)
    with open(folder / "per_class.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    shown = [label for label, _ in Counter(truth).most_common(top_classes)]
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
