"""TFX-style pipelines without Beam or a metadata store: validate -> train -> evaluate by slice -> bless against the
version in service -> infra-validate -> push, with a model card.

    python -m tfnlp.pipeline run pipelines/icd10_fr.toml [--data SRC] [--set k=v ...] [--tiny] [--workdir DIR]
                                                          [--export_base DIR] [--serving_config FILE]
    python -m tfnlp.pipeline status [--export_base DIR]

Exit codes of `run`: 0 blessed and pushed, 3 not blessed (nothing pushed), 2 an error (bad TOML, missing data, a
fatal data anomaly). A pipeline file:

    [pipeline]
    experiment = "icd10_seq2seq"    # a registered experiment
    data = "cim10"                  # its data source (--data replaces it)
    push_to = "savedmodels"         # the export base the model server reads (--export_base replaces it)
    serving_config = "serving/models.config"

    [train]                         # [data], [model], [train]: overrides, the same keys as --set
    epochs = 18

    [blessing]
    metric = "exact_match"          # a metric of the evaluation through the SavedModel
    higher_is_better = true
    min_improvement = 0.0           # over the version in service (none yet: only the floors apply)
    baseline_floor = true           # must beat the most frequent code / label (or no entity) on the test split
    floors = { chapter_accuracy = 0.5 }
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp import experiments
from tfnlp.errors import UserError, cli_main
from tfnlp.paths import writable_folder

EXIT_NOT_BLESSED = 3
CARD_JSON, CARD_MARKDOWN = "model_card.json", "model_card.md"
# What the README says each family of models cannot do, copied into its model cards.
LIMITATIONS = {
    "seq2seq": "Trained on official label wording. On the cim10 test split a TF-IDF linear SVM predicts the category "
               "better, and on everyday phrasings unlike the labels it was reported to do worse than the TF-IDF "
               "baselines. It writes only codes of the classification it was given (constrained decoding).",
    "classification": "Labels unseen in training map to <UNK>, which the model never predicts. With about five "
                      "examples per class, word-level neural models trail TF-IDF + logistic regression.",
    "tagging": "Tags are read per token (argmax): a predicted sequence may start an entity with I-, read leniently. "
               "The served tokenizer (letters/digits runs, other characters alone) may cut words differently from "
               "the training corpus.",
}
ASSET_OF_SOURCE = {"cim10": "cim10-fr", "icd10cm": "icd10cm", "movie-reviews": "movie-reviews", "tweets": "tweets",
                   "wnut16": "wnut16"}


@dataclasses.dataclass(frozen=True)
class Blessing:
    """When a candidate may replace the version in service."""

    metric: str
    higher_is_better: bool = True
    min_improvement: float = 0.0
    baseline_floor: bool = True
    floors: dict = dataclasses.field(default_factory=dict)

    def decide(self, candidate: dict, pushed: dict | None) -> tuple[bool, list[str]]:
        """(blessed, the reasons) for a candidate's and the pushed version's evaluations."""
        sign = 1 if self.higher_is_better else -1
        value = candidate["overall"][self.metric]
        reasons = []
        for metric, floor in self.floors.items():
            if sign * (candidate["overall"][metric] - floor) < 0:
                reasons.append(f"{metric} {candidate['overall'][metric]:.4f} is past its floor {floor}")
        if self.baseline_floor and sign * (value - candidate["baseline"][self.metric]) <= 0:
            reasons.append(f"{self.metric} {value:.4f} does not beat the baseline's "
                           f"{candidate['baseline'][self.metric]:.4f}")
        if pushed is not None:
            gain = sign * (value - pushed["overall"][self.metric])
            needed = f"at least {self.min_improvement}" if self.min_improvement else "above 0"
            if gain < self.min_improvement or gain <= 0:
                reasons.append(f"{self.metric} {value:.4f} against {pushed['overall'][self.metric]:.4f} in service: "
                               f"a gain of {gain:+.4f}, {needed} needed")
        return not reasons, reasons


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A pipeline file, read."""

    path: Path
    experiment: str
    data: str
    push_to: str
    serving_config: str
    overrides: tuple[str, ...]
    blessing: Blessing


