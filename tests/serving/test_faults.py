"""Bad requests, hostile requests and port mistakes against tfnlp's server: each answered as TF Serving documents (or
refused with exit 2), and the server keeps serving. Load cases are bounded to a few seconds and a few dozen clients."""

import base64
import functools
import json
import re
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.helpers import http, running_server, upper_module
from tfnlp import export
from tfnlp.serving import client
from tfnlp.serving import server as server_module


def raw_request(target: str, dims: list[int], values: list[bytes], signature: str = "serving_default"):
    """A Predict call whose `text` tensor declares `dims` and holds `values`, as a careless or hostile client sends."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "icd10_seq2seq"
    request.model_spec.signature_name = signature
    request.inputs["text"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, string_val=values,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size)
                                                            for size in dims])))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    return stub.Predict(request, timeout=30)


@pytest.mark.parametrize("dims, count, code, message", [
    ([20_000_000], 1, grpc.StatusCode.RESOURCE_EXHAUSTED, "20000000 rows in one request; at most 10000"),
    ([1, 2 ** 40], 1, grpc.StatusCode.INVALID_ARGUMENT, "declares 1099511627776 values but the request holds 1"),
    ([2], 3, grpc.StatusCode.INVALID_ARGUMENT, "declares 2 values but the request holds 3"),
    ([20_000], 20_000, grpc.StatusCode.RESOURCE_EXHAUSTED, "20000 rows in one request"),
])
def test_declared_shapes_are_checked_against_the_values_before_anything_is_allocated(server, dims, count, code,
                                                                                      message):
    for signature in ("serving_default", "no_such_signature"):
        with pytest.raises(grpc.RpcError) as error:
            raw_request(server["target"], dims, [b"Asthme"] * count, signature)
        assert error.value.code() == code and message in error.value.details()
        assert "Traceback" not in error.value.details()
    assert client.predict(["Asthme"], "icd10_seq2seq", server["target"])["code"][0]


@pytest.mark.parametrize("body, message", [
    ({"instances": [None]}, "null is not a value"),
    ({"inputs": {"text": [["a"], ["b", "c"]]}}, "ragged lists"),
    ({"instances": [{"text": "a"}, {"txt": "b"}]}, "instance 1 has no ['text']"),
    ({"instances": ["a", 1]}, "mixes number and text values"),
    ({"inputs": {"text": {"b64": "not base64!"}}}, "is not base64"),
    ({"inputs": {"text": {"bytes": "x"}}}, 'an object value must be {"b64"'),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ({"inputs": {"text": json.loads("[" * 40 + '"a"' + "]" * 40)}}, "nested deeper than 32"),
    ({"signature_name": 3, "instances": ["a"]}, '"signature_name" must be a string'),
    ({"signature_name": ["serving_default"], "instances": ["a"]}, '"signature_name" must be a string'),
])
def test_malformed_rest_bodies_are_400_with_a_readable_message(server, body, message):
    status, payload = http(server["rest"] + "/icd10_seq2seq:predict", body)
    assert status == 400 and message in payload["error"] and "Traceback" not in payload["error"]


def test_empty_batches_b64_values_and_chunked_bodies(server):
    rest = server["rest"] + "/icd10_seq2seq:predict"
    assert http(rest, {"instances": []}) == (200, {"predictions": []})
    status, columns = http(rest, {"inputs": {"text": []}})
    assert status == 200 and columns["outputs"]["code"] == []
    encoded = [{"b64": base64.b64encode(b"Asthme").decode()}]
    assert http(rest, {"instances": encoded}) == http(rest, {"instances": ["Asthme"]})
    assert http(rest, {"inputs": {"text": encoded}})[1]["outputs"] == http(rest, {"inputs": {"text": ["Asthme"]}})[1][
        "outputs"]
    chunks = json.dumps({"instances": ["Asthme"]}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (chunks[:5], chunks[5:])) + b"0\r\n\r\n"
    host, port = server["rest"].split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(b"POST /v1/models/icd10_seq2seq:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                           b"\r\nConnection: close\r\n\r\n" + chunked)
        answer = b"".join(iter(lambda: connection.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 200") and b'"predictions"' in answer


def raw_http(rest: str, request: bytes, timeout: float = 30) -> bytes:
    host, port = rest.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(request)
        return b"".join(iter(lambda: connection.recv(65536), b""))


@pytest.mark.parametrize("request_bytes, status", [
    (b"POST /v1/models/icd10_seq2seq:predict HTTP/1.1\r\nContent-Length: abc\r\n\r\n{}", b"400"),
    (b"POST /v1/models/icd10_seq2seq:predict HTTP/1.1\r\nContent-Length: -1\r\n\r\n{}", b"400"),
    (b"PUT /v1/models/icd10_seq2seq HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"501"),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", b"414"),
    (b"POST /v1/models/icd10_seq2seq:predict?x=1 HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
     b"400"),
    (b"POST /v1/models/icd10_seq2seq:predict HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", b"400"),
])
def test_protocol_errors_answer_json_without_the_python_version(server, request_bytes, status):
    answer = raw_http(server["rest"], request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == status and json.loads(body)["error"]
    assert re.search(rb"(?im)^server: tfnlp-serving\r?$", head) and b"Python" not in head


def test_a_stalled_client_does_not_hold_the_server(tiny_run, tmp_path):
    base = tmp_path / "icd10_seq2seq"
    base.mkdir()
    (base / "1").symlink_to(tiny_run["version"])
    with running_server(base, "--rest_api_timeout_in_ms=500", "--rest_api_num_threads=4") as (target, rest):
        host, port = rest.split("//")[1].split("/")[0].split(":")
        stalled = [socket.create_connection((host, int(port)), timeout=10) for _ in range(12)]
        for connection in stalled:  # each declares a body it never sends
            connection.sendall(b"POST /v1/models/icd10_seq2seq:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        # Three times more stalled connections than threads, and a real request is still answered: an incomplete
        # request holds no thread.
        assert http(rest + "/icd10_seq2seq:predict", {"instances": ["Asthme"]})[0] == 200
        time.sleep(1.5)  # past the idle timeout
        answers = [connection.recv(65536) for connection in stalled]
        for connection in stalled:
            connection.close()
        assert answers == [b""] * 12  # dropped at the timeout, with no answer to a body never completed
        # A client trickling its headers a byte at a time trips no per-read timeout, but the request's own deadline.
        trickle = socket.create_connection((host, int(port)), timeout=10)
        trickle.sendall(b"POST /v1/models/icd10_seq2seq:predict HTTP/1.1\r\n")
        started, closed_after = time.monotonic(), None
        for byte in b"X-Slow: " + b"a" * 40:
            try:
                trickle.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(0.2)  # well under the 0.5 s idle timeout
        else:
            trickle.settimeout(1.0)
            closed_after = time.monotonic() - started if trickle.recv(1) == b"" else None
        trickle.close()
        assert closed_after is not None and closed_after < 3.0


def test_concurrent_rest_clients_are_all_answered_200_or_503(server):
    url = server["rest"] + "/icd10_seq2seq:predict"
    deadline = time.monotonic() + 2.0

    def client_loop():
        statuses = []
        while time.monotonic() < deadline:
            statuses.append(http(url, {"instances": ["Asthme"]})[0])
        return statuses

    with futures.ThreadPoolExecutor(48) as pool:
        statuses = [status for result in pool.map(lambda _: client_loop(), range(48)) for status in result]
    assert statuses and set(statuses) <= {200, 503} and statuses.count(200) > 0


def start_server(*flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tfnlp.serving.server", *flags], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_ports_bind_exclusively_and_the_port_bound_is_printed(server, tmp_path):
    base = server["version"].parent
    taken = server["target"].split(":")[1]
    result = subprocess.run([sys.executable, "-m", "tfnlp.serving.server", f"--port={taken}", "--model_name=m",
                             f"--model_base_path={base}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and f"cannot bind gRPC port 127.0.0.1:{taken}" in result.stderr
    assert "Traceback" not in result.stderr
    process = start_server("--port=0", "--rest_api_port=0", "--model_name=icd10_seq2seq", f"--model_base_path={base}")
    try:
        line = ""
        while "serving gRPC on" not in line:
            line = process.stdout.readline()
            assert line, "the server exited"
        port = int(line.strip().rsplit(":", 1)[1])
        assert port > 0 and client.status("icd10_seq2seq", f"127.0.0.1:{port}")[0]["state"] == "AVAILABLE"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("flag", ["--port=99999", "--port=-1", "--rest_api_port=70000", "--port=abc"])
def test_out_of_range_ports_exit_2(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        server_module.main([flag, "--model_name=m", "--model_base_path=nowhere"])
    assert exit_info.value.code == 2 and "is not a port number" in capsys.readouterr().err


def test_the_rest_client_reports_a_silent_server_and_a_grpc_port(server, capsys):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    silent = f"127.0.0.1:{listener.getsockname()[1]}"
    for target, message in ((silent, "no answer within 0.5 s"), (server["target"], "not a TF Serving REST answer")):
        with pytest.raises(SystemExit) as exit_info:
            client.main(["--model", "icd10_seq2seq", "--rest", "--target", target, "--timeout", "0.5", "Asthme"])
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in error and "Traceback" not in error
    listener.close()


def test_a_single_output_is_answered_without_its_name(tmp_path):
    """TF Serving's REST docs: a signature with one output answers its values without the output's name."""
    module = upper_module()
    export.export_savedmodel(module, tmp_path, "icd10_seq2seq", {"serving_default": module.serve}, {})
    with running_server(tmp_path / "icd10_seq2seq") as (_, rest):
        url = rest + "/icd10_seq2seq:predict"
        assert http(url, {"instances": ["ab", {"b64": base64.b64encode(b"cd").decode()}]}) == (
            200, {"predictions": ["AB", "CD"]})
        assert http(url, {"inputs": ["ab"]}) == (200, {"outputs": ["AB"]})


@functools.cache
def in_process_signature(version: str):
    """The export's `serving_default` loaded here, once for the tests that call it without a server."""
    import tensorflow as tf

    return tf.saved_model.load(version).signatures["serving_default"]


