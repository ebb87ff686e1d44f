"""The models a TF Serving-compatible server holds, and how a request calls one.

The gRPC server (`tfnlp.serving.server`), the REST front (`rest`) and server-side batching
(`batching`) all import this module; none of them imports another.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2

from tfnlp.errors import UserError
from tfnlp.export import existing_versions

# Tensor dtypes a request may carry, and the TensorProto field holding each one's values; anything else (resources,
# variants) is refused.
VALUE_FIELDS = {tf.string: "string_val", tf.float32: "float_val", tf.float64: "double_val", tf.int32: "int_val",
                tf.int64: "int64_val", tf.bool: "bool_val"}
ACCEPTED_DTYPES = {dtype.as_datatype_enum for dtype in VALUE_FIELDS}
DEFAULT_MAX_ROWS = 10_000  # rows of one request (--max_batch_rows): a bound on what one request may cost


class ServingError(Exception):
    """A request the server refuses: a gRPC status code, a readable message, and an HTTP status for REST
    when the code's usual one does not fit."""

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


def too_many_rows(rows: int, max_rows: int) -> ServingError:
    """RESOURCE_EXHAUSTED (HTTP 413) for a request of more rows than the server takes."""
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"{rows} rows in one request; at most {max_rows} (--max_batch_rows)", 413)


def request_array(name: str, proto, max_rows: int = DEFAULT_MAX_ROWS) -> np.ndarray:
    """A request's TensorProto as a numpy array, after checking what it declares against what it holds.

    A proto may declare a shape of 20,000,000 rows and send one value, which `tf.make_ndarray`
    would broadcast into gigabytes: the declared shape must hold exactly the values sent, and at
    most `max_rows` rows.

    Raises:
        ServingError: INVALID_ARGUMENT for an unsupported dtype or a shape that does not match the values;
            RESOURCE_EXHAUSTED for too many rows.
    """
    if proto.dtype not in ACCEPTED_DTYPES:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input {name!r}: unsupported dtype {tf.dtypes.as_dtype(proto.dtype).name}")
    dtype = tf.dtypes.as_dtype(proto.dtype)
    dims = [dim.size for dim in proto.tensor_shape.dim]
    if any(size < 0 for size in dims) or proto.tensor_shape.unknown_rank:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"input {name!r}: shape {dims} is not a tensor's shape")
    if dims and dims[0] > max_rows:
        raise too_many_rows(dims[0], max_rows)
    declared = int(np.prod(dims, dtype=object)) if dims else 1
    if proto.tensor_content and dtype != tf.string:
        sent = len(proto.tensor_content) // dtype.size
    else:
        sent = len(getattr(proto, VALUE_FIELDS[dtype]))
    if sent != declared:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input {name!r}: shape {dims} declares {declared} values but the request holds {sent}")
    return tf.make_ndarray(proto)


@dataclass
class LoadedVersion:
    """One version loaded in this process: its callable signatures and their SignatureDef protos. (A version served
    from a process of its own, `tfnlp.serving.worker.WorkerVersion`, has the same face.)"""

    version: int
    signatures: dict
    signature_defs: dict
    alive: bool = True  # a version in this process cannot die without the server

    def retire(self) -> None:
        """Nothing to stop: the version is freed when the last request holding it ends."""


