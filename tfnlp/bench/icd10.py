"""The ICD-10 coder beside its baselines, on the test split and on wording unlike the training labels.

    python -m tfnlp.bench icd10 [--quick] [--langs fr,en,en+cm] [--reworded N]

For each language, `icd10_seq2seq` is trained once on the seeded split of the WHO labels (`cim10`,
`cim10:lang=en`) with `tfnlp.train`; then each decoding variant of that one model, and the two
TF-IDF baselines fitted on the same training split, code:

- the test split (official labels of codes never seen in training, worded like the training ones);
- for English, `reworded`: ICD-10-CM descriptions and inclusion terms of the same categories
  (`icd10.reworded_terms`: every text equal to a WHO label removed), a seeded sample of `--reworded`
  of the held-out ones (the terms of one ICD-10-CM code in five, `icd10.held_out`). ICD-10-CM's subcodes
  are not WHO's: compare chapter and category there.

`en+cm` is English trained with 10,000 of the other ICD-10-CM terms added to its training split
(`cim10:lang=en,icd10cm_terms=10000`), each with its nearest WHO code; validation and test stay WHO labels.

`train s` is the seq2seq run's training time, which in the default configuration includes fitting the
SVM (the fusion needs it from the first validation); the baselines' is their own fit and prediction.
Variants: greedy; beam search (`model.beam_size`) reranked by the category head (this project's earlier
default); with the category head as a prefix prior; with the in-graph TF-IDF SVM as a prefix prior; with
both and at most `model.codes_per_category` codes per category in the ranked list (the default). Texts/s
go through each variant's exported SavedModel (batches of 256), with the ranked outputs a person reads (the
default's `model.top_k` codes, labels and confidences).

A second table, the answers a person reads: each variant's confidences calibrated on the validation
split as a run calibrates its export (`Seq2SeqTask.calibrate`), then, on each evaluation set, top-1
and top-k accuracy (is the right chapter, category or code among the ranked codes; k = `model.top_k`,
1 for greedy), the calibration error of the best code's confidence (ECE, 15 bins, exact code) before
and after, and the share of texts answered without review with the category precision among them.
`--quick` trains the tiny variant (600 labels, one epoch) on French only (unless `--langs` says otherwise) and
times the default export only: a check that the bench runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tfnlp.errors import UserError

EXTRA_TERMS = 10_000  # ICD-10-CM terms added to `en+cm`'s training split: about twice the English training time
LANGUAGES = {"fr": "cim10", "en": "cim10:lang=en", "en+cm": f"cim10:lang=en,icd10cm_terms={EXTRA_TERMS}"}
EARLIER_RERANK_WEIGHT = 3.0  # the category-rerank weight of the earlier default


def variants(task, model, svm_seconds: float) -> dict[str, tuple[Callable, float]]:
    """Each decoding variant's serving module, and the seconds its category models took to fit beyond
    the seq2seq's training (`svm_seconds` for the TF-IDF SVM)."""
    from tfnlp.tasks.seq2seq_serving import CategoryFusion, Seq2SeqServing

    config = task.experiment.model
    tfidf = task.tfidf_category_graph

    def serving(beam: int, rerank: float = 0.0, fusion: CategoryFusion | None = None):
        return Seq2SeqServing(task.preprocessor, model, task.trie, beam, rerank, fusion or CategoryFusion())

    beam = config.beam_size
    head = CategoryFusion(config.category_prior_weight)
    svm = CategoryFusion(0.0, tfidf, config.tfidf_prior_weight, config.tfidf_prior_sharpness)
    return {
        "model (greedy)": (serving(1), 0.0),
        f"beam {beam}, category-head rerank": (serving(beam, EARLIER_RERANK_WEIGHT), 0.0),
        f"beam {beam}, category-head prior": (serving(beam, fusion=head), 0.0),
        f"beam {beam}, TF-IDF SVM prior": (serving(beam, fusion=svm), svm_seconds),
        default_name(config): (task.serving(model), svm_seconds),
    }


def default_name(config) -> str:
    """The default variant's row name: both priors, and the ranked list's limit per category if it has one."""
    limit = f", {config.codes_per_category} codes per category" if config.codes_per_category else ""
    return f"beam {config.beam_size}, both priors{limit} (default)"


def speed(serving, scratch: Path, name: str, texts: Sequence[str]) -> float:
    """Texts/s through `serving` exported as a SavedModel."""
    from tfnlp import export
    from tfnlp.bench.classifiers import serving_signature, texts_per_second

    version = export.export_savedmodel(serving, scratch, name, serving.signatures(), {})
    return texts_per_second(serving_signature(version), texts)


