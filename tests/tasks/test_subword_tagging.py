"""Transformer taggers: sub-token alignment, windows, GPT-2 spacing, and tiny BERT / GPT-2 taggers end to end."""

import json

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import (
    DISEASES,
    FILLER,
    assert_lean_export,
    entities_found,
    served_in_fresh_process,
    tiny_bert_preset,
    variable_bytes,
    write_conll,
)
from tfnlp import run as run_lib
from tfnlp import train
from tfnlp.data import bpe
from tfnlp.data.conll import joined_sentence
from tfnlp.data.records import TaggedSentence
from tfnlp.errors import UserError
from tfnlp.tasks import subword_tagging
from tfnlp.tasks.subword_tagging import SubwordTokenizer, inside_tags, sentence_spacing, space_before
from tfnlp.tasks.tagging_graph import tokenize_with_offsets

VOCABULARY = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "crohn", "disease", "##s", "a",
                                  "b", "##b", *FILLER, *(word.lower() for word in DISEASES), "."]))


def bert_tokenizer(window: int, stride: int = 0) -> SubwordTokenizer:
    return SubwordTokenizer(keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True), "bert", window,
                            stride)


def windows_of(tokenizer, sentences):
    words = tf.ragged.constant([list(sentence) for sentence in sentences], dtype=tf.string)
    spaced = tf.ragged.constant([[index > 0 for index in range(len(sentence))] for sentence in sentences],
                                dtype=tf.bool)
    return tf.function(tokenizer.windows)(words, spaced)


def test_windows_cut_at_word_boundaries_and_never_overflow():
    tokenizer = bert_tokenizer(window=8)  # 6 sub-tokens a window once [CLS] and [SEP] are in
    assert (tokenizer.max_word_pieces, tokenizer.span) == (3, 4)
    windows = windows_of(tokenizer, [["the", "Crohn", "diseases", "bbbb", "x"], [], ["a"]])
    # "diseases" -> disease ##s; "bbbb" -> b ##b ##b (##b cut: 3 pieces a word); "x" -> [UNK].
    assert windows.pieces.to_list() == [[5, 6, 7, 8], [10, 11, 11, 1], [9]]
    assert windows.word_window.numpy().tolist() == [0, 0, 0, 1, 1, 2]
    assert windows.word_position.numpy().tolist() == [0, 1, 2, 0, 3, 0]
    assert windows.piece_is_first.numpy().tolist() == [True, True, True, False, True, False, False, True, True]


