import keras
import pytest
import tensorflow as tf

from tfnlp.tasks.base import epoch_shuffle


def order(dataset: tf.data.Dataset) -> list[int]:
    return [int(value) for value in dataset]


@pytest.mark.parametrize("seed", [0, 1234])
def test_each_epoch_has_its_own_order_and_the_same_seed_repeats_it(seed):
    keras.utils.set_random_seed(seed)  # the global seed a run sets (train.seed=0 crashed tf.data's shuffle)
    try:
        epoch = tf.Variable(0, dtype=tf.int64)
        shuffled = epoch_shuffle(tf.data.Dataset.range(50), 50, 50, seed, epoch)
        first = order(shuffled)
        epoch.assign(1)
        second = order(shuffled)
        assert sorted(first) == sorted(second) == list(range(50)) and first != second
        epoch.assign(0)
        assert order(shuffled) == first  # a resumed run reshuffles epoch 0 as the first run did
    finally:
        tf.random.set_seed(None)
