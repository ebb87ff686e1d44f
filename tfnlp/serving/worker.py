"""A model version served from a process of its own, so that loading a new version never stalls the requests the old
one is answering.

Why a process: `tf.saved_model.load` turns an export's graphs into functions in TensorFlow's `TF_GraphToFunction`,
which holds Python's global interpreter lock for 100 to 250 ms at a time (measured 2026-12-03 by a thread ticking
every millisecond beside a load). In one process every request thread waits meanwhile: a hot reload made the slowest
request 8x the steady p99. In its own process, a version loads, replays its warmup requests and only then replaces
the old one, whose process answered every request meanwhile.

The server's side (`WorkerVersion.start`) has the same face as an in-process `LoadedVersion`: `version`,
`signatures` (callables with the inputs' `structured_input_signature`, answering numpy arrays) and `signature_defs`
(sent by the worker once loaded). Requests travel over a Unix socket in a private folder, one connection per request
running at once, authenticated with a key handed to the worker when it is forked. The worker loads and warms up
at a lowered priority, and ends with the server (it watches the server's process) or when retired. Workers are
forked from a multiprocessing fork server that imported TensorFlow once, so a new version's worker does not import
it again.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import secrets
import select
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path

import numpy as np

from tfnlp.serving.process import lower_this_threads_priority, process_alive

# TensorFlow and the modules that import it are imported inside the functions: the fork server imports them once
# (`_forkserver`), the server has them already.

KEY_BYTES = 32
RETIRE_GRACE_SECONDS = 2.0  # a request that picked a version just before it was retired still reaches it


class WorkerFailed(RuntimeError):
    """The worker process could not load or warm up its version; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RemoteSignature:
    """One signature of a worker's version: called like a loaded signature, answered by the worker."""

    def __init__(self, worker: WorkerVersion, name: str, definition) -> None:
        import tensorflow as tf

        self._worker, self.name = worker, name
        inputs = {key: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.dtypes.as_dtype(info.dtype), name=key)
                  for key, info in definition.inputs.items()}
        self.structured_input_signature = ((), inputs)

    def __call__(self, **arguments) -> dict:
        """{output name: numpy array} for {input name: tensor or array}; ServingError as the worker raised it, or
        UNAVAILABLE when the worker has gone."""
        arrays = {key: value.numpy() if hasattr(value, "numpy") else np.asarray(value)
                  for key, value in arguments.items()}
        return self._worker.call(self.name, arrays)


class WorkerVersion:
    """A version loaded and served by a worker process (see the module docstring); start one with `start`."""

    def __init__(self, path: Path, process: multiprocessing.process.BaseProcess, folder: Path, key: bytes,
                 signature_map: bytes) -> None:
        from tensorflow_serving.apis import get_model_metadata_pb2

        self.version = int(path.name)
        self._process, self._folder, self._key = process, folder, key
        self._address = str(folder / "socket")
        self._idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._in_flight, self._retired_at, self._closed = 0, None, False
        self.signature_defs = dict(get_model_metadata_pb2.SignatureDefMap.FromString(signature_map).signature_def)
        self.signatures = {name: RemoteSignature(self, name, definition)
                           for name, definition in self.signature_defs.items()}

    @classmethod
    def start(cls, path: Path, timeout: float = 600.0) -> WorkerVersion:
        """Start a worker for the version folder `path` and wait until it has loaded the version and answered its
        warmup requests.

        Raises:
            WorkerFailed: the worker could not load or warm up the version, exited, or was not ready in `timeout`.
        """
        folder = Path(tempfile.mkdtemp(prefix="tfnlp-worker-"))  # mode 0700: only this user reaches the socket
        key = secrets.token_bytes(KEY_BYTES)
        context = _forkserver()
        reports, report = context.Pipe(duplex=False)  # the server reads, the worker writes
        process = context.Process(target=serve_version,
                                  args=(str(path), str(folder / "socket"), key, report, os.getpid()),
                                  name=f"tfnlp-worker-{path.name}", daemon=True)
        process.start()
        report.close()  # the worker holds the other end: its exit is an end of file here
        try:
            kind, detail = reports.recv() if reports.poll(timeout) else ("failed", "")
        except (EOFError, OSError):
            kind, detail = "failed", ""
        finally:
            reports.close()
        if kind != "ready":
            _stop(process)
            shutil.rmtree(folder, ignore_errors=True)
            raise WorkerFailed(detail or f"the worker exited with code {process.exitcode} (or did not load within "
                                         f"{timeout:g} s)")
        return cls(path, process, folder, key, detail)

    @property
    def alive(self) -> bool:
        """Whether the worker still answers (not retired, not exited)."""
        return not self._closed and self._process.is_alive()

    def call(self, signature_name: str, arrays: dict) -> dict:
        """The worker's answer to one signature call."""
        import grpc

        from tfnlp.serving.store import ServingError

        with self._lock:
            if self._closed:
                raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                   f"version {self.version} was retired while the request waited; retry")
            self._in_flight += 1
        connection = None
        try:
            connection = self._connection()
            connection.send((signature_name, arrays))
            kind, payload = connection.recv()
        except (OSError, EOFError) as error:
            if connection is not None:
                connection.close()
                connection = None
            raise ServingError(grpc.StatusCode.UNAVAILABLE,
                               f"version {self.version}'s worker process is gone ({type(error).__name__}, exit code "
                               f"{self._process.exitcode}); retry") from None
        finally:
            if connection is not None:
                self._idle.put(connection)
            with self._lock:
                self._in_flight -= 1
        if kind == "error":
            code, message, http_status = payload
            raise ServingError(grpc.StatusCode[code], message, http_status)
        return payload

    def _connection(self) -> Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return Client(self._address, family="AF_UNIX", authkey=self._key)

    def retire(self) -> None:
        """Stop the worker once the requests it is answering have ended (after a short grace for requests that chose
        this version just before it was replaced)."""
        with self._lock:
            if self._retired_at is not None:
                return
            self._retired_at = time.monotonic()
        threading.Thread(target=self._close_when_idle, daemon=True, name=f"retire-{self.version}").start()

    def _close_when_idle(self) -> None:
        while True:
            time.sleep(0.1)
            with self._lock:
                if self._in_flight == 0 and time.monotonic() - self._retired_at >= RETIRE_GRACE_SECONDS:
                    self._closed = True
                    break
        self.close()

    def close(self) -> None:
        """Stop the worker now and remove its socket folder."""
        with self._lock:
            self._closed = True
        _stop(self._process)
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
        shutil.rmtree(self._folder, ignore_errors=True)


