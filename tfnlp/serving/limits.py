"""What one request may cost tfnlp's server: a time limit and a share of a bound on the bytes in flight.

Both fronts (gRPC in `server`, REST in `rest`) call a model through `Limits.call`:

- **Deadline.** A request ends at `--request_timeout_in_ms` after it arrived, or at the gRPC client's own deadline when
  that comes first. A request still waiting then (for its turn, or for its batch) is not run; one running is answered
  DEADLINE_EXCEEDED (HTTP 504) at the deadline. A signature call already running in TensorFlow cannot be interrupted:
  it runs to its end in the background, and its bytes stay counted in flight until then, so that abandoned requests
  cannot pile up.
- **Bytes in flight.** The request payloads being handled at once are bounded (`--max_bytes_in_flight`); a request
  that would go over is refused at once with RESOURCE_EXHAUSTED (HTTP 429), one bigger than the whole bound with
  HTTP 413. The model's intermediate tensors grow with the payload, so this bounds the server's memory under a burst
  of large requests.
- **Memory back.** After a large request, glibc is asked to hand its freed memory back to the system (`malloc_trim`),
  so the resident size comes back down after a burst instead of staying at its peak (in the server's process here,
  and in the worker process that ran the call, `tfnlp.serving.worker`).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus

import grpc

from tfnlp.serving.store import ServingError

DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_MAX_BYTES_IN_FLIGHT = 128 * 1024 * 1024  # two requests of the largest size at once
TRIM_AFTER_BYTES = 1024 * 1024  # requests from this size on hand their memory back when they end


def malloc_trim_function() -> Callable[[], None]:
    """glibc's malloc_trim(0), or nothing where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


class Limits:
    """The deadline and the bytes-in-flight bound of one server (see the module docstring).

    Args:
        timeout_seconds: the longest a request may take, from its arrival to its answer.
        max_bytes_in_flight: the most request payload bytes handled at once.
        workers: signature calls that may run at once (the fronts' thread counts).
    """

    def __init__(self, timeout_seconds: float = DEFAULT_TIMEOUT_MS / 1000,
                 max_bytes_in_flight: int = DEFAULT_MAX_BYTES_IN_FLIGHT, workers: int = 64) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_bytes_in_flight = max_bytes_in_flight
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._calls = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="signature")
        self._trim = malloc_trim_function()

    def deadline(self, client_seconds: float | None = None) -> float:
        """The monotonic time a request arriving now must be answered by: the server's limit, or the client's
        (gRPC `time_remaining()`) when sooner."""
        seconds = self.timeout_seconds if client_seconds is None else min(self.timeout_seconds, client_seconds)
        return time.monotonic() + seconds

    def admit(self, size: int) -> None:
        """Count `size` payload bytes in flight until `release(size)`.

        Raises:
            ServingError: RESOURCE_EXHAUSTED (HTTP 429) when they would go over the bound; HTTP 413 when they are over
                the whole bound, so that no retry could succeed.
        """
        with self._lock:
            if size > self.max_bytes_in_flight:
                raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"a request of {size} bytes is over the server's bound on bytes in flight "
                                   f"({self.max_bytes_in_flight}, --max_bytes_in_flight); send fewer rows",
                                   HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            if self.in_flight + size > self.max_bytes_in_flight:
                raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"{self.in_flight} request bytes in flight, {size} more would pass the bound of "
                                   f"{self.max_bytes_in_flight} (--max_bytes_in_flight); retry",
                                   HTTPStatus.TOO_MANY_REQUESTS)
            self.in_flight += size
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def release(self, size: int) -> None:
        """The end of a request `admit` counted; a large one hands freed memory back to the system."""
        with self._lock:
            self.in_flight -= size
        if size >= TRIM_AFTER_BYTES:
            self._trim()

    def call(self, size: int, deadline: float, predict: Callable[[float], dict]) -> dict:
        """Run `predict(deadline)` for a request of `size` bytes, admitted, and answer by `deadline`.

        Raises:
            ServingError: RESOURCE_EXHAUSTED as `admit`; DEADLINE_EXCEEDED (HTTP 504) when the deadline passes before
                the answer; the call's own ServingError.
        """
        check_deadline(deadline, "before it ran")
        self.admit(size)
        try:
            future = self._calls.submit(_unless_late, predict, deadline)
        except RuntimeError:  # the pool is shut down: the server is stopping
            self.release(size)
            raise ServingError(grpc.StatusCode.UNAVAILABLE, "the server is stopping") from None
        # The bytes stay counted until the call really ends, even when its client has been answered.
        future.add_done_callback(lambda _: self.release(size))
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"no answer within the request's deadline ({self.timeout_seconds:g} s at most, "
                               "--request_timeout_in_ms, or the client's own); the call runs on to its end",
                               HTTPStatus.GATEWAY_TIMEOUT) from None


def _unless_late(predict: Callable[[float], dict], deadline: float) -> dict:
    # A call that waited for a free thread past its deadline is not run: its client has had its answer.
    check_deadline(deadline, "while it waited for a free thread")
    return predict(deadline)


def check_deadline(deadline: float, where: str) -> None:
    """DEADLINE_EXCEEDED (HTTP 504) when `deadline` has passed; `where` says at which step."""
    if time.monotonic() >= deadline:
        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, f"the request's deadline passed {where}",
                           HTTPStatus.GATEWAY_TIMEOUT)
