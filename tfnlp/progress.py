"""Progress lines for the steps of a command that take more than a moment: a line when a step starts, one when it
ends with its duration, and a counter for long loops. No TensorFlow: commands that do not train use it too."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """`what...` before the block and `what: N s` after it (flushed at once: a pipe or a log shows it live)."""
    print(f"{what}...", flush=True)
    started = time.perf_counter()
    yield
    print(f"{what}: {time.perf_counter() - started:.0f} s", flush=True)


class Counter:
    """`what: done / total` on one line of standard error, redrawn at most every `every` seconds (a line per update
    when standard error is not a terminal, so logs stay readable)."""

    def __init__(self, what: str, total: int, every: float = 1.0) -> None:
        self.what, self.total, self.every, self.done = what, total, every, 0
        self._last = 0.0
        self._terminal = sys.stderr.isatty()

    def update(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= self.every or self.done >= self.total:
            self._last = now
            ending = "\n" if not self._terminal or self.done >= self.total else ""
            start = "\r" if self._terminal else ""
            print(f"{start}{self.what}: {self.done:,} / {self.total:,}", end=ending, file=sys.stderr, flush=True)
