"""A TF Serving-compatible gRPC server on TensorFlow's SavedModel loader, for development and CI.

    python -m tfnlp.serving.server --model_name=icd10_seq2seq --model_base_path=savedmodels/icd10_seq2seq --port=8500
    python -m tfnlp.serving.server --model_config_file=serving/models.config --port=8500

It speaks the official `tensorflow-serving-api` protocol (PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus), with TF Serving's flag names, and loads the
newest version of each model at start. Production serves the same exports with
`tensorflow_model_server`; this server is not a replacement for it. REST with
`--rest_api_port`; version policies `latest`, `all` and `specific` from the model config;
new versions picked up every `--file_system_poll_wait_seconds`; server-side batching with
`--enable_batching [--batching_parameters_file=serving/batching.config]`; a deadline per request and a
bound on the request bytes in flight (`tfnlp.serving.limits`). With `--isolate_versions`, each version is
loaded and answered by a worker process of its own (`tfnlp.serving.worker`).
"""

from __future__ import annotations

import os

# oneDNN's CPU kernels keep the memory a large request's intermediate tensors took: measured 2026-12-03, two
# concurrent requests of 1,000 long texts to the coder took a process from 0.9 GB to 8.6 GB resident, and it stayed
# there after malloc_trim; without oneDNN, 1.0 GB at the peak and 0.9 GB after. Off unless the operator sets it (read
# when TensorFlow is imported, below).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import argparse
import contextlib
import functools
import threading
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path

import grpc
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from tfnlp.errors import UserError, cli_main
from tfnlp.serving import GRPC_OPTIONS
from tfnlp.serving.limits import DEFAULT_MAX_BYTES_IN_FLIGHT, DEFAULT_TIMEOUT_MS, Limits
from tfnlp.serving.process import follow_parent, lower_this_threads_priority
from tfnlp.serving.store import (
    DEFAULT_MAX_ROWS,
    ModelStore,
    ServedModel,
    ServingError,
    request_array,
    run_signature,
    signature_def_map,
)


def _served_model(entry) -> ServedModel:
    policy = entry.model_version_policy
    kind = policy.WhichOneof("policy_choice") or "latest"
    return ServedModel(Path(entry.base_path), kind, max(policy.latest.num_versions, 1),
                       tuple(policy.specific.versions), tuple(sorted(entry.version_labels.items())))


def model_paths(args: argparse.Namespace) -> dict[str, ServedModel]:
    """{model name: ServedModel} from --model_name/--model_base_path or --model_config_file."""
    if args.model_config_file:
        config = model_server_config_pb2.ModelServerConfig()
        try:
            text_format.Parse(Path(args.model_config_file).read_text(), config)
        except (OSError, text_format.ParseError) as error:
            raise UserError(f"{args.model_config_file}: not a readable model config ({error})") from None
        return {entry.name: _served_model(entry) for entry in config.model_config_list.config}
    if not (args.model_name and args.model_base_path):
        raise UserError("give --model_name and --model_base_path, or --model_config_file")
    return {args.model_name: ServedModel(Path(args.model_base_path))}


def poll(store: ModelStore, seconds: float, stop: threading.Event) -> threading.Thread:
    """Refresh the store every `seconds` until `stop` is set (TF Serving's file-system polling)."""

    def loop() -> None:
        lower_this_threads_priority()
        while not stop.wait(seconds):
            try:
                store.refresh()
            except Exception as error:  # noqa: BLE001 - a bad new version must not stop the server
                print(f"poll: {error}", flush=True)

    thread = threading.Thread(target=loop, daemon=True, name="poll")
    thread.start()
    return thread


@contextlib.contextmanager
def _grpc_errors(context: grpc.ServicerContext):
    """Turn a ServingError into the gRPC status it names (the server keeps serving)."""
    try:
        yield
    except ServingError as error:
        context.abort(error.code, str(error))