def read_pipeline(path: str | Path) -> Pipeline:
    """A pipeline TOML file; UserError naming the file and what is wrong."""
    import tomllib

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"{path}: cannot read the pipeline ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML ({error})") from None
    unknown = sorted(set(raw) - {"pipeline", "blessing", *config_lib.SECTIONS})
    if unknown:
        known = ", ".join(("pipeline", "blessing", *config_lib.SECTIONS))
        raise UserError(f"{path}: unknown tables {unknown}; known: {known}")
    head, blessing = raw.get("pipeline", {}), raw.get("blessing", {})
    if "experiment" not in head or "metric" not in blessing:
        raise UserError(f"{path}: needs [pipeline] experiment = \"...\" and [blessing] metric = \"...\"")
    try:
        rule = Blessing(**blessing)
    except TypeError as error:
        raise UserError(f"{path}: [blessing]: {error}") from None
    overrides = tuple(f"{section}.{key}={_toml_value(value)}" for section in config_lib.SECTIONS
                      for key, value in raw.get(section, {}).items())
    return Pipeline(path, head["experiment"], head.get("data", ""), head.get("push_to", "savedmodels"),
                    head.get("serving_config", "serving/models.config"), overrides, rule)


def _toml_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def configured(pipeline: Pipeline, args: argparse.Namespace) -> config_lib.Experiment:
    """The pipeline's experiment with its data, its overrides, then --data and --set."""
    experiment = experiments.get(pipeline.experiment, tiny=args.tiny)
    source = args.data or pipeline.data or experiment.data.source
    experiment = dataclasses.replace(experiment, data=dataclasses.replace(experiment.data, source=source))
    return config_lib.validate(config_lib.apply_overrides(experiment, [*pipeline.overrides, *args.overrides]))


def validate_data(loaded, experiment: config_lib.Experiment) -> list:
    """The data checks of `tfnlp.explore`, printed with their counts; a fatal one stops the run."""
    from tfnlp import explore

    anomalies = explore.check(loaded.splits, experiment.model.max_input_tokens)
    print(f"data checks: {len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}")
    for anomaly in anomalies:
        print(f"  {anomaly.severity}: {anomaly.name}: {anomaly.count} ({anomaly.description})"
              + (f"; e.g. {anomaly.examples[0]}" if anomaly.examples else ""))
    fatal = [anomaly for anomaly in anomalies if anomaly.severity == "fatal"]
    if fatal:
        raise UserError(f"data {experiment.data.source}: {fatal[0].name}: {fatal[0].description}")
    return anomalies


