"""Tasks: what turns one experiment's records into a trained, exportable model (`base.Task`), by task name."""

from __future__ import annotations

import functools

from tfnlp.registry import Registry


@functools.cache
def _tasks() -> Registry:
    """The task registry, built once, on first use (importing a task imports TensorFlow)."""
    from tfnlp.tasks.classification import ClassificationTask
    from tfnlp.tasks.seq2seq import Seq2SeqTask
    from tfnlp.tasks.tagging import TaggingTask

    tasks: Registry = Registry("task")
    tasks.add("seq2seq", Seq2SeqTask)
    tasks.add("classification", ClassificationTask)
    tasks.add("tagging", TaggingTask)
    return tasks


def task_class(name: str):
    """The `Task` subclass registered as `name` (an experiment's `task`)."""
    return _tasks().get(name)
