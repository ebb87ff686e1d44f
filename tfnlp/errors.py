"""Errors that a user can fix, and the CLI wrapper that prints them without a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., int | None])

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in what the user asked for (name, path, column, line, override).

    The message names the file and line or the key, and what would fix it.
    """


def located(path: object, line: int | None, message: str) -> UserError:
    """Build a UserError that names a file (and line) before the message."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return UserError(f"{where}: {message}")


def cli_main(func: F) -> F:
    """Decorate a CLI entry point: a UserError prints `error: ...` and exits 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None

    return wrapper  # type: ignore[return-value]
