"""The TF Serving-compatible server in a subprocess on 127.0.0.1, called with the official stubs and the client."""

import json
import shutil
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.helpers import assert_picture, http, running_server
from tfnlp.serving import client
from tfnlp.serving.process import free_port

TEXTS = ["Choléra à Vibrio cholerae", "", "Asthme"]
FLOAT_RTOL = 1e-6  # float32 kernels with and without oneDNN round differently (measured: at most 1.2e-7 relative)


def in_process(version, texts):
    outputs = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(texts))
    return {name: value.numpy() for name, value in outputs.items()}


def test_official_stub_and_client_match_the_savedmodel_in_process(server):
    expected = in_process(server["version"], TEXTS)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "icd10_seq2seq"
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(TEXTS, dtype=tf.string))
    with grpc.insecure_channel(server["target"]) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
    assert response.model_spec.version.value == 1
    for name in ("code", "input_tokens", "output_tokens"):
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs[name]), expected[name])
    for name in ("score", "attention"):  # the server runs without oneDNN (`server.py`): the last bit may differ
        np.testing.assert_allclose(tf.make_ndarray(response.outputs[name]), expected[name], rtol=FLOAT_RTOL)
    outputs = client.predict(TEXTS, "icd10_seq2seq", server["target"])
    assert outputs["code"] == [code.decode() for code in expected["code"]]
    assert outputs["input_tokens"][0][:2] == ["choléra", "à"]
    np.testing.assert_allclose(outputs["attention"], expected["attention"], rtol=FLOAT_RTOL)


def test_metadata_and_status(server):
    signatures = client.metadata("icd10_seq2seq", server["target"])
    assert signatures["serving_default"]["inputs"] == {"text": "DT_STRING"}
    assert signatures["serving_default"]["outputs"] == {
        "code": "DT_STRING", "score": "DT_FLOAT", "attention": "DT_FLOAT",
        "input_tokens": "DT_STRING", "output_tokens": "DT_STRING", "top_codes": "DT_STRING",
        "display_code": "DT_STRING", "top_labels": "DT_STRING", "top_confidences": "DT_FLOAT", "label": "DT_STRING",
        "confidence": "DT_FLOAT", "category_confidence": "DT_FLOAT", "needs_review": "DT_BOOL"}
    assert client.status("icd10_seq2seq", server["target"]) == [{"version": 1, "state": "AVAILABLE"}]


def raw_predict(target, inputs, model="icd10_seq2seq", version=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    for name, proto in inputs.items():
        request.inputs[name].CopyFrom(proto)
    with grpc.insecure_channel(target) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)


@pytest.mark.parametrize("inputs, model, version, code", [
    ({"text": tf.make_tensor_proto(["x"])}, "nope", None, grpc.StatusCode.NOT_FOUND),
    ({"text": tf.make_tensor_proto(["x"])}, "icd10_seq2seq", 7, grpc.StatusCode.NOT_FOUND),
    ({"words": tf.make_tensor_proto(["x"])}, "icd10_seq2seq", None, grpc.StatusCode.INVALID_ARGUMENT),
    ({"text": tf.make_tensor_proto([1.0])}, "icd10_seq2seq", None, grpc.StatusCode.INVALID_ARGUMENT),
    ({"text": tf.make_tensor_proto([["x"]])}, "icd10_seq2seq", None, grpc.StatusCode.INVALID_ARGUMENT),
])
def test_bad_requests_get_the_right_status_and_the_server_keeps_serving(server, inputs, model, version, code):
    with pytest.raises(grpc.RpcError) as error:
        raw_predict(server["target"], inputs, model, version)
    assert error.value.code() == code and error.value.details()
    assert client.predict(["Asthme"], "icd10_seq2seq", server["target"])["code"][0]