def test_long_texts_become_several_windows_with_every_word_once():
    tokenizer = bert_tokenizer(window=16)
    rng = np.random.default_rng(1)
    sentence = [str(word) for word in rng.choice(["the", "diseases", "bbbb", "asthma", "a"], size=200)]
    windows = windows_of(tokenizer, [sentence, ["a"]])
    room = 16 - 2
    lengths = windows.pieces.row_lengths().numpy()
    assert max(lengths) <= room and len(lengths) >= -(-sum(lengths) // room) + 1 > 10
    firsts = tf.gather(windows.pieces.flat_values, tf.where(windows.piece_is_first)[:, 0]).numpy()
    at = tf.gather_nd(windows.pieces.to_tensor(-1), tf.stack([windows.word_window, windows.word_position], 1))
    assert len(firsts) == 201 and at.numpy().tolist() == firsts.tolist()  # each word's first piece, where it says


def test_overlapping_windows_read_each_word_where_it_has_the_most_context():
    rng = np.random.default_rng(2)
    sentence = [str(word) for word in rng.choice(["the", "diseases", "bbbb", "asthma", "a"], size=200)]
    apart = windows_of(bert_tokenizer(window=16), [sentence, ["a"]])
    overlapped = windows_of(bert_tokenizer(window=16, stride=4), [sentence, ["a"]])
    tokenizer = bert_tokenizer(window=16, stride=4)  # room 14, 7 pieces a word at most: span 8, step 4
    assert (tokenizer.span, tokenizer.step) == (8, 4)
    lengths = overlapped.pieces.row_lengths().numpy()
    assert max(lengths) <= 14 and len(lengths) > 1.8 * apart.pieces.nrows().numpy()  # about twice the windows
    firsts = tf.gather(apart.pieces.flat_values, tf.where(apart.piece_is_first)[:, 0]).numpy()
    at = tf.gather_nd(overlapped.pieces.to_tensor(-1), tf.stack([overlapped.word_window,
                                                                 overlapped.word_position], 1))
    assert at.numpy().tolist() == firsts.tolist()  # each word's first piece, where it says
    # Each word is read from the window where the fewer of its pieces before it and after it is the largest.
    piece_window = overlapped.pieces.value_rowids().numpy()
    piece_word, is_first = overlapped.piece_word.numpy(), overlapped.piece_is_first.numpy()
    windows_of_word: dict[int, list[float]] = {}
    for window in range(len(lengths)):
        inside = np.flatnonzero(piece_window == window)
        for offset, piece in enumerate(inside):
            if is_first[piece]:
                size = int((piece_word[inside] == piece_word[piece]).sum())
                windows_of_word.setdefault(piece_word[piece], []).append((min(offset, len(inside) - offset - size),
                                                                         window))
    best = [max(windows_of_word[word], key=lambda pair: (pair[0], -pair[1]))[1] for word in range(201)]
    assert overlapped.word_window.numpy().tolist() == best
    assert sum(len(found) > 1 for found in windows_of_word.values()) > 150  # most words are in two windows
    same = windows_of(bert_tokenizer(window=16, stride=8), [sentence, ["a"]])  # stride = span: side by side
    assert same.pieces.to_list() == apart.pieces.to_list()
    with pytest.raises(UserError, match="model.window_stride=9"):
        bert_tokenizer(window=16, stride=9)


def test_first_sub_token_carries_the_tag_and_the_option_labels_all():
    tokenizer, tags = bert_tokenizer(window=32), ("O", "B-Disease", "I-Disease")
    words = tf.ragged.constant([["the", "crohn", "diseases"]])
    spaced = tf.ragged.constant([[False, True, True]])
    tag_ids = tf.ragged.constant([[0, 1, 2]], dtype=tf.int32)
    weights = tf.ragged.constant([[1.0, 2.0, 3.0]])
    for label_all, labels, piece_weights in ((False, [0, 1, 2, 0], [1, 2, 3, 0]), (True, [0, 1, 2, 2], [1, 2, 3, 3])):
        pieces, y, w, piece_words = tf.function(subword_tagging.training_windows)(
            tokenizer, words, spaced, tag_ids, weights, tf.constant(inside_tags(tags)), label_all)
        assert pieces.to_list() == [[5, 6, 7, 8]]
        assert y.to_list() == [labels] and w.to_list() == [piece_weights]
        assert piece_words.to_list() == [[b"the", b"crohn", b"diseases", b"diseases"]]  # each sub-token's word
    assert inside_tags(("O", "B-X", "I-X", "B-Y", "I-Y")).tolist() == [0, 2, 2, 4, 4]


def test_space_before_in_the_graph_agrees_with_the_sentences():
    texts = ["Crohn's disease (CD), ataxia-telangiectasia.", "  two  spaces"]
    tokens, starts, _ = tokenize_with_offsets(tf.constant(texts))
    in_graph = space_before(starts, tf.constant(texts)).to_list()
    sentences = [TaggedSentence(tuple(word.decode() for word in row), ("O",) * len(row), text,
                                tuple(zip(first, last, strict=True)))
                 for row, text, first, last in zip(tokens.to_list(), texts, starts.to_list(),
                                                   tokenize_with_offsets(tf.constant(texts))[2].to_list(), strict=True)]
    assert in_graph == sentence_spacing(sentences)
    assert in_graph[0][:4] == [False, False, False, True]  # Crohn ' s disease
    assert sentence_spacing([joined_sentence(["a", "b"], ["O", "O"])]) == [[False, True]]


def test_byte_level_bpe_merges_frequent_pairs_and_the_tokenizer_round_trips():
    counts = bpe.pre_split(["the disease", "the diseases", "a disease"] * 5)
    assert counts[" disease"] == 10 and counts["the"] == 10
    vocabulary, merges = bpe.learn_merges(counts, 30)
    assert vocabulary[bpe.END_OF_TEXT] == 0 and len(vocabulary) == 1 + 256 + len(merges)
    assert "Ġdisease" in vocabulary and merges[0].count(" ") == 1
    tokenizer = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=merges)
    subword = SubwordTokenizer(tokenizer, "gpt", 32)
    words = tf.ragged.constant([["the", "disease", "é"]])
    pieces = tf.function(subword.word_pieces)(words, tf.ragged.constant([[False, True, True]]))
    texts = tf.function(tokenizer.detokenize)(pieces).numpy()
    assert [text.decode() for text in texts] == ["the", " disease", " é"]  # GPT-2's word-initial space kept
    assert pieces.row_lengths().numpy().tolist()[:2] == [1, 1]


def test_a_window_without_room_is_refused():
    with pytest.raises(UserError, match="max_input_tokens=3"):
        bert_tokenizer(window=3)


