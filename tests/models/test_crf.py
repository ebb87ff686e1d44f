"""Structured tag decoding against brute-force enumeration: Viterbi, BIO2 constraints, the CRF's likelihood."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfnlp.config import apply_overrides, validate
from tfnlp.data.conll import to_bio2
from tfnlp.errors import UserError
from tfnlp.experiments import get
from tfnlp.model_settings import BiLSTMTaggerSettings
from tfnlp.models import crf
from tfnlp.models.taggers import bilstm_tagger
from tfnlp.tasks.tagging import TaggerServing

TAGS = ["O", "B-Disease", "I-Disease", "B-Chemical", "I-Chemical"]


def path_score(emissions, transitions, start, end, path):
    if not path:
        return 0.0
    inner = sum(transitions[a, b] for a, b in itertools.pairwise(path))
    return start[path[0]] + end[path[-1]] + sum(emissions[t, tag] for t, tag in enumerate(path)) + inner


def allowed_paths(allowed, length):
    count = allowed.shape[0] - 1
    for path in itertools.product(range(count), repeat=length):
        if length == 0 or (allowed[count, path[0]] and all(allowed[a, b] for a, b in itertools.pairwise(path))):
            yield path


def random_crf(rng, batch=4, steps=4):
    count = len(TAGS)
    emissions = rng.normal(size=(batch, steps, count)).astype(np.float32)
    return (emissions, rng.normal(size=(count, count)).astype(np.float32), rng.normal(size=count).astype(np.float32),
            rng.normal(size=count).astype(np.float32))


def test_bio2_allows_inside_tags_only_after_their_own_type():
    allowed = crf.bio_allowed(TAGS)
    start = len(TAGS)
    assert not allowed[start, TAGS.index("I-Disease")] and allowed[start, TAGS.index("B-Disease")]
    assert not allowed[TAGS.index("O"), TAGS.index("I-Disease")]
    assert not allowed[TAGS.index("B-Chemical"), TAGS.index("I-Disease")]
    assert allowed[TAGS.index("B-Disease"), TAGS.index("I-Disease")] and allowed[:, start].all()


def test_viterbi_is_the_best_allowed_path_by_enumeration():
    rng = np.random.default_rng(0)
    allowed = crf.bio_allowed(TAGS)
    for _ in range(5):
        emissions, transitions, start, end = random_crf(rng)
        lengths = np.array([4, 3, 1, 0])
        weights = crf.full_transitions(tf.constant(transitions), tf.constant(start), tf.constant(end))
        best = crf.viterbi(emissions, lengths, allowed, weights).numpy()
        for row, length in enumerate(lengths):
            expected = max(allowed_paths(allowed, length),
                           key=lambda path, row=row: path_score(emissions[row], transitions, start, end, path))
            assert tuple(best[row, :length]) == expected and not best[row, length:].any()


def test_sequence_log_likelihood_matches_enumeration():
    rng = np.random.default_rng(1)
    emissions, transitions, start, end = random_crf(rng, steps=3)
    gold = rng.integers(0, len(TAGS), size=(4, 3))
    lengths = np.array([3, 2, 1, 0])
    computed = crf.sequence_log_likelihood(emissions, gold, lengths, transitions, start, end).numpy()
    for row, length in enumerate(lengths):
        scores = [path_score(emissions[row], transitions, start, end, path)
                  for path in itertools.product(range(len(TAGS)), repeat=length)]
        expected = path_score(emissions[row], transitions, start, end, tuple(gold[row, :length])) - (
            np.logaddexp.reduce(scores) if length else 0.0)
        assert computed[row] == pytest.approx(expected, abs=1e-4)


def test_the_crf_layer_skips_masked_steps_as_if_they_were_not_there():
    rng = np.random.default_rng(2)
    layer = crf.CRF(TAGS)
    layer.transitions.assign(rng.normal(size=(5, 5)))
    emissions = rng.normal(size=(1, 5, 5)).astype(np.float32)
    tags = np.array([[1, 0, 2, 0, 0]])
    mask = np.array([[True, False, True, True, False]])  # a word tagger's first sub-tokens
    gapped = layer.log_likelihood(emissions, tags, mask).numpy()
    closed = layer.log_likelihood(emissions[:, [0, 2, 3]], tags[:, [0, 2, 3]], np.ones((1, 3), bool)).numpy()
    assert gapped == pytest.approx(closed, abs=1e-5)


def serving_of(decoder: str) -> TaggerServing:
    config = apply_overrides(get("ner_bilstm", tiny=True), [f"model.decoder={decoder}"]).model
    return TaggerServing(bilstm_tagger(config, ["the"], TAGS), TAGS, decoder=decoder)


@pytest.mark.parametrize("decoder", ["constrained", "crf"])
def test_structured_decoders_never_emit_an_ill_formed_sequence(decoder):
    rng = np.random.default_rng(3)
    serving = serving_of(decoder)
    if decoder == "crf":  # learnt transitions that favour ill-formed moves must not win
        serving.crf.transitions.assign(rng.normal(scale=5.0, size=(5, 5)))
    for _ in range(20):
        scores = tf.nn.softmax(rng.normal(scale=3.0, size=(8, 7, 5)).astype(np.float32))
        lengths = rng.integers(0, 8, size=8)
        ids = serving.decode(scores, lengths).numpy()
        decoded = [[TAGS[i] for i in row[:length]] for row, length in zip(ids, lengths, strict=True)]
        assert all(to_bio2(tags)[1] == 0 for tags in decoded)  # nothing to repair: well-formed BIO2
    argmax = serving_of("argmax").decode(tf.constant([[[0.1, 0.1, 0.8, 0.0, 0.0]]]), tf.constant([1])).numpy()
    assert argmax.tolist() == [[2]]  # argmax reads I- after the start as it comes


def test_constrained_decoding_keeps_the_most_probable_well_formed_sequence():
    probabilities = np.array([[[0.1, 0.5, 0.0, 0.4, 0.0], [0.1, 0.0, 0.2, 0.0, 0.7]]], np.float32)
    # argmax: B-Disease I-Chemical (ill-formed); constrained: B-Chemical I-Chemical (0.4 x 0.7 > 0.5 x 0.2).
    ids = serving_of("constrained").decode(tf.constant(probabilities), tf.constant([2])).numpy()
    assert [TAGS[i] for i in ids[0]] == ["B-Chemical", "I-Chemical"]


def test_decoder_settings_are_checked():
    for overrides, message in ((["model.decoder=beam"], "model.decoder='beam'"),
                               (["model.decoder=crf", "train.loss=focal"], "train.loss=focal"),
                               (["model.decoder=crf", "model.label_all_subtokens=true"], "label_all_subtokens")):
        with pytest.raises(UserError, match=message):
            validate(apply_overrides(get("ner_bilstm", tiny=True), overrides))
    model = bilstm_tagger(BiLSTMTaggerSettings(decoder="argmax", char_filters=0), ["the"], TAGS)
    with pytest.raises(UserError, match="does not match the model"):
        TaggerServing(model, TAGS, decoder="crf")
    with_crf = bilstm_tagger(BiLSTMTaggerSettings(decoder="crf", char_filters=0), ["the"], TAGS)
    assert isinstance(crf.decoder_layer(with_crf), keras.layers.Layer)


def test_span_marginals_from_forward_backward_equal_brute_force_enumeration():
    rng = np.random.default_rng(3)
    tags, steps = 3, 4
    emissions = rng.normal(size=(2, steps, tags)).astype("float32")
    transitions, start, end = (rng.normal(size=shape).astype("float32") for shape in ((tags, tags), (tags,), (tags,)))
    lengths = np.array([4, 3])
    path = np.array([[2, 0, 1, 1], [1, 2, 0, 0]])
    first, inner, last = (value.numpy() for value in crf.span_log_scores(
        tf.constant(emissions), tf.constant(path), tf.constant(lengths), tf.constant(transitions), tf.constant(start),
        tf.constant(end)))
    def score(row, sequence):
        emitted = sum(emissions[row, t, tag] for t, tag in enumerate(sequence))
        moved = sum(transitions[a, b] for a, b in zip(sequence, sequence[1:], strict=False))
        return start[sequence[0]] + end[sequence[-1]] + emitted + moved

    for row, length in enumerate(lengths):
        paths = list(itertools.product(range(tags), repeat=int(length)))
        weights = np.exp([score(row, sequence) for sequence in paths])
        for begin in range(length):
            for stop in range(begin, length):
                wanted = tuple(path[row, begin:stop + 1])
                marginal = weights[[sequence[begin:stop + 1] == wanted for sequence in paths]].sum() / weights.sum()
                computed = first[row, begin] + inner[row, begin + 1:stop + 1].sum() + last[row, stop]
                assert np.exp(computed) == pytest.approx(marginal, rel=1e-4)
