import pytest

from tfnlp.config import Experiment, apply_overrides, validate
from tfnlp.errors import UserError


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
    ("train.epoch=3", "unknown key 'train.epoch'; known: train.epochs"),
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
])
def test_values_no_run_can_use_are_refused(override, message):
    with pytest.raises(UserError, match=message):
        validate(apply_overrides(base(), [override]))
    assert validate(base()) == base()
