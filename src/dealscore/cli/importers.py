"""``dealscore import maven|csv``: turn a CRM export into a history folder, and say what changed on the way."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from dealscore.cli import app, console
from dealscore.cli.data import TaxonomyOpt, render_report
from dealscore.data.history import write_history
from dealscore.data.importers.common import ImportReport, ImportResult
from dealscore.data.importers.csv_mapping import import_csv
from dealscore.data.importers.maven import import_maven
from dealscore.errors import DataValidationError
from dealscore.taxonomy import StageTaxonomy

import_app = typer.Typer(
    name="import",
    help="Convert a CRM export into a dealscore history folder (validated before it is written).",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import")

OutOpt = Annotated[Path, typer.Option("--out", help="History folder to write (created if needed).")]
CutOpt = Annotated[
    str | None,
    typer.Option("--cut-at", help="When the export was taken (ISO 8601); default: derived from the export."),
]
FormatOpt = Annotated[
    Literal["csv", "parquet"], typer.Option("--format", help="Table format of the written history.")
]


def render_import_report(report: ImportReport) -> Table:
    """Everything the importer read, dropped, filled in or noted, as one table."""
    t = Table(title=f"Import report: {report.importer} from {report.source}", show_header=True,
              header_style="bold")
    t.add_column("what")
    t.add_column("rows", justify="right")
    for name, n in report.rows_read.items():
        t.add_row(f"read {name}", f"{n:,}")
    for why, n in report.dropped.items():
        t.add_row(f"[yellow]dropped[/] {why}", f"{n:,}")
    for what, n in report.filled.items():
        t.add_row(f"filled {what}", f"{n:,}")
    for note in report.notes:
        t.add_row(f"note: {note}", "")
    return t


def refuse_out_over_source(src: Path, out: Path, read: Iterable[str] = ()) -> None:
    """Refuse an ``--out`` folder that is the export folder or holds a file the import reads.

    Writing the history there would overwrite the export itself (a HubSpot or Maven
    export has its own ``deals.csv``/``accounts.csv``) or mix the two, and the next
    import of the same export would read the history back as the export. ``read``
    names the files read, relative to ``src`` (the import report's ``rows_read``).
    """
    target, home = out.resolve(), src.resolve()
    clash = [name for name in read if (src / name).resolve().parent == target]
    if target == home or clash:
        what = f"holds {clash[0]}, which the import reads" if clash else "is the export folder"
        raise DataValidationError(
            f"--out {out} {what}: the history would overwrite or mix with the export",
            fix=f"write the history to a folder of its own, e.g. --out {home.with_name(home.name + '-history')}",
        )


def _finish(src: Path, result: ImportResult, out: Path, fmt: str) -> None:
    refuse_out_over_source(src, out, result.report.rows_read)
    write_history(result.history, out, fmt=fmt)
    console.print(render_import_report(result.report))
    console.print(render_report(result.load_report, title=f"Load report: {out}"))
    console.print(f"[green]wrote[/] {out} (validates; check it again any time with: dealscore validate {out})")


@import_app.command("maven")
def maven(
    src: Annotated[Path, typer.Argument(help="Folder of the Maven CRM export (sales_pipeline.csv, ...).")],
    out: OutOpt,
    cut_at: CutOpt = None,
    fmt: FormatOpt = "csv",
) -> None:
    """Import the public Maven Analytics CRM export (mapping choices: docs/importers.md)."""
    refuse_out_over_source(src, out)
    _finish(src, import_maven(src, cut_at=cut_at), out, fmt)


@import_app.command("csv")
def csv(
    src: Annotated[Path, typer.Argument(help="Folder holding the export's CSV files.")],
    mapping: Annotated[
        str, typer.Option("--mapping", help="Mapping YAML, or the name of a shipped one (e.g. salesforce).")
    ],
    out: OutOpt,
    cut_at: CutOpt = None,
    taxonomy: TaxonomyOpt = None,
    fmt: FormatOpt = "csv",
) -> None:
    """Import any CSV export with a YAML mapping of tables, columns, values and date formats."""
    refuse_out_over_source(src, out)
    tax = StageTaxonomy.load(taxonomy)
    _finish(src, import_csv(src, mapping, cut_at=cut_at, taxonomy=tax), out, fmt)
