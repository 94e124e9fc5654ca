"""The forecast use case: open deals' scores + pipeline creation → bookings per period, with a range.

Two entry points, one computation (:func:`forecast_pipeline`):

- :func:`forecast_history` scores a history's open deals with the bundle (the
  public :class:`~dealscore.scoring.Scorer`, so the win model's calibration and
  the time-to-close model flow in unchanged) and learns pipeline creation from
  the history as known at the forecast time (the CLI and the backtest);
- :func:`pipeline_from_results` reads stored :class:`~dealscore.scoring.ScoreResult`
  objects (the service's latest scores) and uses the creation model the bundle
  carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dealscore.data.history import DealHistory, refuse_after_cut
from dealscore.errors import ConfigError, ModelNotReadyError
from dealscore.forecast.calibration import OpenDealCalibration, fit_open_calibration
from dealscore.forecast.close_time import BUCKET_EDGES, PMF_DTYPE, period_probabilities
from dealscore.forecast.creation import GROUP_COLUMNS, NO_GROUP, PipelineCreationModel
from dealscore.forecast.montecarlo import (
    deal_streams,
    draw_open_bookings,
    expected_open_bookings,
    quantiles,
    range_drivers,
    won_in_month,
)
from dealscore.forecast.periods import Period, check_kind, current_and_next, day_offsets, instant, month_grid
from dealscore.scoring import Scorer
from dealscore.scoring.result import ScoreResult
from dealscore.times import DAY_NS

COMPANY = "company"
#: Months the simulation covers: enough for the current and next quarter from any day of a quarter.
GRID_MONTHS = 6
#: Draws per forecast. At 1,000 the Monte Carlo standard deviation of P10, P50 and P90 is about 1.5–2.3% of
#: the P10–P90 width (measured over 20 seeds, 5,000 open deals; docs/forecast.md); 2,000 roughly halves the variance.
DEFAULT_SIMS = 1000


@dataclass
class OpenPipeline:
    """What the forecast needs of each open deal, sorted by deal id.

    Each deal draws from its own stream whatever the order; the sort makes every
    sum add the same deals in the same order, so the figures agree to the last bit
    however the deals came in.
    """

    deal_id: np.ndarray
    team: np.ndarray
    owner_id: np.ndarray
    amount: np.ndarray
    p_win: np.ndarray
    pmf: np.ndarray
    scored_at: np.ndarray  # datetime64[ns]: the time each pmf is measured from

    def __post_init__(self) -> None:
        order = np.argsort(self.deal_id.astype(str), kind="stable")
        for name in ("deal_id", "team", "owner_id", "amount", "p_win", "pmf", "scored_at"):
            setattr(self, name, np.asarray(getattr(self, name))[order])

    def __len__(self) -> int:
        return len(self.deal_id)

    def keys(self, by: str) -> np.ndarray:
        """Each deal's group name: the team or owner as text, ``(none)`` when missing."""
        col = self.team if by == "team" else self.owner_id
        return _group_names(np.asarray(col, dtype=object))


@dataclass
class Forecast:
    """A forecast's table, fan data and range drivers (see :func:`forecast_pipeline`)."""

    as_of: pd.Timestamp
    kind: str
    by: str
    periods: list[Period]
    table: pd.DataFrame
    fan: pd.DataFrame
    drivers: pd.DataFrame
    n_sims: int
    seed: int
    notes: list[str] = field(default_factory=list)
    draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def row(self, group: str, period: str) -> pd.Series:
        sel = self.table[(self.table["group"] == group) & (self.table["period"] == period)]
        return sel.iloc[0]


# ---------------------------------------------------------------------- inputs