def test_client_cli_prints_readable_answers_json_or_raw_outputs_and_reports_errors(server, capsys):
    code = client.predict(["Asthme"], "icd10_seq2seq", server["target"])["display_code"][0][0]
    assert client.main(["--model", "icd10_seq2seq", "--target", server["target"], "Asthme"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Asthme\n") and "confidence" in printed and code in printed and "[[" not in printed
    assert client.main(["--model", "icd10_seq2seq", "--target", server["target"], "Asthme", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["kind"] == "code" and answer["ranked"][0]["display_code"] == code
    assert client.main(["--model", "icd10_seq2seq", "--target", server["target"], "Asthme", "--raw"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert "top_codes" in raw and "attention" not in raw
    assert client.main(["--model", "icd10_seq2seq", "--target", server["target"], "Asthme", "--raw",
                        "--attention"]) == 0
    assert "attention" in json.loads(capsys.readouterr().out)
    with pytest.raises(SystemExit) as exit_info:
        client.main(["--model", "nope", "--target", server["target"], "x"])
    assert exit_info.value.code == 2 and "NOT_FOUND" in capsys.readouterr().err


def test_server_flags_errors_exit_2(tmp_path, capsys):
    from tfnlp.serving import server as server_module

    bad_config = tmp_path / "models.config"
    bad_config.write_text("model_config_list { config { nme: 'x' } }")
    for argv, message in ((["--port=0"], "give --model_name and --model_base_path"),
                          (["--model_name=m", f"--model_base_path={tmp_path}"], "no SavedModel version to serve"),
                          ([f"--model_config_file={bad_config}"], "not a readable model config"),
                          (["--batching_parameters_file=serving/batching.config"], "only with --enable_batching"),
                          (["--enable_batching", f"--batching_parameters_file={bad_config}"], "cannot use")):
        with pytest.raises(SystemExit) as exit_info:
            server_module.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_attention_over_the_server_matches_the_local_model(server, tmp_path, capsys):
    from tfnlp import attention

    remote = attention.alignments_from_outputs(TEXTS, attention.predict_remote(server["target"], "icd10_seq2seq",
                                                                             TEXTS))
    local = attention.alignments_from_outputs(TEXTS, attention.predict_local(server["version"], TEXTS))
    for one, other in zip(remote, local, strict=True):
        assert (one.code, one.input_tokens, one.output_tokens) == (other.code, other.input_tokens, other.output_tokens)
        np.testing.assert_allclose(one.attention, other.attention, rtol=FLOAT_RTOL)
    png = tmp_path / "served.png"
    assert attention.main(["--server", server["target"], "--model", "icd10_seq2seq", "Asthme", "-o", str(png)]) == 0
    assert_picture(png)


def test_attention_reports_an_unreachable_server(capsys):
    from tfnlp import attention

    with pytest.raises(SystemExit) as exit_info:
        attention.main(["--server", f"127.0.0.1:{free_port()}", "--model", "icd10_seq2seq", "x"])
    assert exit_info.value.code == 2 and "UNAVAILABLE" in capsys.readouterr().err


def test_rest_agrees_with_grpc(server):
    rest = server["rest"]
    grpc_codes = client.predict(TEXTS, "icd10_seq2seq", server["target"])["code"]
    status, rows = http(f"{rest}/icd10_seq2seq:predict", {"instances": TEXTS})
    assert status == 200 and [row["code"] for row in rows["predictions"]] == grpc_codes
    status, named_rows = http(f"{rest}/icd10_seq2seq/versions/1:predict", {"instances": [{"text": t} for t in TEXTS]})
    assert status == 200 and named_rows == rows
    status, columns = http(f"{rest}/icd10_seq2seq:predict", {"inputs": {"text": TEXTS}})
    assert status == 200 and columns["outputs"]["code"] == grpc_codes
    assert columns["outputs"]["input_tokens"][0][:2] == ["choléra", "à"]
    status, model_status = http(f"{rest}/icd10_seq2seq")
    assert status == 200 and model_status["model_version_status"][0]["state"] == "AVAILABLE"
    status, metadata = http(f"{rest}/icd10_seq2seq/metadata")
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]  # TF Serving's field names
    assert status == 200 and signature["inputs"]["text"]["dtype"] == "DT_STRING"


def test_client_over_rest_agrees_with_grpc(server, capsys):
    rest_target = server["rest"].removesuffix("/v1/models")
    assert client.predict(TEXTS, "icd10_seq2seq", rest_target, rest=True) == client.predict(
        TEXTS, "icd10_seq2seq", server["target"])
    assert client.metadata("icd10_seq2seq", rest_target, rest=True) == client.metadata("icd10_seq2seq",
                                                                                         server["target"])
    assert client.status("icd10_seq2seq", rest_target, rest=True) == client.status("icd10_seq2seq", server["target"])
    assert client.main(["--model", "icd10_seq2seq", "--rest", "--target", rest_target, "Asthme", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "Asthme"
    with pytest.raises(SystemExit) as exit_info:
        client.main(["--model", "nope", "--rest", "--target", rest_target, "x"])
    assert exit_info.value.code == 2 and "HTTP 404" in capsys.readouterr().err


@pytest.mark.parametrize("path, body, expected", [
    ("/nope:predict", {"instances": ["x"]}, 404),
    ("/icd10_seq2seq/versions/9:predict", {"instances": ["x"]}, 404),
    ("/icd10_seq2seq/labels/stable:predict", {"instances": ["x"]}, 404),
    ("/icd10_seq2seq:predict", b"{not json", 400),
    ("/icd10_seq2seq:predict", {"instances": [1.5, 2.5]}, 400),
    ("/icd10_seq2seq:predict", {"instances": ["x"], "inputs": ["y"]}, 400),
    ("/icd10_seq2seq:predict", {"inputs": {"words": ["x"]}}, 400),
    ("/icd10_seq2seq:predict", {"instances": [["a", "b"]]}, 400),
])
def test_rest_bad_requests_get_the_right_status(server, path, body, expected):
    status, payload = http(server["rest"] + path, body)
    assert status == expected and payload["error"]
    assert http(server["rest"] + "/icd10_seq2seq:predict", {"instances": ["Asthme"]})[0] == 200


def test_a_new_version_is_served_after_the_poll_with_no_failed_request(tiny_run, tmp_path):
    base = tmp_path / "icd10_seq2seq"
    shutil.copytree(tiny_run["version"], base / "1")
    with running_server(base, "--file_system_poll_wait_seconds=0.5") as (target, _):
        assert client.status("icd10_seq2seq", target) == [{"version": 1, "state": "AVAILABLE"}]
        staging = tmp_path / "staging"
        shutil.copytree(tiny_run["version"], staging)
        staging.rename(base / "2")  # appears whole, as tfnlp's export writes it
        # Loading the new version takes ~20 s alone; a generous deadline, since the loop stops as soon as it is
        # served (60 s fell short once with two trainings beside the suite on the two cores).
        served, failures, deadline = set(), 0, time.monotonic() + 180
        while 2 not in served and time.monotonic() < deadline:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "icd10_seq2seq"
            request.inputs["text"].CopyFrom(tf.make_tensor_proto(["Asthme"], dtype=tf.string))
            try:
                with grpc.insecure_channel(target) as channel:
                    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=30)
                served.add(response.model_spec.version.value)
            except grpc.RpcError:
                failures += 1
        assert 2 in served and failures == 0
        assert client.status("icd10_seq2seq", target) == [{"version": 2, "state": "AVAILABLE"}]  # latest: 1 retired


def test_version_policies_from_a_model_config(tmp_path):
    import argparse

    from tfnlp.serving.server import model_paths

    for version in (1, 2, 5):
        (tmp_path / "m" / str(version)).mkdir(parents=True)
    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{
      config {{ name: "every" base_path: "{tmp_path / 'm'}" model_version_policy {{ all {{}} }} }}
      config {{ name: "pinned" base_path: "{tmp_path / 'm'}"
                model_version_policy {{ specific {{ versions: 2 versions: 9 }} }} }}
      config {{ name: "two" base_path: "{tmp_path / 'm'}" model_version_policy {{ latest {{ num_versions: 2 }} }} }}
      config {{ name: "plain" base_path: "{tmp_path / 'm'}" }}
    }}""")
    models = model_paths(argparse.Namespace(model_config_file=str(config)))
    assert {name: served.wanted() for name, served in models.items()} == {
        "every": [1, 2, 5], "pinned": [2], "two": [2, 5], "plain": [5]}


def test_batching_server_answers_concurrent_clients_as_in_process(tiny_run, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"{text} {index}" for index in range(4) for text in TEXTS]
    expected = in_process(tiny_run["version"], texts)["code"].tolist()
    base = tmp_path / "icd10_seq2seq"
    shutil.copytree(tiny_run["version"], base / "1")
    with running_server(base, "--enable_batching", "--batching_parameters_file=serving/batching.config") as (
            target, rest):
        with ThreadPoolExecutor(len(texts)) as pool:
            answers = list(pool.map(lambda text: client.predict([text], "icd10_seq2seq", target)["code"][0], texts))
        assert answers == [code.decode() for code in expected]
        assert http(rest + "/icd10_seq2seq:predict", {"instances": texts[:2]})[0] == 200


def test_version_labels_over_grpc_and_rest_with_a_process_per_version(tiny_run, tmp_path):
    base = tmp_path / "icd10_seq2seq"
    for version in (1, 2):
        shutil.copytree(tiny_run["version"], base / str(version))
    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{ config {{
        name: "icd10_seq2seq" base_path: "{base}" model_platform: "tensorflow"
        model_version_policy {{ all {{}} }} version_labels {{ key: "stable" value: 1 }}
        version_labels {{ key: "canary" value: 2 }} }} }}""")
    # Two versions served at once, each by its own worker process (tfnlp.serving.worker).
    with running_server(base, f"--model_config_file={config}", "--isolate_versions") as (target, rest):
        assert [row["version"] for row in client.status("icd10_seq2seq", target)] == [1, 2]
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "icd10_seq2seq"
        request.model_spec.version_label = "canary"
        request.inputs["text"].CopyFrom(tf.make_tensor_proto(["Asthme"]))
        with grpc.insecure_channel(target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            assert stub.Predict(request, timeout=30).model_spec.version.value == 2
            request.model_spec.version_label = "nightly"
            with pytest.raises(grpc.RpcError) as error:
                stub.Predict(request, timeout=30)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND and "nightly" in error.value.details()
        assert http(f"{rest}/icd10_seq2seq/labels/stable:predict", {"instances": ["Asthme"]})[0] == 200
        assert http(f"{rest}/icd10_seq2seq/labels/nightly:predict", {"instances": ["Asthme"]})[0] == 404
