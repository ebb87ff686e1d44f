"""Server-side batching on the tiny run's real SavedModel: merged results equal single calls; bounded queue."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from tfnlp.errors import UserError
from tfnlp.serving.batching import Batcher, BatchingParameters, parse_batching_parameters, read_batching_parameters
from tfnlp.serving.store import ServingError, load_version, run_signature

TEXTS = ["Choléra à Vibrio cholerae", "Asthme", "", "fièvre typhoïde sans précision", "tuberculose pulmonaire",
         "Grippe", "douleur thoracique aiguë chez un patient", "rougeole"]


@pytest.fixture(scope="module")
def model(tiny_run):
    return load_version(tiny_run["version"])


def as_rows(outputs):
    return {name: np.asarray(value) for name, value in outputs.items()}


def test_concurrent_requests_are_merged_and_answered_as_alone(model):
    batcher = Batcher(BatchingParameters(max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1))
    barrier = threading.Barrier(len(TEXTS))

    def ask(text):
        barrier.wait()
        return batcher.run(model, "", {"text": np.array([text], dtype=object)})

    with ThreadPoolExecutor(len(TEXTS)) as pool:
        answers = list(pool.map(ask, TEXTS))
    assert max(batcher.batch_sizes) > 1, batcher.batch_sizes
    assert sum(batcher.batch_sizes) == len(TEXTS)
    for text, batched in zip(TEXTS, answers, strict=True):
        alone = run_signature(model, "", {"text": np.array([text], dtype=object)})
        assert batched["code"].tolist() == alone["code"].tolist()
        np.testing.assert_allclose(batched["score"], alone["score"], atol=1e-5)
        # As in TF Serving, per-row outputs come back padded to the longest text of the merged batch.
        words, steps = alone["attention"].shape[2], alone["attention"].shape[1]
        np.testing.assert_allclose(batched["attention"][:, :steps, :words], alone["attention"], atol=1e-5)
        assert not batched["attention"][:, :, words:].any()


def test_output_filter_and_a_request_over_max_batch_size(model):
    batcher = Batcher(BatchingParameters(max_batch_size=2, batch_timeout_micros=0))
    outputs = batcher.run(model, "serving_default", {"text": np.array(TEXTS[:5], dtype=object)}, ["code"])
    assert list(outputs) == ["code"] and len(outputs["code"]) == 5
    assert batcher.batch_sizes == []  # five rows over max_batch_size 2: run on their own, unsplit
    with pytest.raises(ServingError) as error:
        batcher.run(model, "", {"text": np.array(TEXTS[:1], dtype=object)}, ["nope"])
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_full_queue_refuses_with_resource_exhausted(model):
    batcher = Batcher(BatchingParameters(max_batch_size=4, max_enqueued_batches=1, batch_timeout_micros=1_000_000,
                                         num_batch_threads=1))
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(batcher.run, model, "", {"text": np.array(TEXTS[:3], dtype=object)})
        while not batcher._queues:  # the three rows wait for the timeout: the queue holds 3 of its 4 rows
            time.sleep(0.001)
        with pytest.raises(ServingError) as error:
            batcher.run(model, "", {"text": np.array(TEXTS[3:5], dtype=object)})
        assert error.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "queue is full" in str(error.value)
        assert len(waiting.result(timeout=30)["code"]) == 3  # the queued request is still answered


def test_bad_input_fails_alone_before_it_joins_a_batch(model):
    batcher = Batcher(BatchingParameters())
    with pytest.raises(ServingError) as error:
        batcher.run(model, "", {"text": np.array([1, 2])})
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_parse_the_shipped_batching_config():
    parameters = read_batching_parameters("serving/batching.config")
    assert parameters.max_batch_size >= 32 and parameters.num_batch_threads >= 1


@pytest.mark.parametrize("text, message", [
    ("max_batch_size { value: 8 }\nallowed_batch_sizes: 8", "cannot use"),
    ("pad_variable_length_inputs { value: true }", "cannot use"),
    ("max_batch_size { value: 0 }", "at least 1"),
    ("max_batch_size { value: eight }", "invalid literal"),
])
def test_unusable_batching_parameters_are_user_errors(text, message):
    with pytest.raises(UserError, match=message):
        parse_batching_parameters(text)


def test_parse_reads_values_and_comments():
    parameters = parse_batching_parameters("# tuned\nmax_batch_size { value: 16 }\nbatch_timeout_micros {value:0}")
    assert parameters == BatchingParameters(max_batch_size=16, batch_timeout_micros=0)
