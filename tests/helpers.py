"""Helpers shared by the tests: data the tests write, tiny presets, tiny runs, and exports read in a fresh process."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NCBI = SHARED_DATA / "ncbi-disease"

DISEASES = ["Crohn", "asthma", "diabetes", "leukemia"]
FILLER = ["the", "patient", "has", "severe", "and", "was", "treated", "today"]

# Runs in a fresh interpreter with TensorFlow (and tensorflow_text) alone: no tfnlp, no keras custom objects.
FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - registers the ops of word-piece and regex tokenizers
    assert "tfnlp" not in sys.modules
    model = tf.saved_model.load(sys.argv[1])
    function = model.signatures[sys.argv[2]]
    out = function(text=tf.constant(json.loads(sys.stdin.read()), dtype=tf.string))
    plain = lambda x: [plain(y) for y in x] if isinstance(x, list) else x.decode() if isinstance(x, bytes) else x
    print(json.dumps({
        "outputs": {name: plain(value.numpy().tolist()) for name, value in out.items()},
        "shapes": {name: list(value.shape) for name, value in out.items()},
        "dtypes": {name: value.dtype.name for name, value in out.items()},
        "inputs": {k: v.dtype.name + str(v.shape) for k, v in function.structured_input_signature[1].items()},
    }))
""")


def served_in_fresh_process(version: Path, texts: list[str], signature: str = "serving_default") -> dict:
    """Every output of an exported model for `texts`, decoded to Python values, from one fresh process that imports
    TensorFlow and tensorflow_text only; also `__shapes__`, `__dtypes__` and `__inputs__` (the signature's input
    specs)."""
    result = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(version), signature], input=json.dumps(texts),
                            capture_output=True, text=True, timeout=300,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return {**answer["outputs"], "__shapes__": answer["shapes"], "__dtypes__": answer["dtypes"],
            "__inputs__": answer["inputs"]}


def run_tiny(experiment: str, tmp_path: Path, *extra: str) -> dict:
    """Train the tiny variant of `experiment` through the CLI into `tmp_path` (work/, export/); its metrics.json."""
    from tfnlp import run as run_lib
    from tfnlp import train

    argv = [experiment, "--tiny", "--workdir", str(tmp_path / "work"), "--export_base", str(tmp_path / "export"),
            *extra]
    assert train.main(argv) == 0
    return json.loads((tmp_path / "work" / run_lib.METRICS_FILE).read_text())


def tiny_bert_preset(folder: Path, words: list[str], hidden_dim: int = 16) -> Path:
    """A 2-layer keras-hub BERT preset with random weights over `words` (plus BERT's special tokens), saved the way
    keras-hub saves presets."""
    import keras_hub

    vocabulary = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]))
    keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(str(folder))
    keras_hub.models.BertBackbone(vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=hidden_dim,
                                  intermediate_dim=2 * hidden_dim, max_sequence_length=32).save_to_preset(str(folder))
    return folder


def write_conll(folder: Path, count: int = 160) -> Path:
    """train / devel / test CoNLL files of filler words and one disease mention per sentence (sometimes two words),
    each sentence starting with a capital."""
    rng = np.random.default_rng(0)
    for part, size in (("train", count), ("devel", 30), ("test", 30)):
        lines = []
        for _ in range(size):
            words = [(word, "O") for word in rng.choice(FILLER, size=4)]
            position = int(rng.integers(0, 4))
            words.insert(position, (str(rng.choice(DISEASES)), "B-Disease"))
            if rng.random() < 0.5:
                words.insert(position + 1, ("disease", "I-Disease"))
            words[0] = (words[0][0][:1].upper() + words[0][0][1:], words[0][1])  # sentences start with a capital
            lines += [f"{word}\t{tag}" for word, tag in words] + [""]
        (folder / f"{part}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def entities_found(texts: list[str], out: dict) -> list[tuple[str, str, str]]:
    """(the text sliced at the entity's offsets, its type, its entity_text) for every served entity."""
    return [(text[start:end], kind, entity) for text, starts, ends, kinds, entities in
            zip(texts, out["entity_start"], out["entity_end"], out["entity_type"], out["entity_text"], strict=True)
            for start, end, kind, entity in zip(starts, ends, kinds, entities, strict=True) if start >= 0]


def assert_picture(path: Path, min_width: int = 200, min_height: int = 150) -> np.ndarray:
    """Decode a PNG and check it is a picture: at least `min_width` x `min_height` pixels, and not blank (more than a
    handful of distinct colours, and ink covering part of it). Returns the pixels."""
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))
    height, width = pixels.shape[:2]
    assert width >= min_width and height >= min_height, f"{path}: {width}x{height} pixels"
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 8, f"{path}: {len(colours)} colours, nothing drawn"
    background = np.all(pixels[..., :3] == pixels[0, 0, :3], axis=-1)
    assert 0.01 < 1 - background.mean() < 0.99, f"{path}: {1 - background.mean():.1%} of the pixels are drawn"
    return pixels


def variable_bytes(version: Path) -> dict[str, int]:
    """Bytes of each variable of a SavedModel."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(version / "variables" / "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    return {name: int(tf.TensorShape(shape).num_elements()) * dtypes[name].size
            for name, shape in reader.get_variable_to_shape_map().items() if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def assert_lean_export(version: Path, metrics: dict) -> None:
    """The export holds inference state only: no optimizer slot or step, and its model's variables weigh exactly
    what the trained model's weights do (metrics.json's `parameters`)."""
    sizes = variable_bytes(version)
    assert not [variable for variable in sizes if "optimizer" in variable.lower()]
    assert sum(size for variable, size in sizes.items() if variable.startswith("model/")) == \
        metrics["parameters"]["weight_bytes"]


@contextlib.contextmanager
def running_server(base: Path, *flags: str, name: str = "icd10_seq2seq"):
    """tfnlp's server on free loopback ports serving `base` as `name`; yields its gRPC and REST addresses."""
    from tfnlp.serving import process

    with process.running_server(name, base, *flags) as addresses:
        yield addresses


def http(url: str, body=None, method: str | None = None, headers: dict | None = None) -> tuple[int, dict]:
    """(status, JSON payload) of a REST call; `body` is JSON-encoded unless it is bytes."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def upper_module():
    """A tf.Module whose one signature takes `text` and answers one output, `upper`: exports without training."""
    import tensorflow as tf

    from tfnlp.tasks.base import TEXT_SPEC

    class Upper(tf.Module):
        @tf.function(input_signature=[TEXT_SPEC])
        def serve(self, text):
            return {"upper": tf.strings.upper(text)}

    return Upper()
