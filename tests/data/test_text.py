import numpy as np
import tensorflow as tf

from tfnlp.data import text


def test_standardize_lowercases_any_script_and_drops_punctuation():
    out = text.standardize(tf.constant(["ÉCHEC Cardiaque, aiguë (I50.0)", "  ", "Ωμέγα!"]))
    assert [s.decode() for s in out.numpy()] == ["échec cardiaque aiguë i50 0", "", "ωμέγα"]


def test_features_agree_eagerly_and_inside_dataset_map():
    texts = tf.constant(["Fièvre typhoïde", "", "a b c d e"])
    eager = text.subword_ids(text.split_words(texts, 4), buckets=100)
    mapped = next(iter(tf.data.Dataset.from_tensors(texts).map(
        lambda batch: text.subword_ids(text.split_words(batch, 4), buckets=100).to_tensor())))
    np.testing.assert_array_equal(eager.to_tensor().numpy(), mapped.numpy())
    assert eager.shape[0] == 3 and eager[1].shape[0] == 0 and eager[2].shape[0] == 4  # cut to 4 words
    values = eager.flat_values.numpy()
    assert values.min() >= 1 and values.max() <= 100  # 0 stays free for padding
