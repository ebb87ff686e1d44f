"""Checks that a folder can be written, made before any long work (training, downloads) starts."""

from __future__ import annotations

import os
from pathlib import Path

from tfnlp.errors import UserError


def writable_folder(path: str | Path, what: str) -> Path:
    """`path` as a folder tfnlp may create and write into; UserError naming `what` (`--workdir`, `TFNLP_CACHE`, ...)
    when it is a file, lies under a file, or is not writable. Nothing is created.

    Args:
        path: the folder, existing or not.
        what: how the user named it, for the message.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path}: is a file, not a folder")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what} {path}: cannot be created under {existing}, which is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: {existing} is not writable (check its permissions, or choose another folder)")
    return path
