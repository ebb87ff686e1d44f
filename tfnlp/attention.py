"""See where a seq2seq model looked: attention heatmaps of an exported model.

    python -m tfnlp.attention MODEL "texte du diagnostic" [-o heatmap.png] [--html page.html]
    python -m tfnlp.attention MODEL --file texts.txt [-o heatmaps.png] [--grid]
    python -m tfnlp.attention --server localhost:8500 --model icd10_seq2seq "texte"

MODEL is a SavedModel version folder, a model folder (its newest version is used), or a
model name under `--export_base` (default `savedmodels/`); with `--server`, the model is
asked over gRPC (TF Serving or `tfnlp.serving.server`). The model must be a seq2seq export
whose signature returns `attention`, `input_tokens`, `output_tokens`, `code` and `score`.
For each text the terminal shows, per generated character, the input word it attended to most.
"""

from __future__ import annotations

import argparse
import base64
import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfnlp.cli import read_texts
from tfnlp.errors import UserError, cli_main
from tfnlp.plots import Alignment, attention_figure, figure_png, save_figure

REQUIRED_OUTPUTS = ("attention", "input_tokens", "output_tokens", "code", "score")


def resolve_model(model: str, export_base: Path) -> Path:
    """The SavedModel version folder that `model` names (a folder, a model folder, or a name)."""
    from tfnlp.export import latest_version

    path = Path(model)
    if not path.exists():
        path = export_base / model
        if not path.exists():
            known = sorted(p.name for p in export_base.iterdir() if p.is_dir()) if export_base.is_dir() else []
            raise UserError(f"no model {model!r}: not a folder, and not a name under {export_base}/ "
                            f"(known: {', '.join(known) or 'none'})")
    if (path / "saved_model.pb").exists():
        return path
    newest = latest_version(path)
    if newest is None:
        raise UserError(f"{path}: neither a SavedModel (no saved_model.pb) nor a folder of numbered versions")
    return newest


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def alignments_from_outputs(texts: Sequence[str], outputs: dict) -> list[Alignment]:
    """Turn the signature's batched outputs (numpy, or the client's lists) into one `Alignment` per text."""
    alignments = []
    for row, text in enumerate(texts):
        inputs = [_text(token) for token in outputs["input_tokens"][row]]
        produced = [_text(token) for token in outputs["output_tokens"][row]]
        words = [index for index, token in enumerate(inputs) if token]
        steps = [index for index, token in enumerate(produced) if token]
        attention = np.asarray(outputs["attention"][row])[np.ix_(steps, words)]
        label = _text(outputs["label"][row]) if "label" in outputs else ""
        confidence = float(outputs["confidence"][row]) if "confidence" in outputs else None
        alignments.append(Alignment(text, _text(outputs["code"][row]), float(outputs["score"][row]),
                                    [inputs[i] for i in words], [produced[i] for i in steps], attention, label,
                                    confidence))
    return alignments


def predict_local(path: Path, texts: Sequence[str], signature: str = "serving_default") -> dict:
    """Run the SavedModel's signature in process; numpy outputs."""
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot load the SavedModel ({error})") from None
    if signature not in loaded.signatures:
        raise UserError(f"{path}: no signature {signature!r}; it has {', '.join(loaded.signatures)}")
    function = loaded.signatures[signature]
    missing = [name for name in REQUIRED_OUTPUTS if name not in function.structured_outputs]
    if missing:
        raise UserError(f"{path}: signature {signature!r} has no {', '.join(missing)} output: not a seq2seq model "
                        f"with attention (it returns {', '.join(sorted(function.structured_outputs))})")
    return {name: value.numpy() for name, value in function(text=tf.constant(list(texts))).items()}


