"""The quiet terminal: TensorFlow's C++ log lines filtered out of a command's standard error, the rest passed on."""

import subprocess
import sys

import pytest

from tfnlp.logs import keep

pytestmark = pytest.mark.smoke

NATIVE = [b"I0000 00:00:1796263943.194983    7807 port.cc:153] oneDNN custom operations are on.",
          b"W0000 00:00:1796264960.327514   14449 loop_optimizer.cc:934] Skipping loop optimization",
          b"E0000 00:00:1796263947.609067    7807 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
          b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"]
KEPT = [b"F0000 00:00:1796263947.609067    7807 kernel.cc:52] Check failed: a fatal error",
        b"Traceback (most recent call last):",
        b"UserWarning: something worth reading", b"error: data.csv: no such file"]


def test_native_info_warnings_and_known_harmless_errors_are_dropped_the_rest_kept():
    assert not any(keep(line) for line in NATIVE)
    assert all(keep(line) for line in KEPT)


@pytest.mark.e2e  # a whole training command in a process of its own: about 25 s
def test_a_tiny_training_command_prints_no_native_log_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfnlp.train", "icd10_chapter_lstm", "--tiny", "--workdir",
                             str(tmp_path / "w"), "--export_base", str(tmp_path / "e"), "--set",
                             "train.baselines=false"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = (result.stdout + result.stderr).splitlines()
    assert not [line for line in lines if line[:5] in ("E0000", "W0000", "I0000") or "cuInit" in line]
    assert "exported:" in result.stdout


HELP_WITHOUT_TENSORFLOW = """
import runpy, sys
sys.argv = ["tfnlp", "--help"]
try:
    runpy.run_module(sys.argv_module, run_name="__main__")
except SystemExit:
    pass
print("TENSORFLOW_IMPORTED" if "tensorflow" in sys.modules else "NO_TENSORFLOW")
"""


def test_help_of_every_command_answers_without_importing_tensorflow():
    for module in ("tfnlp.deid", "tfnlp.explore", "tfnlp.assets", "tfnlp.train", "tfnlp.predict", "tfnlp.pipeline",
                   "tfnlp.search"):
        code = HELP_WITHOUT_TENSORFLOW.replace("sys.argv_module", repr(module))
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert result.stdout.strip().splitlines()[-1] == "NO_TENSORFLOW", (module, result.stderr[-500:])
        assert "usage:" in result.stdout, module


def test_a_packages_root_logger_warnings_are_dropped_and_its_errors_kept():
    import logging
    import os

    from tfnlp.logs import RootNotices

    notices = RootNotices("apache_beam")
    inside = os.sep.join(["", "site-packages", "apache_beam", "ml", "inference", "base.py"])
    outside = os.sep.join(["", "site-packages", "tfnlp", "beam.py"])

    def record(level, path):
        return logging.LogRecord("root", level, path, 1, "message", (), None)

    assert not notices.filter(record(logging.WARNING, inside))
    assert notices.filter(record(logging.ERROR, inside))
    assert notices.filter(record(logging.WARNING, outside))


def test_importing_apache_beam_after_drop_root_notices_prints_nothing():
    pytest.importorskip("apache_beam", reason="the beam extra is not installed")
    script = ("import logging\nfrom tfnlp.logs import drop_root_notices\ndrop_root_notices('apache_beam')\n"
              "import apache_beam\nfrom apache_beam.ml.inference.base import RunInference\n"
              "logging.getLogger().warning('a warning of our own')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "WARNING:root:a warning of our own"


def test_tensorflows_retracing_warning_is_dropped_where_asked_and_other_warnings_kept():
    import logging

    from tfnlp.logs import RetracingNotices, drop_retracing_notices

    logger, seen = logging.getLogger("tensorflow"), []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    saved = list(logger.filters)
    logger.addHandler(handler)
    try:
        drop_retracing_notices()
        drop_retracing_notices()  # once is enough
        assert sum(isinstance(item, RetracingNotices) for item in logger.filters) == 1
        logger.warning("5 out of the last 5 calls to <function f at 0x1> triggered tf.function retracing. Tracing is "
                       "expensive")
        logger.warning("something else")
        assert seen == ["something else"]
    finally:
        logger.removeHandler(handler)
        logger.filters[:] = saved