def signature_def_map(model: LoadedVersion) -> get_model_metadata_pb2.SignatureDefMap:
    """A version's SignatureDefs as the SignatureDefMap that GetModelMetadata answers (gRPC and REST)."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for name, definition in model.signature_defs.items():
        signature_map.signature_def[name].CopyFrom(definition)
    return signature_map


def load_version(path: Path) -> LoadedVersion:
    """Load a SavedModel version folder (tensorflow_text's ops registered, for models that use them)."""
    import tensorflow_text  # noqa: F401 - importing registers the ops

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((path / "saved_model.pb").read_bytes())
    loaded = tf.saved_model.load(str(path))
    defs = {name: definition for name, definition in saved_model.meta_graphs[0].signature_def.items()
            if name in loaded.signatures}
    return LoadedVersion(int(path.name), dict(loaded.signatures), defs)


@dataclass(frozen=True)
class ServedModel:
    """A model to serve: its base path and TF Serving's version policy.

    Attributes:
        base_path: folder of numbered version folders.
        policy: `latest` (the newest `num_versions`), `all`, or `specific` (`versions`).
        num_versions: versions kept under `latest`.
        versions: the versions served under `specific`.
        labels: (label, version) pairs of the config's `version_labels` ("stable" -> 1, "canary" -> 2).
    """

    base_path: Path
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    labels: tuple[tuple[str, int], ...] = ()

    def wanted(self) -> list[int]:
        """The versions on disk that the policy serves."""
        present = existing_versions(self.base_path)
        if self.policy == "all":
            return present
        if self.policy == "specific":
            return [version for version in present if version in self.versions]
        return present[-self.num_versions:]


def replay_warmup(model: LoadedVersion, path: Path) -> int:
    """Answer the version's `assets.extra/tf_serving_warmup_requests` (as TF Serving does before it marks a version
    available): the first real requests then find the graph traced and the memory allocated. The number replayed.

    Raises:
        ServingError: a warmup request fails (the version is then not served).
    """
    from tensorflow_serving.apis import prediction_log_pb2

    warmup = path / "assets.extra" / "tf_serving_warmup_requests"
    if not warmup.is_file():
        return 0
    replayed = 0
    for record in tf.data.TFRecordDataset(str(warmup)):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        inputs = {name: request_array(name, proto) for name, proto in request.inputs.items()}
        run_signature(model, request.model_spec.signature_name, inputs)
        replayed += 1
    return replayed


def load_and_warm_up(path: Path) -> LoadedVersion:
    """A version loaded in this process, its warmup requests replayed (the in-process loader of `ModelStore`)."""
    model = load_version(path)
    replay_warmup(model, path)
    return model


def folder_fingerprint(path: Path) -> tuple:
    """What changes when a version folder is rewritten: its own and its files' modification times and sizes."""
    try:
        files = sorted((item.relative_to(path).as_posix(), item.stat().st_mtime_ns, item.stat().st_size)
                       for item in path.rglob("*") if item.is_file())
        return (path.stat().st_mtime_ns, tuple(files))
    except OSError:
        return ()


@dataclass
class LoadFailure:
    """A version that did not load: why, the folder as it was then, and when to look at it again."""

    reason: str
    fingerprint: tuple
    retry_at: float
    attempts: int = 1


class ModelStore:
    """The loaded versions of each model, as its version policy wants them.

    `refresh` loads a new version and replays its warmup requests before it retires an old one, and
    swaps them in under a lock, so a request in flight during a switch is answered by the version it
    got, and the first requests to a new version do not pay for its graph's tracing. A version that
    fails to load is reported once (model, version, reason) and in `failures` (GetModelStatus), not
    retried until its folder changes or its backoff (doubling from `RETRY_SECONDS` to
    `MAX_RETRY_SECONDS`) has passed; the versions already served stay served meanwhile (at start, the
    newest older version that loads is served).
    """

    RETRY_SECONDS = 2.0
    MAX_RETRY_SECONDS = 300.0

    def __init__(self, models: dict[str, ServedModel], log=None, loader=load_and_warm_up) -> None:
        """
        Args:
            models: {model name: what to serve}.
            log: where a failed load is reported (print by default).
            loader: path -> a loaded, warmed-up version: `load_and_warm_up` (in this process) or
                `tfnlp.serving.worker.WorkerVersion.start` (a process per version).
        """
        self._loader = loader
        self._lock = threading.Lock()
        self._served = models
        self._versions: dict[str, dict[int, LoadedVersion]] = {name: {} for name in models}
        self._failures: dict[tuple[str, int], LoadFailure] = {}
        self._log = log or (lambda message: print(message, flush=True))
        self.refresh()
        for name, versions in self._versions.items():
            if not versions:
                reasons = "; ".join(f"version {version}: {failure.reason}" for (model, version), failure
                                    in sorted(self._failures.items()) if model == name)
                raise UserError(f"{models[name].base_path}: no SavedModel version to serve for model {name!r}"
                                + (f" ({reasons})" if reasons else ""))

    def refresh(self) -> None:
        """Load the versions each policy now wants (warmed up) and retire the others."""
        for name, served in self._served.items():
            wanted = served.wanted()
            with self._lock:
                current = dict(self._versions[name])
            loaded = {}
            for version in wanted:
                serving = current.get(version)
                model = serving if serving and serving.alive else self._load(name, served.base_path / str(version))
                if model is not None:
                    loaded[version] = model
            if len(loaded) < len(wanted):
                # A wanted version did not load: keep what is served now rather than serve less; with nothing served
                # yet (a start), the newest older version that loads.
                loaded = {**current, **loaded} if current or loaded else self._newest_loadable(name, served, wanted)
            with self._lock:
                self._versions[name] = loaded
            for version, model in current.items():
                if loaded.get(version) is not model:
                    model.retire()

    def _newest_loadable(self, name: str, served: ServedModel, failed: list[int]) -> dict[int, LoadedVersion]:
        """{version: model} of the newest version on disk, older than those that failed, that loads; {} if none."""
        for version in reversed(existing_versions(served.base_path)):
            if version < min(failed):
                model = self._load(name, served.base_path / str(version))
                if model is not None:
                    return {version: model}
        return {}

    def _load(self, name: str, path: Path) -> LoadedVersion | None:
        """A version loaded and warmed up, or None when it failed (now, or before and its folder is unchanged and
        its backoff not over)."""
        import time

        key, fingerprint = (name, int(path.name)), folder_fingerprint(path)
        failure = self._failures.get(key)
        if failure and failure.fingerprint == fingerprint and time.monotonic() < failure.retry_at:
            return None
        try:
            model = self._loader(path)
        except Exception as error:  # noqa: BLE001 - a bad version must not stop the server
            reason = getattr(error, "reason", None) or f"{type(error).__name__}: {graph_error_message(error)}"
            attempts = failure.attempts + 1 if failure and failure.fingerprint == fingerprint else 1
            delay = min(self.RETRY_SECONDS * 2 ** (attempts - 1), self.MAX_RETRY_SECONDS)
            if not failure or failure.fingerprint != fingerprint or failure.reason != reason:
                self._log(f"model {name} version {path.name}: not loaded ({reason}); the versions already served "
                          f"stay served; retried when {path} changes, or in {delay:.0f} s")
            self._failures[key] = LoadFailure(reason, fingerprint, time.monotonic() + delay, attempts)
            return None
        self._failures.pop(key, None)
        return model

    def failures(self, name: str) -> dict[int, str]:
        """The versions of `name` that did not load, and why."""
        return {version: failure.reason for (model, version), failure in self._failures.items() if model == name}

    def versions(self, name: str) -> list[LoadedVersion]:
        """The loaded versions of `name`, oldest first; ServingError NOT_FOUND for an unknown model."""
        with self._lock:
            loaded = self._versions.get(name)
        if not loaded:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({name})")
        return [loaded[version] for version in sorted(loaded)]

    def labelled_version(self, name: str, label: str) -> int:
        """The version a `version_labels` label names; NOT_FOUND when unknown or not loaded (as TF Serving)."""
        served = self._served.get(name)
        version = dict(served.labels).get(label) if served else None
        if version is None:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Unrecognized servable version label: {label}")
        self.get(name, version)
        return version

    def get(self, name: str, version: int | None = None) -> LoadedVersion:
        """The requested version, or the newest; ServingError NOT_FOUND otherwise."""
        loaded = self.versions(name)
        if version is None:
            return loaded[-1]
        for candidate in loaded:
            if candidate.version == version:
                return candidate
        raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Specific({name}, {version})")


def checked_arguments(model: LoadedVersion, signature_name: str, inputs: dict) -> tuple:
    """The signature to call and its arguments as tensors, after checking the inputs against it.

    Args:
        model: the loaded version.
        signature_name: the signature to call ("" means serving_default).
        inputs: input name -> numpy array (strings as bytes or str objects).

    Returns:
        (the concrete function, {input name: tf.Tensor}).

    Raises:
        ServingError: INVALID_ARGUMENT for an unknown signature, a missing or unexpected input, or a
            wrong dtype or shape.
    """
    signature_name = signature_name or "serving_default"
    if signature_name not in model.signatures:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"Serving signature name: \"{signature_name}\" not found in signature def")
    function = model.signatures[signature_name]
    expected = function.structured_input_signature[1]
    missing, extra = sorted(set(expected) - set(inputs)), sorted(set(inputs) - set(expected))
    if missing or extra:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input mismatch: missing {missing}, unexpected {extra}; expected {sorted(expected)}")
    arguments = {}
    for name, spec in expected.items():
        value = np.asarray(inputs[name])
        is_text = value.dtype.kind in "OSU"
        if is_text != (spec.dtype == tf.string):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"input {name!r}: expects {spec.dtype.name}, got {value.dtype}")
        if not spec.shape.is_compatible_with(value.shape):
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"input {name!r}: expects shape {spec.shape}, got {list(value.shape)}")
        try:
            arguments[name] = tf.constant(value.tolist() if is_text else value, dtype=spec.dtype)
        except (TypeError, ValueError) as error:
            raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                               f"input {name!r}: not {spec.dtype.name} values ({str(error)[:200]})") from None
    return function, arguments


