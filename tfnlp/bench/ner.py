"""Entity taggers side by side on the NCBI disease corpus (train on train, select on devel, report on test).

    python -m tfnlp.bench ner [--quick] [--taggers ner_bilstm,ner_bert,ner_gpt] [--decoders constrained,crf]
                              [--data conll:../shared/data/ncbi-disease/conll | pubtator:...] [--no-spacy]

Each tagger experiment is trained with `tfnlp.train` on the given data, once per decoder asked
(default: the experiment's own); a structured decoder's run also reads the same model's scores
token by token (`argmax` rows: what the decoder adds). spaCy's NER trained on the same split
(`tfnlp.bench.spacy_ner`) is the last row. The first table shows test entity precision / recall /
F1 (seqeval, strict BIO2), training seconds, and tokens per second (through the exported SavedModel
on the test sentences, raw text in, tokenised in the graph; spaCy's in process); the second, F1 per
entity type (the PubTator form of NCBI has four).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tfnlp.errors import UserError
from tfnlp.model_settings import DECODERS

TAGGERS = ("ner_bilstm", "ner_bert", "ner_gpt")
NCBI_CONLL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ncbi-disease" / "conll"
SPACY_ROW = "spaCy ner (en, efficiency)"
# --quick checks that the bench runs, in about a minute: the BiLSTM and one transformer (ner_gpt shares its code
# path with ner_bert; ask for it with --taggers).
QUICK_TAGGERS = ("ner_bilstm", "ner_bert")
QUICK_SENTENCES = 300


def chosen(value: str, known: Sequence[str], option: str) -> list[str]:
    """The comma-separated names of an option, each one of `known` (UserError naming the option otherwise)."""
    names = [name for name in value.split(",") if name]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise UserError(f"{option} {value!r}: choose among {', '.join(known)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.bench ner`."""
    from tfnlp.bench.classifiers import configured, run_one

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench ner", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny variants on {QUICK_SENTENCES} sentences, one epoch, {', '.join(QUICK_TAGGERS)} "
                        "unless --taggers says otherwise; spaCy for a few hundred steps")
    parser.add_argument("--data", default=f"conll:{NCBI_CONLL}", help="a tagging source (conll:, pubtator:, ...)")
    parser.add_argument("--taggers", help=f"comma-separated tagger experiments (default: {','.join(TAGGERS)})")
    parser.add_argument("--decoders", default="", help="comma-separated model.decoder values to train each tagger "
                        "with (default: each experiment's own)")
    parser.add_argument("--no-spacy", dest="spacy", action="store_false", help="leave out the spaCy row")
    args = parser.parse_args(argv)
    taggers = chosen(args.taggers or ",".join(QUICK_TAGGERS if args.quick else TAGGERS), TAGGERS, "--taggers")
    decoders = chosen(args.decoders, DECODERS, "--decoders") or [""]
    if not taggers:
        raise UserError(f"--taggers {args.taggers!r}: choose among {', '.join(TAGGERS)}")
    if args.data == f"conll:{NCBI_CONLL}" and not NCBI_CONLL.is_dir():
        raise UserError(f"{NCBI_CONLL}: the NCBI disease corpus is not there; give --data conll:DIR")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in taggers:
            for decoder in decoders:
                overrides = ([f"data.max_records={QUICK_SENTENCES}"] if args.quick else []) + (
                    [f"model.decoder={decoder}"] if decoder else [])
                experiment = configured(name, args.data, None, args.quick, overrides)
                scores = run_one(experiment, Path(scratch) / f"{name}-{decoder}",
                                 tokens_of=lambda sentence: len(sentence.tokens))
                results.update(decoder_rows(name, experiment.model.decoder, scores))
        if args.spacy:
            results[SPACY_ROW] = spacy_row(experiment, Path(scratch) / "spacy", args.quick)
    print("\n" + scores_table(results) + "\n\n" + per_type_table(results))
    if args.spacy:
        from tfnlp.bench.spacy_ner import spacy_description

        print(f"\n{SPACY_ROW}: {spacy_description()}")
    best = max(results, key=lambda name: results[name]["entity_f1"])
    print(f"headline: best test entity F1 {results[best]['entity_f1']:.3f} ({best}) on {args.data}")
    return 0


def decoder_rows(name: str, decoder: str, scores: dict) -> dict[str, dict]:
    """The run's row (`tagger · decoder`) and, for a structured decoder, the same model read by argmax."""
    rows = {f"{name} · {decoder}": scores}
    argmax = scores["systems"].get("model_argmax")
    if argmax is not None:
        rows = {f"{name} · {decoder} scores, argmax": {**argmax, "train_seconds": float("nan"),
                                                       "tokens_per_second": float("nan"), "per_type": []}, **rows}
    return rows


def spacy_row(experiment, folder: Path, quick: bool) -> dict:
    """spaCy's NER on the experiment's split (the same data settings, so the same sentences)."""
    from tfnlp.bench.spacy_ner import train_and_score
    from tfnlp.data import sources

    return train_and_score(sources.load(experiment.data.source, experiment.data).splits, folder, quick)


def scores_table(results: dict[str, dict]) -> str:
    """Markdown: one row per tagger with its test entity scores, training seconds and serving speed."""
    from tfnlp.bench.classifiers import rate_cell

    lines = ["| tagger | entity P | entity R | entity F1 | token acc. | train s | tokens/s (SavedModel) |",
             "|---" * 7 + "|"]
    for name, scores in results.items():
        lines.append(f"| {name} | {scores['entity_precision']:.3f} | {scores['entity_recall']:.3f} | "
                     f"{scores['entity_f1']:.3f} | {scores['token_accuracy']:.3f} | "
                     f"{rate_cell(scores['train_seconds'])} | {rate_cell(scores['tokens_per_second'])} |")
    return "\n".join(lines)


def per_type_table(results: dict[str, dict]) -> str:
    """Markdown: test F1 per entity type (rows, with support) and tagger (columns)."""
    names = [name for name in results if results[name]["per_type"]]
    f1 = {name: {row["type"]: row["f1"] for row in results[name]["per_type"]} for name in names}
    support = {row["type"]: row["support"] for name in names for row in results[name]["per_type"]}
    lines = ["| entity type | test entities | " + " | ".join(f"{name} F1" for name in names) + " |",
             "|---" * (len(names) + 2) + "|"]
    for kind in sorted(support):
        lines.append(f"| {kind} | {support[kind]} | " + " | ".join(
            f"{f1[name][kind]:.3f}" if kind in f1[name] else "-" for name in names) + " |")
    return "\n".join(lines)
