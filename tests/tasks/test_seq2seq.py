import dataclasses
from collections import Counter

import keras
import numpy as np
import tensorflow as tf

from tfnlp.data.icd10 import category
from tfnlp.data.records import Record
from tfnlp.data.vocabulary import Vocabulary
from tfnlp.model_settings import Seq2SeqCoderSettings
from tfnlp.models.decoding import CodeTrie, PrefixPrior, beam_search, rank_within_group, select
from tfnlp.models.seq2seq import END, START, char_seq2seq
from tfnlp.tasks.seq2seq_inputs import Seq2SeqPreprocessor

TRAIN = [Record("Choléra à Vibrio", "A000"), Record("Fièvre typhoïde", "A010"), Record("Asthme", "J45"),
         Record("Diabète sucré de type 2", "E119"), Record("Hypertension essentielle", "I10")]
CLASSIFICATION = ["A000", "A001", "A00", "A010", "J45", "J450", "E119", "I10", "Z99"]
CONFIG = Seq2SeqCoderSettings(vocab_size=50, embedding_dim=8, subword_buckets=40, units=4, decoder_units=8,
                     char_embedding_dim=4, attention_units=4, dropout=0.0, max_output_length=0)


def preprocessor():
    return Seq2SeqPreprocessor.adapt(TRAIN, CLASSIFICATION, CONFIG)


def test_alphabet_and_teacher_forcing_sequences():
    pre = preprocessor()
    assert pre.alphabet.tokens[:3] == ("", "<s>", "</s>") and "Z" in pre.alphabet.tokens
    assert pre.decoder_length == 5  # longest code (4) + end
    decoder_input, target = pre.encode_codes(["J45"])
    ids = pre.alphabet.ids("J45").tolist()
    assert decoder_input.tolist() == [[START] + ids + [0]]
    assert target.tolist() == [ids + [END, 0]]


def test_inputs_keep_at_least_one_position_and_match_the_input_tokens():
    pre = preprocessor()
    texts = tf.constant(["", "   ", "mot inconnu", "Asthme " * 100])
    inputs = pre.encode_texts(texts)
    tokens = pre.input_tokens(texts).numpy()
    assert inputs["token_ids"].shape[1] == tokens.shape[1] == CONFIG.max_input_tokens
    assert inputs["subword_ids"].shape[:2] == inputs["token_ids"].shape
    assert inputs["token_ids"].numpy()[0].tolist() == [0] * CONFIG.max_input_tokens  # empty: all padding
    assert inputs["token_ids"].numpy()[2, :2].tolist() == [1, 1]  # unknown words -> OOV id 1
    small = pre.encode_texts(tf.constant(["", ""]))
    assert small["token_ids"].shape == (2, 1) and small["subword_ids"].shape == (2, 1, 1)


def trie_codes(trie: CodeTrie, alphabet: Vocabulary, node=0, prefix=""):
    """Every code the trie lets a decoder write (walked in Python)."""
    codes = {prefix} if trie.allowed[node, END] else set()
    for token in np.flatnonzero(trie.allowed[node]):
        if token != END:
            codes |= trie_codes(trie, alphabet, int(trie.next_node[node, token]), prefix + alphabet.tokens[token])
    return codes


def test_the_trie_allows_exactly_the_classification():
    alphabet = preprocessor().alphabet
    assert trie_codes(CodeTrie.from_codes(CLASSIFICATION, alphabet), alphabet) == set(CLASSIFICATION)


def decode(model, pre, trie, texts, beam_size):
    hypotheses = beam_search(model, pre.encode_texts(tf.constant(texts)), tf.constant(trie.allowed),
                             tf.constant(trie.next_node), pre.decoder_length, beam_size)
    assert hypotheses["tokens"].shape[:2] == (len(texts), beam_size)
    out = select(hypotheses, hypotheses["log_prob"])
    codes = ["".join(pre.alphabet.tokens[t] for t in row if t > END) for row in out["tokens"].numpy()]
    return codes, out


