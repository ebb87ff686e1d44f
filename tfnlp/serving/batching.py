"""Server-side batching for tfnlp's server: concurrent requests merged into one signature call.

Read from TF Serving's `--batching_parameters_file` (an ASCII `BatchingParameters` protobuf):

    max_batch_size { value: 64 }
    batch_timeout_micros { value: 2000 }
    max_enqueued_batches { value: 64 }
    num_batch_threads { value: 2 }

Requests for the same model version and signature, with inputs of the same names, dtypes and
row shapes, wait in one queue. A worker takes the queue's requests as one batch when a batch
thread is free: up to `max_batch_size` rows, waiting at most `batch_timeout_micros` after the
oldest request for more. The merged inputs are concatenated along the first axis and the
outputs split back by rows, as TF Serving does: an output padded to the longest row (such as
`attention` or `input_tokens`) comes back padded to the longest text of the merged batch. A
request of more than `max_batch_size` rows runs on its own, unsplit. A queue holding
`max_batch_size * max_enqueued_batches` rows refuses more with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, fields
from pathlib import Path

import grpc
import tensorflow as tf

from tfnlp.errors import UserError
from tfnlp.serving.store import LoadedVersion, ServingError, call_signature, checked_arguments, filtered

SCALAR_FIELD = re.compile(r"(\w+)\s*\{\s*value\s*:\s*([^\s}]+)\s*\}")


@dataclass(frozen=True)
class BatchingParameters:
    """TF Serving's batching parameters that tfnlp's server honours (tfnlp's defaults)."""

    max_batch_size: int = 64
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 64
    num_batch_threads: int = 2

    def __post_init__(self) -> None:
        for field in fields(self):
            minimum = 0 if field.name == "batch_timeout_micros" else 1
            if getattr(self, field.name) < minimum:
                raise UserError(f"batching parameter {field.name} must be at least {minimum}")


def parse_batching_parameters(text: str, source: str = "batching parameters") -> BatchingParameters:
    """BatchingParameters from TF Serving's text format; UserError naming any field tfnlp does not honour."""
    known = {field.name for field in fields(BatchingParameters)}
    found = dict(SCALAR_FIELD.findall(re.sub(r"#.*", "", text)))
    leftover = SCALAR_FIELD.sub("", re.sub(r"#.*", "", text)).strip()
    unsupported = sorted(set(found) - known)
    if leftover or unsupported:
        raise UserError(f"{source}: tfnlp's server honours only {sorted(known)} as `name {{ value: N }}`; "
                        f"cannot use {unsupported or leftover.split()[:3]}")
    try:
        return BatchingParameters(**{name: int(value) for name, value in found.items()})
    except ValueError as error:
        raise UserError(f"{source}: {error}") from None


def read_batching_parameters(path: str | Path) -> BatchingParameters:
    """Read a --batching_parameters_file."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise UserError(f"{path}: cannot read the batching parameters ({error.strerror})") from None
    return parse_batching_parameters(text, str(path))


@dataclass
class _Task:
    arguments: dict
    rows: int
    future: Future
    arrived: float
    deadline: float | None = None


class _Queue:
    """The waiting tasks of one (model version, signature, input layout)."""

    def __init__(self, function) -> None:
        self.function = function
        self.tasks: deque[_Task] = deque()
        self.rows = 0


class Batcher:
    """Merges concurrent requests into batched signature calls (see the module docstring)."""

    def __init__(self, parameters: BatchingParameters) -> None:
        self.parameters = parameters
        self._condition = threading.Condition()
        self._queues: dict[tuple, _Queue] = {}
        self.batch_sizes: list[int] = []  # rows of every batch run, for tests and benchmarks
        for index in range(parameters.num_batch_threads):
            threading.Thread(target=self._work, daemon=True, name=f"batch-{index}").start()

    def run(self, model: LoadedVersion, signature_name: str, inputs: dict, output_filter=(),
            deadline: float | None = None) -> dict:
        """Like `run_signature`, but waits for the request's rows of a merged batch; a request whose `deadline`
        (monotonic) passes while it waits is left out of its batch and answered DEADLINE_EXCEEDED."""
        function, arguments = checked_arguments(model, signature_name, inputs)
        rows = _rows(arguments)
        if rows is None or rows > self.parameters.max_batch_size:
            return filtered(call_signature(function, arguments), output_filter)
        task = _Task(arguments, rows, Future(), time.monotonic(), deadline)
        self._enqueue(_layout(model, signature_name, arguments), function, task)
        return filtered(task.future.result(), output_filter)

    def _enqueue(self, key: tuple, function, task: _Task) -> None:
        limit = self.parameters.max_batch_size * self.parameters.max_enqueued_batches
        with self._condition:
            queue = self._queues.setdefault(key, _Queue(function))
            if queue.rows + task.rows > limit:
                raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"the batching queue is full ({queue.rows} rows waiting, limit {limit}); retry")
            queue.tasks.append(task)
            queue.rows += task.rows
            self._condition.notify_all()

    def _work(self) -> None:
        while True:
            function, batch = self._next_batch()
            if not batch:  # every request of it ran out of time while waiting
                continue
            try:
                outputs = call_signature(function, _merged([task.arguments for task in batch]))
            except Exception as error:  # noqa: BLE001 - every waiting request gets the failure
                for task in batch:
                    task.future.set_exception(error)
                continue
            start = 0
            for task in batch:
                task.future.set_result({name: value[start:start + task.rows] for name, value in outputs.items()})
                start += task.rows

    def _next_batch(self) -> tuple:
        """Block until a queue's batch is due (full, or its oldest task waited the timeout); take it."""
        timeout = self.parameters.batch_timeout_micros / 1e6
        with self._condition:
            while True:
                now, wait = time.monotonic(), None
                for key, queue in self._queues.items():
                    if not queue.tasks:
                        continue
                    due = queue.tasks[0].arrived + timeout
                    if queue.rows >= self.parameters.max_batch_size or now >= due:
                        return queue.function, self._take(key)
                    wait = min(wait or due - now, due - now)
                self._condition.wait(wait)

    def _take(self, key: tuple) -> list[_Task]:
        queue, batch, rows, now = self._queues[key], [], 0, time.monotonic()
        while queue.tasks and rows + queue.tasks[0].rows <= self.parameters.max_batch_size:
            task = queue.tasks.popleft()
            queue.rows -= task.rows
            if task.deadline is not None and now >= task.deadline:  # its client has been answered: do not run it
                task.future.set_exception(ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                                       "the request's deadline passed while it waited for its batch"))
                continue
            batch.append(task)
            rows += task.rows
        if not queue.tasks:
            del self._queues[key]
        if batch:
            self.batch_sizes.append(rows)
        return batch


def _rows(arguments: dict) -> int | None:
    """The shared first dimension of the inputs, or None when they have none (scalars, or unequal)."""
    sizes = {int(value.shape[0]) if value.shape.rank else None for value in arguments.values()}
    return sizes.pop() if len(sizes) == 1 else None


def _layout(model: LoadedVersion, signature_name: str, arguments: dict) -> tuple:
    """Requests with equal layouts can be concatenated: same version, signature, dtypes and row shapes."""
    return (id(model), signature_name or "serving_default",
            tuple(sorted((name, value.dtype.name, tuple(value.shape[1:])) for name, value in arguments.items())))


def _merged(arguments: list[dict]) -> dict:
    if len(arguments) == 1:
        return arguments[0]
    return {name: tf.concat([argument[name] for argument in arguments], axis=0) for name in arguments[0]}


