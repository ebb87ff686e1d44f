"""Versioned, atomic SavedModel export in the layout TF Serving reads: <base>/<name>/<version>/."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import tensorflow as tf

from tfnlp.parsing import ascii_number

WARMUP_FILE = "tf_serving_warmup_requests"
STAGING_PREFIX = ".tmp-"
# A staging folder older than this is left over from a killed export: no export of a tfnlp model takes this long.
STALE_STAGING_SECONDS = 6 * 3600
VERSION_MODE = 0o755  # readable by a model server running as another user


def write_warmup_requests(path: Path, model_name: str, texts: list[str], signature: str = "serving_default") -> Path:
    """TF Serving's warmup file: a TFRecord of PredictionLogs, one Predict request per text.

    TF Serving replays them when it loads the version, so the first real request does not pay
    for graph tracing and memory allocation.
    """
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(str(path)) as writer:
        for text in texts:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            request.inputs["text"].CopyFrom(tf.make_tensor_proto([text], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def existing_versions(model_dir: Path) -> list[int]:
    """Integer version folders under `model_dir`, sorted: names of ASCII digits only, as TF Serving reads them
    (temporary siblings, `²` or `٧` are ignored)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(path.name) for path in model_dir.iterdir() if path.is_dir() and ascii_number(path.name))


def latest_version(model_dir: Path) -> Path | None:
    """The highest integer version folder under `model_dir`, or None when there is none."""
    versions = existing_versions(model_dir)
    return Path(model_dir) / str(versions[-1]) if versions else None


def remove_stale_staging(model_dir: Path, older_than: float = STALE_STAGING_SECONDS) -> list[Path]:
    """Delete the staging folders a killed export left in `model_dir` (older than `older_than` seconds); return
    them. Younger ones may belong to an export still running, and are kept."""
    now = time.time()
    stale = [path for path in model_dir.iterdir()
             if path.is_dir() and path.name.startswith(STAGING_PREFIX) and now - path.stat().st_mtime > older_than]
    for path in stale:
        print(f"removing {path}: left by an export that did not finish", file=sys.stderr)
        shutil.rmtree(path, ignore_errors=True)
    return stale


def export_savedmodel(module: tf.Module, export_base: Path, name: str, signatures: dict,
                      extra_files: dict[str, str], warmup_texts: list[str] = ()) -> Path:
    """Write `module` as version N+1 of `name`, whole or not at all.

    The SavedModel is written into a temporary sibling and renamed into place, so TF Serving,
    which polls the base path, never sees a half-written version.

    Args:
        module: the tf.Module to save.
        export_base: the folder holding one sub-folder per model name.
        name: model name (the experiment name).
        signatures: signature name -> tf.function.
        extra_files: file name -> text written into `assets.extra/` (the model card: `tfnlp.model_card`).
        warmup_texts: texts for `assets.extra/tf_serving_warmup_requests` (none: no file).

    Returns:
        The version folder.
    """
    def write(staging: Path) -> None:
        tf.saved_model.save(module, str(staging), signatures=signatures)
        extra = staging / "assets.extra"
        extra.mkdir(exist_ok=True)
        for file_name, text in extra_files.items():
            (extra / file_name).write_text(text, encoding="utf-8")
        if warmup_texts:
            write_warmup_requests(extra / WARMUP_FILE, name, list(warmup_texts))

    return _next_version(Path(export_base) / name, write)


def publish_version(version: Path, export_base: Path, name: str, extra_files: dict[str, str]) -> Path:
    """Copy an exported version folder in as version N+1 of `name`, whole or not at all, adding `extra_files`
    (name -> text) to its `assets.extra/` (a pipeline's model card)."""
    def write(staging: Path) -> None:
        shutil.copytree(version, staging, dirs_exist_ok=True)
        for file_name, text in extra_files.items():
            (staging / "assets.extra" / file_name).write_text(text, encoding="utf-8")

    return _next_version(Path(export_base) / name, write)


def _next_version(model_dir: Path, write) -> Path:
    """Let `write` fill a private staging folder in `model_dir`, then rename it to the next free version number."""
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(model_dir)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=model_dir))
    try:
        os.chmod(staging, VERSION_MODE)  # mkdtemp makes it private (0700)
        write(staging)
        while True:
            versions = existing_versions(model_dir)
            target = model_dir / str((versions[-1] if versions else 0) + 1)
            try:
                os.rename(staging, target)  # fails if another export took this number meanwhile
                return target
            except OSError:
                if not target.exists():
                    raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
