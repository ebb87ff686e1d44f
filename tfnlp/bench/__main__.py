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
    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench", description=__doc__)
    parser.add_argument("suite", help=f"one of: {', '.join(registry.names())}")
    args, rest = parser.parse_known_args(argv)
    # Every suite builds several models and serving modules of one class on purpose (variants, taggers, runs), each
    # traced once: TensorFlow counts traces across objects and would call that needless retracing.
    drop_retracing_notices()
    suite = registry.get(args.suite)
    if not {"-h", "--help"} & set(rest):
        # Figures repeat on one machine and one set of packages, not across them: each bench says which it ran on.
        print(f"environment: {environment.summary(environment.describe())}", flush=True)
    return suite(rest)


if __name__ == "__main__":
    raise SystemExit(main())