@pytest.mark.parametrize("texts, row", [(["Asthme", "abc\x00 def"], 1),
                                        ([b"ok", b"ok", "\xe9t\xe9".encode("latin-1")], 2)])
def test_a_text_with_a_nul_or_invalid_utf8_is_refused_naming_its_row(server, texts, row):
    import tensorflow as tf

    with pytest.raises(grpc.RpcError) as error:
        raw_request(server["target"], [len(texts)], [t if isinstance(t, bytes) else t.encode() for t in texts])
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"text row {row} is not valid UTF-8 or holds a NUL character" in error.value.details()
    if all(isinstance(text, str) for text in texts):
        status, payload = http(server["rest"] + "/icd10_seq2seq:predict", {"instances": texts})
        assert status == 400 and f"text row {row}" in payload["error"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"text row {row} is not valid UTF-8"):
        in_process_signature(str(server["version"]))(text=tf.constant(texts))
    assert client.predict(["Asthme"], "icd10_seq2seq", server["target"])["code"][0]


def test_a_corrupt_new_version_is_reported_once_and_the_old_one_keeps_serving(tiny_run, tmp_path):
    import shutil

    from tfnlp.serving.store import ModelStore, ServedModel, replay_warmup

    base = tmp_path / "icd10_seq2seq"
    shutil.copytree(tiny_run["version"], base / "1")
    logged = []
    store = ModelStore({"icd10_seq2seq": ServedModel(base)}, log=logged.append)
    assert replay_warmup(store.get("icd10_seq2seq"), base / "1") == 5  # what refresh replays before serving
    shutil.copytree(tiny_run["version"], base / "2")
    (base / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    for _ in range(5):  # the server polls every second: the same broken folder is neither retried nor re-logged
        store.refresh()
    assert len(logged) == 1 and "model icd10_seq2seq version 2: not loaded" in logged[0]
    assert store.get("icd10_seq2seq").version == 1 and list(store.failures("icd10_seq2seq")) == [2]
    shutil.rmtree(base / "2")
    shutil.copytree(tiny_run["version"], base / "2")  # repaired: the folder changed, so it is tried again at once
    store.refresh()
    assert store.get("icd10_seq2seq").version == 2 and store.failures("icd10_seq2seq") == {}


def test_get_model_status_reports_a_version_that_failed_to_load(tiny_run, tmp_path):
    import shutil

    base = tmp_path / "icd10_seq2seq"
    shutil.copytree(tiny_run["version"], base / "1")
    shutil.copytree(tiny_run["version"], base / "2")
    (base / "2" / "saved_model.pb").write_bytes(b"broken")
    with running_server(base) as (target, rest):  # latest policy: 2 is wanted, fails, 1 stays served
        states = client.status("icd10_seq2seq", target)
        assert states == [{"version": 1, "state": "AVAILABLE"}, {"version": 2, "state": "END"}]
        status, body = http(rest + "/icd10_seq2seq")
        assert status == 200 and body["model_version_status"][1]["status"]["error_message"]
