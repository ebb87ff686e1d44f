import pytest

from tfnlp.bench.scale import CONFIGURATIONS, seconds_per_step, table
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


def test_the_table_sets_each_configuration_against_the_first():
    lines = table([("default", 1, 200.0), ("multiworker (two local workers)", 2, 50.0)]).splitlines()
    assert lines[2] == "| default | 1 | 200 | 1.00x |"
    assert lines[3] == "| multiworker (two local workers) | 2 | 50 | 0.25x |"


def test_each_configuration_is_a_setting_train_accepts():
    from tfnlp import experiments

    for _, overrides, _ in CONFIGURATIONS:
        experiments.configure("icd10_chapter_lstm", tiny=True, overrides=overrides)  # a refused one raises
