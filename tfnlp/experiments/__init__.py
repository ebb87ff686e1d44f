"""The experiment registry: each registered function returns an `Experiment`.

A function takes `tiny` (a seconds-long configuration the tests run) and its docstring's
first line is the description `python -m tfnlp.train --list` prints.
"""

from __future__ import annotations

from tfnlp.config import Experiment
from tfnlp.experiments.registry import EXPERIMENTS


def get(name: str, tiny: bool = False) -> Experiment:
    """The experiment registered as `name` (its tiny variant when `tiny`)."""
    load_all()
    return EXPERIMENTS.get(name)(tiny=tiny)


def describe() -> list[tuple[str, str]]:
    """(name, one-line description) of every registered experiment."""
    load_all()
    return [(name, (EXPERIMENTS.get(name).__doc__ or "").strip().splitlines()[0]) for name in EXPERIMENTS]


def load_all() -> None:
    """Import the experiment modules, which register their functions."""
    from tfnlp.experiments import icd10, ner, sentiment  # noqa: F401
