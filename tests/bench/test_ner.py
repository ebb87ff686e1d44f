"""`python -m tfnlp.bench ner --quick` on a small CoNLL folder the test writes."""

import re

import pytest

from tests.helpers import write_conll
from tfnlp.bench import __main__ as bench


def test_ner_bench_tabulates_each_tagger(tmp_path, capsys):
    data = write_conll(tmp_path, count=60)
    # The BiLSTM only: the transformer taggers train end to end in tests/tasks/test_subword_tagging.py.
    assert bench.main(["ner", "--quick", "--data", f"conll:{data}", "--taggers", "ner_bilstm"]) == 0
    out = capsys.readouterr().out
    row = re.search(r"^\| ner_bilstm \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| \d+ \| (\d+) \|$", out, re.M)
    assert row and int(row.group(5)) > 0
    assert float(row.group(4)) > 0.5  # two epochs teach the BiLSTM
    assert re.search(r"^\| Disease \| \d+ \| [\d.]+ \|$", out, re.M)  # per-type F1
    assert re.search(r"headline: best test entity F1 [\d.]+ \(ner_bilstm\)", out)


def test_ner_bench_refuses_an_unknown_tagger(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["ner", "--taggers", "ner_crf"])
    assert exit_info.value.code == 2
    assert "--taggers 'ner_crf': choose among ner_bilstm, ner_bert, ner_gpt" in capsys.readouterr().err
