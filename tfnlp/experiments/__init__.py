"""The experiment registry: each registered function returns an `Experiment`.

A function takes `tiny` (a seconds-long configuration the tests run) and its docstring's
first line is the description `python -m tfnlp.train --list` prints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp.config import Experiment
from tfnlp.experiments.registry import EXPERIMENTS


def get(name: str, tiny: bool = False) -> Experiment:
    """The experiment registered as `name` (its tiny variant when `tiny`)."""
    load_all()
    return EXPERIMENTS.get(name)(tiny=tiny)


def configure(experiment: str | Experiment, *, data: str | None = None, config: str | Path | None = None,
              overrides: Iterable[str] = (), tiny: bool = False) -> Experiment:
    """An experiment with a TOML file's tables, then a data source, then `section.key=value` overrides applied, in
    that order, and validated.

    Args:
        experiment: a registered experiment's name, or an `Experiment`.
        data: a data source replacing the experiment's (`cim10`, `csv:PATH`, `conll:DIR`, ...).
        config: a TOML file with `[data]`, `[model]`, `[train]` tables.
        overrides: `section.key=value` strings, e.g. `train.epochs=3`.
        tiny: the registered experiment's tiny variant (seconds; for tests and smoke runs).

    Raises:
        UserError: an unknown experiment, key or value, naming it and what would fix it.
    """
    if isinstance(experiment, str):
        experiment = get(experiment, tiny=tiny)
    if config:
        experiment = config_lib.apply_toml(experiment, config)
    if data:
        experiment = dataclasses.replace(experiment, data=dataclasses.replace(experiment.data, source=data))
    return config_lib.validate(config_lib.apply_overrides(experiment, overrides))


def describe() -> list[tuple[str, str]]:
    """(name, one-line description) of every registered experiment."""
    load_all()
    return [(name, (EXPERIMENTS.get(name).__doc__ or "").strip().splitlines()[0]) for name in EXPERIMENTS]


def load_all() -> None:
    """Import the experiment modules, which register their functions."""
    from tfnlp.experiments import icd10, ner, sentiment  # noqa: F401