# Both with -m slow, to keep the default suite near 8 minutes: the GPT-2 variant needs 8 epochs from scratch (~35 s),
# the BERT one about a minute; their BPE, windows and spacing have unit tests above, and tests/tasks/test_lora.py
# trains, exports and serves a BERT tagger through the same path in the default suite.
@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["ner_bert", "ner_gpt"])
def test_tiny_transformer_tagger_trains_exports_and_serves_entity_offsets(tmp_path, experiment):
    data = write_conll(tmp_path, count=240)
    preset = tiny_bert_preset(tmp_path / "preset", VOCABULARY, hidden_dim=32) if experiment == "ner_bert" else None
    extra = [f"model.preset={preset}"] if preset else []
    argv = [experiment, "--tiny", "--data", f"conll:{data}", "--workdir", str(tmp_path / "work"), "--export_base",
            str(tmp_path / "export"), "--set", "train.epochs=8", "train.patience=8", "train.learning_rate=0.003",
            "model.max_input_tokens=16", "model.decoder=crf", "model.window_stride=4", *extra]
    # A CRF over the words' first sub-tokens; windows that overlap (step 4 of a span of 8).
    assert train.main(argv) == 0
    metrics = json.loads((tmp_path / "work" / run_lib.METRICS_FILE).read_text())
    assert metrics["test"]["model"]["entity_f1"] >= 0.8 and "model_argmax" in metrics["test"]
    # A text of many windows (16 sub-tokens each): the entity near its end is still found, at its offsets.
    long_text = " ".join(["the patient was treated today ."] * 12) + " The patient has asthma today."
    texts = ["The patient has severe Crohn disease today.", "", long_text]
    out = served_in_fresh_process(tmp_path / "export" / experiment / "1", texts)
    found = entities_found(texts, out)
    assert ("Crohn disease", "Disease", "Crohn disease") in found
    assert ("asthma", "Disease", "asthma") in found and long_text.index("asthma") in out["entity_start"][2]
    assert all(sliced == entity for sliced, _, entity in found)
    assert out["tags"][1] == [""] * len(out["tags"][1]) and out["tokens"][2][-2:] == ["today", "."]
    assert_lean_export(tmp_path / "export" / experiment / "1", metrics)


def test_a_frozen_bert_tagger_with_word_features_and_a_bilstm_trains_and_its_export_reads_raw_text_alone(tmp_path):
    data = write_conll(tmp_path, count=80)
    preset = tiny_bert_preset(tmp_path / "preset", VOCABULARY, hidden_dim=16)
    vectors = tmp_path / "vectors.txt"  # GloVe's text form; "crohn" is a training word, "colitis" is not
    vectors.write_text("crohn 0.5 -0.5 0.25\ndisease 0.1 0.2 0.3\ncolitis -0.2 0.4 0.1\n")
    argv = ["ner_bert", "--tiny", "--data", f"conll:{data}", "--workdir", str(tmp_path / "work"), "--export_base",
            str(tmp_path / "export"), "--set", "train.baselines=false", f"model.preset={preset}",
            "model.max_input_tokens=16", "model.char_filters=8", "model.char_embedding_dim=4",
            f"model.vectors={vectors}", "model.lstm_units=4", "model.freeze_backbone=true", "model.backbone_layers=2",
            "model.decoder=crf", "train.learning_rate=0.003"]  # ner_bert's defaults, shrunk
    assert train.main(argv) == 0
    export = tmp_path / "export" / "ner_bert" / "1"
    loaded = tf.saved_model.load(str(export))
    signature = loaded.signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["text"]  # the words are cut in the graph
    assert any("/convolution/" in name for name in variable_bytes(export)), "no character CNN in the export"
    assert any("/backward_layer/" in name for name in variable_bytes(export)), "no BiLSTM in the export"
    reader = tf.train.load_checkpoint(str(export / "variables" / "variables"))
    tables = [reader.get_tensor(name) for name, shape in reader.get_variable_to_shape_map().items()
              if name.endswith("_embeddings/.ATTRIBUTES/VARIABLE_VALUE") and shape[1:] == [3]]
    # A word of the vectors that no training text holds keeps its pretrained vector (its gradient is always 0).
    assert len(tables) == 1 and np.isclose(tables[0], [-0.2, 0.4, 0.1], atol=1e-3).all(axis=1).any()
    # The frozen backbone is exported as the preset holds it.
    pretrained = keras_hub.models.BertBackbone.from_preset(str(preset)).token_embedding.embeddings.numpy()
    exported = [reader.get_tensor(name) for name, shape in reader.get_variable_to_shape_map().items()
                if shape == list(pretrained.shape)]
    assert len(exported) == 1 and np.array_equal(exported[0], pretrained)
    texts = ["The patient has severe Crohn disease today.", "", " ".join(["the patient was treated ."] * 8)]
    out = signature(text=tf.constant(texts))
    assert out["tags"].shape[0] == 3 and out["entity_start"].shape[0] == 3
    assert not any(out["tags"].numpy()[1])  # nothing to tag in the empty text


@pytest.mark.parametrize("experiment", ["ner_bert", "ner_gpt"])
def test_a_missing_preset_folder_is_a_clear_error(tmp_path, capsys, experiment):
    with pytest.raises(SystemExit):
        train.main([experiment, "--tiny", "--workdir", str(tmp_path), "--set", f"model.preset={tmp_path}/nowhere"])
    assert f"model.preset={tmp_path}/nowhere: no such folder" in capsys.readouterr().err
