"""Decoding choices of a trained seq2seq run, side by side on its validation split.

    python -m tfnlp.bench rerank --workdir runs/icd10_seq2seq/<timestamp> [--quick]

Rebuilds the run's task from the state the run saved (its vocabulary, code set, TF-IDF tables and
validation records: the data file is not read), loads its best checkpoint, and decodes the
validation texts greedily and with beam search at several widths and category-rerank weights,
then at the configured width with several category-fusion weights (category head prior, TF-IDF
SVM prior, SVM sharpness), then the ranked codes with at most 1, 2, 3 codes per category, and
last the top-k category accuracy of the category models alone (head, TF-IDF SVM, fused), which
bounds the ranked list's. This is how
`model.beam_size`, `model.category_prior_weight`, `model.tfidf_prior_weight`,
`model.tfidf_prior_sharpness` and `model.codes_per_category` were chosen: on validation, never on test.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfnlp.errors import UserError

WIDTHS = (1, 4, 8, 16)
WEIGHTS = (0.0, 1.0, 2.0, 3.0, 4.0)
# (category head prior weight, TF-IDF SVM prior weight, SVM sharpness)
FUSIONS = ((1.0, 0.0, 10.0), (0.0, 1.0, 5.0), (0.0, 1.0, 10.0), (1.0, 1.0, 10.0), (1.0, 2.0, 10.0),
           (1.0, 3.0, 10.0), (1.0, 2.0, 20.0), (2.0, 3.0, 10.0))
LIMITS = (0, 1, 2, 3)  # model.codes_per_category


def load_run(workdir: Path, loaded=None):
    """The task and model of a finished run of the coder, with its best weights loaded: the task from the state the
    run saved, or, given `loaded` (or for a run that saved none), from the data.

    Raises:
        UserError: `workdir` is not a finished run of a seq2seq experiment.
    """
    from tfnlp.data import sources
    from tfnlp.run import STATE_FOLDER, Run
    from tfnlp.tasks.base import STATE_FILE
    from tfnlp.tasks.seq2seq import Seq2SeqTask

    experiment = Run.load(workdir).experiment
    if experiment.task != "seq2seq":
        raise UserError(f"{workdir}: a {experiment.task} run ({experiment.name}); this needs a seq2seq run")
    weights = workdir / "checkpoints" / "best.weights.h5"
    if not weights.exists():
        raise UserError(f"{weights}: missing; --workdir must name a run folder of `python -m tfnlp.train`")
    state = workdir / STATE_FOLDER
    if loaded is None and (state / STATE_FILE).exists():
        task = Seq2SeqTask.restore(experiment, state)
    else:
        if loaded is None:
            print(f"{workdir} saved no task state: reading its data again ({experiment.data.source})")
        task = Seq2SeqTask.from_data(experiment, loaded or sources.load(experiment.data.source, experiment.data))
    model = task.make_model()
    with warnings.catch_warnings():  # the checkpoint's optimizer state is not needed for decoding
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(str(weights))
    return task, model


def print_ranked_lists(task, model, texts: Sequence[str], truth: Sequence[str], limits: Sequence[int]) -> None:
    """The configured export's ranked codes at several `model.codes_per_category`, at the configured beam width and
    at `model.top_k` (the narrowest beam that lists k codes): top-1 and top-k accuracy by category and code (k =
    `model.top_k`)."""
    from tfnlp.data.icd10 import category
    from tfnlp.metrics import ranked_accuracy
    from tfnlp.tasks.seq2seq_serving import Answers, CategoryFusion, Seq2SeqServing

    config = task.experiment.model
    fusion = CategoryFusion(config.category_prior_weight, task.tfidf_category_graph, config.tfidf_prior_weight,
                            config.tfidf_prior_sharpness)
    k = min(config.top_k, config.beam_size)
    print(f"\nranked codes, top {k}:\n")
    print("| beam width | codes per category | top-1 category | top-1 code | top-k category | top-k code |\n"
          + "|---" * 6 + "|")
    for width in sorted({k, config.beam_size}):
        for limit in limits:
            serving = Seq2SeqServing(task.preprocessor, model, task.trie, width, 0.0, fusion,
                                     Answers(config.top_k, task.labels), limit)
            ranked = serving.ranked_scores(texts, width).codes
            cells = [ranked_accuracy([row[:depth] for row in ranked], truth, cut)
                     for depth in (1, k) for cut in (category, str)]
            print(f"| {width} | {limit or 'no limit'} | " + " | ".join(f"{cell:.3f}" for cell in cells) + " |")


CATEGORY_DEPTHS = (1, 5, 10, 20)


def category_model_scores(task, model, texts: Sequence[str], batch_size: int = 256
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The categories the category models know between them, and each model's log-probabilities [N, categories] of
    `texts` over them (a category a model does not know gets `PRIOR_FLOOR`, as in the beam): the category head, the
    TF-IDF SVM at the configured sharpness, and their fusion with the configured weights (what the beam adds once a
    category is written)."""
    import tensorflow as tf

    from tfnlp.models.decoding import PRIOR_FLOOR
    from tfnlp.tasks.seq2seq_serving import head_log_probs, tfidf_log_probs

    config = task.experiment.model
    categories = sorted(set(task.preprocessor.categories) | set(task.tfidf_category_graph.classes))
    column = {name: index for index, name in enumerate(categories)}
    head, svm = [], []
    for start in range(0, len(texts), batch_size):
        batch = tf.constant(list(texts[start:start + batch_size]))
        inputs = task.preprocessor.encode_texts(batch)
        outputs, mask, _ = model.encoder(inputs["token_ids"], inputs.get("subword_ids"), training=False)
        head.append(head_log_probs(model, outputs, mask).numpy())
        svm.append(tfidf_log_probs(task.tfidf_category_graph, config.tfidf_prior_sharpness, batch).numpy())

    def widened(parts: list[np.ndarray], names: Sequence[str]) -> np.ndarray:
        scores = np.full((len(texts), len(categories)), np.log(PRIOR_FLOOR), np.float32)
        scores[:, [column[name] for name in names]] = np.concatenate(parts)
        return scores

    head_scores = widened(head, task.preprocessor.categories)
    svm_scores = widened(svm, task.tfidf_category_graph.classes)
    return np.array(categories), {"category head": head_scores, "TF-IDF SVM": svm_scores,
                                  "fused (as the beam weighs them)": (config.category_prior_weight * head_scores
                                                                      + config.tfidf_prior_weight * svm_scores)}


