"""De-identify a text source before training: names, e-mails, URLs, IPs, phone numbers (and dates) -> placeholders.

    python -m tfnlp.deid csv:reports.csv --out reports.deid.csv [--columns RawText] [--lang fr] [--dates]
    python -m tfnlp.deid conll:train.tsv --out train.deid.tsv --lang en
    python -m tfnlp.deid pubtator:corpus.txt --out corpus.deid.txt --lang en [--keep-values]

CSV / TSV / JSONL keep their columns and rows (the `--columns` are scrubbed). CoNLL files keep
every line: a token that a replaced stretch touches becomes the placeholder, its tag and the
other lines unchanged. PubTator documents keep their mentions, offsets moved to the new text;
annotated entities of CoNLL / PubTator are never replaced (an eponymous disease stays).
Counts per type are printed; the audit file (`--audit`, default OUT + `.audit.jsonl`) lists
each replacement (line, column or token, type, offsets; the replaced text only with
`--keep-values`). The input file is never modified; the output is written whole or not at all.
"""

from __future__ import annotations

import argparse
import csv
import errno
import io
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from tfnlp.data.deidentify import Scrubber, Span, replace_spans, shifted
from tfnlp.errors import UserError, cli_main, located

FORMATS = ("csv", "tsv", "jsonl", "conll", "pubtator")
CHUNK = 256  # texts given to spaCy at a time
PROGRESS_FROM = 1000  # records: a progress bar from this many


