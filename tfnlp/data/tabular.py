"""The user's own records from CSV, TSV or JSON Lines files.

(Named `tabular` rather than `csv` so that the module never shadows the standard library.)
"""

from __future__ import annotations

import csv
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


def _checked_record(path: Path, line: int, row: dict, text_column: str, label_column: str) -> Record | None:
    missing = [column for column in (text_column, label_column) if column not in row]
    if missing:
        raise located(path, line, f"no column {', '.join(map(repr, missing))}; the row has {sorted(row)}. "
                                  "Name the columns with --set data.text_column=... data.label_column=...")
    text, label = row[text_column], row[label_column]
    if text is None or label is None:
        raise located(path, line, f"row has fewer fields than the header ({text_column!r}, {label_column!r})")
    text, label = str(text).strip(), str(label).strip()
    # A row with no label cannot be learned from; skipping it silently would lose data, so refuse.
    if not label:
        raise located(path, line, f"empty {label_column!r}")
    return Record(text, label)


def _delimited_rows(path: Path, delimiter: str):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        if reader.fieldnames is None:
            raise located(path, 1, "empty file: expected a header line")
        try:
            for row in reader:
                if None in row:
                    raise located(path, reader.line_num, f"more fields than the header's {len(reader.fieldnames)}")
                yield reader.line_num, row
        except csv.Error as error:
            raise located(path, reader.line_num, f"unreadable line ({error})") from None


def _jsonl_rows(path: Path):
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise located(path, line_number, f"not a JSON object ({error.msg})") from None
            if not isinstance(row, dict):
                raise located(path, line_number, f"expected a JSON object, got {type(row).__name__}")
            yield line_number, row


def read_records(path: Path, text_column: str, label_column: str) -> list[Record]:
    """Read one CSV, TSV or JSONL file into records.

    Raises:
        UserError: missing file, unknown type, missing column, or a malformed line (with its number).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    kind = file_format(path)
    rows = _jsonl_rows(path) if kind == "jsonl" else _delimited_rows(path, "," if kind == "csv" else "\t")
    records = [_checked_record(path, line, row, text_column, label_column) for line, row in rows]
    if not records:
        raise located(path, None, "no records")
    return records
