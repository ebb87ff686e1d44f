import pytest

from tfnlp.config import Experiment, apply_overrides, validate
from tfnlp.errors import UserError

pytestmark = pytest.mark.smoke


def base() -> Experiment:
    return Experiment("x", "seq2seq", "test")


def test_overrides_are_parsed_to_the_field_types():
    experiment = apply_overrides(base(), ["train.epochs=3", "model.units=64", "model.dropout=0.5",
                                          "model.constrain=false", "data.source=csv:a.csv"])
    assert experiment.train.epochs == 3 and experiment.model.units == 64
    assert experiment.model.dropout == 0.5 and experiment.model.constrain is False
    assert experiment.data.source == "csv:a.csv"
    assert base().train.epochs != 3  # frozen: the original is untouched


@pytest.mark.parametrize("override, message", [
    ("train.epoch=3", r"unknown key 'train.epoch'; did you mean train.epochs\?; known: train.epochs"),
    ("model.unit=3", r"unknown key 'model.unit'; did you mean model.units\?"),
    ("trian.epochs=3", "unknown section 'trian'"),
    ("train.epochs=three", "train.epochs takes a int"),
    ("model.constrain=maybe", "expected true or false"),
    ("epochs", "should look like section.key=value"),
])
def test_bad_overrides_are_clear_user_errors(override, message):
    with pytest.raises(UserError, match=message):
        apply_overrides(base(), [override])


def test_an_experiment_round_trips_through_its_dict():
    from tfnlp.config import from_dict, to_dict

    experiment = apply_overrides(base(), ["model.units=7", "train.monitor=val_loss"])
    assert from_dict(to_dict(experiment)) == experiment


@pytest.mark.parametrize("override, message", [
    ("model.beam_size=0", "model.beam_size=0: must be at least 1"),
    ("train.epochs=0", "train.epochs=0: must be at least 1"),
    ("model.dropout=1.0", "model.dropout=1.0: must be below 1"),
    ("train.lr_schedule=step", "train.lr_schedule='step': use one of cosine, linear, constant, plateau"),
    ("train.lr_schedule=plateau train.warmup_steps=5", "train.lr_schedule=plateau takes no warm-up"),
    ("train.ema_momentum=0.99 train.grad_accum_steps=2", "train.ema_momentum averages the weights after every "
                                                          "update, train.grad_accum_steps"),
    ("train.ema_momentum=1", "train.ema_momentum=1.0: must be below 1"),
    ("train.precision=half", "train.precision='half': use one of float32"),
    ("model.embedding_dim=100000000", "model.embedding_dim=100000000: must be at most 4,096"),
    ("train.batch_size=99999999999999999999", "train.batch_size=99999999999999999999: must be below"),
])
def test_values_no_run_can_use_are_refused(override, message):
    with pytest.raises(UserError, match=message):
        validate(apply_overrides(base(), override.split()))
    assert validate(base()) == base()


