"""`python -m tfnlp.bench ner --quick` on a small CoNLL folder the test writes."""

import re

from tests.tasks.test_tagging import write_conll
from tfnlp.bench import __main__ as bench


def test_ner_bench_tabulates_each_tagger(tmp_path, capsys):
    data = write_conll(tmp_path, count=60)
    assert bench.main(["ner", "--quick", "--data", f"conll:{data}"]) == 0
    out = capsys.readouterr().out
    row = re.search(r"^\| ner_bilstm \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| \d+ \| (\d+) \|$", out, re.M)
    assert row and float(row.group(4)) > 0.5 and int(row.group(5)) > 0
    assert "headline: ner_bilstm test entity F1" in out