def pipeline_from_blocks(blocks: Sequence[Any]) -> OpenPipeline:
    """Open deals from :meth:`Scorer.score_blocks` output (the bundle must hold a time-to-close model)."""
    if any(b.close_pmf is None for b in blocks):
        raise ModelNotReadyError("the model bundle has no time-to-close model; retrain it with this dealscore "
                                 "(`dealscore train DIR`) to forecast")
    k = len(BUCKET_EDGES) - 1

    def cat(name: str, empty: Any) -> np.ndarray:
        parts = [np.asarray(getattr(b, name)) for b in blocks]
        return np.concatenate(parts) if parts else empty

    return OpenPipeline(
        deal_id=cat("deal_id", np.array([], dtype=object)), team=cat("team", np.array([], dtype=object)),
        owner_id=cat("owner_id", np.array([], dtype=object)), amount=cat("amount", np.array([], dtype=float)),
        p_win=cat("p_win", np.array([], dtype=float)), pmf=cat("close_pmf", np.zeros((0, k))),
        scored_at=cat("as_of", np.array([], dtype="datetime64[ns]")).astype("datetime64[ns]"),
    )


def pipeline_from_results(results: Sequence[ScoreResult]) -> OpenPipeline:
    """Open deals from score results; those scored without a close outlook are refused by name."""
    return pipeline_from_records([{
        "deal_id": r.deal_id, "team": r.team, "owner_id": r.owner_id, "amount": r.amount, "p_win": r.p_win,
        "as_of": r.as_of, "close_outlook": None if r.close_outlook is None else {
            "bucket_probabilities": r.close_outlook.bucket_probabilities},
    } for r in results])


def pipeline_from_records(records: Sequence[Mapping[str, Any]]) -> OpenPipeline:
    """Open deals from score results in their JSON form (what the score store keeps), without re-validating them.

    Reading five thousand stored results this way costs milliseconds; building
    :class:`ScoreResult` objects first would cost a large share of the API's budget.
    """
    return pipeline_from_columns({
        **{name: [r.get(name) for r in records] for name in ("deal_id", "team", "owner_id", "amount", "p_win",
                                                              "as_of")},
        "pmf": [(r.get("close_outlook") or {}).get("bucket_probabilities") for r in records],
    })


def pipeline_from_columns(columns: Mapping[str, Sequence[Any]]) -> OpenPipeline:
    """Open deals from one list per field: what the score store reads, column by column.

    ``deal_id``, ``team``, ``owner_id``, ``amount`` (None: unknown), ``p_win``,
    ``as_of`` (datetimes, ISO text, or a ``datetime64`` array in naive UTC) and
    ``pmf``: each deal's bucket probabilities, as
    :func:`~dealscore.forecast.close_time.pmf_bytes` stores them or as a list;
    ``None`` or empty when the score carries no close outlook (refused by name:
    the forecast cannot place it in time).
    """
    pmfs = columns["pmf"]
    missing = [d for d, p in zip(columns["deal_id"], pmfs, strict=True) if p is None or len(p) == 0]
    if missing:
        raise ModelNotReadyError(
            f"{len(missing)} stored score(s) carry no close outlook (scored by a model without a time-to-close "
            f"part), e.g. {missing[:5]}", fix="rescore the open deals with a model trained by this dealscore",
        )
    k = len(BUCKET_EDGES) - 1
    width = np.dtype(PMF_DTYPE).itemsize
    # a compact row holds exactly k float64s; a list exactly k numbers
    other = [d for d, p in zip(columns["deal_id"], pmfs, strict=True)
             if len(p) != (k * width if isinstance(p, bytes | bytearray | memoryview) else k)]
    if other:  # another bucket layout (a score from another dealscore, or a damaged row): never a reshape error
        raise ModelNotReadyError(
            f"{len(other)} stored score(s) carry a close outlook in another bucket layout than this dealscore's "
            f"{k} buckets, e.g. {other[:5]}", fix="rescore the open deals with a model trained by this dealscore",
        )
    try:  # all in the compact form: one buffer
        pmf = np.frombuffer(b"".join(pmfs), dtype=PMF_DTYPE).astype(float)
    except TypeError:  # some as lists (JSON form)
        pmf = np.array([np.frombuffer(p, dtype=PMF_DTYPE) if isinstance(p, bytes | bytearray | memoryview) else p
                        for p in pmfs], dtype=float)
    as_of = columns["as_of"]
    if isinstance(as_of, np.ndarray) and as_of.dtype.kind == "M":  # already times (naive UTC): nothing to parse
        scored_at = as_of.astype("datetime64[ns]")
    else:
        parsed = pd.to_datetime(pd.Series(list(as_of), dtype=object), utc=True, format="ISO8601")
        scored_at = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return OpenPipeline(
        deal_id=np.array(columns["deal_id"], dtype=object),
        team=np.array(columns["team"], dtype=object),
        owner_id=np.array(columns["owner_id"], dtype=object),
        amount=np.array(columns["amount"], dtype=float),  # None becomes NaN
        p_win=np.array(columns["p_win"], dtype=float),
        pmf=pmf.reshape(-1, k),
        scored_at=scored_at,
    )


