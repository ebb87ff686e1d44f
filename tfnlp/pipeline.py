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
    min_improvement = 0.0           # gain needed over the version in service (0: any gain; a tie never replaces
                                    # it; negative: a loss that small is accepted)
    baseline_floor = true           # must beat the strongest baseline of its own run on the test split: the TF-IDF
                                    # rows (train.baselines) and the most frequent code / label (or no entity)
    floors = { chapter_accuracy = 0.5 }
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tfnlp import config as config_lib
from tfnlp import experiments
from tfnlp.cli import exit_on_sigterm
from tfnlp.errors import UserError, cli_main
from tfnlp.paths import writable_folder

EXIT_NOT_BLESSED = 3
@dataclasses.dataclass(frozen=True)
class Blessing:
    """When a candidate may replace the version in service."""

    metric: str
    higher_is_better: bool = True
    min_improvement: float = 0.0
    baseline_floor: bool = True
    floors: dict = dataclasses.field(default_factory=dict)

    def check(self, metrics: Sequence[str], where: str) -> None:
        """Refuse a metric or floor the evaluation does not give, naming those it does."""
        for name in (self.metric, *self.floors):
            if name not in metrics:
                raise UserError(f"{where}: [blessing] {name!r} is not a metric of this task's evaluation; use one of "
                                f"{', '.join(metrics)}")

    def decide(self, candidate: dict, pushed: dict | None,
               baselines: dict[str, dict] | None = None) -> tuple[bool, list[str]]:
        """(blessed, the reasons) for a candidate's and the pushed version's evaluations.

        Args:
            candidate, pushed: `tfnlp.evaluation` results (pushed: None when nothing is in service).
            baselines: the run's own baseline rows on the same test split (name -> metrics); the trivial baseline of
                the evaluation is always among them.
        """
        sign = 1 if self.higher_is_better else -1
        value = candidate["overall"][self.metric]
        reasons = []
        for metric, floor in self.floors.items():
            if sign * (candidate["overall"][metric] - floor) < 0:
                side = "below" if self.higher_is_better else "above"
                reasons.append(f"{metric} {candidate['overall'][metric]:.4f} is {side} its floor {floor}")
        rows = {"most frequent (trivial)": candidate["baseline"], **(baselines or {})}
        rows = {name: scores[self.metric] for name, scores in rows.items() if self.metric in scores}
        if self.baseline_floor and rows:
            name, best = max(rows.items(), key=lambda item: sign * item[1])
            if sign * (value - best) <= 0:
                reasons.append(f"{self.metric} {value:.4f} does not beat {name}'s {best:.4f}, the strongest baseline "
                               "of this run")
        if pushed is not None:
            gain = sign * (value - pushed["overall"][self.metric])
            enough = gain >= self.min_improvement and (gain > 0 or self.min_improvement < 0)
            if not enough:
                needed = f"at least {self.min_improvement:+.4f}" if self.min_improvement else "above 0"
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
    tables: dict  # its [data], [model], [train] tables, as TOML read them
    blessing: Blessing


def read_pipeline(path: str | Path) -> Pipeline:
    """A pipeline TOML file; UserError naming the file and what is wrong."""
    path = Path(path)
    raw = config_lib.read_toml(path)
    unknown = sorted(set(raw) - {"pipeline", "blessing", *config_lib.SECTIONS})
    if unknown:
        known = ", ".join(("pipeline", "blessing", *config_lib.SECTIONS))
        raise UserError(f"{path}: unknown tables {unknown}; known: {known}")
    head, blessing = raw.get("pipeline", {}), raw.get("blessing", {})
    if "experiment" not in head or "metric" not in blessing:
        raise UserError(f"{path}: needs [pipeline] experiment = \"...\" and [blessing] metric = \"...\"")
    _check_types(path, "pipeline", head, {"experiment": str, "data": str, "push_to": str, "serving_config": str})
    _check_types(path, "blessing", blessing, {"metric": str, "higher_is_better": bool, "min_improvement": float,
                                              "baseline_floor": bool, "floors": dict})
    for metric, floor in blessing.get("floors", {}).items():
        if isinstance(floor, bool) or not isinstance(floor, int | float):
            raise UserError(f"{path}: [blessing] floors.{metric} takes a number, got {floor!r}")
    rule = Blessing(**blessing)
    tables = {section: raw[section] for section in config_lib.SECTIONS if section in raw}
    return Pipeline(path, head["experiment"], head.get("data", ""), head.get("push_to", "savedmodels"),
                    head.get("serving_config", "serving/models.config"), tables, rule)


