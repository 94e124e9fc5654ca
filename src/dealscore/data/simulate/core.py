"""Assemble a simulated CRM: the contract tables as of the data cut, plus the truth.

Steps, each in its own module: who sells what to whom (population), the latent
real-stage process (latent), the touchpoints it produces (touchpoints), what reps
record (crm). This module turns the arrays into the contract's DataFrames, cuts
them at the export time and writes history and truth side by side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dealscore.data.history import DealHistory, write_history
from dealscore.data.simulate.config import (
    DEFAULT_PROFILE,
    KIND_NAMES,
    N_STAGES,
    QUIET,
    SEGMENTS,
    SLOT_CHAMPION,
    SLOT_DM,
    SLOT_INFLUENCER,
    SLOT_LEAD,
    SLOT_PROCUREMENT,
    SLOT_USER,
    STAGES,
    STALLED,
    SimConfig,
    profile_config,
)
from dealscore.data.simulate.crm import CrmRecords, crm_records
from dealscore.data.simulate.latent import LatentLaw, LatentPaths, build_law, is_single, simulate_paths, stage_z
from dealscore.data.simulate.population import LEAD_ROLES, Population, draw_population
from dealscore.data.simulate.touchpoints import (
    DIRECTIONS,
    TYPES,
    Touches,
    first_entries,
    generate_touches,
    join_times,
)
from dealscore.errors import ConfigError
from dealscore.times import naive_utc

TRUTH_DIR = "truth"
SIMULATOR_VERSION = "1"


@dataclass
class SimulatedCRM:
    """A simulated history (what a CRM export would hold) and the truth behind it.

    ``truth`` holds ``deal_truth``, ``latent_path``, ``stage_truth`` and ``reps``;
    features must never read it. ``law`` and ``paths`` are the in-memory latent
    process the oracle uses (rebuilt from the truth tables after a round trip).
    """

    history: DealHistory
    truth: dict[str, pd.DataFrame]
    config: SimConfig
    seed: int
    origin: pd.Timestamp
    law: LatentLaw = field(repr=False)
    paths: LatentPaths = field(repr=False)
    profile: str = DEFAULT_PROFILE


def _to_ts(origin: pd.Timestamp, t_days: np.ndarray) -> np.ndarray:
    """Days since origin -> datetime64[ns] (whole seconds; NaN/inf -> NaT)."""
    t = np.asarray(t_days, dtype=float)
    ok = np.isfinite(t)
    sec = np.where(ok, np.round(np.where(ok, t, 0.0) * 86400.0), 0).astype(np.int64)
    ns = origin.value + sec * 1_000_000_000
    out = ns.astype("datetime64[ns]")
    out[~ok] = np.datetime64("NaT")
    return out


def _ids(prefix: str, idx: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded ids such as ``T00000001``, built by Arrow's string kernels (no Python loop per id)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(idx, dtype=np.int64)), pa.string()), width, "0")
    return np.asarray(pc.binary_join_element_wise(prefix, digits, "").to_numpy(zero_copy_only=False), dtype=object)


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    """A DataFrame whose object arrays stay object columns (the contract's string type, no inference pass)."""
    return pd.DataFrame({
        k: pd.Series(v, dtype=object) if isinstance(v, np.ndarray) and v.dtype == object else v
        for k, v in columns.items()
    })


def _obj(values: np.ndarray, valid: np.ndarray | None = None) -> pd.Series:
    """A string column as the contract types it: object dtype, None for missing (no inference pass)."""
    out = np.asarray(values, dtype=object)
    if valid is not None:
        out = out.copy()
        out[~valid] = None
    return pd.Series(out, dtype=object)


def simulate(n_deals: int, seed: int = 0, *, cut_date: str | pd.Timestamp | None = None,
             config: SimConfig | None = None, profile: str | None = None) -> SimulatedCRM:
    """Simulate a B2B pipeline of ``n_deals`` deals; the same seed gives the same tables.

    ``cut_date`` is the export time (default ``config.cut_date``); deals are
    created over ``config.span_days`` before it, so the history holds a mix of
    closed and still-open deals. ``profile`` names a company preset
    (:data:`~dealscore.data.simulate.config.PROFILES`) applied on top of ``config``.
    """
    if n_deals < 1:
        raise ConfigError(f"the simulator needs at least one deal (got {n_deals})")
    cfg = config or SimConfig()
    if profile is not None:
        cfg = profile_config(profile, cfg)
    cut = naive_utc(pd.Timestamp(cut_date if cut_date is not None else cfg.cut_date))
    origin = (cut - pd.Timedelta(days=cfg.span_days)).normalize()
    cut_days = (cut - origin) / pd.Timedelta(days=1)
    ss = np.random.SeedSequence(seed)
    r_pop, r_path, r_touch, r_crm, r_misc = (np.random.default_rng(s) for s in ss.spawn(5))

    pop = draw_population(cfg, n_deals, r_pop, origin.dayofweek)
    law = build_law(cfg, pop.q)
    paths = simulate_paths(law, r_path, pop.start_stage, pop.created)
    T = first_entries(paths, n_deals, N_STAGES)
    J = join_times(pop, T, r_touch)
    touches = generate_touches(cfg, pop, paths, T, J, r_touch, origin.dayofweek)
    crm = crm_records(cfg, pop, paths, T, r_crm)

    history = _history(cfg, pop, paths, touches, crm, origin, cut, cut_days, r_misc)
    truth = _truth(cfg, pop, law, paths, T, origin, cut_days)
    history = history.replace(stage_truth=truth["stage_truth"])
    name = profile or DEFAULT_PROFILE
    if name != DEFAULT_PROFILE:  # the default's files stay byte-identical to earlier versions
        history = history.replace(meta={**history.meta, "profile": name})
    return SimulatedCRM(history=history, truth=truth, config=cfg, seed=int(seed), origin=origin, law=law,
                        paths=paths, profile=name)


def _history(cfg: SimConfig, pop: Population, paths: LatentPaths, touches: Touches, crm: CrmRecords,
             origin: pd.Timestamp, cut: pd.Timestamp, cut_days: float, rng: np.random.Generator) -> DealHistory:
    n = len(pop.created)
    acc = pop.accounts
    account_ids = _ids("A", acc["account_idx"].to_numpy() + 1, 6)
    accounts = _frame({
        "account_id": account_ids,
        "industry": np.asarray(cfg.industries, dtype=object)[acc["industry_idx"].to_numpy()],
        "employees": acc["employees"].to_numpy().astype(float),
        "annual_revenue": acc["annual_revenue"].to_numpy(),
        "region": np.asarray(cfg.regions, dtype=object)[acc["region_idx"].to_numpy()],
        "created_at": _to_ts(origin, acc["created"].to_numpy()),
    })

    closed_known = paths.closed <= cut_days
    deal_ids = _ids("D", np.arange(n) + 1, 7)
    rep_ids = pop.reps["rep_id"].to_numpy(dtype=object)
    # current amount and close date: the last values recorded by the cut ...
    known_t = np.where(np.isnan(crm.recorded), crm.t, np.maximum(crm.recorded, crm.t))
    keep_sh = known_t <= cut_days
    last = np.full(n, -1)
    idx = np.nonzero(keep_sh)[0]
    np.maximum.at(last, crm.deal[idx], idx)  # rows are sorted by (deal, t): the latest change known by the cut
    cur_amount = np.where(last >= 0, crm.amount[np.maximum(last, 0)], pop.amount0)
    cur_close = np.where(last >= 0, crm.close_date[np.maximum(last, 0)], np.nan)
    # ... except closed deals, whose close date (and sometimes amount) is set to what really happened
    closed_day = np.floor(paths.closed)
    set_date = closed_known & (rng.random(n) < np.where(paths.won, 0.85, 0.5))
    cur_close = np.where(set_date, closed_day, cur_close)
    rewrite = closed_known & paths.won & (rng.random(n) < 0.3)
    cur_amount = np.where(rewrite, np.round(cur_amount * rng.uniform(0.9, 1.05, n), -2), cur_amount)
    outcome = np.where(paths.won, "won", "lost").astype(object)
    deals = _frame({
        "deal_id": deal_ids,
        "account_id": account_ids[pop.account],
        "owner_id": rep_ids[pop.rep],
        "created_at": _to_ts(origin, pop.created),
        "amount": cur_amount,
        "product": np.asarray(cfg.products, dtype=object)[pop.product],
        "source": np.asarray(cfg.sources, dtype=object)[pop.source],
        "expected_close_date": _to_ts(origin, cur_close),
        "closed_at": _to_ts(origin, np.where(closed_known, paths.closed, np.nan)),
        "outcome": _obj(outcome, closed_known),
        "team": pop.reps["team"].to_numpy(dtype=object)[pop.rep],
    })

    sh_idx = np.nonzero(keep_sh)[0]
    stage_history = _frame({
        "deal_id": deal_ids[crm.deal[sh_idx]],
        "stage": np.asarray(STAGES, dtype=object)[crm.stage[sh_idx]],
        "changed_at": _to_ts(origin, crm.t[sh_idx]),
        "recorded_at": _to_ts(origin, crm.recorded[sh_idx]),
        "amount": crm.amount[sh_idx],
        "expected_close_date": _to_ts(origin, crm.close_date[sh_idx]),
    })

    tk = np.where(np.isnan(touches.recorded), touches.t, np.maximum(touches.recorded, touches.t))
    keep = (touches.t <= cut_days) & (tk <= cut_days)
    ti = np.nonzero(keep)[0]
    td, slot = touches.deal[ti], touches.slot[ti]
    has_contact = slot >= 0
    roles = np.empty((n, 6), dtype=object)
    roles[:, SLOT_LEAD] = np.asarray(LEAD_ROLES, dtype=object)[pop.lead_role]
    roles[:, SLOT_DM] = "decision_maker"
    roles[:, SLOT_CHAMPION] = "champion"
    roles[:, SLOT_INFLUENCER] = "influencer"
    roles[:, SLOT_USER] = "user"
    roles[:, SLOT_PROCUREMENT] = "other"
    safe_slot = np.maximum(slot, 0)
    # contacts belong to the account: the same decision maker appears in every deal of that account
    contact_ids = np.stack([account_ids + f"-C{k + 1}" for k in range(6)], axis=1)
    contact = contact_ids[pop.account[td], safe_slot]
    activities = _frame({
        "activity_id": _ids("T", np.arange(len(ti)) + 1, 8),
        "deal_id": deal_ids[td],
        "occurred_at": _to_ts(origin, touches.t[ti]),
        "type": np.asarray(TYPES, dtype=object)[touches.type[ti]],
        "direction": np.asarray(DIRECTIONS, dtype=object)[touches.direction[ti]],
        "contact_id": _obj(contact, has_contact),
        "contact_role": _obj(roles[td, safe_slot], has_contact),
        "recorded_at": _to_ts(origin, touches.recorded[ti]),
    })
    meta = {"source": "dealscore simulator", "simulator_version": SIMULATOR_VERSION}
    return DealHistory(accounts=accounts, deals=deals, stage_history=stage_history, activities=activities,
                       stage_truth=None, cut_at=cut, meta=meta)


def _episode_start(paths: LatentPaths, n: int, kind: int) -> np.ndarray:
    first = np.full(n, np.inf)
    sel = paths.kind == kind
    np.minimum.at(first, paths.deal[sel], paths.start[sel])
    return first


def _truth(cfg: SimConfig, pop: Population, law: LatentLaw, paths: LatentPaths, T: np.ndarray,
           origin: pd.Timestamp, cut_days: float) -> dict[str, pd.DataFrame]:
    n = len(pop.created)
    deal_ids = _ids("D", np.arange(n) + 1, 7)
    stalled_at = _episode_start(paths, n, STALLED)
    quiet_at = _episode_start(paths, n, QUIET)
    q = pop.q
    single_at = np.where(is_single(q.champion, q.dm_access, q.extra), T[:, 2], np.inf)
    revived = np.zeros(n, dtype=bool)
    revived[paths.deal[paths.revivals > 0]] = True
    z = stage_z(cfg, q, q.champion, q.dm_access, q.extra)
    deal_truth = _frame({
        "deal_id": deal_ids,
        "will_win": paths.won,
        "true_closed_at": _to_ts(origin, paths.closed),
        "open_at_cut": paths.closed > cut_days,
        "quality": z[:, -1],
        "quality_at_creation": z[:, 0],
        "fit": q.fit,
        "engagement": q.engagement,
        "rep_skill": q.skill,
        "segment": np.asarray(SEGMENTS, dtype=object)[q.segment],
        "competition": q.competition,
        "speed": q.speed,
        "champion": q.champion,
        "dm_access": q.dm_access,
        "extra_contacts": q.extra,
        "buying_group_size": 1 + (q.champion >= 1).astype(int) + q.dm_access + q.extra,
        "start_stage": np.asarray(STAGES, dtype=object)[pop.start_stage],
        "stalled": np.isfinite(stalled_at),
        "stalled_at": _to_ts(origin, stalled_at),
        "gone_quiet": np.isfinite(quiet_at),
        "gone_quiet_at": _to_ts(origin, quiet_at),
        "single_threaded": np.isfinite(single_at),
        "single_threaded_at": _to_ts(origin, single_at),
        "revived": revived,
        "win_prob_at_creation": law.wa[np.arange(n), pop.start_stage, 0],
        "champion_label": np.asarray(("none", "weak", "strong"), dtype=object)[q.champion],
    })
    latent_path = _frame({
        "deal_id": deal_ids[paths.deal],
        "entered_at": _to_ts(origin, paths.start),
        "state": np.asarray(KIND_NAMES, dtype=object)[paths.kind],
        "stage": np.asarray(STAGES, dtype=object)[paths.stage],
        "revivals": paths.revivals,
    })
    # audited real stages as an export at the cut would hold them (the first entry of each stage)
    dd, jj = np.nonzero(np.isfinite(T) & (cut_days >= T))
    stage_truth = _frame({
        "deal_id": deal_ids[dd],
        "as_of": _to_ts(origin, T[dd, jj]),
        "stage": np.asarray(STAGES, dtype=object)[jj],
    })
    reps = pop.reps.copy()
    return {"deal_truth": deal_truth, "latent_path": latent_path, "stage_truth": stage_truth, "reps": reps}


def write_simulation(sim: SimulatedCRM, out_dir: str | Path) -> Path:
    """Write the history at ``out_dir`` (CSV, byte-identical per seed) and the truth in ``out_dir/truth``."""
    path = Path(out_dir)
    write_history(sim.history, path)
    tdir = path / TRUTH_DIR
    tdir.mkdir(parents=True, exist_ok=True)
    for name, frame in sim.truth.items():
        _truth_csv(frame).to_csv(tdir / f"{name}.csv", index=False, lineterminator="\n")
    params = {"seed": sim.seed, "origin": sim.origin.strftime("%Y-%m-%dT%H:%M:%S"),
              "simulator_version": SIMULATOR_VERSION, "config": sim.config.to_dict()}
    if sim.profile != DEFAULT_PROFILE:
        params["profile"] = sim.profile
    (tdir / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _truth_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Stable text for truth tables: ISO seconds, floats with 10 significant digits, 0/1 flags."""
    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.dt.strftime("%Y-%m-%dT%H:%M:%S").where(s.notna(), "")
        elif pd.api.types.is_bool_dtype(s):
            out[col] = s.astype(np.int8)
        elif pd.api.types.is_float_dtype(s):
            out[col] = s.map(lambda v: "" if pd.isna(v) else f"{v:.10g}")
        else:
            out[col] = s
    return out