def infra_validate(version: Path, name: str, timeout: float = 120.0) -> str | None:
    """Load `version` in tfnlp's TF Serving-compatible server (a subprocess on a free loopback port), replay its
    warmup requests over gRPC, check every answer. None when it serves; otherwise why not."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2, prediction_service_pb2_grpc

    from tfnlp.export import WARMUP_FILE
    from tfnlp.serving import process

    warmup = version / "assets.extra" / WARMUP_FILE
    if not warmup.exists():
        return f"{warmup} is missing: nothing to replay"
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / name
        shutil.copytree(version, base / "1")
        try:
            with process.running_server(name, base, start_timeout=timeout) as (target, _):
                stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
                for record in tf.data.TFRecordDataset(str(warmup)):
                    request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
                    request.model_spec.name = name
                    response = stub.Predict(request, timeout=timeout)
                    if not response.outputs:
                        return "a warmup request got an answer with no output"
        except RuntimeError as error:
            return f"the server did not load it: {str(error)[-500:]}"
        except grpc.RpcError as error:
            return f"a warmup request failed: {error.code().name}: {error.details()}"
    return None


def data_provenance(source: str) -> dict:
    """Where the data came from: the asset package, version and sha256, or the files given."""
    from tfnlp import assets

    name = source.partition(":")[0]
    if name in ASSET_OF_SOURCE:
        asset = assets.ASSETS.get(ASSET_OF_SOURCE[name])
        return {"source": source, "asset": asset.name, "package": asset.requirement, "sha256": asset.sha256}
    path = Path(source.partition(":")[2])
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    return {"source": source, "files": {str(file): assets.sha256_of(file) for file in files if file.is_file()}}


def _git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    return result.stdout.strip() if result.returncode == 0 else "not a git checkout"


def model_card(experiment: config_lib.Experiment, metrics: dict, candidate: dict, pushed: dict | None,
               replaced: int | None, decision: dict) -> dict:
    """What a pushed version carries about itself (`assets.extra/model_card.json`)."""
    import keras
    import tensorflow as tf

    import tfnlp

    return {"experiment": config_lib.to_dict(experiment), "data": data_provenance(experiment.data.source),
            "split_sizes": metrics["sizes"], "train_seconds": metrics["train_seconds"],
            "evaluation": candidate, "replaced_version": replaced, "replaced_evaluation": pushed,
            "decision": decision, "pushed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": {"tfnlp": tfnlp.__version__, "tensorflow": tf.__version__, "keras": keras.__version__},
            "git_commit": _git_commit(), "limitations": LIMITATIONS[experiment.task]}


def card_markdown(card: dict) -> str:
    """The model card for people (`assets.extra/model_card.md`)."""
    from tfnlp.train import format_table

    evaluation, decision = card["evaluation"], card["decision"]
    lines = [f"# {card['experiment']['name']}", "", card["experiment"]["description"], "",
             f"- Data: `{card['data']['source']}`" + (f" ({card['data']['package']}, sha256 {card['data']['sha256']})"
                                                     if "package" in card["data"] else ""),
             f"- Split sizes: {card['split_sizes']}; trained {card['train_seconds']:.0f} s",
             f"- Pushed {card['pushed_at']}, replacing version {card['replaced_version'] or 'none'}",
             f"- Blessing: {decision['metric']} {decision['candidate']:.4f} (in service: "
             f"{'-' if decision['pushed'] is None else format(decision['pushed'], '.4f')}); rule: {decision['rule']}",
             f"- tfnlp {card['versions']['tfnlp']}, TensorFlow {card['versions']['tensorflow']}, Keras "
             f"{card['versions']['keras']}, commit {card['git_commit']}", "", "## Test split", "",
             format_table({"model": evaluation["overall"], "baseline": evaluation["baseline"],
                           **({"replaced version": card["replaced_evaluation"]["overall"]}
                              if card["replaced_evaluation"] else {})}, "", 4),
             "", f"## By {evaluation['slice_by']}", "", format_table(evaluation["slices"], "", 4), "",
             "## Known limitations", "",
             card["limitations"], ""]
    return "\n".join(lines)


def pushed_version(push_to: Path, name: str) -> Path | None:
    from tfnlp.export import latest_version

    return latest_version(Path(push_to) / name)


def write_serving_config(push_to: Path, config_path: Path) -> None:
    """Regenerate the model server's config from every model under the push target."""
    from tfnlp.serving.config import exported_models, model_config_text

    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(model_config_text(exported_models(push_to)))
    print(f"wrote {config_path}")


