"""TF Serving's REST API over the same models as the gRPC server.

    GET  /v1/models/<name>[/versions/<v>]            model status
    GET  /v1/models/<name>[/versions/<v>]/metadata   signature defs
    POST /v1/models/<name>[/versions/<v>]:predict    {"instances": [...]} or {"inputs": ...}

Errors answer `{"error": "..."}` with 404 (unknown model or version), 400 (bad request) or
413 (body over the size bound), 429 (batching queue full). `/labels/<l>` resolves the model
config's `version_labels`.
"""

from __future__ import annotations

import json
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from tfnlp.serving import MAX_MESSAGE_BYTES, python_values
from tfnlp.serving.store import LoadedVersion, ModelStore, ServingError, run_signature

PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                  r"(?P<suffix>/metadata|:predict)?$")
HTTP_STATUS = {
    grpc.StatusCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: HTTPStatus.BAD_REQUEST,
    grpc.StatusCode.RESOURCE_EXHAUSTED: HTTPStatus.TOO_MANY_REQUESTS,
}


def _status(models: list[LoadedVersion]) -> dict:
    return {"model_version_status": [{"version": str(model.version), "state": "AVAILABLE",
                                      "status": {"error_code": "OK", "error_message": ""}} for model in models]}


def _metadata(name: str, model: LoadedVersion) -> dict:
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, definition in model.signature_defs.items():
        signatures.signature_def[key].CopyFrom(definition)
    return {"model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
            "metadata": {"signature_def": json_format.MessageToDict(signatures, preserving_proto_field_name=True)}}


def _inputs(body: dict, input_names: list[str]) -> tuple[dict, bool]:
    """Named numpy inputs from a row (`instances`) or columnar (`inputs`) request, and whether it was rows."""
    if ("instances" in body) == ("inputs" in body):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, 'the body needs exactly one of "instances" or "inputs"')
    rows = "instances" in body
    data = body["instances" if rows else "inputs"]
    if rows:
        if not isinstance(data, list):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, '"instances" must be a list')
        if data and all(isinstance(row, dict) for row in data):
            data = {name: [row.get(name) for row in data] for name in {key for row in data for key in row}}
    if not isinstance(data, dict):
        if len(input_names) != 1:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"name the inputs: the signature takes {input_names}")
        data = {input_names[0]: data}
    return {name: np.asarray(value, dtype=object if _all_text(value) else None) for name, value in data.items()}, rows


def _all_text(value) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_all_text(item) for item in value)
    return isinstance(value, str)


def _predict(model: LoadedVersion, body: dict, predict) -> dict:
    signature = body.get("signature_name", "")
    function = model.signatures.get(signature or "serving_default")
    input_names = sorted(function.structured_input_signature[1]) if function is not None else []
    inputs, rows = _inputs(body, input_names)
    outputs = {name: python_values(value) for name, value in predict(model, signature, inputs).items()}
    if not rows:
        return {"outputs": outputs}
    count = len(next(iter(outputs.values()))) if outputs else 0
    return {"predictions": [{name: values[row] for name, values in outputs.items()} for row in range(count)]}


def _json_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"body is not JSON ({error})") from None
    if not isinstance(body, dict):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "body must be a JSON object")
    return body


class Handler(BaseHTTPRequestHandler):
    """One REST request; the store is set on the server object."""

    server_version = "tfnlp-serving"

    def log_message(self, format, *args) -> None:  # noqa: A002 (stdlib signature): keep test output quiet
        pass

    def _answer(self, status: HTTPStatus, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, method: str) -> None:
        try:
            # Read the body before any answer: closing with unread request bytes resets the connection.
            raw = self._raw_body() if method == "POST" else b""
            match = PATH.match(self.path)
            if not match or (method == "GET") == (match["suffix"] == ":predict"):
                raise ServingError(grpc.StatusCode.NOT_FOUND, f"no such endpoint: {method} {self.path}")
            version = (self.server.store.labelled_version(match["name"], match["label"]) if match["label"]
                       else int(match["version"]) if match["version"] else None)
            model = self.server.store.get(match["name"], version)
            if method == "GET" and not match["suffix"]:
                models = [model] if version is not None else self.server.store.versions(match["name"])
                self._answer(HTTPStatus.OK, _status(models))
            elif method == "GET":
                self._answer(HTTPStatus.OK, _metadata(match["name"], model))
            else:
                self._answer(HTTPStatus.OK, _predict(model, _json_object(raw), self.server.predict))
        except ServingError as error:
            status = error.http_status or HTTP_STATUS.get(error.code, HTTPStatus.INTERNAL_SERVER_ERROR)
            self._answer(status, {"error": str(error)})
        except Exception as error:  # noqa: BLE001 - a server bug answers 500 and the server keeps serving
            self._answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(error).__name__}: {error}"})

    def _raw_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_MESSAGE_BYTES:
            self.close_connection = True  # the oversized body is not read
            raise ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"body of {length} bytes over {MAX_MESSAGE_BYTES}",
                               HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return self.rfile.read(length)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")


def serve_rest(store: ModelStore, host: str, port: int, predict=run_signature) -> ThreadingHTTPServer:
    """Start the REST server in a daemon thread and return it; `predict` as for the gRPC server."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.store = store
    server.predict = predict
    threading.Thread(target=server.serve_forever, daemon=True, name="rest").start()
    return server
