"""A TF Serving-compatible gRPC server on TensorFlow's SavedModel loader, for development and CI.

    python -m tfnlp.serving.server --model_name=icd10_seq2seq --model_base_path=savedmodels/icd10_seq2seq --port=8500
    python -m tfnlp.serving.server --model_config_file=serving/models.config --port=8500

It speaks the official `tensorflow-serving-api` protocol (PredictionService.Predict and
GetModelMetadata, ModelService.GetModelStatus), with TF Serving's flag names, and loads the
newest version of each model at start. Production serves the same exports with
`tensorflow_model_server`; this server is not a replacement for it. Not yet here: REST,
version polling, server-side batching (see the README).
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2

from tfnlp.errors import UserError, cli_main
from tfnlp.export import existing_versions

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass
class LoadedVersion:
    """One loaded version of a model: its callable signatures and their SignatureDef protos."""

    version: int
    signatures: dict
    signature_defs: dict


def load_version(path: Path) -> LoadedVersion:
    """Load a SavedModel version folder."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    loaded = tf.saved_model.load(str(path))
    defs = {name: definition for name, definition in saved_model.meta_graphs[0].signature_def.items()
            if name in loaded.signatures}
    return LoadedVersion(int(path.name), dict(loaded.signatures), defs)


def model_paths(args: argparse.Namespace) -> dict[str, Path]:
    """{model name: base path} from --model_name/--model_base_path or --model_config_file."""
    if args.model_config_file:
        config = model_server_config_pb2.ModelServerConfig()
        try:
            text_format.Parse(Path(args.model_config_file).read_text(), config)
        except (OSError, text_format.ParseError) as error:
            raise UserError(f"{args.model_config_file}: not a readable model config ({error})") from None
        return {entry.name: Path(entry.base_path) for entry in config.model_config_list.config}
    if not (args.model_name and args.model_base_path):
        raise UserError("give --model_name and --model_base_path, or --model_config_file")
    return {args.model_name: Path(args.model_base_path)}


class ModelStore:
    """The loaded models: the newest version of each base path (TF Serving's `latest` policy)."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, LoadedVersion] = {}
        for name, base in paths.items():
            versions = existing_versions(base)
            if not versions:
                raise UserError(f"{base}: no numbered SavedModel version for model {name!r}")
            self._models[name] = load_version(base / str(versions[-1]))

    def get(self, name: str, version: int | None, context: grpc.ServicerContext) -> LoadedVersion:
        """The requested model version, or abort with NOT_FOUND."""
        with self._lock:
            model = self._models.get(name)
        if model is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
        if version is not None and version != model.version:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Specific({name}, {version})")
        return model


def _requested_version(model_spec) -> int | None:
    return model_spec.version.value if model_spec.HasField("version") else None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """PredictionService.Predict and GetModelMetadata."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        model = self.store.get(request.model_spec.name, _requested_version(request.model_spec), context)
        signature_name = request.model_spec.signature_name or "serving_default"
        if signature_name not in model.signatures:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"Serving signature name: \"{signature_name}\" not found in signature def")
        function = model.signatures[signature_name]
        expected = function.structured_input_signature[1]
        missing = sorted(set(expected) - set(request.inputs))
        extra = sorted(set(request.inputs) - set(expected))
        if missing or extra:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"input mismatch: missing {missing}, unexpected {extra}; expected {sorted(expected)}")
        inputs = {}
        for name, spec in expected.items():
            proto = request.inputs[name]
            if proto.dtype != spec.dtype.as_datatype_enum:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"input {name!r}: expects {spec.dtype.name}, got {tf.dtypes.as_dtype(proto.dtype).name}")
            value = tf.constant(tf.make_ndarray(proto), dtype=spec.dtype)
            if not spec.shape.is_compatible_with(value.shape):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"input {name!r}: expects shape {spec.shape}, got {value.shape}")
            inputs[name] = value
        try:
            outputs = function(**inputs)
        except (tf.errors.InvalidArgumentError, ValueError) as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error).splitlines()[0])
        wanted = set(request.output_filter) or set(outputs)
        unknown = sorted(wanted - set(outputs))
        if unknown:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"output_filter names unknown outputs {unknown}")
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = signature_name
        for name in wanted:
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name].numpy()))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        model = self.store.get(request.model_spec.name, _requested_version(request.model_spec), context)
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "metadata_field must be [\"signature_def\"]")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, definition in model.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(definition)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(signature_map)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """ModelService.GetModelStatus: every loaded version is AVAILABLE."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store

    def GetModelStatus(self, request, context):  # noqa: N802
        model = self.store.get(request.model_spec.name, _requested_version(request.model_spec), context)
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = model.version
        status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


def serve(store: ModelStore, host: str, port: int, workers: int = 8) -> grpc.Server:
    """Start the gRPC server (returns at once; call `wait_for_termination`)."""
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
               ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(store), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(store), server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise UserError(f"cannot bind {host}:{port}")
    server.start()
    return server


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.serving.server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--model_name")
    parser.add_argument("--model_base_path")
    parser.add_argument("--model_config_file")
    args = parser.parse_args(argv)
    server = serve(ModelStore(model_paths(args)), args.host, args.port)
    print(f"serving gRPC on {args.host}:{args.port}", flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
