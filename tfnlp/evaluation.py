"""Score an export through its SavedModel, overall and by slice, as TFMA does: one evaluator for every caller.

Raw test texts go into the serving signature (`tfnlp.predictor.Predictor`), its typed answers are
compared with the truth by the task's own served scorer (`Task.served_truth`, `served_score`,
`served_slices`), so a candidate, the version in service, a version pushed by hand and a version
trained on another split are all scored the same way. Slices: the ICD-10 chapter of the true code
(coder), the true label (classifier), the entity type (tagger, whose spans are scored as character
offsets: `span_f1`). Each evaluation also scores the simplest baseline of the task: the most frequent
training code or label for every text, or no entity at all.

    import tfnlp
    tfnlp.evaluate("savedmodels/icd10_seq2seq/3")["overall"]
    tfnlp.evaluate("runs/ner_bilstm/20261203-101500", data="conll:path/to/corpus")
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp.data.records import Splits
from tfnlp.errors import UserError


def evaluate(path: str | Path, data: str | None = None, overrides: tuple[str, ...] = ()) -> dict:
    """Score an export (a version, a model base or a run folder) on a test split with its task's own scorer.

    Args:
        path: the export, as `tfnlp.load` takes it.
        data: a data source to score on (default: the one the export was trained on, split as it was).
        overrides: `data.key=value` settings for reading it (`data.text_column=...`, `data.max_records=...`).

    Returns:
        `overall` (the metrics), `slices` (each slice's metrics with its support), `baseline` (the trivial
        baseline's metrics), `slice_by` (what the slices are) and `records` (the test texts scored).

    Raises:
        UserError: not an export, an export without its experiment in its card, or data it cannot read.
    """
    from tfnlp.data import sources
    from tfnlp.predictor import load

    predictor = load(path)
    if "experiment" not in predictor.card:
        raise UserError(f"{predictor.version}: its card (assets.extra) does not say which experiment made it")
    experiment = config_lib.from_dict(predictor.card["experiment"])
    settings = config_lib.apply_data_overrides(experiment.data, overrides)
    experiment = dataclasses.replace(experiment, data=dataclasses.replace(settings, source=data or settings.source))
    return evaluate_predictor(predictor, experiment, sources.load(experiment.data.source, experiment.data).splits)


def evaluate_predictor(predictor, experiment: config_lib.Experiment, splits: Splits) -> dict:
    """Scores of a loaded export on `splits.test` (the training split gives the trivial baseline)."""
    from tfnlp.tasks import task_class

    task = task_class(experiment.task)
    records = splits.test
    truth = task.served_truth(experiment, records)
    predicted = [task.served_prediction(answer) for answer in predictor.predict([record.text for record in records])]
    baseline = task.trivial_predictions(experiment, splits.train, len(records))
    return {"overall": task.served_score(truth, predicted), "slices": task.served_slices(truth, predicted),
            "baseline": task.served_score(truth, baseline), "slice_by": task.slice_by, "records": len(records)}


def evaluate_version(version: Path, experiment: config_lib.Experiment, splits: Splits) -> dict:
    """`evaluate_predictor` of the export in `version`."""
    from tfnlp.predictor import Predictor

    return evaluate_predictor(Predictor.from_export(version), experiment, splits)