def booked_so_far(deals: pd.DataFrame, as_of: pd.Timestamp, periods: list[Period], by: str,
                  ) -> dict[tuple[str, str], float]:
    """Amounts already won in each period up to ``as_of``, per group (they are bookings, not forecasts).

    ``deals``: a history's deals table, or the score store's won deals (the service's forecast): the same
    columns (``closed_at``, ``outcome``, ``amount``, ``team``/``owner_id``), one rule for both.
    """
    d = deals
    if "closed_at" not in d or "outcome" not in d:
        return {}
    closed = pd.DatetimeIndex(d["closed_at"])
    won = (d["outcome"].to_numpy(dtype=object) == "won") & (closed <= as_of)
    keys = _group_keys(d, by)
    amount = np.nan_to_num(d["amount"].to_numpy(dtype=float), nan=0.0) if "amount" in d else np.zeros(len(d))
    out: dict[tuple[str, str], float] = {}
    for p in periods:
        sel = won & (closed >= p.start) & (closed < p.end)
        for g, a in pd.Series(amount[sel]).groupby(keys[sel]).sum().items():
            out[(str(g), p.label)] = float(a)
    return out


def _group_keys(deals: pd.DataFrame, by: str) -> np.ndarray:
    col = GROUP_COLUMNS[by]
    if col not in deals:
        return np.full(len(deals), NO_GROUP, dtype=object)
    return _group_names(deals[col].to_numpy(dtype=object))


def _group_names(values: np.ndarray) -> np.ndarray:
    """Group names as text, ``(none)`` for a missing team or owner (None or NaN): one rule for deals and scores."""
    return np.array([v if type(v) is str else NO_GROUP if v is None or v != v else str(v) for v in values],
                    dtype=object)


def check_by(by: str) -> str:
    if by not in GROUP_COLUMNS:
        raise ConfigError(f"unknown forecast grouping {by!r}", fix="use --by team or --by owner")
    return by


# ---------------------------------------------------------------------- the computation


