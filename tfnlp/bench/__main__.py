"""`python -m tfnlp.bench <suite> [--quick] [suite options]`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tfnlp.errors import cli_main
from tfnlp.registry import Registry

SUITES: Registry = Registry("benchmark suite")


def _load_suites() -> None:
    from tfnlp.bench import classifiers, decode, ner, rerank, serving

    for name, run in (("decode", decode.main), ("rerank", rerank.main), ("serving", serving.main),
                      ("classifiers", classifiers.main), ("losses", classifiers.losses_main), ("ner", ner.main)):
        if name not in SUITES:
            SUITES.add(name, run)


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    _load_suites()
    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench", description=__doc__)
    parser.add_argument("suite", help=f"one of: {', '.join(SUITES.names())}")
    args, rest = parser.parse_known_args(argv)
    return SUITES.get(args.suite)(rest)


if __name__ == "__main__":
    raise SystemExit(main())
