"""Entity taggers side by side on the NCBI disease corpus (train on train, select on devel, report on test).

    python -m tfnlp.bench ner [--quick] [--data conll:../shared/data/ncbi-disease/conll]

Each tagger experiment is trained with `tfnlp.train` on the given data; the table shows test
entity precision / recall / F1 (seqeval, strict BIO2), training seconds, and tokens per second
through the exported SavedModel on the test sentences (raw text in, tokenised in the graph).
Only `ner_bilstm` exists so far; `ner_bert` and `ner_gpt` join the table when they do.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp import experiments
from tfnlp.errors import UserError

TAGGERS = ("ner_bilstm",)
NCBI_CONLL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ncbi-disease" / "conll"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.bench ner`."""
    from tfnlp.bench.classifiers import run_one

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench ner", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs per tagger")
    parser.add_argument("--data", default=f"conll:{NCBI_CONLL}", help="a tagging source (conll:, pubtator:, ...)")
    args = parser.parse_args(argv)
    if args.data == f"conll:{NCBI_CONLL}" and not NCBI_CONLL.is_dir():
        raise UserError(f"{NCBI_CONLL}: the NCBI disease corpus is not there; give --data conll:DIR")
    lines = ["| tagger | entity P | entity R | entity F1 | token acc. | train s | tokens/s (SavedModel) |",
             "|---" * 7 + "|"]
    with tempfile.TemporaryDirectory() as scratch:
        for name in TAGGERS:
            experiment = experiments.get(name)
            data = dataclasses.replace(experiment.data, source=args.data)
            epochs = 2 if args.quick else experiment.train.epochs
            experiment = config_lib.validate(dataclasses.replace(
                experiment, data=data, train=dataclasses.replace(experiment.train, epochs=epochs)))
            scores = run_one(experiment, Path(scratch) / name, tokens_of=lambda sentence: len(sentence.tokens))
            lines.append(f"| {name} | {scores['entity_precision']:.3f} | {scores['entity_recall']:.3f} | "
                         f"{scores['entity_f1']:.3f} | {scores['token_accuracy']:.3f} | "
                         f"{scores['train_seconds']:.0f} | {scores['tokens_per_second']:.0f} |")
    print("\n" + "\n".join(lines))
    print(f"headline: {TAGGERS[-1]} test entity F1 {scores['entity_f1']:.3f} on {args.data}")
    return 0
