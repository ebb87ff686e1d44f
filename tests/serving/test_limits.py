"""The deadline and the bytes-in-flight bound of tfnlp's server: in process, then over gRPC and REST."""

import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import http, running_server
from tfnlp.serving import client
from tfnlp.serving.batching import Batcher, BatchingParameters
from tfnlp.serving.limits import Limits
from tfnlp.serving.store import ServingError


def test_bytes_over_the_bound_are_refused_429_and_come_back_when_released():
    limits = Limits(max_bytes_in_flight=1000)
    limits.admit(600)
    with pytest.raises(ServingError) as refused:
        limits.admit(500)
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and refused.value.http_status == 429
    limits.release(600)
    limits.admit(500)
    with pytest.raises(ServingError) as too_large:
        limits.admit(1001)
    assert too_large.value.http_status == 413 and "send fewer rows" in str(too_large.value)
    assert limits.in_flight == 500 and limits.peak_in_flight == 600


def test_a_late_call_is_answered_at_its_deadline_and_its_bytes_stay_counted_until_it_ends():
    limits = Limits(timeout_seconds=0.2, max_bytes_in_flight=1000)
    finished = threading.Event()

    def slow(deadline):
        time.sleep(1.0)
        finished.set()
        return {"ok": 1}

    started = time.monotonic()
    with pytest.raises(ServingError) as late:
        limits.call(700, limits.deadline(), slow)
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and late.value.http_status == 504
    assert time.monotonic() - started < 0.8
    assert limits.in_flight == 700  # still running: a second large request is refused, not piled up
    with pytest.raises(ServingError):
        limits.admit(700)
    assert finished.wait(5)
    time.sleep(0.1)
    assert limits.in_flight == 0


def test_the_client_deadline_counts_when_it_is_sooner_and_a_call_that_waited_past_it_never_runs():
    limits = Limits(timeout_seconds=30, workers=1)
    assert limits.deadline(0.5) - time.monotonic() < 1
    ran = []
    blocker = threading.Thread(target=limits.call, args=(1, limits.deadline(), lambda deadline: time.sleep(0.6)))
    blocker.start()
    time.sleep(0.05)
    with pytest.raises(ServingError):
        limits.call(1, limits.deadline(0.1), lambda deadline: ran.append(1))
    blocker.join()
    time.sleep(0.1)
    assert ran == []


def test_a_batched_request_whose_deadline_passed_while_queued_is_not_run():
    calls = []

    class Echo:  # a signature: what checked_arguments and call_signature use of one
        structured_input_signature = ((), {"text": tf.TensorSpec([None], tf.string)})

        def __call__(self, text):
            calls.append(int(text.shape[0]))
            return {"out": text}

    class Model:  # a LoadedVersion's signatures
        signatures = {"serving_default": Echo()}

    batcher = Batcher(BatchingParameters(max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=1))
    with pytest.raises(ServingError) as late:
        batcher.run(Model(), "", {"text": np.array([b"a", b"b"], dtype=object)}, (), time.monotonic() + 0.05)
    assert late.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and calls == []
    assert batcher.run(Model(), "", {"text": np.array([b"c"], dtype=object)})["out"].tolist() == [b"c"]
    assert calls == [1]


@pytest.fixture(scope="module")
def limited_server(tiny_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("limited") / "icd10_seq2seq"
    shutil.copytree(tiny_run["version"], base / "1")
    with running_server(base, "--request_timeout_in_ms=100", "--max_bytes_in_flight=100000") as addresses:
        yield addresses


def test_the_server_answers_a_slow_request_deadline_exceeded_over_grpc_and_504_over_rest(limited_server):
    target, rest = limited_server
    texts = [f"insuffisance cardiaque {index}" for index in range(3000)]
    assert len(texts) * 30 < 100_000  # under the bytes bound: it is the deadline that answers
    with pytest.raises(grpc.RpcError) as late:
        client.predict(texts, "icd10_seq2seq", target=target, timeout=30)
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The gRPC call runs on in the background, its bytes counted: a second large request is refused until it ends.
    deadline = time.monotonic() + 120
    status, body = http(f"{rest}/icd10_seq2seq:predict", {"instances": texts})
    while status == 429 and time.monotonic() < deadline:
        assert "in flight" in body["error"]
        time.sleep(0.5)
        status, body = http(f"{rest}/icd10_seq2seq:predict", {"instances": texts})
    assert status == 504 and "deadline" in body["error"]
    assert client.predict(["asthme"], "icd10_seq2seq", target=target, timeout=30)  # the server goes on serving


def test_the_server_refuses_a_request_over_its_bytes_bound_over_grpc_and_rest(limited_server):
    target, rest = limited_server
    texts = ["x" * 1000] * 150
    with pytest.raises(grpc.RpcError) as refused:
        client.predict(texts, "icd10_seq2seq", target=target, timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_bytes_in_flight" in refused.value.details()
    status, body = http(f"{rest}/icd10_seq2seq:predict", {"instances": texts})
    assert status == 413 and "max_bytes_in_flight" in body["error"]


@pytest.mark.parametrize("operator_setting, expected", [(None, "0"), ("1", "1")])
def test_the_server_runs_without_onednn_unless_the_operator_asks(operator_setting, expected):
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if operator_setting:
        env["TF_ENABLE_ONEDNN_OPTS"] = operator_setting
    probe = ("import os, tfnlp.serving.server as s, tensorflow as tf; "
             "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], tf.__version__)")
    shown = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split()[0] == expected
