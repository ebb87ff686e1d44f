import re

import pytest

from tfnlp.bench import __main__ as bench


def test_decode_bench_compares_both_decoders_on_the_exported_model(tiny_run, capsys):
    assert bench.main(["decode", "--quick", "--model", str(tiny_run["version"])]) == 0
    out = capsys.readouterr().out
    assert "| in-graph batched" in out and "| Python loop, per text, per character | 64 |" in out
    # Both decoders run the same greedy constrained search on the same model: they must agree.
    agreement = float(re.search(r"same code from both on ([\d.]+)%", out).group(1))
    assert agreement >= 95.0
    assert re.search(r"^headline: in-graph batched decoding is \d+x faster", out.strip().splitlines()[-1])


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
