"""Figures for reports and TensorBoard: attention heatmaps and learning curves (matplotlib, no display)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


@dataclass(frozen=True)
class Alignment:
    """One decoded text: what the model read, what it wrote, and where it looked.

    Attributes:
        text: the raw input text.
        code: the predicted code.
        score: the model's probability of that code.
        input_tokens: the words the model read (padding removed).
        output_tokens: the characters it wrote, end token included (padding removed).
        attention: [len(output_tokens), len(input_tokens)] attention weights.
        label: the code's label in the code set ("" when the export gives none).
        confidence: the export's calibrated confidence in the code (None when it gives none).
    """

    text: str
    code: str
    score: float
    input_tokens: list[str]
    output_tokens: list[str]
    attention: np.ndarray
    label: str = ""
    confidence: float | None = None

    @property
    def title(self) -> str:
        """The code in its dotted form with its label, and the confidence (or the decoder's score)."""
        from tfnlp.answers import display_code

        if not self.code:
            return "no answer\n(no letter or digit to read, or no code found)"
        label = self.label if len(self.label) <= 48 else self.label[:47] + "…"
        measure = (f"confidence {self.confidence:.2f}" if self.confidence is not None
                   else f"decoder score {self.score:.2f}")
        return f"{display_code(self.code)} {label}".strip() + f"\n({measure})"

    def strongest_words(self) -> list[tuple[str, str, float]]:
        """(output character, the input word it attended to most, that weight) for each step."""
        if not self.input_tokens:
            return [(token, "", 0.0) for token in self.output_tokens]
        best = self.attention.argmax(axis=1)
        return [(token, self.input_tokens[index], float(self.attention[row, index]))
                for row, (token, index) in enumerate(zip(self.output_tokens, best, strict=True))]


def _draw_heatmap(axes, alignment: Alignment, first_column: bool):
    if not alignment.attention.size:  # nothing decoded, or nothing read: no grid to draw
        axes.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        axes.set_title(alignment.title, fontsize=10)
        return None
    image = axes.imshow(alignment.attention, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(alignment.input_tokens)), alignment.input_tokens, rotation=60, ha="right")
    axes.set_yticks(range(len(alignment.output_tokens)), alignment.output_tokens)
    axes.set_xlabel("input words")
    if first_column:  # one label per row of panels, so it never runs into the panel on its left
        axes.set_ylabel("generated characters")
    axes.set_title(alignment.title, fontsize=10)
    return image


def attention_figure(alignments: Sequence[Alignment], columns: int = 2):
    """A figure with one heatmap per alignment (a grid when there are several)."""
    columns = min(columns, len(alignments))
    rows = -(-len(alignments) // columns)
    widest = max(max(len(a.input_tokens), 1) for a in alignments)
    longest = max((len(token) for a in alignments for token in a.input_tokens), default=1)
    # Constrained layout keeps each panel's rotated word labels clear of the title of the panel below it.
    figure, axes_grid = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                                     figsize=(columns * max(4.5, 0.45 * widest + 1.5), rows * (3.6 + 0.08 * longest)))
    for axes in axes_grid.flat[len(alignments):]:
        axes.axis("off")
    images = [_draw_heatmap(axes, alignment, first_column=index % columns == 0)
              for index, (axes, alignment) in enumerate(zip(axes_grid.flat, alignments, strict=False))]
    drawn = [image for image in images if image is not None]
    if drawn:
        figure.colorbar(drawn[-1], ax=list(axes_grid.flat), label="attention weight", shrink=0.8)
    return figure


def save_figure(figure, path: Path) -> Path:
    """Write a figure to `path` (PNG or SVG by suffix) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def figure_png(figure) -> bytes:
    """The figure as PNG bytes (for HTML pages and TensorBoard images); closes it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def learning_curves(history: dict[str, list[float]], path: Path, columns: int = 4) -> Path:
    """Train vs validation curves of each logged quantity (validation alone where it has no train twin)."""
    names = [name for name in history if not name.startswith("val_") and f"val_{name}" in history]
    names += [name for name in history if name.startswith("val_") and name[4:] not in history]
    panels = max(len(names), 1)
    rows, columns = -(-panels // columns), min(columns, panels)
    figure, axes_grid = plt.subplots(rows, columns, squeeze=False, figsize=(4 * columns, 3.2 * rows))
    for axes in axes_grid.flat[len(names):]:
        axes.axis("off")
    for axes, name in zip(axes_grid.flat, names, strict=False):
        epochs = np.arange(1, len(history[name]) + 1)
        if not name.startswith("val_"):
            axes.plot(epochs, history[name], label="train")
        axes.plot(epochs, history[name if name.startswith("val_") else f"val_{name}"], label="validation")
        axes.legend()
        axes.set_title(name.removeprefix("val_"))
        axes.set_xlabel("epoch")
    figure.tight_layout()
    return save_figure(figure, path)


def confusion_matrix_figure(matrix: np.ndarray, labels: Sequence[str]):
    """A row-normalised confusion matrix heatmap (rows: true labels, columns: predicted)."""
    totals = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.35 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix / totals, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(labels)), labels, rotation=90)
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("confusion matrix (share of each true label)")
    figure.colorbar(image, ax=axes, fraction=0.046)
    return figure


