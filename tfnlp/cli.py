"""Small pieces shared by the command-line tools."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tfnlp.errors import UserError


def read_texts(texts: Sequence[str], file: str | None) -> list[str]:
    """The texts given on the command line, then the non-blank lines of `file`.

    Raises:
        UserError: a missing file, or no text at all.
    """
    result = list(texts)
    if file:
        path = Path(file)
        if not path.is_file():
            raise UserError(f"{path}: no such file (--file takes a text file, one text per line)")
        result += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not result:
        raise UserError("give a text, or --file with one text per line")
    return result
