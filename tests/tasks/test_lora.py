"""LoRA on keras-hub backbones: only adapters and head train, and the export holds the merged weights."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import tiny_bert_preset, variable_bytes, write_conll
from tests.tasks.test_subword_tagging import VOCABULARY
from tfnlp import export
from tfnlp.config import apply_overrides
from tfnlp.data import sources
from tfnlp.errors import UserError
from tfnlp.experiments import get
from tfnlp.run import parameter_counts
from tfnlp.tasks.tagging import TaggingTask


def lora_task(tmp_path, *overrides: str) -> TaggingTask:
    data = write_conll(tmp_path, count=40)
    preset = tiny_bert_preset(tmp_path / "preset", VOCABULARY, hidden_dim=32)
    experiment = apply_overrides(get("ner_bert", tiny=True), [
        f"data.source=conll:{data}", f"model.preset={preset}", "model.max_input_tokens=16", *overrides])
    return TaggingTask(experiment, sources.load(experiment.data.source, experiment.data).splits)


def test_lora_trains_adapters_and_head_and_the_export_answers_with_merged_weights(tmp_path):
    task = lora_task(tmp_path, "model.lora_rank=2")
    trained = task.build_model(steps_per_epoch=10)
    names = [weight.path for weight in trained.trainable_weights]
    assert any("lora_kernel_a" in name for name in names) and "tags/kernel" in names
    assert not any(name.endswith("/kernel") and "tags" not in name for name in names)  # frozen projections
    rng = np.random.default_rng(0)
    for weight in trained.weights:  # adapters as after training (B starts at zero: no effect until trained)
        if "lora_kernel" in weight.path:
            weight.assign(rng.normal(scale=0.5, size=weight.shape))
    inference = task.inference_model(trained)
    assert not [weight for weight in inference.weights if "lora" in weight.path]
    texts = ["The patient has severe Crohn disease today .", "asthma and diabetes were treated today"]
    trained_serving, serving = task.serving(trained), task.serving(inference)
    expected = trained_serving.serve(tf.constant(texts))
    version = export.export_savedmodel(serving, tmp_path / "export", "lora", serving.signatures(), {})
    # Loaded as a SavedModel (no Keras object): the merged weights answer as the adapted model does. (That a BERT
    # tagger's export serves with TensorFlow and tensorflow_text alone: tests/tasks/test_subword_tagging.py.)
    served = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(texts))
    assert served["tags"].numpy().tolist() == expected["tags"].numpy().tolist()
    counts = parameter_counts(trained, inference)
    assert counts["trainable"] < counts["exported"] < counts["total"]
    (tmp_path / "plain").mkdir()
    plain = lora_task(tmp_path / "plain")
    full = plain.make_model()
    weights = {name: size for name, size in variable_bytes(version).items() if not name.startswith("calibration/")}
    assert sum(weights.values()) == parameter_counts(full, full)["weight_bytes"]  # no bigger (but a few calibration
    assert sum(variable_bytes(version).values()) - sum(weights.values()) < 100    # scalars)
    # The adapters matter: the same backbone without them reads the words differently.
    words = tf.ragged.constant([text.split() for text in texts])
    spaced = tf.ragged.constant([[index > 0 for index in range(len(text.split()))] for text in texts])
    for weight in trained.weights:
        if "lora_kernel_b" in weight.path:
            weight.assign(tf.zeros_like(weight))
    without = tf.function(trained_serving.word_scores)(words, spaced).numpy()
    merged = tf.function(serving.word_scores)(words, spaced).numpy()
    assert np.abs(without - merged).max() > 1e-3


def test_lora_targets_that_name_no_layer_and_a_fresh_gpt_are_refused(tmp_path):
    from tfnlp.models.taggers import transformer_tagger

    task = lora_task(tmp_path, "model.lora_rank=2", "model.lora_targets=nowhere")
    with pytest.raises(UserError, match="model.lora_targets='nowhere'"):
        task.make_model()
    fresh_gpt = apply_overrides(get("ner_gpt", tiny=True), ["model.lora_rank=4"]).model
    with pytest.raises(UserError, match="ner_gpt without model.preset is a fresh GPT-2"):
        transformer_tagger(fresh_gpt, 300, ["O", "B-X", "I-X"])
