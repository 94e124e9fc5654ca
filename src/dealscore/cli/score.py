"""``dealscore score`` (every open deal to a file) and ``dealscore at-risk`` (the Monday list).

Both load the model bundle (``--model DIR`` or the registry's champion), load and
validate the history folder with the bundle's taxonomy, and call
:class:`dealscore.scoring.Scorer`; nothing here computes a score itself.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from dealscore.cli import SchedulerOpt, app, console, err_console, json_text
from dealscore.cli.outputs import check_output_file, write_atomically
from dealscore.cli.times import as_of_time
from dealscore.data.history import refuse_after_cut
from dealscore.data.importers.common import row_lines
from dealscore.errors import DataValidationError, DealscoreError, ModelNotReadyError
from dealscore.models.data_fit import data_mismatch
from dealscore.scoring.at_risk import at_risk as rank_at_risk
from dealscore.scoring.at_risk import kept_by_filter
from dealscore.scoring.result import ScoreResult
from dealscore.wording import percent_text

ModelOpt = Annotated[
    Path | None,
    typer.Option("--model", help="Model bundle folder (default: the registry's champion, see `dealscore train`)."),
]
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Score as of this time (ISO 8601; default: the history's data cut).")
]


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def load_bundle(model: Path | None) -> Any:
    """The bundle at ``model``, else the champion from the registry (with its local fallback copy)."""
    from dealscore.models.bundle import ModelBundle

    if model is not None:
        return ModelBundle.load(model)
    try:
        from dealscore.tracking import load_champion

        return load_champion()
    except DealscoreError:
        raise
    except Exception as exc:  # the registry raises many kinds of errors; the user needs one message
        raise ModelNotReadyError(
            f"no model to score with ({exc}); train one with `dealscore train DIR` or pass --model BUNDLE_DIR"
        ) from exc


def _load(folder: str | Path, model: Path | None, as_of: str | None
          ) -> tuple[Any, Any, pd.Timestamp | None, pd.Timestamp | None]:
    """The scorer, the validated history, ``--as-of`` as a time and when the history starts (its load report's
    first event)."""
    from dealscore.data.validate import load_and_validate
    from dealscore.scoring import Scorer

    t = as_of_time(as_of)
    bundle = load_bundle(model)
    history, report = load_and_validate(str(folder), bundle.taxonomy)
    if t is not None:
        refuse_after_cut(history, t, "score")  # its fix is the one `score --scheduler` gives too
    mismatch = data_mismatch(bundle.history_stats, history)
    if mismatch is not None:  # once per command, before any table: the scores below may not fit
        err_console.print(f"[bold yellow]warning:[/] {mismatch.message}", highlight=False, soft_wrap=True)
    return Scorer(bundle), history, t, report.first_event


def _when(as_of: pd.Timestamp | None) -> str:
    """The scoring time as the CLI's sentences name it."""
    return f"{as_of:%Y-%m-%d %H:%M}" if as_of is not None else "the data cut"


def no_open_deals(as_of: pd.Timestamp | None, starts: pd.Timestamp | None) -> str:
    """Why no deal was open to score: before the history starts, the time and the start date, else the time alone.

    "scored 0 open deals" and an empty file said nothing of why; a time before the first deal
    was created is the usual one. One sentence for ``score``, ``score --scheduler`` and ``at-risk``.
    """
    when = _when(as_of)
    if as_of is not None and starts is not None and not pd.isna(starts) and as_of < starts:
        return (f"no open deals at {when}: the history starts on {starts:%Y-%m-%d} (its first deal was created "
                f"then); score as of a later time, or omit --as-of to score at the data cut")
    return f"no open deals at {when}"