def f1_support_figure(f1: Sequence[float], support: Sequence[int], labels: Sequence[str], annotate: int = 10):
    """Per-class F1 against test support (log scale): the imbalance picture; the largest classes labelled."""
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.scatter(np.maximum(support, 1), f1, s=12, alpha=0.6)
    for index in np.argsort(support)[::-1][:annotate]:
        axes.annotate(labels[index], (max(support[index], 1), f1[index]), fontsize=7)
    axes.set_xscale("log")
    axes.set_xlabel("test support (texts)")
    axes.set_ylabel("F1")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title("per-class F1 vs support")
    return figure


def class_distribution_figure(counts: dict[str, int], top: int = 40):
    """Training texts per class, the `top` largest as bars (sorted), the rest summed into one bar."""
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    shown = ordered[:top]
    if len(ordered) > top:
        shown.append((f"{len(ordered) - top} others", sum(count for _, count in ordered[top:])))
    figure, axes = plt.subplots(figsize=(max(5.0, 0.25 * len(shown) + 2), 3.5))
    axes.bar(range(len(shown)), [count for _, count in shown])
    axes.set_xticks(range(len(shown)), [label for label, _ in shown], rotation=90, fontsize=7)
    axes.set_ylabel("training texts")
    axes.set_title(f"class distribution ({len(ordered)} classes)")
    return figure


def grouped_bars(groups: dict[str, dict[str, float]], title: str, top: int = 30, by_key: bool = False):
    """One bar per key of the inner dicts, one colour per group (a split, a type): {group: {key: value}}. The keys are
    those of all groups, the `top` largest by total value, shown by value (or in key order with `by_key`)."""
    totals: dict[str, float] = {}
    for values in groups.values():
        for key, value in values.items():
            totals[key] = totals.get(key, 0) + value
    keys = sorted(totals, key=lambda key: -totals[key])[:top]
    if by_key:
        keys.sort()
    width = 0.8 / max(len(groups), 1)
    figure, axes = plt.subplots(figsize=(7.5, 3.8))
    for index, (group, values) in enumerate(groups.items()):
        axes.bar(np.arange(len(keys)) + index * width, [values.get(key, 0) for key in keys], width, label=group)
    axes.set_xticks(np.arange(len(keys)) + width * (len(groups) - 1) / 2, keys, rotation=90, fontsize=7)
    axes.set_title(title)
    if len(groups) > 1:
        axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def histograms(values: dict[str, Sequence[float]], title: str, xlabel: str, bins: int = 30):
    """One step histogram per group ({group: values}), as shares of the group, on shared bins (the longest values
    beyond the 99th percentile gathered in the last bin)."""
    everything = np.concatenate([np.asarray(v, float) for v in values.values() if len(v)]) if values else np.zeros(1)
    top = max(float(np.percentile(everything, 99)), 1.0)
    edges = np.linspace(0.0, top, bins + 1)
    figure, axes = plt.subplots(figsize=(7.5, 3.8))
    for group, data in values.items():
        data = np.minimum(np.asarray(data, float), top)
        if len(data):
            axes.hist(data, bins=edges, weights=np.full(len(data), 1.0 / len(data)), histtype="step", linewidth=1.5,
                      label=f"{group} ({len(data):,})")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("share of the texts")
    axes.set_title(title)
    axes.legend(fontsize=7)
    figure.tight_layout()
    return figure


def count_histogram(counts: Sequence[int], title: str, unit: str, per: str, each: str):
    """How many `per` (`each` in the singular) have 1, 2, 3, ... `unit` (bars; one count per `per`)."""
    tally = np.bincount(np.asarray(counts, int))
    figure, axes = plt.subplots(figsize=(7.5, 3.8))
    present = np.nonzero(tally)[0]
    axes.bar(present, tally[present])
    axes.set_xlabel(f"{unit} per {each}")
    axes.set_ylabel(per)
    axes.set_title(title)
    figure.tight_layout()
    return figure


def rank_frequency(counts: Sequence[int], unit: str = "labels"):
    """Frequency against rank on log-log axes (the long tail of a classification)."""
    ordered = sorted(counts, reverse=True)
    figure, axes = plt.subplots(figsize=(7.5, 3.8))
    axes.loglog(np.arange(1, len(ordered) + 1), ordered, marker=".", linestyle="none")
    axes.set_xlabel(f"rank of the {unit}")
    axes.set_ylabel("training examples")
    axes.set_title(f"rank / frequency of {len(ordered)} {unit}")
    figure.tight_layout()
    return figure