def _requested_version(store: ModelStore, model_spec) -> int | None:
    """The version a ModelSpec asks for: a number, a version label, or None (the newest)."""
    if model_spec.HasField("version"):
        return model_spec.version.value
    if model_spec.version_label:
        return store.labelled_version(model_spec.name, model_spec.version_label)
    return None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """PredictionService.Predict and GetModelMetadata; `predict` is `run_signature` or a Batcher's `run`."""

    def __init__(self, store: ModelStore, predict=run_signature, max_rows: int = DEFAULT_MAX_ROWS,
                 limits: Limits | None = None) -> None:
        self.store = store
        self.predict = predict
        self.max_rows = max_rows
        self.limits = limits or Limits()

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        with _grpc_errors(context):
            deadline = self.limits.deadline(context.time_remaining())
            model = self.store.get(request.model_spec.name, _requested_version(self.store, request.model_spec))
            inputs = {name: request_array(name, proto, self.max_rows) for name, proto in request.inputs.items()}
            outputs = self.limits.call(request.ByteSize(), deadline, functools.partial(
                self.predict, model, request.model_spec.signature_name, inputs, list(request.output_filter)))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        with _grpc_errors(context):
            model = self.store.get(request.model_spec.name, _requested_version(self.store, request.model_spec))
            if list(request.metadata_field) != ["signature_def"]:
                raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "metadata_field must be [\"signature_def\"]")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(signature_def_map(model))
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """ModelService.GetModelStatus: every loaded version is AVAILABLE."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def GetModelStatus(self, request, context):  # noqa: N802
        with _grpc_errors(context):
            requested = _requested_version(self.store, request.model_spec)
            models = ([self.store.get(request.model_spec.name, requested)] if requested is not None
                      else self.store.versions(request.model_spec.name))
        response = get_model_status_pb2.GetModelStatusResponse()
        for model in models:
            status = response.model_version_status.add()
            status.version = model.version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        # Versions that failed to load, as TF Serving reports them: END, with the error.
        for version, reason in sorted(self.store.failures(request.model_spec.name).items()):
            if requested is None or requested == version:
                status = response.model_version_status.add()
                status.version = version
                status.state = get_model_status_pb2.ModelVersionStatus.END
                status.status.error_code = error_codes_pb2.UNKNOWN
                status.status.error_message = reason
        return response


def serve(store: ModelStore, host: str, port: int, workers: int = 64, predict=run_signature,
          max_rows: int = DEFAULT_MAX_ROWS, limits: Limits | None = None) -> tuple[grpc.Server, int]:
    """Start the gRPC server (returns at once; call `wait_for_termination`) and the port it bound.

    Args:
        store: the models.
        host: address to bind.
        port: gRPC port (0: a free one).
        workers: requests handled at once (a request waiting for its batch holds one).
        predict: `run_signature`, or a Batcher's `run` for server-side batching.
        max_rows: most rows of one request.
        limits: the deadline and bytes-in-flight bound (`tfnlp.serving.limits`), shared with the REST front.

    Raises:
        UserError: the port is taken or cannot be bound.
    """
    # Exclusive: without this, a second server on the same port starts and silently shares its traffic.
    options = [*GRPC_OPTIONS, ("grpc.so_reuseport", 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(store, predict, max_rows, limits), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(store), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as error:
        bound, reason = 0, f" ({error})"
    else:
        reason = ""
    if not bound:
        raise UserError(f"cannot bind gRPC port {host}:{port}: taken by another process, or not an address of this "
                        f"machine{reason}")
    server.start()
    return server, bound


def port_number(value: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535)")
    return port


def _flag(value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value.lower() in ("true", "1")


def _predict_function(args: argparse.Namespace):
    """run_signature, or a Batcher's run when --enable_batching."""
    if not args.enable_batching:
        if args.batching_parameters_file:
            raise UserError("--batching_parameters_file is read only with --enable_batching")
        return run_signature
    from tfnlp.serving.batching import Batcher, BatchingParameters, read_batching_parameters

    parameters = (read_batching_parameters(args.batching_parameters_file) if args.batching_parameters_file
                  else BatchingParameters())
    print(f"batching: {parameters}", flush=True)
    return Batcher(parameters).run