def test_constrained_decoding_never_writes_an_unknown_code_even_untrained():
    pre = preprocessor()
    trie = CodeTrie.from_codes(CLASSIFICATION, pre.alphabet)
    texts = [r.text for r in TRAIN] + ["", "漢字", "quelque chose d'autre " * 50]
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        model = char_seq2seq(CONFIG, pre.vectorizer.vocabulary_size(), len(pre.alphabet))
        for beam_size in (1, 3):
            codes, out = decode(model, pre, trie, texts, beam_size)
            assert set(codes) <= set(CLASSIFICATION)
            assert out["attention"].shape[:2] == (len(texts), pre.decoder_length)


def teacher_forced_log_prob(model, pre, texts, tokens):
    """Sum of the model's step log-probabilities of `tokens` [B, S], teacher-forced, up to the first end token."""
    inputs = pre.encode_texts(tf.constant(texts))
    inputs["decoder_input"] = tf.constant(np.concatenate([np.full((len(texts), 1), START), tokens[:, :-1]], axis=1))
    step_log_probs = tf.nn.log_softmax(model(inputs, training=False)["chars"]).numpy()
    chosen = np.take_along_axis(step_log_probs, tokens[:, :, None], axis=-1)[:, :, 0]
    real = np.cumsum(tokens == END, axis=1) - (tokens == END) == 0  # steps up to and including the first end
    return (chosen * real).sum(axis=1)


def test_prefixes_anchor_every_node_to_its_first_three_characters():
    pre = preprocessor()
    trie = CodeTrie.from_codes(CLASSIFICATION, pre.alphabet)
    anchor, prefixes = trie.prefixes(pre.alphabet, 3)
    assert prefixes[0] == "" and sorted(prefixes[1:]) == sorted({code[:n] for code in CLASSIFICATION
                                                                 for n in (1, 2, 3)})
    # Walk each code: the node after its i-th character anchors to its prefix cut to 3 characters.
    index = {character: i for i, character in enumerate(pre.alphabet.tokens)}
    for code in CLASSIFICATION:
        node = 0
        for length, character in enumerate(code, start=1):
            node = trie.next_node[node, index[character]]
            assert prefixes[anchor[node]] == code[:min(length, 3)]


def test_a_prefix_prior_gives_each_prefix_the_mass_of_its_categories():
    prefixes = ["", "A", "A0", "A00", "A01", "J", "J4", "J45", "Z", "Z9", "Z99"]
    prior = PrefixPrior(prefixes, ["A00", "A01", "J45"], floor=1e-6)
    probs = np.array([[0.5, 0.2, 0.3]], np.float32)
    out = np.exp(prior(tf.math.log(tf.constant(probs))).numpy()[0])
    expected = [1.0, 0.7, 0.7, 0.5, 0.2, 0.3, 0.3, 0.3, 1e-6, 1e-6, 1e-6]
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_a_strong_category_prior_steers_the_beam_and_leaves_the_decoder_score_alone():
    pre = preprocessor()
    trie = CodeTrie.from_codes(CLASSIFICATION, pre.alphabet)
    anchor, prefixes = trie.prefixes(pre.alphabet, 3)
    keras.utils.set_random_seed(5)
    model = char_seq2seq(CONFIG, pre.vectorizer.vocabulary_size(), len(pre.alphabet))
    texts = [r.text for r in TRAIN]
    inputs = pre.encode_texts(tf.constant(texts))
    plain = beam_search(model, inputs, tf.constant(trie.allowed), tf.constant(trie.next_node), pre.decoder_length, 3)
    np.testing.assert_allclose(plain["search_score"].numpy(), plain["log_prob"].numpy(), atol=1e-5)
    categories = ["A00", "A01", "E11", "I10", "J45", "Z99"]
    wanted = ["J45", "Z99", "A01", "E11", "A00"]  # one category per text, unlike what an untrained model writes
    target = np.full((len(texts), len(categories)), 1e-4, np.float32)
    for row, name in enumerate(wanted):
        target[row, categories.index(name)] = 1.0
    category_prior = PrefixPrior(prefixes, categories)
    steered = beam_search(model, inputs, tf.constant(trie.allowed), tf.constant(trie.next_node), pre.decoder_length,
                          3, prior=lambda outputs, mask: 50.0 * category_prior(tf.math.log(target)),
                          anchor=tf.constant(anchor))
    best = select(steered, steered["search_score"])
    codes = ["".join(pre.alphabet.tokens[t] for t in row if t > END) for row in best["tokens"].numpy()]
    assert [code[:3] for code in codes] == wanted
    # The reported log-probability is the decoder's own: teacher-forcing the chosen codes gives the same sum.
    np.testing.assert_allclose(teacher_forced_log_prob(model, pre, texts, best["tokens"].numpy()),
                               best["log_prob"].numpy(), atol=1e-4)