def source_of(lang: str, quick: bool) -> str:
    """The data source `lang` trains on (`--quick`: 300 extra ICD-10-CM terms, not 10,000)."""
    return LANGUAGES[lang].replace(f"={EXTRA_TERMS}", "=300") if quick else LANGUAGES[lang]


def evaluate_language(lang: str, quick: bool, reworded: int, scratch: Path) -> list[dict]:
    """Rows (system, evaluation set, scores, seconds, texts/s) of one language."""
    from tfnlp import baselines, experiments
    from tfnlp.bench.rerank import load_run
    from tfnlp.config import validate
    from tfnlp.data import icd10, sources
    from tfnlp.metrics import code_accuracies
    from tfnlp.predictor import served_rows
    from tfnlp.run import run_experiment

    experiment = experiments.get("icd10_seq2seq", tiny=quick)
    experiment = validate(dataclasses.replace(
        experiment, data=dataclasses.replace(experiment.data, source=source_of(lang, quick)),
        train=dataclasses.replace(experiment.train, baselines=False)))
    workdir = scratch / lang / "work"
    loaded = sources.load(experiment.data.source, experiment.data)
    train_seconds = run_experiment(experiment, workdir, scratch / lang / "export", loaded).train_seconds
    task, model = load_run(workdir, loaded)  # with the data: the baselines fit on its training split
    sets = {"test": task.splits.test}
    if lang.startswith("en"):
        _, terms = icd10.reworded_partition(icd10.reworded_terms(icd10.cim10_labels("en")))
        sets["reworded"] = random.Random(experiment.data.seed).sample(terms, min(reworded, len(terms)))
    started = time.perf_counter()
    linear = task.tfidf_category_model
    linear_seconds = time.perf_counter() - started
    rows = []
    # The default configuration fits the SVM at the start of training: its time is in train_seconds already.
    fitted_in_training = bool(experiment.model.tfidf_prior_weight and experiment.model.beam_size > 1)
    svm_extra = 0.0 if fitted_in_training else linear_seconds
    for system, (serving, extra_seconds) in variants(task, model, svm_extra).items():
        task.calibrate(serving)  # on validation, as the run calibrates its export
        function = serving.serve if serving.beam_size > 1 else serving.greedy
        # --quick checks that the bench runs: it times the default export only (exporting and loading each variant
        # is most of a quick run's time).
        rate = (speed(serving, scratch / lang / "variants", f"v{len(rows)}", [r.text for r in task.splits.test])
                if not quick or system == default_name(experiment.model) else float("nan"))
        for set_name, records in sets.items():
            texts, truth = [record.text for record in records], [record.target for record in records]
            answered = served_rows(function, texts)
            predicted = [row["code"] for row in answered]
            raw = raw_best_confidence(serving, texts)
            rows.append({"lang": lang, "system": system, "set": set_name, "seconds": train_seconds + extra_seconds,
                         "texts_per_second": rate, **code_accuracies(truth, predicted),
                         **answer_scores(truth, answered, raw)})
    for set_name, records in sets.items():
        texts, truth = [record.text for record in records], [record.target for record in records]
        started = time.perf_counter()
        nearest = baselines.tfidf_nearest_neighbour(task.splits.train, texts)
        nearest_seconds = time.perf_counter() - started
        rows.append({"lang": lang, "system": "baseline TF-IDF nearest neighbour", "set": set_name,
                     "seconds": nearest_seconds, "texts_per_second": float("nan"), **code_accuracies(truth, nearest)})
        rows.append({"lang": lang, "system": "baseline TF-IDF linear SVM (category)", "set": set_name,
                     "seconds": linear_seconds, "texts_per_second": float("nan"),
                     **code_accuracies(truth, linear.predict(texts))})
    return rows


def raw_best_confidence(serving, texts: Sequence[str]) -> list[float]:
    """The best code's confidence before calibration (a softmax over the beam; greedy: the decoder's probability)."""
    from tfnlp.calibration import raw_confidences

    scores = serving.ranked_scores(texts, serving.beam_size).scores
    return raw_confidences(scores)[:, 0].tolist()