def print_category_models(task, model, texts: Sequence[str], truth: Sequence[str]) -> None:
    """Top-k category accuracy of the category models alone: how far any list of k categories drawn from them can
    go (the ranked codes' top-k category stays near the fused row's)."""
    from tfnlp.data.icd10 import category

    categories, scores = category_model_scores(task, model, texts)
    wanted = np.array([category(code) for code in truth])
    print("\ncategory models alone, top-k category accuracy:\n")
    print("| model | " + " | ".join(f"top-{depth}" for depth in CATEGORY_DEPTHS) + " |\n"
          + "|---" * (len(CATEGORY_DEPTHS) + 1) + "|")
    for name, table in scores.items():
        ranked = categories[np.argsort(-table, axis=1, kind="stable")[:, :max(CATEGORY_DEPTHS)]]
        cells = [np.mean(np.any(ranked[:, :depth] == wanted[:, None], axis=1)) for depth in CATEGORY_DEPTHS]
        print(f"| {name} | " + " | ".join(f"{cell:.3f}" for cell in cells) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the validation table of decoding choices and the best one."""
    from tfnlp.metrics import code_accuracies
    from tfnlp.tasks.seq2seq import decode
    from tfnlp.tasks.seq2seq_serving import CategoryFusion, Seq2SeqServing

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench rerank", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="run folder holding config.json and checkpoints/")
    parser.add_argument("--quick", action="store_true", help="widths 1 and 4, weights 0 and 1")
    args = parser.parse_args(argv)
    task, model = load_run(Path(args.workdir))
    records = task.splits.validation
    texts, truth = [record.text for record in records], [record.target for record in records]
    widths, weights = ((1, 4), (0.0, 1.0)) if args.quick else (WIDTHS, WEIGHTS)
    rows = []
    for width in widths:
        for weight in (weights if width > 1 else (0.0,)):
            serving = Seq2SeqServing(task.preprocessor, model, task.trie, width, weight)
            scores = code_accuracies(truth, decode(serving.serve if width > 1 else serving.greedy, texts))
            rows.append((width, weight, scores))
    print(f"run: {args.workdir} (validation split, {len(texts)} texts)\n")
    print("| beam width | rerank weight | chapter_accuracy | category_accuracy | exact_match |")
    print("|---|---|---|---|---|")
    for width, weight, scores in rows:
        print(f"| {width} | {weight:g} | {scores['chapter_accuracy']:.3f} | {scores['category_accuracy']:.3f} "
              f"| {scores['exact_match']:.3f} |")
    width = task.experiment.model.beam_size
    fusions = []
    for head, svm, sharpness in FUSIONS[:2] if args.quick else FUSIONS:
        fusion = CategoryFusion(head, task.tfidf_category_graph, svm, sharpness)
        serving = Seq2SeqServing(task.preprocessor, model, task.trie, width, 0.0, fusion)
        fusions.append((head, svm, sharpness, code_accuracies(truth, decode(serving.serve, texts))))
    print(f"\ncategory fusion at beam {width}:\n")
    print("| head prior weight | TF-IDF prior weight | sharpness | chapter_accuracy | category_accuracy "
          "| exact_match |\n" + "|---" * 6 + "|")
    for head, svm, sharpness, scores in fusions:
        print(f"| {head:g} | {svm:g} | {sharpness:g} | {scores['chapter_accuracy']:.3f} | "
              f"{scores['category_accuracy']:.3f} | {scores['exact_match']:.3f} |")
    print_ranked_lists(task, model, texts, truth, (0, 2) if args.quick else LIMITS)
    if task.tfidf_category_graph is not None and task.preprocessor.categories:
        print_category_models(task, model, texts, truth)
    width, weight, scores = max(rows, key=lambda row: (row[2]["category_accuracy"] + row[2]["exact_match"]))
    print(f"best rerank on validation: beam {width}, rerank weight {weight:g} "
          f"(category {scores['category_accuracy']:.3f}, exact {scores['exact_match']:.3f})")
    head, svm, sharpness, scores = max(fusions, key=lambda row: row[3]["category_accuracy"] + row[3]["exact_match"])
    print(f"headline: best on validation: fusion head {head:g}, TF-IDF {svm:g}, sharpness {sharpness:g} "
          f"(category {scores['category_accuracy']:.3f}, exact {scores['exact_match']:.3f})")
    return 0