def test_a_limit_per_category_spreads_the_beam_over_categories_and_keeps_the_best():
    # Many codes in few categories: an untrained beam of 6 fills up with siblings.
    codes = [f"{category}{digit}" for category in ("A00", "A01", "J45", "E11") for digit in range(10)]
    pre = Seq2SeqPreprocessor.adapt(TRAIN, codes, CONFIG)
    trie = CodeTrie.from_codes(codes, pre.alphabet)
    anchor, _ = trie.prefixes(pre.alphabet, 3)
    keras.utils.set_random_seed(7)
    model = char_seq2seq(CONFIG, pre.vectorizer.vocabulary_size(), len(pre.alphabet))
    inputs = pre.encode_texts(tf.constant([r.text for r in TRAIN]))

    def ranked(per_category):
        found = beam_search(model, inputs, tf.constant(trie.allowed), tf.constant(trie.next_node),
                            pre.decoder_length, 6, anchor=tf.constant(anchor), per_category=per_category)
        rows = [["".join(pre.alphabet.tokens[t] for t in beam if t > END) for beam in row]
                for row in found["tokens"].numpy()]
        return rows, found["search_score"].numpy()

    free, free_scores = ranked(0)
    limited, limited_scores = ranked(2)
    assert any(max(Counter(code[:3] for code in row).values()) > 2 for row in free)
    for row in limited:
        assert max(Counter(code[:3] for code in row).values()) <= 2 and set(row) <= set(codes) and "" not in row
    assert [row[0] for row in limited] == [row[0] for row in free]  # the best hypothesis is never limited away
    np.testing.assert_allclose(limited_scores[:, 0], free_scores[:, 0], rtol=1e-6)
    assert np.all(np.diff(limited_scores, axis=1) <= 1e-6)  # still best first


def full_sort_within_category_limit(scores, node, finished, next_node, anchor, beam_offsets, beam_size, limit,
                                    limit_applies):
    """The selection every extension of every beam sorted (what the per-beam preselection must reproduce)."""
    batch, vocab = tf.shape(beam_offsets)[0], tf.shape(scores)[1]
    candidates, order = tf.math.top_k(tf.reshape(scores, [batch, beam_size * vocab]), k=beam_size * vocab)
    parent, token = order // vocab + beam_offsets, order % vocab
    reached = tf.where(tf.gather(finished, parent), tf.gather(node, parent),
                       tf.gather_nd(next_node, tf.stack([tf.gather(node, parent), token], axis=-1)))
    kept = tf.logical_or(rank_within_group(tf.gather(anchor, reached)) < limit, tf.logical_not(limit_applies))
    best, chosen = tf.math.top_k(tf.where(kept, candidates, -1e9), k=beam_size)
    return best, tf.gather(order, chosen, batch_dims=1)


def test_the_category_limit_looks_at_each_beams_best_extensions_only_and_keeps_the_same_beam(monkeypatch):
    from tfnlp.models import decoding

    codes = [f"{category}{digit}" for category in ("A00", "A01", "A02", "J45", "E11") for digit in range(10)]
    pre = Seq2SeqPreprocessor.adapt(TRAIN, codes, CONFIG)
    trie = CodeTrie.from_codes(codes, pre.alphabet)
    anchor, _ = trie.prefixes(pre.alphabet, 3)
    inputs = pre.encode_texts(tf.constant([r.text for r in TRAIN]))
    for seed in (7, 8, 9):
        keras.utils.set_random_seed(seed)
        model = char_seq2seq(CONFIG, pre.vectorizer.vocabulary_size(), len(pre.alphabet))

        def search(model=model):
            found = beam_search(model, inputs, tf.constant(trie.allowed), tf.constant(trie.next_node),
                                pre.decoder_length, 5, anchor=tf.constant(anchor), per_category=2)
            return found["tokens"].numpy(), found["search_score"].numpy()

        tokens, scores = search()
        with monkeypatch.context() as patch:
            patch.setattr(decoding, "_best_within_category_limit", full_sort_within_category_limit)
            reference_tokens, reference_scores = search()
        np.testing.assert_array_equal(tokens, reference_tokens)
        np.testing.assert_allclose(scores, reference_scores, rtol=1e-6)


