"""Train, evaluate and export one experiment (the command over `tfnlp.run.train`).

    python -m tfnlp.train icd10_seq2seq [--data SRC] [--config run.toml] [--set k=v ...] [--workdir DIR]
                                        [--export_base DIR] [--tiny] [--print-config]
    python -m tfnlp.train --list

The last line printed is `exported: <path>` so that scripts can pick the model up.
Re-running an interrupted command resumes it: without --workdir, the newest unfinished run
of the same experiment and configuration is picked up again.

From Python, `tfnlp.train(...)` is `tfnlp.run.train` (this module is callable).
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Sequence

from tfnlp import config as config_lib
from tfnlp import experiments
from tfnlp.cli import add_experiment_options, experiment_from_args
from tfnlp.errors import UserError, cli_main
from tfnlp.paths import writable_folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.train", description="Train, evaluate and export.")
    parser.add_argument("experiment", nargs="?", help="experiment name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    add_experiment_options(parser)
    parser.add_argument("--print-config", action="store_true", help="print the resolved experiment as TOML and exit")
    parser.add_argument("--workdir", help="run folder (default: runs/<experiment>/<timestamp>)")
    parser.add_argument("--export_base", default="savedmodels", help="export root (default: savedmodels)")
    return parser


def configure(argv: Sequence[str] | None = None) -> tuple[config_lib.Experiment | None, argparse.Namespace]:
    """Parse the command line into an experiment (None with --list)."""
    args = build_parser().parse_args(argv)
    if args.list:
        return None, args
    if not args.experiment:
        raise UserError("name an experiment; `python -m tfnlp.train --list` shows them")
    return experiment_from_args(args.experiment, args), args


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    from tfnlp import run

    experiment, args = configure(argv)
    if experiment is None:
        for name, description in experiments.describe():
            print(f"{name:28} {description}")
        return 0
    if args.print_config:
        print(config_lib.to_toml(experiment), end="")
        return 0
    # Named as the user gave them when they cannot be written (before any data is read).
    writable_folder(args.export_base, "--export_base")
    if args.workdir:
        writable_folder(args.workdir, "--workdir")
    finished = run.train(experiment, workdir=args.workdir, export_base=args.export_base)
    print(f"exported: {finished.export}" if finished.export else "trained (a worker: the chief evaluates and exports)")
    sys.stdout.flush()
    return 0


class _CallableModule(types.ModuleType):
    """`tfnlp.train(...)` trains (`tfnlp.run.train`) although `tfnlp.train` is also this command's module: importing
    a submodule binds its name on the package, so the module itself must be the callable."""

    def __call__(self, *args, **kwargs):
        from tfnlp.run import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    raise SystemExit(main())
