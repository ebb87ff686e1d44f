"""What a run ran on: Python, the packages that shape its numbers, the CPU's vector instructions, oneDNN's settings.

A seeded run is repeatable to the digit on one machine with one set of packages, but not across them:
TensorFlow's CPU kernels (oneDNN, Eigen) pick their code by the instructions the CPU has (AVX2, AVX-512, AMX),
and a different summation order moves a long training run's last digits, sometimes more. Every run records
`describe()` in its `metrics.json` and its model card, so that two runs' figures can be compared knowing what
differed (`differences`), and a run resumed elsewhere says so.

Standard library only: reading it costs no TensorFlow import.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

# The distributions whose versions move a run's numbers (kernels, initialisers, splits, baselines).
PACKAGES = ("tensorflow", "keras", "keras-hub", "tensorflow-text", "numpy", "scikit-learn", "ml-dtypes", "protobuf")
# The CPU flags (as /proc/cpuinfo names them) that decide which kernels oneDNN and Eigen run.
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
                "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")
# Environment variables that change which kernels TensorFlow runs.
KERNEL_SETTINGS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "TF_DETERMINISTIC_OPS", "OMP_NUM_THREADS",
                   "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """The installed version of each distribution; "not installed" for one that is not."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu(cpuinfo: str | None = None) -> dict:
    """The CPU's model name, its logical cores and which of `VECTOR_FLAGS` it has.

    Args:
        cpuinfo: the text of /proc/cpuinfo; None reads it (empty where there is none, as on macOS).
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor's; they agree on one machine
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return {"model": fields.get("model name") or platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "vector_flags": [flag for flag in VECTOR_FLAGS if flag in flags]}


def describe() -> dict:
    """This process's environment, as a run records it."""
    return {"python": platform.python_version(), "system": f"{platform.system()} {platform.machine()}",
            "packages": package_versions(), "cpu": cpu(),
            "kernel_settings": {name: os.environ[name] for name in KERNEL_SETTINGS if name in os.environ}}


def differences(before: dict, after: dict) -> list[str]:
    """What differs between two `describe()` results, a phrase each ("keras 3.15.0 -> 3.15.1"); [] when nothing.

    A key one of them lacks (a run recorded by an older tfnlp) is not a difference.
    """
    changes = []
    if before.get("python") and after.get("python") and before["python"] != after["python"]:
        changes.append(f"Python {before['python']} -> {after['python']}")
    old_packages, new_packages = before.get("packages", {}), after.get("packages", {})
    changes += [f"{name} {old_packages[name]} -> {new_packages[name]}" for name in old_packages
                if name in new_packages and old_packages[name] != new_packages[name]]
    old_cpu, new_cpu = before.get("cpu"), after.get("cpu")
    if old_cpu and new_cpu:
        if old_cpu.get("model") != new_cpu.get("model"):
            changes.append(f"CPU {old_cpu.get('model')} -> {new_cpu.get('model')}")
        gained = [flag for flag in new_cpu.get("vector_flags", []) if flag not in old_cpu.get("vector_flags", [])]
        lost = [flag for flag in old_cpu.get("vector_flags", []) if flag not in new_cpu.get("vector_flags", [])]
        if gained or lost:
            changes.append("CPU instructions " + ", ".join([*(f"+{flag}" for flag in gained),
                                                            *(f"-{flag}" for flag in lost)]))
    if "kernel_settings" in before and "kernel_settings" in after \
            and before["kernel_settings"] != after["kernel_settings"]:
        changes.append(f"kernel settings {before['kernel_settings'] or 'none'} -> {after['kernel_settings'] or 'none'}")
    return changes


def summary(environment: dict) -> str:
    """One line: "Python 3.11.2, tensorflow 2.21.0, keras 3.15.1, ... on <CPU> (avx2, avx512f, ...)"."""
    packages = ", ".join(f"{name} {version}" for name, version in environment.get("packages", {}).items()
                         if version != "not installed")
    processor = environment.get("cpu", {})
    flags = ", ".join(processor.get("vector_flags", [])) or "no vector flags read"
    settings = environment.get("kernel_settings")
    return (f"Python {environment.get('python', '?')}, {packages} on {processor.get('model', '?')} ({flags})"
            + (f"; {', '.join(f'{key}={value}' for key, value in settings.items())}" if settings else ""))
