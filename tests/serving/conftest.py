"""The tiny run's export served by tfnlp's server in a subprocess, shared by the serving test modules."""

import shutil

import pytest

from tests.helpers import running_server


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("served") / "icd10_seq2seq"
    shutil.copytree(tiny_run["version"], base / "1")
    with running_server(base) as (target, rest):
        yield {"target": target, "version": base / "1", "rest": rest}
