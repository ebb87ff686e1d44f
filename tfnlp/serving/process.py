"""Processes of tfnlp's server: start it in a subprocess on free loopback ports (tests, benchmarks, pipelines), and
the scheduling helpers its children use."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PARENT_PID = "TFNLP_PARENT_PID"  # set by `server_process` in its child's environment: the pid to die with


def follow_parent() -> None:
    """In a server that `server_process` started: ask Linux to send it SIGTERM when its parent dies
    (PR_SET_PDEATHSIG), so that a killed pipeline or test leaves no server behind, and exit at once if the parent is
    already gone. Elsewhere, nothing.

    The child asks for itself rather than in a `preexec_fn`: a `preexec_fn` makes Python fork (not vfork), so gRPC's
    fork handlers run in the child; they restart its poller thread, whose epoll descriptor `close_fds` then closes
    before exec, and the child dies with only "epoll_wait error: Bad file descriptor" as output (grpc/grpc issue
    43055, open for grpcio 1.81 and later; here 1 of 12 starts while another process trained, 2026-12-04).
    """
    parent = os.environ.pop(PARENT_PID, None)
    if parent is None or not sys.platform.startswith("linux"):
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != int(parent):  # it died before the request: no signal will come
        os.kill(os.getpid(), signal.SIGTERM)


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (another user's included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def lower_this_threads_priority(niceness: int = 10) -> None:
    """Make the calling thread yield the CPU to the request threads (Linux schedules threads one by one): loading a new
    version then slows the requests served meanwhile less. Nothing where it is not allowed."""
    if hasattr(os, "setpriority") and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


@contextlib.contextmanager
def running_server(model_name: str, base_path: str | Path, *flags: str,
                   start_timeout: float = 120.0) -> Iterator[tuple[str, str]]:
    """Serve `base_path` as `model_name` until the block ends; yields (gRPC target, REST URL prefix).

    Args:
        model_name: the served model's name.
        base_path: folder of numbered versions.
        *flags: further server flags (`--enable_batching`, ...).
        start_timeout: seconds to wait for the model to answer GetModelStatus.

    Raises:
        RuntimeError: the server exited or did not answer in time (with the end of its output).
    """
    with server_process(model_name, base_path, *flags, start_timeout=start_timeout) as (_, target, rest):
        yield target, rest


@contextlib.contextmanager
def server_process(model_name: str, base_path: str | Path, *flags: str,
                   start_timeout: float = 120.0) -> Iterator[tuple[subprocess.Popen, str, str]]:
    """`running_server` that also yields the server's process (for benchmarks that read its memory)."""
    from tfnlp.serving import client

    port, rest_port = free_port(), free_port()
    process = subprocess.Popen([sys.executable, "-m", "tfnlp.serving.server", f"--port={port}",
                                f"--rest_api_port={rest_port}", f"--model_name={model_name}",
                                f"--model_base_path={base_path}", *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, PARENT_PID: str(os.getpid())})
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + start_timeout
    while True:
        try:
            client.status(model_name, target, timeout=2)
            break
        except grpc.RpcError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"server did not start: {process.stdout.read()[-3000:]}") from None
            time.sleep(0.5)
    try:
        yield process, target, f"http://127.0.0.1:{rest_port}/v1/models"
    finally:
        process.terminate()
        process.wait(timeout=30)
