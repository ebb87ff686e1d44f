"""Data sources -> (text, target) records, and seeded splits."""

from __future__ import annotations

from typing import NamedTuple


class Record(NamedTuple):
    """One example: the input text and its target (a code, a label, ...)."""

    text: str
    target: str
