"""Texts per second of exported versions side by side, timed in turns in one process.

    python -m tfnlp.bench speed --model VERSION_A --model VERSION_B [--data cim10] [--passes 10] [--quick]

Each pass sends the same texts (the data's validation split) through every version's
`serving_default` in batches, the versions' order alternating from pass to pass, so that the
machine's wandering speed falls on every version alike (here it moves by a third within minutes:
a single pass of each, minutes apart, cannot tell a 1.3x change). Before timing, the versions'
answers to the first batches are compared: a speed-up that changes answers is no speed-up.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfnlp.errors import UserError


def same_answers(first: dict, other: dict) -> bool:
    """Whether two signature outputs hold the same named tensors, strings equal and numbers within 1e-5."""
    if set(first) != set(other):
        return False
    for name, tensor in first.items():
        left, right = tensor.numpy(), other[name].numpy()
        if left.shape != right.shape:
            return False
        if left.dtype.kind in "OSUb" and not np.array_equal(left, right):
            return False
        if left.dtype.kind in "fiu" and not np.allclose(left, right, atol=1e-5):
            return False
    return True


def text_batches(texts: Sequence[str], batch_size: int) -> list:
    """`texts` as string tensors of `batch_size` texts (the last one shorter), as a serving signature takes them."""
    import tensorflow as tf

    return [tf.constant(list(texts[start:start + batch_size])) for start in range(0, len(texts), batch_size)]


def timed_passes(signatures: dict, batches: list, passes: int) -> dict[str, list[float]]:
    """Texts/s of each signature over `passes` passes through `batches`, the order turning each pass."""
    texts = sum(int(batch.shape[0]) for batch in batches)
    rates: dict[str, list[float]] = {name: [] for name in signatures}
    names = list(signatures)
    for index in range(passes):
        for name in names[index % len(names):] + names[:index % len(names)]:
            started = time.perf_counter()
            for batch in batches:
                signatures[name](text=batch)
            rates[name].append(texts / (time.perf_counter() - started))
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    """Print each version's texts/s (min, median, max over the passes) and whether it answers as the first."""
    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench speed", description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="an exported version folder (repeat)")
    parser.add_argument("--data", default="cim10", help="data source whose validation texts are sent")
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--texts", type=int, default=1280, help="texts per pass")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="2 passes of 256 texts")
    args = parser.parse_args(argv)
    if args.quick:
        args.passes, args.texts = 2, 256
    if args.passes < 1 or args.texts < 1 or args.batch_size < 1:
        raise UserError("--passes, --texts and --batch_size must be at least 1")
    for model in args.model:
        if not (Path(model) / "saved_model.pb").exists():
            raise UserError(f"{model}: not a SavedModel folder (no saved_model.pb)")

    import tensorflow as tf

    from tfnlp.config import DataConfig
    from tfnlp.data import sources

    texts = [record.text for record in sources.load(args.data, DataConfig()).splits.validation][:args.texts]
    batches = text_batches(texts, args.batch_size)
    signatures = {f"{index}: {model}": tf.saved_model.load(model).signatures["serving_default"]
                  for index, model in enumerate(args.model, 1)}
    answers = {name: [signature(text=batch) for batch in batches[:2]] for name, signature in signatures.items()}
    first = next(iter(answers.values()))
    rates = timed_passes(signatures, batches, args.passes)
    print(f"{len(texts)} {args.data} validation texts a pass, batches of {args.batch_size}, {args.passes} passes\n")
    print("| version | min texts/s | median | max | answers as version 1 |\n|---|---|---|---|---|")
    for name, row in rates.items():
        same = all(same_answers(left, right) for left, right in zip(first, answers[name], strict=True))
        verdict = "same" if same else "DIFFERENT"
        print(f"| {name} | {min(row):.0f} | {np.median(row):.0f} | {max(row):.0f} | {verdict} |")
    return 0
