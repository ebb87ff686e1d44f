"""Optuna search: trials are tiny runs; an interrupted study resumes to its total."""

import json
import os
import subprocess
import sys
import time

import optuna
import pytest

from tfnlp import search
from tfnlp.errors import UserError

TINY = ["icd10_chapter_lstm", "--tiny", "--set", "train.epochs=2", "train.patience=2"]


def finished_trials(storage: str, study: str) -> int:
    try:
        loaded = optuna.load_study(study_name=study, storage=storage)
    except KeyError:  # not created yet
        return 0
    return sum(trial.state.is_finished() for trial in loaded.get_trials(deepcopy=False))


@pytest.mark.e2e  # a search process killed mid-study, then resumed: about 30 s
def test_a_killed_search_resumes_until_the_study_holds_its_trials(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'search.db'}"
    argv = [*TINY, "--trials", "4", "--storage", storage, "--study", "s", "--root", str(tmp_path / "runs")]
    process = subprocess.Popen([sys.executable, "-m", "tfnlp.search", *argv], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        deadline = time.monotonic() + 240
        while finished_trials(storage, "s") < 2 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        process.kill()
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    done = finished_trials(storage, "s")
    assert 2 <= done < 4, "the search was not interrupted in the middle"
    # A trial the kill caught running is marked failed on --resume, and counts among the finished.
    left_running = len(optuna.load_study(study_name="s", storage=storage).get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))
    with pytest.raises(SystemExit) as exit_info:  # the study exists: starting it again needs --resume
        search.main(argv)
    assert exit_info.value.code == 2 and "--resume to carry it on" in capsys.readouterr().err
    assert search.main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert sum(trial.state.is_finished() for trial in trials) == 4 and not any(
        trial.state.name == "RUNNING" for trial in trials)
    already = min(done + left_running, 4)
    assert f"{already} finished trials, {4 - already} to run" in out
    # Trial 0 is the configuration as given.
    assert trials[0].params["train.learning_rate"] == 2e-3 and trials[0].params["train.batch_size"] == 32
    assert out.count("\n| ") >= 5  # header + one row per trial
    best_line = next(line for line in out.splitlines() if line.startswith("best as --set: --set "))
    assert "train.learning_rate=" in best_line
    best = tmp_path / "runs" / "s" / "best.toml"
    assert "[train]" in best.read_text() and "learning_rate = " in best.read_text()
    # The best configuration as a file gives what the same values given with --set give.
    from tfnlp import train

    from_file, _ = train.configure(["icd10_chapter_lstm", "--tiny", "--config", str(best)])
    from_set, _ = train.configure(["icd10_chapter_lstm", "--tiny", "--set", *best_line.split("--set ", 1)[1].split()])
    assert from_file == from_set


def test_a_failing_trial_is_recorded_with_its_reason_and_the_study_goes_on(tmp_path, capsys):
    space = tmp_path / "space.toml"
    # model.vocab_size below 3 is refused by the configuration checks: those trials fail, the others complete.
    space.write_text('"model.vocab_size" = [1, 500]\n"train.learning_rate" = {low = 1e-3, high = 1e-2, log = true}\n')
    argv = [*TINY, "--trials", "4", "--space", str(space), "--sampler", "random", "--root", str(tmp_path)]
    assert search.main(argv) == 0
    out = capsys.readouterr().out
    assert "| fail |" in out and "failed: " in out and "model.vocab_size=1" in out and "| complete |" in out


@pytest.mark.parametrize(("text", "message"), [
    ('"model.unit" = [1, 2]\n', "unknown key 'model.unit'"),
    ('"model.units" = []\n', "an empty list of choices"),
    ('"model.units" = {low = 1}\n', "give a list of choices or"),
    ('"model.units" = {low = "a", high = "b"}\n', "low must be a int"),
    ('"model.units" = {low = 64, high = 16}\n', "an empty range"),
    ('"train.learning_rate" = {low = 0.0, high = 0.1, log = true}\n', "a log range starts above 0"),
    ('"model.units" = {low = 16, high = 64, step = 0}\n', "step must be above 0"),
    ('"model.units" = ["many"]\n', "choice 'many' is not a int"),
    ('"train.loss" = {low = 1, high = 2}\n', "give a list of choices, not a range"),
    ('"model.beam_size" = [1, 2]\n', "model.beam_size is not read by the word classifier family"),
])
def test_bad_space_files_are_user_errors(tmp_path, text, message):
    from tfnlp import experiments

    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        search.read_space(str(path), experiments.get("icd10_chapter_lstm", tiny=True))


def test_every_experiment_has_a_default_space_its_family_can_sample():
    from tfnlp import experiments

    for name, _ in experiments.describe():
        experiment = experiments.get(name, tiny=True)
        search.check_space(search.default_space(experiment), experiment, name)  # a key or domain it refuses raises


@pytest.mark.e2e  # two search processes on one study, then a resume: about 45 s
@pytest.mark.skipif(not os.environ.get("TFNLP_TEST_POSTGRES"),
                    reason="TFNLP_TEST_POSTGRES names no PostgreSQL server (.ci/run starts one and sets it)")
def test_two_processes_share_a_study_on_postgresql_and_it_resumes(tmp_path):
    import uuid

    server = os.environ["TFNLP_TEST_POSTGRES"]
    storage = server.replace("postgresql://", "postgresql+psycopg://", 1)
    study = f"join-{uuid.uuid4().hex[:8]}"
    argv = [*TINY, "--set", "train.epochs=1", "train.baselines=false", "--trials", "3", "--storage", storage,
            "--study", study, "--root", str(tmp_path / "runs"), "--sampler", "random"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    first = subprocess.Popen([sys.executable, "-m", "tfnlp.search", *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    while study not in optuna.study.get_all_study_names(storage) and time.monotonic() < deadline:
        time.sleep(0.2)
    second = subprocess.Popen([sys.executable, "-m", "tfnlp.search", *argv, "--join"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
    outputs = [process.communicate(timeout=600)[0] for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    trials = optuna.load_study(study_name=study, storage=storage).get_trials()
    # Every trial recorded once, none left running; the total reached (a trial in flight then may finish too).
    assert not [trial for trial in trials if not trial.state.is_finished()]
    assert 3 <= len(trials) <= 4 and len({trial.number for trial in trials}) == len(trials)
    assert len({json.dumps(trial.params, sort_keys=True) for trial in trials[1:]}) == len(trials) - 1  # no twins
    assert search.main([*argv, "--trials", str(len(trials) + 1), "--resume"]) == 0
    assert len(optuna.load_study(study_name=study, storage=storage).get_trials()) == len(trials) + 1
