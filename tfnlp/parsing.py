"""Small parsing rules shared across floors (no dependency)."""

from __future__ import annotations


def ascii_number(text: str) -> bool:
    """Whether `text` is a non-negative decimal number in ASCII digits: `str.isdigit` also accepts `²` and `٧`, which
    `int` refuses or reads as another number (a model version folder, an offset, a Content-Length)."""
    return text.isascii() and text.isdigit()