def _loader(args: argparse.Namespace):
    """How versions load: in this process (the default), or each in a worker process (`--isolate_versions`)."""
    if args.isolate_versions:
        from tfnlp.serving.worker import WorkerVersion

        return WorkerVersion.start
    from tfnlp.serving.store import load_and_warm_up

    return load_and_warm_up


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    follow_parent()
    parser = argparse.ArgumentParser(prog="python -m tfnlp.serving.server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=port_number, default=8500, help="gRPC port (0: a free one)")
    parser.add_argument("--rest_api_port", type=port_number, default=0, help="REST port (0: no REST)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--model_name")
    parser.add_argument("--model_base_path")
    parser.add_argument("--model_config_file")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="how often to look for new or retired versions (0: never)")
    parser.add_argument("--enable_batching", nargs="?", const="true", default="false", type=_flag,
                        help="merge concurrent requests (tfnlp.serving.batching)")
    parser.add_argument("--batching_parameters_file", help="ASCII BatchingParameters (serving/batching.config)")
    parser.add_argument("--grpc_max_threads", type=int, default=64, help="gRPC requests handled at once")
    parser.add_argument("--rest_api_num_threads", type=int, default=64,
                        help="REST requests handled at once (more are answered 503)")
    parser.add_argument("--rest_api_timeout_in_ms", type=int, default=30000,
                        help="close a REST connection idle (or stalled mid-request) this long")
    parser.add_argument("--max_batch_rows", type=int, default=DEFAULT_MAX_ROWS,
                        help=f"most rows (texts) of one request, gRPC and REST (default {DEFAULT_MAX_ROWS})")
    parser.add_argument("--request_timeout_in_ms", type=int, default=DEFAULT_TIMEOUT_MS,
                        help="answer a request by then (DEADLINE_EXCEEDED / 504), or by the gRPC client's deadline")
    parser.add_argument("--isolate_versions", nargs="?", const="true", default="false", type=_flag,
                        help="serve each version from a worker process of its own: a version that crashes or runs "
                             "out of memory is replaced, not the server's end; more memory (default false)")
    parser.add_argument("--max_bytes_in_flight", type=int, default=DEFAULT_MAX_BYTES_IN_FLIGHT,
                        help="request bytes handled at once; more are refused (RESOURCE_EXHAUSTED / 429)")
    args = parser.parse_args(argv)
    for flag in ("max_batch_rows", "rest_api_num_threads", "rest_api_timeout_in_ms", "grpc_max_threads",
                 "request_timeout_in_ms", "max_bytes_in_flight"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag}={getattr(args, flag)}: must be at least 1")
    predict = _predict_function(args)
    store = ModelStore(model_paths(args), loader=_loader(args))
    limits = Limits(args.request_timeout_in_ms / 1000, args.max_bytes_in_flight,
                    args.grpc_max_threads + args.rest_api_num_threads)
    server, port = serve(store, args.host, args.port, args.grpc_max_threads, predict, args.max_batch_rows, limits)
    if args.file_system_poll_wait_seconds > 0:
        poll(store, args.file_system_poll_wait_seconds, threading.Event())
    print(f"serving gRPC on {args.host}:{port}", flush=True)
    if args.rest_api_port:
        from tfnlp.serving.rest import serve_rest

        try:
            rest = serve_rest(store, args.host, args.rest_api_port, predict, args.max_batch_rows,
                              args.rest_api_num_threads, args.rest_api_timeout_in_ms / 1000, limits)
        except OSError as error:
            raise UserError(f"cannot bind REST port {args.host}:{args.rest_api_port} ({error})") from None
        print(f"serving REST on {args.host}:{rest.server_address[1]}", flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
