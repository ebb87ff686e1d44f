"""In-graph batched decoding against a per-example, per-character Python loop.

    python -m tfnlp.bench decode [--quick] [--model SAVEDMODEL_DIR]

Both decode greedily, constrained by the model's code trie, with the same exported
SavedModel on the same test texts. The loop does what the keras-io character seq2seq example
does: encode one text, then call the decoder once per character from Python until the end
token. Without --model, the newest `savedmodels/icd10_seq2seq/<version>` is used, or a tiny
model is trained into a temporary folder when there is none.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfnlp.errors import UserError
from tfnlp.export import latest_version

END = 2


def python_loop_decode(model, texts: Sequence[str]) -> list[str]:
    """Greedy constrained decoding, one text and one character per Python step."""
    import tensorflow as tf

    allowed, next_node = model.allowed.numpy(), model.next_node.numpy()
    tokens = [token.decode() for token in model.token_strings.numpy()]
    steps = int(model.decoder_length)
    codes = []
    for text in texts:
        encoded = model.encode(tf.constant([text]))
        h, c = encoded["h"], encoded["c"]
        previous, node, code = 1, 0, ""
        for step in range(steps):
            out = model.decode_step(tf.constant([[previous]], tf.int32), h, c, encoded["encoder_outputs"],
                                    encoded["mask"], encoded["projected_keys"])
            h, c = out["h"], out["c"]
            log_probs = out["log_probs"].numpy()[0]
            permitted = allowed[node] if step < steps - 1 else np.arange(len(tokens)) == END
            previous = int(np.argmax(np.where(permitted, log_probs, -np.inf)))
            if previous == END:
                break
            code += tokens[previous]
            node = int(next_node[node, previous])
        codes.append(code)
    return codes


def _timed(function, *args) -> tuple[list[str], float]:
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def _train_tiny(folder: Path) -> Path:
    from tfnlp.run import train

    return train("icd10_seq2seq", tiny=True, workdir=folder / "work", export_base=folder,
                 overrides=["train.baselines=false"]).export


def seq2seq_model_path(argument: str | None, scratch: Path) -> Path:
    """The SavedModel version a seq2seq benchmark runs: `--model`, else the newest
    `savedmodels/icd10_seq2seq/<version>`, else a tiny model trained into `scratch`."""
    path = Path(argument) if argument else latest_version(Path("savedmodels") / "icd10_seq2seq")
    if path is None:
        print("no savedmodels/icd10_seq2seq yet: training the tiny model for this benchmark")
        path = _train_tiny(scratch)
    if not (path / "saved_model.pb").exists():
        raise UserError(f"{path}: not a SavedModel folder (no saved_model.pb)")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite and print its table and headline."""
    import tensorflow as tf

    from tfnlp.config import DataConfig
    from tfnlp.data import sources
    from tfnlp.tasks.seq2seq import decode

    parser = argparse.ArgumentParser(prog="python -m tfnlp.bench decode", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts; about a minute")
    parser.add_argument("--model", help="SavedModel version folder (default: newest savedmodels/icd10_seq2seq)")
    parser.add_argument("--batch_size", type=int, default=1024, help="texts per call of the batched decoder")
    args = parser.parse_args(argv)

    scratch = tempfile.TemporaryDirectory()
    path = seq2seq_model_path(args.model, Path(scratch.name))
    model = tf.saved_model.load(str(path))
    texts = [record.text for record in sources.load("cim10", DataConfig()).splits.test]
    loop_texts = texts[:64 if args.quick else 256]

    greedy = model.signatures["greedy"]
    decode(greedy, texts[:8])  # warm up both paths
    python_loop_decode(model, texts[:2])
    graph_codes, graph_seconds = _timed(decode, greedy, texts, args.batch_size)
    loop_codes, loop_seconds = _timed(python_loop_decode, model, loop_texts)
    agreement = np.mean([a == b for a, b in zip(loop_codes, graph_codes[:len(loop_codes)], strict=True)])
    graph_rate, loop_rate = len(texts) / graph_seconds, len(loop_texts) / loop_seconds

    print(f"model: {path}\n")
    print("| decoder | texts | seconds | texts/s |")
    print("|---|---|---|---|")
    print(f"| in-graph batched (batch {args.batch_size}) | {len(texts)} | {graph_seconds:.2f} | {graph_rate:.1f} |")
    print(f"| Python loop, per text, per character | {len(loop_texts)} | {loop_seconds:.2f} | {loop_rate:.1f} |")
    print(f"\nsame code from both on {agreement:.1%} of the {len(loop_texts)} texts the loop decoded")
    print(f"headline: in-graph batched decoding is {graph_rate / loop_rate:.0f}x faster than the Python loop "
          f"({graph_rate:.0f} vs {loop_rate:.1f} texts/s)")
    scratch.cleanup()
    return 0