def _stop(process: multiprocessing.process.BaseProcess) -> None:
    if process.is_alive():
        process.terminate()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    process.join()


def _forkserver() -> multiprocessing.context.BaseContext:
    """The context whose processes are forked from a server process that imported TensorFlow once: a new version's
    worker starts without a TensorFlow import of its own. (Measured 2026-12-03: that import, about 6 s of a core,
    made most of the slow requests of a hot reload; the load and warmup made few.) The fork server starts with the
    first worker, when the server loads its first versions; it ends with the server."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tfnlp.serving.store"])  # TensorFlow, imported before any thread pool starts
    return context


def _call_when_ended(pid: int, then: Callable[[], None]) -> None:
    """Call `then` from a thread of its own once process `pid` has ended. The worker's parent is the fork server, not
    the server, and each worker holds the fork server's liveness pipe open (multiprocessing hands it to every child
    so that children may start processes too): neither dies with the server unless the worker watches the server."""
    def watch() -> None:
        try:
            select.select([os.pidfd_open(pid)], [], [])  # Linux: readable once the process has ended
        except ProcessLookupError:  # ended already
            pass
        except (AttributeError, OSError):  # no pidfd here: ask every second
            while process_alive(pid):
                time.sleep(1.0)
        then()

    threading.Thread(target=watch, name="server-watch", daemon=True).start()


def _at_low_priority(function: Callable):
    """Run `function` in a thread of lowered scheduling priority and return its result (or raise its error): the
    threads TensorFlow starts meanwhile inherit the priority, the request threads started later do not."""
    outcome: dict = {}

    def run() -> None:
        lower_this_threads_priority()
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            outcome["error"] = error

    thread = threading.Thread(target=run, name="load", daemon=True)  # a SIGTERM meanwhile ends the process
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _payload_bytes(arrays: dict) -> int:
    """The bytes a call's inputs carry (the texts' own, for arrays of strings)."""
    return sum(sum(len(item) for item in value.flat) if value.dtype == object else value.nbytes
               for value in arrays.values())


def _answer(model, connection: Connection) -> None:
    """Answer one connection's calls until it closes."""
    from tfnlp.serving.limits import TRIM_AFTER_BYTES, malloc_trim_function
    from tfnlp.serving.store import ServingError, graph_error_message, run_signature

    trim = malloc_trim_function()
    with connection:
        while True:
            try:
                signature_name, arrays = connection.recv()
            except (EOFError, OSError):
                return
            try:
                reply = ("outputs", run_signature(model, signature_name, arrays))
            except ServingError as error:
                reply = ("error", (error.code.name, str(error), error.http_status))
            except Exception as error:  # noqa: BLE001 - the server answers it; the worker keeps serving
                reply = ("error", ("INTERNAL", f"{type(error).__name__}: {graph_error_message(error)}", None))
            try:
                connection.send(reply)
            except OSError:
                return
            if _payload_bytes(arrays) >= TRIM_AFTER_BYTES:
                trim()  # the large call's tensors are freed: hand the memory back (see tfnlp.serving.limits)


def serve_version(path: str, address: str, key: bytes, report: Connection, server_pid: int) -> None:
    """The worker (forked by the fork server, TensorFlow imported): load and warm up the version, report
    `("ready", SignatureDefMap bytes)` or `("failed", reason)` on `report`, then answer calls until stopped or until
    the server process `server_pid` ends."""
    from tfnlp.serving import store

    def stop(*_) -> None:  # retired, or its server gone: the socket's folder goes with it, at once (no teardown)
        shutil.rmtree(Path(address).parent, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    _call_when_ended(server_pid, stop)
    store.tf.constant(0.0).numpy()  # TensorFlow's thread pools start here, at this thread's (normal) priority
    try:
        model = _at_low_priority(lambda: store.load_and_warm_up(Path(path)))
        listener = Listener(address, family="AF_UNIX", authkey=key)
    except Exception as error:  # noqa: BLE001 - reported to the server, which logs it once
        report.send(("failed", f"{type(error).__name__}: {store.graph_error_message(error)}".replace("\n", " ")))
        return
    # The SignatureDefs go with the ready report: the server need not parse saved_model.pb (megabytes) while it serves.
    report.send(("ready", store.signature_def_map(model).SerializeToString()))
    report.close()
    while True:
        try:
            connection = listener.accept()
        except Exception:  # noqa: BLE001 - a client that failed authentication: the worker keeps listening
            continue
        threading.Thread(target=_answer, args=(model, connection), daemon=True).start()
