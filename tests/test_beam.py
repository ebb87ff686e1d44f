"""Batch prediction on Apache Beam (DirectRunner): every readable row answered as the Python API answers it, every
unreadable one in the dead-letter file with its line."""

import csv
import json

import pytest

pytest.importorskip("apache_beam", reason="batch prediction needs the beam extra: pip install 'tfnlp[beam]'")

from tfnlp import beam, predict  # noqa: E402

TEXTS = ["Choléra", "Fièvre typhoïde", "Insuffisance cardiaque congestive", "", "Asthme", "douleur thoracique"]


def test_rows_are_read_with_their_ids_and_unreadable_ones_become_dead_letters():
    source = beam.Source("jsonl", "x.jsonl", "text", "id")
    data = '{"id": "a", "text": "Asthme"}\n{not json\n{"id": 3, "texte": "x"}\n[1]\n{"text": "Choléra"}\n'.encode()
    rows = list(beam.text_rows("x.jsonl", data, source))
    assert [row for kind, row in rows if kind == "row"] == [("a", "Asthme"), ("5", "Choléra")]
    dead = [row for kind, row in rows if kind == "dead"]
    assert [(row["at"], row["reason"].split(" (")[0]) for row in dead] == [
        ("line 2", "not JSON"), ("line 3", "no 'text' field"), ("line 4", "not a JSON object")]
    csv_source = beam.Source("csv", "x.csv", "RawText", "id")
    rows = list(beam.text_rows("x.csv", b'id,RawText\n7,"two\nlines"\n8,a,extra\n9,b\n', csv_source))
    assert [row for kind, row in rows if kind == "row"] == [("7", "two\nlines"), ("9", "b")]
    assert [row["at"] for kind, row in rows if kind == "dead"] == ["line 4"]  # the row with a field too many
    assert next(beam.text_rows("x.csv", b"id,text\n1,a\n", csv_source))[1]["reason"].startswith("no column 'RawText'")


def test_a_csv_is_answered_row_by_row_as_the_python_api_answers(tiny_run, tmp_path, capsys):
    import tfnlp

    source = tmp_path / "in.csv"
    with open(source, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["certificate", "RawText"])
        writer.writerows([(f"c{index}", text) for index, text in enumerate(TEXTS)])
    with open(source, "a", encoding="utf-8") as handle:
        handle.write("c-bad,a text,one field too many\n")
    out = tmp_path / "out" / "answers.jsonl"
    assert predict.main([str(tiny_run["version"]), "--input", f"csv:{source}", "--output", str(out),
                         "--id-column", "certificate", "--min-batch-size", "2", "--max-batch-size", "4"]) == 0
    assert f"{out}: {len(TEXTS)} answers; 1 unreadable" in capsys.readouterr().out
    rows = {row["id"]: row for row in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert sorted(rows) == sorted(f"c{index}" for index in range(len(TEXTS)))
    expected = [tfnlp.answers.to_dict(answer) for answer in tfnlp.load(tiny_run["version"]).predict(TEXTS)]
    for index, answer in enumerate(expected):
        got = {key: value for key, value in rows[f"c{index}"].items() if key != "id"}
        assert got["text"] == answer["text"] and got["code"] == answer["code"]
        assert [code["code"] for code in got["ranked"]] == [code["code"] for code in answer["ranked"]]
        assert [code["confidence"] for code in got["ranked"]] == pytest.approx(
            [code["confidence"] for code in answer["ranked"]], abs=1e-5)
    dead = [json.loads(line) for line in (tmp_path / "out" / "answers.jsonl.deadletter.jsonl").read_text().splitlines()]
    assert len(dead) == 1 and dead[0]["at"] == f"line {len(TEXTS) + 2}" and "fields" in dead[0]["reason"]


def test_batch_mistakes_are_user_errors(tiny_run, tmp_path, capsys):
    for argv, message in (([str(tiny_run["version"]), "--input", f"csv:{tmp_path}/none.csv", "--output",
                            str(tmp_path / "o.jsonl")], "no such file"),
                          ([str(tiny_run["version"]), "--input", "csv:x.csv"], "needs --input SOURCE and --output"),
                          ([str(tmp_path), "--input", "csv:x.csv", "--output", "o.jsonl"], "not an export")):
        with pytest.raises(SystemExit) as exit_info:
            predict.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