def run(pipeline: Pipeline, args: argparse.Namespace) -> int:
    """validate -> train -> evaluate -> bless -> infra-validate -> push; the exit code."""
    from tfnlp import evaluation, export, train
    from tfnlp.data import sources

    started = time.perf_counter()
    experiment = configured(pipeline, args)
    push_to = writable_folder(args.export_base or pipeline.push_to, "--export_base")
    workdir = writable_folder(args.workdir or Path("runs") / "pipelines" / experiment.name /
                              datetime.now().strftime("%Y%m%d-%H%M%S"), "--workdir")
    print(f"pipeline {pipeline.path}: {experiment.name} -> {push_to / experiment.name}")
    loaded = sources.load(experiment.data.source, experiment.data)
    validate_data(loaded, experiment)
    candidate_version = train.run(experiment, workdir, workdir / "candidate", loaded)
    metrics = json.loads((workdir / train.METRICS_FILE).read_text())
    candidate = evaluation.evaluate_version(candidate_version, experiment.task, loaded.splits,
                                            experiment.data.label_length)
    in_service = pushed_version(push_to, experiment.name)
    pushed = (evaluation.evaluate_version(in_service, experiment.task, loaded.splits, experiment.data.label_length)
              if in_service else None)
    blessed, reasons = pipeline.blessing.decide(candidate, pushed)
    rule = pipeline.blessing
    decision = {"metric": rule.metric, "candidate": candidate["overall"][rule.metric],
                "pushed": pushed["overall"][rule.metric] if pushed else None, "blessed": blessed, "reasons": reasons,
                "rule": f"{'higher' if rule.higher_is_better else 'lower'} is better, min improvement "
                        f"{rule.min_improvement}, floors {rule.floors}, beat the baseline: {rule.baseline_floor}"}
    (workdir / "evaluation.json").write_text(json.dumps({"candidate": candidate, "in_service": pushed,
                                                         "decision": decision}, indent=1))
    in_service_value = "-" if pushed is None else format(decision["pushed"], ".4f")
    print(f"evaluation through the SavedModel on the test split: {rule.metric} candidate "
          f"{decision['candidate']:.4f}, in service {in_service_value}, "
          f"baseline {candidate['baseline'][rule.metric]:.4f}")
    if not blessed:
        print("not blessed, nothing pushed: " + "; ".join(reasons))
        return EXIT_NOT_BLESSED
    problem = infra_validate(candidate_version, experiment.name)
    if problem:
        print(f"blessed, but infra-validation failed, nothing pushed: {problem}")
        return EXIT_NOT_BLESSED
    print("infra-validation: tfnlp's server loaded the candidate and answered its warmup requests")
    card = model_card(experiment, metrics, candidate, pushed, int(in_service.name) if in_service else None, decision)
    version = export.publish_version(candidate_version, push_to, experiment.name, {
        CARD_JSON: json.dumps(card, indent=2, ensure_ascii=False, default=str) + "\n",
        CARD_MARKDOWN: card_markdown(card)})
    write_serving_config(push_to, Path(args.serving_config or pipeline.serving_config))
    print(f"blessed and pushed in {time.perf_counter() - started:.0f} s\npushed: {version}")
    return 0


def status(export_base: Path) -> list[str]:
    """A line per version under `export_base`, newest first: its headline metric, blessing and push time."""
    from tfnlp.export import existing_versions

    lines = []
    for model in sorted(path for path in Path(export_base).iterdir() if path.is_dir()) if export_base.is_dir() else ():
        for number in reversed(existing_versions(model)):
            card_path = model / str(number) / "assets.extra" / CARD_JSON
            if not card_path.exists():
                lines.append(f"{model.name} {number}: not pushed by a pipeline (no {CARD_JSON})")
                continue
            card = json.loads(card_path.read_text())
            decision = card["decision"]
            lines.append(f"{model.name} {number}: {decision['metric']} {decision['candidate']:.4f}, "
                         f"blessed ({'; '.join(decision['reasons']) or 'all rules met'}), pushed {card['pushed_at']}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tfnlp.pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    runner = commands.add_parser("run", help="run a pipeline file")
    runner.add_argument("file", help="a pipeline TOML file (pipelines/*.toml)")
    runner.add_argument("--data", help="data source replacing the pipeline's")
    runner.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE")
    runner.add_argument("--tiny", action="store_true", help="the experiment's tiny variant")
    runner.add_argument("--workdir", help="run folder (default runs/pipelines/<experiment>/<timestamp>)")
    runner.add_argument("--export_base", help="push target replacing the pipeline's push_to")
    runner.add_argument("--serving_config", help="model server config to regenerate (default: the pipeline's)")
    lister = commands.add_parser("status", help="pushed versions, newest first")
    lister.add_argument("--export_base", default="savedmodels")
    return parser


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "status":
        lines = status(Path(args.export_base))
        print("\n".join(lines) if lines else f"{args.export_base}: no model")
        return 0
    code = run(read_pipeline(args.file), args)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
