"""Small pieces shared by the command-line tools."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence
from pathlib import Path

from tfnlp.errors import UserError


def read_texts(texts: Sequence[str], file: str | None, option: str = "--file") -> list[str]:
    """The texts given on the command line, then the non-blank lines of `file` (given as `option`, which the
    messages name).

    Raises:
        UserError: a missing file, or no text at all.
    """
    result = list(texts)
    if file:
        path = Path(file)
        if not path.is_file():
            raise UserError(f"{path}: no such file ({option} takes a text file, one text per line)")
        result += [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not result:
        raise UserError(f"give a text, or {option} with one text per line")
    return result


def add_experiment_options(parser: argparse.ArgumentParser) -> None:
    """The options that configure an experiment, shared by `train`, `search` and `pipeline`: --data, --config,
    --set, --tiny."""
    parser.add_argument("--data", help="data source replacing the experiment's (cim10, icd10cm, csv:PATH, ...)")
    parser.add_argument("--config", help="TOML file with [data], [model], [train] tables (applied before --set)")
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config values, e.g. train.epochs=3 model.units=64")
    parser.add_argument("--tiny", action="store_true", help="the experiment's tiny variant (seconds; for tests)")


def experiment_from_args(name: str, args: argparse.Namespace):
    """The experiment `name` with `add_experiment_options`' options applied (`experiments.configure`)."""
    from tfnlp import experiments

    return experiments.configure(name, data=args.data, config=args.config, overrides=args.overrides, tiny=args.tiny)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit(143), so a command stopped by `kill` or a scheduler runs its `finally` blocks
    (stops its child server, removes its temporary copies) like one stopped with Ctrl-C."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
