"""``dealscore generate``: write a realistic synthetic CRM history plus its truth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from dealscore.cli import SchedulerOpt, app, console
from dealscore.data.simulate.config import DEFAULT_PROFILE, profile_config, profile_names
from dealscore.errors import ConfigError


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the history to (truth goes to OUT/truth).")],
    deals: Annotated[int, typer.Option("--deals", min=1, help="Number of deals to simulate.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives byte-identical files.")] = 0,
    cut_date: Annotated[
        str | None, typer.Option("--cut-date", help="Data cut (export time), e.g. 2025-06-30. Default: 2025-06-30.")
    ] = None,
    profile: Annotated[
        str, typer.Option("--profile", help="Company preset: how reps record and what evidence selling leaves "
                          f"({', '.join(profile_names())}; see docs/simulator.md).")
    ] = DEFAULT_PROFILE,
    partitions: Annotated[int | None, typer.Option(
        "--partitions", min=1, help="Write a partitioned history (Parquet, one file per table and partition) "
        "in this many chunks, never holding all deals in memory; read it with --scheduler "
        "(docs/scale-out.md). A different, equally valid draw than one piece; no truth folder.")] = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Generate a synthetic B2B CRM export (deals over two years up to the data cut) and its truth."""
    from dealscore.data.simulate import simulate, write_simulation
    from dealscore.data.simulate.figures import aggregate_figures

    if cut_date is not None:
        try:
            pd.Timestamp(cut_date)
        except ValueError as exc:
            raise ConfigError(f"--cut-date {cut_date!r} is not a date; use ISO 8601 such as 2025-06-30") from exc
    profile_config(profile)  # an unknown preset fails before any work, naming the valid ones
    started = time.perf_counter()
    if partitions is not None:
        _generate_partitioned(out, deals, partitions, seed, cut_date, profile, scheduler, started)
        return
    sim = simulate(deals, seed, cut_date=cut_date, profile=profile)
    write_simulation(sim, out)
    seconds = time.perf_counter() - started
    f = aggregate_figures(sim)
    t = Table(title=f"Synthetic CRM written to {out}", show_header=True, header_style="bold")
    t.add_column("what")
    t.add_column("value", overflow="fold")
    for name, frame in sim.history.tables().items():
        t.add_row(f"rows: {name}", f"{len(frame):,}")
    t.add_row("owners / accounts", f"{int(f['owners']):,} / {int(f['accounts']):,}")
    t.add_row("company profile", profile)
    t.add_row("data cut", str(sim.history.data_cut)[:19])
    t.add_row("deals", f"{int(f['open_deals']):,} open · {int(f['won_deals']):,} won · {int(f['lost_deals']):,} lost")
    t.add_row("win rate (closed)", f"{f['win_rate']:.1%}")
    t.add_row("median sales cycle", f"{f['median_cycle_days']:.0f} days "
              f"(won {f['median_cycle_days_won']:.0f}, lost {f['median_cycle_days_lost']:.0f})")
    t.add_row("touchpoints per closed deal", f"median {f['touches_median']:.0f}, 5-95% "
              f"{f['touches_p05']:.0f}-{f['touches_p95']:.0f}")
    t.add_row("declared stage = real stage", f"{f['declared_real_agreement']:.0%} of weekly snapshots "
              f"(ahead {f['declared_ahead']:.0%}, behind {f['declared_behind']:.0%})")
    t.add_row("truth", f"{Path(out) / 'truth'} (deal_truth, latent_path, stage_truth, reps, params.json)")
    t.add_row("time", f"{seconds:.1f} s (seed {seed})")
    console.print(t)


def _generate_partitioned(out: Path, deals: int, partitions: int, seed: int, cut_date: str | None, profile: str,
                          scheduler: str | None, started: float) -> None:
    """``generate --partitions``: chunk by chunk here, or on the workers of ``--scheduler``."""
    from tqdm.auto import tqdm

    from dealscore.scale.cluster import connect
    from dealscore.scale.generate import generate_partitioned

    with tqdm(total=partitions, unit="partition", desc="generating") as bar:
        if scheduler:
            with connect(scheduler) as client:
                totals = generate_partitioned(str(out), deals, partitions, seed, cut_date=cut_date, profile=profile,
                                              client=client, progress=bar.update)
        else:
            totals = generate_partitioned(str(out), deals, partitions, seed, cut_date=cut_date, profile=profile,
                                          progress=bar.update)
    t = Table(title=f"Partitioned synthetic CRM written to {out}", show_header=True, header_style="bold")
    t.add_column("what")
    t.add_column("value")
    for name, n in totals.items():
        t.add_row(f"rows: {name}", f"{n:,}")
    t.add_row("company profile", profile)
    t.add_row("partitions", f"{partitions} (by deal; seed {seed}, each chunk its own derived seed)")
    t.add_row("time", f"{time.perf_counter() - started:.1f} s")
    console.print(t)