def source_format(spec: str) -> tuple[str, Path]:
    """(format, path) of `KIND:PATH`, or of a bare path by its suffix."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in FORMATS:
        return kind, Path(rest)
    path = Path(spec)
    by_suffix = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".conll": "conll", ".bio": "conll",
                 ".iob": "conll", ".pubtator": "pubtator"}
    if path.suffix.lower() not in by_suffix:
        raise UserError(f"{spec}: say which kind of file it is: {', '.join(f'{kind}:PATH' for kind in FORMATS)}")
    return by_suffix[path.suffix.lower()], path


class Audit:
    """Counts per type and the audit lines of every replacement."""

    def __init__(self, keep_values: bool) -> None:
        self.keep_values = keep_values
        self.counts: Counter = Counter()
        self.lines: list[str] = []

    def add(self, where: dict, span: Span, text: str) -> None:
        self.counts[span.kind] += 1
        entry = {**where, "type": span.kind, "start": span.start, "end": span.end, "placeholder": span.placeholder}
        if self.keep_values:
            entry["value"] = text[span.start:span.end]
        self.lines.append(json.dumps(entry, ensure_ascii=False))


def _progress(total: int):
    from tfnlp.progress import Counter

    return Counter("records", total) if total >= PROGRESS_FROM else None


def _chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def deidentify_table(path: Path, kind: str, scrubber: Scrubber, columns: Sequence[str], audit: Audit,
                     encoding: str) -> str:
    """A CSV / TSV / JSONL file with its `columns` scrubbed (other columns, order and rows kept)."""
    from tfnlp.data import tabular

    rows = list(tabular.jsonl_rows(path, encoding) if kind == "jsonl" else
                tabular.delimited_rows(path, "," if kind == "csv" else "\t", encoding))
    header = list(rows[0][1]) if rows else []
    missing = [column for column in columns if rows and column not in rows[0][1]]
    if missing:
        raise UserError(f"{path}: no column {', '.join(map(repr, missing))}; the file has {header}. "
                        "Name the text columns with --columns")
    progress = _progress(len(rows))
    for batch in _chunks(rows):
        for column in columns:
            texts = [str(row.get(column) or "") for _, row in batch]
            for (line, row), text, spans in zip(batch, texts, scrubber.spans(texts), strict=True):
                for span in spans:
                    audit.add({"line": line, "column": column}, span, text)
                if isinstance(row.get(column), str):
                    row[column] = replace_spans(text, spans)
        if progress:
            progress.update(len(batch))
    if kind == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for _, row in rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, delimiter="," if kind == "csv" else "\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(row for _, row in rows)
    return out.getvalue()


def conll_sentences(path: Path, lines: list[str]) -> Iterator[list[tuple[int, str, str]]]:
    """(line index, token, tag) of each sentence's lines of CoNLL file `path` (blank lines and `-DOCSTART-` are
    not sentences)."""
    sentence: list[tuple[int, str, str]] = []
    for index, line in enumerate(lines):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if sentence:
                yield sentence
            sentence = []
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) < 2 or not parts[0].strip():
            raise located(path, index + 1, f"expected a token and a tag, got {line!r}")
        sentence.append((index, parts[0], parts[-1].strip()))
    if sentence:
        yield sentence


def deidentify_conll(path: Path, scrubber: Scrubber, audit: Audit, encoding: str) -> str:
    """A CoNLL file with each token a replaced stretch touches turned into the placeholder; every other line and
    column as it was. Tokens tagged as entities are never replaced."""
    from tfnlp.data.conll import joined_sentence
    from tfnlp.data.tabular import decoded_text

    lines = decoded_text(path, encoding).split("\n")
    sentences = list(conll_sentences(path, lines))
    progress = _progress(len(sentences))
    for batch in _chunks(sentences):
        # Each sentence as its tokens joined by spaces, with their offsets (the CoNLL reader's own form).
        joined = [joined_sentence([token for _, token, _ in sentence], [tag for _, _, tag in sentence])
                  for sentence in batch]
        texts = [sentence.text for sentence in joined]
        protected = [[offsets for offsets, tag in zip(sentence.offsets, sentence.tags, strict=True) if tag != "O"]
                     for sentence in joined]
        for sentence, tagged, spans in zip(batch, joined, scrubber.spans(texts, protected), strict=True):
            for span in spans:
                audit.add({"line": sentence[0][0] + 1, "sentence_line": sentence[0][0] + 1}, span, tagged.text)
                for (index, token, _), (start, end) in zip(sentence, tagged.offsets, strict=True):
                    if start < span.end and end > span.start:
                        lines[index] = span.placeholder + lines[index][len(token):]
        if progress:
            progress.update(len(batch))
    return "\n".join(lines)


def deidentify_pubtator(path: Path, scrubber: Scrubber, audit: Audit) -> str:
    """A PubTator file with titles and abstracts scrubbed (mentions never touched) and mention offsets moved."""
    from tfnlp.data.pubtator import read_documents

    documents, _ = read_documents(path)
    progress = _progress(len(documents))
    blocks = []
    for batch in _chunks(documents):
        parts = [part for document in batch for part in (document.title, document.abstract)]
        bases = [base for document in batch for base in (0, len(document.title) + 1)]
        protected = [[(mention.start - base, mention.end - base) for mention in document.mentions]
                     for document in batch for base in (0, len(document.title) + 1)]
        found = scrubber.spans(parts, protected)
        for number, document in enumerate(batch):
            (title, title_spans), (abstract, abstract_spans) = ((parts[2 * number + i], found[2 * number + i])
                                                                for i in (0, 1))
            for span, text, base in [(span, title, 0) for span in title_spans] + [
                    (span, abstract, bases[2 * number + 1]) for span in abstract_spans]:
                audit.add({"pmid": document.pmid, "part": "title" if base == 0 else "abstract"}, span, text)
            new_title = replace_spans(title, title_spans)
            lines = [f"{document.pmid}|t|{new_title}", f"{document.pmid}|a|{replace_spans(abstract, abstract_spans)}"]
            for mention in document.mentions:
                if mention.start < len(title) + 1:
                    start, end = shifted(mention.start, title_spans), shifted(mention.end, title_spans)
                else:
                    base, new_base = len(title) + 1, len(new_title) + 1
                    start = new_base + shifted(mention.start - base, abstract_spans)
                    end = new_base + shifted(mention.end - base, abstract_spans)
                fields = [document.pmid, str(start), str(end), mention.text, mention.type, mention.concept]
                lines.append("\t".join(fields if mention.concept else fields[:-1]))
            blocks.append("\n".join(lines) + "\n")
        if progress:
            progress.update(len(batch))
    return "\n".join(blocks)


def publish(files: dict[Path, str]) -> None:
    """Write every file whole, then move them all in place together: a failure (a full disk) before the moves leaves
    the previous files and no `.partial` one, and the moves follow each other at once, so an output never stands
    beside the audit of another run.

    Raises:
        UserError: a file cannot be written (no space left, a folder in the way), naming it.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_name(f".{path.name}.partial")
            staged.append((staging, path))
            staging.write_text(content, encoding="utf-8")
    except OSError as error:
        for staging, _ in staged:
            staging.unlink(missing_ok=True)
        reason = error.strerror or str(error)
        raise UserError(f"{staged[-1][1]}: cannot be written ({reason}); nothing was written"
                        + ("; free some space and run again" if error.errno == errno.ENOSPC else "")) from None
    for staging, path in staged:
        os.replace(staging, path)


