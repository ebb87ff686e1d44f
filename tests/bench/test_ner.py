"""`python -m tfnlp.bench ner --quick` on a small CoNLL folder the test writes."""

import re

import pytest

from tests.tasks.test_tagging import write_conll
from tfnlp.bench import __main__ as bench


def test_ner_bench_tabulates_each_tagger(tmp_path, capsys):
    data = write_conll(tmp_path, count=60)
    assert bench.main(["ner", "--quick", "--data", f"conll:{data}", "--taggers", "ner_bilstm,ner_gpt"]) == 0
    out = capsys.readouterr().out
    rows = {name: re.search(rf"^\| {name} \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| \d+ \| (\d+) \|$", out,
                            re.M) for name in ("ner_bilstm", "ner_gpt")}
    assert all(rows.values()) and all(int(row.group(5)) > 0 for row in rows.values())
    assert float(rows["ner_bilstm"].group(4)) > 0.5  # two epochs teach the BiLSTM; GPT-2 from scratch needs more
    assert re.search(r"^\| Disease \| \d+ \| [\d.]+ \| [\d.]+ \|$", out, re.M)  # per-type F1, both taggers
    assert re.search(r"headline: best test entity F1 [\d.]+ \(ner_(bilstm|gpt)\)", out)


def test_ner_bench_refuses_an_unknown_tagger(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["ner", "--taggers", "ner_crf"])
    assert exit_info.value.code == 2
    assert "--taggers 'ner_crf': choose among ner_bilstm, ner_bert, ner_gpt" in capsys.readouterr().err
