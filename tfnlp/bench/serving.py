"""Serving latency and throughput: tfnlp's server over gRPC, batching off and on, against the in-process call.

    python -m tfnlp.bench serving [--quick] [--model SAVEDMODEL_DIR] [--seconds 5]

For batch sizes 1 and 64 and for 1 and 32 concurrent clients, each client sends requests back to
back for `--seconds` (after one untimed request) and every request's latency is recorded:

- in-process: the SavedModel's serving signature called in this process from the client threads
  (the limit: no wire, no server);
- gRPC: `python -m tfnlp.serving.server` in a subprocess, called with the official
  PredictionService stub (one channel per client, requests built before timing);
- gRPC + batching: the same server with `--enable_batching --batching_parameters_file`.

Clients and server share this machine's cores, as they would on a single serving host.
Without --model, the newest `savedmodels/icd10_seq2seq/<version>` is used, or a tiny model is
trained into a temporary folder when there is none.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfnlp.bench.decode import seq2seq_model_path

MODEL_NAME = "icd10_seq2seq"
SHIPPED_BATCHING = Path(__file__).resolve().parents[2] / "serving" / "batching.config"


@dataclass(frozen=True)
class Measurement:
    """Latencies of one (path, batch size, clients) cell."""

    path: str
    batch_size: int
    clients: int
    latencies: tuple[float, ...]  # seconds, one per answered request
    failures: int
    elapsed: float

    @property
    def throughput(self) -> float:
        """Texts answered per second, all clients together."""
        return len(self.latencies) * self.batch_size / self.elapsed

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000


def measure(call: Callable[[int, int], None], clients: int, seconds: float) -> tuple[list[float], int, float]:
    """Run `call(client, request_index)` back to back from `clients` threads for `seconds`.

    Returns:
        (every answered timed request's latency in seconds, the number of failed requests, the wall time of
        the timed part). A failed request (RESOURCE_EXHAUSTED from a full queue, say) is counted, not timed.
    """
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    ready, go = threading.Barrier(clients + 1), threading.Event()
    stop_at = [0.0]

    def attempt(index: int, request: int) -> bool:
        try:
            call(index, request)
            return True
        except Exception:  # noqa: BLE001 - a refused request is a result of the cell, not a crash of the bench
            failures[index] += 1
            return False

    def client(index: int) -> None:
        attempt(index, 0)  # untimed: connection set-up, first-call tracing
        failures[index] = 0
        ready.wait()
        go.wait()  # stop_at is set
        request = 1
        while (started := time.perf_counter()) < stop_at[0]:
            if attempt(index, request):
                latencies[index].append(time.perf_counter() - started)
            request += 1

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    go.set()
    for thread in threads:
        thread.join()
    return ([latency for per_client in latencies for latency in per_client], sum(failures),
            time.perf_counter() - began)


def text_batches(texts: Sequence[str], batch_size: int, count: int = 32) -> list[list[str]]:
    """`count` batches of consecutive texts, cycling through `texts`."""
    return [[texts[(start * batch_size + offset) % len(texts)] for offset in range(batch_size)]
            for start in range(count)]


def in_process_call(signature, batches: list[list[str]]) -> Callable[[int, int], None]:
    import tensorflow as tf

    tensors = [tf.constant(batch) for batch in batches]
    return lambda client, request: signature(text=tensors[(client + request) % len(tensors)])


def grpc_call(target: str, clients: int, batches: list[list[str]]) -> Callable[[int, int], None]:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from tfnlp.serving import GRPC_OPTIONS

    requests = []
    for batch in batches:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
        requests.append(request)
    stubs = [prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target, options=GRPC_OPTIONS))
             for _ in range(clients)]
    return lambda client, request: stubs[client].Predict(requests[(client + request) % len(requests)], timeout=120)


def run_cells(path: str, make_call: Callable[[int, list[list[str]]], Callable], texts: Sequence[str],
              grid: Sequence[tuple[int, int]], seconds: float) -> list[Measurement]:
    """Measure every (batch size, clients) cell of `grid` on one path."""
    results = []
    for batch_size, clients in grid:
        latencies, failures, elapsed = measure(make_call(clients, text_batches(texts, batch_size)), clients, seconds)
        results.append(Measurement(path, batch_size, clients, tuple(latencies), failures, elapsed))
        print(f"  {path}, batch {batch_size}, {clients} clients: {len(latencies)} answered, {failures} failed",
              flush=True)
    return results


def table(results: Sequence[Measurement]) -> str:
    lines = ["| path | batch | clients | requests | failed | p50 ms | p99 ms | texts/s |",
             "|---|---|---|---|---|---|---|---|"]
    for cell in sorted(results, key=lambda cell: (cell.batch_size, cell.clients)):
        lines.append(f"| {cell.path} | {cell.batch_size} | {cell.clients} | {len(cell.latencies)} | {cell.failures} | "
                     f"{cell.percentile_ms(50):.1f} | {cell.percentile_ms(99):.1f} | {cell.throughput:.0f} |")
    return "\n".join(lines)


def headlines(results: Sequence[Measurement], many: int) -> list[str]:
    cells = {(cell.path, cell.batch_size, cell.clients): cell for cell in results}
    local, remote = cells[("in-process", 1, 1)], cells[("gRPC", 1, 1)]
    overhead = remote.percentile_ms(50) - local.percentile_ms(50)
    off, on = cells[("gRPC", 1, many)], cells[("gRPC + batching", 1, many)]
    return [f"gRPC batch-1 p50 is {overhead:+.1f} ms beside the in-process call "
            f"({remote.percentile_ms(50):.1f} vs {local.percentile_ms(50):.1f} ms; target: at most +2 ms)",
            f"with {many} clients of batch 1, batching gives {on.throughput / off.throughput:.1f}x the throughput "
            f"({on.throughput:.0f} vs {off.throughput:.0f} texts/s; target: at least 3x)"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite and print its table and headlines."""
    import tensorflow as tf

    from tfnlp.config import DataConfig
    from tfnlp.data import sources
    from tfnlp.serving.process import running_server

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench serving", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 second a cell instead of --seconds")
    parser.add_argument("--model", help="SavedModel version folder (default: newest savedmodels/icd10_seq2seq)")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per cell")
    parser.add_argument("--clients", type=int, default=32, help="the many-clients column")
    parser.add_argument("--batching_parameters_file", default=str(SHIPPED_BATCHING))
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds

    scratch = tempfile.TemporaryDirectory()
    path = seq2seq_model_path(args.model, Path(scratch.name))
    base = Path(scratch.name) / "served" / MODEL_NAME
    shutil.copytree(path, base / "1")
    texts = [record.text for record in sources.load("cim10", DataConfig()).splits.test]
    grid = [(1, 1), (1, args.clients), (64, 1), (64, args.clients)]

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    results = run_cells("in-process", lambda clients, batches: in_process_call(signature, batches), texts, grid,
                        seconds)
    for label, flags in (("gRPC", ()),
                         ("gRPC + batching", ("--enable_batching",
                                              f"--batching_parameters_file={args.batching_parameters_file}"))):
        with running_server(MODEL_NAME, base, "--file_system_poll_wait_seconds=0", *flags) as (target, _):
            results += run_cells(label, lambda clients, batches, target=target: grpc_call(target, clients, batches),
                                 texts, grid, seconds)

    print(f"\nmodel: {path}; {seconds:g} s a cell; batching: {args.batching_parameters_file}\n")
    print(table(results))
    print()
    for line in headlines(results, args.clients):
        print(f"headline: {line}")
    scratch.cleanup()
    return 0
