"""TF Serving's REST API over the same models as the gRPC server.

    GET  /v1/models/<name>[/versions/<v>]            model status
    GET  /v1/models/<name>[/versions/<v>]/metadata   signature defs
    POST /v1/models/<name>[/versions/<v>]:predict    {"instances": [...]} or {"inputs": ...}

Errors answer `{"error": "..."}` with 404 (unknown model or version), 400 (bad request), 413
(body or rows over the bounds), 429 (batching queue full, or too many request bytes in flight), 503
(every request thread busy) or 504 (no answer within the request's deadline).
`/labels/<l>` resolves the model config's `version_labels`. Binary values are `{"b64": "..."}`
(row and columnar forms); a signature with a single output answers its values without the
output's name, as TF Serving documents. Bodies may be sent chunked.

Bounds: a connection holds no request thread until its whole request (head and Content-Length
body) has arrived: one event-loop thread (`HeadReader`) reads every connection's bytes, so that
clients trickling their requests cost the server sockets, not threads. At most `max_threads`
requests are handled at once (more are answered 503 at once); a request that has not arrived
whole within `idle_seconds` (a client that declares more body than it sends, sends nothing, or
trickles) is dropped, as is a kept-alive connection idle that long.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import io
import json
import re
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
from google.protobuf import json_format

from tfnlp.parsing import ascii_number
from tfnlp.serving import MAX_MESSAGE_BYTES, python_values
from tfnlp.serving.limits import Limits
from tfnlp.serving.store import (
    DEFAULT_MAX_ROWS,
    LoadedVersion,
    ModelStore,
    ServingError,
    run_signature,
    signature_def_map,
    too_many_rows,
)

PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                  r"(?P<suffix>/metadata|:predict)?$")
HTTP_STATUS = {
    grpc.StatusCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.RESOURCE_EXHAUSTED: HTTPStatus.TOO_MANY_REQUESTS,
    grpc.StatusCode.DEADLINE_EXCEEDED: HTTPStatus.GATEWAY_TIMEOUT,
    grpc.StatusCode.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
}
LISTEN_BACKLOG = 128
MAX_THREADS = 64
IDLE_SECONDS = 30.0
MAX_NESTING = 32  # list depth of a JSON value (a text input is 1-D)
MAX_WAITING = 4096  # connections waiting for their request to arrive; more are closed at once
MAX_HEAD_BYTES = 1 << 20  # a request line and headers longer than this go to a handler, which refuses them
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\S+)", re.IGNORECASE)


def _status(models: list[LoadedVersion], failures: dict[int, str]) -> dict:
    """TF Serving's status body: each served version AVAILABLE, each version that failed to load END with its error."""
    served = [{"version": str(model.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
              for model in models]
    failed = [{"version": str(version), "state": "END", "status": {"error_code": "UNKNOWN", "error_message": reason}}
              for version, reason in sorted(failures.items())]
    return {"model_version_status": served + failed}


def _metadata(name: str, model: LoadedVersion) -> dict:
    signatures = json_format.MessageToDict(signature_def_map(model), preserving_proto_field_name=True)
    return {"model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
            "metadata": {"signature_def": signatures}}


def _bad(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _inputs(body: dict, input_names: list[str], max_rows: int) -> tuple[dict, bool]:
    """Named numpy inputs from a row (`instances`) or columnar (`inputs`) request, and whether it was rows."""
    if ("instances" in body) == ("inputs" in body):
        raise _bad('the body needs exactly one of "instances" or "inputs"')
    rows = "instances" in body
    data = body["instances" if rows else "inputs"]
    if rows:
        if not isinstance(data, list):
            raise _bad('"instances" must be a list')
        if data and all(isinstance(row, dict) and "b64" not in row for row in data):
            for index, row in enumerate(data):
                missing = sorted(set(input_names) - set(row))
                if missing:
                    raise _bad(f"instance {index} has no {missing}; every instance needs {input_names}")
            data = {name: [row[name] for row in data] for name in {key for row in data for key in row}}
    if not isinstance(data, dict) or "b64" in data:
        if len(input_names) != 1:
            raise _bad(f"name the inputs: the signature takes {input_names}")
        data = {input_names[0]: data}
    arrays = {name: _array(name, value) for name, value in data.items()}
    for array in arrays.values():
        if array.ndim and array.shape[0] > max_rows:
            raise too_many_rows(array.shape[0], max_rows)
    return arrays, rows


def _array(name: str, value) -> np.ndarray:
    """A JSON value as a numpy array: rectangular, and all strings ({"b64"} decoded to bytes) or all numbers."""
    leaves: list = []
    shape = _shape(name, value, leaves, 0)
    kinds = {"text" if isinstance(leaf, bytes | str) else "boolean" if isinstance(leaf, bool) else "number"
             for leaf in leaves}
    if len(kinds) > 1:
        raise _bad(f"input {name!r}: mixes {' and '.join(sorted(kinds))} values")
    if kinds == {"text"} or not leaves:
        return np.array(leaves, dtype=object).reshape(shape)
    return np.array(leaves).reshape(shape)


def _shape(name: str, value, leaves: list, depth: int) -> tuple[int, ...]:
    """The shape of a nested list, its leaves appended (b64 decoded); INVALID_ARGUMENT if ragged, too deep or null."""
    if depth > MAX_NESTING:
        raise _bad(f"input {name!r}: nested deeper than {MAX_NESTING} lists")
    if isinstance(value, list):
        shapes = {_shape(name, item, leaves, depth + 1) for item in value}
        if len(shapes) > 1:
            raise _bad(f"input {name!r}: ragged lists (rows of different lengths)")
        return (len(value), *(shapes.pop() if shapes else ()))
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise _bad(f'input {name!r}: an object value must be {{"b64": "<base64>"}}')
        try:
            leaves.append(base64.b64decode(value["b64"], validate=True))
        except (binascii.Error, ValueError):
            raise _bad(f"input {name!r}: {value['b64'][:20]!r} is not base64") from None
        return ()
    if value is None:
        raise _bad(f"input {name!r}: null is not a value")
    leaves.append(value)
    return ()


def _predict(model: LoadedVersion, body: dict, predict, max_rows: int = DEFAULT_MAX_ROWS,
             deadline: float | None = None) -> dict:
    signature = body.get("signature_name", "")
    if not isinstance(signature, str):
        raise _bad(f'"signature_name" must be a string, got {json.dumps(signature)[:40]}')
    function = model.signatures.get(signature or "serving_default")
    input_names = sorted(function.structured_input_signature[1]) if function is not None else []
    inputs, rows = _inputs(body, input_names, max_rows)
    outputs = {name: python_values(value) for name, value in predict(model, signature, inputs, (), deadline).items()}
    if len(outputs) == 1:  # TF Serving answers a lone output's values without its name
        values = next(iter(outputs.values()))
        return {"predictions": values} if rows else {"outputs": values}
    if not rows:
        return {"outputs": outputs}
    count = len(next(iter(outputs.values()))) if outputs else 0
    return {"predictions": [{name: values[row] for name, values in outputs.items()} for row in range(count)]}


def _json_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _bad(f"body is not JSON ({error})") from None
    except RecursionError:
        raise _bad("body is nested too deeply") from None
    if not isinstance(body, dict):
        raise _bad("body must be a JSON object")
    return body


def _too_large(size: int) -> ServingError:
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"body of {size} bytes over {MAX_MESSAGE_BYTES}",
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE)


class ConnectionReader(io.RawIOBase):
    """A connection's bytes for one request: first those the head reader already read, then the socket's, under one
    deadline for the rest of the request (a client trickling a byte every few seconds never trips a per-read timeout,
    but it runs out of this deadline). What is left after the request (a pipelined next one) is `leftover()`."""

    def __init__(self, connection: socket.socket, seconds: float, already_read: bytes = b"") -> None:
        super().__init__()
        self.connection, self.seconds = connection, seconds
        self.deadline = time.monotonic() + seconds
        self.buffer = bytearray(already_read)
        self.start = 0  # bytes of `buffer` already taken (a body of megabytes is not moved for each header line)

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Read what the socket has (up to 1 MB); False at its end."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the request took longer than {self.seconds:g} s to arrive")
        self.connection.settimeout(remaining)
        received = self.connection.recv(1 << 20)
        if self.start:
            del self.buffer[:self.start]
            self.start = 0
        self.buffer += received
        return bool(received)

    def _available(self) -> int:
        return len(self.buffer) - self.start

    def _take(self, size: int) -> bytes:
        taken = bytes(self.buffer[self.start:self.start + size])
        self.start += len(taken)
        return taken

    def readline(self, limit: int = -1) -> bytes:
        while True:
            end = self.buffer.find(b"\n", self.start)
            if end >= 0 and (limit < 0 or end - self.start < limit):
                return self._take(end + 1 - self.start)
            if 0 <= limit <= self._available() or not self._fill():
                return self._take(limit if limit >= 0 else self._available())

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or self._available() < size) and self._fill():
            pass
        return self._take(size if size >= 0 else self._available())

    def readinto(self, buffer) -> int:
        if not self._available() and not self._fill():
            return 0
        chunk = self._take(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)

    def leftover(self) -> bytes:
        return self._take(self._available())


