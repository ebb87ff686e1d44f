"""Training throughput under each tf.distribute strategy and precision, side by side.

    python -m tfnlp.bench scale [--quick] [--experiment icd10_chapter_lstm] [--epochs 2]

Each configuration is one `python -m tfnlp.train` process (two, on 127.0.0.1, for the two-worker
`multiworker` row) training the experiment for `--epochs` epochs; samples/s = global batch size /
the last epoch's time per step as Keras reports it (the first epoch also traces the graph). On a
machine without GPUs, `mirrored` mirrors over the one CPU device, and two local workers share its
cores: these rows measure what the strategies cost, not what they gain on several devices.
`--quick` trains the tiny variant (600 labels).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tfnlp.errors import UserError

CONFIGURATIONS = (  # (row, overrides, workers)
    ("default", ("train.strategy=default",), 1),
    ("mirrored (one device)", ("train.strategy=mirrored",), 1),
    ("multiworker (two local workers)", ("train.strategy=multiworker",), 2),
    ("default, mixed_float16", ("train.strategy=default", "train.precision=mixed_float16"), 1),
    ("default, mixed_bfloat16", ("train.strategy=default", "train.precision=mixed_bfloat16"), 1),
)
STEP_TIME = re.compile(r"^\s*\d+/\d+ - [\d.]+m?s - ([\d.]+)(ms|s)/step", re.MULTILINE)
WORKER_SECONDS = 1800


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def train_processes(argv: list[str], workers: int) -> list[str]:
    """Run `python -m tfnlp.train argv` as `workers` processes (TF_CONFIG on 127.0.0.1 when several); their
    outputs, the chief's first. Raises UserError naming the failure."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(workers)]}
    processes = []
    try:
        for index in range(workers):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            if workers > 1:
                env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            processes.append(subprocess.Popen([sys.executable, "-m", "tfnlp.train", *argv], env=env, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        outputs = [process.communicate(timeout=WORKER_SECONDS)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, output in zip(processes, outputs, strict=True):
        if process.returncode:
            raise UserError(f"python -m tfnlp.train {' '.join(argv)} failed:\n{output[-2000:]}")
    return outputs


def seconds_per_step(output: str) -> float:
    """The last epoch's time per training step in a run's Keras log."""
    steps = STEP_TIME.findall(output)
    if not steps:
        raise UserError(f"no per-step time in the run's log:\n{output[-1000:]}")
    value, unit = steps[-1]
    return float(value) / (1000.0 if unit == "ms" else 1.0)


def measure(experiment: str, quick: bool, epochs: int, overrides: Sequence[str], workers: int,
            scratch: Path) -> float:
    """Samples per second of one configuration."""
    from tfnlp import experiments

    batch = experiments.get(experiment, tiny=quick).train.batch_size
    argv = [experiment, *(["--tiny"] if quick else []), "--workdir", str(scratch / "work"), "--export_base",
            str(scratch / "export"), "--set", f"train.epochs={epochs}", f"train.patience={epochs}",
            "train.baselines=false", *overrides]
    return batch / seconds_per_step(train_processes(argv, workers)[0])


def table(rows: Sequence[tuple[str, int, float]]) -> str:
    """Markdown: each configuration's processes and samples/s, and its speed against the first row's."""
    baseline = rows[0][2]
    lines = ["| configuration | processes | samples/s (training) | vs default |", "|---|---|---|---|"]
    return "\n".join(lines + [f"| {name} | {workers} | {rate:.0f} | {rate / baseline:.2f}x |"
                              for name, workers, rate in rows])


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tfnlp.bench scale`."""
    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench scale", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny variant (600 labels)")
    parser.add_argument("--experiment", default="icd10_chapter_lstm")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run; the last one is timed")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        raise UserError(f"--epochs {args.epochs}: at least 2 (the first traces the graph)")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (name, overrides, workers) in enumerate(CONFIGURATIONS):
            rate = measure(args.experiment, args.quick, args.epochs, overrides, workers, Path(scratch) / str(index))
            rows.append((name, workers, rate))
            print(f"{name}: {rate:.0f} samples/s", flush=True)
    print(f"\n{args.experiment}{' (tiny)' if args.quick else ''}, {os.cpu_count()} CPU cores, no GPU:\n")
    print(table(rows))
    baseline = rows[0][2]
    print("not measurable here: several GPUs (mirrored), TPU, mixed precision on hardware with float16 / bfloat16 "
          "units")
    best = max(rows, key=lambda row: row[2])
    print(f"headline: fastest here: {best[0]} at {best[2]:.0f} samples/s ({best[2] / baseline:.2f}x default)")
    return 0
