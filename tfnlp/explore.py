"""Know your data: a report of one source as training would split it, and the checks pipelines run before training.

    python -m tfnlp.explore cim10 [--set data.max_records=2000 ...] [--out DIR] [--html]
    python -m tfnlp.explore pubtator:../shared/data/ncbi-disease/pubtator --html [--lang en]

Writes `DIR/report.json` (every number of the report) and, with `--html`, a self-contained
`DIR/report.html` (figures embedded as PNG); prints a short summary with the anomalies. Exit 2
for a missing file, a malformed line, an unknown source, or a fatal anomaly (nothing usable).

`check(splits, ...)` is the data validation a pipeline runs before training: each anomaly with
its severity (`fatal`: nothing usable; `warning`), its count and up to five examples.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp.data.records import Record, Splits, TaggedSentence, entity_spans
from tfnlp.errors import UserError, cli_main

PARTS = ("train", "validation", "test")
EXAMPLES = 5
DEFAULT_MAX_WORDS = 48
# Report entries (at any depth) drawn as figures only, long lists: the HTML's tables leave them out, report.json
# keeps them.
FIGURE_ONLY = ("length_words_histogram", "top_all", "training_labels_per_category_all")
LIST_ROWS = 10
MATRIX_COLUMNS = 30  # the word models' model.max_input_tokens default
TOP_LABELS = 30
# Mis-decoded text: the replacement character, or UTF-8 read as Latin-1 ("Ã©" for "é", "â€™" for "’").
ENCODING_TROUBLE = re.compile("\ufffd|Ã[\u0080-\u00bf]|â€")
POS_SENTENCES = 3000  # sentences tagged with spaCy for part-of-speech counts (a sample of a larger corpus)


@dataclass
class Anomaly:
    """One problem found in the data.

    Attributes:
        name: what it is (`empty_texts`, `conflicting_labels`, ...).
        severity: `fatal` (nothing usable: a pipeline stops) or `warning`.
        count: how many records (or texts, labels) it concerns.
        description: what it means and what to do.
        examples: up to five of them.
    """

    name: str
    severity: str
    count: int
    description: str
    examples: list[str] = field(default_factory=list)


def _parts(splits: Splits) -> dict[str, list]:
    return {part: getattr(splits, part) for part in PARTS}


def _anomaly(found: list, name: str, description: str, examples: Sequence[str], count: int | None = None,
             severity: str = "warning") -> None:
    """Add an anomaly to `found` when it concerns anything."""
    total = len(examples) if count is None else count
    if total:
        shown = [str(example)[:200] for example in examples[:EXAMPLES]]
        found.append(Anomaly(name, severity, total, description, shown))


def check(splits: Splits, max_input_tokens: int = DEFAULT_MAX_WORDS) -> list[Anomaly]:
    """The data checks a pipeline runs before training, for text-label or tagged records."""
    first = splits.first()
    if first is None or not splits.train:
        return [Anomaly("no_records", "fatal", 0, "the training split holds no record: nothing to learn from")]
    return _check_tagged(splits) if isinstance(first, TaggedSentence) else _check_texts(splits, max_input_tokens)


def _check_texts(splits: Splits, max_input_tokens: int) -> list[Anomaly]:
    found: list[Anomaly] = []
    everything = [(part, record) for part, records in _parts(splits).items() for record in records]
    blank = [f"{part}: {record.target}" for part, record in everything if not record.text.strip()]
    severity = "fatal" if len(blank) == len(everything) else "warning"
    _anomaly(found, "empty_texts", "records whose text is empty or blank", blank, severity=severity)
    labels_of: dict[str, set[str]] = {}
    for _, record in everything:
        labels_of.setdefault(record.text.strip(), set()).add(record.target)
    conflicts = [f"{text!r}: {', '.join(sorted(labels))}" for text, labels in labels_of.items()
                 if text and len(labels) > 1]
    _anomaly(found, "conflicting_labels", "the same text with two or more different labels (no model can get "
             "all of them right)", conflicts)
    copies = Counter((part, record.text.strip(), record.target) for part, record in everything)
    duplicates = [f"{part}: {text!r} ({label}) x{count}" for (part, text, label), count in copies.items() if count > 1]
    _anomaly(found, "duplicates", "the same text and label more than once in a split (extra copies counted)",
             duplicates, sum(count - 1 for count in copies.values() if count > 1))
    train_texts = {record.text.strip() for record in splits.train}
    for part in ("validation", "test"):
        overlap = sorted({record.text.strip() for record in getattr(splits, part)} & train_texts - {""})
        _anomaly(found, f"train_{part}_overlap", f"texts in both the training and the {part} split (the {part} "
                 "score then flatters the model)", overlap)
    train_labels = Counter(record.target for record in splits.train)
    unseen = sorted({record.target for part in ("validation", "test") for record in getattr(splits, part)}
                    - set(train_labels))
    _anomaly(found, "labels_not_in_train", "labels of validation or test records that training never sees (a "
             "classifier cannot predict them)", unseen)
    _anomaly(found, "single_example_classes", "labels with a single training example", sorted(
        label for label, count in train_labels.items() if count == 1))
    long_texts = [f"{len(record.text.split())} words: {record.text[:80]}" for _, record in everything
                  if len(record.text.split()) > max_input_tokens]
    _anomaly(found, "long_texts", f"texts longer than model.max_input_tokens={max_input_tokens} words (cut in "
             "training and serving)", long_texts)
    mangled = [record.text for _, record in everything if ENCODING_TROUBLE.search(record.text)]
    _anomaly(found, "encoding", "texts with a replacement character or UTF-8 read as Latin-1 (Ã©, â€™); check "
             "data.encoding", mangled)
    return found


def _check_tagged(splits: Splits) -> list[Anomaly]:
    found: list[Anomaly] = []
    everything = [(part, sentence) for part, sentences in _parts(splits).items() for sentence in sentences]
    _anomaly(found, "empty_sentences", "sentences without a token",
             [part for part, sentence in everything if not sentence.tokens])
    copies = Counter((part, sentence.tokens) for part, sentence in everything if sentence.tokens)
    _anomaly(found, "duplicates", "the same token sequence more than once in a split (extra copies counted)",
             [f"{part}: {' '.join(tokens)}" for (part, tokens), count in copies.items() if count > 1],
             sum(count - 1 for count in copies.values() if count > 1))
    train_tokens = {sentence.tokens for sentence in splits.train}
    overlap = [" ".join(sentence.tokens) for sentence in splits.test if sentence.tokens in train_tokens
               and sentence.tokens]
    _anomaly(found, "train_test_overlap", "sentences in both the training and the test split", overlap)
    train_types = {kind for sentence in splits.train for kind in sentence.entity_types()}
    unseen = sorted({kind for part in ("validation", "test") for sentence in getattr(splits, part)
                     for kind in sentence.entity_types()} - train_types)
    _anomaly(found, "types_not_in_train", "entity types of validation or test sentences that training never sees",
             unseen)
    broken = [f"{part}: {' '.join(sentence.tokens[:12])}" for part, sentence in everything
              if _breaks_bio(sentence.tags)]
    _anomaly(found, "bio_breaks", "tag sequences that are not valid BIO2 (an I- that continues no entity)", broken)
    mangled = [" ".join(sentence.tokens) for _, sentence in everything
               if any(ENCODING_TROUBLE.search(token) for token in sentence.tokens)]
    _anomaly(found, "encoding", "tokens with a replacement character or UTF-8 read as Latin-1", mangled)
    return found


def _breaks_bio(tags: Sequence[str]) -> bool:
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return True
        previous = tag
    return False


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"count": len(ordered), "mean": round(sum(ordered) / len(ordered), 2), "min": ordered[0],
            "median": at(0.5), "p95": at(0.95), "max": ordered[-1]}


def text_report(splits: Splits) -> dict:
    """The numbers of a text-label data set (see the module docstring)."""
    from tfnlp.data.icd10 import category, chapter, looks_like_code, normalise_code

    parts = _parts(splits)
    train_labels = Counter(record.target for record in splits.train)
    report = {"kind": "texts with labels", "records": {part: len(records) for part, records in parts.items()},
              "labels": {"distinct_in_train": len(train_labels),
                         "distinct_overall": len({record.target for records in parts.values() for record in records}),
                         "top": train_labels.most_common(TOP_LABELS),
                         "top_all": train_labels.most_common(),  # the rank / frequency figure's data
                         "share_with_fewer_than": {str(n): _share(train_labels, lambda c, n=n: c < n)
                                                   for n in (2, 5, 10)},
                         "share_with_at_most_5": _share(train_labels, lambda c: c <= 5)}}
    report["labels_per_split"] = {part: dict(Counter(record.target for record in records).most_common(TOP_LABELS))
                                  for part, records in parts.items()}
    missing = {part: sorted(set(train_labels) - {record.target for record in records})
               for part, records in parts.items() if part != "train"}
    report["labels_missing_from"] = {part: labels[:50] for part, labels in missing.items()}
    report["missing_counts"] = {part: len(labels) for part, labels in missing.items()}
    report["length_words"] = {part: _quantiles([len(r.text.split()) for r in records])
                              for part, records in parts.items()}
    report["length_characters"] = {part: _quantiles([len(r.text) for r in records]) for part, records in parts.items()}
    report["length_words_histogram"] = {part: dict(sorted(Counter(len(r.text.split()) for r in records).items()))
                                        for part, records in parts.items()}
    train_words = Counter(word for record in splits.train for word in _words(record.text))
    report["vocabulary"] = {"train_words": len(train_words),
                            **{f"{part}_unseen_word_share": _unseen_share(getattr(splits, part), train_words)
                               for part in ("validation", "test")}}
    report["top_words_per_label"] = {label: Counter(word for record in splits.train if record.target == label
                                                    for word in _words(record.text)).most_common(8)
                                     for label, _ in train_labels.most_common(8)}
    targets = [record.target for records in parts.values() for record in records]
    if targets and all(looks_like_code(target) for target in targets):
        codes = {normalise_code(target) for target in targets}
        per_category = Counter(category(code) for code in codes)
        train_per_category = Counter(category(normalise_code(record.target)) for record in splits.train)
        test_categories = {category(normalise_code(record.target)) for record in splits.test}
        report["icd10"] = {"chapters": {part: dict(sorted(Counter(chapter(r.target) for r in records).items()))
                                        for part, records in parts.items()},
                           "codes": len(codes), "categories": len(per_category),
                           "codes_per_category": _quantiles(list(per_category.values())),
                           "training_labels_per_category": _quantiles(list(train_per_category.values())),
                           "share_of_categories_with_at_most_5_training_labels": _share(train_per_category,
                                                                                         lambda c: c <= 5),
                           "test_categories_unseen_in_training": len(test_categories - set(train_per_category)),
                           "top_categories": train_per_category.most_common(TOP_LABELS),
                           "training_labels_per_category_all": sorted(train_per_category.values(), reverse=True),
                           "code_lengths": dict(sorted(Counter(len(code) for code in codes).items()))}
    return report


def _share(counts: Counter, predicate) -> float:
    return round(sum(1 for count in counts.values() if predicate(count)) / max(len(counts), 1), 4)


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def _unseen_share(records: Sequence[Record], train_words: Counter) -> float:
    words = [word for record in records for word in _words(record.text)]
    return round(sum(word not in train_words for word in words) / max(len(words), 1), 4)


def tagged_report(splits: Splits, language: str | None = "en", pos_sentences: int = POS_SENTENCES) -> dict:
    """The numbers of a tagged data set; part-of-speech tags of entity tokens with spaCy when `language`."""
    parts = _parts(splits)
    entity_counts = {part: dict(sorted(Counter(kind for sentence in sentences for kind in _entities(sentence)).items()))
                     for part, sentences in parts.items()}
    overall = Counter()
    for counts in entity_counts.values():
        overall.update(counts)
    report = {"kind": "tagged tokens",
              "sentences": {part: len(sentences) for part, sentences in parts.items()},
              "tokens": {part: sum(len(s.tokens) for s in sentences) for part, sentences in parts.items()},
              "entities_per_type": entity_counts,
              "type_share": {part: {kind: round(count / max(sum(counts.values()), 1), 4)
                                    for kind, count in counts.items()}
                             for part, counts in {"all": dict(overall), **entity_counts}.items()},
              "sentence_length": {part: _quantiles([len(s.tokens) for s in sentences]) for part, sentences in
                                  parts.items()}}
    lengths: dict[str, list[int]] = {}
    suffixes: dict[str, Counter] = {}
    for sentences in parts.values():
        for sentence in sentences:
            for kind, words in entity_spans(sentence.tokens, sentence.tags):
                lengths.setdefault(kind, []).append(len(words))
                suffixes.setdefault(kind, Counter()).update(word.lower()[-3:] for word in words if len(word) >= 3)
    report["entity_length_tokens"] = {kind: _quantiles(values) for kind, values in sorted(lengths.items())}
    report["suffix_trigrams"] = {kind: counts.most_common(10) for kind, counts in sorted(suffixes.items())}
    if language:
        report["pos_of_entity_tokens"] = _entity_pos(splits.train[:pos_sentences], language)
    return report


def _entities(sentence: TaggedSentence) -> list[str]:
    return [tag[2:] for tag in sentence.tags if tag.startswith("B-")]


def _entity_pos(sentences: Sequence[TaggedSentence], language: str) -> dict:
    """{type: {POS: count}} of entity tokens, tagged in their sentences by the language's spaCy pipeline."""
    from spacy.tokens import Doc

    from tfnlp.data import spacy_pipelines

    nlp = spacy_pipelines.load(language, purpose="explore --lang")
    counts: dict[str, Counter] = {}
    docs = (Doc(nlp.vocab, words=list(sentence.tokens)) for sentence in sentences if sentence.tokens)
    tagged = [sentence for sentence in sentences if sentence.tokens]
    for index, (sentence, doc) in enumerate(zip(tagged, nlp.pipe(docs, batch_size=256), strict=True), start=1):
        for token, tag in zip(doc, sentence.tags, strict=True):
            if tag != "O":
                counts.setdefault(tag[2:], Counter())[token.pos_] += 1
        if index % 500 == 0 or index == len(tagged):
            print(f"\rpart-of-speech tags: {index}/{len(tagged)} sentences", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {"pipeline": spacy_pipelines.PIPELINES[language][0], "sentences": len(tagged),
            "counts": {kind: dict(counter.most_common()) for kind, counter in sorted(counts.items())}}


def reader_notes(source: str) -> dict[str, dict]:
    """What the reader of a `conll:` or `pubtator:` source repaired or could not use, per file: IOB1 starts
    rewritten as BIO2, mentions that do not fall on token boundaries (left untagged), repeated documents."""
    from tfnlp.data import conll, pubtator, sources

    name, _, argument = source.partition(":")
    notes: dict[str, dict] = {}
    if name == "conll" and argument:
        def read(path: Path) -> list:
            sentences, repaired = conll.read_conll(path)
            notes[path.name] = {"bio_repairs": repaired}
            return sentences
    elif name == "pubtator" and argument:
        def read(path: Path) -> list:
            sentences, stats = pubtator.read_pubtator(path)
            notes[path.name] = {"misaligned_mentions": stats.misaligned, "mentions": stats.mentions,
                                "repeated_documents": stats.duplicate_documents}
            return sentences
    else:
        return notes
    sources.tagged_parts(Path(argument), read)
    return notes


def figures(report: dict) -> dict[str, bytes]:
    """The report's figures as PNG bytes, by name."""
    from tfnlp import plots

    if report["kind"] == "tagged tokens":
        drawn = {"entities_per_type": plots.grouped_bars(report["entities_per_type"], "entities per type and split"),
                 "entity_length": plots.grouped_bars({kind: {"median": stats["median"], "p95": stats["p95"],
                                                             "max": stats["max"]}
                                                      for kind, stats in report["entity_length_tokens"].items()},
                                                     "entity length in tokens")}
        if "pos_of_entity_tokens" in report:
            drawn["pos_of_entity_tokens"] = plots.grouped_bars(report["pos_of_entity_tokens"]["counts"],
                                                               "part of speech of entity tokens, per type")
    else:
        icd = report.get("icd10")
        lengths = {part: [int(length) for length, count in histogram.items() for _ in range(count)]
                   for part, histogram in report["length_words_histogram"].items()}
        drawn = {"length_words": plots.histograms(lengths, "text length in words, per split", "words")}
        if icd:
            # ICD-10 codes are one label each (equal bars): what varies is how many labels each category and chapter
            # has, and the long tail of the categories.
            per_category = icd["training_labels_per_category_all"]
            drawn["labels_per_category"] = plots.count_histogram(
                per_category, f"training labels per ICD-10 category ({len(per_category):,} categories)",
                "training labels", "categories", "category")
            drawn["chapters"] = plots.grouped_bars(icd["chapters"], "labels per ICD-10 chapter (first letter) and "
                                                   "split", by_key=True)
            drawn["rank_frequency"] = plots.rank_frequency(per_category, "categories")
        else:
            top = dict(report["labels"]["top"][:TOP_LABELS])
            drawn["top_labels"] = plots.grouped_bars({"train": top}, f"the {len(top)} most frequent training labels")
            drawn["rank_frequency"] = plots.rank_frequency([n for _, n in report["labels"]["top_all"]], "labels")
    return {name: plots.figure_png(figure) for name, figure in drawn.items()}


def write_html(report: dict, anomalies: list[Anomaly], images: dict[str, bytes], path: Path, title: str) -> Path:
    """A self-contained page: the anomalies, the figures (embedded PNG) and every table of the report."""
    rows = "".join(f"<tr class='{a.severity}'><td>{escape(a.severity)}</td><td>{escape(a.name)}</td><td>{a.count}</td>"
                   f"<td>{escape(a.description)}<ul>{''.join(f'<li>{escape(e)}</li>' for e in a.examples)}</ul>"
                   "</td></tr>" for a in anomalies) or "<tr><td colspan=4>none found</td></tr>"
    pictures = "".join(f"<figure><img alt='{escape(name)}' src='data:image/png;base64,"
                       f"{base64.b64encode(png).decode()}'><figcaption>{escape(name)}</figcaption></figure>"
                       for name, png in images.items())
    tables = "".join(f"<h3>{escape(key.replace('_', ' '))}</h3>{_html_value(value)}" for key, value in report.items()
                     if key not in ("kind", *FIGURE_ONLY))
    raw = escape(json.dumps(report, ensure_ascii=False, indent=1))
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title><style>
body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse;margin:.5em 0}}
td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}} .fatal td{{background:#fdd}}
.warning td:first-child{{background:#ffd}} figure{{display:inline-block;margin:.5em}} img{{width:560px}}
</style></head><body><h1>{escape(title)}</h1><p>{escape(report['kind'])}</p>
<h2>Anomalies</h2><table><tr><th>severity</th><th>check</th><th>count</th><th>what, and examples</th></tr>{rows}</table>
<h2>Figures</h2>{pictures}<h2>Numbers</h2>{tables}
<details><summary>every number, as report.json holds it</summary><pre>{raw}</pre></details></body></html>""",
                    encoding="utf-8")
    return path


def _scalar(value) -> bool:
    return not isinstance(value, dict | list | tuple)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else escape(str(value))


def _html_value(value) -> str:
    """A readable table: a dict of dicts of numbers as one matrix (rows x columns), a dict of numbers as two columns,
    a list of pairs as its first rows, a long list cut short."""
    if isinstance(value, dict) and value and all(isinstance(row, dict) and all(map(_scalar, row.values()))
                                                  for row in value.values()):
        columns = list(dict.fromkeys(key for row in value.values() for key in row))[:MATRIX_COLUMNS]
        head = "<tr><th></th>" + "".join(f"<th>{escape(str(c))}</th>" for c in columns) + "</tr>"
        rows = "".join(f"<tr><th>{escape(str(name))}</th>" + "".join(f"<td>{_cell(row.get(c, ''))}</td>"
                                                                       for c in columns) + "</tr>"
                       for name, row in value.items())
        return f"<table>{head}{rows}</table>"
    if isinstance(value, dict):
        return "<table>" + "".join(f"<tr><th>{escape(str(k))}</th><td>{_html_value(v)}</td></tr>"
                                   for k, v in value.items() if k not in FIGURE_ONLY) + "</table>"
    if isinstance(value, list) and value and isinstance(value[0], list | tuple):
        shown = "".join("<tr>" + "".join(f"<td>{_cell(item)}</td>" for item in row) + "</tr>"
                        for row in value[:LIST_ROWS])
        more = f"<tr><td colspan=9>... {len(value) - LIST_ROWS} more</td></tr>" if len(value) > LIST_ROWS else ""
        return f"<table>{shown}{more}</table>"
    if isinstance(value, list):
        return escape(", ".join(map(str, value[:LIST_ROWS * 3])) + (" ..." if len(value) > LIST_ROWS * 3 else ""))
    return _cell(value)


def summary(report: dict, anomalies: list[Anomaly]) -> str:
    """A few lines for the terminal."""
    if report["kind"] == "tagged tokens":
        lines = [f"sentences {report['sentences']}, tokens {report['tokens']}",
                 f"entities per type: {report['entities_per_type']}"]
    else:
        labels = report["labels"]
        lines = [f"records {report['records']}",
                 f"labels: {labels['distinct_in_train']} in training; share with <= 5 training examples "
                 f"{labels['share_with_at_most_5']:.1%}, < 2: {labels['share_with_fewer_than']['2']:.1%}",
                 f"unseen words: validation {report['vocabulary']['validation_unseen_word_share']:.1%}, test "
                 f"{report['vocabulary']['test_unseen_word_share']:.1%}"]
        if "icd10" in report:
            icd = report["icd10"]
            lines.append(f"ICD-10: {icd['codes']} codes in {icd['categories']} categories; categories with <= 5 "
                         f"training labels {icd['share_of_categories_with_at_most_5_training_labels']:.1%}; "
                         f"{icd['test_categories_unseen_in_training']} test categories unseen in training")
    lines += [f"{a.severity}: {a.name}: {a.count} ({a.description})" for a in anomalies] or ["no anomaly found"]
    return "\n".join(lines)


def explore(source: str, data: config_lib.DataConfig, out: Path, html: bool, language: str | None,
            max_input_tokens: int) -> tuple[dict, list[Anomaly]]:
    """Load and split `source` as training would, write the report files under `out`; (report, anomalies)."""
    from tfnlp.data import sources

    loaded = sources.load(source, data)
    anomalies = check(loaded.splits, max_input_tokens)
    if isinstance(loaded.splits.first(), TaggedSentence):
        report = tagged_report(loaded.splits, language)
        report["reader"] = reader_notes(source)
    else:
        report = text_report(loaded.splits)
    report["source"] = source
    report["anomalies"] = [asdict(anomaly) for anomaly in anomalies]
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False, default=_plain))
    if html:
        write_html(report, anomalies, figures(report), out / "report.html", f"tfnlp data report: {source}")
    return report, anomalies


def _plain(value):
    return float(value) if isinstance(value, float) and math.isfinite(value) else str(value)


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.explore", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a data source as train takes it (cim10, csv:PATH, conll:DIR, ...)")
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="data.KEY=VALUE",
                        help="data options, as for train (data.max_records=..., data.text_column=...)")
    parser.add_argument("--out", default="report", help="folder for report.json (and report.html)")
    parser.add_argument("--html", action="store_true", help="also write a self-contained report.html with figures")
    parser.add_argument("--lang", default="en", help="spaCy pipeline for part-of-speech tags of entity tokens "
                        "(en or fr; none to skip)")
    parser.add_argument("--max-input-tokens", type=int, default=DEFAULT_MAX_WORDS,
                        help="texts longer than this many words are reported")
    args = parser.parse_args(argv)
    data = config_lib.apply_data_overrides(config_lib.DataConfig(source=args.source), args.overrides)
    report, anomalies = explore(args.source, data, Path(args.out), args.html,
                                None if args.lang == "none" else args.lang, args.max_input_tokens)
    print(summary(report, anomalies))
    print(f"report: {Path(args.out) / 'report.json'}" + (f", {Path(args.out) / 'report.html'}" if args.html else ""))
    fatal = [anomaly for anomaly in anomalies if anomaly.severity == "fatal"]
    if fatal:
        raise UserError(f"{fatal[0].name}: {fatal[0].description}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
