"""``dealscore features``: build the training frame of a history, or list the feature catalog."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dealscore.cli import SchedulerOpt, app, console, err_console
from dealscore.errors import DataValidationError
from dealscore.taxonomy import StageTaxonomy


def catalog_table(taxonomy: StageTaxonomy | None = None) -> Table:
    """The feature catalog as a rich table (name, group, meaning, unit, kind)."""
    from dealscore.features import FeatureSpec

    spec = FeatureSpec.default(taxonomy)
    t = Table(title=f"Feature catalog ({len(spec.columns)} features)", show_header=True, header_style="bold")
    for col in ("feature", "group", "meaning", "unit", "kind"):
        t.add_column(col, overflow="fold")
    for c in spec.columns:
        t.add_row(c.name, c.group, c.meaning, c.unit, c.kind)
    return t


@app.command()
def features(
    folder: Annotated[str | None, typer.Argument(
        help="History folder (CSV or Parquet tables); with --scheduler a partitioned history (path or URL).")] = None,
    out: Annotated[str | None, typer.Option(
        "--out", help="Parquet file to write the training frame to; with --scheduler a folder (path or URL) "
        "that gets one Parquet file per partition.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="Print the feature catalog and exit.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="With --list: print the catalog as Markdown.")] = False,
    update_doc: Annotated[
        Path | None, typer.Option("--update-doc", help="With --list: rewrite the catalog section of a Markdown file.")
    ] = None,
    every_days: Annotated[float, typer.Option("--every-days", help="Days between training snapshots.")] = 7.0,
    stage_changes: Annotated[
        bool, typer.Option("--stage-changes/--no-stage-changes", help="Also snapshot when a stage change is seen.")
    ] = True,
    labels: Annotated[
        bool, typer.Option("--labels/--no-labels", help="Add the won and the audited real_stage labels.")
    ] = True,
    spec_out: Annotated[
        Path | None, typer.Option("--spec", help="Also write the feature spec (vocabularies fitted) as JSON.")
    ] = None,
    taxonomy: Annotated[
        Path | None, typer.Option("--taxonomy", help="Stage taxonomy YAML (default: the shipped stages).")
    ] = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Build point-in-time features (one row per snapshot) for a history, or list the catalog."""
    tax = StageTaxonomy.load(taxonomy)
    if list_:
        if update_doc is not None:
            from dealscore.features.catalog import update_doc as rewrite
            from dealscore.features.spec import FeatureSpec

            changed = rewrite(update_doc, FeatureSpec.default(tax))
            console.print(f"{'updated' if changed else 'already current'}: {update_doc}")
            return
        if markdown:
            from dealscore.features.catalog import feature_catalog_markdown
            from dealscore.features.spec import FeatureSpec

            typer.echo(feature_catalog_markdown(FeatureSpec.default(tax)), nl=False)
        else:
            console.print(catalog_table(tax))
        return
    if folder is None or out is None:
        raise DataValidationError(
            "dealscore features needs a history folder and --out FILE.parquet",
            fix="run `dealscore features DIR --out features.parquet`, or `dealscore features --list` for the catalog",
        )
    from dealscore.features import FeatureSpec

    started = time.perf_counter()
    options = {"every_days": every_days, "at_stage_changes": stage_changes, "labels": labels}
    if scheduler:
        from dealscore.scale import features_on_cluster

        summary, spec = features_on_cluster(scheduler, folder, out, tax, **options,
                                            warn=lambda w: err_console.print(f"[yellow]warning:[/] {w}",
                                                                             highlight=False))
    else:
        from dealscore.data.validate import load_and_validate
        from dealscore.features.frame import feature_frame

        history, report = load_and_validate(folder, tax)
        for warning in report.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        spec = FeatureSpec.default(tax)
        frame = feature_frame(history, spec, tax, **options, progress=True)
        spec = spec.fit_vocabulary(frame)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(out, index=False)
        summary = {"snapshots": len(frame), "deals": frame["deal_id"].nunique()}
        if labels:
            summary["labelled"] = int(frame["won"].notna().sum())
            summary["real_stage"] = int(frame["real_stage"].notna().sum())
    if spec_out is not None:
        spec_out.write_text(json.dumps(spec.to_dict(), indent=2), encoding="utf-8")
    elapsed = time.perf_counter() - started
    t = Table(title=f"Features: {folder}", show_header=False)
    t.add_column("what")
    t.add_column("value")
    t.add_row("snapshots", f"{summary['snapshots']:,} of {summary['deals']:,} deals")
    t.add_row("feature columns", f"{len(spec.feature_names)}")
    if labels:
        t.add_row("labelled (closed deals)", f"{summary['labelled']:,}")
        t.add_row("real stage known", f"{summary['real_stage']:,}")
    t.add_row("written", f"{out}" + (" (one Parquet file per partition)" if scheduler else "")
              + (f" and {spec_out}" if spec_out else ""))
    t.add_row("time", f"{elapsed:.1f} s")
    console.print(t)
