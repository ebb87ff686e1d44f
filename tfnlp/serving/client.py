"""Call a TF Serving (or tfnlp.serving.server) model over gRPC, or REST with --rest.

    python -m tfnlp.serving.client --model icd10_seq2seq "douleur thoracique"
    python -m tfnlp.serving.client --model icd10_seq2seq --file texts.txt --target localhost:8500
    python -m tfnlp.serving.client --model icd10_seq2seq --rest --target localhost:8501 "douleur thoracique"

Prints what a person reads for each text (`tfnlp.answers`: ranked codes with labels, confidences and the
review flag; entities marked in the text; ranked labels); `--json` prints one answer per line as JSON,
`--raw` the signature's named outputs as they come (without `attention`, unless `--attention`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import grpc
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from tfnlp import answers
from tfnlp.cli import read_texts
from tfnlp.errors import UserError, cli_main
from tfnlp.serving import GRPC_OPTIONS, python_values

RETRIES = 3


class RestError(Exception):
    """A REST call the server refused: its HTTP status and TF Serving's `error` message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def _rest(url: str, body: dict | None, timeout: float) -> Any:
    """GET (body None) or POST JSON, retrying refused connections and 503 with backoff; the decoded JSON."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    for attempt in range(RETRIES):
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == RETRIES - 1:
                raise RestError(error.code, _error_message(error)) from None
        except urllib.error.URLError as error:
            if attempt == RETRIES - 1:
                raise RestError(503, f"{url}: {error.reason}") from None
        except TimeoutError:
            raise RestError(504, f"{url}: no answer within {timeout:g} s") from None
        except (http.client.HTTPException, ConnectionError, json.JSONDecodeError) as error:
            # Not an HTTP server (a gRPC port answers HTTP/2 frames), or one that hung up mid-answer.
            raise RestError(502, f"{url}: not a TF Serving REST answer ({type(error).__name__}: {error}); is this "
                                 "the REST port (--rest_api_port)?") from None
        time.sleep(0.2 * 2 ** attempt)
    raise AssertionError("unreachable")


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        return json.loads(error.read()).get("error", error.reason)
    except (json.JSONDecodeError, AttributeError):
        return str(error.reason)


def _rest_url(target: str, model: str, version: int | None, suffix: str = "") -> str:
    base = target if "://" in target else f"http://{target}"
    return f"{base}/v1/models/{model}" + (f"/versions/{version}" if version is not None else "") + suffix


_channels: dict[str, grpc.Channel] = {}
_channels_lock = threading.Lock()


def _channel(target: str) -> grpc.Channel:
    """One shared channel per target: a channel is thread-safe and reconnects by itself, and opening one
    per call would add a connection set-up to every request."""
    with _channels_lock:
        if target not in _channels:
            _channels[target] = grpc.insecure_channel(target, options=GRPC_OPTIONS)
        return _channels[target]


def _call(method, request, timeout: float):
    """Call with a deadline, retrying UNAVAILABLE (server starting, connection reset) with backoff."""
    for attempt in range(RETRIES):
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == RETRIES - 1:
                raise
            time.sleep(0.2 * 2 ** attempt)
    raise AssertionError("unreachable")


def _spec(request, model: str, version: int | None, signature: str | None = None) -> None:
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    if signature is not None:
        request.model_spec.signature_name = signature


def _to_python(proto) -> list:
    import tensorflow as tf

    return python_values(tf.make_ndarray(proto))


def predict(texts: Sequence[str], model: str, target: str = "localhost:8500", version: int | None = None,
            signature: str = "serving_default", timeout: float = 30.0, rest: bool = False) -> dict[str, list]:
    """Named outputs of `model` for `texts`, as Python lists (strings decoded).

    Args:
        texts: the raw texts, one row each.
        model: the served model's name.
        target: host:port of the gRPC API, or of the REST API when `rest`.
        version: a specific version; None asks for the newest.
        signature: the signature to call.
        timeout: deadline in seconds, per attempt.
        rest: call TF Serving's REST API (`:predict` with a columnar `inputs` body) instead of gRPC.

    Raises:
        grpc.RpcError: the server's status (NOT_FOUND, INVALID_ARGUMENT, ...) after retries.
        RestError: the same over REST (404, 400, ...).
    """
    if rest:
        body = {"signature_name": signature, "inputs": {"text": list(texts)}}
        outputs = _rest(_rest_url(target, model, version, ":predict"), body, timeout)["outputs"]
        return outputs if isinstance(outputs, dict) else {"output": outputs}  # a single-output signature
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    _spec(request, model, version, signature)
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(list(texts), dtype=tf.string))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(_channel(target))
    response = _call(stub.Predict, request, timeout)
    return {name: _to_python(proto) for name, proto in response.outputs.items()}


def metadata(model: str, target: str = "localhost:8500", version: int | None = None,
             timeout: float = 10.0, rest: bool = False) -> dict[str, Any]:
    """{signature: {"inputs": {name: dtype}, "outputs": {name: dtype}}} of a served model."""
    if rest:
        answer = _rest(_rest_url(target, model, version, "/metadata"), None, timeout)
        return {name: {part: {tensor: info["dtype"] for tensor, info in definition.get(part, {}).items()}
                       for part in ("inputs", "outputs")}
                for name, definition in answer["metadata"]["signature_def"]["signature_def"].items()}
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    _spec(request, model, version)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(_channel(target))
    response = _call(stub.GetModelMetadata, request, timeout)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)

    def described(tensors):
        return {name: types_pb2.DataType.Name(info.dtype) for name, info in tensors.items()}

    return {name: {"inputs": described(definition.inputs), "outputs": described(definition.outputs)}
            for name, definition in signatures.signature_def.items()}


def status(model: str, target: str = "localhost:8500", timeout: float = 10.0,
           rest: bool = False) -> list[dict[str, Any]]:
    """[{"version": N, "state": "AVAILABLE"}, ...] of a served model."""
    if rest:
        answer = _rest(_rest_url(target, model, None), None, timeout)
        return [{"version": int(entry["version"]), "state": entry["state"]} for entry in answer["model_version_status"]]
    request = get_model_status_pb2.GetModelStatusRequest()
    _spec(request, model, None)
    response = _call(model_service_pb2_grpc.ModelServiceStub(_channel(target)).GetModelStatus, request, timeout)
    states = get_model_status_pb2.ModelVersionStatus.State
    return [{"version": entry.version, "state": states.Name(entry.state)} for entry in response.model_version_status]


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.serving.client", description=__doc__.splitlines()[0])
    parser.add_argument("texts", nargs="*")
    parser.add_argument("--model", required=True)
    parser.add_argument("--target", help="host:port of the server (default localhost:8500, or :8501 with --rest)")
    parser.add_argument("--rest", action="store_true", help="use TF Serving's REST API instead of gRPC")
    parser.add_argument("--version", type=int)
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--file", help="one text per line")
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline in seconds")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="one JSON answer per line")
    shown.add_argument("--raw", action="store_true", help="the named outputs as they come, one JSON object per text")
    parser.add_argument("--attention", action="store_true", help="with --raw: include the attention matrices")
    args = parser.parse_args(argv)
    texts = read_texts(args.texts, args.file)
    target = args.target or ("localhost:8501" if args.rest else "localhost:8500")
    try:
        outputs = predict(texts, args.model, target, args.version, args.signature, args.timeout, args.rest)
    except grpc.RpcError as error:
        raise UserError(f"{target}: {error.code().name}: {error.details()}") from None
    except RestError as error:
        raise UserError(f"{target}: {error}") from None
    rows = [{name: values[row] for name, values in sorted(outputs.items())} for row in range(len(texts))]
    if args.raw:
        for text, row in zip(texts, rows, strict=True):
            shown_row = {name: value for name, value in row.items() if args.attention or name != "attention"}
            print(json.dumps({"text": text, **shown_row}, ensure_ascii=False))
        return 0
    try:
        kind = answers.answer_type(list(outputs))
    except ValueError as error:
        raise UserError(f"{args.model}: {error}; --raw prints them as they are") from None
    for text, row in zip(texts, rows, strict=True):
        answer = kind.from_outputs(text, row)
        print(json.dumps(answers.to_dict(answer), ensure_ascii=False) if args.json else answers.render(answer) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