def test_the_longest_code_of_a_trie_bounds_the_steps_and_an_unconstrained_trie_has_none():
    alphabet = preprocessor().alphabet
    assert CodeTrie.from_codes(CLASSIFICATION, alphabet).longest_code() == 4
    assert CodeTrie.from_codes(["J45", "I10"], alphabet).longest_code() == 3
    assert CodeTrie.unconstrained(alphabet).longest_code() is None


def test_the_export_decodes_only_the_steps_its_codes_need_and_keeps_its_output_shapes():
    from dataclasses import replace

    from tfnlp.tasks.seq2seq_serving import Seq2SeqServing

    pre = Seq2SeqPreprocessor.adapt(TRAIN, CLASSIFICATION, replace(CONFIG, max_output_length=6))
    trie = CodeTrie.from_codes(CLASSIFICATION, pre.alphabet)
    keras.utils.set_random_seed(5)
    model = char_seq2seq(CONFIG, pre.vectorizer.vocabulary_size(), len(pre.alphabet))
    short, every_step = Seq2SeqServing(pre, model, trie, 3), Seq2SeqServing(pre, model, trie, 3)
    every_step.decode_steps = pre.decoder_length
    assert (short.decode_steps, pre.decoder_length) == (5, 7)
    texts = tf.constant([r.text for r in TRAIN] + [""])
    fast, slow = short.serve(texts), every_step.serve(texts)
    assert fast["output_tokens"].shape == slow["output_tokens"].shape == (len(TRAIN) + 1, 7)
    assert fast["attention"].shape == slow["attention"].shape
    for name in ("code", "top_codes", "output_tokens"):
        np.testing.assert_array_equal(fast[name].numpy(), slow[name].numpy())
    for name in ("attention", "top_confidences"):
        np.testing.assert_allclose(fast[name].numpy(), slow[name].numpy(), atol=1e-6)
    assert short.greedy(texts)["output_tokens"].shape == (len(TRAIN) + 1, 7)  # the same decoding at width 1


def test_rank_within_group_counts_earlier_members_of_the_same_group():
    ranks = rank_within_group(tf.constant([[5, 3, 5, 5, 3, 0], [1, 1, 2, 1, 2, 2]])).numpy()
    assert ranks.tolist() == [[0, 0, 1, 2, 1, 0], [0, 1, 0, 2, 1, 2]]


def test_beam_search_scores_at_least_as_high_as_greedy():
    pre = preprocessor()
    trie = CodeTrie.unconstrained(pre.alphabet)
    keras.utils.set_random_seed(3)
    model = char_seq2seq(CONFIG, pre.vectorizer.vocabulary_size(), len(pre.alphabet))
    texts = [r.text for r in TRAIN]
    greedy_codes, greedy = decode(model, pre, trie, texts, 1)
    _, beam = decode(model, pre, trie, texts, 4)
    assert np.all(beam["log_prob"].numpy() >= greedy["log_prob"].numpy() - 1e-5)
    # The greedy log-probability is the sum of the chosen tokens' step log-probabilities, up to the end token:
    # teacher-forcing the chosen codes through the model gives the same sum.
    np.testing.assert_allclose(teacher_forced_log_prob(model, pre, texts, greedy["tokens"].numpy()),
                               greedy["log_prob"].numpy(), atol=1e-4)
    assert all(len(code) <= pre.max_output_length for code in greedy_codes)


