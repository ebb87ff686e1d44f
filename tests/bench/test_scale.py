import pytest

from tfnlp.bench.scale import CONFIGURATIONS, seconds_per_step
from tfnlp.errors import UserError

KERAS_LOG = """Epoch 1/2
15/15 - 9s - 604ms/step - accuracy: 0.06 - loss: 3.25 - val_accuracy: 0.10
Epoch 2/2
15/15 - 1s - 41ms/step - accuracy: 0.12 - loss: 3.10 - val_accuracy: 0.12
"""


def test_the_last_epochs_step_time_is_read_from_the_keras_log():
    assert seconds_per_step(KERAS_LOG) == pytest.approx(0.041)
    assert seconds_per_step("120/120 - 250s - 2s/step - loss: 1.0\n") == pytest.approx(2.0)
    with pytest.raises(UserError, match="no per-step time"):
        seconds_per_step("exported: x")


def test_the_bench_compares_every_strategy_and_precision():
    rows = {name: (overrides, workers) for name, overrides, workers in CONFIGURATIONS}
    assert rows["multiworker (two local workers)"] == (("train.strategy=multiworker",), 2)
    assert {override for overrides, _ in rows.values() for override in overrides} >= {
        "train.strategy=default", "train.strategy=mirrored", "train.precision=mixed_float16",
        "train.precision=mixed_bfloat16"}
