"""``dealscore validate``: load a history folder, enforce the contract, print the load report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dealscore.cli import SchedulerOpt, app, console, json_text
from dealscore.data.validate import LoadReport, load_and_validate
from dealscore.taxonomy import StageTaxonomy

TaxonomyOpt = Annotated[
    Path | None,
    typer.Option("--taxonomy", help="Stage taxonomy YAML (default: the six shipped stages)."),
]


def render_report(report: LoadReport, title: str = "Load report") -> Table:
    """The load report as a rich table (also used by ``make demo``)."""
    t = Table(title=title, show_header=True, header_style="bold")
    t.add_column("what")
    t.add_column("value", overflow="fold")
    for name, n in report.rows.items():
        t.add_row(f"rows: {name}", f"{n:,}")
    if report.dropped:
        for why, n in report.dropped.items():
            t.add_row("[yellow]dropped[/]", f"{n:,}  {why}")
    else:
        t.add_row("dropped", "0 rows")
    t.add_row("date range", f"{_d(report.first_event)} → {_d(report.last_event)}")
    t.add_row("data cut", _d(report.cut_at))
    t.add_row("deals", f"{report.open_deals:,} open · {report.won_deals:,} won · {report.lost_deals:,} lost")
    closed = report.won_deals + report.lost_deals
    if closed:
        t.add_row("win rate (closed)", f"{report.won_deals / closed:.1%}")
    t.add_row("stages seen", ", ".join(f"{k} ({v:,})" for k, v in report.stages_seen.items()) or "-")
    t.add_row("activity types", ", ".join(f"{k} ({v:,})" for k, v in report.activity_types_seen.items()) or "-")
    for w in report.warnings:
        t.add_row("[yellow]warning[/]", w)
    return t


def _d(t: object) -> str:
    return "-" if t is None else str(t)[:19]


@app.command()
def validate(
    folder: Annotated[str, typer.Argument(
        help="History folder (CSV or Parquet tables); with --scheduler a partitioned history (path or URL).")],
    taxonomy: TaxonomyOpt = None,
    fail_out_of_life: Annotated[
        bool, typer.Option("--fail-out-of-life", help="Fail instead of dropping events outside a deal's life.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    scheduler: SchedulerOpt = None,
) -> None:
    """Validate a deal history against the data contract and print its load report."""
    tax = StageTaxonomy.load(taxonomy)
    policy = "fail" if fail_out_of_life else "drop"
    if scheduler:
        from dealscore.scale import connect, open_partitioned, validate_partitioned

        with connect(scheduler) as client:  # partition by partition on the workers, one merged report
            _, first = validate_partitioned(client, open_partitioned(folder), tax, on_out_of_life=policy)
        report = first.report
    else:
        _, report = load_and_validate(folder, tax, on_out_of_life=policy)
    if as_json:
        typer.echo(json_text(report.to_dict()))
    else:
        console.print(render_report(report, title=f"Load report: {folder}"))
        console.print("[green]valid[/]: the history follows the data contract")
        if report.dropped:
            console.print(
                f"[yellow]note[/]: {sum(report.dropped.values()):,} row(s) outside their deal's life are left out "
                "of everything dealscore computes (counted above); use --fail-out-of-life to treat them as errors"
            )