def _check_types(path: Path, table: str, values: dict, types: dict[str, type]) -> None:
    """Refuse a key the table does not have, or a value of another type (an int is a valid float)."""
    for key, value in values.items():
        if key not in types:
            raise UserError(f"{path}: [{table}] has no key {key!r}; known: {', '.join(types)}")
        try:
            config_lib.typed_value(value, types[key])
        except ValueError as error:
            raise UserError(f"{path}: [{table}] {key} takes a {types[key].__name__} ({error})") from None


def configured(pipeline: Pipeline, args: argparse.Namespace) -> config_lib.Experiment:
    """The pipeline's experiment with its data and tables, then --data and --set."""
    experiment = experiments.get(pipeline.experiment, tiny=args.tiny)
    if pipeline.data:
        experiment = dataclasses.replace(experiment, data=dataclasses.replace(experiment.data, source=pipeline.data))
    experiment = config_lib.apply_tables(experiment, pipeline.tables, str(pipeline.path))
    return experiments.configure(experiment, data=args.data, overrides=args.overrides)


def validate_data(loaded, experiment: config_lib.Experiment) -> list:
    """The data checks of `tfnlp.explore`, printed with their counts; a fatal one stops the run."""
    from tfnlp import explore

    anomalies = explore.check(loaded.splits, getattr(experiment.model, "max_input_tokens", explore.DEFAULT_MAX_WORDS))
    print(f"data checks: {len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}")
    for anomaly in anomalies:
        print(f"  {anomaly.severity}: {anomaly.name}: {anomaly.count} ({anomaly.description})"
              + (f"; e.g. {anomaly.examples[0]}" if anomaly.examples else ""))
    fatal = [anomaly for anomaly in anomalies if anomaly.severity == "fatal"]
    if fatal:
        raise UserError(f"data {experiment.data.source}: {fatal[0].name}: {fatal[0].description}")
    return anomalies


INFRA_COPY_PREFIX = "tfnlp-infra-"


def remove_stale_copies() -> None:
    """Remove the temporary model copies of infra-validations whose pipeline died without cleaning up (SIGKILL: its
    server dies with it, the copy stays); the folder names carry the pipeline's process id."""
    from tfnlp.serving.process import process_alive

    for copy in Path(tempfile.gettempdir()).glob(f"{INFRA_COPY_PREFIX}*-*"):
        pid = copy.name[len(INFRA_COPY_PREFIX):].split("-")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(copy, ignore_errors=True)


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
    remove_stale_copies()
    with tempfile.TemporaryDirectory(prefix=f"{INFRA_COPY_PREFIX}{os.getpid()}-") as scratch:
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


