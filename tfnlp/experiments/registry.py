"""The experiment registry the family modules (`icd10`, `ner`, `sentiment`) register their functions in."""

from __future__ import annotations

from collections.abc import Callable

from tfnlp.config import Experiment
from tfnlp.registry import Registry

ExperimentFn = Callable[..., Experiment]
EXPERIMENTS: Registry[ExperimentFn] = Registry("experiment")
