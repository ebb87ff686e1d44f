"""A server started by `server_process` dies with its parent (`follow_parent`), without a `preexec_fn`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfnlp.serving.process import PARENT_PID

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")

FOLLOWER = ("from tfnlp.serving.process import follow_parent; follow_parent(); import time; "
            "print('ready', flush=True); time.sleep(120)")


def running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (an orphan's new parent may reap it late)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_follower_ends_when_its_parent_is_killed():
    parent_script = (
        "import os, subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {FOLLOWER!r}], stdout=subprocess.PIPE, text=True,\n"
        f"                         env={{**os.environ, {PARENT_PID!r}: str(os.getpid())}})\n"
        "print(child.pid, child.stdout.readline().strip(), flush=True)\n"
        "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_script], stdout=subprocess.PIPE, text=True)
    try:
        pid, ready = parent.stdout.readline().split()
        assert ready == "ready" and running(int(pid))
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while running(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(int(pid)), "the follower outlived its killed parent"


def test_a_follower_whose_parent_is_already_gone_ends_at_once():
    # The pid it is told to follow is not its parent's: as if the parent had died before `follow_parent` ran.
    follower = subprocess.run([sys.executable, "-c", FOLLOWER], capture_output=True, text=True, timeout=60,
                              env={**os.environ, PARENT_PID: "1" if os.getpid() != 1 else "2"})
    assert follower.returncode == -signal.SIGTERM and "ready" not in follower.stdout


def test_a_process_not_started_by_server_process_is_left_alone():
    follower = subprocess.run([sys.executable, "-c", FOLLOWER.replace("time.sleep(120)", "pass")],
                              capture_output=True, text=True, timeout=60,
                              env={key: value for key, value in os.environ.items() if key != PARENT_PID})
    assert follower.returncode == 0 and follower.stdout.strip() == "ready"
