"""Serving: a TF Serving-compatible server for hosts without the binary, and its client."""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # largest request or response, gRPC and REST alike
GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]


def python_values(value: Any) -> Any:
    """A numpy array or nested list of tensor values as JSON-ready Python values (bytes decoded as UTF-8)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [python_values(item) for item in value]
    return value.decode("utf-8") if isinstance(value, bytes) else value