def request_length(data: bytes | bytearray) -> int | None:
    """How many bytes of `data` the first request takes (its head, then its Content-Length body), once the head has
    arrived; None before. A chunked body counts as absent: the handler thread reads it (under its deadline)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    declared = CONTENT_LENGTH.search(bytes(data[:head_end]))
    body = int(declared[1]) if declared and declared[1].isdigit() else 0
    return head_end + 4 + (body if body <= MAX_MESSAGE_BYTES else 0)


@dataclass
class _Waiting:
    connection: socket.socket
    address: tuple
    deadline: float
    data: bytearray


class HeadReader:
    """One thread that reads every connection's request, head and Content-Length body, before any handler thread is
    given to it (an event loop over the sockets): connections trickling their request cost the server a socket and a
    buffer, not one of its request threads. A request that has not arrived whole within the deadline is dropped, as is
    a connection beyond `MAX_WAITING`."""

    def __init__(self, server: RestServer) -> None:
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.waiting: dict[int, _Waiting] = {}
        self.lock = threading.Lock()
        self.wake_read, self.wake_write = socket.socketpair()
        self.wake_read.setblocking(False)
        self.selector.register(self.wake_read, selectors.EVENT_READ)
        self.added: list[tuple] = []
        threading.Thread(target=self._loop, daemon=True, name="rest-heads").start()

    def add(self, connection: socket.socket, address: tuple, already_read: bytes = b"") -> None:
        """Wait for `connection`'s next request (from any thread)."""
        with self.lock:
            self.added.append((connection, address, already_read))
        self.wake_write.send(b"x")

    def _loop(self) -> None:
        while True:
            for key, _ in self.selector.select(timeout=0.5):
                if key.fileobj is self.wake_read:
                    self._take_added()
                else:
                    self._read(self.waiting[key.fd])
            self._drop_late()

    def _take_added(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.wake_read.recv(4096)
        with self.lock:
            added, self.added = self.added, []
        for connection, address, already_read in added:
            if len(self.waiting) >= MAX_WAITING:
                self.server.shutdown_request(connection)
                continue
            waiting = _Waiting(connection, address, time.monotonic() + self.server.idle_seconds,
                               bytearray(already_read))
            if self._complete(waiting):
                continue
            connection.setblocking(False)
            self.waiting[connection.fileno()] = waiting
            self.selector.register(connection, selectors.EVENT_READ)

    def _read(self, waiting: _Waiting) -> None:
        try:
            received = waiting.connection.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError:
            received = b""
        if not received:  # the client closed (or reset) the connection
            self._forget(waiting)
            self.server.shutdown_request(waiting.connection)
            return
        waiting.data += received
        if not self._complete(waiting) and len(waiting.data) > MAX_HEAD_BYTES and request_length(waiting.data) is None:
            self._forget(waiting)  # a head that does not end: a handler answers it (414 or 431)
            self.server.dispatch(waiting.connection, waiting.address, bytes(waiting.data))

    def _complete(self, waiting: _Waiting) -> bool:
        """Hand `waiting` to a handler thread when its whole request has arrived; whether it was."""
        length = request_length(waiting.data)
        if length is None or len(waiting.data) < length:
            return False
        self._forget(waiting)
        self.server.dispatch(waiting.connection, waiting.address, bytes(waiting.data))
        return True

    def _forget(self, waiting: _Waiting) -> None:
        if self.waiting.pop(waiting.connection.fileno(), None) is not None:
            self.selector.unregister(waiting.connection)

    def _drop_late(self) -> None:
        now = time.monotonic()
        for waiting in [waiting for waiting in self.waiting.values() if now >= waiting.deadline]:
            self._forget(waiting)
            self.server.shutdown_request(waiting.connection)


class Handler(BaseHTTPRequestHandler):
    """One REST connection; the store, predict function and bounds are set on the server object. Each request must
    arrive whole (line, headers, body) within `--rest_api_timeout_in_ms`, and a connection idle that long closes."""

    server_version = "tfnlp-serving"
    protocol_version = "HTTP/1.1"  # keep-alive: clients may reuse a connection

    def __init__(self, request: socket.socket, client_address, server: RestServer, already_read: bytes = b"") -> None:
        self.already_read = already_read
        self.leftover: bytes | None = None  # set when the connection stays open for a next request
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        self.timeout = self.server.idle_seconds  # set on the socket: an idle or stalled client is dropped
        super().setup()
        self.rfile = ConnectionReader(self.connection, self.server.idle_seconds, self.already_read)

    def handle(self) -> None:
        """One request; a connection kept alive goes back to the head reader for its next one (holding no thread)."""
        self.close_connection = True
        try:
            self.handle_one_request()
        except TimeoutError:
            self.close_connection = True
        if not self.close_connection:
            self.leftover = self.rfile.leftover()

    def version_string(self) -> str:
        return self.server_version  # without the Python version

    def log_message(self, format, *args) -> None:  # noqa: A002 (stdlib signature): keep test output quiet
        pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (414, 431, 501, ...) as JSON too; the connection then closes."""
        self.close_connection = True
        self._answer(HTTPStatus(code), {"error": message or HTTPStatus(code).phrase})

    def _answer(self, status: HTTPStatus, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _route(self, method: str) -> None:
        try:
            # Read the body before any answer: closing with unread request bytes resets the connection.
            raw = self._raw_body() if method == "POST" else b""
            if "?" in self.path or "#" in self.path:
                raise _bad(f"{self.path}: TF Serving's REST paths take no query string or fragment")
            match = PATH.match(self.path)
            if not match or (method == "GET") == (match["suffix"] == ":predict"):
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"no such endpoint: {method} {self.path}")
            version = (self.server.store.labelled_version(match["name"], match["label"]) if match["label"]
                       else int(match["version"]) if match["version"] else None)
            model = self.server.store.get(match["name"], version)
            if method == "GET" and not match["suffix"]:
                models = [model] if version is not None else self.server.store.versions(match["name"])
                failures = self.server.store.failures(match["name"]) if version is None else {}
                self._answer(HTTPStatus.OK, _status(models, failures))
            elif method == "GET":
                self._answer(HTTPStatus.OK, _metadata(match["name"], model))
            else:
                limits = self.server.limits
                deadline = limits.deadline()
                body = _json_object(raw)
                self._answer(HTTPStatus.OK, limits.call(len(raw), deadline, functools.partial(
                    _predict, model, body, self.server.predict, self.server.max_rows)))
        except ServingError as error:
            status = error.http_status or HTTP_STATUS.get(error.code, HTTPStatus.INTERNAL_SERVER_ERROR)
            self._answer(status, {"error": str(error)})
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away or stalled: there is no one to answer
        except Exception as error:  # noqa: BLE001 - a server bug answers 500 and the server keeps serving
            self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error ({type(error).__name__})"})

    def _raw_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked_body()
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1:
            self.close_connection = True  # two framings of one body: where it ends is ambiguous
            raise _bad(f"{len(lengths)} Content-Length headers; send one")
        declared = (lengths[0] if lengths else "0").strip()
        if not ascii_number(declared):
            self.close_connection = True  # where the body ends is unknown
            raise _bad(f"Content-Length {declared!r} is not a byte count")
        if int(declared) > MAX_MESSAGE_BYTES:
            self.close_connection = True  # the oversized body is not read
            raise _too_large(int(declared))
        return self.rfile.read(int(declared))

    def _chunked_body(self) -> bytes:
        body = bytearray()
        while True:
            size_field = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                self.close_connection = True
                raise _bad(f"chunk size {size_field[:20]!r} is not hexadecimal") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # optional trailers, then the blank line
                    pass
                return bytes(body)
            if len(body) + size > MAX_MESSAGE_BYTES:
                self.close_connection = True
                raise _too_large(len(body) + size)
            body += self.rfile.read(size)
            self.rfile.readline(8)  # the CRLF that ends a chunk

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")


class RestServer(ThreadingHTTPServer):
    """A threading HTTP server with a bounded number of threads and a real backlog, bound to its port alone."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True
    allow_reuse_address = False  # a second server on the same port fails to start instead of sharing it

    def __init__(self, address: tuple[str, int], max_threads: int, idle_seconds: float) -> None:
        super().__init__(address, Handler)
        self.slots = threading.BoundedSemaphore(max_threads)
        self.idle_seconds = idle_seconds
        self.head_reader = HeadReader(self)

    def process_request(self, request: socket.socket, client_address) -> None:
        """A new connection waits for its request in the head reader, not in a thread."""
        self.head_reader.add(request, client_address)

    def dispatch(self, connection: socket.socket, address: tuple, already_read: bytes) -> None:
        """A whole request has arrived: a handler thread for it, or 503 when every one is busy (a bounded server, and
        a client that knows to retry)."""
        if not self.slots.acquire(blocking=False):
            self._answer_busy(connection)
            return
        threading.Thread(target=self._handle, args=(connection, address, already_read), daemon=True,
                         name="rest").start()

    def _handle(self, connection: socket.socket, address: tuple, already_read: bytes) -> None:
        leftover = None
        try:
            connection.setblocking(True)
            leftover = Handler(connection, address, self, already_read).leftover
        except Exception:  # noqa: BLE001, S110 - a client that went away; handler errors are answered in `_route`
            pass
        finally:
            self.slots.release()
        if leftover is None:
            self.shutdown_request(connection)
        else:
            self.head_reader.add(connection, address, leftover)

    def _answer_busy(self, connection: socket.socket) -> None:
        body = json.dumps({"error": "every request thread is busy; retry"}).encode()
        try:
            connection.settimeout(1.0)  # a few hundred bytes: the socket's send buffer takes them at once
            connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: "
                               b"close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            self.shutdown_request(connection)

    def handle_error(self, request, client_address) -> None:
        """Say nothing: a client hanging up is not a server error, and handler errors are answered in `_route`."""


def serve_rest(store: ModelStore, host: str, port: int, predict=run_signature, max_rows: int = DEFAULT_MAX_ROWS,
               max_threads: int = MAX_THREADS, idle_seconds: float = IDLE_SECONDS,
               limits: Limits | None = None) -> RestServer:
    """Start the REST server in a daemon thread and return it (`server_address` holds the port bound); `predict`
    and `limits` as for the gRPC server."""
    server = RestServer((host, port), max_threads, idle_seconds)
    server.store = store
    server.limits = limits or Limits(workers=max_threads)
    server.predict = predict
    server.max_rows = max_rows
    threading.Thread(target=server.serve_forever, daemon=True, name="rest").start()
    return server