def test_the_coders_export_ranks_labelled_codes_with_calibrated_confidences(tiny_run):
    from tests.helpers import served_in_fresh_process
    from tfnlp.data.icd10 import cim10_labels

    texts = ["Insuffisance cardiaque congestive", "Choléra", "", "zzqx"]
    out = served_in_fresh_process(tiny_run["version"], texts)
    k = 2  # the tiny coder's model.top_k
    for name in ("top_codes", "display_code", "top_labels", "top_confidences"):
        assert out["__shapes__"][name] == [len(texts), k], name
    assert out["__shapes__"]["needs_review"] == [len(texts)] and out["__dtypes__"]["needs_review"] == "bool"
    # The empty text is not answered: no code, no label, confidence 0, and a person should look.
    assert out["top_codes"][2] == out["top_labels"][2] == ["", ""] and out["code"][2] == out["label"][2] == ""
    assert out["top_confidences"][2] == [0.0, 0.0] and out["score"][2] == 0.0 and out["needs_review"][2]
    labels = cim10_labels("fr")
    answered = [index for index, text in enumerate(texts) if text]
    for codes, shown, names, confidences, best in zip(*([out[name][index] for index in answered] for name in (
            "top_codes", "display_code", "top_labels", "top_confidences", "code")), strict=True):
        assert codes[0] == best
        for code, dotted, name in zip(codes, shown, names, strict=True):
            assert name == (labels.get(code) or labels.get(category(code), "")) and name
            assert dotted == (f"{code[:3]}.{code[3:]}" if len(code) > 3 else code)
        assert all(0.0 <= c <= 1.0 for c in confidences) and confidences[0] >= confidences[1]
        assert sum(confidences) <= 1.0 + 1e-6
    assert out["label"] == [names[0] for names in out["top_labels"]]
    assert out["confidence"] == [row[0] for row in out["top_confidences"]]
    # The category's confidence: a probability, none for the text not answered (its sums and evidence: the test
    # of `category_evidence` below).
    assert out["__shapes__"]["category_confidence"] == [len(texts)]
    assert all(0.0 <= c <= 1.0 for c in out["category_confidence"]) and out["category_confidence"][2] == 0.0
    fitted = tiny_run["metrics"]["calibration"]["beam"]
    assert len(fitted["evidence_weights"]) == 3 and 0.0 <= fitted["category_ece"] <= 1.0
    review_by = out["category_confidence"] if fitted["review_by"] == "category" else out["confidence"]
    assert out["needs_review"] == [not text or c < fitted["review_threshold"] for text, c in zip(texts, review_by,
                                                                                                   strict=True)]
    greedy = served_in_fresh_process(tiny_run["version"], texts, "greedy")
    assert greedy["__shapes__"]["top_codes"] == [len(texts), 1] and greedy["top_codes"] == [[c] for c in greedy["code"]]
    calibration = tiny_run["metrics"]["calibration"]
    assert set(calibration) == {"beam", "greedy"} and calibration["beam"]["precision_of"] == "category"


def test_display_codes_dot_codes_and_leave_categories_short_codes_and_blanks():
    from tfnlp.tasks.seq2seq_serving import display_codes

    shown = display_codes(tf.constant([["I500", "I50", "", "Z9"], ["V2900XA", "A0", "J45", "E119"]])).numpy()
    assert shown.tolist() == [[b"I50.0", b"I50", b"", b"Z9"], [b"V29.00XA", b"A0", b"J45", b"E11.9"]]


