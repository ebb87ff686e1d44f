"""tfnlp's server under an operator's faults: hot reloads under load, trickling REST clients, large requests, memory.

    python -m tfnlp.bench faults [--quick] [--model SAVEDMODEL_DIR]

Four measurements (the first in both loading modes), each on a fresh `python -m tfnlp.serving.server` subprocess
on loopback:

- **hot reload**: clients send batch-1 gRPC requests back to back; the p99 of a steady window is set beside the
  slowest request while new versions are published and picked up (target: at most 2x the steady p99, none failed),
  with every version in the server's process and with a process per version (`--isolate_versions`); beside it, the
  slowest request around each switch, and in windows as long with no reload (the load's own tail);
- **trickling clients**: connections each sending one byte of a request head every few seconds, while real REST
  requests are made (target: every real request answered 200);
- **large requests**: the memory of the server and its version processes (the sum of their proportional set sizes,
  PSS, from /proc: shared libraries counted once) before, at the peak of, and after a burst of concurrent large
  requests (answers counted by status: 200, refused over the bytes-in-flight bound, over deadline);
- **reload memory**: the PSS after each of a series of hot reloads, once the retired version's process has ended
  (target: no growth per reload).

Without --model, the newest `savedmodels/icd10_seq2seq/<version>` is used, or a tiny model is trained into a temporary
folder when there is none.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfnlp.bench.decode import seq2seq_model_path
from tfnlp.bench.serving import MODEL_NAME, grpc_call, text_batches

SIZES = {"quick": {"clients": 4, "steady": 3.0, "reloads": 1, "trickles": 100, "real": 30, "burst": 4,
                   "burst_rows": 1000, "memory_reloads": 2},
         "full": {"clients": 8, "steady": 10.0, "reloads": 2, "trickles": 300, "real": 100, "burst": 8,
                  "burst_rows": 10000, "memory_reloads": 16}}
SWITCH_WINDOW = (1.0, 2.0)  # seconds before and after a switch whose requests are the switch's


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the server and its version worker processes)."""
    tree, index = [pid], 0
    while index < len(tree):
        for children in Path(f"/proc/{tree[index]}/task").glob("*/children"):
            try:
                tree.extend(int(child) for child in children.read_text().split())
            except OSError:  # the task ended meanwhile
                pass
        index += 1
    return tree