@app.command()
def score(
    folder: Annotated[str, typer.Argument(
        help="History folder (CSV or Parquet tables); with --scheduler a partitioned history (path or URL).")],
    out: Annotated[str, typer.Option(
        "--out", help="Output file: .parquet or .csv; with --scheduler a folder (path or URL) that gets one "
        "Parquet file per partition.")],
    model: ModelOpt = None,
    as_of: AsOfOpt = None,
    explain: Annotated[
        bool, typer.Option("--explain/--no-explain", help="Add reasons and the top next-best action (slower).")
    ] = False,
    backtest_every: Annotated[float | None, typer.Option(
        "--backtest-every", help="With --scheduler: score every deal every N days across its open life "
        "(a backtest) instead of the deals open now.")] = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Score every deal open at the data cut (or --as-of) and write one row per deal."""
    if scheduler:
        from dealscore.scale import score_on_cluster

        started = time.perf_counter()
        bundle = load_bundle(model)
        t = as_of_time(as_of)
        done = score_on_cluster(scheduler, folder, out, bundle, as_of=t, explain=explain, every_days=backtest_every)
        took = time.perf_counter() - started
        console.print(f"scored [bold]{done['rows']:,}[/] {'snapshots' if backtest_every else 'open deals'} of "
                      f"{done['partitions']} partitions with model {bundle.version} on {scheduler} in {took:.1f}s "
                      f"→ {out}/<partition>.parquet")
        if not done["rows"] and not backtest_every:
            err_console.print(f"note: {no_open_deals(t, done['report'].first_event)}",
                              highlight=False, soft_wrap=True)
        return
    if backtest_every is not None:
        raise DataValidationError("--backtest-every needs --scheduler",
                                  fix="run it on a cluster (--scheduler local:2), or score snapshots with "
                                  "Scorer.score_snapshots")
    target = Path(out)
    suffix = target.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise DataValidationError(f"--out {target}: unknown file type {suffix or '(none)'}",
                                  fix="name the output file *.parquet or *.csv")
    check_output_file(target, "--out")  # before scoring, which can take minutes
    scorer, history, t, starts = _load(folder, model, as_of)
    started = time.perf_counter()
    frame = scorer.score_frame(history, t, explain=explain, progress=True)
    took = time.perf_counter() - started

    def write(tmp: Path) -> None:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)

    write_atomically(target, "--out", write)
    grades = frame["grade"].value_counts().reindex(["A", "B", "C", "D"], fill_value=0) if len(frame) else None
    rate = len(frame) / took if took > 0 else float("inf")
    console.print(f"scored [bold]{len(frame):,}[/] open deals with model {scorer.version} "
                  f"in {took:.2f}s ({rate:,.0f} deals/s) → {target}")
    if grades is not None:
        console.print("grades: " + ", ".join(f"{g} {n:,}" for g, n in grades.items()))
    else:
        err_console.print(f"note: {no_open_deals(t, starts)}", highlight=False, soft_wrap=True)


def _previous_scores(path: Path | None) -> dict[str, float] | None:
    """deal_id → p_win from an earlier ``dealscore score`` output, checked like any other input.

    A malformed file is refused with its rows named, never half-used: a repeated
    deal or a p_win outside 0–1 would otherwise change which deals look at risk.
    """
    if path is None:
        return None
    fix = "pass a file written by `dealscore score` (CSV or Parquet with the columns deal_id and p_win)"
    if not path.is_file():
        raise DataValidationError(f"--previous {path} does not exist", fix=fix)
    parquet = path.suffix.lower() == ".parquet"
    try:
        prev = pd.read_parquet(path) if parquet else pd.read_csv(path, dtype={"deal_id": str})
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(f"--previous {path} is empty (not even a header row)", fix=fix) from exc
    except (ValueError, OSError) as exc:  # pyarrow's and the decoders' errors are ValueErrors
        kind = "Parquet" if parquet else "UTF-8 CSV"
        raise DataValidationError(f"--previous {path} is not a readable {kind} file ({exc})", fix=fix) from exc
    missing = [c for c in ("deal_id", "p_win") if c not in prev.columns]
    if missing:
        raise DataValidationError(f"--previous {path}: missing column(s) {missing}; found {list(prev.columns)}",
                                  column=missing[0], fix=fix)
    prev = prev.reset_index(drop=True)
    ids = prev["deal_id"].astype(object).where(prev["deal_id"].notna(), None)
    # where each row is, as a user finds it: the file line its record starts on (a quoted cell may hold line
    # breaks, so not the row number + 2), or the row of a Parquet file
    where = ([f"row {i + 1}" for i in range(len(prev))] if parquet
             else [f"line {n}" for n in row_lines(path, len(prev), encoding="utf-8", delimiter=",")])

    def refuse(column: str, mask: pd.Series, what: str, how: str) -> None:
        """Raise naming the file, the column and up to five rows (file lines for CSV) with their deals."""
        if not mask.any():
            return
        at = [int(i) for i in prev.index[mask.to_numpy()][:5]]
        found = [where[i] + (f" (deal {ids[i]})" if ids[i] else "") for i in at]
        raise DataValidationError(
            f"--previous {path}, column {column}: {int(mask.sum())} row(s) {what} (ids: {', '.join(found)})",
            column=column, ids=found, rows=at, fix=how)

    refuse("deal_id", ids.isna(), "have no deal_id", fix)
    p_win = pd.to_numeric(prev["p_win"], errors="coerce")
    refuse("p_win", ~p_win.between(0.0, 1.0), "hold no probability between 0 and 1",
           "p_win must be a number from 0 to 1, as `dealscore score` writes it; " + fix)
    key = ids.astype(str)
    refuse("deal_id", key.duplicated(keep=False), "repeat a deal",
           "keep one row per deal (one `dealscore score` output, not several appended)")
    return dict(zip(key, p_win.astype(float), strict=True))


def _ranked(
    scorer: Any, history: Any, as_of: pd.Timestamp | None, *, owner: str | None, team: str | None,
    top: int | None, previous: dict[str, float] | None,
) -> tuple[list[ScoreResult], list[ScoreResult]]:
    """Rank all open deals cheaply, then explain only the ones shown; also the quick scores of every open deal
    (what an empty list's message reads, so the deals are not scored twice)."""
    open_deals = scorer.score_many(history, as_of)
    quick = rank_at_risk(open_deals, owner=owner, team=team, top=top, previous=previous)
    if not quick:
        return [], open_deals
    full = {r.deal_id: r for r in scorer.score_many(history, as_of, deal_ids=[r.deal_id for r in quick],
                                                    explain=True)}
    return [full[r.deal_id].model_copy(update={
        "value_at_risk": r.value_at_risk, "priority": r.priority, "risk_level": r.risk_level,
        "previous_p_win": r.previous_p_win}) for r in quick], open_deals


def _top_reason(r: ScoreResult) -> str:
    return r.reasons_down[0].display if r.reasons_down else "-"


def _top_action(r: ScoreResult) -> str:
    if not r.actions:
        return "-"
    a = r.actions[0]
    return f"{a.text} ({'+' if a.expected_change >= 0 else '−'}{abs(a.expected_change):.1f} pts)"


def deal_label(r: ScoreResult) -> str:
    """The deal as people know it: its name and customer with the id beneath, or the id alone."""
    name = " · ".join(n for n in (r.deal_name, r.account_name) if n)
    return f"{name}\n{r.deal_id}" if name else r.deal_id


def amount_label(value: float | None, currency: str | None) -> str:
    """An amount with its currency code when the history gives one (amounts are never converted)."""
    if value is None or value != value:
        return "-"
    return f"{value:,.0f}" + (f" {currency}" if currency else "")


def render_at_risk(results: list[ScoreResult], title: str = "Deals at risk") -> Table:
    """The at-risk list as a rich table: value at risk, score vs stage norm, top warning, reason, action."""
    t = Table(title=title, show_header=True, header_style="bold", show_lines=True)
    for col, kw in [("#", {"justify": "right"}), ("deal", {"no_wrap": True}), ("owner", {}), ("stage", {}),
                    ("p_win / usual", {"justify": "right"}), ("amount", {"justify": "right"}),
                    ("closes", {"no_wrap": True}),
                    ("at risk", {"justify": "right"}), ("priority", {}), ("top warning", {"overflow": "fold"}),
                    ("top reason", {"overflow": "fold"}), ("top action", {"overflow": "fold"})]:
        t.add_column(col, **kw)
    for i, r in enumerate(results, 1):
        stage = r.declared_stage or "-"
        if r.inferred_stage != r.declared_stage:
            stage += f" → {r.inferred_stage}"
        typical = f" / {percent_text(r.stage_typical_p_win)}" if r.stage_typical_p_win is not None else ""
        warn = f"{r.warnings[0].title}: {r.warnings[0].evidence}" if r.warnings else "-"
        t.add_row(str(i), deal_label(r), r.owner_name or r.owner_id or "-", stage,
                  f"{percent_text(r.p_win)}{typical} ({r.grade})", amount_label(r.amount, r.currency),
                  "-" if r.expected_close_date is None else f"{r.expected_close_date:%Y-%m-%d}",
                  amount_label(r.value_at_risk or 0, r.currency),
                  r.risk_level or "-", warn,
                  _top_reason(r), _top_action(r))
    return t


#: the at-risk CSV's columns, written even when no deal is listed (a reader of the file gets its header)
AT_RISK_COLUMNS = [
    "rank", "deal_id", "deal_name", "account_name", "owner_id", "owner_name", "team", "amount", "currency",
    "expected_close_date", "p_win", "stage_typical_p_win", "previous_p_win", "value_at_risk", "priority",
    "risk_level", "grade", "declared_stage", "inferred_stage", "stage_mismatch", "warnings", "top_reason",
    "top_action", "top_action_change",
]


def at_risk_frame(results: list[ScoreResult]) -> pd.DataFrame:
    """Flat form of the at-risk list for CSV (the columns of :data:`AT_RISK_COLUMNS`, rows or not)."""
    return pd.DataFrame([{
        "rank": i, "deal_id": r.deal_id, "deal_name": r.deal_name, "account_name": r.account_name,
        "owner_id": r.owner_id, "owner_name": r.owner_name, "team": r.team, "amount": r.amount,
        "currency": r.currency, "expected_close_date": r.expected_close_date,
        "p_win": r.p_win, "stage_typical_p_win": r.stage_typical_p_win, "previous_p_win": r.previous_p_win,
        "value_at_risk": r.value_at_risk, "priority": r.priority, "risk_level": r.risk_level,
        "grade": r.grade, "declared_stage": r.declared_stage,
        "inferred_stage": r.inferred_stage, "stage_mismatch": r.stage_mismatch,
        "warnings": "; ".join(w.code for w in r.warnings), "top_reason": _top_reason(r),
        "top_action": r.actions[0].text if r.actions else None,
        "top_action_change": r.actions[0].expected_change if r.actions else None,
    } for i, r in enumerate(results, 1)], columns=AT_RISK_COLUMNS)


def _refuse_unknown(history: Any, option: str, column: str, value: str | None) -> None:
    """``--owner``/``--team`` must name one the history has: a typo would read as "nothing at risk"."""
    if value is None:
        return
    deals = history.deals
    known = sorted({str(v) for v in deals[column].dropna()}) if column in deals else []
    if value not in known:
        shown = ", ".join(known[:10]) + (f", ... ({len(known)} in all)" if len(known) > 10 else "")
        shown = shown or f"none: the deals table has no {column}"
        raise DataValidationError(
            f"unknown {option.removeprefix('--')} {value!r} (known: {shown})",
            table="deals", column=column,
            fix=f"pass {option} with a value of deals.{column} in the history (it is compared exactly)",
        )


def _why_empty(open_deals: list[ScoreResult], as_of: pd.Timestamp | None, owner: str | None,
               team: str | None, starts: pd.Timestamp | None = None) -> str:
    """Why the at-risk list is empty (``open_deals``: every open deal's quick score): no open deals, none of them
    matching, or none below its stage's rate.

    Only the last one is good news; the others must not read like it.
    """
    when = _when(as_of)
    if not open_deals:
        return no_open_deals(as_of, starts)
    who = " and ".join(w for w in (f"owner {owner!r}" if owner else "", f"team {team!r}" if team else "") if w)
    if who and not kept_by_filter(open_deals, owner, team):
        return f"no open deals match {who} at {when} ({len(open_deals):,} open deals in all)"
    return "no open deal" + (f" of {who}" if who else "") + " scores below its stage's usual win rate"


@app.command("at-risk")
def at_risk_cmd(
    folder: Annotated[Path, typer.Argument(help="History folder (CSV or Parquet tables).")],
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's deals (an owner_id).")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's deals.")] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="How many deals to list.")] = 20,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="table, csv or json.")] = OutputFormat.table,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="An earlier `dealscore score` output: score drops raise risk.")
    ] = None,
    model: ModelOpt = None,
    as_of: AsOfOpt = None,
) -> None:
    """List open deals by value at risk, each with its top warning, reason and next-best action."""
    earlier = _previous_scores(previous)  # a bad file is refused before the model and history load
    scorer, history, t, starts = _load(folder, model, as_of)
    _refuse_unknown(history, "--owner", "owner_id", owner)
    _refuse_unknown(history, "--team", "team", team)
    ranked, open_deals = _ranked(scorer, history, t, owner=owner, team=team, top=top, previous=earlier)
    if not ranked:
        err_console.print(_why_empty(open_deals, t, owner, team, starts), highlight=False, soft_wrap=True)
    if fmt is OutputFormat.json:
        typer.echo(json_text([r.model_dump(mode="json") for r in ranked]))
    elif fmt is OutputFormat.csv:
        typer.echo(at_risk_frame(ranked).to_csv(index=False), nl=False)
    elif ranked:
        who = f" of {owner}" if owner else f" of team {team}" if team else ""
        console.print(render_at_risk(ranked, title=f"Top {len(ranked)} deals at risk{who} (model {scorer.version})"))
