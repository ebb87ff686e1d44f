"""tfnlp installs beside TFX: pip's resolver, for the wheels TFX ships (manylinux_2_39), finds one set of versions for
tfnlp and tfx==1.21.0. Slow (it asks the package index for about 150 packages' metadata): run with -m slow."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_tfnlp_resolves_beside_tfx_1_21(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "wheel"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("tfnlp-*.whl"))
    report = tmp_path / "report.json"
    resolved = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
         "--only-binary=:all:", "--platform", "manylinux_2_39_x86_64", "--python-version", "3.11",
         "--target", str(tmp_path / "target"), str(wheel), "tfx==1.21.0"],
        capture_output=True, text=True, timeout=1800)
    if resolved.returncode != 0 and any(sign in resolved.stderr for sign in ("Could not fetch", "Max retries",
                                                                             "Failed to establish", "NewConnection")):
        pytest.skip(f"no package index answers: {resolved.stderr.strip().splitlines()[-1]}")
    assert resolved.returncode == 0, resolved.stderr[-3000:]
    chosen = {item["metadata"]["name"].lower(): item["metadata"]["version"]
              for item in json.loads(report.read_text())["install"]}
    assert chosen["tfx"] == "1.21.0" and chosen["tfnlp"]
    assert chosen["tensorflow"].startswith("2.21") and chosen["keras-hub"].startswith("0.32")
    assert chosen["tensorflow-serving-api"].startswith("2.19")  # what TFX's tfx-bsl asks for
