import re

import pytest

from tfnlp.bench import __main__ as bench


def test_decode_bench_compares_both_decoders_on_the_exported_model(tiny_run, capsys):
    assert bench.main(["decode", "--quick", "--model", str(tiny_run["version"])]) == 0
    out = capsys.readouterr().out
    # A bench's output says what it ran on: its figures repeat on that machine and those packages.
    assert out.startswith("environment: Python ") and " tensorflow 2." in out.splitlines()[0]
    assert "| in-graph batched" in out and "| Python loop, per text, per character | 64 |" in out
    # Both decoders run the same greedy constrained search on the same model: they must agree.
    agreement = float(re.search(r"same code from both on ([\d.]+)%", out).group(1))
    assert agreement >= 95.0
    assert re.search(r"^headline: in-graph batched decoding is \d+x faster", out.strip().splitlines()[-1])


def test_help_after_a_suite_is_the_suites_and_a_missing_suite_is_named(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["speed", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "python -m tfnlp.bench speed" in out and "--model MODEL" in out
    assert "environment:" not in out  # nothing is measured
    assert bench.main(["--help"]) == 0 and "one of: beam" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        bench.main([])
    assert exit_info.value.code == 2 and "name a suite: one of beam" in capsys.readouterr().err


def test_unknown_suite_and_bad_model_folder_are_user_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["nope"])
    assert exit_info.value.code == 2 and "unknown benchmark suite 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["decode", "--model", str(tmp_path)])
    assert exit_info.value.code == 2 and "not a SavedModel folder" in capsys.readouterr().err


@pytest.mark.slow  # about 15 s; the default suite runs `bench rerank` in tests/test_run.py (a run without its data)
def test_rerank_bench_tabulates_decoding_choices_of_a_run(tiny_run, capsys):
    assert bench.main(["rerank", "--quick", "--workdir", str(tiny_run["workdir"])]) == 0
    out = capsys.readouterr().out
    assert "| 1 | 0 |" in out and "| 4 | 1 |" in out
    assert "| 1 | 2 | 10 |" not in out and "| 0 | 1 | 5 |" in out
    assert out.strip().splitlines()[-1].startswith("headline: best on validation: fusion head ")


def test_rerank_bench_needs_a_run_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["rerank", "--workdir", str(tmp_path)])
    assert exit_info.value.code == 2 and "not a run folder (no config.json)" in capsys.readouterr().err


def test_speed_bench_times_versions_in_turns_and_says_whether_they_answer_alike(tiny_run, capsys):
    version = str(tiny_run["version"])
    assert bench.main(["speed", "--quick", "--model", version, "--model", version]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| 1: ", "| 2: "))]
    assert len(rows) == 2 and all(line.endswith("| same |") for line in rows)
    rates = [float(cell) for line in rows for cell in line.split("|")[2:5]]
    assert all(rate > 0 for rate in rates)


def test_the_speed_bench_tells_a_changed_answer_and_refuses_a_folder_that_is_no_version(tmp_path, capsys):
    import tensorflow as tf

    from tfnlp.bench.speed import same_answers

    one = {"code": tf.constant(["I500"]), "confidence": tf.constant([0.5])}
    assert same_answers(one, dict(one))
    assert not same_answers(one, {**one, "code": tf.constant(["I509"])})
    assert not same_answers(one, {**one, "confidence": tf.constant([0.6])})
    assert not same_answers(one, {"code": one["code"]})
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["speed", "--model", str(tmp_path)])
    assert exit_info.value.code == 2 and "not a SavedModel folder" in capsys.readouterr().err