def test_category_confidence_sums_the_listed_codes_of_the_best_codes_category():
    from tfnlp.tasks.seq2seq_serving import category_confidences, each_category_confidence

    codes = tf.constant([["I500", "I509", "J45"], ["J45", "I500", "J450"], ["", "", ""]])
    confidence = tf.constant([[0.5, 0.25, 0.125], [0.4, 0.3, 0.2], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(category_confidences(codes, confidence).numpy(), [0.75, 0.6, 0.0])
    # Each listed code's category: J45 and J450 share J45; no code, no confidence.
    np.testing.assert_allclose(each_category_confidence(codes, confidence).numpy(),
                               [[0.75, 0.75, 0.125], [0.6, 0.3, 0.6], [0.0, 0.0, 0.0]])


def test_the_category_confidence_combines_the_summed_confidences_with_both_category_models_evidence():
    from tfnlp.baselines import LinearTextModel
    from tfnlp.calibration import RankCalibration, combined
    from tfnlp.models.tfidf import TfidfLinear
    from tfnlp.tasks import seq2seq_serving as export

    config = dataclasses.replace(CONFIG, category_loss_weight=0.5)
    pre = Seq2SeqPreprocessor.adapt(TRAIN, CLASSIFICATION, config)
    keras.utils.set_random_seed(3)
    model = char_seq2seq(config, pre.vectorizer.vocabulary_size(), len(pre.alphabet), len(pre.categories))
    svm = LinearTextModel.categories_svm(TRAIN)
    tfidf = TfidfLinear.from_sklearn(svm.features, svm.classes, *svm.weights())
    serving = export.Seq2SeqServing(pre, model, CodeTrie.from_codes(CLASSIFICATION, pre.alphabet), 3, 0.0,
                                    export.CategoryFusion(0.5, tfidf, 0.5), export.Answers(top_k=3))
    texts = ["Choléra", "Asthme sévère", "Diabète de type 2", "Fièvre"]
    ranked = serving.ranked_scores(texts, 3)
    # The evidence: each category model's probability of each ranked code's category, computed here on its own
    # (0 for a category the model does not know).
    encoded = serving.encode(tf.constant(texts))
    head = tf.exp(export.head_log_probs(model, encoded["encoder_outputs"], encoded["mask"])).numpy()
    by_tfidf = tf.nn.softmax(tfidf.decision_function(tf.constant(texts))).numpy()

    def probability(table, classes, text, code):
        return table[text, list(classes).index(category(code))] if category(code) in classes else 0.0

    expected = [[[probability(head, pre.categories, i, code), probability(by_tfidf, tfidf.classes, i, code)]
                 for code in row] for i, row in enumerate(ranked.codes)]
    assert ranked.evidence.shape == (4, 3, 2) and any(len({category(code) for code in row}) > 1 for row in ranked.codes)
    np.testing.assert_allclose(ranked.evidence, expected, atol=1e-5)
    # The graph combines the summed confidences with it as `calibration.combined` does.
    weights, bias = (0.5, 1.5, -0.7), 0.3
    serving.set_calibration("beam", RankCalibration("none", evidence_weights=weights, evidence_bias=bias))
    out = {name: value.numpy() for name, value in serving.serve(tf.constant(texts)).items()}
    summed = export.category_confidences(tf.constant(out["top_codes"]), tf.constant(out["top_confidences"])).numpy()
    # To float32's precision: a summed confidence near 1 leaves few digits to 1 - p, whose log the log-odds read.
    np.testing.assert_allclose(out["category_confidence"],
                               combined(np.column_stack([summed, ranked.evidence[:, 0]]), weights, bias), atol=2e-4)
    # Greedy decoding reads no category model: its evidence is neutral (0.5, whose log-odds are 0).
    greedy = serving.ranked_scores(texts, 1)
    assert (greedy.evidence == 0.5).all()


def test_agreeing_category_models_let_the_review_answer_more_texts():
    from tfnlp.tasks.seq2seq import fit_rank_calibration

    # 120 texts, every best code at the same confidence, right on category for 90: the beam alone cannot tell which.
    # A category model that gives the right ones 0.9 and the wrong ones 0.2 (with some noise) can; the second listed
    # code's category (J45) is never right, and the model gives it 0.2 too.
    rng = np.random.default_rng(0)
    codes = [["I500", "J450"]] * 120
    scores = np.array([[0.0, -1.0]] * 120)
    right = np.arange(120) < 90
    truth = np.where(right, "I509", "K590").tolist()
    best = np.column_stack([np.clip(np.where(right, 0.9, 0.2) + rng.normal(0, 0.05, 120), 0.01, 0.99),
                            np.full(120, 0.5)])
    second = np.column_stack([np.clip(0.2 + rng.normal(0, 0.05, 120), 0.01, 0.99), np.full(120, 0.5)])
    evidence = np.stack([best, second], axis=1)
    alone, alone_summary = fit_rank_calibration(codes, scores, truth, "none", 0.9)
    fitted, summary = fit_rank_calibration(codes, scores, truth, "none", 0.9, evidence=evidence)
    assert alone_summary["answered"] == 0.0 and alone.evidence_weights == (1.0,)
    assert fitted.review_by == "category" and summary["answered"] >= 0.7 and summary["precision_answered"] >= 0.9
    assert fitted.evidence_weights[1] > 0 and summary["category_ece"] < summary["category_ece_summed"]


def test_listed_categories_are_each_texts_distinct_categories_with_their_summed_confidence_and_evidence():
    from tfnlp.tasks.seq2seq import listed_categories
    from tfnlp.tasks.seq2seq_serving import each_category_confidence

    codes = [["I500", "J450", "I509"], ["K590", "", ""]]
    confidences = np.array([[0.5, 0.25, 0.125], [0.75, 0.0, 0.0]])
    evidence = np.array([[[0.6, 0.7], [0.2, 0.1], [0.9, 0.9]], [[0.3, 0.4], [0.5, 0.5], [0.5, 0.5]]])

    def listed(k):
        summed = each_category_confidence(tf.constant([row[:k] for row in codes]), tf.constant(confidences[:, :k]))
        return listed_categories([row[:k] for row in codes], summed.numpy(), evidence[:, :k], ["I501", "A01"])

    rows, right = listed(3)
    # I50 sums its two codes and reads its first code's evidence; J45 its own; the empty codes list nothing.
    np.testing.assert_allclose(rows, [[0.625, 0.6, 0.7], [0.25, 0.2, 0.1], [0.75, 0.3, 0.4]])
    assert right.tolist() == [True, False, False]
    rows, right = listed(2)
    np.testing.assert_allclose(rows[0], [0.5, 0.6, 0.7])  # the third code is not listed


def test_the_review_threshold_goes_by_the_category_confidence():
    from tfnlp.tasks import ranking
    from tfnlp.tasks.seq2seq import fit_rank_calibration

    # 40 texts whose best code is a coin flip between two siblings (0.5 each): the category is right every time, the
    # code half the time; 40 whose best code's category is wrong, at a lower confidence in its category.
    sure = [["I500", "I509"]] * 40
    unsure = [["J450", "K590"]] * 40
    codes = sure + unsure
    scores = np.array([[0.0, 0.0]] * 40 + [[0.0, -0.5]] * 40)
    truth = ["I500" if index % 2 else "I509" for index in range(40)] + ["A01"] * 40
    fitted, summary = fit_rank_calibration(codes, scores, truth, "none", 0.9)
    assert summary["answered"] == 0.5 and summary["precision_answered"] == 1.0
    # By the best code's confidence alone the sure texts (0.5) would fall below the unsure ones (0.62).
    assert (fitted.review_by, summary["review_by"]) == ("category", "category") and 0.5 < fitted.threshold <= 1.0
    # The sure texts' summed confidence is 1: the graph (which clips it inside (0, 1)) still answers them.
    graph = ranking.combined(tf.constant([[1.0]]), ranking.calibration_variables("beam", fitted)).numpy()
    assert graph[0] >= fitted.threshold
    only_listed_best, _ = fit_rank_calibration(codes, scores, truth, "none", 0.9, top_k=1)
    assert only_listed_best.threshold > 1.0  # nothing reaches 0.9 by the best code's confidence alone


def test_the_review_goes_by_the_best_codes_confidence_when_its_category_says_less():
    from tfnlp.tasks.seq2seq import fit_rank_calibration

    # Every list is two siblings, so the category's confidence is the same (1) for every text, right or wrong;
    # the best code's confidence tells the 40 right texts (0.73) from the 40 wrong ones (0.5).
    codes = [["I500", "I509"]] * 80
    scores = np.array([[0.0, -1.0]] * 40 + [[0.0, 0.0]] * 40)
    truth = ["I500"] * 40 + ["A01"] * 40
    fitted, summary = fit_rank_calibration(codes, scores, truth, "none", 0.9)
    assert fitted.review_by == "best" and summary["answered"] == 0.5 and 0.5 < fitted.threshold < 0.8


def test_ranked_scores_trace_once_per_width_and_stay_out_of_the_export(tmp_path):
    from tfnlp.tasks.seq2seq_serving import Seq2SeqServing

    pre = preprocessor()
    keras.utils.set_random_seed(5)
    model = char_seq2seq(CONFIG, pre.vectorizer.vocabulary_size(), len(pre.alphabet))
    serving = Seq2SeqServing(pre, model, CodeTrie.from_codes(CLASSIFICATION, pre.alphabet), 2)
    texts = [record.text for record in TRAIN]
    first = serving.ranked_scores(texts, 2, batch_size=3)  # batches of 3 and a smaller last one
    traced = serving._ranked_functions.by_width[2].experimental_get_tracing_count()
    again = serving.ranked_scores(texts, 2)
    assert first[0] == again[0] and np.allclose(first[1], again[1])
    assert serving._ranked_functions.by_width[2].experimental_get_tracing_count() == traced
    tf.saved_model.save(serving, str(tmp_path), signatures={"serving_default": serving.serve})
    assert not hasattr(tf.saved_model.load(str(tmp_path)), "_ranked_functions")
