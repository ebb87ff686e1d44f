import html

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import assert_picture
from tfnlp import attention

TEXTS = ["Choléra à Vibrio cholerae", "Asthme", "", "mot inconnu zzqx"]


def test_alignments_keep_real_positions_and_rows_sum_to_one(tiny_run):
    outputs = attention.predict_local(tiny_run["version"], TEXTS)
    alignments = attention.alignments_from_outputs(TEXTS, outputs)
    assert alignments[0].input_tokens == ["choléra", "à", "vibrio", "cholerae"]
    # An empty text reads no word and is not answered: no code, no output token.
    assert alignments[2].input_tokens == alignments[2].output_tokens == [] and alignments[2].code == ""
    for alignment in alignments:
        assert not alignment.input_tokens or alignment.output_tokens[-1] == "</s>" or len(alignment.output_tokens) == 7
        assert alignment.attention.shape == (len(alignment.output_tokens), len(alignment.input_tokens))
        if alignment.input_tokens:
            np.testing.assert_allclose(alignment.attention.sum(axis=1), 1.0, rtol=1e-5)
        assert alignment.code == "".join(t for t in alignment.output_tokens if t != "</s>")


def test_cli_writes_heatmaps_html_and_reports_strongest_words(tiny_run, tmp_path, capsys):
    png, page = tmp_path / "heatmap.png", tmp_path / "page.html"
    assert attention.main([str(tiny_run["version"]), TEXTS[0], "-o", str(png), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert_picture(png)
    answer = attention.alignments_from_outputs(TEXTS[:1], attention.predict_local(tiny_run["version"], TEXTS[:1]))[0]
    assert answer.label and answer.confidence is not None  # the export's label and calibrated confidence
    assert "data:image/png;base64," in page.read_text() and "choléra" in page.read_text()
    assert html.escape(answer.label) in page.read_text() and answer.label in out and "confidence" in out
    assert "<- " in out and f"heatmap: {png}" in out


def test_cli_takes_a_file_of_texts_and_a_model_name(tiny_run, tmp_path, capsys):
    listing = tmp_path / "texts.txt"
    listing.write_text("Asthme\nFièvre typhoïde\n", encoding="utf-8")
    base = str(tiny_run["export_base"])
    assert attention.main(["icd10_seq2seq", "--export_base", base, "--file", str(listing),
                           "-o", str(tmp_path / "h.png")]) == 0
    single = [assert_picture(tmp_path / f"h-{index}.png") for index in (1, 2)]
    assert attention.main(["icd10_seq2seq", "--export_base", base, "--file", str(listing), "--grid",
                           "-o", str(tmp_path / "grid.png")]) == 0
    grid = assert_picture(tmp_path / "grid.png")
    assert grid.shape[1] > max(picture.shape[1] for picture in single)  # two panels side by side


class NoAttention(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        return {"label": text}


def test_bad_models_and_inputs_exit_2_with_a_reason(tiny_run, tmp_path, capsys):
    plain = tmp_path / "plain" / "1"
    tf.saved_model.save(NoAttention(), str(plain), signatures={"serving_default": NoAttention().serve})
    cases = [
        ([str(plain), "x"], "has no attention, input_tokens, output_tokens, code, score output"),
        (["nope", "x", "--export_base", str(tiny_run["export_base"])], "no model 'nope'"),
        ([str(tmp_path), "x"], "neither a SavedModel"),
        ([str(tiny_run["version"])], "give a text, or --file"),
        ([str(tiny_run["version"]), "--file", str(tmp_path / "missing.txt")], "no such file"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            attention.main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_a_text_with_nothing_to_read_is_reported_without_a_code(tiny_run, tmp_path, capsys):
    png = tmp_path / "blank.png"
    assert attention.main([str(tiny_run["version"]), "!!!", "-o", str(png)]) == 0
    out = capsys.readouterr().out
    assert "!!!" in out and "-> no answer" in out and "<- " not in out  # no character decoded: none attends
    assert_picture(png, min_width=100, min_height=100)
