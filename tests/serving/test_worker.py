"""A version served from its own process (tfnlp.serving.worker) on the tiny run's real SavedModel: the same answers as
in this process, its errors carried back, a failed load reported, retirement and a dead worker handled."""

import os
import shutil
import signal
import time

import grpc
import numpy as np
import pytest

from tfnlp.serving.store import ModelStore, ServedModel, ServingError, load_version, run_signature
from tfnlp.serving.worker import WorkerFailed, WorkerVersion

TEXTS = np.array(["Choléra à Vibrio cholerae", "Asthme", "", "tuberculose pulmonaire"], dtype=object)


@pytest.fixture(scope="module")
def worker(tiny_run):
    version = WorkerVersion.start(tiny_run["version"])
    yield version
    version.close()


def worker_folders() -> set[str]:
    return {name for name in os.listdir("/tmp") if name.startswith("tfnlp-worker-")}


def test_answers_as_the_version_loaded_here(worker, tiny_run):
    here = load_version(tiny_run["version"])
    assert worker.version == here.version
    assert sorted(worker.signatures) == sorted(here.signatures) == sorted(worker.signature_defs)
    assert worker.signature_defs == here.signature_defs
    for name, remote_signature in worker.signatures.items():  # the inputs the server checks a request against
        assert remote_signature.structured_input_signature[1] == here.signatures[name].structured_input_signature[1]
    remote = run_signature(worker, "", {"text": TEXTS})
    local = run_signature(here, "", {"text": TEXTS})
    assert sorted(remote) == sorted(local)
    for name, value in local.items():
        if value.dtype == object:
            assert remote[name].tolist() == value.tolist(), name
        else:
            np.testing.assert_allclose(remote[name], value, atol=1e-5, err_msg=name)


def test_errors_come_back_with_their_status(worker):
    with pytest.raises(ServingError) as refused:  # checked in the exported graph, inside the worker
        run_signature(worker, "", {"text": np.array(["a\0b"], dtype=object)})
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and "NUL" in str(refused.value)
    with pytest.raises(ServingError) as unknown:  # checked here before anything is sent
        run_signature(worker, "nope", {"text": TEXTS})
    assert unknown.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert run_signature(worker, "greedy", {"text": TEXTS[:1]})["code"].shape == (1,)  # still serving


def test_a_version_that_does_not_load_is_a_failure_with_its_reason(tmp_path):
    broken = tmp_path / "3"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    before = worker_folders()
    with pytest.raises(WorkerFailed) as failed:
        WorkerVersion.start(broken)
    assert failed.value.reason and "exit" not in failed.value.reason, failed.value.reason  # the loader's own words
    assert worker_folders() == before  # its socket folder removed


def test_the_store_replaces_a_worker_that_died_and_a_retired_one_ends_after_its_grace(tiny_run, tmp_path):
    base = tmp_path / "icd10_seq2seq"
    shutil.copytree(tiny_run["version"], base / "1")
    store = ModelStore({"icd10_seq2seq": ServedModel(base)}, log=print, loader=WorkerVersion.start)
    first = store.get("icd10_seq2seq")
    os.kill(first._process.pid, signal.SIGKILL)
    first._process.join()
    with pytest.raises(ServingError) as gone:
        run_signature(first, "", {"text": TEXTS[:1]})
    assert gone.value.code == grpc.StatusCode.UNAVAILABLE
    store.refresh()
    second = store.get("icd10_seq2seq")
    assert second is not first and second.alive
    assert run_signature(second, "", {"text": TEXTS[:1]})["code"].shape == (1,)

    second.retire()
    assert run_signature(second, "", {"text": TEXTS[:1]})["code"].shape == (1,)  # within the grace: answered
    deadline = time.monotonic() + 30
    while second.alive and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not second.alive
    with pytest.raises(ServingError) as late:
        run_signature(second, "", {"text": TEXTS[:1]})
    assert late.value.code == grpc.StatusCode.UNAVAILABLE
    # The retiring thread marks the worker closed, then stops its process and removes the folder: wait for that.
    while second._folder.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (second._folder).exists()


SERVER_THAT_IS_KILLED = """
import sys, time
from pathlib import Path
from tfnlp.serving.worker import WorkerVersion
version = WorkerVersion.start(Path(sys.argv[1]))
print(version._process.pid, version._folder, flush=True)
time.sleep(600)
"""


def parent_of(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def test_a_killed_server_leaves_no_worker_fork_server_or_socket_folder(tiny_run):
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-c", SERVER_THAT_IS_KILLED, str(tiny_run["version"])],
                              stdout=subprocess.PIPE, text=True)
    worker_pid, folder = server.stdout.readline().split()
    fork_server = parent_of(int(worker_pid))
    assert fork_server != server.pid and os.path.exists(folder)
    server.kill()  # no clean-up of its own: SIGKILL
    server.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in (worker_pid, fork_server)):
        time.sleep(0.2)
    assert not os.path.exists(f"/proc/{worker_pid}") and not os.path.exists(f"/proc/{fork_server}")
    assert not os.path.exists(folder)
