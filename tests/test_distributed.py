"""Training under tf.distribute strategies: two worker processes on 127.0.0.1, mixed precision, accumulation."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import served_in_fresh_process
from tfnlp.bench.scale import train_processes
from tfnlp.config import TrainConfig
from tfnlp.run import Run
from tfnlp.tasks.base import WarmupDecay, learning_rate, make_optimizer


@pytest.mark.slow  # about 45 s (two TensorFlow processes); `python -m tfnlp.bench scale` trains on two workers too
def test_two_workers_train_together_and_only_the_chief_exports(tmp_path):
    workdir, export_base = tmp_path / "work", tmp_path / "export"
    outputs = train_processes(["icd10_chapter_lstm", "--tiny", "--set", "train.strategy=multiworker", "--workdir",
                               str(workdir), "--export_base", str(export_base)], workers=2)
    version = export_base / "icd10_chapter_lstm" / "1"
    assert outputs[0].strip().splitlines()[-1] == f"exported: {version}"
    assert "trained (a worker" in outputs[1] and "exported:" not in outputs[1]
    assert sorted(path.name for path in (export_base / "icd10_chapter_lstm").iterdir()) == ["1"]
    # Each of the 480 training texts is read once an epoch: 15 global batches of 32 (16 texts per worker), and both
    # workers take exactly those steps.
    finished = Run.load(workdir)
    assert finished.sizes["train"] == 480 and len(finished.history["loss"]) == 1
    assert [re.findall(r"^(\d+)/(\d+) ", output, re.MULTILINE)[-1] for output in outputs] == [("15", "15")] * 2
    assert not (workdir / "backup").exists()
    # The chief's export answers the test examples as the run predicted them.
    examples = finished.examples
    out = served_in_fresh_process(version, [example["text"] for example in examples])
    assert out["label"] == [example["predicted"] for example in examples]


def test_multiworker_without_a_cluster_is_a_user_error(capsys, monkeypatch):
    from tfnlp import train

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["icd10_chapter_lstm", "--tiny", "--set", "train.strategy=multiworker"])
    assert exit_info.value.code == 2 and "TF_CONFIG" in capsys.readouterr().err


def test_xla_is_refused_clearly_for_a_model_that_reads_strings(tmp_path, capsys):
    from tfnlp import train

    with pytest.raises(SystemExit) as exit_info:
        train.main(["icd10_chapter_lstm", "--tiny", "--set", "train.jit_compile=true", "--workdir", str(tmp_path)])
    assert exit_info.value.code == 2 and "which XLA cannot compile" in capsys.readouterr().err


@pytest.mark.slow  # about 20 s; `python -m tfnlp.bench scale` trains under both mixed policies too
def test_a_mixed_float16_run_exports_float32_outputs(tmp_path):
    from tfnlp import train

    assert train.main(["icd10_chapter_lstm", "--tiny", "--set", "train.precision=mixed_float16", "--workdir",
                       str(tmp_path / "w"), "--export_base", str(tmp_path / "e")]) == 0
    assert keras.mixed_precision.global_policy().name == "float32"  # put back after the run
    out = served_in_fresh_process(tmp_path / "e" / "icd10_chapter_lstm" / "1", ["Asthme", "Choléra"])
    assert out["__dtypes__"]["probabilities"] == "float32" and out["__dtypes__"]["score"] == "float32"


def tiny_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(1)])
    return model


def test_k_accumulated_batches_of_b_make_the_update_of_one_batch_of_k_times_b():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 1)).astype("float32")
    train = TrainConfig(epochs=1, learning_rate=0.05, lr_schedule="constant")
    weights = []
    for accumulation, batch in ((4, 2), (1, 8)):
        model = tiny_model(7)
        optimizer = make_optimizer(TrainConfig(**{**train.__dict__, "grad_accum_steps": accumulation}), 4)
        model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
        weights.append(model.get_weights())
    initial = tiny_model(7).get_weights()
    for accumulated, whole, start in zip(*weights, initial, strict=True):
        assert not np.allclose(whole, start)  # one real update happened
        np.testing.assert_allclose(accumulated, whole, atol=1e-5)


def test_schedules_warm_up_then_decay_and_weight_decay_picks_adamw():
    train = TrainConfig(epochs=2, learning_rate=1.0, lr_final_fraction=0.0, warmup_steps=10, lr_schedule="linear")
    schedule = learning_rate(train, 50)
    assert isinstance(schedule, WarmupDecay)
    values = [float(schedule(step)) for step in (0, 4, 9, 10, 55, 99)]
    assert values == pytest.approx([0.1, 0.5, 1.0, 1.0, 0.5, 0.0111], abs=1e-3)
    cosine = learning_rate(TrainConfig(epochs=1, learning_rate=1.0, warmup_fraction=0.5), 10)
    assert float(cosine(2)) == pytest.approx(0.6) and float(cosine(9)) < float(cosine(6)) < 1.0
    constant = learning_rate(TrainConfig(epochs=1, learning_rate=0.3, lr_schedule="constant"), 10)
    assert [float(constant(step)) for step in (0, 5, 9)] == pytest.approx([0.3] * 3)
    assert isinstance(make_optimizer(TrainConfig(weight_decay=0.01), 10), keras.optimizers.AdamW)
    assert make_optimizer(TrainConfig(grad_accum_steps=3), 10).gradient_accumulation_steps == 3
    # Accumulating k batches makes k times fewer optimizer steps: the schedule spans those.
    assert learning_rate(TrainConfig(epochs=2, grad_accum_steps=4), 40).decay_steps == 20
    assert tf.is_tensor(schedule(tf.constant(3)))


def test_weight_averaging_writes_the_epochs_moving_average_into_the_model_at_its_end():
    steps, seen = 4, []
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(TrainConfig(epochs=2, learning_rate=0.1, ema_momentum=0.9), steps),
                  loss="mse")
    record = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(
        ([variable.numpy().copy() for variable in model.trainable_variables],
         [average.numpy().copy() for average in model.optimizer._model_variables_moving_average])))
    features = np.random.default_rng(0).normal(size=(4 * steps, 3)).astype("float32")
    model.fit(features, features.sum(axis=1, keepdims=True), batch_size=4, epochs=2, verbose=0,
              callbacks=[record])
    # What an epoch's end reads (validation, checkpoints) is the averaged weights, not the last update's.
    assert len(seen) == 2
    for weights, averaged in seen:
        for weight, average in zip(weights, averaged, strict=True):
            np.testing.assert_allclose(weight, average, rtol=1e-6)
    assert not make_optimizer(TrainConfig(), steps).use_ema
