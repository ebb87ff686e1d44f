"""`python -m tfnlp.bench faults`: its table, and (with -m slow) a whole quick run on the tiny run's export."""

import pytest

from tfnlp.bench import __main__ as bench
from tfnlp.bench.faults import report

RELOAD = {"clients": 4, "reloads": 1, "steady_requests": 600, "steady_p99_ms": 30.0, "steady_max_ms": 41.0,
          "reload_requests": 1000,
          "reload_p99_ms": 45.0, "reload_max_ms": 300.0, "over_twice_steady_p99": 12, "switch_requests": 90,
          "switch_max_ms": 300.0, "control_requests": 1100, "control_max_ms": 75.0, "control_over_twice_steady_p99": 3,
          "failed": 0, "failures": {}}
TRICKLE = {"trickling": 100, "real": 30, "answered_200": 29, "statuses": {200: 29, 503: 1}}
LARGE = {"requests": 4, "rows": 2000, "payload_mb": 5.3, "before_mb": 950.0, "peak_mb": 1650.0,
         "after_mb": 1138.0, "statuses": {200: 4}, "answered_in_s": 28.0}
MEMORY = {"reloads": 3, "mb": [949.0, 1069.0, 1162.0, 1091.4]}


def test_the_table_sets_each_measurement_beside_its_target():
    lines = report([RELOAD, {**RELOAD, "isolate": True, "reload_max_ms": 50.0}], TRICKLE, LARGE, MEMORY)
    assert lines[2].startswith("| hot reload (4 gRPC clients, 1 reloads; one process) | steady p99 30 ms (slowest "
                               "41 ms, 600 requests); while reloading p99 45 ms")
    assert "slowest 300 ms (10.0x), 12 of 1000 over 2x; 0 failed; around the switches slowest 300 ms (10.0x, 90 " \
           "requests); as long with no reload slowest 75 ms (2.5x), 3 of 1100 over 2x |" in lines[2]
    assert lines[3].startswith("| hot reload (4 gRPC clients, 1 reloads; a process per version) |")
    assert "slowest 50 ms (1.7x)" in lines[3]
    assert "29/30 real requests answered 200 {200: 29, 503: 1}" in lines[4]
    assert "PSS 950 MB before, 1650 MB peak, 1138 MB after; statuses {200: 4}" in lines[5]
    assert lines[6] == ("| 3 hot reloads, one after another | PSS 949 MB serving the first version, then 1069, 1162, "
                        "1091 MB | no growth per reload |")


@pytest.mark.slow  # about 2 minutes: three servers, a reload under load, 100 trickling connections, 4 x 2,000 rows
def test_a_quick_run_measures_the_three_faults(tiny_run, capsys):
    assert bench.main(["faults", "--quick", "--model", str(tiny_run["version"])]) == 0
    out = capsys.readouterr().out
    assert "| hot reload (4 gRPC clients, 1 reloads; one process) | steady p99" in out and "; 0 failed; " in out
    assert "around the switches slowest " in out and " as long with no reload slowest " in out
    assert "| hot reload (4 gRPC clients, 1 reloads; a process per version) | steady p99" in out
    assert "| 100 trickling REST connections | 30/30 real requests answered 200" in out
    assert "| 4 hot reloads, one after another | PSS " in out
