"""What a run ran on: packages, CPU instructions and kernel settings, and what differs between two runs."""

import json

from tfnlp import environment
from tfnlp.run import ENVIRONMENT_FILE, record_environment

SAPPHIRE_RAPIDS = """processor\t: 0
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16
processor\t: 1
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16
"""
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve\nCPU implementer\t: 0x41\n"


def test_the_cpu_is_read_from_cpuinfo_with_its_vector_instructions():
    xeon = environment.cpu(SAPPHIRE_RAPIDS)
    assert xeon["model"] == "Intel(R) Xeon(R) Processor"
    assert xeon["vector_flags"] == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                                    "amx_tile", "amx_bf16"]
    assert environment.cpu(GRAVITON)["vector_flags"] == ["asimd", "sve"]  # Arm names them "Features"
    assert environment.cpu("")["vector_flags"] == []  # no /proc/cpuinfo (macOS): nothing claimed


def test_describe_names_the_installed_packages_and_this_python(monkeypatch):
    import platform

    import numpy
    import sklearn

    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    described = environment.describe()
    assert described["python"] == platform.python_version()
    assert described["packages"]["numpy"] == numpy.__version__
    assert described["packages"]["scikit-learn"] == sklearn.__version__
    assert described["kernel_settings"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert environment.package_versions(("no-such-distribution-here",)) == {
        "no-such-distribution-here": "not installed"}
    json.dumps(described)  # it goes into metrics.json and the model card as it is


def test_differences_name_each_change_and_nothing_for_the_same_environment():
    before = {"python": "3.11.2", "packages": {"keras": "3.15.0", "numpy": "2.4.6"},
              "cpu": {"model": "Xeon", "vector_flags": ["avx2", "avx512f"]}, "kernel_settings": {}}
    after = {"python": "3.11.2", "packages": {"keras": "3.15.1", "numpy": "2.4.6"},
             "cpu": {"model": "Xeon", "vector_flags": ["avx2", "avx512f", "amx_bf16"]},
             "kernel_settings": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}
    assert environment.differences(before, after) == [
        "keras 3.15.0 -> 3.15.1", "CPU instructions +amx_bf16",
        "kernel settings none -> {'ONEDNN_MAX_CPU_ISA': 'AVX2'}"]
    assert environment.differences(after, after) == []
    assert environment.differences({}, after) == []  # a run recorded before environments were kept


def test_a_resumed_run_keeps_the_environment_it_began_in_and_warns_when_it_differs(tmp_path, capsys):
    began = {**environment.describe(), "packages": {"keras": "3.0.0"}}
    (tmp_path / ENVIRONMENT_FILE).write_text(json.dumps(began))
    now = record_environment(tmp_path)
    assert now == environment.describe()
    assert json.loads((tmp_path / ENVIRONMENT_FILE).read_text()) == began  # the record of its start is kept
    assert f"keras 3.0.0 -> {now['packages']['keras']}" in capsys.readouterr().err
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    record_environment(fresh)
    assert json.loads((fresh / ENVIRONMENT_FILE).read_text()) == now and capsys.readouterr().err == ""


def test_the_summary_is_one_readable_line():
    line = environment.summary({"python": "3.11.2", "packages": {"keras": "3.15.1", "jax": "not installed"},
                                "cpu": {"model": "Xeon", "vector_flags": ["avx2"]},
                                "kernel_settings": {"TF_ENABLE_ONEDNN_OPTS": "0"}})
    assert line == "Python 3.11.2, keras 3.15.1 on Xeon (avx2); TF_ENABLE_ONEDNN_OPTS=0"


def test_a_model_card_says_what_it_was_trained_with_and_an_older_card_its_versions():
    from tfnlp.model_card import trained_with

    environment_record = {"python": "3.11.2", "packages": {"keras": "3.15.1"}, "cpu": {"model": "Xeon"}}
    assert trained_with({"environment": environment_record}) == ("Python 3.11.2, keras 3.15.1 on Xeon "
                                                                 "(no vector flags read)")
    assert trained_with({"versions": {"tensorflow": "2.21.0", "keras": "3.15.1"}}) == "TensorFlow 2.21.0, Keras 3.15.1"
