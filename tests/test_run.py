"""The library's training run: `tfnlp.train(...) -> Run`, `Run.load`, and a coder run that reloads without its data."""

import csv

import pytest

import tfnlp
from tfnlp.errors import UserError
from tfnlp.run import Run


@pytest.fixture(scope="module")
def csv_coder_run(tmp_path_factory):
    """A tiny coder trained from a CSV of cim10 labels (the CSV deleted afterwards: the run must not need it)."""
    from tfnlp.config import DataConfig
    from tfnlp.data import sources

    root = tmp_path_factory.mktemp("csv_coder")
    records = sources.load("cim10", DataConfig(max_records=400)).splits
    path = root / "labels.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["RawText", "ICD10"])
        writer.writerows((record.text, record.target) for part in (records.train, records.validation, records.test)
                         for record in part)
    run = tfnlp.train("icd10_seq2seq", tiny=True, data=f"csv:{path}", workdir=root / "work",
                      export_base=root / "export", overrides=["train.baselines=false"])
    path.unlink()
    return run


def test_train_returns_a_run_that_reads_back_from_its_folder(tiny_classifier_run):
    run = tiny_classifier_run  # tfnlp.train("icd10_chapter_lstm", tiny=True, ...): tests/session_builds.py
    assert run.export == run.workdir.parent / "export" / "icd10_chapter_lstm" / "1"
    assert (run.export / "saved_model.pb").exists()
    assert "model" in run.test and 0.0 <= run.test["model"]["accuracy"] <= 1.0
    assert run.history["val_accuracy"] and run.train_seconds > 0 and run.parameters["trainable"] > 0
    again = Run.load(run.workdir)
    assert (again.experiment, again.export, again.test, again.history) == (run.experiment, run.export, run.test,
                                                                          run.history)
    assert "| model |" in again.table()
    # What it ran on reads back too: the versions and CPU that two runs' figures are compared by.
    assert again.environment == run.environment and run.environment["packages"]["tensorflow"] != "not installed"


@pytest.mark.e2e  # a coder trained for this module (about 40 s), then the rerank bench on it (about 30 s)
def test_a_coder_run_reloads_and_reranks_after_its_data_file_is_deleted(csv_coder_run, capsys):
    from tfnlp.bench import rerank

    assert not any(csv_coder_run.workdir.parent.glob("*.csv"))
    answers = tfnlp.load(csv_coder_run.workdir).predict(["Choléra", "Fièvre typhoïde"])
    assert [answer.code for answer in answers] == [answer.code for answer in tfnlp.load(csv_coder_run.export)
                                                   .predict(["Choléra", "Fièvre typhoïde"])]
    task, model = rerank.load_run(csv_coder_run.workdir)
    assert not task.splits.train and len(task.splits.validation) == csv_coder_run.sizes["validation"]
    assert rerank.main(["--workdir", str(csv_coder_run.workdir), "--quick"]) == 0
    table = capsys.readouterr().out
    # The restored task decodes the validation split as the run did: greedy exact match equals the run's best epoch.
    greedy_row = next(line for line in table.splitlines() if line.startswith("| 1 | 0 |"))
    best = max(csv_coder_run.history["val_exact_match"])
    assert float(greedy_row.split("|")[5]) == pytest.approx(best, abs=1e-3)
    for limit in ("no limit", "2"):  # the ranked lists: top-k at least top-1
        cells = [float(cell) for cell in next(line for line in table.splitlines()
                                              if line.startswith(f"| 2 | {limit} |")).split("|")[3:7]]
        assert cells[2] >= cells[0] and cells[3] >= cells[1]
    # The category models alone: each row's top-k accuracy grows with k.
    rows = [line for line in table.split("category models alone")[1].splitlines()
            if line.startswith(("| category head |", "| TF-IDF SVM |", "| fused "))]
    assert len(rows) == 3
    for row in rows:
        cells = [float(cell) for cell in row.split("|")[2:6]]
        assert all(0.0 <= cell <= 1.0 for cell in cells) and cells == sorted(cells)


def test_train_refuses_bad_settings_before_it_writes_anything(tmp_path):
    with pytest.raises(UserError, match="model.beam_size is not read by the word classifier family"):
        tfnlp.train("icd10_chapter_lstm", tiny=True, overrides=["model.beam_size=3"], workdir=tmp_path / "w")
    with pytest.raises(UserError, match="no such file"):
        tfnlp.train("icd10_seq2seq", tiny=True, data=f"csv:{tmp_path / 'missing.csv'}", workdir=tmp_path / "w")
    assert not (tmp_path / "w").exists()  # a data error leaves no run folder
    with pytest.raises(UserError, match="not a run folder"):
        Run.load(tmp_path)


def test_tfnlp_train_is_callable_whether_or_not_the_command_module_was_imported():
    import tfnlp.train as command

    assert tfnlp.train is command and callable(tfnlp.train) and command.main