def call_signature(function, arguments: dict) -> dict:
    """Call a signature; all outputs as numpy arrays. A failure inside the graph is INVALID_ARGUMENT."""
    try:
        outputs = function(**arguments)
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, graph_error_message(error)) from None
    # A worker's signature answers numpy arrays already.
    return {name: value if isinstance(value, np.ndarray) else value.numpy() for name, value in outputs.items()}


def graph_error_message(error: Exception) -> str:
    """What went wrong, in one line, from a graph's error: its assertion's own words where it has some, not the
    "Graph execution error" preamble or the trace of where the op was defined."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    asserted = [line for line in lines if line.startswith("assertion failed:")]
    if asserted:
        return asserted[0][:500]
    preamble = ("Graph execution error", "Detected at node", "File ", "[[")
    return next((line for line in lines if not line.startswith(preamble)), lines[0] if lines else repr(error))[:500]


def filtered(outputs: dict, output_filter: Sequence[str]) -> dict:
    """The outputs named in `output_filter` (all when it is empty); INVALID_ARGUMENT for an unknown name."""
    unknown = sorted(set(output_filter) - set(outputs))
    if unknown:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, f"output_filter names unknown outputs {unknown}")
    return {name: outputs[name] for name in (output_filter or outputs)}


def run_signature(model: LoadedVersion, signature_name: str, inputs: dict, output_filter: Sequence[str] = (),
                  deadline: float | None = None) -> dict:
    """Check the inputs, call the signature, and return the (filtered) outputs as numpy arrays, unbatched. (`deadline`
    is for the batcher's queue; a call on its own starts at once.)"""
    function, arguments = checked_arguments(model, signature_name, inputs)
    return filtered(call_signature(function, arguments), output_filter)