@contextlib.contextmanager
def push_lock(push_to: Path, name: str):
    """An exclusive lock on pushing model `name` under `push_to` (flock on a hidden file beside its model folder, so the
    folder holds versions only)."""
    import fcntl

    Path(push_to).mkdir(parents=True, exist_ok=True)
    with open(Path(push_to) / f".{name}.push.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
    from tfnlp import evaluation
    from tfnlp import run as run_lib
    from tfnlp.data import sources
    from tfnlp.tasks import task_class

    started = time.perf_counter()
    experiment = configured(pipeline, args)
    pipeline.blessing.check(task_class(experiment.task).served_metrics, str(pipeline.path))
    push_to = writable_folder(args.export_base or pipeline.push_to, "--export_base")
    workdir = writable_folder(args.workdir or Path("runs") / "pipelines" / experiment.name /
                              datetime.now().strftime("%Y%m%d-%H%M%S"), "--workdir")
    print(f"pipeline {pipeline.path}: {experiment.name} -> {push_to / experiment.name}")
    loaded = sources.load(experiment.data.source, experiment.data)
    validate_data(loaded, experiment)
    finished = run_lib.run_experiment(experiment, workdir, workdir / "candidate", loaded)
    candidate = evaluation.evaluate_version(finished.export, experiment, loaded.splits)
    if args.tiny:
        print("a smoke run (--tiny: a few hundred records, one epoch): its blessing says whether the pipeline works, "
              "not whether the model is good")
    # Held from reading the version in service to pushing: a second pipeline pushing the same model meanwhile waits,
    # then compares its candidate with this push.
    with push_lock(push_to, experiment.name):
        in_service = pushed_version(push_to, experiment.name)
        pushed = evaluation.evaluate_version(in_service, experiment, loaded.splits) if in_service else None
        decision = decide(pipeline.blessing, candidate, pushed, finished, workdir)
        if not decision["blessed"]:
            print("not blessed, nothing pushed: " + "; ".join(decision["reasons"]))
            return EXIT_NOT_BLESSED
        problem = infra_validate(finished.export, experiment.name)
        if problem:
            print(f"blessed, but infra-validation failed, nothing pushed: {problem}")
            return EXIT_NOT_BLESSED
        print("infra-validation: tfnlp's server loaded the candidate and answered its warmup requests")
        version = push(pipeline, finished, candidate, in_service, pushed, decision, push_to)
    write_serving_config(push_to, Path(args.serving_config or pipeline.serving_config))
    print(f"blessed and pushed in {time.perf_counter() - started:.0f} s\npushed: {version}")
    return 0


def decide(rule: Blessing, candidate: dict, pushed: dict | None, finished, workdir: Path) -> dict:
    """The blessing decision (against the version in service and the run's own baselines), printed and kept in the
    workdir's `evaluation.json`."""
    baselines = {name: scores for name, scores in finished.test.items() if name.startswith("baseline")}
    blessed, reasons = rule.decide(candidate, pushed, baselines)
    decision = {"metric": rule.metric, "candidate": candidate["overall"][rule.metric],
                "pushed": pushed["overall"][rule.metric] if pushed else None, "blessed": blessed, "reasons": reasons,
                "rule": f"{'higher' if rule.higher_is_better else 'lower'} is better, min improvement "
                        f"{rule.min_improvement}, floors {rule.floors}, beat the strongest baseline: "
                        f"{rule.baseline_floor}", "baselines": baselines}
    (workdir / "evaluation.json").write_text(json.dumps({"candidate": candidate, "in_service": pushed,
                                                         "decision": decision}, indent=1))
    in_service = "-" if pushed is None else format(decision["pushed"], ".4f")
    print(f"evaluation through the SavedModel on the test split: {rule.metric} candidate {decision['candidate']:.4f}, "
          f"in service {in_service}, most frequent {candidate['baseline'][rule.metric]:.4f}"
          + "".join(f", {name} {scores[rule.metric]:.4f}" for name, scores in baselines.items()
                    if rule.metric in scores))
    return decision


def push(pipeline: Pipeline, finished, candidate: dict, in_service: Path | None, pushed: dict | None,
         decision: dict, push_to: Path) -> Path:
    """Publish the candidate as the next version, its card completed with the decision; the new version."""
    from tfnlp import export, model_card

    card = json.loads((finished.export / "assets.extra" / model_card.CARD_JSON).read_text(encoding="utf-8"))
    card["pipeline"] = {"file": str(pipeline.path), "decision": decision, "candidate_evaluation": candidate,
                        "replaced_version": int(in_service.name) if in_service else None,
                        "replaced_evaluation": pushed, "pushed_at": datetime.now(UTC).isoformat(timespec="seconds")}
    name = finished.experiment.name
    return export.publish_version(finished.export, push_to, name, {
        model_card.CARD_JSON: json.dumps(card, indent=2, ensure_ascii=False, default=str) + "\n",
        model_card.CARD_MARKDOWN: model_card.markdown(card, str(push_to / name))})


def status(export_base: Path) -> list[str]:
    """A line per version under `export_base`, newest first: how it was made and, for a pipeline's push, its
    blessing and push time. A damaged card is named; the other versions are still listed."""
    from tfnlp.export import existing_versions

    models = sorted(path for path in Path(export_base).iterdir() if path.is_dir()) if export_base.is_dir() else []
    return [f"{model.name} {number}: {version_status(model / str(number))}"
            for model in models for number in reversed(existing_versions(model))]


def version_status(version: Path) -> str:
    """One version's line for `status`."""
    from tfnlp.model_card import CARD_JSON

    path = version / "assets.extra" / CARD_JSON
    if not path.exists():
        return f"no {CARD_JSON} (not exported by tfnlp)"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
        pushed = card.get("pipeline") or (card if "decision" in card else None)  # older cards kept it at the top
        if not pushed:
            return f"exported by a training run at {card.get('created_at', '?')}, not pushed by a pipeline"
        decision = pushed["decision"]
        return (f"{decision['metric']} {decision['candidate']:.4f}, blessed "
                f"({'; '.join(decision['reasons']) or 'all rules met'}), pushed {pushed['pushed_at']}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        return f"damaged {path} ({type(error).__name__}: {error})"


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
    lister.add_argument("file", nargs="?", help="a pipeline TOML file: list its push target")
    lister.add_argument("--export_base", help="the export base to list (default: the pipeline's push_to, else "
                        "savedmodels)")
    return parser


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    exit_on_sigterm()
    if args.command == "status":
        base = Path(args.export_base or (read_pipeline(args.file).push_to if args.file else "savedmodels"))
        lines = status(base)
        print("\n".join(lines) if lines else f"{base}: no model")
        return 0
    code = run(read_pipeline(args.file), args)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