def _read_proc(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:  # the process ended meanwhile (a retired worker)
        return ""


def pss_mb(pid: int) -> float:
    """Memory of process `pid` and its descendants (the server and its version workers), in MB: the sum of their
    proportional set sizes, so that the TensorFlow libraries every process maps are counted once, not per process
    as a sum of resident sizes would."""
    total = 0
    for member in process_tree(pid):
        total += sum(int(line.split()[1]) for line in _read_proc(f"/proc/{member}/smaps_rollup").splitlines()
                     if line.startswith("Pss:"))
    return total / 1024


def wait_for_processes(pid: int, count: int, limit: float = 60.0) -> None:
    """Until the process tree of `pid` has at most `count` processes (a retired version's worker has ended)."""
    deadline = time.monotonic() + limit
    while len(process_tree(pid)) > count and time.monotonic() < deadline:
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """CPU time of process `pid` and its descendants, in seconds."""
    ticks = 0
    for member in process_tree(pid):
        stat = _read_proc(f"/proc/{member}/stat")
        if stat:
            fields = stat.rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks of 1/100 s
    return ticks / 100


def wait_until_idle(pid: int, limit: float = 300.0) -> None:
    """Until the process used under 5% of a core for a second (background calls over their deadline have ended)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < 0.05:
            return


class Load:
    """Clients sending gRPC requests back to back, each latency stamped with its end time."""

    def __init__(self, target: str, clients: int, texts: Sequence[str]) -> None:
        self.call = grpc_call(target, clients, text_batches(texts, 1))
        self.clients = clients
        self.records: list[tuple[float, float]] = []  # (end time, seconds)
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._client, args=(index,), daemon=True) for index in range(clients)]

    def _client(self, index: int) -> None:
        request = 0
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                self.call(index, request)
                self.records.append((time.monotonic(), time.perf_counter() - started))
            except Exception as error:  # noqa: BLE001 - every failure is counted and reported
                self.failures.append(type(error).__name__)
            request += 1

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def latencies(self, start: float, end: float) -> list[float]:
        return [seconds for finished, seconds in self.records if start <= finished <= end]


def publish(version: Path, base: Path, number: int) -> None:
    """Copy `version` in as `base/number`, whole at once (a rename), as the pipeline's push does."""
    staging = base / f".staging-{number}"
    shutil.copytree(version, staging)
    staging.rename(base / str(number))


def serving_version(target: str) -> int:
    from tfnlp.serving import client

    return max(row["version"] for row in client.status(MODEL_NAME, target, timeout=5) if row["state"] == "AVAILABLE")


def publish_and_wait(version: Path, base: Path, number: int, target: str) -> float:
    """Publish `version` as `base/number` and wait until the server at `target` serves it; when it was first seen
    serving it (`time.monotonic()`)."""
    publish(version, base, number)
    while serving_version(target) != number:
        time.sleep(0.1)
    return time.monotonic()


def window_maxima(load: Load, start: float, end: float, width: float) -> list[float]:
    """The slowest request of each consecutive `width`-second window from `start` to `end` that holds any."""
    maxima = []
    while start + width <= end:
        latencies = load.latencies(start, start + width)
        if latencies:
            maxima.append(max(latencies))
        start += width
    return maxima


def hot_reload(path: Path, scratch: Path, texts: Sequence[str], size: dict, isolate: bool = False) -> dict:
    """Slowest request while new versions are picked up, beside the steady p99; `isolate` serves each version from
    a worker process (`--isolate_versions`).

    More windows say what the slowest request is due to: the requests that ended from 1 s before to 2 s after each
    switch (the moment the new version was first seen served), and a control period as long as the reloading one,
    after it, with no reload, cut into windows as long as a switch's. The slowest of more requests is slower, reload
    or not: a switch window is compared with control windows of its own length, not with the whole period."""
    from tfnlp.serving.process import running_server

    base = scratch / f"reload-{int(isolate)}" / MODEL_NAME
    publish(path, base, 1)
    flags = ("--file_system_poll_wait_seconds=0.5", f"--isolate_versions={str(isolate).lower()}")
    with running_server(MODEL_NAME, base, *flags) as (target, _), \
            Load(target, size["clients"], texts) as load:
        time.sleep(1.0)  # the clients' first requests
        steady_start = time.monotonic()
        time.sleep(size["steady"])
        steady_end = time.monotonic()
        switches = []
        for number in range(2, 2 + size["reloads"]):
            switches.append(publish_and_wait(path, base, number, target))
            time.sleep(2.0)  # the old version retired, the new one warm
        reload_end = time.monotonic()
        time.sleep(reload_end - steady_end)
        control_end = time.monotonic()
    steady, reloading = load.latencies(steady_start, steady_end), load.latencies(steady_end, reload_end)
    around = [load.latencies(moment - SWITCH_WINDOW[0], moment + SWITCH_WINDOW[1]) for moment in switches]
    control = load.latencies(reload_end, control_end)
    control_maxima = window_maxima(load, reload_end, control_end, sum(SWITCH_WINDOW))
    steady_p99 = float(np.percentile(steady, 99))
    return {"clients": size["clients"], "reloads": size["reloads"], "isolate": isolate, "steady_requests": len(steady),
            "steady_p99_ms": steady_p99 * 1000, "steady_max_ms": max(steady) * 1000,
            "reload_requests": len(reloading),
            "reload_p99_ms": float(np.percentile(reloading, 99)) * 1000, "reload_max_ms": max(reloading) * 1000,
            "over_twice_steady_p99": sum(seconds > 2 * steady_p99 for seconds in reloading),
            "switch_requests": sum(map(len, around)),
            "switch_maxima_ms": [max(latencies, default=0.0) * 1000 for latencies in around],
            "control_requests": len(control),
            "control_window_maxima_ms": [seconds * 1000 for seconds in control_maxima],
            "control_over_twice_steady_p99": sum(seconds > 2 * steady_p99 for seconds in control),
            "failed": len(load.failures), "failures": dict(Counter(load.failures))}


def rest_predict(rest: str, texts: Sequence[str], timeout: float = 120.0) -> int:
    """The HTTP status of one REST predict."""
    request = urllib.request.Request(f"{rest}/{MODEL_NAME}:predict", json.dumps({"instances": list(texts)}).encode(),
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0  # no answer: reset, refused or timed out


def trickling_clients(path: Path, scratch: Path, texts: Sequence[str], size: dict) -> dict:
    """Real REST requests while `size["trickles"]` connections trickle their request heads."""
    from tfnlp.serving.process import running_server

    base = scratch / "trickle" / MODEL_NAME
    publish(path, base, 1)
    with running_server(MODEL_NAME, base, "--file_system_poll_wait_seconds=0") as (_, rest):
        host, port = rest.split("//")[1].split("/")[0].split(":")
        trickles = [socket.create_connection((host, int(port))) for _ in range(size["trickles"])]
        stop = threading.Event()

        def trickle() -> None:
            byte = 0
            while not stop.wait(2.0):
                for connection in trickles:
                    try:
                        connection.send(b"POST /v1/models/x:predict HTTP/1.1\r\nX: "[byte:byte + 1] or b"y")
                    except OSError:
                        pass
                byte += 1

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        time.sleep(2.5)
        statuses = Counter(rest_predict(rest, [texts[index % len(texts)]]) for index in range(size["real"]))
        stop.set()
        sender.join()
        for connection in trickles:
            connection.close()
    return {"trickling": size["trickles"], "real": size["real"], "answered_200": statuses.get(200, 0),
            "statuses": dict(statuses)}


def reload_memory(path: Path, scratch: Path, texts: Sequence[str], size: dict) -> dict:
    """The server's PSS after each of `size["memory_reloads"]` new versions (each answering a request once served)."""
    from tfnlp.serving.process import server_process

    base = scratch / "memory" / MODEL_NAME
    publish(path, base, 1)
    with server_process(MODEL_NAME, base, "--file_system_poll_wait_seconds=0.5") as (process, target, rest):
        rest_predict(rest, texts[:1])
        wait_until_idle(process.pid)
        served = len(process_tree(process.pid))  # the server and, with --isolate_versions, one worker
        readings = [pss_mb(process.pid)]
        for number in range(2, 2 + size["memory_reloads"]):
            publish_and_wait(path, base, number, target)
            rest_predict(rest, texts[:1])
            wait_until_idle(process.pid)  # the old version retired, the loading done
            wait_for_processes(process.pid, served)
            readings.append(pss_mb(process.pid))
    return {"reloads": size["memory_reloads"], "mb": readings}


def large_requests(path: Path, scratch: Path, texts: Sequence[str], size: dict) -> dict:
    """The server's PSS before, at the peak of and after a burst of concurrent large requests."""
    from tfnlp.serving.process import server_process

    base = scratch / "large" / MODEL_NAME
    publish(path, base, 1)
    long_texts = [" ".join(texts[index % len(texts)] for index in range(start, start + 40))
                  for start in range(size["burst_rows"])]
    payload_mb = len(json.dumps({"instances": long_texts}).encode()) / 1e6
    with server_process(MODEL_NAME, base, "--file_system_poll_wait_seconds=0") as (process, _, rest):
        for text in texts[:50]:
            rest_predict(rest, [text])
        before = pss_mb(process.pid)
        peak, done = before, threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, pss_mb(process.pid))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        statuses: list[int] = []
        senders = [threading.Thread(target=lambda: statuses.append(rest_predict(rest, long_texts, timeout=600)))
                   for _ in range(size["burst"])]
        started = time.monotonic()
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        answered = time.monotonic() - started
        wait_until_idle(process.pid)
        done.set()
        sampler.join()
        after = pss_mb(process.pid)
    return {"requests": size["burst"], "rows": size["burst_rows"], "payload_mb": payload_mb, "before_mb": before,
            "peak_mb": peak, "after_mb": after, "statuses": dict(Counter(statuses)),
            "answered_in_s": answered}


def worst_switch_ms(reload: dict) -> float:
    """The slowest request around any switch of a hot-reload measurement (0 with no switch)."""
    return max(reload["switch_maxima_ms"], default=0.0)


def control_cell(reload: dict) -> str:
    """The control period's windows as long as a switch's: their slowest requests beside the worst switch's."""
    maxima, worst_switch = reload["control_window_maxima_ms"], worst_switch_ms(reload)
    if not maxima:
        return "no control window"
    as_slow = sum(maximum >= worst_switch for maximum in maxima)
    return (f"in {len(maxima)} windows as long with no reload, slowest median {np.median(maxima):.0f} ms, worst "
            f"{max(maxima):.0f} ms ({max(maxima) / reload['steady_p99_ms']:.1f}x); {as_slow} of {len(maxima)} "
            "as slow as the worst switch")


def reload_row(reload: dict) -> str:
    """The table row of one hot-reload measurement."""
    mode = "a process per version" if reload.get("isolate") else "one process"
    switches = ", ".join(f"{maximum:.0f}" for maximum in reload["switch_maxima_ms"])
    return (f"| hot reload ({reload['clients']} gRPC clients, {reload['reloads']} reloads; {mode}) | steady p99 "
            f"{reload['steady_p99_ms']:.0f} ms (slowest {reload['steady_max_ms']:.0f} ms, {reload['steady_requests']} "
            f"requests); while reloading p99 {reload['reload_p99_ms']:.0f} ms, slowest "
            f"{reload['reload_max_ms']:.0f} ms ({reload['reload_max_ms'] / reload['steady_p99_ms']:.1f}x), "
            f"{reload['over_twice_steady_p99']} of {reload['reload_requests']} over 2x; {reload['failed']} failed; "
            f"around each switch ({SWITCH_WINDOW[0]:.0f} s before to {SWITCH_WINDOW[1]:.0f} s after) slowest "
            f"{switches} ms ({worst_switch_ms(reload) / reload['steady_p99_ms']:.1f}x, {reload['switch_requests']} "
            f"requests); {control_cell(reload)}; {reload['control_over_twice_steady_p99']} of "
            f"{reload['control_requests']} requests with no reload over 2x "
            "| slowest at most 2x the steady p99, none failed |")


def report(reloads: Sequence[dict], trickle: dict, large: dict, memory: dict) -> list[str]:
    lines = ["| measurement | result | target |", "|---|---|---|", *(reload_row(reload) for reload in reloads),
             f"| {trickle['trickling']} trickling REST connections | {trickle['answered_200']}/{trickle['real']} real "
             f"requests answered 200 {trickle['statuses']} | all 200 |",
             f"| {large['requests']} concurrent requests of {large['rows']} rows ({large['payload_mb']:.1f} MB each) "
             f"| PSS {large['before_mb']:.0f} MB before, {large['peak_mb']:.0f} MB peak, "
             f"{large['after_mb']:.0f} MB after; statuses {large['statuses']} | back to its steady level |",
             f"| {memory['reloads']} hot reloads, one after another | PSS {memory['mb'][0]:.0f} MB serving the "
             f"first version, then {', '.join(f'{mb:.0f}' for mb in memory['mb'][1:])} MB | no growth per reload |"]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the four measurements and print their table."""
    from tfnlp.config import DataConfig
    from tfnlp.data import sources

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench faults", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer clients, connections, rows and reloads (2 min 29 s on the main job's export here)")
    parser.add_argument("--model", help="SavedModel version folder (default: newest savedmodels/icd10_seq2seq)")
    args = parser.parse_args(argv)
    size = SIZES["quick" if args.quick else "full"]
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        path = seq2seq_model_path(args.model, scratch)
        texts = [record.text for record in sources.load("cim10", DataConfig()).splits.test]
        reloads = [hot_reload(path, scratch, texts, size, isolate) for isolate in (False, True)]
        print(f"hot reload: {reloads}", flush=True)
        trickle = trickling_clients(path, scratch, texts, size)
        print(f"trickling clients: {trickle}", flush=True)
        large = large_requests(path, scratch, texts, size)
        print(f"large requests: {large}", flush=True)
        memory = reload_memory(path, scratch, texts, size)
        print(f"reload memory: {memory}", flush=True)
    print(f"\nmodel: {path}\n")
    print("\n".join(report(reloads, trickle, large, memory)))
    return 0
