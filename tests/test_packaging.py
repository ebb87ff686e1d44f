"""tfnlp installs beside TFX: pip's resolver, for the wheels TFX ships (manylinux_2_39), finds one set of versions for
tfnlp and tfx==1.21.0. Slow (it asks the package index for about 150 packages' metadata): run with -m slow."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A glibc 2.39 machine takes every manylinux wheel up to 2.39; pip given --platform takes only the tags it is given.
PLATFORMS = [option for minor in range(39, 16, -1) for option in ("--platform", f"manylinux_2_{minor}_x86_64")]
PLATFORMS += ["--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64"]  # linux_x86_64: wheels built here
# tfnlp's and TFX's dependencies published as source distributions only, in the versions the resolver needs.
SOURCE_ONLY = ["seqeval>=1.2", "google-apitools>=0.5.31,<0.5.32", "crcmod", "pyfarmhash>=0.2.2,<0.4",
               "rouge-score>=0.1.2,<2"]


@pytest.mark.slow
def test_tfnlp_resolves_beside_tfx_1_21(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "wheel"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    # pip given --platform takes wheels only: the packages that ship sources only are built here into wheels, as pip
    # builds them on the machine that installs.
    sdist_only = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "wheel"),
                                 *SOURCE_ONLY], capture_output=True, text=True, timeout=900)
    assert sdist_only.returncode == 0, sdist_only.stderr[-2000:]
    wheel = next((tmp_path / "wheel").glob("tfnlp-*.whl"))
    report = tmp_path / "report.json"
    resolved = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
         "--only-binary=:all:", "--find-links", str(tmp_path / "wheel"), *PLATFORMS, "--python-version", "3.11",
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
