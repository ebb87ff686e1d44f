"""`python -m tfnlp.serving.config` and the shipped TF Serving files."""

import re
from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfnlp.serving import config
from tfnlp.serving.batching import read_batching_parameters

SERVING = Path(__file__).resolve().parents[2] / "serving"


def parsed(path: Path) -> model_server_config_pb2.ModelServerConfig:
    message = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(path.read_text(), message)
    return message


def test_regenerates_the_config_from_the_exports(tmp_path, capsys):
    for folder in ("icd10_seq2seq/1", "icd10_seq2seq/3", "sentiment/2", "empty", "notes/tmp-1"):
        (tmp_path / "savedmodels" / folder).mkdir(parents=True)
    output = tmp_path / "models.config"
    argv = ["--savedmodels", str(tmp_path / "savedmodels"), "-o", str(output)]
    assert config.main(argv) == 0
    entries = parsed(output).model_config_list.config
    assert [(entry.name, entry.base_path) for entry in entries] == [
        ("icd10_seq2seq", "/models/icd10_seq2seq"), ("sentiment", "/models/sentiment")]
    assert all(entry.model_version_policy.latest.num_versions == 1 for entry in entries)
    assert config.main([*argv, "--check"]) == 0
    (tmp_path / "savedmodels" / "notes" / "1").mkdir()
    assert config.main([*argv, "--check"]) == 1 and "out of date" in capsys.readouterr().out


def test_host_prefix_config_is_what_tfnlps_server_reads(tmp_path):
    import argparse

    from tfnlp.serving.server import model_paths

    (tmp_path / "savedmodels" / "m" / "4").mkdir(parents=True)
    output = tmp_path / "host.config"
    config.main(["--savedmodels", str(tmp_path / "savedmodels"), "--base_path_prefix", str(tmp_path / "savedmodels"),
                 "-o", str(output)])
    served = model_paths(argparse.Namespace(model_config_file=str(output)))
    assert served["m"].wanted() == [4]


def test_no_export_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        config.main(["--savedmodels", str(tmp_path), "-o", str(tmp_path / "x.config")])
    assert exit_info.value.code == 2 and "no exported model" in capsys.readouterr().err


def test_shipped_files_are_consistent():
    entries = parsed(SERVING / "models.config").model_config_list.config
    assert [entry.name for entry in entries] == ["icd10_seq2seq"]
    assert (SERVING / "models.config").read_text() == config.model_config_text(["icd10_seq2seq"])
    read_batching_parameters(SERVING / "batching.config")
    compose = (SERVING / "docker-compose.yml").read_text()
    for mounted in re.findall(r"/config/([\w.]+)", compose):
        assert (SERVING / mounted).is_file(), mounted
    assert "../savedmodels:/models" in compose and "8500:8500" in compose and "8501:8501" in compose