def test_a_config_file_gives_what_the_same_values_given_with_set_give(tmp_path, capsys):
    from tfnlp import train

    path = tmp_path / "run.toml"
    path.write_text('[model]\nunits = 24\ndropout = 0\n\n[train]\nepochs = 3\nlr_schedule = "plateau"\n'
                    'deterministic = false\n\n[data]\nsource = "cim10:lang=es"\n', encoding="utf-8")
    from_file, _ = train.configure(["icd10_seq2seq", "--tiny", "--config", str(path)])
    from_set, _ = train.configure(["icd10_seq2seq", "--tiny", "--set", "model.units=24", "model.dropout=0",
                                   "train.epochs=3", "train.lr_schedule=plateau", "train.deterministic=false",
                                   "data.source=cim10:lang=es"])
    assert from_file == from_set and from_file.model.dropout == 0.0 and isinstance(from_file.model.dropout, float)
    # --set applies after the file; --print-config writes TOML that --config reads back to the same experiment.
    assert train.main(["icd10_seq2seq", "--tiny", "--config", str(path), "--set", "train.epochs=5",
                       "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "epochs = 5" in printed and "[model]" in printed
    (tmp_path / "printed.toml").write_text(printed, encoding="utf-8")
    again, _ = train.configure(["icd10_seq2seq", "--tiny", "--config", str(tmp_path / "printed.toml")])
    assert again == train.configure(["icd10_seq2seq", "--tiny", "--config", str(path), "--set", "train.epochs=5"])[0]


@pytest.mark.parametrize(("text", "message"), [
    ("[model]\nunits = 'many'\n", r"run.toml: model.units takes a int \(got str 'many'\)"),
    ("[model]\nunits = 2.5\n", r"run.toml: model.units takes a int"),
    ("[train]\ndeterministic = 1\n", r"run.toml: train.deterministic takes a bool"),
    ("[modle]\nunits = 2\n", r"run.toml: unknown section 'modle'"),
    ("[model]\nunit = 2\n", r"run.toml: unknown key 'model.unit'"),
    ("units = 2\n", r"run.toml: 'units' must be a table"),
    ("[model\n", r"run.toml: not valid TOML"),
])
def test_bad_config_files_are_user_errors_naming_the_file(tmp_path, text, message):
    from tfnlp import train

    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        train.configure(["icd10_seq2seq", "--tiny", "--config", str(path)])
    with pytest.raises(UserError, match="missing.toml: cannot be read"):
        train.configure(["icd10_seq2seq", "--config", str(tmp_path / "missing.toml")])


def test_each_experiment_prints_and_reads_back_only_the_settings_its_family_reads():
    import dataclasses
    import tomllib

    from tfnlp import experiments
    from tfnlp.config import apply_tables, to_toml, unread_keys
    from tfnlp.model_settings import FAMILIES

    all_model_keys = {item.name for family in FAMILIES for item in dataclasses.fields(family)}
    for name, _ in experiments.describe():
        experiment = experiments.get(name)
        tables = tomllib.loads(to_toml(experiment))
        own = {item.name for item in dataclasses.fields(experiment.model)}
        assert set(tables["model"]) == own, name
        assert not set(tables["train"]) & set(unread_keys(experiment, "train")), name
        assert apply_tables(experiment, tables, "printed") == experiment, name
        foreign = sorted(all_model_keys - own)[0]
        with pytest.raises(UserError, match=f"model.{foreign} is not read by the {type(experiment.model).family}"):
            apply_overrides(experiment, [f"model.{foreign}=1"])


@pytest.mark.parametrize("experiment, override, message", [
    ("icd10_seq2seq", "model.name=lstm", "model.name=lstm is a classification model; icd10_seq2seq is a seq2seq "
                                         "experiment, whose models are: char_seq2seq"),
    ("icd10_seq2seq", "train.loss=focal", "train.loss has no effect on icd10_seq2seq: the seq2seq coder family"),
    ("icd10_chapter_lstm", "model.beam_size=3", "model.beam_size is not read by the word classifier family"),
    ("icd10_glove_logreg", "train.epochs=3", "train.epochs has no effect on icd10_glove_logreg: the static-vector"),
    ("ner_bilstm", "data.label_length=3", "data.label_length has no effect on ner_bilstm: the tagging task"),
    ("icd10_chapter_lstm", "model.name=lstmm", r"model.name='lstmm' is not a model; did you mean lstm\?"),
])
def test_a_setting_with_no_effect_is_refused_naming_the_family(experiment, override, message):
    from tfnlp import experiments

    with pytest.raises(UserError, match=message):
        apply_overrides(experiments.get(experiment), [override])


def test_model_name_switches_family_within_the_task_keeping_shared_settings():
    from tfnlp import experiments
    from tfnlp.model_settings import TransformerClassifierSettings, WordClassifierSettings

    lstm = experiments.get("icd10_chapter_lstm")
    bert = apply_overrides(lstm, ["model.name=bert", "model.lora_rank=4"])
    assert isinstance(bert.model, TransformerClassifierSettings) and bert.model.lora_rank == 4
    assert bert.model.dropout == lstm.model.dropout and bert.model.max_input_tokens == lstm.model.max_input_tokens
    conv = apply_overrides(lstm, ["model.filters=7", "model.name=bilstm_conv"])  # the name applies first
    assert isinstance(conv.model, WordClassifierSettings) and conv.model.name == "bilstm_conv"
    assert conv.model.filters == 7


def test_a_run_written_with_the_flat_model_table_still_loads():
    from tfnlp import experiments
    from tfnlp.config import from_dict, to_dict

    experiment = experiments.get("icd10_chapter_lstm")
    old = to_dict(experiment)
    old["model"] = {**old["model"], "beam_size": 8, "tfidf_prior_weight": 2.0, "bpe_merges": 4000}
    assert from_dict(old) == experiment
