"""`python -m tfnlp.bench <suite> [--quick] [suite options]`."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence

from tfnlp import environment
from tfnlp.errors import cli_main
from tfnlp.logs import drop_retracing_notices
from tfnlp.registry import Registry


@functools.cache
def suites() -> Registry:
    """The benchmark suites by name, registered once, on first use (each imports TensorFlow)."""
    from tfnlp.bench import (
        beam,
        classifiers,
        decode,
        deid,
        faults,
        folds,
        icd10,
        lora,
        ner,
        rerank,
        scale,
        serving,
        speed,
    )

    registry: Registry = Registry("benchmark suite")
    for name, run in (("decode", decode.main), ("rerank", rerank.main), ("serving", serving.main),
                      ("classifiers", classifiers.main), ("losses", classifiers.losses_main), ("folds", folds.main),
                      ("ner", ner.main),
                      ("icd10", icd10.main), ("scale", scale.main), ("lora", lora.main),
                      ("deid", deid.main), ("beam", beam.main), ("faults", faults.main),
                      ("speed", speed.main)):
        registry.add(name, run)
    return registry


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    registry = suites()
    # The help option is the suite's once a suite is named (`bench speed --help` lists speed's options).
    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench", description=__doc__, add_help=False)
    parser.add_argument("suite", nargs="?", help=f"one of: {', '.join(registry.names())}")
    parser.add_argument("-h", "--help", action="store_true", help="this help; after a suite, the suite's options")
    args, rest = parser.parse_known_args(argv)
    if args.suite is None:
        if args.help:
            parser.print_help()
            return 0
        parser.error(f"name a suite: one of {', '.join(registry.names())}")
    # Every suite builds several models and serving modules of one class on purpose (variants, taggers, runs), each
    # traced once: TensorFlow counts traces across objects and would call that needless retracing.
    drop_retracing_notices()
    suite = registry.get(args.suite)
    if args.help:
        return suite([*rest, "--help"])
    # Figures repeat on one machine and one set of packages, not across them: each bench says which it ran on.
    print(f"environment: {environment.summary(environment.describe())}", flush=True)
    return suite(rest)


if __name__ == "__main__":
    raise SystemExit(main())