def answer_scores(truth: Sequence[str], answered: Sequence[dict], raw: Sequence[float]) -> dict[str, float]:
    """Top-1 and top-k accuracy by chapter, category and code, ECE before and after calibration, and the share
    answered without review with its category precision."""
    from tfnlp.calibration import expected_calibration_error
    from tfnlp.data.icd10 import category, chapter
    from tfnlp.metrics import ranked_accuracy

    scores: dict[str, float] = {}
    for level, cut in (("chapter", chapter), ("category", category), ("exact", lambda code: code)):
        scores[f"top_k_{level}"] = ranked_accuracy([row["top_codes"] for row in answered], truth, cut)
    exact = [row["code"] == target for row, target in zip(answered, truth, strict=True)]
    kept = [not row["needs_review"] for row in answered]
    right_category = [category(row["code"]) == category(target) for row, target in zip(answered, truth, strict=True)]
    return {**scores, "k": max((len(row["top_codes"]) for row in answered), default=1),
            "ece_before": expected_calibration_error(raw, exact),
            "ece_after": expected_calibration_error([row["confidence"] for row in answered], exact),
            "answered": sum(kept) / max(len(kept), 1),
            "answered_category_precision": (sum(r for r, k in zip(right_category, kept, strict=True) if k)
                                            / max(sum(kept), 1))}


def answers_table(rows: list[dict]) -> str:
    """Markdown: the ranked answers and their confidences, per language, set and system."""
    lines = ["| lang | set | system | top-1 chapter | top-1 category | top-1 code | k | top-k chapter | "
             "top-k category | top-k code | ECE before | ECE after | answered without review | their category "
             "precision |", "|---" * 14 + "|"]
    for row in ordered(rows):
        if "top_k_chapter" not in row:
            continue
        lines.append(f"| {row['lang']} | {row['set']} | {row['system']} | {row['chapter_accuracy']:.3f} | "
                     f"{row['category_accuracy']:.3f} | {row['exact_match']:.3f} | {row['k']} | "
                     f"{row['top_k_chapter']:.3f} | {row['top_k_category']:.3f} | {row['top_k_exact']:.3f} | "
                     f"{row['ece_before']:.3f} | {row['ece_after']:.3f} | {row['answered']:.1%} | "
                     f"{row['answered_category_precision']:.3f} |")
    return "\n".join(lines)


def ordered(rows: list[dict]) -> list[dict]:
    """By language as asked, the test split before the reworded texts, systems in the order they were run."""
    languages = list(dict.fromkeys(row["lang"] for row in rows))
    return sorted(rows, key=lambda row: (languages.index(row["lang"]), row["set"] != "test"))


def table(rows: list[dict]) -> str:
    from tfnlp.bench.classifiers import rate_cell

    lines = ["| lang | set | system | chapter | category | exact | train s | texts/s (SavedModel) |", "|---" * 8 + "|"]
    for row in ordered(rows):
        exact = "-" if row["set"] == "reworded" else f"{row['exact_match']:.3f}"
        lines.append(f"| {row['lang']} | {row['set']} | {row['system']} | {row['chapter_accuracy']:.3f} | "
                     f"{row['category_accuracy']:.3f} | {exact} | {row['seconds']:.0f} | "
                     f"{rate_cell(row['texts_per_second'])} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.bench icd10`."""
    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench icd10", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny variant (600 labels, one epoch), French only "
                        "unless --langs says otherwise, only the default export timed")
    parser.add_argument("--langs", help=f"comma-separated, of {', '.join(LANGUAGES)} (default: fr,en; --quick: fr)")
    parser.add_argument("--reworded", type=int, default=3000, help="ICD-10-CM texts sampled for English")
    args = parser.parse_args(argv)
    langs = (args.langs or ("fr" if args.quick else "fr,en")).split(",")
    unknown = sorted(set(langs) - set(LANGUAGES))
    if unknown:
        raise UserError(f"unknown languages {unknown}; known: {', '.join(LANGUAGES)}")
    if args.reworded < 1:
        raise UserError(f"--reworded {args.reworded}: must be at least 1")
    reworded = min(args.reworded, 300) if args.quick else args.reworded
    with tempfile.TemporaryDirectory() as scratch:
        rows = [row for lang in langs for row in evaluate_language(lang, args.quick, reworded, Path(scratch))]
    print("\n" + table(rows))
    print("\nthe answers a person reads:\n\n" + answers_table(rows))
    best = max((row for row in rows if row["set"] == "test"), key=lambda row: row["category_accuracy"])
    print(f"headline: best category accuracy on the {best['lang']} test split: {best['system']} "
          f"{best['category_accuracy']:.3f}")
    return 0