def forecast_pipeline(
    pipe: OpenPipeline, as_of: pd.Timestamp | str, *, kind: str = "quarter", by: str = "team",
    creation: PipelineCreationModel | None = None, booked: dict[tuple[str, str], float] | None = None,
    n_sims: int = DEFAULT_SIMS, seed: int = 0, groups: Sequence[str] | None = None, top_drivers: int = 10,
    calibration: OpenDealCalibration | None = None, new_groups: Sequence[str] | None = None,
    new_left_out: str | None = None,
) -> Forecast:
    """Median and P10–P90 of bookings per group and period (current and next), by Monte Carlo over deals.

    Bookings = already won this period (``booked``) + open deals won in it + deals
    created later and won in it (``creation``). Deterministic for a given ``seed``:
    each open deal draws from its own stream (the seed and its id), and the new
    pipeline and calibration factors from each group's, so a group's figures are the
    same whatever other groups' deals the pipeline holds (a team-limited key sees its
    team's numbers of the full run; a deal added or closed elsewhere moves nothing here).
    ``open_expected``, ``new_expected`` and ``expected`` are exact expectations (what
    the draws average to, without their Monte Carlo noise); P10, P50 and P90 are the draws'.
    ``calibration`` (:mod:`dealscore.forecast.calibration`) scales the open deals'
    probabilities by what such deals really booked in past windows and spreads each
    group's open bookings by the correlated risk those windows showed.
    ``groups`` restricts the rows to some groups (a team-limited key); the company
    row is then the sum of those groups only. ``new_groups`` restricts the deals not
    created yet to some groups (None: every group the creation model has a rate for):
    the other rows count their open deals only (an owner whose deals are in a key's
    teams but who works in another team now). A group with open deals that the creation
    model does not know (a rep or team new since it was fitted) has a row of open deals
    only, and the notes name it (:func:`unknown_groups_note`). ``new_left_out`` is the notes' reason when
    ``creation`` is left out on purpose (:func:`forecast_notes`).
    """
    check_kind(kind)
    check_by(by)
    t = instant(as_of)
    periods = current_and_next(t, kind)
    grid = month_grid(t, GRID_MONTHS)
    keys = pipe.keys(by)
    wanted = sorted(set(keys) | (set(creation.rate_per_day_) if creation is not None else set())
                    | {g for g, _ in (booked or {})})
    if groups is not None:
        allowed = {str(g) for g in groups}
        wanted = [g for g in wanted if g in allowed]
    index = {g: i for i, g in enumerate(wanted)}
    where = np.array([index.get(k, -1) for k in keys], dtype=np.int64)  # -1: a group the request leaves out
    keep = where >= 0
    gi = where[keep]
    elapsed = (t.value - pipe.scored_at[keep].astype("datetime64[ns]").astype(np.int64)) / DAY_NS
    grid_off = day_offsets(t, grid)
    # offsets measured from each deal's scoring time, conditioned on its still being open now
    off = grid_off[None, :, :] + elapsed[:, None, None]
    month_prob = period_probabilities(pipe.pmf[keep], off, BUCKET_EDGES, elapsed=elapsed)
    amount, p_win = pipe.amount[keep], pipe.p_win[keep]
    ratio = float(calibration.ratio_) if calibration is not None else 1.0
    # each deal draws from its own stream (seed and deal id): a group's draws depend on its own deals only
    streams = deal_streams(pipe.deal_id[keep], seed)
    open_draws = draw_open_bookings(amount, p_win, month_prob, gi, len(wanted), n_sims, streams, scale=ratio)
    if calibration is not None:  # mean-1 factors per group and one shared by all, each group from its own stream
        open_draws *= calibration.factors(wanted, n_sims, seed)[:, :, None]
    # the expected columns are exact (what the draws average to, without their noise); the range is the draws'
    open_mean = expected_open_bookings(amount, p_win, month_prob, gi, len(wanted), scale=ratio)
    new_draws = np.zeros_like(open_draws)
    new_mean = np.zeros_like(open_mean)
    if creation is not None:
        chosen = None if new_groups is None else {str(n) for n in new_groups}
        drawn = [i for i, g in enumerate(wanted) if chosen is None or g in chosen]
        if drawn:  # each group draws from its own stream: leaving some out changes no other group's draws
            new_draws[:, drawn, :] = creation.simulate([wanted[i] for i in drawn], grid_off, n_sims, seed)
            for i in drawn:
                new_mean[i] = creation.expected(wanted[i], grid_off)
    booked = booked or {}
    period_months = [np.array([i for i, m in enumerate(grid) if p.start <= m.start < p.end]) for p in periods]
    labels = [COMPANY, *wanted]
    # every group's (and the company's) draws first, then the quantiles of all of them in two calls
    # (one per table and fan): per-column quantiles are the same numbers as one call per column
    cells, totals, cums = [], [], []
    for li, label in enumerate(labels):
        sel = slice(None) if li == 0 else slice(li - 1, li)
        o = open_draws[:, sel, :].sum(axis=1)
        nw = new_draws[:, sel, :].sum(axis=1)
        o_mean, nw_mean = open_mean[sel].sum(axis=0), new_mean[sel].sum(axis=0)
        for p, months in zip(periods, period_months, strict=True):
            b = (sum(v for (g, lab), v in booked.items() if lab == p.label and g in index) if li == 0
                 else booked.get((label, p.label), 0.0))
            o_p, nw_p = o[:, months].sum(axis=1), nw[:, months].sum(axis=1)
            totals.append(b + o_p + nw_p)
            cells.append((li, label, p, b, float(o_mean[months].sum()), float(nw_mean[months].sum())))
        # fan: cumulative bookings through the end of each grid month (booked so far in the first period included)
        b0 = (sum(v for (g, lab), v in booked.items() if lab == periods[0].label and g in index) if li == 0
              else booked.get((label, periods[0].label), 0.0))
        cums.append(np.cumsum(o + nw, axis=1) + b0)
    q_table = quantiles(np.stack(totals, axis=1))
    rows, draws = [], {}
    for ci, (li, label, p, b, open_expected, new_expected) in enumerate(cells):
        total = totals[ci]
        draws[f"{label}|{p.label}"] = total
        rows.append({
            "group": label, "period": p.label, "start": p.start, "end": p.end, "booked": b,
            "open_expected": open_expected, "new_expected": new_expected,
            "expected": b + open_expected + new_expected, "p10": float(q_table[0, ci]), "p50": float(q_table[1, ci]),
            "p90": float(q_table[2, ci]), "open_deals": int((gi == li - 1).sum()) if li else len(gi),
        })
    levels = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
    q_fan = np.quantile(np.stack(cums, axis=1), levels, axis=0)  # levels × labels × months
    fan_rows = [{"group": label, "month": m.label, "end": m.end,
                 **{f"q{round(lv * 100):02d}": float(q_fan[j, li, mi]) for j, lv in enumerate(levels)}}
                for li, label in enumerate(labels) for mi, m in enumerate(grid)]
    # deals that drive the current period's range
    cur = period_months[0]
    p_cur = won_in_month(p_win, month_prob, ratio)[:, cur].sum(axis=1)
    share = range_drivers(amount, p_cur)
    order = np.argsort(-share, kind="stable")[:top_drivers]
    drivers = pd.DataFrame({
        "deal_id": pipe.deal_id[keep][order], "group": keys[keep][order], "amount": amount[order],
        "p_win": p_win[order], "p_this_period": p_cur[order], "share_of_variance": share[order],
    })
    notes = forecast_notes(creation, calibration, new_left_out)
    if creation is not None:
        with_deals = [g for g, n in zip(wanted, np.bincount(gi, minlength=len(wanted)), strict=True) if n]
        note = unknown_groups_note(creation, with_deals, by)
        if note:
            notes.append(note)
    return Forecast(as_of=t, kind=kind, by=by, periods=periods, table=pd.DataFrame(rows), fan=pd.DataFrame(fan_rows),
                    drivers=drivers, n_sims=n_sims, seed=seed, notes=notes, draws=draws)