def check_paths(source: Path, out: Path, audit: Path) -> None:
    """Refuse, before anything is read, an input that is missing, an output or audit that is a folder, and any two of
    input, output and audit that are the same file (through a link too): the input is never modified."""
    if not source.is_file():
        raise UserError(f"{source}: no such file")
    named = {"--out": out, "--audit": audit}
    for flag, path in named.items():
        if path.is_dir():
            raise UserError(f"{flag} {path}: is a folder; give a file path")
    paths = {"the input": source, **named}
    names = list(paths)
    for first in range(len(names)):
        for second in range(first + 1, len(names)):
            a, b = paths[names[first]], paths[names[second]]
            if a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b)):
                raise UserError(f"{names[first]} and {names[second]} are the same file ({b}): the input is never "
                                "modified and the output and its audit are two files; write elsewhere")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.deid", description=__doc__.splitlines()[0])
    parser.add_argument("source", help=f"KIND:PATH ({', '.join(FORMATS)}), or a path whose suffix says it")
    parser.add_argument("--out", required=True, help="the de-identified file to write")
    parser.add_argument("--lang", default="fr", choices=("fr", "en"), help="language of the texts (person names)")
    parser.add_argument("--columns", default="RawText", help="CSV / TSV / JSONL: comma-separated text columns")
    parser.add_argument("--dates", action="store_true", help="replace dates too ([DATE])")
    parser.add_argument("--no-names", dest="names", action="store_false", help="patterns only (no spaCy)")
    parser.add_argument("--keep-values", action="store_true", help="write the replaced texts into the audit file")
    parser.add_argument("--audit", help="audit file (default: OUT.audit.jsonl)")
    parser.add_argument("--encoding", default="utf-8", help="text encoding of the input file")
    return parser


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.deid SOURCE --out FILE`."""
    args = build_parser().parse_args(argv)
    kind, path = source_format(args.source)
    out = Path(args.out)
    audit_path = Path(args.audit) if args.audit else out.with_name(out.name + ".audit.jsonl")
    check_paths(path, out, audit_path)
    scrubber = Scrubber(args.lang, names=args.names, dates=args.dates)
    audit = Audit(args.keep_values)
    if kind == "conll":
        content = deidentify_conll(path, scrubber, audit, args.encoding)
    elif kind == "pubtator":
        content = deidentify_pubtator(path, scrubber, audit)
    else:
        columns = [column for column in args.columns.split(",") if column]
        content = deidentify_table(path, kind, scrubber, columns, audit, args.encoding)
    publish({out: content, audit_path: "".join(line + "\n" for line in audit.lines)})
    counts = ", ".join(f"{kind} {audit.counts[kind]}" for kind in sorted(audit.counts)) or "nothing found"
    print(f"{out}: replaced {sum(audit.counts.values())} ({counts}); audit: {audit_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
