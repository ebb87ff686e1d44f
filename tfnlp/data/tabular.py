"""The user's own records from CSV, TSV or JSON Lines files.

(Named `tabular` rather than `csv` so that the module never shadows the standard library.)
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tfnlp.data.records import Record
from tfnlp.errors import UserError, located

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def file_format(path: Path) -> str:
    """`csv`, `tsv` or `jsonl`, from the file's suffix."""
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise UserError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(FORMATS)}") from None


def _check_columns(path: Path, line: int, present, wanted: tuple[str, ...], where: str) -> None:
    missing = [column for column in wanted if column not in present]
    if missing:
        raise located(path, line, f"no column {', '.join(map(repr, missing))}; {where} has {sorted(present)}. "
                                  "Name the columns with --set data.text_column=... data.label_column=...")


def _checked_record(path: Path, line: int, row: dict, text_column: str, label_column: str) -> Record | None:
    _check_columns(path, line, row, (text_column, label_column), "the row")
    text, label = row[text_column], row[label_column]
    if text is None or label is None:
        raise located(path, line, f"row has fewer fields than the header ({text_column!r}, {label_column!r})")
    text, label = str(text).strip(), str(label).strip()
    # A row with no label cannot be learned from; skipping it silently would lose data, so refuse.
    if not label:
        raise located(path, line, f"empty {label_column!r}")
    return Record(text, label)


def decoded_text(path: Path, encoding: str = "utf-8") -> str:
    """The whole file as text (a UTF-8 byte-order mark dropped); UserError naming the first line that is not
    `encoding` text, and the option that reads it."""
    raw = path.read_bytes()
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    try:
        return raw.decode("utf-8-sig" if utf8 else encoding)
    except LookupError:
        raise UserError(f"data.encoding={encoding!r}: unknown encoding (utf-8, latin-1, cp1252, ...)") from None
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        hint = " (if the file is Latin-1 or Windows-1252, add --set data.encoding=latin-1 or cp1252)" if utf8 else ""
        raise located(path, line, f"not {encoding} text: byte 0x{raw[error.start]:02x} cannot be decoded"
                                  f"{hint}") from None


def delimited_rows(path: Path, delimiter: str, encoding: str, columns: tuple[str, ...] = ()):
    """(line number, row) of a CSV or TSV file; the header (line 1) must hold `columns`."""
    # strict: a stray quote is an error, not the start of a field that silently swallows the following lines.
    reader = csv.DictReader(io.StringIO(decoded_text(path, encoding), newline=""), delimiter=delimiter,
                            strict=True)
    if reader.fieldnames is None:
        raise located(path, 1, "empty file: expected a header line")
    _check_columns(path, 1, reader.fieldnames, columns, "the header")
    while True:
        start = reader.line_num + 1  # the first line of the row about to be read
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise located(path, start, f"unreadable row ({error}): a quoted field that starts in this row is not "
                                       'closed, or a quote inside a field is not doubled ("")') from None
        if None in row:
            raise located(path, start, f"more fields than the header's {len(reader.fieldnames)}")
        yield start, row


def jsonl_rows(path: Path, encoding: str):
    for line_number, line in enumerate(decoded_text(path, encoding).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise located(path, line_number, f"not a JSON object ({error.msg})") from None
        if not isinstance(row, dict):
            raise located(path, line_number, f"expected a JSON object, got {type(row).__name__}")
        yield line_number, row


def read_records(path: Path, text_column: str, label_column: str, encoding: str = "utf-8") -> list[Record]:
    """Read one CSV, TSV or JSONL file into records.

    Raises:
        UserError: missing file, unknown type, text that is not `encoding`, missing column, or a malformed line
            (with its number; for a broken quote, the line where the row starts).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    kind = file_format(path)
    rows = (jsonl_rows(path, encoding) if kind == "jsonl"
            else delimited_rows(path, "," if kind == "csv" else "\t", encoding, (text_column, label_column)))
    records = [_checked_record(path, line, row, text_column, label_column) for line, row in rows]
    if not records:
        raise located(path, None, "no records")
    return records
