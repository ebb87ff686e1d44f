"""A quiet terminal for tfnlp's commands: TensorFlow's C++ log lines filtered out of standard error.

TensorFlow 2.21 logs through absl from C++ (`I0000 ... cudart_stub.cc:31] Could not find cuda
drivers`, `E0000 ... failed call to cuInit: UNKNOWN ERROR (303)` on a machine with no GPU,
`E0000 ... oneDNN supports DT_BOOL only on platforms with AVX-512`) and `TF_CPP_MIN_LOG_LEVEL`
no longer reaches those lines. A command's standard error therefore goes through a pipe whose
reader drops TensorFlow's native info, warning and error lines (what goes wrong surfaces as a
Python exception, which is kept) and the lines that come with them, and passes everything else
on: Python warnings, tracebacks, tfnlp's own messages and fatal native lines (`F...`).
`TFNLP_NATIVE_LOGS=1` turns the filter off, to see every native line.

Python libraries that warn on the root logger (`logging.warning(...)`), out of reach of their own
loggers' levels, are quietened the same way for the commands that use them (`drop_root_notices`), and so is
TensorFlow's retracing warning where a command builds several modules of one class on purpose
(`drop_retracing_notices`, the benches).
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading

# absl's prefix: severity letter, MMDD, time, thread id, file:line]
NATIVE_LINE = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]")
NOT_FATAL = re.compile(rb"^[IWE]\d{4} ")
COMPANIONS = (  # lines that come with the native ones, without their prefix
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"To enable the following instructions:",  # the CPU-feature notice's second line
    b"rebuild TensorFlow with the appropriate compiler flags",
)
_installed = False


def keep(line: bytes) -> bool:
    """Whether a line of standard error reaches the terminal."""
    if NATIVE_LINE.match(line) and NOT_FATAL.match(line):
        return False
    return not any(marker in line for marker in COMPANIONS)


def filter_native_logs() -> None:
    """Route this process's standard error (file descriptor 2, children included) through `keep`, once."""
    global _installed
    if _installed or os.environ.get("TFNLP_NATIVE_LOGS") == "1":
        return
    _installed = True
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    reader = threading.Thread(target=_pass_on, args=(read_end, terminal), name="tfnlp-stderr", daemon=True)
    reader.start()

    def restore() -> None:
        # Tracebacks are written before exit handlers run: put fd 2 back (the pipe's end) and let the reader finish.
        sys.stderr.flush()
        os.dup2(terminal, 2)
        reader.join(timeout=5)

    atexit.register(restore)


def _pass_on(read_end: int, terminal: int) -> None:
    pending = b""
    while chunk := os.read(read_end, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if keep(line))
        if kept:
            os.write(terminal, kept)
    if pending and keep(pending):
        os.write(terminal, pending)


class RootNotices(logging.Filter):
    """Drops the records under ERROR that a package's modules log on the root logger."""

    def __init__(self, package: str) -> None:
        super().__init__()
        self.marker = f"{os.sep}{package}{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or self.marker not in record.pathname


def drop_root_notices(package: str) -> None:
    """Keep `package`'s warnings on the root logger off the terminal (its errors still reach it): Apache Beam warns
    there, at import and while a pipeline runs, that Google Cloud clients and a platform module it does not use here
    are missing ("apitools not found", "Resource module is not available"). Call before importing the package."""
    root, notices = logging.getLogger(), RootNotices(package)
    if not any(isinstance(item, RootNotices) and item.marker == notices.marker for item in root.filters):
        root.addFilter(notices)


class RetracingNotices(logging.Filter):
    """Drops TensorFlow's "N out of the last M calls to <function> triggered tf.function retracing" records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def drop_retracing_notices() -> None:
    """Keep TensorFlow's retracing warning off the terminal of a command that builds several serving modules of one
    class on purpose (the benches: `bench icd10`'s decoding variants, `bench ner`'s taggers): TensorFlow counts the
    traces of one Python function across every object, so each new module's first trace, as it must be, reads as
    needless retracing."""
    logger = logging.getLogger("tensorflow")
    if not any(isinstance(item, RetracingNotices) for item in logger.filters):
        logger.addFilter(RetracingNotices())


def is_command_start() -> bool:
    """Whether this process is a tfnlp command starting: `python -m tfnlp.X` (Python sets argv[0] to `-m` while it
    imports the package) or a `tfnlp-*` console script."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or os.path.basename(first).startswith("tfnlp-")
