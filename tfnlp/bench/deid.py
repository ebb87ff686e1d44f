"""Person names found by de-identification, against a labelled set: precision and recall per language.

    python -m tfnlp.bench deid [--file tests/data/deid_names.tsv]

The labelled set holds sentences written for this measure (clinical phrasing, titles, initials, capitals-only
surnames, particles; and eponymous diseases, places, drugs that are not names): `language<TAB>text` with each
name in `[[ ]]`. A found name counts as right when its span is exactly a labelled one; `names hidden` counts the
labelled names whose every character is replaced (what matters for privacy).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from tfnlp.errors import UserError, located

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "tests" / "data" / "deid_names.tsv"
MARKED = re.compile(r"\[\[(.+?)\]\]")


def read_labelled(path: Path) -> dict[str, list[tuple[str, list[tuple[int, int]]]]]:
    """{language: [(text, [(start, end) of each name])]} of a labelled file."""
    found: dict[str, list] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        language, tab, marked = line.partition("\t")
        if not tab:
            raise located(path, number, "expected language<TAB>text")
        text, spans, position = "", [], 0
        for match in MARKED.finditer(marked):
            text += marked[position:match.start()]
            spans.append((len(text), len(text) + len(match.group(1))))
            text += match.group(1)
            position = match.end()
        found.setdefault(language, []).append((text + marked[position:], spans))
    return found


def measure(sentences: list[tuple[str, list[tuple[int, int]]]], language: str) -> dict[str, float]:
    """Exact-span precision and recall of the names `Scrubber` finds, and the share of names wholly hidden."""
    from tfnlp.data.deidentify import Scrubber

    texts = [text for text, _ in sentences]
    found = Scrubber(language).name_spans(texts)
    hits = predicted = wanted = hidden = 0
    for (_, gold), spans in zip(sentences, found, strict=True):
        mine = {(span.start, span.end) for span in spans}
        hits += len(mine & set(gold))
        predicted, wanted = predicted + len(mine), wanted + len(gold)
        hidden += sum(all(any(span.start <= i < span.end for span in spans) for i in range(start, end))
                      for start, end in gold)
    return {"sentences": len(sentences), "names": wanted, "found": predicted,
            "precision": hits / predicted if predicted else 0.0, "recall": hits / wanted if wanted else 0.0,
            "names_hidden": hidden / wanted if wanted else 0.0}


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench deid", description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(DEFAULT_FILE), help="a labelled file (language<TAB>text with [[names]])")
    parser.add_argument("--quick", action="store_true", help="the same (the set is small)")
    args = parser.parse_args(argv)
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    print("| language | sentences | names | found | precision | recall | names hidden |\n|---|---|---|---|---|---|---|")
    for language, sentences in read_labelled(path).items():
        scores = measure(sentences, language)
        print(f"| {language} | {scores['sentences']} | {scores['names']} | {scores['found']} | "
              f"{scores['precision']:.3f} | {scores['recall']:.3f} | {scores['names_hidden']:.3f} |")
    return 0
