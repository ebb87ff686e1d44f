"""`python -m tfnlp.bench ner --quick` on a small CoNLL folder the test writes."""

import re

import pytest

from tests.helpers import write_conll
from tfnlp.bench import __main__ as bench


# spaCy's training makes this ~40 s: -m slow keeps the default suite near 8 minutes.
@pytest.mark.slow
def test_ner_bench_tabulates_each_tagger_its_argmax_reading_and_spacy(tmp_path, capsys):
    data = write_conll(tmp_path, count=60)
    # The BiLSTM only: the transformer taggers train end to end in tests/tasks/test_subword_tagging.py.
    assert bench.main(["ner", "--quick", "--data", f"conll:{data}", "--taggers", "ner_bilstm"]) == 0
    out = capsys.readouterr().out
    number = r"([\d.]+)"
    row = re.search(rf"^\| ner_bilstm · crf \| {number} \| {number} \| {number} \| {number} \| \d+ \| (\d+) \|$",
                    out, re.M)
    assert row and int(row.group(5)) > 0 and float(row.group(4)) > 0.5  # token accuracy: it learnt something
    assert re.search(r"^\| ner_bilstm · crf scores, argmax \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| - \| - \|$",
                     out, re.M)  # the same model read token by token
    assert re.search(r"^\| spaCy ner \(en, efficiency\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \d+ \| \d+ \|$", out,
                     re.M)
    assert re.search(r"^\| Disease \| \d+ \| [\d.]+ \| [\d.]+ \|$", out, re.M)  # per-type F1: tagger and spaCy
    assert re.search(r"spaCy 3\.\d+\.\d+, default en ner config", out) and "headline: best test entity F1" in out


def test_ner_bench_refuses_an_unknown_tagger(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["ner", "--taggers", "ner_crf"])
    assert exit_info.value.code == 2
    assert "--taggers 'ner_crf': choose among ner_bilstm, ner_bert, ner_gpt" in capsys.readouterr().err