def forecast_notes(creation: PipelineCreationModel | None, calibration: OpenDealCalibration | None,
                   new_left_out: str | None = None) -> list[str]:
    """What the range carries, in words: which uncertainties are drawn and which are not modelled.

    ``new_left_out`` says why deals not created yet are left out when a creation model exists but does not
    apply (a forecast of one currency's deals: deals not created yet have none); without it, ``creation``
    ``None`` means there is no such model.
    """
    if calibration is None:
        notes = ["open deals are drawn independently given their probabilities (correlated risk is not modelled: "
                 "no open-deal calibration)"]
    else:
        c = calibration.summary()
        notes = [f"open deals calibrated on {c['windows']} past windows: probabilities × {c['ratio']:.3f}; beyond "
                 f"drawing each deal, the range carries a shared error of that factor ({c['ratio_sd']:.1%}, how far "
                 f"one quarter's own factor fell from it) and a per-group spread ({c['spread']:.1%}, risk a team's "
                 "deals share)"]
    if new_left_out is not None:
        notes.append(f"bookings from deals not created yet are not included: {new_left_out}")
    elif creation is None:
        notes.append("bookings from deals not created yet are not included (no pipeline creation model)")
    else:
        notes.append("deals not created yet: drawn from each group's creation rate and past wins, the rate itself "
                     "uncertain by its counts")
    return notes


