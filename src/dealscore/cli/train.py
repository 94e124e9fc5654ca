"""``dealscore train``, ``dealscore promote`` and ``dealscore models``: training and the model registry."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.status import Status
from rich.table import Table

from dealscore.cli import SchedulerOpt, app, console
from dealscore.cli.outputs import check_output_file, output_error
from dealscore.errors import DataValidationError


class _Steps:
    """Spinner on the running step, a line with its duration when it ends."""

    def __init__(self) -> None:
        self.status: Status | None = None
        self.current: str | None = None
        self.started = 0.0

    def __call__(self, message: str) -> None:
        self._finish()
        self.current, self.started = message, time.perf_counter()
        if self.status is None:
            self.status = console.status(message)
            self.status.start()
        else:
            self.status.update(message)

    def _finish(self) -> None:
        if self.current is not None:
            console.print(f"[green]✓[/] {self.current} [dim]({time.perf_counter() - self.started:.1f}s)[/]")

    def close(self) -> None:
        self._finish()
        self.current = None
        if self.status is not None:
            self.status.stop()


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def evaluation_table(report: dict[str, Any]) -> Table:
    """Model vs baselines (and the oracle when known) on the test slice."""
    win = report["win"]
    cols = {"model": win["model"], **win["baselines"]}
    if win["oracle"].get("available"):
        cols["oracle"] = win["oracle"]
    table = Table(title="Win probability on the test slice (most recent holdout)")
    table.add_column("metric")
    for name in cols:
        table.add_column(name.replace("_", " "), justify="right")
    for metric in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "top_decile_lift"):
        table.add_row(metric.replace("_", " "), *(_fmt(c.get(metric)) for c in cols.values()))
    return table


def win_readings(report: dict[str, Any]) -> list[str]:
    """Which model won the cross-validation and by how much, how it compares with the best baseline (bootstrap
    over deals), and what the learning curve says about more history."""
    from dealscore.training.bootstrap import sentence  # the CLI imports training code on use, as below

    win = report["win"]
    out = []
    sel = win["model"].get("selection")
    if sel:
        margin = sel["margin"]
        by = (f" by {margin['over_runner_up']:.4f} CV log loss over {margin['runner_up']}"
              if margin.get("over_runner_up") is not None else "")
        out.append(f"model chosen by time-series cross-validation: {sel['champion']} ({sel['family']}){by}; "
                   f"calibration {sel['calibration']}")
    for metric, row in (win.get("comparison") or {}).items():
        if not metric.startswith("_"):
            out.append(f"{metric.replace('_', ' ')}: model {sentence(metric, row)}")
    note = (win.get("learning_curve") or {}).get("note")
    if note:
        out.append(f"learning curve: {note}")
    return out


def stage_table(report: dict[str, Any]) -> Table:
    """Real-stage model vs trusting the declared stage."""
    st = report["stage"]
    table = Table(title="Real stage on the test slice")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("declared stage", justify="right")
    if st["model"].get("accuracy") is not None:
        for metric in ("accuracy", "macro_f1"):
            table.add_row(f"{metric.replace('_', ' ')} vs audited stage", _fmt(st["model"].get(metric)),
                          _fmt(st["declared"].get(metric)))
    free = st.get("label_free") or {}
    if free:
        auc, eta = free["win_rate_table_auc"], free["time_to_close_mae_days"]
        table.add_row("win-rate table AUC (label-free)", _fmt(auc["inferred"]), _fmt(auc["declared"]))
        table.add_row("time-to-close error, days (label-free)", _fmt(eta["inferred"]), _fmt(eta["declared"]))
    return table


def _concerns(exc: OSError, path: Path) -> bool:
    """Whether ``exc`` was raised on ``path`` or on a folder that holds it."""
    if not exc.filename:
        return False
    failed = Path(str(exc.filename)).absolute()
    target = path.absolute()
    return failed == target or failed in target.parents


@app.command("train")
def train(
    directory: Annotated[str, typer.Argument(
        help="history folder (CSV or Parquet tables); with --scheduler a partitioned history (path or URL)")],
    config: Annotated[Path | None, typer.Option("--config", help="training YAML (see training/configs)")] = None,
    report_json: Annotated[Path | None, typer.Option("--report-json", help="write the evaluation report here")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", help="MLflow experiment name")] = None,
    scheduler: SchedulerOpt = None,
    max_deals: Annotated[int | None, typer.Option(
        "--max-deals", min=1, help="With --scheduler: train on a seeded sample of at most this many deals, "
        "stratified by slice and outcome (default: all deals of the split).")] = None,
) -> None:
    """Train the win and stage models, evaluate them beside baselines, log to MLflow and gate promotion."""
    from dealscore.models.stage_labels import describe_habits
    from dealscore.training.config import TrainConfig
    from dealscore.training.run import run_training, track_training

    if max_deals is not None and not scheduler:  # sampling is the cluster trainer's; never drop it silently
        raise DataValidationError(
            "--max-deals needs --scheduler: training in this process always uses every deal of the split",
            fix="run it on a cluster (--scheduler local:2), or leave --max-deals out",
        )
    cfg = TrainConfig.load(config)
    if report_json is not None:  # the report is written after training and promotion: try the path first
        check_output_file(report_json, "--report-json")
    steps = _Steps()
    try:
        if scheduler:
            from dealscore.scale.cluster import connect
            from dealscore.scale.train import train_partitioned

            with connect(scheduler) as client:
                result, history, warnings = train_partitioned(client, directory, cfg, max_deals=max_deals,
                                                               progress=steps)
            summary = track_training(result, history, cfg, warnings=warnings, report_json=report_json,
                                     experiment=experiment, progress=steps)
        else:
            summary = run_training(directory, cfg, report_json=report_json, experiment=experiment, progress=steps)
    except OSError as exc:
        if report_json is None or not _concerns(exc, report_json):
            raise
        raise output_error("--report-json", report_json, exc, note=" (the model was trained and registered "
                           "before the report was due: see `dealscore models`)") from exc
    finally:
        steps.close()
    report = summary.result.report
    console.print(evaluation_table(report))
    for line in win_readings(report):
        console.print(line)
    oracle = report["win"]["oracle"]
    if oracle.get("available") and oracle.get("model_auc_share_of_oracle") is not None:
        console.print(f"model reaches {oracle['model_auc_share_of_oracle']:.0%} of the oracle's AUC above chance")
    console.print(stage_table(report))
    labels = report["stage"].get("labels") or {}
    if labels:
        console.print(f"real-stage labels: {labels['trained_on']}; {labels['evaluated_against']}")
    for line in describe_habits(report["stage"].get("recording_habits") or {}, top=3):
        console.print(f"  {line}")
    episodes = report.get("episodes") or {}
    if episodes.get("deals"):
        console.print(f"deal episodes (what stalled / quiet warnings compare with), from {episodes['deals']} deals:")
    for line in episodes.get("reading", []):
        console.print(f"  {line}")
    for warning in report["stage"]["model"].get("warnings", []):
        console.print(f"[yellow]note:[/] {warning}")
    d = report["data"]
    console.print(
        f"data: {d['deals']:,} deals; slices (deals) {d['split']['deals']}; label horizon "
        f"{d['split']['horizon_days']:.0f} days; snapshots {d['snapshots']}"
    )
    for warning in d.get("warnings", []):
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    name = cfg.model_name
    alias = summary.decision.alias
    colour = "green" if summary.decision.promote else "yellow"
    console.print(f"registered [bold]{name} v{summary.version}[/] as [{colour}]{alias}[/]")
    for reason in summary.decision.reasons:
        console.print(f"  - {reason}")
    if not summary.decision.promote:
        console.print(f"  force it with: dealscore promote {summary.version}")
    console.print(f"MLflow run: {summary.run.url}")
    if summary.run.ui_command:
        console.print(f"  (open the UI first with: {summary.run.ui_command})")
    if summary.report_path is not None:
        console.print(f"report written to {summary.report_path}")


@app.command("promote")
def promote(
    version: Annotated[str, typer.Argument(help="registered version number to make champion")],
    name: Annotated[str, typer.Option("--name", help="registered model name")] = "dealscore",
) -> None:
    """Force a registered version to champion, overriding the gate; says what it replaces."""
    from dealscore import tracking

    if version.strip().isdigit():  # " 2" or "02" is version 2: compared as given, it was "not the champion"
        version = str(int(version))
    info = tracking.version_info(version, name)
    previous = tracking.promote(version, name)
    if previous == str(version):
        console.print(f"{name} v{version} already is the champion; nothing changed")
        return
    console.print(f"{name} v{version} is now [green]champion[/]")
    if previous is None:
        console.print("  there was no champion before")
    else:
        old = tracking.version_info(previous, name)
        console.print(
            f"  overrides champion v{previous} (its run's holdout: AUC {_fmt(old['roc_auc'])}, "
            f"log loss {_fmt(old['log_loss'])}); v{version} had AUC {_fmt(info['roc_auc'])}, "
            f"log loss {_fmt(info['log_loss'])} on its own holdout"
        )
    if info["gate_reasons"] and "challenger" in info["aliases"]:
        console.print(f"  overriding the gate, which had kept it challenger: {info['gate_reasons']}")


@app.command("models")
def models(name: Annotated[str, typer.Option("--name", help="registered model name")] = "dealscore") -> None:
    """List registered versions with their aliases and holdout metrics."""
    from dealscore import tracking

    rows = tracking.list_versions(name)
    if not rows:
        console.print(f"no registered versions of {name!r} in {tracking.tracking_uri()}; run `dealscore train DIR`")
        return
    table = Table(title=f"{name} versions ({tracking.tracking_uri()})")
    table.add_column("version")
    table.add_column("aliases", no_wrap=True)
    for col in ("created", "AUC", "log loss", "ECE", "stage acc.", "run"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["version"], ", ".join(r["aliases"]), r["created"][:10], _fmt(r["roc_auc"]),
                      _fmt(r["log_loss"]), _fmt(r["ece"]), _fmt(r["stage_accuracy"]), (r["run_id"] or "")[:8])
    console.print(table)
