"""`python -m tfnlp.bench faults`: its table, and (with -m slow) a whole quick run on the tiny run's export."""

import pytest

from tfnlp.bench import __main__ as bench
from tfnlp.bench.faults import report

RELOAD = {"clients": 4, "reloads": 1, "steady_requests": 600, "steady_p99_ms": 30.0, "steady_max_ms": 41.0,
          "reload_requests": 1000,
          "reload_p99_ms": 45.0, "reload_max_ms": 300.0, "over_twice_steady_p99": 12, "switch_requests": 90,
          "switch_maxima_ms": [300.0], "control_requests": 1100,
          "control_window_maxima_ms": [40.0, 75.0, 50.0], "control_over_twice_steady_p99": 3,
          "failed": 0, "failures": {}}
TRICKLE = {"trickling": 100, "real": 30, "answered_200": 29, "statuses": {200: 29, 503: 1}}
LARGE = {"requests": 4, "rows": 2000, "payload_mb": 5.3, "before_mb": 950.0, "peak_mb": 1650.0,
         "after_mb": 1138.0, "statuses": {200: 4}, "answered_in_s": 28.0}
MEMORY = {"reloads": 3, "mb": [949.0, 1069.0, 1162.0, 1091.4]}


def test_the_table_sets_each_measurement_beside_its_target():
    lines = report([RELOAD, {**RELOAD, "isolate": True, "reload_max_ms": 50.0}], TRICKLE, LARGE, MEMORY)
    assert lines[2].startswith("| hot reload (4 gRPC clients, 1 reloads; one process) | steady p99 30 ms (slowest "
                               "41 ms, 600 requests); while reloading p99 45 ms")
    assert "slowest 300 ms (10.0x), 12 of 1000 over 2x; 0 failed; around each switch (1 s before to 2 s after) " \
           "slowest 300 ms (10.0x, 90 requests); in 3 windows as long with no reload, slowest median 50 ms, worst " \
           "75 ms (2.5x); 0 of 3 as slow as the worst switch; 3 of 1100 requests with no reload over 2x |" in lines[2]
    assert lines[3].startswith("| hot reload (4 gRPC clients, 1 reloads; a process per version) |")
    assert "slowest 50 ms (1.7x)" in lines[3]
    two = {**RELOAD, "switch_maxima_ms": [60.0, 45.0]}
    assert "slowest 60, 45 ms (2.0x, 90 requests)" in report([two], TRICKLE, LARGE, MEMORY)[2]
    assert "1 of 3 as slow as the worst switch" in report([two], TRICKLE, LARGE, MEMORY)[2]
    assert "29/30 real requests answered 200 {200: 29, 503: 1}" in lines[4]
    assert "PSS 950 MB before, 1650 MB peak, 1138 MB after; statuses {200: 4}" in lines[5]
    assert lines[6] == ("| 3 hot reloads, one after another | PSS 949 MB serving the first version, then 1069, 1162, "
                        "1091 MB | no growth per reload |")


@pytest.mark.slow  # about 3 minutes: five servers, a reload under load, 100 trickling connections, 4 x 1,000 rows
def test_a_quick_run_measures_the_three_faults(tiny_run, capsys):
    assert bench.main(["faults", "--quick", "--model", str(tiny_run["version"])]) == 0
    out = capsys.readouterr().out
    assert "| hot reload (4 gRPC clients, 1 reloads; one process) | steady p99" in out and "; 0 failed; " in out
    assert "around each switch (1 s before to 2 s after) slowest " in out and " windows as long with no reload" in out
    assert "| hot reload (4 gRPC clients, 1 reloads; a process per version) | steady p99" in out
    assert "| 100 trickling REST connections | 30/30 real requests answered 200" in out
    assert "| 4 concurrent requests of 1000 rows " in out
    assert "| 2 hot reloads, one after another | PSS " in out


def test_control_windows_are_cut_as_long_as_a_switch_window():
    from tfnlp.bench.faults import Load, window_maxima

    load = Load.__new__(Load)  # only its records: (end time, seconds)
    load.records = [(0.5, 0.01), (1.0, 0.03), (2.9, 0.02), (3.5, 0.05), (7.0, 0.04), (9.5, 0.09)]
    assert window_maxima(load, 0.0, 9.0, 3.0) == [0.03, 0.05, 0.04]  # [0, 3], [3, 6], [6, 9]; 9.5 is after the end
    assert window_maxima(load, 4.0, 9.9, 3.0) == [0.04]  # [4, 7]; [7, 10] would pass the end
