"""Entity taggers side by side on the NCBI disease corpus (train on train, select on devel, report on test).

    python -m tfnlp.bench ner [--quick] [--taggers ner_bilstm,ner_bert,ner_gpt]
                              [--data conll:../shared/data/ncbi-disease/conll | pubtator:...]

Each tagger experiment is trained with `tfnlp.train` on the given data; the first table shows test
entity precision / recall / F1 (seqeval, strict BIO2), training seconds, and tokens per second
through the exported SavedModel on the test sentences (raw text in, tokenised in the graph); the
second, each tagger's F1 per entity type (the PubTator form of NCBI has four).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tfnlp.errors import UserError

TAGGERS = ("ner_bilstm", "ner_bert", "ner_gpt")
NCBI_CONLL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ncbi-disease" / "conll"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.bench ner`."""
    from tfnlp.bench.classifiers import configured, run_one

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench ner", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny variants on 600 sentences, one epoch")
    parser.add_argument("--data", default=f"conll:{NCBI_CONLL}", help="a tagging source (conll:, pubtator:, ...)")
    parser.add_argument("--taggers", default=",".join(TAGGERS), help="comma-separated tagger experiments")
    args = parser.parse_args(argv)
    taggers = [name for name in args.taggers.split(",") if name]
    unknown = sorted(set(taggers) - set(TAGGERS))
    if unknown or not taggers:
        raise UserError(f"--taggers {args.taggers!r}: choose among {', '.join(TAGGERS)}")
    if args.data == f"conll:{NCBI_CONLL}" and not NCBI_CONLL.is_dir():
        raise UserError(f"{NCBI_CONLL}: the NCBI disease corpus is not there; give --data conll:DIR")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in taggers:
            experiment = configured(name, args.data, None, args.quick,
                                    ["data.max_records=600"] if args.quick else [])
            results[name] = run_one(experiment, Path(scratch) / name, tokens_of=lambda sentence: len(sentence.tokens))
    print("\n" + scores_table(results) + "\n\n" + per_type_table(results))
    best = max(results, key=lambda name: results[name]["entity_f1"])
    print(f"headline: best test entity F1 {results[best]['entity_f1']:.3f} ({best}) on {args.data}")
    return 0


def scores_table(results: dict[str, dict]) -> str:
    """Markdown: one row per tagger with its test entity scores, training seconds and serving speed."""
    lines = ["| tagger | entity P | entity R | entity F1 | token acc. | train s | tokens/s (SavedModel) |",
             "|---" * 7 + "|"]
    for name, scores in results.items():
        lines.append(f"| {name} | {scores['entity_precision']:.3f} | {scores['entity_recall']:.3f} | "
                     f"{scores['entity_f1']:.3f} | {scores['token_accuracy']:.3f} | "
                     f"{scores['train_seconds']:.0f} | {scores['tokens_per_second']:.0f} |")
    return "\n".join(lines)


def per_type_table(results: dict[str, dict]) -> str:
    """Markdown: test F1 per entity type (rows, with support) and tagger (columns)."""
    names = list(results)
    f1 = {name: {row["type"]: row["f1"] for row in results[name]["per_type"]} for name in names}
    support = {row["type"]: row["support"] for name in names for row in results[name]["per_type"]}
    lines = ["| entity type | test entities | " + " | ".join(f"{name} F1" for name in names) + " |",
             "|---" * (len(names) + 2) + "|"]
    for kind in sorted(support):
        lines.append(f"| {kind} | {support[kind]} | " + " | ".join(
            f"{f1[name][kind]:.3f}" if kind in f1[name] else "-" for name in names) + " |")
    return "\n".join(lines)
