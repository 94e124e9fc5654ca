"""``dealscore forecast``: bookings per month or quarter with a range, and the backtest that says how far to trust it.

The forecast loads the bundle (``--model`` or the registry's champion) and the
history, and calls :func:`dealscore.forecast.engine.forecast_history`; the
backtest trains its own model on the history as known at its first forecast
time (a model that saw the outcomes it is judged on would flatter itself) and
calls :func:`dealscore.forecast.backtest.run_backtest`. Nothing here computes a
number itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from dealscore.cli import app, console
from dealscore.cli.score import AsOfOpt, ModelOpt, load_bundle
from dealscore.cli.times import as_of_time
from dealscore.errors import ConfigError


def _money(v: float) -> str:
    return f"{v:,.0f}"


def forecast_table(fc: Any) -> Table:
    """The forecast as a rich table: one row per group and period."""
    t = Table(title=f"Bookings forecast as of {fc.as_of:%Y-%m-%d %H:%M} ({fc.kind}, by {fc.by}; "
                    f"{fc.n_sims:,} draws, seed {fc.seed})")
    for col, just in (("group", "left"), ("period", "left"), ("booked", "right"), ("open deals", "right"),
                      ("not yet created", "right"), ("P10", "right"), ("median", "right"), ("P90", "right"),
                      ("open", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in fc.table.to_dict("records"):
        t.add_row(r["group"], r["period"], _money(r["booked"]), _money(r["open_expected"]),
                  _money(r["new_expected"]), _money(r["p10"]), _money(r["p50"]), _money(r["p90"]),
                  str(r["open_deals"]))
    return t


def _parse_weeks(text: str) -> list[int]:
    if text == "all":
        return list(range(1, 14))
    try:
        weeks = sorted({int(w) for w in text.split(",") if w.strip()})
    except ValueError as exc:
        raise ConfigError(f"--weeks {text!r} is not a list of week numbers", fix="use e.g. --weeks 2 or 1,2,6 or all"
                          ) from exc
    if not weeks or min(weeks) < 1 or max(weeks) > 14:
        raise ConfigError(f"--weeks {text!r}: weeks run from 1 to 14", fix="use e.g. --weeks 2 or all")
    return weeks


@app.command()
def forecast(
    folder: Annotated[Path, typer.Argument(help="History folder (CSV or Parquet tables).")],
    period: Annotated[str, typer.Option("--period", help="month or quarter.")] = "quarter",
    by: Annotated[str, typer.Option("--by", help="team or owner.")] = "team",
    as_of: AsOfOpt = None,
    model: ModelOpt = None,
    backtest: Annotated[bool, typer.Option("--backtest", help="Replay past quarters instead of forecasting.")] = False,
    weeks: Annotated[str, typer.Option("--weeks", help="Backtest: weeks of each quarter to forecast from "
                                                        "(e.g. 2, 1,2,6 or all).")] = "2",
    sims: Annotated[int, typer.Option("--sims", min=100, max=100_000, help="Monte Carlo draws.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same numbers).")] = 0,
    chart: Annotated[Path, typer.Option("--chart", help="Fan chart (forecast) or backtest plot PNG.")] = Path(
        "forecast.png"),
    out: Annotated[Path | None, typer.Option("--out", help="Write the table (or backtest cells) as CSV.")] = None,
    mlflow_log: Annotated[bool, typer.Option("--mlflow/--no-mlflow", help="Backtest: log metrics and plots to "
                                                                          "MLflow.")] = True,
) -> None:
    """Forecast bookings per period (median and P10–P90, by team or owner), or backtest past quarters."""
    from dealscore.data.validate import load_and_validate
    from dealscore.forecast.creation import GROUP_COLUMNS
    from dealscore.forecast.periods import check_kind

    check_kind(period)
    if by not in GROUP_COLUMNS:
        raise ConfigError(f"unknown --by {by!r}", fix="use --by team or --by owner")
    if backtest:
        _backtest(folder, model, _parse_weeks(weeks), by, sims, seed, chart, out, mlflow_log)
        return
    from dealscore.forecast.engine import forecast_history
    from dealscore.forecast.plots import fan_chart

    bundle = load_bundle(model)
    history, _ = load_and_validate(str(folder), bundle.taxonomy)
    t = as_of_time(as_of)
    fc = forecast_history(history, bundle, t, kind=period, by=by, n_sims=sims, seed=seed)
    console.print(forecast_table(fc))
    for note in fc.notes:
        console.print(f"[dim]note: {note}[/]")
    if len(fc.drivers):
        d = fc.drivers.head(5)
        console.print("deals driving most of the current period's range: " + ", ".join(
            f"{r.deal_id} ({r.group}, {r.amount:,.0f}, {r.share_of_variance:.0%})" for r in d.itertuples()))
    chart.parent.mkdir(parents=True, exist_ok=True)
    fan_chart(fc).savefig(chart, dpi=110)
    console.print(f"fan chart → {chart}")
    if out is not None:
        fc.table.to_csv(out, index=False)
        console.print(f"table → {out}")



def _backtest(folder: Path, model: Path | None, weeks: list[int], by: str, sims: int, seed: int, chart: Path,
              out: Path | None, mlflow_log: bool) -> None:
    from dealscore.data.validate import load_and_validate
    from dealscore.forecast.backtest import backtest_figures, backtest_quarters, forecast_times, run_backtest
    from dealscore.forecast.creation import GROUP_COLUMNS
    from dealscore.models.bundle import ModelBundle
    from dealscore.taxonomy import default_taxonomy
    from dealscore.training.pipeline import train_models

    history, _ = load_and_validate(str(folder), default_taxonomy())
    quarters = backtest_quarters(history)
    first = forecast_times(quarters, weeks)[0][2]
    if model is not None:
        bundle = ModelBundle.load(model)
        cut = bundle.training_window.get("cut_at")
        if cut is None or pd.Timestamp(cut) > first:
            raise ConfigError(
                f"--model {model} was trained on data up to {cut}, after the first backtest time {first}: "
                "it has seen the outcomes it would be judged on",
                fix="leave --model out (the backtest trains its own model on the history as known then)",
            )
    else:
        console.print(f"training on the history as known at {first:%Y-%m-%d} (the first forecast time)")
        bundle = train_models(history.as_known_at(first), progress=lambda m: console.print(f"[dim]· {m}[/]")).bundle
    result = run_backtest(history, bundle, quarters, weeks=weeks, group=GROUP_COLUMNS[by], n_sims=sims, seed=seed,
                          progress=lambda m: console.print(f"[dim]· {m}[/]"))
    console.print(backtest_table(result.summary, [q.label for q in quarters]))
    figs = backtest_figures(result)
    chart.parent.mkdir(parents=True, exist_ok=True)
    figs["forecast_vs_actual.png"].savefig(chart, dpi=110)
    console.print(f"forecast vs actual → {chart}")
    if out is not None:
        result.rows.to_csv(out, index=False)
        console.print(f"cells → {out}")
    if mlflow_log:
        from dealscore.tracking import log_backtest_run

        run = log_backtest_run(result.summary, result.rows, figs, params={
            "folder": str(folder), "weeks": ",".join(map(str, weeks)), "by": by, "sims": sims, "seed": seed,
            "quarters": ",".join(q.label for q in quarters), "trained_at": str(first)})
        console.print(f"MLflow run {run.run_id} ({run.url})")


def backtest_table(summary: pd.DataFrame, quarters: list[str]) -> Table:
    """MAPE, bias, coverage and CRPS per method and forecast week."""
    t = Table(title=f"Backtest: team × quarter bookings, quarters {', '.join(quarters)}")
    for col in ("week", "method", "cells", "MAPE", "bias", "P10–P90 coverage", "CRPS"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for r in summary.to_dict("records"):
        cov = "–" if pd.isna(r["coverage_p10_p90"]) else f"{r['coverage_p10_p90']:.0%}"
        t.add_row(str(r["week"]), r["method"].replace("_", " "), str(r["cells"]), f"{r['mape']:.1%}",
                  f"{r['bias']:+.1%}", cov, f"{r['crps']:,.0f}")
    return t
