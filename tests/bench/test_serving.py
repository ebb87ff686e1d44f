"""`python -m tfnlp.bench serving` on the tiny run's export, with very short cells."""

import re

import pytest

from tfnlp.bench import __main__ as bench
from tfnlp.bench.serving import Measurement, headlines


@pytest.mark.slow  # about 35 s (two servers start); `python -m tfnlp.bench serving --quick` runs the same path
def test_serving_bench_tabulates_every_path_batch_and_client_count(tiny_run, capsys):
    assert bench.main(["serving", "--model", str(tiny_run["version"]), "--seconds", "0.3", "--clients", "4"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^\| (in-process|gRPC|gRPC \+ batching) \| (1|64) \| (1|4) \| (\d+) \| 0 \|", out, re.M)
    assert len(rows) == 12 and len({row[:3] for row in rows}) == 12
    assert all(int(row[3]) > 0 for row in rows)
    assert "headline: gRPC batch-1 p50" in out and "batching gives" in out


def test_headlines_compare_the_right_cells():
    def cell(path, clients, latency, count):
        return Measurement(path, 1, clients, (latency,) * count, 0, 1.0)

    results = [cell("in-process", 1, 0.010, 100), cell("gRPC", 1, 0.0115, 80), cell("gRPC", 8, 0.1, 80),
               cell("gRPC + batching", 8, 0.02, 400)]
    local_vs_grpc, batching = headlines(results, 8)
    assert "+1.5 ms" in local_vs_grpc and "11.5 vs 10.0 ms" in local_vs_grpc
    assert "5.0x the throughput (400 vs 80 texts/s" in batching


def test_a_failing_request_is_counted_not_fatal():
    from tfnlp.bench.serving import measure

    def call(client, request):
        if request % 2:
            raise RuntimeError("refused")

    latencies, failures, elapsed = measure(call, 3, 0.05)
    assert failures > 0 and latencies and elapsed >= 0.05