def unknown_groups_note(creation: PipelineCreationModel, groups: Sequence[str], by: str, shown: int = 10) -> str:
    """The note naming the ``groups`` (those with open deals) the creation model does not know, "" when none.

    The model knows the teams or owners of the history it was fitted on; one that appears since (a new
    rep) has no creation rate, so its row counts its open deals only until the model is retrained.
    Deals without a team or owner (``(none)``) are not named.
    """
    known = getattr(creation, "pool_of_", None)
    if known is None:  # a model fitted before it kept each group's pool: the groups it has a rate for
        known = creation.rate_per_day_
    unknown = [str(g) for g in groups if str(g) not in known and g != NO_GROUP]
    if not unknown:
        return ""
    noun = ("team" if by == "team" else "owner") + ("s" if len(unknown) > 1 else "")
    names = ", ".join(unknown[:shown]) + (f" and {len(unknown) - shown} more" if len(unknown) > shown else "")
    return (f"the pipeline-creation model does not know {noun} {names} (not in the history it was trained on): "
            f"{'their rows count' if len(unknown) > 1 else 'its row counts'} open deals only, no deals not created "
            "yet, until the model is retrained")


def forecast_history(
    history: DealHistory, bundle: Any, as_of: pd.Timestamp | str | None = None, *, kind: str = "quarter",
    by: str = "team", n_sims: int = DEFAULT_SIMS, seed: int = 0, scorer: Scorer | None = None,
    creation: PipelineCreationModel | None = None, calibration: OpenDealCalibration | None = None,
) -> Forecast:
    """Forecast from a history: score its deals open at ``as_of``, learn creation and calibration as known then.

    A forecast for a past time reads the history as it looked at that time
    (:meth:`DealHistory.as_known_at`), so it is exactly what could have been said then.
    A time after the history's data cut is refused: what closed, was won or was
    created since is not in the export, so its deals would be forecast as still
    open and the quarter's bookings and new pipeline would be missing.
    """
    check_by(by)
    t = instant(history.data_cut if as_of is None else as_of)
    cut = instant(history.data_cut)
    refuse_after_cut(history, t, "forecast")
    past = history if t == cut else history.as_known_at(t)
    scorer = scorer or Scorer(bundle)
    blocks = list(scorer.score_blocks(past, t, explain=False, actions=False))
    pipe = pipeline_from_blocks(blocks)
    if creation is None:
        col = GROUP_COLUMNS[by]
        creation = PipelineCreationModel(group=col, pool="team").fit(past, t)
    if calibration is None:
        stored = getattr(bundle, "forecast_calibration", None)
        # the bundle's calibration saw windows up to its own cut: a forecast for an earlier time learns its own
        usable = stored is not None and not pd.isna(stored.as_of_) and stored.as_of_ <= t
        calibration = stored if usable else fit_open_calibration(past, scorer, t)
    periods = current_and_next(t, kind)
    return forecast_pipeline(pipe, t, kind=kind, by=by, creation=creation,
                             booked=booked_so_far(past.deals, t, periods, by), n_sims=n_sims, seed=seed,
                             calibration=calibration)


__all__ = ["COMPANY", "DEFAULT_SIMS", "Forecast", "OpenPipeline", "booked_so_far", "forecast_history",
           "forecast_pipeline", "pipeline_from_blocks", "pipeline_from_columns", "pipeline_from_records",
           "pipeline_from_results", "unknown_groups_note"]