def predict_remote(target: str, model: str, texts: Sequence[str], signature: str = "serving_default") -> dict:
    """Ask a served model over gRPC; the same outputs as `predict_local`."""
    import grpc

    from tfnlp.serving import client

    try:
        outputs = client.predict(texts, model, target, signature=signature, timeout=30.0)
    except grpc.RpcError as error:
        raise UserError(f"{target}: {error.code().name}: {error.details()}") from None
    missing = [name for name in REQUIRED_OUTPUTS if name not in outputs]
    if missing:
        raise UserError(f"{model} at {target}: no {', '.join(missing)} output: not a seq2seq model with attention")
    return outputs


def terminal_report(alignment: Alignment) -> str:
    """Lines for the terminal: the prediction, then each character and the word it attended to most."""
    lines = [f"{alignment.text}\n  -> " + alignment.title.replace("\n", " ")]
    for character, word, weight in alignment.strongest_words():
        lines.append(f"     {character:>5}  <- {word or '(no input word)'} ({weight:.2f})")
    return "\n".join(lines)


def html_page(alignments: Sequence[Alignment]) -> str:
    """A self-contained HTML page: each heatmap embedded as a PNG data URI, with its words."""
    sections = []
    for alignment in alignments:
        image = base64.b64encode(figure_png(attention_figure([alignment]))).decode("ascii")
        rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{html.escape(w)}</td><td>{x:.2f}</td></tr>"
                       for c, w, x in alignment.strongest_words())
        sections.append(
            f"<section><h2>{html.escape(alignment.text)}</h2><p><b>{html.escape(alignment.title)}</b></p>"
            f"<img alt='attention heatmap' src='data:image/png;base64,{image}'>"
            f"<table><tr><th>character</th><th>strongest input word</th><th>weight</th></tr>{rows}</table>"
            "</section>")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>tfnlp attention</title>"
            "<style>body{font-family:sans-serif;max-width:70em;margin:auto}img{max-width:100%}"
            "td,th{padding:0 1em;text-align:left}</style></head><body><h1>Attention</h1>"
            + "".join(sections) + "</body></html>\n")


def _write_figures(alignments: list[Alignment], output: Path, grid: bool) -> list[Path]:
    if grid or len(alignments) == 1:
        return [save_figure(attention_figure(alignments), output)]
    return [save_figure(attention_figure([alignment]), output.with_name(f"{output.stem}-{index}{output.suffix}"))
            for index, alignment in enumerate(alignments, start=1)]


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.attention", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="SavedModel folder, model folder, or model name under --export_base")
    parser.add_argument("texts", nargs="*", help="texts to decode")
    parser.add_argument("--server", help="host:port of a gRPC model server to ask instead of a local model")
    parser.add_argument("--model", dest="served_model", help="with --server: the served model's name")
    parser.add_argument("--file", help="a text file, one text per line")
    parser.add_argument("-o", "--output", default="heatmap.png", help="PNG path (default heatmap.png)")
    parser.add_argument("--grid", action="store_true", help="several texts in one figure instead of one file each")
    parser.add_argument("--html", help="also write a self-contained HTML page here")
    parser.add_argument("--export_base", default="savedmodels", help="where model names are looked up")
    parser.add_argument("--signature", default="serving_default")
    args = parser.parse_args(argv)
    if args.server:
        if not args.served_model:
            raise UserError("--server needs --model NAME (the served model)")
        if args.model:  # with --server, every positional argument is a text
            args.texts = [args.model, *args.texts]
        texts = read_texts(args.texts, args.file)
        outputs = predict_remote(args.server, args.served_model, texts, args.signature)
    else:
        if not args.model:
            raise UserError("name a model (folder or name under --export_base), or use --server with --model")
        texts = read_texts(args.texts, args.file)
        outputs = predict_local(resolve_model(args.model, Path(args.export_base)), texts, args.signature)
    alignments = alignments_from_outputs(texts, outputs)
    for alignment in alignments:
        print(terminal_report(alignment))
    for written in _write_figures(alignments, Path(args.output), args.grid):
        print(f"heatmap: {written}")
    if args.html:
        Path(args.html).write_text(html_page(alignments), encoding="utf-8")
        print(f"html: {args.html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
